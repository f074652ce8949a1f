"""Printer columns: kubectl's JSONPath (client-go) and the CRD table convertor's cells."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from apiserver.crd import column_definitions, evaluate, row_cells, validate_jsonpath
from apiserver.crd.columns import NAME_DESCRIPTION

Obj = dict[str, Any]
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def stamp(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


OBJ: Obj = {
    "apiVersion": "stable.example.com/v1", "kind": "CronTab",
    "metadata": {"name": "my-new-cron-object", "creationTimestamp": stamp(timedelta(seconds=7)),
                 "labels": {"app": "web", "app.kubernetes.io/name": "cron"},
                 "annotations": {"example.com/owner": "team-a"}},
    "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 1,
             "items": [{"name": "a", "size": 1}, {"name": "b", "size": 3}, {"name": "c"}],
             "list": [10, 20, 30], "ratio": 0.5, "enabled": True, "nothing": None, "nested": {"x": [1, "y"]}},
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]},
}


@pytest.mark.parametrize("path, values", [
    (".spec.replicas", [1]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    (".status.conditions[?(@.type=='Synced')].status", ["False"]),
    ('.status.conditions[?(@.type!="Ready")].type', ["Synced"]),
    (".spec.items[*].name", ["a", "b", "c"]),
    (".spec.items[?(@.size > 1)].name", ["b"]),
    (".spec.items[?(@.size)].name", ["a", "b"]),
    (".spec.items[?(@.size <= 1)].name", ["a"]),
    (".spec.items[?(@.size >= 1)].name", ["a", "b"]),
    (".spec.items[?(@.size < 3)].name", ["a"]),
    (".spec.list[0]", [10]),
    (".spec.list[-1]", [30]),
    (".spec.list[1:]", [20, 30]),
    (".spec.list[::2]", [10, 30]),
    (".spec.list[0,2]", [10, 30]),
    (".spec.list[5]", []),
    (".metadata.labels.app", ["web"]),
    (".metadata.annotations.example\\.com/owner", ["team-a"]),
    ("['metadata']['name']", ["my-new-cron-object"]),
    # as in client-go, a dot inside a quoted key still splits it
    (".metadata.labels['app.kubernetes.io/name']", []),
    (".spec.missing.deeper", []),
    (".spec.nothing", [None]),
    ("..name", ["my-new-cron-object", "a", "b", "c"]),
    (".spec.items[?(@.size == 1.0)].name", []),  # int64 against float64: a comparison error, so no value
])
def test_evaluate(path: str, values: list[Any]) -> None:
    assert evaluate(path, OBJ) == values


@pytest.mark.parametrize("path, error", [
    (".spec.replicas", None),
    (".spec[", "unterminated array"),
    (".spec[x]", "invalid array index x"),
    (".spec.items[?(@.name=='a']", "unterminated filter"),
    (".spec.a#b", None),
    (".spec.items[?(@.a)x", "unclosed array expect ]"),
    ("{.spec}", "unrecognized character in action: U+007B '{'"),
    (".spec.'x", None),  # a quote inside a field name is part of the name
    ("'x", "unterminated quoted string"),
    ("...x", None),
    ("....x", "invalid multiple recursive descent"),
])
def test_validate_jsonpath(path: str, error: str | None) -> None:
    assert validate_jsonpath(path) == error


# The "Additional printer columns" section of the docs.
DOCS_COLUMNS: list[Obj] = [
    {"name": "Spec", "type": "string", "description": "The cron spec defining the interval a CronJob is run",
     "jsonPath": ".spec.cronSpec"},
    {"name": "Replicas", "type": "integer", "description": "The number of jobs launched by the CronJob",
     "jsonPath": ".spec.replicas"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def test_docs_printer_columns() -> None:
    assert column_definitions(DOCS_COLUMNS) == [
        {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0},
        {"name": "Spec", "type": "string", "format": "", "priority": 0,
         "description": "The cron spec defining the interval a CronJob is run"},
        {"name": "Replicas", "type": "integer", "format": "", "priority": 0,
         "description": "The number of jobs launched by the CronJob"},
        {"name": "Age", "type": "date", "format": "", "priority": 0,
         "description": "Custom resource definition column (in JSONPath format): .metadata.creationTimestamp"},
    ]
    # NAME SPEC REPLICAS AGE / my-new-cron-object * * * * */5 1 7s
    assert row_cells(DOCS_COLUMNS, OBJ, now=NOW) == ["my-new-cron-object", "* * * * */5", 1, "7s"]


def test_versions_without_columns_get_age() -> None:
    assert [c["name"] for c in column_definitions([])] == ["Name", "Age"]
    assert column_definitions(None)[1]["description"].startswith("CreationTimestamp is a timestamp")
    assert row_cells(None, OBJ, now=NOW) == ["my-new-cron-object", "7s"]


@pytest.mark.parametrize("col_type, path, cell", [
    ("integer", ".spec.replicas", 1),
    ("integer", ".spec.ratio", 0),           # int64(float) truncates
    ("integer", ".spec.image", None),        # a mismatching value is omitted
    ("number", ".spec.replicas", 1.0),
    ("number", ".spec.ratio", 0.5),
    ("boolean", ".spec.enabled", True),
    ("boolean", ".spec.replicas", None),
    ("string", ".spec.image", "my-awesome-cron-image"),
    ("string", ".spec.replicas", "1"),
    ("string", ".spec.ratio", "0.5"),
    ("string", ".spec.enabled", "true"),
    ("string", ".spec.nested", '{"x":[1,"y"]}'),
    ("string", ".spec.nothing", "<no value>"),
    ("string", ".spec.missing", None),
    ("string", ".spec.items[*].name", "a"),  # only the first of several results
    ("string", ".spec.list[9]", None),       # an evaluation error leaves the cell empty
    ("date", ".metadata.creationTimestamp", "7s"),
    ("date", ".spec.image", "<invalid>"),
    ("date", ".spec.replicas", None),
    ("number", ".spec.nothing", None),
])
def test_cells_by_column_type(col_type: str, path: str, cell: Any) -> None:
    assert row_cells([{"name": "C", "type": col_type, "jsonPath": path}], OBJ, now=NOW) == ["my-new-cron-object", cell]


@pytest.mark.parametrize("ago, age", [(timedelta(seconds=90), "90s"), (timedelta(minutes=5), "5m"),
                                      (timedelta(hours=3, minutes=20), "3h20m"), (timedelta(days=3, hours=1), "3d1h")])
def test_date_cells_are_ages(ago: timedelta, age: str) -> None:
    obj = {"metadata": {"name": "x"}, "status": {"lastRun": stamp(ago), "empty": ""}}
    cols = [{"name": "Last", "type": "date", "jsonPath": ".status.lastRun"},
            {"name": "Empty", "type": "date", "jsonPath": ".status.empty"}]
    assert row_cells(cols, obj, now=NOW) == ["x", age, "<unknown>"]


def test_priority_and_format_are_carried_to_the_definitions() -> None:
    cols = [{"name": "Image", "type": "string", "format": "byte", "priority": 1, "jsonPath": ".spec.image"}]
    assert column_definitions(cols)[1] == {
        "name": "Image", "type": "string", "format": "byte", "priority": 1,
        "description": "Custom resource definition column (in JSONPath format): .spec.image"}


def test_an_unparsable_column_drops_itself_and_the_columns_after_it() -> None:
    cols = [{"name": "A", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "B", "type": "string", "jsonPath": ".spec["},
            {"name": "C", "type": "string", "jsonPath": ".spec.image"}]
    assert [c["name"] for c in column_definitions(cols)] == ["Name", "A"]
    assert row_cells(cols, OBJ, now=NOW) == ["my-new-cron-object", 1]
