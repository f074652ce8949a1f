"""``mkctl create quota NAME --hard=pods=2,requests.cpu=1 [--scopes=BestEffort]``, as kubectl's.

Data flow: the flags -> ``quota_manifest`` (kubectl's ResourceQuota: ``spec.hard`` from the
``name=quantity`` pairs, ``spec.scopes`` from the list) -> one create in the session's namespace
-> ``resourcequota/NAME created``. The apiserver validates names and quantities (422 as kubectl
shows it). Importing this module registers the sub-command on ``mkctl create``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from machinery.client import ApiResource

from .app import options_of
from .misc import create_app
from .session import CliError, Session, run_command

QUOTAS = ApiResource("v1", "resourcequotas", True, "ResourceQuota")


def quota_manifest(name: str, hard: str, scopes: str) -> dict[str, Any]:
    """What ``kubectl create quota`` sends."""
    limits: dict[str, str] = {}
    for pair in (p for p in hard.split(",") if p.strip()):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise CliError(f"error: invalid argument {pair!r} for --hard: expected NAME=QUANTITY")
        limits[key.strip()] = value.strip()
    spec: dict[str, Any] = {"hard": limits}
    listed = [s.strip() for s in scopes.split(",") if s.strip()]
    if listed:
        spec["scopes"] = listed
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name}, "spec": spec}


@create_app.command("quota")
def create_quota(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument()],
    hard: Annotated[str, typer.Option("--hard", help="A comma-delimited set of resource=quantity pairs.")] = "",
    scopes: Annotated[str, typer.Option("--scopes", help="A comma-delimited set of quota scopes.")] = "",
) -> None:
    """Create a resource quota with the specified name, hard limits and optional scopes."""
    async def run(s: Session) -> int:
        await s.client.create(QUOTAS, quota_manifest(name, hard, scopes), namespace=s.namespace)
        typer.echo(f"resourcequota/{name} created")
        return 0
    run_command(options_of(ctx), run)


create_app.command("resourcequota", hidden=True)(create_quota)
