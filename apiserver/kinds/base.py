"""The strategy of one kind: every fact the generic API machinery asks about it.

After Kubernetes' ``pkg/registry/<group>/<kind>/strategy.go`` plus its printers: a kind's module
defines one ``Strategy`` subclass and a module-level ``STRATEGY`` instance. The registry, decoder,
patcher, table builder, discovery and OpenAPI builder never branch on a kind's name; they ask the
strategy:

- type facts: group, version, kind, plural, singular, scope, short names, categories,
  subresources, the generated model naming every field (decoding and OpenAPI), and
  ``type_facts`` (how lists and maps merge, for strategic merge patch and server-side apply);
- writes: ``defaults`` (create and update), ``prepare_for_create`` (status reset and initial
  status, server-set fields), ``prepare_for_update`` (what a spec write may not change),
  ``validate`` / ``validate_update`` (field errors), ``before_create`` (allocations that need
  the stored objects, e.g. ClusterIPs);
- reads: ``selectable_fields`` / ``field_values`` (``?fieldSelector=``), ``columns`` / ``row``
  (``kubectl get`` tables);
- deletion: graceful deletion and what blocks a delete;
- ``protobuf_messages``: the protobuf field tables kubectl's typed commands need.

Custom resources get one ``Strategy`` instance per served version, built from the CRD object
(``apiserver/kinds/customresource.py``); builtin kinds are found by ``apiserver.kinds.builtin``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from machinery.errors import StatusCause
from machinery.selectors import format_label_selector
from machinery.timefmt import age_since

from ..decode import decode as decode_body
from ..openapi.facts import Facts
from ..validation.formats import dns1123_subdomain_errors

Obj = dict[str, Any]
Causes = list[StatusCause]

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
COMMON_FIELDS = ("metadata.name", "metadata.namespace")


# ---------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Column:
    """A ``TableColumnDefinition``; ``format="name"`` marks the object-name column."""

    name: str
    type: str = "string"
    priority: int = 0
    format: str = ""
    description: str = ""

    def definition(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "format": self.format,
                "description": self.description, "priority": self.priority}


NAME = Column("Name", format="name", description=(
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"))
AGE = Column("Age", description=(
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
    "system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"))


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def age(obj: Mapping[str, Any], now: datetime) -> str:
    return age_since(meta(obj).get("creationTimestamp"), now)


# ---------------------------------------------------------------------------------- writes
@dataclass
class CreateContext:
    """What a create may consult: the time, the registry's settings (service CIDR, default
    toleration seconds, ...), the kind's stored objects and other resources' (from the watch caches)."""

    now: datetime
    settings: Any = None
    existing: Callable[[], Iterable[Obj]] = lambda: ()
    # The cluster-wide allocators kept in storage (apiserver.allocators.ServiceAllocations: Service
    # ClusterIPs and NodePorts); None where a strategy runs without a registry.
    allocations: Any = None
    dry_run: bool = False
    # The stored objects of another built-in resource by its group_resource ("ingressclasses.networking.k8s.io"):
    # admission that consults other kinds (the default IngressClass).
    stored: Callable[[str], Iterable[Obj]] = lambda group_resource: ()


@dataclass(frozen=True)
class ScalePaths:
    """Where the ``/scale`` subresource reads and writes (CRDs declare these; apps kinds use the defaults)."""

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = ".spec.selector"  # a LabelSelector object, a label map or a selector string


def _get_path(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.strip(".").split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur


def _set_path(obj: Obj, path: str, value: Any) -> None:
    parts = path.strip(".").split(".")
    cur = obj
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = cur[part] = {}
        cur = nxt
    cur[parts[-1]] = value


# ---------------------------------------------------------------------------------- the strategy
class Strategy:
    """Defaults suit a namespaced kind without spec/status rules; subclasses override facts and hooks."""

    # --- type facts
    group: str = ""
    version: str = "v1"
    kind: str = ""
    plural: str = ""
    singular: str = ""
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS
    # The generated model of the official client (kubernetes.client.models) that names every
    # field of the kind: the decoder prunes unknown fields with it, the OpenAPI builder describes it.
    model: str | None = None
    # A custom resource's OpenAPI v3 schema (its CRD version's openAPIV3Schema); None for builtins.
    crd_schema: Mapping[str, Any] | None = None
    # Whether PATCH accepts application/strategic-merge-patch+json (not for custom resources).
    strategic_merge: bool = True
    # generated model name -> JSON field name -> how it merges ("" names the type itself).
    type_facts: Mapping[str, Mapping[str, Facts]] = {}
    # protobuf message name -> field table (see apiserver/protobuf.py for the notation).
    protobuf_messages: Mapping[str, str] = {}
    # Fields besides metadata.name/namespace that ?fieldSelector= accepts.
    selectable_fields: tuple[str, ...] = ()
    columns: tuple[Column, ...] = (NAME, AGE)
    # The status a create stores for kinds whose status is written through /status only (what
    # Kubernetes' JSON shows for a fresh object: e.g. {"loadBalancer": {}}); None: none at all.
    initial_status: Obj | None = None
    scale_paths: ScalePaths = ScalePaths()
    # Subresources that write one part of the spec (pods/ephemeralcontainers): the registry builds
    # the stored object with ``prepare_for_subresource_update`` and validates it with
    # ``validate_subresource_update`` instead of the main resource's update rules.
    spec_subresources: tuple[str, ...] = ()

    # ------------------------------------------------------------------ derived facts
    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``deployments.apps`` / ``pods``: how Kubernetes names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_api_version(self) -> str:
        """The apiVersion objects are stored at (custom resources: the CRD's storage version)."""
        return self.api_version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def prefix(self) -> bytes:
        """The etcd key prefix, the same for every version of the resource."""
        return f"/registry/{self.group or 'core'}/{self.plural}/".encode()

    def key(self, namespace: str | None, name: str) -> bytes:
        if self.namespaced:
            return self.prefix + f"{namespace}/{name}".encode()
        return self.prefix + name.encode()

    def namespace_prefix(self, namespace: str | None) -> bytes:
        return self.prefix + f"{namespace}/".encode() if (self.namespaced and namespace) else self.prefix

    @property
    def all_selectable_fields(self) -> tuple[str, ...]:
        return COMMON_FIELDS + self.selectable_fields

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.api_version}/{self.plural}>"

    def from_storage(self, obj: Mapping[str, Any]) -> Obj:
        """A stored object (at ``storage_api_version``) as this version serves it. Versions that
        differ only in ``apiVersion`` (custom resources, conversion None) need nothing more; a
        builtin kind served at several versions converts here and back in ``decode``."""
        return {**obj, "apiVersion": self.api_version}

    # ------------------------------------------------------------------ names and fields
    def name_errors(self, name: str) -> list[str]:
        """Which names this kind accepts (most kinds: a DNS-1123 subdomain)."""
        return dns1123_subdomain_errors(name)

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        """The values of the selectable fields, as strings (as Kubernetes compares them)."""
        out: dict[str, str] = {}
        for path in self.all_selectable_fields:
            value = _get_path(obj, path)
            if isinstance(value, bool):
                out[path] = "true" if value else "false"
            else:
                out[path] = "" if value is None or isinstance(value, (dict, list)) else str(value)
        return out

    # ------------------------------------------------------------------ writes
    def decode(self, body: Obj) -> tuple[Obj, list[str]]:
        """Prune a request body to the kind's fields: (object, unknown field paths). Raises
        ``apiserver.decode.DecodeError`` for a value of the wrong JSON type (a 400)."""
        return decode_body(self.model, body)

    def defaults(self, obj: Obj) -> None:
        """Fill the kind's v1 defaults in place (runs on create and on every update). Never raises."""

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        """Server-set fields of a new object (and the admission defaults Kubernetes' plugins add);
        by default a status-subresource kind starts with ``initial_status`` whatever the client sent."""
        if self.has_status:
            if self.initial_status is None:
                obj.pop("status", None)
            else:
                obj["status"] = copy.deepcopy(self.initial_status)

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        """Allocations that need the stored objects (after validation, before storage)."""

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        """Allocations an update of the main resource needs (after validation, before storage;
        may run again when the write is retried, so it must be idempotent)."""

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        """A write of the main resource: by default the status stays as stored."""
        if self.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)

    def validate(self, obj: Obj) -> Causes:
        """The kind's own field errors (ObjectMeta is validated by the registry for every kind)."""
        return []

    def validate_create(self, obj: Obj) -> Causes:
        """Rules only a create must follow (e.g. pods may not be created with ephemeral containers)."""
        return []

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        """Immutable fields and other rules that compare with the stored object."""
        return []

    def validate_status_update(self, new: Obj, old: Obj) -> Causes:
        """What a write through ``/status`` must satisfy (most kinds: nothing beyond decoding)."""
        return []

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        """The object a write through one of ``spec_subresources`` stores (from the stored one)."""
        return copy.deepcopy(old)

    def validate_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Causes:
        """What a write through one of ``spec_subresources`` must satisfy."""
        return []

    def warnings(self, obj: Obj, old: Obj | None) -> list[str]:
        """``Warning`` headers a write earns besides unknown fields (e.g. deprecated settings)."""
        return []

    def generation_changed(self, new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
        """Whether a write bumps ``metadata.generation``: a change of ``spec``."""
        return new.get("spec") != old.get("spec")

    # ------------------------------------------------------------------ deletion
    def grace_period_seconds(self, obj: Obj, options: Mapping[str, Any]) -> int:
        """How long a delete waits (only pods on a node wait by default)."""
        return 0

    def deletion_blocked(self, obj: Obj) -> bool:
        """Whether something besides metadata.finalizers holds the delete (a namespace's spec.finalizers)."""
        return False

    def mark_deleting(self, obj: Obj) -> None:
        """Changes that come with a deletionTimestamp (a namespace turns Terminating)."""

    def finished_by_update(self, obj: Obj) -> bool:
        """Whether a write that left an object being deleted without finalizers removes it."""
        return not self.deletion_blocked(obj)

    # ------------------------------------------------------------------ scale
    def scale_of(self, obj: Mapping[str, Any]) -> Obj:
        """The ``autoscaling/v1`` Scale of an object."""
        paths = self.scale_paths
        m = meta(obj)
        replicas = _get_path(obj, paths.spec_replicas)
        selector: Any = _get_path(obj, paths.label_selector) if paths.label_selector else None
        if isinstance(selector, Mapping):
            selector_text = format_label_selector(
                selector if ("matchLabels" in selector or "matchExpressions" in selector)
                else {"matchLabels": dict(selector)})
        else:
            selector_text = str(selector or "")
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in m},
            "spec": {"replicas": 1 if replicas is None else replicas},
            "status": {"replicas": int(_get_path(obj, paths.status_replicas) or 0), "selector": selector_text},
        }

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        _set_path(obj, self.scale_paths.spec_replicas, replicas)

    # ------------------------------------------------------------------ tables
    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        """The cells of one object, one per column (wide ones too)."""
        return [name_of(obj), age(obj, now)]

    def row_conditions(self, obj: Mapping[str, Any]) -> list[Obj] | None:
        return None


def collect_type_facts(strategies: Iterable[Strategy], *extra: Mapping[str, Mapping[str, Facts]]
                       ) -> dict[str, dict[str, Facts]]:
    """One table of every type's merge facts (a shared type's facts are the same from every kind)."""
    out: dict[str, dict[str, Facts]] = {}
    for table in [*extra, *(s.type_facts for s in strategies)]:
        for type_name, fields in table.items():
            out.setdefault(type_name, {}).update(fields)
    return out


__all__ = [
    "AGE", "COMMON_FIELDS", "Causes", "Column", "CreateContext", "NAME", "Obj", "ScalePaths", "Strategy",
    "VERBS", "age", "collect_type_facts", "meta", "name_of", "spec", "status",
]
