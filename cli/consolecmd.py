"""`minik8s console`: the command line of console.server (flags and environment -> settings -> run)."""

from __future__ import annotations

import typer

from cli.options import KUBECONFIG, LOG_LEVEL, SERVER, setup_logging
from machinery.kubeconfig import ClientConfig, component_config


def console(
    server: str = SERVER,
    kubeconfig: str = KUBECONFIG,
    certificate_authority: str = typer.Option("", "--certificate-authority", envvar="MINIK8S_CONSOLE_CA",
                                              help="https: the CA the API server's certificate must chain to "
                                                   "(default: the kubeconfig's)"),
    bind_address: str = typer.Option("127.0.0.1", "--bind-address", envvar="MINIK8S_CONSOLE_BIND_ADDRESS",
                                      help="address the console listens on"),
    port: int = typer.Option(9090, "--port", envvar="MINIK8S_CONSOLE_PORT", help="its port"),
    log_level: str = LOG_LEVEL,
) -> None:
    """Run the web console: the page, and a relay of its API requests made with each user's own credential."""
    import dataclasses

    from console.server import ConsoleSettings, run

    setup_logging(log_level)
    found = component_config(server, kubeconfig)
    # Only the address and the CA are the console's: each user logs in with their own credential.
    base = found if isinstance(found, ClientConfig) else ClientConfig(server=found.rstrip("/"))
    base = dataclasses.replace(base, token=None, username=None, password=None, cert_file=None, key_file=None,
                               cert_data=None, key_data=None, headers={})
    if certificate_authority:
        base = dataclasses.replace(base, ca_file=certificate_authority, ca_data=None)
    run(ConsoleSettings(server=base, bind_address=bind_address, port=port))


def register(app: typer.Typer) -> None:
    """Adds the `console` command to the `minik8s` app."""
    app.command("console")(console)
