"""Field sets: the sets of paths that server-side apply tracks, after SMD's ``fieldpath`` package.

Role: ``metadata.managedFields[].fieldsV1`` says which fields a manager owns. This module is the
data structure behind it (``sigs.k8s.io/structured-merge-diff/fieldpath``): a ``FieldSet`` is a
tree of path elements, each spelled exactly as FieldsV1 spells it, so reading and writing
managedFields is a walk with no translation:

- ``f:<name>``  a struct field or a map key;
- ``k:<json>``  the item of an associative list, by its key fields (compact JSON, fields sorted by
  name, as SMD sorts its ``FieldList``): ``k:{"containerPort":80,"protocol":"TCP"}``;
- ``v:<json>``  the item of a set: ``v:"foregroundDeletion"``;
- ``i:<index>`` the item of a list without keys (only ever read from managedFields).

A node has ``members`` (the element strings that are in the set themselves) and ``children``
(element -> the subset below it; being a child does not make an element a member). FieldsV1
writes a member leaf as ``{}`` and a member that also has children with a ``"."`` entry.

Path elements and their printing live in ``machinery.pathelement`` (re-exported here).

Data flow: ``FieldSet.from_fields_v1(entry["fieldsV1"])`` -> set algebra (union, difference,
intersection, recursive difference) in ``machinery.managedfields`` -> ``to_fields_v1()`` in SMD's
order, so real managedFields round-trip byte for byte; ``path_string`` prints a path as SMD does
in conflicts (``.spec.template.spec.containers[name="nginx"].image``).

Sets are values: an operation returns a new set that may share untouched subtrees with its
operands (and returns an operand itself when nothing changes, which lets callers reuse an
entry's encoded fieldsV1). Only ``insert`` mutates; use it on sets you are building. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from machinery.pathelement import (
    FieldPathError,
    Path,
    Value,
    _canonical_slow,  # noqa: F401  (the FieldsV1 reader's fast path)
    canonical_element,
    element_sort_key,
    element_string,
    element_value,
    field_element,
    go_value_string,
    index_element,
    key_element,
    make_path,
    path_string,
    value_element,
)

__all__ = [
    "FieldPathError", "FieldSet", "Path", "Value", "canonical_element", "element_sort_key", "element_string",
    "element_value", "field_element", "go_value_string", "index_element",
    "key_element", "make_path", "path_string", "value_element",
]


def _sorted(elements: Iterable[str]) -> list[str]:
    return sorted(elements, key=element_sort_key)


# --------------------------------------------------------------------------- the set


class FieldSet:
    """A set of paths, as a tree of FieldsV1 path elements (SMD's ``fieldpath.Set``)."""

    __slots__ = ("members", "children")

    def __init__(self, members: set[str] | None = None, children: dict[str, "FieldSet"] | None = None) -> None:
        self.members: set[str] = set() if members is None else members
        self.children: dict[str, FieldSet] = {} if children is None else children

    # ------------------------------------------------------------ building
    @classmethod
    def from_paths(cls, paths: Iterable[Sequence[str]]) -> "FieldSet":
        out = cls()
        for path in paths:
            out.insert(path)
        return out

    def insert(self, path: Sequence[str]) -> None:
        """Add one path (its parents are not added). The empty path, the whole object, is never owned."""
        if not path:
            return
        node = self
        for element in path[:-1]:
            child = node.children.get(element)
            if child is None:
                child = node.children[element] = FieldSet()
            node = child
        node.members.add(path[-1])

    def copy(self) -> "FieldSet":
        return FieldSet(set(self.members), {k: c.copy() for k, c in self.children.items()})

    # ------------------------------------------------------------ queries
    def empty(self) -> bool:
        if self.members:
            return False
        for child in self.children.values():
            if not child.empty():
                return False
        return True

    def __bool__(self) -> bool:
        return not self.empty()

    def has(self, path: Sequence[str]) -> bool:
        """Whether ``path`` itself is a member (not merely a prefix of members)."""
        if not path:
            return False
        node: FieldSet | None = self
        for element in path[:-1]:
            node = node.children.get(element)  # type: ignore[union-attr]
            if node is None:
                return False
        return path[-1] in node.members  # type: ignore[union-attr]

    def __contains__(self, path: object) -> bool:
        return isinstance(path, (tuple, list)) and self.has(path)

    def with_prefix(self, element: str) -> "FieldSet":
        """The subset below ``element``, without it."""
        return self.children.get(element) or FieldSet()

    def size(self) -> int:
        """The number of member paths."""
        return len(self.members) + sum(c.size() for c in self.children.values())

    def __len__(self) -> int:
        return self.size()

    def __iter__(self) -> Iterator[Path]:
        """Member paths in SMD's order (pre-order: a node's members, then its children, sorted)."""
        return self._iterate(())

    def _iterate(self, prefix: Path) -> Iterator[Path]:
        for element in _sorted(self.members):
            yield prefix + (element,)
        for element in _sorted(self.children):
            yield from self.children[element]._iterate(prefix + (element,))

    def paths(self) -> list[Path]:
        return list(self)

    def leaves(self) -> "FieldSet":
        """Only the members that have no children of their own."""
        children = {}
        for element, child in self.children.items():
            sub = child.leaves()
            if not sub.empty():
                children[element] = sub
        members = {m for m in self.members if m not in self.children or self.children[m].empty()}
        return FieldSet(members, children)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSet):
            return NotImplemented
        if self is other:
            return True
        if self.members != other.members:
            return False
        mine = {k: c for k, c in self.children.items() if not c.empty()}
        theirs = {k: c for k, c in other.children.items() if not c.empty()}
        if mine.keys() != theirs.keys():
            return False
        return all(c == theirs[k] for k, c in mine.items())

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "FieldSet(" + ", ".join(path_string(p) for p in self) + ")"

    def __str__(self) -> str:
        return "\n".join(path_string(p) for p in self)

    # ------------------------------------------------------------ algebra
    def union(self, other: "FieldSet") -> "FieldSet":
        if not other.members and not other.children:
            return self
        if not self.members and not self.children:
            return other
        changed = not other.members <= self.members
        members = self.members | other.members if changed else self.members
        children = dict(self.children)
        for element, theirs in other.children.items():
            mine = children.get(element)
            if mine is None:
                if not theirs.empty():
                    children[element] = theirs
                    changed = True
            else:
                merged = mine.union(theirs)
                if merged is not mine:
                    children[element] = merged
                    changed = True
        return FieldSet(members, children) if changed else self

    def __or__(self, other: "FieldSet") -> "FieldSet":
        return self.union(other)

    def intersection(self, other: "FieldSet") -> "FieldSet":
        members = self.members & other.members
        children: dict[str, FieldSet] = {}
        small, large = (self.children, other.children)
        if len(small) > len(large):
            small, large = large, small
        for element, child in small.items():
            theirs = large.get(element)
            if theirs is not None:
                common = child.intersection(theirs)
                if not common.empty():
                    children[element] = common
        return FieldSet(members, children)

    def __and__(self, other: "FieldSet") -> "FieldSet":
        return self.intersection(other)

    def difference(self, other: "FieldSet") -> "FieldSet":
        """Members of ``self`` not in ``other``; a member of ``other`` does not remove its children."""
        return self._minus(other, False)

    def __sub__(self, other: "FieldSet") -> "FieldSet":
        return self.difference(other)

    def recursive_difference(self, other: "FieldSet") -> "FieldSet":
        """Like ``difference``, but a member of ``other`` also removes everything below it."""
        return self._minus(other, True)

    def _minus(self, other: "FieldSet", recursive: bool) -> "FieldSet":
        if (not other.members and not other.children) or (not self.members and not self.children):
            return self
        removed = other.members
        changed = bool(removed) and not self.members.isdisjoint(removed)
        members = self.members - removed if changed else self.members
        children: dict[str, FieldSet] = {}
        theirs_all = other.children
        for element, child in self.children.items():
            if recursive and element in removed:
                changed = True
                continue
            theirs = theirs_all.get(element)
            if theirs is None:
                children[element] = child
                continue
            rest = child._minus(theirs, recursive)
            if rest is not child:
                changed = True
            if not rest.empty():
                children[element] = rest
        return FieldSet(members, children) if changed else self

    # ------------------------------------------------------------ FieldsV1
    def to_fields_v1(self) -> dict[str, Any]:
        """The FieldsV1 form, keys in SMD's order (``"."`` first), as Kubernetes writes it."""
        return _emit(self, False)

    @classmethod
    def from_fields_v1(cls, fields: Mapping[str, Any] | None) -> "FieldSet":
        """Read a FieldsV1 document; unknown element kinds are dropped, as SMD does."""
        if fields is None:
            return cls()
        if not isinstance(fields, Mapping):
            raise FieldPathError("FieldsV1 must be a JSON object")
        found, _ = _read(fields)
        return found if found is not None else cls()


def _emit(node: FieldSet, include_self: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if include_self:
        out["."] = {}
    members, children = node.members, node.children
    live = [k for k, c in children.items() if not c.empty()]
    keys = members.union(live) if live else members
    for element in (_sorted(keys) if len(keys) > 1 else keys):
        child = children.get(element)
        if child is not None and not child.empty():
            out[element] = _emit(child, element in members)
        else:
            out[element] = {}
    return out


def _read(fields: Mapping[str, Any]) -> tuple[FieldSet | None, bool]:
    children: FieldSet | None = None
    is_member = False
    for key, sub in fields.items():
        if key == ".":
            is_member = True
            continue
        element = key if key.startswith("f:") else _canonical_slow(key)
        if element is None:
            continue
        if type(sub) is not dict and not isinstance(sub, Mapping):
            raise FieldPathError(f"the value of {key!r} must be a JSON object")
        grand, child_is_member = _read(sub) if sub else (None, True)
        if children is None:
            children = FieldSet()
        if child_is_member:
            children.members.add(element)
        if grand is not None:
            existing = children.children.get(element)
            children.children[element] = grand if existing is None else existing.union(grand)
    if children is None:
        is_member = True
    return children, is_member
