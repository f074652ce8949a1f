"""Component schemas: generated models and CRD schemas -> OpenAPI v3 schemas named as Kubernetes names them.

Data flow: a served kind -> its generated model (``kubernetes.client.models.V1Deployment``:
``openapi_types`` for the field types, ``attribute_map`` for the JSON names, ``model_fields``
for descriptions and required flags, the class docstring for the type's description) plus the
facts table (``facts.Facts`` -> ``x-kubernetes-*`` extensions and defaults) -> one schema per
referenced type, memoized in a ``ComponentBuilder``; or, for a custom resource, its version's
``openAPIV3Schema`` wrapped the way the CRD OpenAPI builder wraps it (ObjectMeta reference,
apiVersion/kind, the GVK tag).

Shapes follow Kubernetes' v3 documents: a field of a named type is ``{"allOf": [{"$ref"}],
"description", ...extensions}`` when it has a description or extensions of its own, else a
``$ref``; Time/MicroTime are date-time strings, IntOrString and Quantity ``oneOf`` scalars
(IntOrString also carries ``x-kubernetes-int-or-string`` so ``machinery.schemaview`` sees a
scalar). Every schema of a Kubernetes kind carries ``x-kubernetes-group-version-kind`` (a list).

The generated client drops the descriptions of fields whose type is another model; such a field
gets its type's description (``metadata`` gets Kubernetes' standard text) as a sibling of a plain
``$ref``, so ``kubectl explain`` lists it once.
"""

from __future__ import annotations

import copy
import re
import threading
import typing
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from . import names
from . import wellknown as wk
from .facts import Facts, FactsTable
from .names import KindLike

GVK_KEY = "x-kubernetes-group-version-kind"
Schema = dict[str, Any]


