"""DaemonSet (apps/v1): defaults, validation, the template generation, the table; over the real API too."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.apps.daemonset import STRATEGY, TEMPLATE_GENERATION
from apiserver.kinds.base import CreateContext

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def daemonset(name: str = "agent", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}
    body["spec"].update(spec)
    return body


def causes(obj: dict[str, Any]) -> set[tuple[str, str]]:
    obj["metadata"].setdefault("namespace", "default")
    STRATEGY.defaults(obj)
    return {(c.field, c.reason) for c in validate_object(STRATEGY, obj)}


def test_defaults() -> None:
    obj = daemonset()
    STRATEGY.defaults(obj)
    assert obj["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                             "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}
    assert obj["spec"]["revisionHistoryLimit"] == 10
    assert obj["spec"]["template"]["spec"]["restartPolicy"] == "Always"
    on_delete = daemonset(updateStrategy={"type": "OnDelete"})
    STRATEGY.defaults(on_delete)
    assert on_delete["spec"]["updateStrategy"] == {"type": "OnDelete"}


def _rolling(**rolling: Any) -> dict[str, Any]:
    return {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": rolling}}


@pytest.mark.parametrize("spec,expected", [
    ({}, set()),
    (_rolling(maxUnavailable=0, maxSurge=1), set()),
    (_rolling(maxUnavailable="20%"), set()),
    (_rolling(maxSurge=1), {("spec.updateStrategy.rollingUpdate.maxSurge", "FieldValueInvalid")}),
    (_rolling(maxUnavailable=0), {("spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueRequired")}),
    (_rolling(maxUnavailable="120%"), {("spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueInvalid")}),
    (_rolling(maxUnavailable=-1), {("spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueInvalid")}),
    ({"updateStrategy": {"type": "Sometimes"}}, {("spec.updateStrategy", "FieldValueNotSupported")}),
    ({"selector": {"matchLabels": {"app": "other"}}}, {("spec.template.metadata.labels", "FieldValueInvalid")}),
    ({"selector": {}}, {("spec.selector", "FieldValueInvalid")}),
    ({"revisionHistoryLimit": -1}, {("spec.revisionHistoryLimit", "FieldValueInvalid")}),
    ({"minReadySeconds": -1}, {("spec.minReadySeconds", "FieldValueInvalid")}),
])
def test_validation(spec: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert causes(daemonset(**spec)) == expected


def test_restart_policy_must_be_always() -> None:
    obj = daemonset()
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert causes(obj) == {("spec.template.spec.restartPolicy", "FieldValueNotSupported")}


def test_template_generation_follows_template_changes() -> None:
    obj = daemonset()
    STRATEGY.prepare_for_create(obj, CreateContext(now=NOW))
    assert obj["metadata"]["annotations"][TEMPLATE_GENERATION] == "1"
    assert obj["status"]["desiredNumberScheduled"] == 0
    new = copy.deepcopy(obj)
    new["spec"]["minReadySeconds"] = 5
    STRATEGY.prepare_for_update(new, obj)
    assert new["metadata"]["annotations"][TEMPLATE_GENERATION] == "1"
    newer = copy.deepcopy(new)
    newer["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    newer["metadata"]["annotations"][TEMPLATE_GENERATION] = "9"  # not the client's to set
    STRATEGY.prepare_for_update(newer, new)
    assert newer["metadata"]["annotations"][TEMPLATE_GENERATION] == "2"


def test_selector_is_immutable() -> None:
    old = daemonset()
    new = daemonset(selector={"matchLabels": {"app": "agent", "x": "y"}})
    found = STRATEGY.validate_update(new, old)
    assert [c.field for c in found] == ["spec.selector"] and found[0].message.endswith("field is immutable")


def test_row() -> None:
    obj = daemonset()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    obj["spec"]["template"]["spec"]["nodeSelector"] = {"role": "edge"}
    obj["status"] = {"desiredNumberScheduled": 3, "currentNumberScheduled": 2, "numberReady": 1,
                     "updatedNumberScheduled": 2, "numberAvailable": 1}
    assert STRATEGY.row(obj, NOW) == ["agent", 3, 2, 1, 2, 1, "role=edge", "60m", "c", "busybox:1", "app=agent"]


def test_daemonsets_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/daemonsets"
    r = http.post(url, json=daemonset())
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["annotations"][TEMPLATE_GENERATION] == "1"
    assert created["status"] == {"currentNumberScheduled": 0, "numberMisscheduled": 0,
                                 "desiredNumberScheduled": 0, "numberReady": 0}
    r = http.patch(f"{url}/agent", json={"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "busybox:2"}]}}}}, headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["generation"] == 2
    assert r.json()["metadata"]["annotations"][TEMPLATE_GENERATION] == "2"
    r = http.patch(f"{url}/agent", json={"spec": {"selector": {"matchLabels": {"app": "x"}}}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "field is immutable" in r.text, r.text
    r = http.post(url, json=daemonset("bad", **_rolling(maxSurge=1)))
    assert r.status_code == 422 and "may not be set when maxUnavailable is non-zero" in r.text, r.text
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
        "Containers", "Images", "Selector"]
    resources = {x["name"]: x for x in http.get("/apis/apps/v1").json()["resources"]}
    assert resources["daemonsets"]["shortNames"] == ["ds"]
    assert "daemonsets/status" in resources
