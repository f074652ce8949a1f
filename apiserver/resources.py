"""The resources the API serves, derived from the models' type facts, and the URL parser.

Data flow: ``models.KINDS`` -> one ``Resource`` per kind (key prefix in etcd, field selectors,
verbs) -> ``ResourceTable`` looked up by (group, version, plural) when a request arrives.
``parse_path`` turns a request path into a ``RequestInfo`` like Kubernetes' RequestInfoFactory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from machinery.models import KINDS, TypeFacts

_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
# Which fields each kind can be selected by (?fieldSelector=), as the Kubernetes strategies say.
_FIELDS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Event": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
              "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
              "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "Namespace": ("status.phase",),
    "Node": ("spec.unschedulable",),
    "ReplicaSet": ("status.replicas",),
    "Service": ("spec.clusterIP", "spec.type"),
}
# Kinds whose status is written only through the /status subresource.
_STATUS_RESET_ON_CREATE = {"Pod", "Deployment", "ReplicaSet", "Service", "Ingress"}

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    model: type[TypeFacts]
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...]
    subresources: tuple[str, ...]
    categories: tuple[str, ...]
    field_labels: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how Kubernetes names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def prefix(self) -> bytes:
        return f"/registry/{self.group or 'core'}/{self.plural}/".encode()

    def key(self, namespace: str | None, name: str) -> bytes:
        if self.namespaced:
            return self.prefix + f"{namespace}/{name}".encode()
        return self.prefix + name.encode()

    def namespace_prefix(self, namespace: str | None) -> bytes:
        return self.prefix + f"{namespace}/".encode() if (self.namespaced and namespace) else self.prefix

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def resets_status_on_create(self) -> bool:
        return self.kind in _STATUS_RESET_ON_CREATE

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The values of this kind's selectable fields, as strings (as Kubernetes compares them)."""
        out: dict[str, str] = {}
        for path in _COMMON_FIELDS + self.field_labels:
            cur: Any = obj
            for part in path.split("."):
                cur = cur.get(part) if isinstance(cur, Mapping) else None
            if isinstance(cur, bool):
                out[path] = "true" if cur else "false"
            elif isinstance(cur, Mapping) and path == "source":
                out[path] = str(cur.get("component") or "")
            else:
                out[path] = "" if cur is None else str(cur)
        return out

    @property
    def selectable_fields(self) -> tuple[str, ...]:
        return _COMMON_FIELDS + self.field_labels


def _resource(model: type[TypeFacts]) -> Resource:
    return Resource(
        model=model, group=model.group, version=model.version, kind=model.kind,
        plural=model.plural, singular=model.singular, namespaced=model.namespaced,
        short_names=model.short_names, subresources=model.subresources,
        categories=model.categories, field_labels=_FIELDS.get(model.kind, ()),
    )


class ResourceTable:
    def __init__(self, resources: list[Resource]) -> None:
        self.all = resources
        self._by_path = {(r.group, r.version, r.plural): r for r in resources}
        self._by_kind = {r.kind: r for r in resources}

    def lookup(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, kind: str) -> Resource | None:
        return self._by_kind.get(kind)

    def group_versions(self) -> dict[str, list[Resource]]:
        """``{"v1": [...], "apps/v1": [...]}`` in declaration order."""
        out: dict[str, list[Resource]] = {}
        for r in self.all:
            out.setdefault(r.api_version, []).append(r)
        return out


def default_resources() -> ResourceTable:
    return ResourceTable([_resource(m) for m in KINDS])


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