def to_json(value: Any) -> Any:
    """``orjson`` fallback: read-only mappings (a CRD schema may be one) as plain JSON objects."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def plain_json(value: Any) -> Any:
    """A deep copy made of dicts and lists only."""
    return orjson.loads(orjson.dumps(value, default=to_json))


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def ref_name(node: Mapping[str, Any]) -> str | None:
    value = node.get("$ref")
    return value.rsplit("/", 1)[-1] if isinstance(value, str) and value.startswith("#/") else None


_LIST_T = re.compile(r"^List\[(.+)\]$")
_DICT_T = re.compile(r"^Dict\[str, (.+)\]$")
_PRIMITIVES: dict[str, Schema] = {
    "str": {"type": "string"}, "int": {"type": "integer"}, "bool": {"type": "boolean"},
    "float": {"type": "number", "format": "double"}, "bytes": {"type": "string", "format": "byte"},
}


def type_description(cls: type) -> str | None:
    """The first part of a generated class's docstring: Kubernetes' description of the type."""
    doc = (cls.__doc__ or "").split("Attributes:", 1)[0]
    text = " ".join(doc.split())
    return text or None


def _json_fields(cls: Any) -> dict[str, Any]:
    """JSON field name -> pydantic FieldInfo (aliases differ from attribute names: ``var_schema``)."""
    out: dict[str, Any] = {}
    for attr, info in cls.model_fields.items():
        out[info.serialization_alias or (info.alias if info.alias and not info.alias.startswith("_") else attr)] = info
    return out


def _is_int_or_string(info: Any) -> bool:
    args = {a for a in typing.get_args(getattr(info, "annotation", None))}
    flat = {typing.get_args(a)[0] if typing.get_origin(a) is typing.Annotated else a for a in args}
    return int in flat and str in flat


def _is_ref(node: Mapping[str, Any]) -> bool:
    return "$ref" in node and len(node) == 1


class ComponentBuilder:
    """Builds component schemas once per type and keeps them; one per facts table.

    ``schemas`` maps a schema name to its v3 schema (GVK tags of Kubernetes kinds included; the
    per-document tags of DeleteOptions/WatchEvent are added by the document assembler). ``lock``
    serializes the documents sharing it, so that one may be built in a worker thread.
    """

    def __init__(self, facts: FactsTable) -> None:
        self.facts = facts
        self.schemas: dict[str, Schema] = copy.deepcopy(wk.SCALARS)
        self._model_names: dict[str, str] = {}
        self._crds: dict[tuple[str, str, str], tuple[bytes, str]] = {}
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ kinds
    def kind(self, kind: KindLike) -> tuple[str, str]:
        """Build (or find) the schemas of a served kind and its list; return both names."""
        if kind.model is None:
            return self._crd(kind)
        name = self.model(kind.model, names.group_package(kind.group))
        tag = names.gvk(kind.group, kind.version, kind.kind)
        self._ensure_gvk(name, tag)
        list_model = kind.model + "List"
        if names.model_class(list_model) is not None:
            list_name = self.model(list_model, names.group_package(kind.group))
        else:
            list_name = name + "List"
            if list_name not in self.schemas:
                self.schemas[list_name] = _list_schema(name, f"{kind.kind}List is a list of {kind.kind}.")
        self._ensure_gvk(list_name, names.gvk(kind.group, kind.version, kind.kind + "List"))
        return name, list_name

    def _ensure_gvk(self, name: str, tag: dict[str, str]) -> None:
        node = self.schemas[name]
        tags = node.setdefault(GVK_KEY, [])
        if tag not in tags:
            tags.append(tag)

    def meta(self, model: str) -> str:
        """A meta/v1 type by its generated model name (``V1Status``, ``V1DeleteOptions``...)."""
        return self.model(model, "meta")

    # ------------------------------------------------------------------ generated models
    def model(self, model: str, context: str) -> str:
        """The component name of a generated model, building it and what it references."""
        known = self._model_names.get(model)
        if known is not None:
            return known
        name = names.model_schema_name(model, context)
        self._model_names[model] = name
        cls = names.model_class(model)
        if cls is None:
            self.schemas[name] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
            return name
        self.schemas[name] = {}  # placeholder: a type may reference itself (JSONSchemaProps)
        package = (names.model_package(model, context) or (context,))[0]
        self.schemas[name] = self._build_model(model, cls, package)
        return name

    def _build_model(self, model: str, cls: Any, package: str) -> Schema:
        facts = self.facts.get(model, {})
        fields = _json_fields(cls)
        props: dict[str, Schema] = {}
        required: list[str] = []
        for attr, type_string in cls.openapi_types.items():
            json_name = cls.attribute_map[attr]
            info = fields.get(json_name)
            props[json_name] = self._property(model, json_name, type_string, info, facts.get(json_name), package)
            if info is not None and info.is_required():
                required.append(json_name)
        node: Schema = {"type": "object", "properties": props}
        description = type_description(cls)
        if description:
            node["description"] = description
        if required:
            node["required"] = required
        type_facts = facts.get("")
        if type_facts is not None:
            node.update(type_facts.object_extensions())
        tag = self._builtin_gvk(model, props, package)
        if tag is not None:
            node[GVK_KEY] = [tag]
        return node

    def _builtin_gvk(self, model: str, props: Mapping[str, Schema], package: str) -> dict[str, str] | None:
        """The GVK of a model that is a Kubernetes kind or kind list (all are tagged, served or not)."""
        if model in wk.META_MODELS:
            return names.gvk("", "v1", wk.META_KINDS[wk.META_MODELS[model]])
        found = names.split_model(model)
        if found is None or package == "meta" or not {"apiVersion", "kind"} <= set(props):
            return None
        meta = ref_name(props.get("metadata") or {}) or ref_name(((props.get("metadata") or {}).get("allOf") or [{}])[0])
        is_list = meta == names.LIST_META and "items" in props
        if meta != names.OBJECT_META and not is_list:
            return None
        _, version, type_name = found
        return names.gvk(names.package_group(package), version, type_name)

    def _property(self, model: str, json_name: str, type_string: str, info: Any, facts: Facts | None,
                  package: str) -> Schema:
        description = getattr(info, "description", None)
        node = self._type_node(model, json_name, type_string.strip(), info, package)
        is_array = node.get("type") == "array"
        extensions: Schema = {}
        if facts is not None:
            extensions = facts.list_extensions() if is_array else (
                facts.object_extensions() if "$ref" in node or node.get("type") == "object" else {})
            if facts.has_default:
                extensions["default"] = facts.default
        if _is_ref(node):
            target = ref_name(node) or ""
            if description or extensions:
                out: Schema = {"allOf": [node], **extensions}
                fallback = description or self._fallback_description(json_name, target)
                if fallback:
                    out["description"] = fallback
                return out
            fallback = self._fallback_description(json_name, target)
            return {**node, "description": fallback} if fallback else node
        out = {**node, **extensions}
        if description:
            out["description"] = description
        return out

    def _fallback_description(self, json_name: str, target: str) -> str | None:
        if json_name == "metadata":
            return wk.LIST_META_DESC if target == names.LIST_META else wk.OBJECT_META_DESC
        value = self.schemas.get(target, {}).get("description")
        return value if isinstance(value, str) else None

    def _type_node(self, model: str, json_name: str, t: str, info: Any, package: str) -> Schema:
        if m := _LIST_T.match(t):
            return {"type": "array", "items": self._type_node(model, json_name, m.group(1).strip(), None, package)}
        if m := _DICT_T.match(t):
            return {"type": "object",
                    "additionalProperties": self._type_node(model, json_name, m.group(1).strip(), None, package)}
        key = (model, json_name)
        if t == "str" and key in wk.QUANTITY_FIELDS:
            return ref(names.QUANTITY)
        if t == "datetime":
            return ref(names.MICRO_TIME if key in wk.MICRO_TIME_FIELDS else names.TIME)
        if t == "object":
            if key in wk.NAMED_OBJECTS:
                return ref(wk.NAMED_OBJECTS[key])
            if info is not None and _is_int_or_string(info):
                return ref(names.INT_OR_STRING)
            return {} if model in wk.ANY_JSON_MODELS else {"type": "object"}
        if t in _PRIMITIVES:
            return dict(_PRIMITIVES[t])
        if names.model_class(t) is not None:
            return ref(self.model(t, package))
        return {}

    # ------------------------------------------------------------------ custom resources
    def _crd(self, kind: KindLike) -> tuple[str, str]:
        key = (kind.group, kind.version, kind.kind)
        signature = orjson.dumps(kind.crd_schema or {}, default=to_json, option=orjson.OPT_SORT_KEYS)
        name = names.crd_schema_name(*key)
        cached = self._crds.get(key)
        if cached is None or cached[0] != signature or name not in self.schemas:
            self.model("V1ObjectMeta", "meta")
            self.model("V1ListMeta", "meta")
            self.schemas[name] = crd_kind_schema(kind)
            self.schemas[name + "List"] = _list_schema(name, f"{kind.kind}List is a list of {kind.kind}.")
            self.schemas[name + "List"][GVK_KEY] = [names.gvk(kind.group, kind.version, kind.kind + "List")]
            self._crds[key] = (signature, name)
        return name, name + "List"

    def forget_crd(self, group: str, version: str, kind: str) -> None:
        """Drop a custom resource's schemas (its CRD was deleted)."""
        if self._crds.pop((group, version, kind), None) is not None:
            name = names.crd_schema_name(group, version, kind)
            self.schemas.pop(name, None)
            self.schemas.pop(name + "List", None)


