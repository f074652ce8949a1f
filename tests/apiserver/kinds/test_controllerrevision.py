"""ControllerRevision (apps/v1): validation, the immutable data, the table; over the real API too."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.apps.controllerrevision import STRATEGY, controller_cell

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
OWNER = {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "web", "uid": "u1", "controller": True}


def revision(name: str = "web-abc", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
                            "metadata": {"name": name},
                            "data": {"spec": {"template": {"$patch": "replace"}}}, "revision": 1}
    body.update(fields)
    return body


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    return {(c.field, c.reason) for c in validate_object(STRATEGY, obj, old=old)}


@pytest.mark.parametrize("change,expected", [
    ({}, set()),
    ({"revision": 0}, set()),
    ({"revision": -1}, {("revision", "FieldValueInvalid")}),
    ({"revision": "one"}, {("revision", "FieldValueInvalid")}),
    ({"revision": None}, {("revision", "FieldValueRequired")}),
    ({"data": None}, {("data", "FieldValueRequired")}),
])
def test_validation(change: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    obj = revision()
    obj["metadata"]["namespace"] = "default"
    obj.update(change)
    if obj.get("revision") is None:
        obj.pop("revision")
    assert causes(obj) == expected


def test_data_is_immutable_the_revision_is_not() -> None:
    old = revision()
    old["metadata"]["namespace"] = "default"
    new = copy.deepcopy(old)
    new["revision"] = 7
    assert causes(new, old) == set()
    new["data"] = {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}
    assert ("data", "FieldValueInvalid") in causes(new, old)


@pytest.mark.parametrize("refs,cell", [
    ([], "<none>"),
    ([OWNER], "daemonset.apps/web"),
    ([{**OWNER, "controller": False}], "<none>"),
    ([{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u", "controller": True}], "pod/p"),
])
def test_controller_cell(refs: list[dict[str, Any]], cell: str) -> None:
    assert controller_cell({"metadata": {"ownerReferences": refs}}) == cell


def test_row() -> None:
    obj = revision(revision=3)
    obj["metadata"].update(ownerReferences=[OWNER], creationTimestamp="2024-05-01T11:00:00Z")
    assert STRATEGY.row(obj, NOW) == ["web-abc", "daemonset.apps/web", 3, "60m"]


def test_controller_revisions_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions"
    r = http.post(url, json=revision("r1", data={"spec": {"template": {"metadata": {"labels": {"a": "b"}},
                                                                     "$patch": "replace"}}}, revision=2))
    assert r.status_code == 201, r.text
    assert r.json()["data"]["spec"]["template"]["$patch"] == "replace"
    r = http.patch(f"{url}/r1", json={"data": {"x": 1}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "field is immutable" in r.text, r.text
    r = http.patch(f"{url}/r1", json={"revision": 5}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["revision"] == 5, r.text
    bad = revision("r2")
    del bad["revision"]
    r = http.post(url, json=bad)
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "revision", r.text
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Controller", "Revision", "Age"]
    assert table["rows"][0]["cells"][:3] == ["r1", "<none>", 5]
    resources = {x["name"]: x for x in http.get("/apis/apps/v1").json()["resources"]}
    assert resources["controllerrevisions"]["kind"] == "ControllerRevision"
