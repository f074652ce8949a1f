"""The typed base of server-side apply, after SMD's ``typed`` package: types, list items, ToFieldSet.

Role: what ``machinery.ssa_merge`` and ``machinery.managedfields`` need to know about an object's
shape. Type facts come from an OpenAPI schema viewed through ``machinery.schemaview.Schema``,
compiled lazily into ``_Type`` nodes (cached per schema node):

- a granular map (a struct or ``additionalProperties``) merges key by key; an atomic one
  (``x-kubernetes-map-type: atomic``) is one leaf;
- a list is ``atomic`` (one leaf; the default), a ``set`` of scalars (items ``v:<json>``) or a
  ``map`` keyed by ``x-kubernetes-list-map-keys`` (items ``k:{...}``; a missing key field takes the
  schema default, e.g. ports' ``protocol: TCP``). Without ``x-kubernetes-list-type``, a
  ``x-kubernetes-patch-strategy: merge`` list is a map keyed by its patch merge key (or a set),
  as Kubernetes converts its OpenAPI for SMD (kube-openapi ``schemaconv``);
- no schema (``Schema(None)``) is SMD's "deduced" type: maps granular, lists atomic.

Data flow: plain JSON dicts in (never mutated), ``FieldSet``s and error lists out: ``to_field_set``
(the paths an object sets), ``validate`` (what SMD rejects in an applied object),
``zero_object`` (the Go zero value a created object is compared with). ``None`` is a JSON null;
an absent key is absent, as SMD distinguishes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from machinery.fieldpath import FieldSet, key_element, path_string, value_element
from machinery.gofmt import go_quote
from machinery.schemaview import Schema

_EMPTY: Mapping[str, Any] = {}


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Any = _Absent()


class FieldValueError(ValueError):
    """An object that SMD cannot type: duplicate or keyless items of an associative list, ...

    ``errors`` holds one ``"<path>: <message>"`` per problem; ``str()`` joins them as SMD's
    ``ValidationErrors`` does.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(errors[0] if len(errors) == 1 else "errors:\n  " + "\n  ".join(errors))


class _ElementError(Exception):
    """Raised deep in a walk; each level prepends its path element on the way out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def to_error(self) -> FieldValueError:
        where = path_string(reversed(self.path))
        return FieldValueError([f"{where}: {self.message}" if where else self.message])


# --------------------------------------------------------------------------- types


def _list_kind(node: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    list_type = node.get("x-kubernetes-list-type")
    if list_type == "map":
        keys = node.get("x-kubernetes-list-map-keys")
        if isinstance(keys, list) and keys:
            return "map", tuple(str(k) for k in keys)
        return "atomic", ()
    if list_type == "set":
        return "set", ()
    if list_type is not None:
        return "atomic", ()
    strategy = node.get("x-kubernetes-patch-strategy")
    if strategy in ("merge", "merge,retainKeys"):
        key = node.get("x-kubernetes-patch-merge-key")
        return ("map", (str(key),)) if key else ("set", ())
    return "atomic", ()


class _Type:
    """A schema node compiled for the walks; children compile lazily and are cached."""

    __slots__ = ("schema", "props", "atomic_map", "list_kind", "keys", "_fields", "_elem", "_items", "_defaults")

    def __init__(self, schema: Schema) -> None:
        node = schema.node
        self.schema = schema
        props = node.get("properties")
        self.props: Mapping[str, Any] = props if isinstance(props, Mapping) else _EMPTY
        self.atomic_map = node.get("x-kubernetes-map-type") == "atomic"
        self.list_kind, self.keys = _list_kind(node)
        self._fields: dict[str, _Type] = {}
        self._elem: _Type | None = None
        self._items: _Type | None = None
        self._defaults: dict[str, tuple[bool, Any]] = {}

    def field(self, name: str) -> "_Type":
        if name in self.props:
            found = self._fields.get(name)
            if found is None:
                found = self._fields[name] = _Type(self.schema.field(name))
            return found
        # Every other key shares the map's value type (additionalProperties, or deduced).
        if self._elem is None:
            self._elem = _ANY if self.schema.empty else _Type(self.schema.field("\x00not a property"))
        return self._elem

    def items(self) -> "_Type":
        if self._items is None:
            self._items = _ANY if self.schema.empty else _Type(self.schema.items())
        return self._items

    def key_default(self, name: str) -> tuple[bool, Any]:
        """(has a default, the default) of a key field of this list's items."""
        found = self._defaults.get(name)
        if found is None:
            item = self.items().schema
            field = item.field(name) if item.has_field(name) else None
            found = self._defaults[name] = (field is not None and field.has_default,
                                            field.default if field is not None else None)
        return found