def crd_kind_schema(kind: KindLike) -> Schema:
    """A custom resource's schema as the CRD OpenAPI builder publishes it."""
    base: Schema = plain_json(kind.crd_schema or {})
    props: dict[str, Any] = dict(base.get("properties") or {})
    props["apiVersion"] = {"description": wk.API_VERSION_DESC, "type": "string"}
    props["kind"] = {"description": wk.KIND_DESC, "type": "string"}
    props["metadata"] = {"allOf": [ref(names.OBJECT_META)], "description": wk.OBJECT_META_DESC}
    node: Schema = {**base, "type": "object", "properties": props}
    if not kind.crd_schema:
        node["x-kubernetes-preserve-unknown-fields"] = True
    node[GVK_KEY] = [names.gvk(kind.group, kind.version, kind.kind)]
    return node


def _list_schema(item: str, description: str) -> Schema:
    return {
        "description": description, "type": "object", "required": ["items"],
        "properties": {
            "apiVersion": {"description": wk.API_VERSION_DESC, "type": "string"},
            "items": {"description": "List of objects. More info: "
                      "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md",
                      "type": "array", "items": ref(item)},
            "kind": {"description": wk.KIND_DESC, "type": "string"},
            "metadata": {"allOf": [ref(names.LIST_META)], "description": wk.LIST_META_DESC},
        },
    }


