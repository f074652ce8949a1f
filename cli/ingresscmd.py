"""`minik8s ingress`: the command line of traffic.ingress (flags and environment -> settings -> run)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `ingress` command to the `minik8s` app (filled in with traffic.ingress)."""
