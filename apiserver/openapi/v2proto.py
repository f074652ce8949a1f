"""The swagger 2.0 document as gnostic's ``openapi.v2.Document`` protobuf, the only form kubectl reads.

Role: ``GET /openapi/v2`` with ``Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf``
(client-go's ``OpenAPISchema``) must answer with the bytes Kubernetes produces with
``openapi_v2.ParseDocument(json)`` + ``proto.Marshal``. This module transcodes the JSON document
(a dict, as ``v2.swagger_v2`` returns it) the same way, for the messages a Kubernetes document
uses: Document, Info, Paths/PathItem, Operation, ParametersItem (Parameter with BodyParameter or
Query/Path/Header/FormData sub-schemas, or a JsonReference), Responses, Schema (with
Properties, ItemsItem, AdditionalPropertiesItem, TypeItem), Definitions and Tags. Vendor
extensions (``x-...``) become ``NamedAny`` whose ``Any.yaml`` holds the value; we write it as
JSON, which is YAML, and every reader (kube-openapi, kubectl) unmarshals it with a YAML parser.

Field numbers are those of google/gnostic-models ``openapiv2/OpenAPIv2.proto``. Proto3 rules:
fields holding their zero value are not written. Pure; no protobuf library needed.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson


# ------------------------------------------------------------------------------ wire format
def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 -> two's complement, as Go writes it
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Message:
    """An append-only protobuf message body."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def bytes_field(self, number: int, data: bytes) -> None:
        self.parts += [_varint(number << 3 | 2), _varint(len(data)), data]

    def string(self, number: int, value: Any) -> None:
        if isinstance(value, str) and value:
            self.bytes_field(number, value.encode())

    def strings(self, number: int, values: Any) -> None:
        for value in values if isinstance(values, list) else []:
            if isinstance(value, str):
                self.bytes_field(number, value.encode())

    def boolean(self, number: int, value: Any) -> None:
        if value is True:
            self.parts += [_varint(number << 3), b"\x01"]

    def int64(self, number: int, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value:
            self.parts += [_varint(number << 3), _varint(value)]

    def double(self, number: int, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
            self.parts += [_varint(number << 3 | 1), struct.pack("<d", float(value))]

    def message(self, number: int, message: "_Message | None") -> None:
        if message is not None:
            self.bytes_field(number, message.encode())

    def encode(self) -> bytes:
        return b"".join(self.parts)


def _yaml(value: Any) -> str:
    return orjson.dumps(value).decode() + "\n"


def _any(value: Any) -> _Message:
    m = _Message()
    m.string(2, _yaml(value))
    return m


def _named(name: str, value: _Message) -> _Message:
    m = _Message()
    m.string(1, name)
    m.message(2, value)
    return m


def _extensions(m: _Message, number: int, obj: Mapping[str, Any]) -> None:
    for key, value in obj.items():
        if key.startswith("x-"):
            m.message(number, _named(key, _any(value)))


def _named_map(m: _Message, number: int, values: Any, build: Callable[[Any], _Message]) -> None:
    for key, value in (values.items() if isinstance(values, Mapping) else ()):
        m.message(number, _named(str(key), build(value)))


# ------------------------------------------------------------------------------ schemas
def schema(s: Mapping[str, Any]) -> _Message:
    m = _Message()
    if not isinstance(s, Mapping):
        return m
    m.string(1, s.get("$ref"))
    m.string(2, s.get("format"))
    m.string(3, s.get("title"))
    m.string(4, s.get("description"))
    if "default" in s:
        m.message(5, _any(s["default"]))
    m.double(6, s.get("multipleOf"))
    m.double(7, s.get("maximum"))
    m.boolean(8, s.get("exclusiveMaximum"))
    m.double(9, s.get("minimum"))
    m.boolean(10, s.get("exclusiveMinimum"))
    m.int64(11, s.get("maxLength"))
    m.int64(12, s.get("minLength"))
    m.string(13, s.get("pattern"))
    m.int64(14, s.get("maxItems"))
    m.int64(15, s.get("minItems"))
    m.boolean(16, s.get("uniqueItems"))
    m.int64(17, s.get("maxProperties"))
    m.int64(18, s.get("minProperties"))
    m.strings(19, s.get("required"))
    for value in s.get("enum") or []:
        m.message(20, _any(value))
    additional = s.get("additionalProperties")
    if isinstance(additional, Mapping):
        item = _Message()
        item.message(1, schema(additional))
        m.message(21, item)
    elif isinstance(additional, bool):
        item = _Message()
        item.parts += [_varint(2 << 3), b"\x01" if additional else b"\x00"]  # oneof: written even if false
        m.message(21, item)
    kind = s.get("type")
    if kind:
        types = _Message()
        types.strings(1, kind if isinstance(kind, list) else [kind])
        m.message(22, types)
    items = s.get("items")
    if isinstance(items, (Mapping, list)):
        holder = _Message()
        for item_schema in items if isinstance(items, list) else [items]:
            holder.message(1, schema(item_schema))
        m.message(23, holder)
    for sub in s.get("allOf") or []:
        m.message(24, schema(sub))
    if isinstance(s.get("properties"), Mapping):
        props = _Message()
        _named_map(props, 1, s["properties"], schema)
        m.message(25, props)
    m.string(26, s.get("discriminator"))
    m.boolean(27, s.get("readOnly"))
    if "example" in s:
        m.message(30, _any(s["example"]))
    _extensions(m, 31, s)
    return m


# ------------------------------------------------------------------------------ parameters
# Field numbers of the non-body parameter sub-schemas: query and formData have allowEmptyValue
# (5) and so number every later field one higher than path and header do.
_NON_BODY = {"header": 1, "formData": 2, "query": 3, "path": 4}


def _non_body(p: Mapping[str, Any]) -> _Message:
    m = _Message()
    shift = 1 if p.get("in") in ("query", "formData") else 0
    m.boolean(1, p.get("required"))
    m.string(2, p.get("in"))
    m.string(3, p.get("description"))
    m.string(4, p.get("name"))
    if shift:
        m.boolean(5, p.get("allowEmptyValue"))
    m.string(5 + shift, p.get("type"))
    m.string(6 + shift, p.get("format"))
    if isinstance(p.get("items"), Mapping):
        m.message(7 + shift, _primitives_items(p["items"]))
    m.string(8 + shift, p.get("collectionFormat"))
    if "default" in p:
        m.message(9 + shift, _any(p["default"]))
    m.double(10 + shift, p.get("maximum"))
    m.boolean(11 + shift, p.get("exclusiveMaximum"))
    m.double(12 + shift, p.get("minimum"))
    m.boolean(13 + shift, p.get("exclusiveMinimum"))
    m.int64(14 + shift, p.get("maxLength"))
    m.int64(15 + shift, p.get("minLength"))
    m.string(16 + shift, p.get("pattern"))
    m.int64(17 + shift, p.get("maxItems"))
    m.int64(18 + shift, p.get("minItems"))
    m.boolean(19 + shift, p.get("uniqueItems"))
    for value in p.get("enum") or []:
        m.message(20 + shift, _any(value))
    m.double(21 + shift, p.get("multipleOf"))
    _extensions(m, 22 + shift, p)
    return m


def _primitives_items(p: Mapping[str, Any]) -> _Message:
    m = _Message()
    m.string(1, p.get("type"))
    m.string(2, p.get("format"))
    if isinstance(p.get("items"), Mapping):
        m.message(3, _primitives_items(p["items"]))
    m.string(4, p.get("collectionFormat"))
    if "default" in p:
        m.message(5, _any(p["default"]))
    m.boolean(15, p.get("uniqueItems"))
    for value in p.get("enum") or []:
        m.message(16, _any(value))
    _extensions(m, 18, p)
    return m


def parameter(p: Mapping[str, Any]) -> _Message:
    """A ``Parameter``: a body parameter or a non-body one (query, path, header, formData)."""
    out = _Message()
    if p.get("in") == "body":
        b = _Message()
        b.string(1, p.get("description"))
        b.string(2, p.get("name"))
        b.string(3, p.get("in"))
        b.boolean(4, p.get("required"))
        b.message(5, schema(p.get("schema") or {}))
        _extensions(b, 6, p)
        out.message(1, b)
    else:
        holder = _Message()
        holder.message(_NON_BODY.get(str(p.get("in")), 3), _non_body(p))
        out.message(2, holder)
    return out


def parameters_item(p: Mapping[str, Any]) -> _Message:
    """A ``ParametersItem``: a parameter, or a ``$ref`` to one of the document's parameters."""
    item = _Message()
    if isinstance(p.get("$ref"), str):
        ref = _Message()
        ref.string(1, p["$ref"])
        ref.string(2, p.get("description"))
        item.message(2, ref)
    else:
        item.message(1, parameter(p))
    return item


# ------------------------------------------------------------------------------ operations
def _responses(responses: Mapping[str, Any]) -> _Message:
    m = _Message()
    for code, response in responses.items():
        if code.startswith("x-"):
            continue
        value = _Message()
        if isinstance(response.get("$ref"), str):
            ref = _Message()
            ref.string(1, response["$ref"])
            value.message(2, ref)
        else:
            r = _Message()
            r.string(1, response.get("description"))
            if isinstance(response.get("schema"), Mapping):
                item = _Message()
                item.message(1, schema(response["schema"]))
                r.message(2, item)
            _extensions(r, 5, response)
            value.message(1, r)
        m.message(1, _named(code, value))
    _extensions(m, 2, responses)
    return m


def operation(op: Mapping[str, Any]) -> _Message:
    m = _Message()
    m.strings(1, op.get("tags"))
    m.string(2, op.get("summary"))
    m.string(3, op.get("description"))
    m.string(5, op.get("operationId"))
    m.strings(6, op.get("produces"))
    m.strings(7, op.get("consumes"))
    for p in op.get("parameters") or []:
        m.message(8, parameters_item(p))
    if isinstance(op.get("responses"), Mapping):
        m.message(9, _responses(op["responses"]))
    m.strings(10, op.get("schemes"))
    m.boolean(11, op.get("deprecated"))
    _extensions(m, 13, op)
    return m


_METHODS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def path_item(item: Mapping[str, Any]) -> _Message:
    m = _Message()
    m.string(1, item.get("$ref"))
    for method, number in _METHODS.items():
        if isinstance(item.get(method), Mapping):
            m.message(number, operation(item[method]))
    for p in item.get("parameters") or []:
        m.message(9, parameters_item(p))
    _extensions(m, 10, item)
    return m


# ------------------------------------------------------------------------------ document
def _info(info: Mapping[str, Any]) -> _Message:
    m = _Message()
    m.string(1, info.get("title"))
    m.string(2, info.get("version"))
    m.string(3, info.get("description"))
    m.string(4, info.get("termsOfService"))
    _extensions(m, 7, info)
    return m


def _tags(m: _Message, tags: Iterable[Any]) -> None:
    for tag in tags:
        if isinstance(tag, Mapping):
            t = _Message()
            t.string(1, tag.get("name"))
            t.string(2, tag.get("description"))
            _extensions(t, 4, tag)
            m.message(14, t)


def encode(doc: Mapping[str, Any]) -> bytes:
    """The gnostic ``openapi.v2.Document`` bytes of a swagger 2.0 document."""
    m = _Message()
    m.string(1, doc.get("swagger"))
    if isinstance(doc.get("info"), Mapping):
        m.message(2, _info(doc["info"]))
    m.string(3, doc.get("host"))
    m.string(4, doc.get("basePath"))
    m.strings(5, doc.get("schemes"))
    m.strings(6, doc.get("consumes"))
    m.strings(7, doc.get("produces"))
    paths = doc.get("paths")
    if isinstance(paths, Mapping):
        p = _Message()
        _extensions(p, 1, paths)
        for name, item in paths.items():
            if not name.startswith("x-") and isinstance(item, Mapping):
                p.message(2, _named(name, path_item(item)))
        m.message(8, p)
    if isinstance(doc.get("definitions"), Mapping):
        d = _Message()
        _named_map(d, 1, doc["definitions"], schema)
        m.message(9, d)
    if isinstance(doc.get("parameters"), Mapping):
        d = _Message()
        _named_map(d, 1, doc["parameters"], parameter)
        m.message(10, d)
    _tags(m, doc.get("tags") or [])
    _extensions(m, 16, doc)
    return m.encode()
