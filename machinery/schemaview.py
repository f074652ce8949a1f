"""A read-only view of an OpenAPI v3 schema: how each field of an object merges.

Role: strategic merge patch (``machinery.patch``), server-side apply (``machinery.managedfields``)
and ``mkctl apply`` all need the same per-field facts Kubernetes publishes in its OpenAPI
documents: is this a struct, a map, a list or a scalar; is a list ``atomic``, a ``set`` or a
``map`` keyed by some fields (``x-kubernetes-list-type``, ``x-kubernetes-list-map-keys``); how a
strategic merge patch treats it (``x-kubernetes-patch-strategy``, ``x-kubernetes-patch-merge-key``);
is a struct or map atomic (``x-kubernetes-map-type``); what a key field defaults to.

Data flow: a schema node (a component schema of an ``/openapi/v3`` document, or a CRD's
``openAPIV3Schema``) plus the document's named schemas -> ``Schema`` -> ``field(name)`` /
``items()`` step down, following ``$ref`` and the ``allOf: [{$ref}]`` form Kubernetes uses for
references with a description. A missing or empty schema is ``ANY``: maps merge key by key and
lists are replaced whole, as Kubernetes does for fields it has no schema for.

Pure and I/O-free; the API server builds its schemas from the kind strategies, mkctl reads them
from the server's ``/openapi/v3``.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

Shape = Literal["struct", "map", "list", "scalar", "any"]
_EMPTY: Mapping[str, Any] = {}
_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean"})
GVK_EXTENSION = "x-kubernetes-group-version-kind"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


class Schema:
    """One schema node with its references resolved; cheap to create, never mutates its input."""

    __slots__ = ("node", "defs")

    def __init__(self, node: Mapping[str, Any] | None, defs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.defs = defs or _EMPTY
        self.node = self._resolve(node or _EMPTY)

    def _resolve(self, node: Mapping[str, Any]) -> Mapping[str, Any]:
        # {"$ref": ...} or {"allOf": [{"$ref": ...}], "description": ...}; follow a few hops at most.
        for _ in range(8):
            ref = node.get("$ref")
            if ref is None:
                all_of = node.get("allOf")
                if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
                    inner = all_of[0]
                    extras = {k: v for k, v in node.items() if k != "allOf"}
                    node = {**inner, **extras} if extras else inner
                    continue
                return node
            target = self.defs.get(_ref_name(str(ref)))
            if target is None:
                return _EMPTY
            extras = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **extras} if extras else target
        return node

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> Shape:
        node = self.node
        if node.get("x-kubernetes-int-or-string"):
            return "scalar"
        kind = node.get("type")
        if kind == "array" or "items" in node:
            return "list"
        if "properties" in node and kind in (None, "object"):
            return "struct"
        if kind == "object" or "additionalProperties" in node:
            additional = node.get("additionalProperties")
            return "any" if additional in (None, True) and not node.get("properties") else "map"
        if kind in _SCALAR_TYPES:
            return "scalar"
        return "any"

    @property
    def empty(self) -> bool:
        return not self.node

    def has_field(self, name: str) -> bool:
        """Whether ``name`` is a declared property (a struct field, not a map key)."""
        props = self.node.get("properties")
        return isinstance(props, Mapping) and name in props

    def field(self, name: str) -> "Schema":
        """The schema of member ``name``: a declared property, else the map's value schema, else ANY."""
        props = self.node.get("properties")
        if isinstance(props, Mapping) and name in props:
            return Schema(props[name], self.defs)
        additional = self.node.get("additionalProperties")
        if isinstance(additional, Mapping):
            return Schema(additional, self.defs)
        return Schema(None, self.defs)

    def items(self) -> "Schema":
        items = self.node.get("items")
        return Schema(items if isinstance(items, Mapping) else None, self.defs)

    def at(self, path: tuple[str, ...]) -> "Schema":
        """The schema at a path of field names; a list field is followed into its elements
        (``("spec", "containers", "env")`` is the env list of every container)."""
        cur: Schema = self
        for name in path:
            if cur.shape == "list":
                cur = cur.items()
            cur = cur.field(name)
        return cur

    def property_names(self) -> tuple[str, ...]:
        props = self.node.get("properties")
        return tuple(props) if isinstance(props, Mapping) else ()

    # ------------------------------------------------------------------ Kubernetes extensions
    @property
    def list_type(self) -> str:
        """``atomic`` (the default), ``set`` or ``map``."""
        value = self.node.get("x-kubernetes-list-type")
        if value in ("atomic", "set", "map"):
            return str(value)
        return "atomic"

    @property
    def list_map_keys(self) -> tuple[str, ...]:
        keys = self.node.get("x-kubernetes-list-map-keys")
        return tuple(str(k) for k in keys) if isinstance(keys, list) else ()

    @property
    def map_type(self) -> str:
        """``granular`` (the default: members are owned and merged one by one) or ``atomic``."""
        return "atomic" if self.node.get("x-kubernetes-map-type") == "atomic" else "granular"

    @property
    def patch_strategy(self) -> str | None:
        value = self.node.get("x-kubernetes-patch-strategy")
        return str(value) if value else None

    @property
    def patch_merge_key(self) -> str | None:
        value = self.node.get("x-kubernetes-patch-merge-key")
        return str(value) if value else None

    @property
    def merges_list(self) -> bool:
        """Strategic merge patch merges this list (by ``patch_merge_key``, or as a set of scalars)."""
        strategy = self.patch_strategy
        return strategy is not None and "merge" in strategy.split(",")

    @property
    def retains_keys(self) -> bool:
        strategy = self.patch_strategy
        return strategy is not None and "retainKeys" in strategy.split(",")

    @property
    def preserves_unknown_fields(self) -> bool:
        return bool(self.node.get("x-kubernetes-preserve-unknown-fields"))

    @property
    def has_default(self) -> bool:
        return "default" in self.node

    @property
    def default(self) -> Any:
        return self.node.get("default")


ANY = Schema(None)


def patches_strategically(doc: Mapping[str, Any], group: str, version: str, kind: str) -> bool:
    """Whether the document's PATCH operation for this kind takes a strategic merge patch (kubectl
    sends custom resources a JSON merge patch instead, as their operations do not list it)."""
    for item in (doc.get("paths") or {}).values():
        op = item.get("patch") if isinstance(item, Mapping) else None
        if not isinstance(op, Mapping):
            continue
        tag = op.get(GVK_EXTENSION)
        if (isinstance(tag, Mapping) and tag.get("group", "") == group and tag.get("version") == version
                and tag.get("kind") == kind):
            content = (op.get("requestBody") or {}).get("content") or {}
            return "application/strategic-merge-patch+json" in content
    return False


def find_kind_schema(doc: Mapping[str, Any], group: str, version: str, kind: str) -> Schema | None:
    """The component schema of an ``/openapi/v3`` document tagged with this group/version/kind."""
    schemas = (doc.get("components") or {}).get("schemas") or {}
    for node in schemas.values():
        tags = node.get(GVK_EXTENSION) if isinstance(node, Mapping) else None
        for tag in tags if isinstance(tags, list) else []:
            if (isinstance(tag, Mapping) and tag.get("group", "") == group and tag.get("version") == version
                    and tag.get("kind") == kind):
                return Schema(node, schemas)
    return None
