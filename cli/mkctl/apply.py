"""``mkctl apply -f``: kubectl's client-side apply (create, or three-way strategic merge patch).

Data flow: ``-f`` files -> manifests -> for each object: its type from discovery -> GET the live
object -> absent: POST it with the ``last-applied-configuration`` annotation (``created``);
present: ``three_way_patch(last applied, manifest + new annotation, live)`` over the kind's
schema from ``/openapi/v3`` -> ``{}`` prints ``unchanged``, else PATCH as
``application/strategic-merge-patch+json`` (``configured``), or as a JSON merge patch for kinds
that take no strategic merge patch (custom resources), as kubectl does.
Every object is tried; errors are printed as they happen and make the exit code 1.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from machinery import errors

from .app import app, options_of
from .manifests import Manifest, load
from .session import CliError, Session, print_error, run_command
from .threeway import original_of, three_way_patch, with_last_applied

DRY_RUN = ("none", "client", "server")


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    filename: Annotated[list[str], typer.Option("--filename", "-f", help="File, directory or - (stdin).")],
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", "-R")] = False,
    output: Annotated[str, typer.Option("--output", "-o", help="name")] = "",
    dry_run: Annotated[str, typer.Option("--dry-run", help="none|client|server")] = "none",
) -> None:
    """Apply a configuration to resources by file name or stdin."""
    run_command(options_of(ctx), lambda s: apply(s, filename, recursive=recursive, output=output, dry_run=dry_run))


def _suffix(dry_run: str) -> str:
    return {"client": " (dry run)", "server": " (server dry run)"}.get(dry_run, "")


def with_source(e: errors.ApiError, verb: str, source: str) -> errors.ApiError:
    """kubectl's ``AddSourceToErr``: ``error when creating "file.yaml": ...`` (Invalid keeps its causes)."""
    if isinstance(e, errors.InvalidError) and e.causes:
        return e
    return type(e)(message=f'error when {verb} "{source}": {e.message}', name=e.name, group=e.group,
                   kind=e.kind, causes=e.causes)


async def apply(session: Session, filenames: list[str], *, recursive: bool = False, output: str = "",
                dry_run: str = "none") -> int:
    if dry_run not in DRY_RUN:
        raise CliError(f'error: Invalid dry-run value ({dry_run}). Must be "none", "server", or "client".')
    manifests = load(filenames, recursive=recursive)
    if not manifests:
        raise CliError("error: no objects passed to apply")
    failed = False
    for m in manifests:
        try:
            line = await apply_one(session, m, dry_run=dry_run)
        except (errors.ApiError, CliError) as e:
            print_error(e, server=session.config.server)
            failed = True
            continue
        ref, verb = line
        typer.echo(ref if output == "name" else f"{ref} {verb}{_suffix(dry_run)}")
    return 1 if failed else 0


async def apply_one(session: Session, m: Manifest, *, dry_run: str = "none") -> tuple[str, str]:
    """Apply one object; ``("deployment.apps/nginx", "created"|"configured"|"unchanged")``."""
    res = await session.for_manifest(m.obj, m.source)
    ns = session.namespace_for(res, m.obj)
    name = m.name
    if not name:
        raise CliError(f'error: error when retrieving current configuration of "{m.source}": '
                       f'resource name may not be empty')
    ref = f"{res.prefix}/{name}"
    client = session.client
    try:
        live: dict[str, Any] | None = await client.get(res.api_resource, name, namespace=ns)
    except errors.NotFoundError:
        live = None
    modified = with_last_applied(m.obj)
    if live is None:
        if dry_run != "client":
            try:
                await client.create(res.api_resource, modified, namespace=ns, dry_run=dry_run == "server")
            except errors.ApiError as e:
                raise with_source(e, "creating", m.source) from e
        return ref, "created"
    schema, strategic = await session.patch_schema(res)
    patch = three_way_patch(original_of(live), modified, live, schema=schema)
    if not patch:
        return ref, "unchanged"
    if dry_run != "client":
        try:
            await client.patch(res.api_resource, name, patch, namespace=ns,
                               patch_type="strategic" if strategic else "merge", dry_run=dry_run == "server")
        except errors.ApiError as e:
            raise with_source(e, "patching", m.source) from e
    return ref, "configured"


__all__ = ["apply", "apply_one", "with_source"]
