"""`minik8s ingress`: the command line of traffic.ingress (flags and environment -> settings -> run)."""

from __future__ import annotations

import typer

from cli.options import KUBECONFIG, LOG_LEVEL, SERVER, setup_logging
from machinery.kubeconfig import component_config


def ingress(
    server: str = SERVER,
    kubeconfig: str = KUBECONFIG,
    bind_address: str = typer.Option("0.0.0.0", "--bind-address", envvar="MINIK8S_INGRESS_BIND_ADDRESS",
                                      help="address the HTTP proxy listens on"),
    port: int = typer.Option(80, "--port", envvar="MINIK8S_INGRESS_PORT", help="its port"),
    https_port: int = typer.Option(0, "--https-port", envvar="MINIK8S_INGRESS_HTTPS_PORT",
                                   help="port of HTTPS with the certificates of the kubernetes.io/tls Secrets that "
                                        "Ingresses name in spec.tls (chosen by SNI); 0: no HTTPS"),
    publish_address: str = typer.Option("127.0.0.1", "--publish-address", envvar="MINIK8S_INGRESS_PUBLISH_ADDRESS",
                                        help="written to status.loadBalancer.ingress of every Ingress served"),
    class_name: str = typer.Option("minik8s", "--class-name", envvar="MINIK8S_INGRESS_CLASS_NAME",
                                   help="the IngressClass served (created, marked default, if missing)"),
    health_port: int = typer.Option(10254, "--health-port", envvar="MINIK8S_INGRESS_HEALTH_PORT",
                                    help="port of GET /healthz (200 once the routes are built); 0: none"),
    log_level: str = LOG_LEVEL,
) -> None:
    """Run the Ingress controller: an HTTP reverse proxy routing by the Ingresses of its class."""
    from traffic.ingress.controller import IngressSettings, run
    from traffic.ingress.proxy import ProxySettings

    setup_logging(log_level)
    run(IngressSettings(server=component_config(server, kubeconfig), proxy=ProxySettings(bind_address=bind_address, port=port, https_port=https_port),
                        publish_address=publish_address, class_name=class_name, health_port=health_port))


def register(app: typer.Typer) -> None:
    """Adds the `ingress` command to the `minik8s` app."""
    app.command("ingress")(ingress)