_ANY = _Type(Schema(None))
_ANY._elem = _ANY
_ANY._items = _ANY
_TYPE_CACHE: dict[tuple[int, int], tuple[Any, Any, _Type]] = {}


def _type_of(schema: "Schema | Mapping[str, Any] | _Type | None") -> _Type:
    if schema is None:
        return _ANY
    if isinstance(schema, _Type):
        return schema
    if not isinstance(schema, Schema):
        schema = Schema(schema)
    if schema.empty:
        return _ANY
    key = (id(schema.node), id(schema.defs))
    cached = _TYPE_CACHE.get(key)
    if cached is not None and cached[0] is schema.node and cached[1] is schema.defs:
        return cached[2]
    if len(_TYPE_CACHE) > 1024:
        _TYPE_CACHE.clear()
    compiled = _Type(schema)
    _TYPE_CACHE[key] = (schema.node, schema.defs, compiled)  # holding the node keeps its id unique
    return compiled


SchemaLike = Schema | Mapping[str, Any] | _Type | None


def zero_object(schema: SchemaLike = None) -> dict[str, Any]:
    """The kind's Go zero value as Kubernetes serializes it, which is the "live" object it
    compares a created object with: non-pointer struct fields (OpenAPI ``default: {}``) present as
    ``{}``, required lists and maps (no ``omitempty``) as null. Only its shape matters: it decides
    which created nodes count as added (and get ``"."`` in managedFields)."""
    return _zero(_type_of(schema), 0)


