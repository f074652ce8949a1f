"""Small helpers every kind's ``defaults`` uses: read or create maps without repairing bad JSON.

Defaulting never raises and never "repairs" a value of the wrong JSON type: it only fills fields
that are absent (or empty where Kubernetes treats empty as unset) inside containers of the right
type, and leaves everything else for validation to report.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def map_at(parent: Obj | None, key: str, *, create: bool = False) -> Obj | None:
    """``parent[key]`` if it is a map; an empty map is created only when the key is absent."""
    if parent is None:
        return None
    value = parent.get(key)
    if value is None and create:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def maps_at(parent: Obj | None, key: str) -> list[Obj]:
    """The map items of ``parent[key]`` when it is a list (other items are validation's business)."""
    value = parent.get(key) if parent is not None else None
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def set_if_unset(obj: Obj, key: str, value: Any) -> None:
    """Go's ``if x == "" / nil``: absent, null and the empty string all count as unset."""
    if obj.get(key) in (None, ""):
        obj[key] = value
