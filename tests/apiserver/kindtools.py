"""Test helpers: run a builtin kind's strategy hooks by kind name, as the registry runs them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.kinds import by_kind as _by_kind, validate_object
from apiserver.kinds.base import Strategy
from apiserver.tables import build_table as _build_table, column_definitions as _columns


def by_kind(kind: str) -> Strategy:
    """The builtin strategy of ``kind``; a kind the server does not know gets the generic one."""
    try:
        return _by_kind(kind)
    except KeyError:
        generic = Strategy()
        generic.kind = kind
        return generic


def apply_defaults(kind: str, obj: Any) -> None:
    if isinstance(obj, dict):
        by_kind(kind).defaults(obj)


def validate(kind: str, obj: Any, *, old: Any = None) -> list[Any]:
    return validate_object(by_kind(kind), obj, old=old)


def column_definitions(kind: str) -> list[dict[str, Any]]:
    return _columns(by_kind(kind))


def table_row(kind: str, obj: dict[str, Any], *, now: datetime) -> list[Any]:
    return by_kind(kind).row(obj, now)


def build_table(kind: str, objects: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return _build_table(by_kind(kind), objects, **kwargs)
