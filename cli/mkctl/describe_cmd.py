"""``mkctl describe``: fetch an object plus what kubectl shows with it, then format it.

Data flow: arguments -> objects (by name, or all matching ``-l`` in the namespace) -> for each:
its events (``fieldSelector=involvedObject.name=..,involvedObject.namespace=..,involvedObject.uid=..``
like kubectl), a Deployment's ReplicaSets, a Service's Endpoints, a Node's pods -> ``describe``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import typer

from machinery import errors
from machinery.discovery import ResourceInfo

from .app import app, options_of
from .describe import Related, describe
from .printing import no_resources_message
from .session import Session, print_error, run_command
from .targets import fetch_object, fetch_objects, parse_targets, scope


@app.command("describe")
def describe_command(
    ctx: typer.Context,
    args: Annotated[list[str] | None, typer.Argument(help="TYPE [NAME...] or TYPE/NAME...")] = None,
    selector: Annotated[str | None, typer.Option("--selector", "-l")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces/--no-all-namespaces", "-A")] = False,
) -> None:
    """Show details of a specific resource or group of resources."""
    run_command(options_of(ctx), lambda s: describe_objects(s, list(args or []), selector=selector,
                                                             all_namespaces=all_namespaces))


async def describe_objects(session: Session, args: list[str], *, selector: str | None = None,
                           all_namespaces: bool = False) -> int:
    targets = await parse_targets(session, args, verb="describe")
    texts: list[str] = []
    failed = False
    for t in targets:
        ns = scope(session, t.res, all_namespaces=all_namespaces)
        objects: list[dict[str, Any]] = []
        if t.names:
            for name in t.names:
                try:
                    objects.append(await fetch_object(session, t.res, ns, name))
                except errors.NotFoundError as e:
                    print_error(e, server=session.config.server)
                    failed = True
        else:
            objects, _ = await fetch_objects(session, t.res, ns, label_selector=selector)
        for obj in objects:
            related = await related_objects(session, t.res, obj)
            texts.append(describe(obj, related, now=datetime.now(timezone.utc), namespaced=t.res.namespaced))
    if texts:
        typer.echo("\n\n".join(texts), nl=False)
    elif not failed:
        typer.echo(no_resources_message(session.namespace if not all_namespaces else None), err=True)
    return 1 if failed else 0


async def related_objects(session: Session, res: ResourceInfo, obj: dict[str, Any]) -> Related:
    meta = obj.get("metadata") or {}
    name, ns, uid = str(meta.get("name") or ""), meta.get("namespace") or None, str(meta.get("uid") or "")
    related = Related(events=await _events(session, name=name, namespace=ns, uid=uid))
    client = session.client
    if res.kind == "Deployment" and ns:
        labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or None
        listed = await client.list("replicasets", namespace=ns, label_selector=selector)
        related.replica_sets = [rs for rs in listed.get("items") or []
                                if any(r.get("uid") == uid for r in (rs.get("metadata") or {}).get("ownerReferences") or [])]
    elif res.kind == "Service" and ns:
        try:
            related.endpoints = await client.get("endpoints", name, namespace=ns)
        except errors.NotFoundError:
            related.endpoints = None
    elif res.kind == "Node":
        listed = await client.list("pods", field_selector=f"spec.nodeName={name}")
        related.pods = [p for p in listed.get("items") or []
                        if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    return related


async def _events(session: Session, *, name: str, namespace: str | None, uid: str) -> list[dict[str, Any]]:
    terms = [f"involvedObject.name={name}"]
    if namespace:
        terms.append(f"involvedObject.namespace={namespace}")
    if uid:
        terms.append(f"involvedObject.uid={uid}")
    try:
        listed = await session.client.list("events", namespace=namespace, field_selector=",".join(terms))
    except errors.ApiError:
        return []  # kubectl describes the object even when events cannot be read
    return list(listed.get("items") or [])


__all__ = ["describe_objects", "related_objects"]
