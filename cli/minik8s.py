"""``minik8s``: runs each component alone, configured by flags and environment variables.

``minik8s apiserver --etcd-servers URL --bind-address ADDR --port N`` is the API server;
``minik8s up`` runs etcd and every component on this machine as child processes. The
scheduler, controller-manager, kubelet, gitops and proxy join in later issues.
"""

from __future__ import annotations

import logging

import typer

app = typer.Typer(help="minik8s: a small Kubernetes. Each subcommand runs one component.",
                  no_args_is_help=True, add_completion=False)


@app.callback()
def main_callback() -> None:
    """minik8s components."""


@app.command()
def apiserver(
    etcd_servers: str = typer.Option("http://127.0.0.1:2379", envvar="MINIK8S_ETCD_SERVERS",
                                     help="etcd endpoint(s), comma separated"),
    bind_address: str = typer.Option("127.0.0.1", envvar="MINIK8S_BIND_ADDRESS", help="address to listen on"),
    port: int = typer.Option(8080, envvar="MINIK8S_PORT", help="port to listen on"),
    compaction_interval: float = typer.Option(60.0, envvar="MINIK8S_COMPACTION_INTERVAL",
                                              help="seconds between etcd compactions"),
    history_retention: float = typer.Option(300.0, envvar="MINIK8S_HISTORY_RETENTION",
                                            help="seconds of etcd history kept for watches"),
    service_cluster_ip_range: str = typer.Option("10.96.0.0/12", envvar="MINIK8S_SERVICE_CLUSTER_IP_RANGE",
                                                 help="CIDR that Service cluster IPs are allocated from"),
    bookmark_interval: float = typer.Option(10.0, envvar="MINIK8S_BOOKMARK_INTERVAL",
                                            help="seconds between BOOKMARK events on idle watches that allow them"),
    log_level: str = typer.Option("info", envvar="MINIK8S_LOG_LEVEL"),
) -> None:
    """Run the API server (Kubernetes REST API on etcd)."""
    from apiserver.server import ApiServerSettings, run

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(ApiServerSettings(etcd_servers=etcd_servers, bind_address=bind_address, port=port,
                          compaction_interval=compaction_interval, history_retention=history_retention,
                          service_cluster_ip_range=service_cluster_ip_range, bookmark_interval=bookmark_interval,
                          log_level=log_level))


@app.command()
def up(
    port: int = typer.Option(8080, help="apiserver port on 127.0.0.1 (8080: kubectl's default without kubeconfig)"),
    data_dir: str = typer.Option("~/.minik8s", help="where etcd data, logs and the kubeconfig live"),
    kubeconfig: str = typer.Option("", help="write the kubeconfig here (default: DATA_DIR/kubeconfig)"),
    fresh: bool = typer.Option(False, help="start from an empty etcd"),
) -> None:
    """Run a whole cluster on this machine as child processes; Ctrl-C stops it."""
    from pathlib import Path

    from cli.up import UpSettings, run as run_up

    raise typer.Exit(run_up(UpSettings(port=port, data_dir=Path(data_dir).expanduser(),
                                       kubeconfig=Path(kubeconfig).expanduser() if kubeconfig else None,
                                       fresh=fresh)))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
