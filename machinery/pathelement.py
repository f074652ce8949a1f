"""Path elements of field sets, spelled as FieldsV1 spells them.

Role: the leaves of ``machinery.fieldpath``. A path element is a plain string, exactly the key
FieldsV1 uses: ``f:<name>``, ``k:<json of the key fields, sorted by name>``, ``v:<json>``,
``i:<index>``. Keeping the wire spelling makes managedFields a walk with no translation, and
makes elements cheap to hash and compare. This module builds elements (``make_path``,
``key_element``), canonicalizes those read from managedFields (compact JSON, keys sorted, Go's
escaping), orders them as SMD does (``element_sort_key``) and prints them as SMD prints paths in
conflicts (``path_string``, after SMD's ``value.ToString``). Keys and printed paths must match
Kubernetes byte for byte: the JSON in them is json-iterator's, as SMD writes it, and the printed
values are Go's ``%q``/``%v``, all from ``machinery.gofmt``. Pure.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from machinery.gofmt import UnsupportedValueError, go_quote, go_sprint, jsoniter_json

Path = tuple[str, ...]

_INDEX_RE = re.compile(r"[+-]?[0-9]+")


class FieldPathError(ValueError):
    """A FieldsV1 document or a path element that cannot be read."""


def go_value_string(value: Any) -> str:
    """SMD's ``value.ToString``: how values appear inside a printed path (``%q`` for strings,
    ``%v`` for numbers and bools, ``null``, ``[a,b]`` lists and ``k=v`` maps)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, (bool, int, float)):
        return go_sprint(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_value_string(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "".join(f"{k}={go_value_string(value[k])}" for k in sorted(value))
    return str(value)


def _element_json(value: Any) -> str:
    """A key field's or set item's value as SMD writes it in a path element (json-iterator)."""
    try:
        return jsoniter_json(value)
    except UnsupportedValueError as err:
        raise FieldPathError(str(err)) from None


# --------------------------------------------------------------------------- path elements


def field_element(name: str) -> str:
    return "f:" + name


_KEY_CACHE: dict[tuple[Any, ...], str] = {}
_VALUE_CACHE: dict[tuple[Any, ...], str] = {}


def key_element(fields: Iterable[tuple[str, Any]]) -> str:
    """``k:{...}`` for an associative-list item; ``fields`` are (key field, value), any order."""
    items = sorted(fields, key=lambda f: f[0])
    try:
        cache_key = tuple((name, type(v), v) for name, v in items)
        cached = _KEY_CACHE.get(cache_key)
    except TypeError:  # a non-scalar key value: rare, not cached
        cache_key, cached = (), None
    if cached is not None:
        return cached
    text = "k:{" + ",".join(_element_json(name) + ":" + _element_json(v) for name, v in items) + "}"
    if cache_key:
        if len(_KEY_CACHE) > 65536:
            _KEY_CACHE.clear()
        _KEY_CACHE[cache_key] = text
    return text


def value_element(value: Any) -> str:
    """``v:<json>`` for an item of a set."""
    try:
        cache_key = (type(value), value)
        cached = _VALUE_CACHE.get(cache_key)
    except TypeError:
        return "v:" + _element_json(value)
    if cached is None:
        if len(_VALUE_CACHE) > 65536:
            _VALUE_CACHE.clear()
        cached = _VALUE_CACHE[cache_key] = "v:" + _element_json(value)
    return cached


def index_element(index: int) -> str:
    return f"i:{index}"


class Value:
    """Marks a part of ``make_path`` as a set item (``v:``) rather than a field name."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def make_path(*parts: Any) -> Path:
    """A path from friendly parts: ``str`` field names, ``dict`` list keys, ``int`` indexes,
    ``Value(x)`` set items: ``make_path("spec", "ports", {"port": 80, "protocol": "TCP"})``."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, Value):
            out.append(value_element(part.value))
        elif isinstance(part, str):
            out.append(field_element(part))
        elif isinstance(part, bool):
            raise FieldPathError(f"unable to make {part!r} into a path element")
        elif isinstance(part, int):
            out.append(index_element(part))
        elif isinstance(part, Mapping):
            if not part:
                raise FieldPathError("associative list key type path elements must have at least one key (got zero)")
            out.append(key_element(part.items()))
        else:
            raise FieldPathError(f"unable to make {part!r} into a path element")
    return tuple(out)


def _parse_json(text: str, whole: str) -> Any:
    def reject(name: str) -> Any:
        raise FieldPathError(f"invalid JSON in path element {whole!r}: {name}")

    try:
        return json.loads(text, parse_constant=reject)
    except json.JSONDecodeError as err:
        raise FieldPathError(f"invalid JSON in path element {whole!r}: {err}") from None


def canonical_element(text: str) -> str | None:
    """A serialized path element in canonical form; None for an unknown kind (SMD drops those)."""
    if text.startswith("f:"):
        return text
    return _canonical_slow(text)


@lru_cache(maxsize=16384)
def _canonical_slow(text: str) -> str | None:
    if len(text) < 2:
        raise FieldPathError(f"key must be 2 characters long: {text!r}")
    if text[1] != ":":
        raise FieldPathError(f"missing colon: {text}")
    kind, rest = text[0], text[2:]
    if kind == "v":
        return "v:" + _element_json(_parse_json(rest, text))
    if kind == "k":
        value = _parse_json(rest, text)
        if not isinstance(value, dict):
            raise FieldPathError(f"a key path element must be a JSON object: {text}")
        return "k:" + _element_json(value)
    if kind == "i":
        if not _INDEX_RE.fullmatch(rest):
            raise FieldPathError(f"invalid index in path element: {text}")
        return f"i:{int(rest)}"
    if kind == "f":
        return text
    return None


@lru_cache(maxsize=16384)
def element_value(element: str) -> Any:
    """The JSON value inside a ``k:`` (a dict) or ``v:`` element."""
    return json.loads(element[2:])


def element_string(element: str) -> str:
    """SMD's ``PathElement.String``: ``.name``, ``[name="x",port=80]``, ``[="x"]``, ``[3]``."""
    kind = element[0]
    if kind == "f":
        return "." + element[2:]
    if kind == "k":
        fields = element_value(element)
        return "[" + ",".join(f"{k}={go_value_string(v)}" for k, v in fields.items()) + "]"
    if kind == "v":
        return f"[={go_value_string(element_value(element))}]"
    if kind == "i":
        return f"[{element[2:]}]"
    return "{{invalid path element}}"


def path_string(path: Iterable[str]) -> str:
    """SMD's ``Path.String``: ``.metadata.finalizers[="x"]``, ``.spec.ports[port=80,protocol="TCP"]``."""
    return "".join(element_string(e) for e in path)


def _value_sort_key(value: Any) -> tuple[Any, ...]:
    # SMD's value.Compare: numbers (ints and floats together) < strings < bools < lists < maps < null.
    if value is None:
        return (5,)
    if value is True or value is False:
        return (2, value)
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    if isinstance(value, list):
        return (3, tuple(_value_sort_key(v) for v in value))
    if isinstance(value, dict):
        return (4, tuple((k, _value_sort_key(value[k])) for k in sorted(value)))
    return (6, repr(value))


@lru_cache(maxsize=16384)
def _slow_sort_key(element: str) -> tuple[Any, ...]:
    kind = element[0]
    if kind == "k":
        fields = element_value(element)
        return (1, tuple((k, _value_sort_key(fields[k])) for k in sorted(fields)))
    if kind == "v":
        return (2, _value_sort_key(element_value(element)))
    if kind == "i":
        return (3, int(element[2:]))
    return (4, element)


def element_sort_key(element: str) -> tuple[Any, ...]:
    """SMD's ``PathElement.Compare`` order: fields, then keys, then values, then indexes."""
    if element.startswith("f:"):
        return (0, element)
    return _slow_sort_key(element)
