"""Kubernetes field errors (``field.Error`` shapes) and typed reads of raw JSON.

Role: the vocabulary every validator speaks. The constructors build the ``StatusCause`` of one
field error with Kubernetes' reason and message (``FieldValueRequired`` "Required value", ...);
the typed reads return a field's Go zero value when it is absent, null or of the wrong JSON type,
and record a "must be of type ..." cause for the wrong type, so validators read like the Go code
they mirror and one bad field never hides the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from machinery.errors import StatusCause

Obj = dict[str, Any]
Causes = list[StatusCause]


def format_value(value: Any) -> str:
    """Render a bad value the way field.Error does: strings quoted, numbers bare, null for nil."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    try:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return repr(value)


def required(path: str, detail: str = "") -> StatusCause:
    return StatusCause("FieldValueRequired", "Required value" + (f": {detail}" if detail else ""), path)


def invalid(path: str, value: Any, detail: str) -> StatusCause:
    message = f"Invalid value: {format_value(value)}" + (f": {detail}" if detail else "")
    return StatusCause("FieldValueInvalid", message, path)


def not_supported(path: str, value: Any, supported: Iterable[str]) -> StatusCause:
    quoted = ", ".join(json.dumps(v) for v in supported)
    return StatusCause("FieldValueNotSupported", f"Unsupported value: {format_value(value)}: supported values: {quoted}", path)


def duplicate(path: str, value: Any) -> StatusCause:
    return StatusCause("FieldValueDuplicate", f"Duplicate value: {format_value(value)}", path)


def forbidden(path: str, detail: str) -> StatusCause:
    return StatusCause("FieldValueForbidden", f"Forbidden: {detail}", path)


def too_long(path: str, max_bytes: int) -> StatusCause:
    """field.TooLong as apimachinery spells it today ("may not be more than 5 bytes")."""
    if max_bytes < 0:
        return StatusCause("FieldValueTooLong", "Too long: value is too long", path)
    unit = "byte" if max_bytes == 1 else "bytes"
    return StatusCause("FieldValueTooLong", f"Too long: may not be more than {max_bytes} {unit}", path)


def not_found(path: str, value: Any) -> StatusCause:
    return StatusCause("FieldValueNotFound", f"Not found: {format_value(value)}", path)


def each(path: str, value: Any, messages: Iterable[str]) -> Causes:
    return [invalid(path, value, msg) for msg in messages]


def child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


# ============================================================================ typed reads
# Each reader returns the Go zero value for absent, null or mistyped fields and records a cause
# for the mistyped ones, so validators read like the Go code they mirror.

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean"}


def type_error(path: str, value: Any, expected: str) -> StatusCause:
    return invalid(path, value, f"must be of type {expected}")


def get_str(obj: Obj, name: str, path: str, causes: Causes) -> str:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value or ""
    causes.append(type_error(child(path, name), value, "string"))
    return ""


def required_str(obj: Obj, name: str, path: str, causes: Causes, *, errors: Callable[[str], list[str]]) -> str:
    """A string field that must be set: Required when empty, else one Invalid per message of ``errors``."""
    value = get_str(obj, name, path, causes)
    if not value:
        causes.append(required(child(path, name)))
    else:
        causes.extend(each(child(path, name), value, errors(value)))
    return value


def get_int(obj: Obj, name: str, path: str, causes: Causes, *, bits: int = 32) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    limit = 2 ** (bits - 1)
    if isinstance(value, bool) or not isinstance(value, int):
        causes.append(type_error(child(path, name), value, f"int{bits}"))
        return None
    if not -limit <= value < limit:
        causes.append(type_error(child(path, name), value, f"int{bits}"))
        return None
    return value


def get_bool(obj: Obj, name: str, path: str, causes: Causes) -> bool | None:
    value = obj.get(name)
    if value is None or isinstance(value, bool):
        return value
    causes.append(type_error(child(path, name), value, "boolean"))
    return None


def get_map(obj: Obj, name: str, path: str, causes: Causes) -> Obj:
    value = obj.get(name)
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    causes.append(type_error(child(path, name), value, "object"))
    return {}


def dict_at(obj: Obj, name: str) -> Obj:
    """``obj[name]`` when it is a map, else an empty one (for checks that only compare)."""
    value = obj.get(name)
    return value if isinstance(value, dict) else {}


def get_opt_map(obj: Obj, name: str, path: str, causes: Causes) -> Obj | None:
    """A pointer-to-struct field: None when absent or mistyped."""
    if obj.get(name) is None:
        return None
    value = get_map(obj, name, path, causes)
    return value if isinstance(obj.get(name), dict) else None


def get_list(obj: Obj, name: str, path: str, causes: Causes) -> list[Any]:
    value = obj.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    causes.append(type_error(child(path, name), value, "array"))
    return []


def get_maps(obj: Obj, name: str, path: str, causes: Causes) -> list[tuple[str, Obj]]:
    """(item path, item) for a list of objects; non-object items are reported and skipped."""
    base = child(path, name)
    items: list[tuple[str, Obj]] = []
    for i, item in enumerate(get_list(obj, name, path, causes)):
        if isinstance(item, dict):
            items.append((index(base, i), item))
        else:
            causes.append(type_error(index(base, i), item, "object"))
    return items


def get_strs(obj: Obj, name: str, path: str, causes: Causes) -> list[str]:
    base = child(path, name)
    out: list[str] = []
    for i, item in enumerate(get_list(obj, name, path, causes)):
        if isinstance(item, str):
            out.append(item)
        else:
            causes.append(type_error(index(base, i), item, "string"))
    return out


def get_str_map(obj: Obj, name: str, path: str, causes: Causes) -> dict[str, str]:
    base = child(path, name)
    out: dict[str, str] = {}
    for k, v in get_map(obj, name, path, causes).items():
        if isinstance(v, str):
            out[k] = v
        elif v is not None:
            causes.append(type_error(key(base, k), v, "string"))
    return out


def get_int_or_string(obj: Obj, name: str, path: str, causes: Causes) -> int | str | None:
    value = obj.get(name)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    causes.append(type_error(child(path, name), value, "integer or string"))
    return None

def nonnegative(path: str, value: int | None) -> Causes:
    return [invalid(path, value, "must be greater than or equal to 0")] if value is not None and value < 0 else []


def enum(path: str, value: str, allowed: tuple[str, ...], *, required_if_empty: bool = True) -> Causes:
    if not value:
        return [required(path)] if required_if_empty else []
    return [] if value in allowed else [not_supported(path, value, allowed)]
