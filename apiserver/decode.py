"""Decoding a request body the way Kubernetes' strict JSON decoder does.

Data flow: body dict -> ``decode(model, body)`` walks it against the full field list of the
Kubernetes type the kind's strategy names (``Strategy.model``, e.g. ``"V1Deployment"``) ->
returns the pruned object (unknown fields and nulls dropped, as a Go struct would drop them), the
unknown field paths (for ``fieldValidation`` Strict/Warn), and raises
``DecodeError`` for a value of the wrong JSON type (Kubernetes answers 400 for those).

The field lists come from the official client's generated models (``openapi_types`` and
``attribute_map`` of ``kubernetes.client.models``), which mirror the API's OpenAPI schema, so
every field of ordinary Kubernetes YAML is known, including the many minik8s never reads.
They are read once, lazily, into a plain dict.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

_QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "overhead", "hard", "used"}
_QUANTITY_FIELDS = {"sizeLimit"}
_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$|^dict\[str, (.+)\]$")


class DecodeError(ValueError):
    def __init__(self, path: str, expected: str, got: Any) -> None:
        self.path, self.expected = path, expected
        super().__init__(
            f"json: cannot unmarshal {_json_type(got)} into Go struct field {path} of type {expected}")


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


@dataclass(frozen=True)
class Field:
    json_name: str
    type: str  # "str" | "int" | "float" | "bool" | "datetime" | "object" | "list[...]" | "dict(str, ...)" | model name


@functools.lru_cache(maxsize=None)
def _schema(model_name: str) -> dict[str, str] | None:
    """json field name -> type string, for one generated model; None for a primitive."""
    import kubernetes.client.models as models  # heavy import, paid once on first decode

    cls = getattr(models, model_name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return None
    return {cls.attribute_map[a]: t for a, t in cls.openapi_types.items()}


def decode(model: str | None, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Prune ``body`` to the fields of the generated ``model``; return (object, unknown field paths).

    Without a model (custom resources: their schema prunes them) the body is returned as is.
    """
    unknown: list[str] = []
    if model is None:
        return body, unknown
    return _walk(body, model, "", unknown), unknown


def _walk(value: Any, typ: str, path: str, unknown: list[str]) -> Any:
    typ = typ.strip()
    low = typ.lower()
    if _LIST.match(low):
        if not isinstance(value, list):
            raise DecodeError(path, "[]" + typ[5:-1], value)
        inner = typ[5:-1]
        return [_walk(v, inner, f"{path}[{i}]", unknown) for i, v in enumerate(value)]
    if _DICT.match(low):
        if not isinstance(value, dict):
            raise DecodeError(path, "map[string]" + typ[typ.index(",") + 1:-1].strip(), value)
        inner = typ[typ.index(",") + 1:-1]
        if path.rsplit(".", 1)[-1] in _QUANTITY_MAPS:
            inner = "quantity"
        return {k: _walk(v, inner, f"{path}[{k}]", unknown) for k, v in value.items() if v is not None}
    if low == "quantity" or (low == "str" and path.rsplit(".", 1)[-1] in _QUANTITY_FIELDS):
        # resource.Quantity is a string in the client's models but decodes from a JSON number too.
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise DecodeError(path, "resource.Quantity", value)
        return value if isinstance(value, str) else (str(int(value)) if float(value).is_integer() else repr(value))
    if low == "str":
        if not isinstance(value, str):
            raise DecodeError(path, "string", value)
        return value
    if low == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise DecodeError(path, "int", value)
        return value
    if low == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DecodeError(path, "float64", value)
        return value
    if low == "bool":
        if not isinstance(value, bool):
            raise DecodeError(path, "bool", value)
        return value
    if low == "datetime":
        if not isinstance(value, str):
            raise DecodeError(path, "metav1.Time", value)
        return value
    if low == "object":
        return value  # IntOrString, RawExtension, free-form
    schema = _schema(typ)
    if schema is None:
        return value
    if not isinstance(value, dict):
        raise DecodeError(path, typ, value)
    out: dict[str, Any] = {}
    for k, v in value.items():
        sub = f"{path}.{k}" if path else k
        ftype = schema.get(k)
        if ftype is None:
            unknown.append(sub)
            continue
        if v is None:
            continue
        out[k] = _walk(v, ftype, sub, unknown)
    return out
