"""The ``Table`` of custom objects: additionalPrinterColumns as apiextensions' table convertor fills them.

Role: the port of ``apiextensions-apiserver/pkg/registry/customresource/tableconvertor``. A version
without columns gets the single ``Age`` column (``serveDefaultColumnsIfEmpty``); the ``Name`` column
always comes first. Each cell is the first value the column's JSONPath selects (missing keys
allowed; no value, a path error or a type mismatch give an empty cell, ``None``), formatted by the
column's ``type``: ``integer`` (numbers truncated to int), ``number`` (float), ``boolean``,
``string`` (client-go's PrintResults: maps and lists as JSON, a JSON null as ``<no value>``) and
``date`` (the age of an RFC 3339 timestamp: "5m", ``<unknown>`` for an empty one, ``<invalid>``
for garbage). ``priority`` and ``format`` are only carried to the column definitions; clients
(kubectl ``-o wide``) use them.

Data flow: ``column_definitions(columns)`` once per CRD version -> ``row_cells(columns, obj, now=...)``
per object -> the apiserver's ``Table`` response.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from machinery.timefmt import aware, human_duration, parse_rfc3339

from .jsonpath import JSONPathError, find_results, parse, print_value

# metav1.ObjectMeta's swagger docs, which Kubernetes puts in the implicit columns' descriptions.
NAME_DESCRIPTION = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources may "
    "allow a client to request the generation of an appropriate name automatically. Name is primarily intended "
    "for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
CREATION_TIMESTAMP_DESCRIPTION = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. "
    "It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
DEFAULT_COLUMNS: list[dict[str, Any]] = [
    {"name": "Age", "type": "date", "description": CREATION_TIMESTAMP_DESCRIPTION,
     "jsonPath": ".metadata.creationTimestamp"}]


def served_columns(columns: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The columns a version's table shows: its own or, when it has none, Age (serveDefaultColumnsIfEmpty).

    As in Kubernetes (the convertor keeps what it built before the error), a column whose path does
    not parse drops itself and every column after it.
    """
    served: list[dict[str, Any]] = []
    for col in columns or DEFAULT_COLUMNS:
        try:
            parse(str(col.get("jsonPath", "")))
        except JSONPathError:
            break
        served.append(col)
    return served


def column_definitions(columns: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The Table's ``columnDefinitions``: Name, then each printer column."""
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION,
                    "priority": 0}]
    for col in served_columns(columns):
        definitions.append({
            "name": col.get("name", ""),
            "type": col.get("type", ""),
            "format": col.get("format", ""),
            "description": col.get("description")
            or f"Custom resource definition column (in JSONPath format): {col.get('jsonPath', '')}",
            "priority": int(col.get("priority") or 0),
        })
    return definitions


def _date_cell(value: str, now: datetime) -> str:
    """metav1.Time.UnmarshalQueryParameter + ConvertToHumanReadableDateType."""
    if value in ("", "null"):
        return "<unknown>"
    try:
        moment = parse_rfc3339(value)
    except ValueError:
        return "<invalid>"
    return human_duration((aware(now) - moment).total_seconds())


def cell_for_value(column_type: str, value: Any, *, now: datetime) -> Any:
    """cellForJSONValue (and PrintResults for string columns): one value as a cell of its column type."""
    if column_type == "string":
        return print_value(value)
    if value is None:
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if column_type == "integer" and is_number:
        # JSON has no infinity or NaN (a Python-decoded body can): no integer cell for them.
        return int(value) if math.isfinite(value) else None
    if column_type == "number" and is_number:
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        return _date_cell(value, now)
    return None


def row_cells(columns: list[dict[str, Any]] | None, obj: dict[str, Any], *, now: datetime) -> list[Any]:
    """A ``TableRow``'s cells: the name, then one per served column (``None`` where nothing fits)."""
    cells: list[Any] = [(obj.get("metadata") or {}).get("name", "")]
    for col in served_columns(columns):
        try:
            results = find_results(parse(str(col.get("jsonPath", ""))), obj)
        except JSONPathError:
            results = []
        if not results or not results[0]:
            cells.append(None)
            continue
        cells.append(cell_for_value(str(col.get("type", "")), results[0][0], now=now))
    return cells