def _zero(t: _Type, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if depth > 16:
        return out
    required = t.schema.node.get("required")
    required_names = set(required) if isinstance(required, list) else ()
    for name in t.props:
        field_type = t.field(name)
        node, shape = field_type.schema.node, field_type.schema.shape
        if shape == "struct" and node.get("default") == {}:
            out[name] = _zero(field_type, depth + 1)
        elif name in required_names and shape in ("list", "map", "struct"):
            out[name] = None
    return out


# --------------------------------------------------------------------------- list items


def item_element(item: Any, list_type: _Type, index: int = 0) -> str:
    """The path element of an item of an associative list (SMD ``listItemToPathElement``)."""
    keys = list_type.keys
    if keys:
        if item is None:
            raise _ElementError(f"element {index}: associative list with keys may not have a null element")
        if not isinstance(item, dict):
            raise _ElementError(f"element {index}: associative list with keys may not have non-map elements")
        fields = []
        for name in keys:
            if name in item:
                fields.append((name, item[name]))
            else:
                has, default = list_type.key_default(name)
                if has and default is not None:
                    fields.append((name, default))
        if not fields:
            quoted = "[" + " ".join(go_quote(k) for k in keys) + "]"
            raise _ElementError(f"element {index}: associative list with keys has an element that omits all key "
                                f"fields {quoted} (and doesn't have default values for any key fields)")
        return key_element(fields)
    if isinstance(item, dict):
        raise _ElementError(f"element {index}: associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise _ElementError(f"element {index}: not supported: associative list with lists as elements")
    if item is None:
        raise _ElementError(f"element {index}: associative list without keys has an element that's an explicit null")
    return value_element(item)


def _elements(items: list[Any], list_type: _Type) -> list[str]:
    return [item_element(item, list_type, i) for i, item in enumerate(items)]


def validate(obj: Any, schema: SchemaLike = None, *, allow_duplicates: bool = False) -> list[str]:
    """Problems SMD finds when typing ``obj`` as far as associative lists go (keys, duplicates).

    An applied configuration must have none (Kubernetes rejects it); live objects may hold
    duplicates written by updates.
    """
    errors: list[str] = []
    _validate(obj, _type_of(schema), [], errors, allow_duplicates)
    return errors


def _located(path: list[str], message: str) -> str:
    where = path_string(path)
    return f"{where}: {message}" if where else message


def _validate(value: Any, t: _Type, path: list[str], errors: list[str], allow_dups: bool) -> None:
    if isinstance(value, dict):
        if t.atomic_map:
            return
        for key, child in value.items():
            if isinstance(child, (dict, list)):
                path.append("f:" + key)
                _validate(child, t.field(key), path, errors, allow_dups)
                path.pop()
    elif isinstance(value, list) and value and t.list_kind != "atomic":
        seen: set[str] = set()
        item_type = t.items()
        for i, item in enumerate(value):
            try:
                element = item_element(item, t, i)
            except _ElementError as err:
                errors.append(_located(path, err.message))
                continue
            if element in seen:
                if not allow_dups:
                    errors.append(_located(path, f"duplicate entries for key {path_string([element])}"))
                continue
            seen.add(element)
            if isinstance(item, dict):
                path.append(element)
                _validate(item, item_type, path, errors, allow_dups)
                path.pop()


# --------------------------------------------------------------------------- ToFieldSet


def to_field_set(obj: Any, schema: SchemaLike = None) -> FieldSet:
    """SMD ``ToFieldSet``: the paths ``obj`` sets.

    Leaves (scalars, nulls, atomic lists and maps, empty maps) are members; so are list items and
    map keys that are not declared struct fields; a declared struct field with content is only
    a parent of its own members.
    """
    if not isinstance(obj, dict):
        return FieldSet()
    try:
        return _tfs_map(obj, _type_of(schema), "")
    except _ElementError as err:
        raise err.to_error() from None


# Each walk below is given the element it stands at ("" at the root) and names it in an error
# raised inside it, so a caller only hangs the result: errors carry their path out for free.


def _tfs_map(value: Mapping[str, Any], t: _Type, at: str) -> FieldSet:
    out = FieldSet()
    props = t.props
    members = out.members
    try:
        for key, child in value.items():
            element = "f:" + key
            if isinstance(child, dict):
                if not child:
                    members.add(element)
                    continue
                child_type = t.field(key)
                if child_type.atomic_map:
                    members.add(element)
                    continue
                sub = _tfs_map(child, child_type, element)
            elif isinstance(child, list):
                child_type = t.field(key)
                if child_type.list_kind == "atomic":
                    members.add(element)
                    continue
                if not child:
                    if key not in props:
                        members.add(element)
                    continue
                sub = _tfs_list(child, child_type, element)
            else:
                members.add(element)
                continue
            if sub.members or sub.children:
                out.children[element] = sub
            if key not in props:
                members.add(element)
    except _ElementError as err:
        if at:
            err.path.append(at)
        raise
    return out


def _tfs_list(items: list[Any], t: _Type, at: str) -> FieldSet:
    out = FieldSet()
    try:
        elements = _elements(items, t)
        duplicates: set[str] = set()
        if len(set(elements)) != len(elements):
            seen: set[str] = set()
            for element in elements:
                if element in seen:
                    duplicates.add(element)
                seen.add(element)
            out.members.update(duplicates)
        item_type = t.items()
        for item, element in zip(items, elements):
            if element in duplicates:
                continue
            out.members.add(element)
            if isinstance(item, dict) and item and not item_type.atomic_map:
                sub = _tfs_map(item, item_type, element)
                if sub.members or sub.children:
                    out.children[element] = sub
    except _ElementError as err:
        err.path.append(at)
        raise
    return out
