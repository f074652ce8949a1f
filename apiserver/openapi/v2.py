"""OpenAPI v2 (swagger 2.0): the single document kubectl falls back to, in JSON and in gnostic protobuf.

Why it exists: kubectl reads ``/openapi/v2`` (protobuf only) when v3 cannot decide, above all for
a kind the server does not serve: ``apply -f`` asks it whether the kind takes
``fieldValidation``, and a failed download stops the whole command ("failed to download
openapi") where Kubernetes would create the served objects and report each unknown kind. It
also reads the PATCH ``consumes`` list of a kind (strategic merge patch or JSON merge patch).

Data flow: the same paths and component schemas as v3 (``v3.kind_paths_and_roots``), converted:
``#/components/schemas/`` -> ``#/definitions/``, ``allOf: [{$ref}]`` -> ``$ref`` with siblings,
requestBody -> a ``body`` parameter plus ``consumes``, response content -> ``schema`` plus
``produces``; IntOrString and Quantity become the v2 string forms; what swagger 2.0 (and
kubectl's parser, kube-openapi ``proto.NewOpenAPIData``) cannot hold is dropped: ``oneOf``,
``anyOf``, ``not``, ``nullable``, the type of int-or-string nodes, array nodes without one
``items`` schema get an empty one, and preserve-unknown-fields objects lose their properties
(so client-side validation never rejects their unknown fields). ``v2proto.encode`` turns the
result into gnostic's ``openapi.v2.Document``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import names
from .components import ComponentBuilder, closure, meta_roots, tag_meta_kinds
from .facts import FactsTable
from .names import KindLike
from .paths import group_version_root
from .v2proto import encode as encode_v2_protobuf
from .v3 import dumps, etag_of, kind_paths_and_roots, kind_signature

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
PROTOBUF_TYPES = ("application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
                  "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
PROTOBUF_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"

_SCHEMA_KEYS = frozenset({
    "$ref", "format", "title", "description", "default", "multipleOf", "maximum", "exclusiveMaximum",
    "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
    "uniqueItems", "maxProperties", "minProperties", "required", "enum", "additionalProperties", "type",
    "items", "properties", "readOnly", "example", "externalDocs",
})
_V2_DEFINITIONS = {
    names.INT_OR_STRING: {"type": "string", "format": "int-or-string"},
    names.QUANTITY: {"type": "string"},
}
_PRIMITIVE_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean"})


def v2_ref(value: str) -> str:
    return V2_PREFIX + value[len(V3_PREFIX):] if value.startswith(V3_PREFIX) else value


def v2_schema(node: Mapping[str, Any]) -> dict[str, Any]:
    """One v3 schema node as swagger 2.0 that kube-openapi's proto parser accepts."""
    if not isinstance(node, Mapping):
        return {}
    node = dict(node)
    all_of = node.pop("allOf", None)
    if (isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping)
            and isinstance(all_of[0].get("$ref"), str) and "$ref" not in node):
        node["$ref"] = all_of[0]["$ref"]
    extensions = {k: v for k, v in node.items() if k.startswith("x-")}
    if isinstance(node.get("$ref"), str):
        out: dict[str, Any] = {"$ref": v2_ref(node["$ref"])}
        out.update({k: node[k] for k in ("description", "default") if k in node})
        out.update(extensions)
        return out
    out = {k: v for k, v in node.items() if k in _SCHEMA_KEYS and k != "$ref"}
    out.update(extensions)
    kind = out.get("type")
    if not isinstance(kind, str) or kind not in _PRIMITIVE_TYPES or node.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
        kind = None
    if kind not in (None, "object"):
        out.pop("properties", None)
        out.pop("additionalProperties", None)
    if node.get("x-kubernetes-preserve-unknown-fields") is True:
        out.pop("properties", None)
        out.pop("required", None)
    if "properties" in out:
        props = out["properties"] if isinstance(out["properties"], Mapping) else {}
        out["properties"] = {str(k): v2_schema(v) for k, v in props.items()}
    if isinstance(out.get("additionalProperties"), Mapping):
        out["additionalProperties"] = v2_schema(out["additionalProperties"])
    elif "additionalProperties" in out and not isinstance(out["additionalProperties"], bool):
        del out["additionalProperties"]
    if kind == "array":
        items = out.get("items")
        out["items"] = v2_schema(items) if isinstance(items, Mapping) else {}
    else:
        out.pop("items", None)
    if not isinstance(out.get("required"), list):
        out.pop("required", None)
    return out


def v2_definition(name: str, node: Mapping[str, Any]) -> dict[str, Any]:
    special = _V2_DEFINITIONS.get(name)
    if special is not None:
        out = dict(special)
        if "description" in node:
            out["description"] = node["description"]
        return out
    return v2_schema(node)


