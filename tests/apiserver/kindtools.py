"""Test helpers: run a builtin kind's strategy hooks by kind name, as the registry runs them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiserver.kinds import builtin, by_kind as _by_kind, type_facts, validate_object
from apiserver.kinds.base import Strategy
from apiserver.openapi import schema_for
from machinery.schemaview import ANY, Schema
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


def kind_schema(kind: str, api_version: str = "") -> Schema:
    """The schema the API server patches ``kind`` with (ANY for a kind it does not serve in that group)."""
    group = api_version.rpartition("/")[0]
    for strategy in builtin():
        if strategy.kind == kind and (not api_version or strategy.group == group):
            return schema_for(strategy, type_facts(builtin()))
    return ANY
