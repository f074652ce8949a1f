"""The walks of custom objects along a structural schema: pruning, defaulting, embedded resources, list types.

Role: the ports of apiextensions' ``pruning.PruneWithOptions``, ``defaulting.Default``,
``defaulting.PruneNonNullableNullsWithoutDefaults``, ``objectmeta.Coerce``/``objectmeta.Validate``
and ``listtype.ValidateListSetsAndMaps``. Each walks the structural part of the schema (properties,
items, additionalProperties; never allOf/anyOf/oneOf/not) beside the value.

Data flow: ``structural.StructuralSchema`` calls these per custom object; ``schemacheck`` calls the
pruning and embedded-resource walks on the defaults of a CRD schema.
"""

from __future__ import annotations

import copy
from typing import Any

from apiserver.validation import child, dns1035_label_errors, index, invalid, key, required
from apiserver.validation.objectmeta import validate_object_meta
from machinery.errors import StatusCause
from machinery.gofmt import go_json, go_number

from . import gofmt
from .schema import Node

META_FIELDS = ("apiVersion", "kind", "metadata")
# ObjectMeta's JSON fields: anything else in the metadata of an embedded resource is dropped.
_OBJECT_META_FIELDS = frozenset((
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields"))
_META_STRINGS = ("name", "generateName", "namespace", "selfLink", "uid", "resourceVersion")
_JSON_KIND = {dict: "object", list: "array", str: "string", bool: "bool", int: "number", float: "number"}


class Paths:
    """UnknownFieldPathOptions: the dotted path of the value being walked, and the pruned ones."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.pruned: list[str] = []

    def key(self, name: str) -> Paths:
        self.parts.append(("." if self.parts else "") + name)
        return self

    def index(self, i: int) -> Paths:
        self.parts.append(f"[{i}]")
        return self

    def pop(self) -> None:
        self.parts.pop()

    def record(self, name: str) -> None:
        self.pruned.append("".join(self.parts) + ("." if self.parts else "") + name)


# ====================================================================== pruning

def prune(x: Any, s: Node | None, paths: Paths, *, embedded: bool = False) -> None:
    if s is not None and s.preserve_unknown:
        skip_prune(x, s, paths, embedded=embedded or s.embedded)
        return
    if isinstance(x, dict):
        if s is None:
            for k in list(x):
                paths.record(k)
                del x[k]
            return
        embedded = embedded or s.embedded
        for k in list(x):
            if embedded and k in META_FIELDS:
                continue
            if not _prune_declared(x, k, s, paths):
                if k not in META_FIELDS or paths.parts:
                    paths.record(k)
                del x[k]
    elif isinstance(x, list):
        for i, v in enumerate(x):
            prune(v, s.items if s is not None else None, paths.index(i))
            paths.pop()


def skip_prune(x: Any, s: Node | None, paths: Paths, *, embedded: bool = False) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        for k in list(x):
            if not (embedded and k in META_FIELDS):
                _prune_declared(x, k, s, paths)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            skip_prune(v, s.items, paths.index(i), embedded=s.items is not None and s.items.embedded)
            paths.pop()


def _prune_declared(x: dict[str, Any], k: str, s: Node, paths: Paths) -> bool:
    """Prune ``x[k]`` along the schema ``s`` gives it (its property, else additionalProperties);
    False, leaving it alone, when ``s`` declares neither."""
    sub = s.properties.get(k)
    if sub is None:
        if s.additional_allows is None:
            return False
        sub = s.additional
    prune(x[k], sub, paths.key(k))
    paths.pop()
    return True


def prune_nulls(x: Any, s: Node | None) -> None:
    """PruneNonNullableNullsWithoutDefaults: null map values whose schema is neither nullable nor defaulted."""
    if isinstance(x, dict):
        for k in list(x):
            sub = s.field_schema(k) if s is not None else None
            if x[k] is None and sub is not None and not sub.nullable and not sub.has_default:
                del x[k]
            else:
                prune_nulls(x[k], sub)
    elif isinstance(x, list):
        for v in x:
            prune_nulls(v, s.items if s is not None else None)


def coerce_embedded(x: Any, s: Node | None, path: str, out: list[str], *, root: bool = False) -> None:
    """The ObjectMeta round trip of embedded resources: unknown metadata fields are dropped and reported."""
    if s is None:
        return
    if isinstance(x, dict):
        meta = x.get("metadata")
        if s.embedded and not root and isinstance(meta, dict):
            for k in list(meta):
                if k not in _OBJECT_META_FIELDS:
                    out.append(f"{child(path, 'metadata')}.{k}")
                    del meta[k]
            if "creationTimestamp" in meta and meta["creationTimestamp"] is None:
                del meta["creationTimestamp"]
        for k, v in x.items():
            sub = s.properties.get(k)
            if sub is not None:
                coerce_embedded(v, sub, child(path, k), out)
            elif s.additional_allows is not None:
                coerce_embedded(v, s.additional, child(path, k), out)
    elif isinstance(x, list):
        for i, v in enumerate(x):
            coerce_embedded(v, s.items, f"{path}[{i}]", out)


# ====================================================================== defaulting

def _non_nullable_null(x: Any, s: Node | None) -> bool:
    return x is None and s is not None and not s.nullable


def default(x: Any, s: Node | None) -> None:
    if s is None:
        return
    if isinstance(x, dict):
        for k, prop in s.properties.items():
            if prop.has_default and (k not in x or _non_nullable_null(x[k], prop)):
                x[k] = copy.deepcopy(prop.default)
        for k in list(x):
            known = s.properties.get(k)
            if known is not None:
                default(x[k], known)
            elif s.additional_allows is not None:
                if _non_nullable_null(x[k], s.additional) and s.additional is not None and s.additional.has_default:
                    x[k] = copy.deepcopy(s.additional.default)
                default(x[k], s.additional)
    elif isinstance(x, list):
        for i in range(len(x)):
            if _non_nullable_null(x[i], s.items) and s.items is not None and s.items.has_default:
                x[i] = copy.deepcopy(s.items.default)
            default(x[i], s.items)


# ====================================================================== embedded resources

def _parse_group_version(api_version: str) -> str | None:
    """schema.ParseGroupVersion's error, if any."""
    if api_version in ("", "/") or api_version.count("/") <= 1:
        return None
    return f"unexpected GroupVersion string: {api_version}"


def _meta_type_error(meta: Any) -> str | None:
    """The json.Unmarshal error of decoding ``meta`` into an ObjectMeta, for the common mistakes."""
    if not isinstance(meta, dict):
        return f"json: cannot unmarshal {_JSON_KIND.get(type(meta), 'value')} into Go value of type v1.ObjectMeta"
    expected: dict[str, tuple[type, str]] = {
        **{f: (str, "string") for f in _META_STRINGS},
        "generation": (int, "int64"), "deletionGracePeriodSeconds": (int, "int64"),
        "labels": (dict, "map[string]string"), "annotations": (dict, "map[string]string"),
        "finalizers": (list, "[]string"), "ownerReferences": (list, "[]v1.OwnerReference"),
        "managedFields": (list, "[]v1.ManagedFieldsEntry")}
    for name, (kind, go_type) in expected.items():
        value = meta.get(name)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return (f"json: cannot unmarshal {_JSON_KIND.get(type(value), 'value')} into Go struct field "
                    f"ObjectMeta.{name} of type {go_type}")
        if isinstance(value, dict) and any(not isinstance(v, str) for v in value.values()):
            bad = next(v for v in value.values() if not isinstance(v, str))
            return (f"json: cannot unmarshal {_JSON_KIND.get(type(bad), 'value')} into Go struct field "
                    f"ObjectMeta.{name} of type string")
    return None


def _kind_error(kind: str) -> str | None:
    errs = dns1035_label_errors(kind.lower())
    return "may have mixed case, but should otherwise match: " + ",".join(errs) if errs else None


def _validate_embedded_resource(x: dict[str, Any], path: str) -> list[StatusCause]:
    causes: list[StatusCause] = []
    for name in ("apiVersion", "kind"):
        if name not in x:
            causes.append(required(child(path, name)))
    for name, check in (("apiVersion", _parse_group_version), ("kind", _kind_error)):
        if name in x:
            value, p = x[name], child(path, name)
            if not isinstance(value, str):
                causes.append(gofmt.invalid(p, value, "must be a string"))
            elif not value:
                causes.append(invalid(p, value, "must not be empty"))
            elif err := check(value):
                causes.append(invalid(p, value, err))
    if "metadata" in x:
        meta, p = x["metadata"], child(path, "metadata")
        if (err := _meta_type_error(meta)) is not None:
            causes.append(gofmt.invalid(p, meta, err))
        else:
            meta = dict(meta or {})
            meta["name"] = meta.get("name") or "fakename"  # as Kubernetes does, to avoid a required-name error
            causes += validate_object_meta({"metadata": meta}, name_fn=lambda _name: [],
                                           namespaced=bool(meta.get("namespace")), path=p)
    return causes


def validate_embedded(x: Any, s: Node | None, path: str, *, as_resource: bool = False) -> list[StatusCause]:
    """objectmeta.Validate: TypeMeta and ObjectMeta of every x-kubernetes-embedded-resource value
    (and of ``x`` itself when ``as_resource``)."""
    if s is None:
        return []
    causes: list[StatusCause] = []
    if isinstance(x, dict):
        if s.embedded or as_resource:
            causes += _validate_embedded_resource(x, path)
        for k, v in x.items():
            prop = s.properties.get(k)
            if prop is not None:
                causes += validate_embedded(v, prop, child(path, k))
            elif s.additional_allows is not None:
                causes += validate_embedded(v, s.additional, key(path, k))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            causes += validate_embedded(v, s.items, index(path, i))
    return causes


# ====================================================================== list types

_UNSPECIFIED = ("unspecified",)


def _identity(x: Any) -> Any:
    """How Go tells set members apart: scalars by type and value, compounds by their JSON."""
    if isinstance(x, (dict, list)):
        return ("json", go_json(x))
    if x is _UNSPECIFIED:
        return x
    kind = type(go_number(x)).__name__
    return (kind, go_number(x))


def _non_unique(items: list[Any]) -> list[int]:
    """validateListSet: the index of the second appearance of each repeated value."""
    seen: dict[Any, int] = {}
    found: list[int] = []
    for i, x in enumerate(items):
        ident = _identity(x)
        seen[ident] = seen.get(ident, 0) + 1
        if seen[ident] == 2:
            found.append(i)
    return found


def _list_map_errors(items: list[Any], s: Node, path: str) -> list[StatusCause]:
    for i, x in enumerate(items):
        if x is not None and not isinstance(x, dict):
            return [gofmt.invalid(index(path, i), x, "must be an object for an array of list-type map")]
    if len(items) <= 1:
        return []
    if len(s.list_map_keys) == 1:
        name = s.list_map_keys[0]
        keys = [x[name] if isinstance(x, dict) and name in x else _UNSPECIFIED for x in items]
        return [gofmt.duplicate(index(path, i), {} if keys[i] is _UNSPECIFIED else {name: keys[i]})
                for i in _non_unique(keys)]
    composite = [{k: x[k] for k in s.list_map_keys if k in x} if isinstance(x, dict) else {} for x in items]
    return [gofmt.duplicate(index(path, i), composite[i]) for i in _non_unique(composite)]


def list_sets_and_maps(obj: Any, s: Node | None, path: str) -> list[StatusCause]:
    """ValidateListSetsAndMaps: Duplicate value errors for x-kubernetes-list-type set and map."""
    if s is None or not isinstance(obj, dict):
        return []
    causes: list[StatusCause] = []
    if s.additional is not None:
        for k, v in obj.items():
            causes += _list_value(v, s.additional, key(path, k))
    for k, v in obj.items():
        prop = s.properties.get(k)
        if prop is not None:
            causes += _list_value(v, prop, child(path, k))
    return causes


def _list_value(x: Any, s: Node, path: str) -> list[StatusCause]:
    if isinstance(x, dict):
        return list_sets_and_maps(x, s, path)
    if not isinstance(x, list):
        return []
    causes: list[StatusCause] = []
    if s.list_type == "set" and len(x) > 1:
        causes += [gofmt.duplicate(index(path, i), x[i]) for i in _non_unique(x)]
    elif s.list_type == "map":
        causes += _list_map_errors(x, s, path)
    if s.items is not None:
        for i, v in enumerate(x):
            causes += _list_value(v, s.items, index(path, i))
    return causes
