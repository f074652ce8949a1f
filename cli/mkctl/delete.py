"""``mkctl delete``: by name, by ``-f`` manifests, by ``-l`` selector or ``--all``, then wait.

Data flow: arguments / manifests / a list by selector -> ``(type, namespace, name)`` list ->
DELETE each with ``DeleteOptions`` (``--grace-period``, ``--cascade`` as propagationPolicy)
-> print ``deployment.apps "nginx" deleted`` -> with ``--wait`` (the default) poll each object
until it is gone (or replaced: another uid) or ``--timeout`` passes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Annotated

import typer

from machinery import errors
from machinery.discovery import ResourceInfo

from .app import app, options_of
from .manifests import load
from .session import CliError, Session, parse_duration, print_error, run_command
from .targets import fetch_objects, parse_targets, scope

CASCADE = {"background": "Background", "true": "Background", "foreground": "Foreground",
           "orphan": "Orphan", "false": "Orphan"}
DEFAULT_WAIT_S = 60.0


@dataclass
class DeleteOptions:
    filenames: list[str]
    recursive: bool = False
    selector: str | None = None
    all: bool = False
    all_namespaces: bool = False
    grace_period: int = -1
    cascade: str = "background"
    wait: bool = True
    timeout: float = 0.0
    ignore_not_found: bool = False
    force: bool = False
    now: bool = False


@dataclass(frozen=True)
class Victim:
    res: ResourceInfo
    namespace: str | None
    name: str


@app.command("delete")
def delete_command(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(help="TYPE[,TYPE] NAME... or TYPE/NAME...")] = None,
    filename: Annotated[list[str] | None, typer.Option("--filename", "-f")] = None,
    recursive: Annotated[bool, typer.Option("--recursive/--no-recursive", "-R")] = False,
    selector: Annotated[str | None, typer.Option("--selector", "-l")] = None,
    all_: Annotated[bool, typer.Option("--all/--no-all", help="Delete all resources of the types.")] = False,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces/--no-all-namespaces", "-A")] = False,
    grace_period: Annotated[int, typer.Option("--grace-period", help="Seconds; -1: the object's default.")] = -1,
    cascade: Annotated[str, typer.Option("--cascade", help="background|foreground|orphan")] = "background",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait until the objects are gone.")] = True,
    timeout: Annotated[str, typer.Option("--timeout", help="How long to wait (0: 60s).")] = "0s",
    ignore_not_found: Annotated[bool, typer.Option("--ignore-not-found/--no-ignore-not-found")] = False,
    force: Annotated[bool, typer.Option("--force/--no-force", help="Delete immediately (with --grace-period=0).")] = False,
    now: Annotated[bool, typer.Option("--now/--no-now", help="Same as --grace-period=1.")] = False,
) -> None:
    """Delete resources by file names, stdin, resources and names, or by resources and label selector."""
    opts = DeleteOptions(filenames=list(filename or []), recursive=recursive, selector=selector, all=all_,
                         all_namespaces=all_namespaces, grace_period=grace_period, cascade=cascade, wait=wait,
                         ignore_not_found=ignore_not_found, force=force, now=now)
    try:
        opts.timeout = parse_duration(timeout)
    except CliError as e:
        print_error(e, server="")
        raise typer.Exit(1)
    run_command(options_of(ctx), lambda s: delete(s, list(args or []), opts))


async def _victims(session: Session, args: list[str], opts: DeleteOptions) -> list[Victim]:
    if opts.filenames:
        if args:
            raise CliError("error: there is no need to specify a resource type as a separate argument when "
                           "passing arguments in resource/name form")
        out: list[Victim] = []
        for m in load(opts.filenames, recursive=opts.recursive):
            res = await session.for_manifest(m.obj, m.source)
            out.append(Victim(res, session.namespace_for(res, m.obj), m.name))
        return out
    if not args:
        raise CliError("error: You must provide one or more resources by argument or filename.")
    targets = await parse_targets(session, args, verb="delete")
    out = []
    for t in targets:
        ns = scope(session, t.res, all_namespaces=opts.all_namespaces)
        if t.names:
            if opts.all or opts.selector:
                raise CliError("error: name cannot be provided when a selector is specified")
            out += [Victim(t.res, ns, name) for name in t.names]
        elif opts.all or opts.selector:
            items, _ = await fetch_objects(session, t.res, ns, label_selector=opts.selector)
            out += [Victim(t.res, (i.get("metadata") or {}).get("namespace") or ns,
                           str((i.get("metadata") or {}).get("name"))) for i in items]
        else:
            raise CliError("error: resource(s) were provided, but no name was specified")
    return out


def _grace(opts: DeleteOptions) -> int | None:
    if opts.now:
        return 1
    if opts.force and opts.grace_period < 0:
        return 0
    return opts.grace_period if opts.grace_period >= 0 else None


async def delete(session: Session, args: list[str], opts: DeleteOptions) -> int:
    policy = CASCADE.get(opts.cascade.lower())
    if policy is None:
        raise CliError(f'error: invalid cascade value ({opts.cascade}). Must be "background", "foreground", '
                       f'or "orphan".')
    victims = await _victims(session, args, opts)
    if not victims:
        typer.echo("No resources found", err=True)
        return 0
    grace = _grace(opts)
    if opts.force and grace == 0:
        typer.echo("Warning: Immediate deletion does not wait for confirmation that the running resource has "
                   "been terminated. The resource may continue to run on the cluster indefinitely.", err=True)
    failed = False
    deleted: list[tuple[Victim, str]] = []
    for v in victims:
        try:
            gone = await session.client.delete(v.res.api_resource, v.name, namespace=v.namespace,
                                               grace_period_seconds=grace, propagation_policy=policy)
        except errors.NotFoundError as e:
            if not opts.ignore_not_found:
                print_error(e, server=session.config.server)
                failed = True
            continue
        except errors.ApiError as e:
            print_error(e, server=session.config.server)
            failed = True
            continue
        verb = "force deleted" if opts.force and grace == 0 else "deleted"
        typer.echo(f'{v.res.prefix} "{v.name}" {verb}')
        deleted.append((v, str((gone.get("metadata") or {}).get("uid") or "")))
    if opts.wait and deleted:
        if not await _wait_gone(session, deleted, timeout=opts.timeout or DEFAULT_WAIT_S):
            failed = True
    return 1 if failed else 0


async def _wait_gone(session: Session, deleted: list[tuple[Victim, str]], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for v, uid in deleted:
        while True:
            try:
                live = await session.client.get(v.res.api_resource, v.name, namespace=v.namespace)
            except errors.NotFoundError:
                break
            if uid and (live.get("metadata") or {}).get("uid") != uid:
                break
            if time.monotonic() >= deadline:
                typer.echo(f"error: timed out waiting for the condition on {v.res.plural}/{v.name}", err=True)
                return False
            await asyncio.sleep(0.2)
    return True


__all__ = ["DeleteOptions", "delete"]
