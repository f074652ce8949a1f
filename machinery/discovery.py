"""Resource types as the server announces them, and kubectl's rules for naming them.

Role: no client hard-codes the resource list (mkctl, the gitops reconciler). Data flow: ``GET /api/v1`` and ``GET /apis`` ->
each group's preferred ``/apis/{group}/{version}`` -> ``parse_resource_list`` -> ``ResourceInfo``
list (subresources dropped) -> ``resolve`` maps what the user typed (``po``, ``pod``, ``pods``,
``Pod``, ``deployments.apps``, ``deploy.v1.apps``) to one type, core group first like kubectl's
RESTMapper; ``for_kind`` maps a manifest's ``apiVersion``/``kind`` to its type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from machinery.client import ApiClient, ApiResource


class UnknownResourceType(LookupError):
    """What the user typed names no resource type the server serves."""


@dataclass(frozen=True)
class ResourceInfo:
    plural: str
    singular: str
    kind: str
    group: str
    version: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_resource(self) -> ApiResource:
        return ApiResource(self.api_version, self.plural, self.namespaced, self.kind)

    @property
    def prefix(self) -> str:
        """``deployment.apps`` / ``pod``: the type in ``TYPE/name`` and ``TYPE "name" deleted``."""
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    def names(self) -> set[str]:
        return {self.plural, self.singular or self.kind.lower(), self.kind.lower(), *self.short_names}


def parse_resource_list(doc: Mapping[str, Any]) -> list[ResourceInfo]:
    """The top-level resources of one ``APIResourceList`` (``pods``, not ``pods/status``)."""
    group_version = str(doc.get("groupVersion") or "v1")
    group, _, version = group_version.rpartition("/")
    out: list[ResourceInfo] = []
    for r in doc.get("resources") or []:
        name = str(r.get("name") or "")
        if not name or "/" in name:
            continue
        out.append(ResourceInfo(
            plural=name, singular=str(r.get("singularName") or ""), kind=str(r.get("kind") or ""),
            group=group, version=version, namespaced=bool(r.get("namespaced")),
            short_names=tuple(r.get("shortNames") or ()), verbs=tuple(r.get("verbs") or ()),
            categories=tuple(r.get("categories") or ())))
    return out


def preferred_group_versions(group_list: Mapping[str, Any]) -> list[str]:
    """``apps/v1``, ... from an ``APIGroupList``: each group's preferred version."""
    out: list[str] = []
    for g in group_list.get("groups") or []:
        preferred = (g.get("preferredVersion") or {}).get("groupVersion")
        versions = g.get("versions") or []
        gv = preferred or (versions[0].get("groupVersion") if versions else None)
        if gv:
            out.append(str(gv))
    return out


def resolve(resources: Sequence[ResourceInfo], typed: str) -> ResourceInfo:
    """kubectl's lookup of a resource argument; raises ``UnknownResourceType``."""
    wanted = typed.strip().lower()
    if not wanted:
        raise UnknownResourceType(typed)
    for r in resources:
        if wanted in r.names():
            return r
    # resource.group or resource.version.group
    for r in resources:
        if not r.group:
            continue
        for name in r.names():
            if wanted in (f"{name}.{r.group}", f"{name}.{r.version}.{r.group}"):
                return r
    raise UnknownResourceType(typed)


def category(resources: Sequence[ResourceInfo], typed: str) -> list[ResourceInfo]:
    """The types in a category (``all``), unless a type itself has that name; [] otherwise."""
    wanted = typed.strip().lower()
    if any(wanted in r.names() for r in resources):
        return []
    return [r for r in resources if wanted in r.categories]


def for_kind(resources: Sequence[ResourceInfo], api_version: str, kind: str) -> ResourceInfo:
    """The type of a manifest; raises ``UnknownResourceType`` (kubectl: "no matches for kind")."""
    group, _, version = api_version.rpartition("/")
    for r in resources:
        if r.kind == kind and r.group == group and r.version == version:
            return r
    raise UnknownResourceType(kind)


def all_group_versions(group_list: Mapping[str, Any]) -> list[str]:
    """Every ``group/version`` of an ``APIGroupList``, each group's preferred one first."""
    out: list[str] = []
    for g in group_list.get("groups") or []:
        preferred = (g.get("preferredVersion") or {}).get("groupVersion")
        served = [str(v.get("groupVersion")) for v in g.get("versions") or [] if v.get("groupVersion")]
        out += [gv for gv in [preferred, *served] if gv and gv not in out]
    return out


async def discover(client: ApiClient, *, all_versions: bool = False) -> list[ResourceInfo]:
    """Read the server's discovery documents (core group first, as kubectl orders them).

    By default each group's preferred version only (what ``resolve`` should find, as kubectl);
    ``all_versions``: every served version too, so ``for_kind`` finds ``autoscaling/v1`` manifests
    while ``v2`` is preferred.
    """
    core = await client.request("GET", "/api/v1")
    resources = parse_resource_list(core if isinstance(core, dict) else {})
    groups = await client.request("GET", "/apis")
    group_list = groups if isinstance(groups, dict) else {}
    pick = all_group_versions if all_versions else preferred_group_versions
    for gv in pick(group_list):
        doc = await client.request("GET", f"/apis/{gv}")
        if isinstance(doc, dict):
            resources += parse_resource_list({**doc, "groupVersion": doc.get("groupVersion") or gv})
    return resources


__all__ = ["ResourceInfo", "UnknownResourceType", "all_group_versions", "category", "discover", "for_kind", "parse_resource_list",
           "preferred_group_versions", "resolve"]
