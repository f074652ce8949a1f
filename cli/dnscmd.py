"""`minik8s dns`: the command line of traffic.dns (flags and environment -> settings -> run)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `dns` command to the `minik8s` app (filled in with traffic.dns)."""
