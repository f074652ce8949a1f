"""``mkctl get``: list or read objects and print them like kubectl, optionally watching for changes.

Data flow: arguments -> ``Target`` list -> default/wide output: the server's Table per type
(``fetch_table``) -> ``render_tables``; ``-o yaml|json|name``: the objects themselves. ``-w``:
the same first output, then the watch from the list's resourceVersion (Tables per event, one
line each; objects for the other formats) until Ctrl-C or ``--watch-timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from machinery import errors

from .app import app, options_of
from .printing import TableBlock, no_resources_message, render_objects, render_tables, table_lines, tabwrite, \
    TABLE_MINWIDTH, TABLE_PADDING, to_json, to_yaml
from .session import CliError, Session, print_error, run_command
from .targets import TABLE_ACCEPT, Target, fetch_object, fetch_objects, fetch_table, parse_targets, scope

OUTPUTS = ("", "wide", "yaml", "json", "name")


@dataclass
class GetOptions:
    output: str = ""
    label_selector: str | None = None
    field_selector: str | None = None
    all_namespaces: bool = False
    watch: bool = False
    watch_only: bool = False
    show_labels: bool = False
    no_headers: bool = False
    ignore_not_found: bool = False
    output_watch_events: bool = False
    watch_timeout: float | None = None
    show_managed_fields: bool = False


def _shown(obj: dict[str, Any], opts: GetOptions) -> dict[str, Any]:
    """Like kubectl: ``metadata.managedFields`` only with ``--show-managed-fields``."""
    meta = obj.get("metadata")
    if opts.show_managed_fields or not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


@app.command("get")
def get_command(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(help="TYPE[,TYPE...] [NAME...] or TYPE/NAME...")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="wide|yaml|json|name")] = "",
    selector: Annotated[str | None, typer.Option("--selector", "-l", help="Label selector.")] = None,
    field_selector: Annotated[str | None, typer.Option("--field-selector", help="Field selector.")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces/--no-all-namespaces", "-A")] = False,
    watch: Annotated[bool, typer.Option("--watch/--no-watch", "-w", help="Watch for changes after listing.")] = False,
    watch_only: Annotated[bool, typer.Option("--watch-only/--no-watch-only", help="Watch without listing first.")] = False,
    show_labels: Annotated[bool, typer.Option("--show-labels/--no-show-labels")] = False,
    no_headers: Annotated[bool, typer.Option("--no-headers/--no-no-headers")] = False,
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found/--no-ignore-not-found")] = False,
    output_watch_events: Annotated[bool, typer.Option("--output-watch-events/--no-output-watch-events")] = False,
    watch_timeout: Annotated[float | None, typer.Option("--watch-timeout", hidden=True,
                                                        help="Stop watching after this many seconds.")] = None,
    show_managed_fields: Annotated[bool, typer.Option(
        "--show-managed-fields/--no-show-managed-fields",
        help="Keep metadata.managedFields when printing objects in JSON or YAML.")] = False,
) -> None:
    """Display one or many resources."""
    opts = GetOptions(output=output, label_selector=selector, field_selector=field_selector,
                      all_namespaces=all_namespaces, watch=watch or watch_only, watch_only=watch_only,
                      show_labels=show_labels, no_headers=no_headers, ignore_not_found=ignore_not_found,
                      output_watch_events=output_watch_events, watch_timeout=watch_timeout,
                      show_managed_fields=show_managed_fields)
    run_command(options_of(ctx), lambda s: get(s, list(args or []), opts))


async def get(session: Session, args: list[str], opts: GetOptions) -> int:
    if opts.output not in OUTPUTS:
        raise CliError(f'error: unable to match a printer suitable for the output format "{opts.output}", '
                       f'allowed formats are: json,name,wide,yaml')
    targets = await parse_targets(session, args, verb="get")
    if opts.all_namespaces and any(t.names for t in targets):
        raise CliError("error: a resource cannot be retrieved by name across all namespaces")
    if opts.watch:
        if len(targets) > 1:
            raise CliError("error: you may only specify a single resource type")
        return await _watch(session, targets[0], opts)
    if opts.output in ("", "wide"):
        return await _get_tables(session, targets, opts)
    return await _get_objects(session, targets, opts)


async def _table_block(session: Session, target: Target, opts: GetOptions,
                       failures: list[errors.ApiError]) -> TableBlock | None:
    res = target.res
    ns = scope(session, res, all_namespaces=opts.all_namespaces)
    if not target.names:
        table = await fetch_table(session, res, ns, label_selector=opts.label_selector,
                                  field_selector=opts.field_selector)
        return TableBlock(table, res.prefix, res.namespaced)
    first: dict[str, Any] | None = None
    rows: list[Any] = []
    for name in target.names:
        try:
            table = await fetch_table(session, res, ns, name)
        except errors.NotFoundError as e:
            if not opts.ignore_not_found:
                failures.append(e)
            continue
        first = first or table
        rows += table.get("rows") or []
    return TableBlock(first, res.prefix, res.namespaced, rows) if first else None


def _empty_namespace(session: Session, targets: list[Target], opts: GetOptions) -> str | None:
    if opts.all_namespaces or not any(t.res.namespaced for t in targets):
        return None
    return session.namespace


async def _get_tables(session: Session, targets: list[Target], opts: GetOptions) -> int:
    failures: list[errors.ApiError] = []
    blocks = [b for t in targets if (b := await _table_block(session, t, opts, failures)) is not None]
    text = render_tables(blocks, wide=opts.output == "wide", all_namespaces=opts.all_namespaces,
                         show_kind=len(targets) > 1, show_labels=opts.show_labels, headers=not opts.no_headers)
    if text:
        typer.echo(text, nl=False)
    elif not failures and not any(t.names for t in targets):
        typer.echo(no_resources_message(_empty_namespace(session, targets, opts)), err=True)
    for failure in failures:
        print_error(failure, server=session.config.server)
    return 1 if failures else 0


async def _get_objects(session: Session, targets: list[Target], opts: GetOptions) -> int:
    failures: list[errors.ApiError] = []
    objects: list[dict[str, Any]] = []
    prefixes: list[str] = []
    for t in targets:
        ns = scope(session, t.res, all_namespaces=opts.all_namespaces)
        if t.names:
            found = []
            for name in t.names:
                try:
                    found.append(await fetch_object(session, t.res, ns, name))
                except errors.NotFoundError as e:
                    if not opts.ignore_not_found:
                        failures.append(e)
        else:
            found, _ = await fetch_objects(session, t.res, ns, label_selector=opts.label_selector,
                                           field_selector=opts.field_selector)
        objects += found
        prefixes += [t.res.prefix] * len(found)
    single = len(targets) == 1 and len(targets[0].names) == 1
    if opts.output == "name":
        for prefix, obj in zip(prefixes, objects):
            typer.echo(f"{prefix}/{(obj.get('metadata') or {}).get('name', '')}")
        if not objects and not failures and not any(t.names for t in targets):
            typer.echo(no_resources_message(_empty_namespace(session, targets, opts)), err=True)
    elif objects or not single:
        typer.echo(render_objects([_shown(o, opts) for o in objects], opts.output, single=single), nl=False)
    for failure in failures:
        print_error(failure, server=session.config.server)
    return 1 if failures else 0


# ------------------------------------------------------------------------------- watch
async def _watch(session: Session, target: Target, opts: GetOptions) -> int:
    timeout = opts.watch_timeout or session.request_timeout
    try:
        if timeout:
            await asyncio.wait_for(_watch_forever(session, target, opts, math.ceil(timeout)), timeout)
        else:
            await _watch_forever(session, target, opts, None)
    except asyncio.TimeoutError:
        pass
    return 0


def _name_selector(target: Target, opts: GetOptions) -> str | None:
    if len(target.names) > 1:
        raise CliError("error: watch is only supported on individual resources and resource collections, "
                       f"but {len(target.names)} resources were found")
    by_name = f"metadata.name={target.names[0]}" if target.names else None
    return ",".join(x for x in (opts.field_selector, by_name) if x) or None


async def _watch_forever(session: Session, target: Target, opts: GetOptions, timeout_seconds: int | None) -> None:
    res = target.res
    ns = scope(session, res, all_namespaces=opts.all_namespaces)
    field_selector = _name_selector(target, opts)
    tables = opts.output in ("", "wide")
    if tables:
        await _watch_tables(session, target, opts, ns, field_selector, timeout_seconds)
        return
    items, rv = await fetch_objects(session, res, ns, label_selector=opts.label_selector,
                                    field_selector=field_selector)
    if not opts.watch_only:
        for obj in items:
            _print_object_event("ADDED", obj, res.prefix, opts)
    stream = session.client.watch(res.api_resource, namespace=ns, label_selector=opts.label_selector,
                                  field_selector=field_selector, resource_version=rv,
                                  timeout_seconds=timeout_seconds)
    async with stream:
        async for etype, obj in stream:
            if etype != "BOOKMARK":
                _print_object_event(etype, obj, res.prefix, opts)


def _print_object_event(etype: str, obj: dict[str, Any], prefix: str, opts: GetOptions) -> None:
    if opts.output == "name":
        name = f"{prefix}/{(obj.get('metadata') or {}).get('name', '')}"
        typer.echo(f"{etype}\t{name}" if opts.output_watch_events else name)
        return
    obj = _shown(obj, opts)
    doc: Any = {"type": etype, "object": obj} if opts.output_watch_events else obj
    typer.echo(to_json(doc) if opts.output == "json" else "---\n" + to_yaml(doc), nl=False)


async def _watch_tables(session: Session, target: Target, opts: GetOptions, ns: str | None,
                        field_selector: str | None, timeout_seconds: int | None) -> None:
    res = target.res
    table = await fetch_table(session, res, ns, label_selector=opts.label_selector, field_selector=field_selector)
    rv = str((table.get("metadata") or {}).get("resourceVersion") or "")
    header_done = opts.no_headers
    if not opts.watch_only and table.get("rows"):
        _echo_rows(TableBlock(table, res.prefix, res.namespaced), "ADDED", opts, headers=True)
        header_done = True
    elif not opts.watch_only and not table.get("rows"):
        typer.echo(no_resources_message(None if opts.all_namespaces or not res.namespaced else ns), err=True)
    stream = session.client.watch(res.api_resource, namespace=ns, label_selector=opts.label_selector,
                                  field_selector=field_selector, resource_version=rv,
                                  timeout_seconds=timeout_seconds, accept=TABLE_ACCEPT)
    async with stream:
        async for etype, event_table in stream:
            if etype == "BOOKMARK":
                continue
            _echo_rows(TableBlock(event_table, res.prefix, res.namespaced), etype, opts, headers=not header_done)
            header_done = True


def _echo_rows(block: TableBlock, etype: str, opts: GetOptions, *, headers: bool) -> None:
    lines = table_lines(block, wide=opts.output == "wide", all_namespaces=opts.all_namespaces,
                        show_labels=opts.show_labels, headers=headers)
    if opts.output_watch_events:
        lines = [("EVENT\t" if headers and i == 0 else f"{etype}\t") + line for i, line in enumerate(lines)]
    typer.echo(tabwrite("\n".join(lines) + "\n", minwidth=TABLE_MINWIDTH, padding=TABLE_PADDING), nl=False)


__all__ = ["GetOptions", "get"]
