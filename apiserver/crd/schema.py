"""One CRD schema node, parsed once from the raw ``openAPIV3Schema`` JSON (``JSONSchemaProps``).

Role: the shared, read-only form of a schema for pruning, defaulting and value validation. Parsing
never fails: a keyword of the wrong JSON type is ignored here and reported by ``schemacheck`` when
the CRD is written, so a stored CRD always compiles.

Data flow: ``Node.parse(raw)`` -> a tree of ``Node`` (``properties``, ``items``,
``additional``, and the value-validation branches ``all_of``/``any_of``/``one_of``/``not_``).
The structural part of the tree (properties, items, additionalProperties, never the branches) is
what pruning and defaulting walk; validation walks all of it, as kube-openapi walks the schema.

``types`` and ``format`` are what the validator of custom objects sees: ``x-kubernetes-int-or-string``
reads as the types ``integer,string`` and an unsupported format is dropped (``formats``). Defaults
are validated with ``raw_types``/``raw_format``, as apiextensions validates them against the schema
converted without those two rewrites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .formats import effective_format

_ABSENT: Any = object()


def _num(raw: dict[str, Any], name: str) -> float | None:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _int(raw: dict[str, Any], name: str) -> int | None:
    value = raw.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        return None
    return int(value)


def _str(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name)
    return value if isinstance(value, str) else ""


def _strs(raw: dict[str, Any], name: str) -> list[str]:
    value = raw.get(name)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(eq=False)
class Node:
    raw: dict[str, Any]
    type: str = ""
    nullable: bool = False
    default: Any = _ABSENT
    properties: dict[str, Node] = field(default_factory=dict)
    items: Node | None = None
    additional: Node | None = None  # additionalProperties as a schema
    additional_allows: bool | None = None  # additionalProperties present: True unless it is `false`
    preserve_unknown: bool = False
    embedded: bool = False
    int_or_string: bool = False
    list_type: str | None = None
    list_map_keys: list[str] = field(default_factory=list)
    # value validation
    raw_format: str = ""
    format: str = ""
    types: tuple[str, ...] = ()
    raw_types: tuple[str, ...] = ()
    enum: list[Any] | None = None
    maximum: float | None = None
    exclusive_maximum: bool = False
    minimum: float | None = None
    exclusive_minimum: bool = False
    multiple_of: float | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: str = ""
    max_items: int | None = None
    min_items: int | None = None
    unique_items: bool = False
    max_properties: int | None = None
    min_properties: int | None = None
    required: list[str] = field(default_factory=list)
    all_of: list[Node] = field(default_factory=list)
    any_of: list[Node] = field(default_factory=list)
    one_of: list[Node] = field(default_factory=list)
    not_: Node | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not _ABSENT

    @staticmethod
    def parse(raw: Any) -> Node:
        raw = raw if isinstance(raw, dict) else {}
        n = Node(raw=raw)
        n.type = _str(raw, "type")
        n.nullable = raw.get("nullable") is True
        if "default" in raw and raw["default"] is not None:  # a null default is no default (v1 JSON)
            n.default = raw["default"]
        props = raw.get("properties")
        if isinstance(props, dict):
            n.properties = {k: Node.parse(v) for k, v in props.items()}
        items = raw.get("items")
        if isinstance(items, dict):
            n.items = Node.parse(items)
        if "additionalProperties" in raw:
            ap = raw["additionalProperties"]
            if isinstance(ap, dict):
                n.additional, n.additional_allows = Node.parse(ap), True
            elif isinstance(ap, bool):
                n.additional_allows = ap
        n.preserve_unknown = raw.get("x-kubernetes-preserve-unknown-fields") is True
        n.embedded = raw.get("x-kubernetes-embedded-resource") is True
        n.int_or_string = raw.get("x-kubernetes-int-or-string") is True
        list_type = raw.get("x-kubernetes-list-type")
        n.list_type = list_type if isinstance(list_type, str) else None
        n.list_map_keys = _strs(raw, "x-kubernetes-list-map-keys")
        n.raw_format = _str(raw, "format")
        n.raw_types = (n.type,) if n.type else ()
        n.types = ("integer", "string") if n.int_or_string else n.raw_types
        n.format = effective_format(n.types, n.raw_format)
        enum = raw.get("enum")
        n.enum = list(enum) if isinstance(enum, list) else None
        n.maximum, n.minimum, n.multiple_of = _num(raw, "maximum"), _num(raw, "minimum"), _num(raw, "multipleOf")
        n.exclusive_maximum = raw.get("exclusiveMaximum") is True
        n.exclusive_minimum = raw.get("exclusiveMinimum") is True
        n.max_length, n.min_length = _int(raw, "maxLength"), _int(raw, "minLength")
        n.pattern = _str(raw, "pattern")
        n.max_items, n.min_items = _int(raw, "maxItems"), _int(raw, "minItems")
        n.unique_items = raw.get("uniqueItems") is True
        n.max_properties, n.min_properties = _int(raw, "maxProperties"), _int(raw, "minProperties")
        n.required = _strs(raw, "required")
        for name in ("allOf", "anyOf", "oneOf"):
            branches = raw.get(name)
            if isinstance(branches, list):
                setattr(n, {"allOf": "all_of", "anyOf": "any_of", "oneOf": "one_of"}[name],
                        [Node.parse(b) for b in branches if isinstance(b, dict)])
        if isinstance(raw.get("not"), dict):
            n.not_ = Node.parse(raw["not"])
        return n

    def field_schema(self, name: str) -> Node | None:
        """The structural schema of field ``name`` of an object: a property, else additionalProperties."""
        prop = self.properties.get(name)
        if prop is not None:
            return prop
        return self.additional
