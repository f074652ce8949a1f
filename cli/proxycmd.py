"""`minik8s proxy`: the command line of traffic.proxy (flags and environment -> settings -> run)."""

from __future__ import annotations

import typer

from cli.options import KUBECONFIG, LOG_LEVEL, SERVER, setup_logging
from machinery.kubeconfig import component_config


def register(app: typer.Typer) -> None:
    """Adds the `proxy` command to the `minik8s` app."""

    @app.command()
    def proxy(
        server: str = SERVER,
        kubeconfig: str = KUBECONFIG,
        node_name: str = typer.Option("", "--node-name", envvar=["MINIK8S_PROXY_NODE_NAME", "MINIK8S_NODE_NAME"],
                                      help="this node: externalTrafficPolicy Local keeps to its endpoints "
                                           "(empty: every endpoint)"),
        nodeport_addresses: str = typer.Option("127.0.0.1", "--nodeport-addresses",
                                               envvar="MINIK8S_PROXY_NODEPORT_ADDRESSES",
                                               help="comma-separated host addresses that NodePorts listen on "
                                                    "(0.0.0.0: all of them)"),
        health_bind_address: str = typer.Option("127.0.0.1", "--health-bind-address",
                                                envvar="MINIK8S_PROXY_HEALTH_BIND_ADDRESS",
                                                help="address of GET /healthz"),
        health_port: int = typer.Option(10256, "--health-port", envvar="MINIK8S_PROXY_HEALTH_PORT",
                                        help="port of GET /healthz (200 once synced); 0: none"),
        connect_timeout: float = typer.Option(1.0, "--connect-timeout", envvar="MINIK8S_PROXY_CONNECT_TIMEOUT",
                                              help="seconds to wait for an endpoint before trying the next"),
        udp_idle_timeout: float = typer.Option(30.0, "--udp-idle-timeout", envvar="MINIK8S_PROXY_UDP_IDLE_TIMEOUT",
                                               help="seconds after which a quiet UDP client session is closed"),
        uvloop: bool = typer.Option(True, "--uvloop/--no-uvloop", envvar="MINIK8S_PROXY_UVLOOP",
                                    help="run on uvloop's event loop (faster relays) when it is installed"),
        log_level: str = LOG_LEVEL,
    ) -> None:
        """Run the Service proxy's host side: NodePort and LoadBalancer listeners relaying to endpoints."""
        from traffic.proxy.listeners import parse_addresses
        from traffic.proxy.server import ProxySettings, run
        from traffic.proxy.userspace import RelaySettings

        setup_logging(log_level)
        try:
            addresses = parse_addresses(nodeport_addresses)
        except ValueError as e:
            typer.echo(f"error: --nodeport-addresses: {e}", err=True)
            raise typer.Exit(2)
        run(ProxySettings(server=component_config(server, kubeconfig), node_name=node_name, nodeport_addresses=addresses,
                          health_bind_address=health_bind_address, health_port=health_port,
                          relay=RelaySettings(node=node_name or None, connect_timeout=connect_timeout,
                                              udp_idle_timeout=udp_idle_timeout),
                          use_uvloop=uvloop))
