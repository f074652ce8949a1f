"""The walks of server-side apply over two objects, after SMD's ``typed`` Compare, Merge and
RemoveItems.

Role: what changed between two versions of an object (``compare``: added, modified, removed
field sets), the merge of an applied configuration into the live object (``merge``) and the
pruning helpers (``remove_items``, ``ensure_named_fields_are_members``) that
``machinery.managedfields`` builds Update and Apply from. Types and list items come from
``machinery.ssa_typed``.

Data flow: plain JSON dicts in, ``FieldSet``s or new dicts out. Inputs are never mutated; outputs
share untouched subtrees with the inputs (copy before mutating a result).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from machinery.fieldpath import FieldSet
from machinery.ssa_typed import (
    _ABSENT,
    _ANY,
    _EMPTY,
    FieldValueError,
    SchemaLike,
    _elements,
    _ElementError,
    _Type,
    _type_of,
)

__all__ = ["Comparison", "FieldValueError", "compare", "ensure_named_fields_are_members", "merge", "remove_items"]


# --------------------------------------------------------------------------- Compare


@dataclass
class Comparison:
    """SMD ``typed.Comparison``: what the right-hand object added, modified and removed."""

    added: FieldSet
    modified: FieldSet
    removed: FieldSet

    def is_same(self) -> bool:
        return self.added.empty() and self.modified.empty() and self.removed.empty()

    def exclude(self, fields: FieldSet | None) -> "Comparison":
        """``ExcludeFields``: drop ``fields`` and everything below them from all three sets."""
        if fields is None or fields.empty():
            return self
        return Comparison(self.added.recursive_difference(fields), self.modified.recursive_difference(fields),
                          self.removed.recursive_difference(fields))


def compare(old: Any, new: Any, schema: SchemaLike = None) -> Comparison:
    """SMD typed ``Compare``. A node added or removed with children is itself in the set too
    (the ``"."`` entries of managedFields come from here); one present on both sides is not."""
    added, modified, removed = FieldSet(), FieldSet(), FieldSet()
    lhs = old if isinstance(old, dict) else {}
    rhs = new if isinstance(new, dict) else {}
    if lhs is not rhs and lhs != rhs:
        try:
            _cmp_map(lhs, rhs, _type_of(schema), added, modified, removed)
        except _ElementError as err:
            raise err.to_error() from None
    return Comparison(added, modified, removed)


_NUMBERS = (int, float)


def _same(a: Any, b: Any) -> bool:
    """SMD's value equality: 1 equals 1.0 but true is not 1 (inside containers Python's ``==``
    decides, where true == 1: a type flip no schema-validated object makes)."""
    if a is b:
        return True
    ta, tb = type(a), type(b)
    if ta is tb or (ta in _NUMBERS and tb in _NUMBERS):
        return bool(a == b)
    return False


def _attach(parent: FieldSet, element: str, sub: FieldSet | None) -> None:
    if sub is not None and (sub.members or sub.children):
        existing = parent.children.get(element)
        parent.children[element] = sub if existing is None else existing.union(sub)


def _all_nodes(value: Any, t: _Type, at: str) -> FieldSet | None:
    """Every path below a node that appears or disappears as a whole. ``at`` is the element the
    node stands at, named in an error raised inside it ("" when the caller names it)."""
    try:
        if isinstance(value, dict):
            if not value or t.atomic_map:
                return None
            out = FieldSet()
            for key, child in value.items():
                element = "f:" + key
                out.members.add(element)
                if isinstance(child, (dict, list)) and child:
                    _attach(out, element, _all_nodes(child, t.field(key), element))
            return out
        if isinstance(value, list):
            if not value or t.list_kind == "atomic":
                return None
            out = FieldSet()
            elements = _elements(value, t)
            counts: dict[str, int] = {}
            for element in elements:
                counts[element] = counts.get(element, 0) + 1
            item_type = t.items()
            for item, element in zip(value, elements):
                out.members.add(element)
                if counts[element] == 1 and isinstance(item, dict) and item:
                    _attach(out, element, _all_nodes(item, item_type, element))
            return out
    except _ElementError as err:
        if at:
            err.path.append(at)
        raise
    return None


def _cmp(lhs: Any, rhs: Any, t: _Type, element: str, added: FieldSet, modified: FieldSet,
         removed: FieldSet) -> None:
    if rhs is _ABSENT:
        removed.members.add(element)
        _attach(removed, element, _all_nodes(lhs, t, ""))  # _cmp's caller names the element
        return
    if lhs is _ABSENT:
        added.members.add(element)
        _attach(added, element, _all_nodes(rhs, t, ""))
        return
    if _same(lhs, rhs):
        return
    if isinstance(rhs, dict) or isinstance(lhs, dict):
        if not (isinstance(lhs, dict) or lhs is None) or not (isinstance(rhs, dict) or rhs is None):
            modified.members.add(element)  # a type change: one leaf
            return
        if t.atomic_map or (not lhs and not rhs):
            modified.members.add(element)
            return
        a, m, r = FieldSet(), FieldSet(), FieldSet()
        _cmp_map(lhs or _EMPTY, rhs or _EMPTY, t, a, m, r)
    elif isinstance(rhs, list) or isinstance(lhs, list):
        if not (isinstance(lhs, list) or lhs is None) or not (isinstance(rhs, list) or rhs is None):
            modified.members.add(element)
            return
        if t.list_kind == "atomic" or (not lhs and not rhs):
            modified.members.add(element)
            return
        a, m, r = FieldSet(), FieldSet(), FieldSet()
        _cmp_list(lhs or [], rhs or [], t, a, m, r)
    else:
        modified.members.add(element)
        return
    _attach(added, element, a)
    _attach(modified, element, m)
    _attach(removed, element, r)


def _cmp_map(lhs: Mapping[str, Any], rhs: Mapping[str, Any], t: _Type, added: FieldSet, modified: FieldSet,
             removed: FieldSet) -> None:
    element = ""
    try:
        for key, left in lhs.items():
            right = rhs.get(key, _ABSENT)
            if _same(left, right):
                continue
            element = "f:" + key
            _cmp(left, right, t.field(key), element, added, modified, removed)
        for key, right in rhs.items():
            if key not in lhs:
                element = "f:" + key
                _cmp(_ABSENT, right, t.field(key), element, added, modified, removed)
    except _ElementError as err:
        err.path.append(element)
        raise


def _cmp_list(lhs: list[Any], rhs: list[Any], t: _Type, added: FieldSet, modified: FieldSet,
              removed: FieldSet) -> None:
    left: dict[str, list[Any]] = {}
    for item, element in zip(lhs, _elements(lhs, t)):
        left.setdefault(element, []).append(item)
    right: dict[str, list[Any]] = {}
    for item, element in zip(rhs, _elements(rhs, t)):
        right.setdefault(element, []).append(item)
    item_type = t.items()
    order = list(left) + [e for e in right if e not in left]
    for element in order:
        lvals = left.get(element, ())
        rvals = right.get(element, ())
        try:
            if len(lvals) <= 1 and len(rvals) <= 1:
                _cmp(lvals[0] if lvals else _ABSENT, rvals[0] if rvals else _ABSENT, item_type, element,
                     added, modified, removed)
            elif len(lvals) >= 2 and len(rvals) >= 2:
                if lvals != rvals:
                    modified.members.add(element)
            elif len(lvals) >= 2:
                # Duplicates before, not any more: the single new item is added, the marker removed.
                if rvals:
                    _cmp(_ABSENT, rvals[0], item_type, element, added, modified, removed)
                removed.members.add(element)
            else:
                if lvals:
                    _cmp(lvals[0], _ABSENT, item_type, element, added, modified, removed)
                added.members.add(element)
        except _ElementError as err:
            err.path.append(element)
            raise


# --------------------------------------------------------------------------- Merge


def merge(live: Any, config: Any, schema: SchemaLike = None) -> dict[str, Any]:
    """SMD ``Merge`` with ``ruleKeepRHS``: the applied ``config`` merged into ``live``.

    Granular maps merge key by key; associative lists merge item by item (the live order kept,
    new items placed after the live item they follow in the config); sets are unioned; atomic
    values and scalars take the config's value. A null in the config does not clear a granular
    map or list. Raises ``FieldValueError`` for a list it has to index and cannot type; it does
    not look into subtrees only one side has: ``validate`` checks a whole configuration first, as
    Kubernetes types the applied object before merging it.
    """
    lhs = live if isinstance(live, dict) else {}
    rhs = config if isinstance(config, dict) else {}
    try:
        out = _merge(lhs, rhs, _type_of(schema))
    except _ElementError as err:
        raise err.to_error() from None
    return out if isinstance(out, dict) else {}


def _merge(lhs: Any, rhs: Any, t: _Type) -> Any:
    if rhs is _ABSENT:
        return lhs
    if lhs is _ABSENT or lhs is rhs:
        return rhs
    if isinstance(rhs, dict) or isinstance(lhs, dict):
        if not (isinstance(lhs, dict) or lhs is None) or not (isinstance(rhs, dict) or rhs is None):
            return rhs
        if t.atomic_map or (not lhs and not rhs):
            return rhs
        if not rhs:
            return lhs  # merging nothing (or null) into a granular map keeps it
        if not lhs:
            return rhs
        out: dict[str, Any] = {}
        for key, left in lhs.items():
            right = rhs.get(key, _ABSENT)
            if right is _ABSENT:
                out[key] = left
                continue
            try:
                merged = _merge(left, right, t.field(key))
            except _ElementError as err:
                err.path.append("f:" + key)
                raise
            if merged is not _ABSENT:
                out[key] = merged
        for key, right in rhs.items():
            if key not in lhs:
                out[key] = right
        return out if out else _ABSENT
    if isinstance(rhs, list) or isinstance(lhs, list):
        if not (isinstance(lhs, list) or lhs is None) or not (isinstance(rhs, list) or rhs is None):
            return rhs
        if t.list_kind == "atomic" or (not lhs and not rhs):
            return rhs
        if not rhs:
            return lhs
        if not lhs:
            return rhs
        return _merge_list(lhs, rhs, t)
    return rhs


def _merge_list(lhs: list[Any], rhs: list[Any], t: _Type) -> Any:
    rhs_elements = _elements(rhs, t)
    observed_rhs = dict(zip(rhs_elements, rhs))
    lhs_elements = _elements(lhs, t)
    observed_lhs: dict[str, Any] = {}
    for element, item in zip(lhs_elements, lhs):
        # A duplicated live item is not merged with the config's: it merges as null.
        observed_lhs[element] = None if element in observed_lhs else item
    shared = [e for e in rhs_elements if e in observed_lhs]
    shared_at = 0
    next_shared = shared[0] if shared else None
    merged_rhs: set[str] = set()
    item_type = t.items()
    out: list[Any] = []

    def merge_item(element: str, left: Any, right: Any) -> None:
        try:
            value = _merge(left, right, item_type)
        except _ElementError as err:
            err.path.append(element)
            raise
        if value is not _ABSENT:
            out.append(value)

    li = ri = 0
    n_left, n_right = len(lhs_elements), len(rhs_elements)
    while li < n_left or ri < n_right:
        if li < n_left and ri < n_right:
            element = lhs_elements[li]
            if element == rhs_elements[ri]:
                merged_rhs.add(element)
                merge_item(element, observed_lhs[element], observed_rhs[element])
                li += 1
                ri += 1
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
                continue
            if element in observed_rhs and next_shared is not None and next_shared != element:
                li += 1  # a shared item, but not the one due in this round
                continue
        if li < n_left:
            element = lhs_elements[li]
            if element not in observed_rhs:
                out.append(lhs[li])
                li += 1
                continue
            if element in merged_rhs:
                li += 1
        if ri < n_right:
            element = rhs_elements[ri]
            merged_rhs.add(element)
            merge_item(element, observed_lhs.get(element, _ABSENT), observed_rhs[element])
            ri += 1
            if next_shared is not None and next_shared == element:
                shared_at += 1
                next_shared = shared[shared_at] if shared_at < len(shared) else None
    return out if out else _ABSENT


# --------------------------------------------------------------------------- RemoveItems


def remove_items(obj: Any, fields: FieldSet, schema: SchemaLike = None) -> Any:
    """SMD ``RemoveItems``: ``obj`` without the members of ``fields`` (a removed member takes its
    whole subtree). A granular map or list emptied this way becomes null, as in SMD."""
    if fields.empty():
        return obj
    try:
        return _remove(obj, fields, _type_of(schema))
    except _ElementError as err:
        raise err.to_error() from None


def _remove(value: Any, fields: FieldSet, t: _Type) -> Any:
    if isinstance(value, dict):
        if not value or t.atomic_map:
            return value
        members, children = fields.members, fields.children
        out: dict[str, Any] = {}
        changed = False
        for key, child in value.items():
            element = "f:" + key
            if element in members:
                changed = True
                continue
            sub = children.get(element)
            if sub is not None and (sub.members or sub.children):
                new = _remove(child, sub, t.field(key))
                if new is not child:
                    changed = True
                out[key] = new
            else:
                out[key] = child
        if not changed:
            return value
        return out if out else None
    if isinstance(value, list):
        if not value or t.list_kind == "atomic":
            return value
        members, children = fields.members, fields.children
        items: list[Any] = []
        changed = False
        item_type = t.items()
        for item, element in zip(value, _elements(value, t)):
            if element in members:
                changed = True
                continue
            sub = children.get(element)
            if sub is not None and (sub.members or sub.children):
                new = _remove(item, sub, item_type)
                if new is not item:
                    changed = True
                items.append(new)
            else:
                items.append(item)
        if not changed:
            return value
        return items if items else None
    return value


def ensure_named_fields_are_members(fields: FieldSet, schema: SchemaLike = None) -> FieldSet:
    """SMD ``EnsureNamedFieldsAreMembers``: a declared struct field with members below it becomes a
    member itself (a map key or list item does not gain anything)."""
    return _ensure_named(fields, _type_of(schema))


def _ensure_named(fields: FieldSet, t: _Type) -> FieldSet:
    if not fields.children:
        return fields
    members = set(fields.members)
    children: dict[str, FieldSet] = {}
    for element, child in fields.children.items():
        if element.startswith("f:"):
            name = element[2:]
            if name in t.props:
                members.add(element)
            child_type = t.field(name)
        elif element.startswith("k:") and t.list_kind == "map":
            child_type = t.items()
        else:
            child_type = _ANY
        children[element] = _ensure_named(child, child_type)
    return FieldSet(members, children)
