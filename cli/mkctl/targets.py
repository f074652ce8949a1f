"""Shared I/O helpers of the verbs: resource arguments, server Tables, object fetches.

Data flow: ``TYPE[,TYPE] [NAME...]`` or ``TYPE/NAME...`` arguments -> ``parse_targets`` ->
``Target`` (a discovered type and the names asked for) -> ``fetch_table`` (the server's
``meta.k8s.io`` Table: the client's ``request`` escape hatch with the Table ``Accept`` header)
or ``fetch_objects`` (plain objects, ``apiVersion``/``kind`` filled in like kubectl does).
A watch in Table form is ``ApiClient.watch(..., accept=TABLE_ACCEPT)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from machinery.client import ApiClient
from machinery.discovery import ResourceInfo, category

from .printing import with_type
from .session import CliError, Session

TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


@dataclass
class Target:
    res: ResourceInfo
    names: list[str] = field(default_factory=list)


async def parse_targets(session: Session, args: list[str], *, verb: str) -> list[Target]:
    """kubectl's resource arguments: ``pods x y``, ``pods,svc``, ``pod/x deploy/y``."""
    if not args:
        raise CliError(f'error: You must specify the type of resource to {verb}. Use "mkctl api-resources" '
                       f'for a complete list of supported resources.')
    if any("/" in a for a in args):
        if not all("/" in a for a in args):
            raise CliError("error: there is no need to specify a resource type as a separate argument when "
                           "passing arguments in resource/name form (e.g. 'mkctl get resource/<resource_name>' "
                           "instead of 'mkctl get resource resource/<resource_name>'")
        targets: list[Target] = []
        for a in args:
            typed, _, name = a.partition("/")
            res = await session.resolve(typed)
            found = next((t for t in targets if t.res == res), None)
            if found is None:
                targets.append(Target(res, [name]))
            else:
                found.names.append(name)
        return targets
    types = [t for t in args[0].split(",") if t]
    out: list[Target] = []
    for typed in types:
        in_category = category(await session.resources(), typed)
        for res in in_category or [await session.resolve(typed)]:
            if all(t.res != res for t in out):
                out.append(Target(res, list(args[1:])))
    return out


def scope(session: Session, res: ResourceInfo, *, all_namespaces: bool) -> str | None:
    """The namespace of a request: None for cluster-scoped types and for ``-A``."""
    if not res.namespaced or all_namespaces:
        return None
    return session.namespace


async def fetch_table(session: Session, res: ResourceInfo, namespace: str | None, name: str | None = None, *,
                      label_selector: str | None = None, field_selector: str | None = None) -> dict[str, Any]:
    path = ApiClient.path(res.api_resource, namespace, name)
    params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None}
    table = await session.client.request("GET", path, params=params, headers={"Accept": TABLE_ACCEPT})
    if not isinstance(table, dict) or table.get("kind") != "Table":
        raise CliError(f"error: the server did not answer {path} with a Table")
    return table


async def fetch_objects(session: Session, res: ResourceInfo, namespace: str | None, *,
                        label_selector: str | None = None,
                        field_selector: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The items of a list (typed like kubectl prints them) and the list's resourceVersion."""
    listed = await session.client.list(res.api_resource, namespace=namespace, label_selector=label_selector,
                                       field_selector=field_selector)
    items = [with_type(i, api_version=res.api_version, kind=res.kind) for i in listed.get("items") or []]
    return items, str((listed.get("metadata") or {}).get("resourceVersion") or "")


async def fetch_object(session: Session, res: ResourceInfo, namespace: str | None, name: str) -> dict[str, Any]:
    obj = await session.client.get(res.api_resource, name, namespace=namespace)
    return with_type(obj, api_version=res.api_version, kind=res.kind)


__all__ = ["TABLE_ACCEPT", "Target", "fetch_object", "fetch_objects", "fetch_table", "parse_targets", "scope"]