# ------------------------------------------------------------------------------ closure
def iter_refs(node: Any) -> Iterator[str]:
    """Every schema name a node refers to (``$ref`` string values only: a CRD may name a property ``$ref``)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rsplit("/", 1)[-1]
            elif not isinstance(value, (str, int, float, bool)) and value is not None:
                yield from iter_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from iter_refs(item)


def closure(schemas: Mapping[str, Schema], roots: Iterable[str]) -> list[str]:
    """The names reachable from ``roots``, in a stable order (roots first, then as found)."""
    seen: dict[str, None] = {}
    todo = list(roots)
    while todo:
        name = todo.pop(0)
        if name in seen or name not in schemas:
            continue
        seen[name] = None
        todo.extend(r for r in iter_refs(schemas[name]) if r not in seen)
    return list(seen)


def tag_meta_kinds(components: dict[str, Schema], group_versions: Iterable[tuple[str, str]]) -> None:
    """Give the meta/v1 kinds their GVK tags: ``""/v1`` and, for DeleteOptions and WatchEvent,
    every group version the document serves (as Kubernetes does); copies the nodes it changes."""
    gvs = list(group_versions)
    for name, kind in wk.META_KINDS.items():
        node = components.get(name)
        if node is None:
            continue
        tags = [names.gvk("", "v1", kind)]
        if kind in ("DeleteOptions", "WatchEvent"):
            tags += [names.gvk(g, v, kind) for g, v in gvs if (g, v) != ("", "v1")]
        components[name] = {**node, GVK_KEY: tags}


def build_components(kinds: Iterable[KindLike], facts: FactsTable, *,
                     builder: ComponentBuilder | None = None) -> dict[str, Schema]:
    """name -> schema of everything the served kinds and their operations reference (meta types included)."""
    builder = builder or ComponentBuilder(facts)
    kinds = list(kinds)
    roots: list[str] = []
    for k in kinds:
        roots.extend(builder.kind(k))
        roots.extend(subresource_models(builder, k).values())
    roots.extend(meta_roots(builder))
    components = {name: builder.schemas[name] for name in closure(builder.schemas, roots)}
    tag_meta_kinds(components, names.served_group_versions(kinds))
    return components


def meta_roots(builder: ComponentBuilder) -> list[str]:
    """The meta types every group-version document names in its operations."""
    return [builder.meta(m) for m in ("V1Status", "V1DeleteOptions", "V1WatchEvent", "V1APIResourceList")] + [
        names.PATCH]


SUBRESOURCE_MODELS = {"scale": "V1Scale", "binding": "V1Binding", "eviction": "V1Eviction"}


def subresource_models(builder: ComponentBuilder, kind: KindLike) -> dict[str, str]:
    """subresource -> component name of its body, for the subresources with a body of their own."""
    return {s: builder.model(SUBRESOURCE_MODELS[s], names.group_package(kind.group))
            for s in kind.subresources if s in SUBRESOURCE_MODELS}


def unknown_facts(facts: FactsTable) -> list[str]:
    """``Model.field`` entries of a facts table that name no generated model or field (typos)."""
    out: list[str] = []
    for model, fields in facts.items():
        cls = names.model_class(model)
        if cls is None:
            out.append(model)
            continue
        known = set(cls.attribute_map.values())
        out.extend(f"{model}.{f}" for f in fields if f and f not in known)
    return out