def _v2_parameter(param: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: param[k] for k in ("name", "in", "description", "required") if k in param}
    schema = param.get("schema") or {}
    out.update({k: schema[k] for k in ("type", "uniqueItems", "format") if k in schema})
    return out


def _first_schema(content: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for media in content.values():
        if isinstance(media, Mapping) and isinstance(media.get("schema"), Mapping):
            return media["schema"]
    return None


def v2_operation(op: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {k: op[k] for k in ("description", "operationId", "tags") if k in op}
    parameters = [_v2_parameter(p) for p in op.get("parameters", [])]
    request = op.get("requestBody")
    if isinstance(request, Mapping):
        content = request.get("content") or {}
        out["consumes"] = list(content)
        parameters.append({"name": "body", "in": "body", "required": bool(request.get("required")),
                           "schema": v2_schema(_first_schema(content) or {})})
    if parameters:
        out["parameters"] = parameters
    produces: list[str] = []
    responses: dict[str, Any] = {}
    for code, response in (op.get("responses") or {}).items():
        content = response.get("content") or {}
        produces.extend(t for t in content if t not in produces)
        entry: dict[str, Any] = {"description": response.get("description", "")}
        schema = _first_schema(content)
        if schema is not None:
            entry["schema"] = v2_schema(schema)
        responses[code] = entry
    out["produces"] = produces
    out["responses"] = responses
    out["schemes"] = ["https"]
    out.update({k: v for k, v in op.items() if k.startswith("x-")})
    return out


def v2_path_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        if key == "parameters":
            out["parameters"] = [_v2_parameter(p) for p in value]
        elif isinstance(value, Mapping):
            out[key] = v2_operation(value)
    return out


def swagger_v2(kinds: Iterable[KindLike], facts: FactsTable, *, builder: ComponentBuilder | None = None,
               version: str = "unversioned") -> dict[str, Any]:
    """The swagger 2.0 document of every served kind."""
    builder = builder or ComponentBuilder(facts)
    kinds = list(kinds)
    v3_paths: dict[str, Any] = {}
    roots: list[str] = []
    for group, gv_version in names.served_group_versions(kinds):
        v3_paths.update(group_version_root(group, gv_version))
        for kind in kinds:
            if (kind.group, kind.version) == (group, gv_version):
                kind_paths, kind_roots = kind_paths_and_roots(builder, kind)
                v3_paths.update(kind_paths)
                roots.extend(kind_roots)
    roots.extend(meta_roots(builder))
    components = {name: builder.schemas[name] for name in closure(builder.schemas, roots)}
    tag_meta_kinds(components, names.served_group_versions(kinds))
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": version},
            "paths": {path: v2_path_item(item) for path, item in v3_paths.items()},
            "definitions": {name: v2_definition(name, node) for name, node in components.items()}}


class OpenAPIv2:
    """``/openapi/v2`` for a set of served kinds: the JSON and protobuf bodies, built lazily and cached."""

    def __init__(self, kinds: Iterable[KindLike], facts: FactsTable, *,
                 builder: ComponentBuilder | None = None) -> None:
        self.builder = builder or ComponentBuilder(facts)
        self._kinds: list[KindLike] = []
        self._signature = b""
        self._doc: dict[str, Any] | None = None
        self._json: tuple[bytes, str] | None = None
        self._protobuf: bytes | None = None
        self.update(kinds)

    def update(self, kinds: Iterable[KindLike]) -> None:
        kinds = list(kinds)
        signature = dumps([kind_signature(k) for k in kinds])
        with self.builder.lock:
            if signature != self._signature:
                self._doc, self._json, self._protobuf = None, None, None
            self._kinds, self._signature = kinds, signature

    def document(self) -> dict[str, Any]:
        with self.builder.lock:
            if self._doc is None:
                self._doc = swagger_v2(self._kinds, self.builder.facts, builder=self.builder)
            return self._doc

    def _json_entry(self) -> tuple[bytes, str]:
        with self.builder.lock:
            if self._json is None:
                data = dumps(self.document())
                self._json = (data, etag_of(data))
            return self._json

    def json(self) -> bytes:
        return self._json_entry()[0]

    def etag(self) -> str:
        """SHA-512 of the JSON body (the protobuf body is derived from the same document)."""
        return self._json_entry()[1]

    def protobuf(self) -> bytes:
        with self.builder.lock:
            if self._protobuf is None:
                self._protobuf = encode_v2_protobuf(self.document())
            return self._protobuf


def wants_protobuf(accept: str | None) -> bool:
    """Whether an Accept header asks for the gnostic protobuf form (what kubectl sends)."""
    return any(t in (accept or "") for t in PROTOBUF_TYPES)


__all__ = ["OpenAPIv2", "PROTOBUF_CONTENT_TYPE", "encode_v2_protobuf", "swagger_v2", "v2_schema", "wants_protobuf"]
