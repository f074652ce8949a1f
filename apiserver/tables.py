"""Server-side tables: the ``meta.k8s.io/v1`` ``Table`` form of objects, as ``kubectl get`` prints it.

Role: when a list or get request asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
the API server answers with a ``Table`` instead of the objects. The columns and cells come from
the kind's strategy (``Strategy.columns``/``row``/``row_conditions``, after Kubernetes' printers in
``pkg/printers/internalversion/printers.go``; custom resources print their
``additionalPrinterColumns``).

Data flow: handler lists objects -> ``build_table(strategy, objects, now=...)`` -> column
definitions + one row per object -> JSON response. Like the real server (which generates tables
with ``Wide: true``), every row carries the cells of every column, wide ones included; clients hide
the columns with ``priority`` > 0 unless asked for ``-o wide``. Column names are spelled as
Kubernetes sends them ("Name", "Nominated Node"); kubectl upper-cases them when it prints.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .kinds.base import Strategy

_INCLUDE_OBJECT = ("None", "Metadata", "Object")


def column_definitions(strategy: Strategy) -> list[dict[str, Any]]:
    return [column.definition() for column in strategy.columns]


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


def _row(strategy: Strategy, obj: dict[str, Any], *, now: datetime, include_object: str) -> dict[str, Any]:
    row: dict[str, Any] = {"cells": strategy.row(obj, now)}
    conditions = strategy.row_conditions(obj)
    if conditions:
        row["conditions"] = conditions
    embedded = _row_object(obj, include_object)
    if embedded is not None:
        row["object"] = embedded
    return row


def build_table(strategy: Strategy, objects: list[dict[str, Any]], *, now: datetime,
                include_object: str = "Metadata", resource_version: str = "",
                continue_token: str = "") -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` ``Table`` of ``objects``; ``include_object`` is the ``includeObject`` policy.

    ``metadata.continue`` is present only when set (it is ``omitempty`` in Kubernetes' ListMeta).
    Raises ValueError for an ``include_object`` other than "None", "Metadata" or "Object".
    """
    if include_object not in _INCLUDE_OBJECT:
        raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")
    metadata: dict[str, str] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(strategy),
        "rows": [_row(strategy, obj, now=now, include_object=include_object) for obj in objects],
    }
