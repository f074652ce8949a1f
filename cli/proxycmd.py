"""`minik8s proxy`: the command line of traffic.proxy (flags and environment -> settings -> run)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `proxy` command to the `minik8s` app (filled in with traffic.proxy)."""
