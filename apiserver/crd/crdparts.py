"""Validation of the smaller pieces of a CRD spec: names, scale paths, printer columns, selectable fields.

Role: ``ValidateCustomResourceDefinitionNames``, ``...Subresources``, ``...ColumnDefinition`` and
``ValidateCustomResourceSelectableFields`` with their Kubernetes paths and messages, for
``validation``; each takes the piece and the field path it sits at (which depends on whether the
versions share it, see ``validation``).
"""

from __future__ import annotations

import re
from typing import Any

from apiserver.validation import dns1035_label_errors, duplicate, invalid, required
from machinery.errors import StatusCause

from . import gofmt
from .keywords import dict_at, key_path, list_at, props_of, str_at, sub_path

Obj = dict[str, Any]
_COLUMN_TYPES = "boolean,date,integer,number,string"
_COLUMN_FORMATS = "byte,date,date-time,double,float,int32,int64,password"
_MAX_SELECTABLE_FIELDS = 8


def each(path: str, value: Any, messages: list[str]) -> list[StatusCause]:
    return [invalid(path, value, ",".join(messages))] if messages else []


def names_errors(names: Obj, path: str) -> list[StatusCause]:
    """ValidateCustomResourceDefinitionNames."""
    causes: list[StatusCause] = []
    for name in ("plural", "singular"):
        value = str_at(names, name)
        if value:
            causes += each(sub_path(path, name), value, dns1035_label_errors(value))
    for name in ("kind", "listKind"):
        value = str_at(names, name)
        if value and (errs := dns1035_label_errors(value.lower())):
            causes.append(invalid(sub_path(path, name), value,
                                  "may have mixed case, but should otherwise match: " + ",".join(errs)))
    for i, short in enumerate(list_at(names, "shortNames")):
        causes += each(f"{sub_path(path, 'shortNames')}[{i}]", short, dns1035_label_errors(str(short)))
    kind, list_kind = str_at(names, "kind"), str_at(names, "listKind")
    if kind and kind == list_kind:
        causes.append(invalid(sub_path(path, "listKind"), list_kind, "kind and listKind may not be the same"))
    for i, category in enumerate(list_at(names, "categories")):
        causes += each(f"{sub_path(path, 'categories')}[{i}]", category, dns1035_label_errors(str(category)))
    return causes


def _simple_json_path(value: str, path: str) -> list[StatusCause]:
    if not value:
        return [invalid(path, value, "must not be empty")]
    if value[0] != ".":
        return [invalid(path, value, "must be a simple json path starting with .")]
    return []


def subresources_errors(subresources: Any, path: str) -> list[StatusCause]:
    """ValidateCustomResourceDefinitionSubresources: the scale paths."""
    scale = dict_at(subresources, "scale")
    if not isinstance(subresources, dict) or subresources.get("scale") is None:
        return []
    causes: list[StatusCause] = []
    for name, prefix, where in (("specReplicasPath", ".spec.", ".spec"), ("statusReplicasPath", ".status.", ".status")):
        value, p = str_at(scale, name), f"{path}.scale.{name}"
        if not value:
            causes.append(required(p))
        elif errs := _simple_json_path(value, p):
            causes += errs
        elif not value.startswith(prefix):
            causes.append(invalid(p, value, f"should be a json path under {where}"))
    selector = str_at(scale, "labelSelectorPath")
    if selector:
        p = f"{path}.scale.labelSelectorPath"
        if errs := _simple_json_path(selector, p):
            causes += errs
        elif not selector.startswith((".spec.", ".status.")):
            causes.append(invalid(p, selector, "should be a json path under either .spec or .status"))
    return causes


def column_errors(col: Any, path: str) -> list[StatusCause]:
    """ValidateCustomResourceColumnDefinition."""
    causes: list[StatusCause] = []
    if not str_at(col, "name"):
        causes.append(required(sub_path(path, "name")))
    col_type = str_at(col, "type")
    if not col_type:
        causes.append(required(sub_path(path, "type"), f"must be one of {_COLUMN_TYPES}"))
    elif col_type not in _COLUMN_TYPES.split(","):
        causes.append(invalid(sub_path(path, "type"), col_type, f"must be one of {_COLUMN_TYPES}"))
    fmt = str_at(col, "format")
    if fmt and fmt not in _COLUMN_FORMATS.split(","):
        causes.append(invalid(sub_path(path, "format"), fmt, f"must be one of {_COLUMN_FORMATS}"))
    json_path = str_at(col, "jsonPath")
    if not json_path:
        causes.append(required(sub_path(path, "JSONPath")))
    else:
        causes += _simple_json_path(json_path, sub_path(path, "JSONPath"))
    return causes


_FIELD_PATH_TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|[.\[\]]|[^.\[\]]+")


def _resolve_field(json_path: str, schema: Obj) -> tuple[str, Obj]:
    """cel.ValidFieldPath without array notation: the field path and its schema, or ValueError."""
    tokens = _FIELD_PATH_TOKEN.findall(json_path)
    path, s, i = "", schema, 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "[":
            raise ValueError("array notation is not allowed")
        if tok != ".":
            raise ValueError(f"expected [ or . but got: {tok}")
        if i + 1 >= len(tokens):
            raise ValueError("unexpected end of JSON path")
        name = tokens[i + 1]
        props = props_of(s)
        if props or isinstance(s.get("properties"), dict):
            if name not in props:
                raise ValueError("does not refer to a valid field")
            path, s = sub_path(path, name), props[name]
        elif isinstance(s.get("additionalProperties"), dict):
            path, s = key_path(path, name), s["additionalProperties"]
        else:
            raise ValueError("does not refer to a valid field")
        i += 2
    return path, s


def selectable_fields_errors(fields: list[Any], schema: Any, path: str) -> list[StatusCause]:
    """ValidateCustomResourceSelectableFields."""
    causes: list[StatusCause] = []
    seen: set[str] = set()
    for i, entry in enumerate(fields):
        p = f"{path}[{i}].jsonPath"
        json_path = str_at(entry, "jsonPath")
        if not json_path:
            causes.append(required(p))
            continue
        try:
            resolved, found = _resolve_field(json_path, schema if isinstance(schema, dict) else {})
        except ValueError as err:
            causes.append(invalid(p, json_path, f"is an invalid path: {err}"))
            continue
        if resolved.split(".")[0].split("[")[0] == "metadata":
            causes.append(invalid(p, json_path, "must not point to fields in metadata"))
        if found.get("type") not in ("string", "boolean", "integer"):
            causes.append(invalid(p, json_path, "must point to a field of type string, boolean or integer. "
                                                "Enum string fields and strings with formats are allowed."))
        if resolved in seen:
            causes.append(duplicate(p, json_path))
        seen.add(resolved)
    if len(seen) > _MAX_SELECTABLE_FIELDS:
        causes.append(gofmt.too_many(path, len(seen), _MAX_SELECTABLE_FIELDS))
    return causes
