"""The resources the API serves (kind strategies, builtin and custom) and the URL parser.

Data flow: ``apiserver.kinds.builtin()`` (and, at run time, one strategy per served version of
each established CustomResourceDefinition) -> ``ResourceTable`` looked up by
(group, version, plural) when a request arrives. The table changes when CRDs come and go;
``generation`` counts those changes so discovery and OpenAPI documents know when to rebuild.
``parse_path`` turns a request path into a ``RequestInfo`` like Kubernetes' RequestInfoFactory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .kinds import builtin
from .kinds.base import Strategy

Resource = Strategy  # what the registry and handlers call a served resource


class ResourceTable:
    def __init__(self, resources: Iterable[Strategy]) -> None:
        self._all: list[Strategy] = []
        self._by_path: dict[tuple[str, str, str], Strategy] = {}
        self.generation = 0
        for r in resources:
            self.add(r)

    @property
    def all(self) -> list[Strategy]:
        return list(self._all)

    def add(self, resource: Strategy) -> None:
        """Serve ``resource`` (replacing one at the same group/version/plural)."""
        path = (resource.group, resource.version, resource.plural)
        old = self._by_path.get(path)
        if old is not None:
            self._all[self._all.index(old)] = resource
        else:
            self._all.append(resource)
        self._by_path[path] = resource
        self.generation += 1

    def remove(self, group: str, version: str, plural: str) -> Strategy | None:
        resource = self._by_path.pop((group, version, plural), None)
        if resource is not None:
            self._all.remove(resource)
            self.generation += 1
        return resource

    def lookup(self, group: str, version: str, plural: str) -> Strategy | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, kind: str, group: str | None = None) -> Strategy | None:
        for r in self._all:
            if r.kind == kind and (group is None or r.group == group):
                return r
        return None

    def versions_of(self, group: str, plural: str) -> list[Strategy]:
        """Every served version of one resource (custom resources may have several)."""
        return [r for r in self._all if r.group == group and r.plural == plural]

    def group_versions(self) -> dict[str, list[Strategy]]:
        """``{"v1": [...], "apps/v1": [...]}``: core first, then groups in the order they were added."""
        out: dict[str, list[Strategy]] = {}
        for r in self._all:
            out.setdefault(r.api_version, []).append(r)
        return out


def default_resources() -> ResourceTable:
    return ResourceTable(builtin())


@dataclass(frozen=True)
class RequestInfo:
    """What a resource request path names (``/apis/apps/v1/namespaces/ns/deployments/x/scale``)."""

    group: str
    version: str
    plural: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_path(path: str) -> RequestInfo | None:
    """Parse a resource path; None when it is not one (discovery, health, unknown prefixes)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace: str | None = None
    # /namespaces/{ns}/{resource}... names a namespaced resource; /namespaces/{name}[/sub] the namespace.
    if rest[0] == "namespaces" and len(rest) >= 3 and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    subresource = "/".join(rest[2:]) if len(rest) > 2 else None
    if subresource is not None and "/" in subresource:
        return None
    return RequestInfo(group, version, plural, namespace, name, subresource)
