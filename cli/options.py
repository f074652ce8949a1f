"""What every ``minik8s <component>`` command shares: ``--server``, ``--kubeconfig`` and the log set-up."""

from __future__ import annotations

import logging

import typer

SERVER = typer.Option("", "--server", "-s", envvar="MINIK8S_SERVER",
                      help="the apiserver URL (default: the kubeconfig's, else http://127.0.0.1:8080)")
KUBECONFIG = typer.Option("", "--kubeconfig", envvar="MINIK8S_KUBECONFIG",
                          help="kubeconfig with the apiserver's address, CA and this component's credential")
LOG_LEVEL = typer.Option("info", envvar="MINIK8S_LOG_LEVEL")


def setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
