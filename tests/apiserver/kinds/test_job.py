"""Job: defaults, the generated selector, validation, update rules, the table row; over the API too."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.base import CreateContext
from apiserver.kinds.batch.job import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
UID = "1b2c3d4e-0000-4000-8000-000000000001"


def job(**spec: Any) -> dict[str, Any]:
    """The docs' pi Job."""
    base: dict[str, Any] = {
        "template": {"spec": {"containers": [{"name": "pi", "image": "perl:5.34.0",
                                              "command": ["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"]}],
                              "restartPolicy": "Never"}},
        "backoffLimit": 4}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi", "namespace": "ns"},
            "spec": {**base, **spec}}


def created(obj: dict[str, Any]) -> dict[str, Any]:
    """As the registry creates it: uid, defaults, prepare_for_create."""
    obj["metadata"]["uid"] = UID
    STRATEGY.defaults(obj)
    STRATEGY.prepare_for_create(obj, CreateContext(now=NOW))
    return obj


def test_defaults_and_generated_selector() -> None:
    obj = created(job())
    s = obj["spec"]
    assert (s["completions"], s["parallelism"], s["backoffLimit"]) == (1, 1, 4)
    assert (s["completionMode"], s["suspend"], s["manualSelector"]) == ("NonIndexed", False, False)
    assert s["podReplacementPolicy"] == "TerminatingOrFailed"
    assert s["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}}
    assert s["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": UID, "batch.kubernetes.io/job-name": "pi",
        "controller-uid": UID, "job-name": "pi"}
    assert obj["status"] == {}
    assert obj["metadata"]["labels"] == s["template"]["metadata"]["labels"]  # as Kubernetes shows it
    assert validate_object(STRATEGY, obj) == []


def test_only_parallelism_leaves_completions_unset() -> None:
    obj = created(job(parallelism=3, backoffLimit=None))
    assert "completions" not in obj["spec"] and obj["spec"]["parallelism"] == 3 and obj["spec"]["backoffLimit"] == 6


def test_failure_policy_defaults_replacement_and_pattern_status() -> None:
    policy = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    obj = created(job(podFailurePolicy=policy))
    assert obj["spec"]["podReplacementPolicy"] == "Failed"
    assert obj["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"] == "True"
    assert validate_object(STRATEGY, obj) == []


@pytest.mark.parametrize(("change", "field", "reason"), [
    ({"parallelism": -1}, "spec.parallelism", "FieldValueInvalid"),
    ({"completions": -2}, "spec.completions", "FieldValueInvalid"),
    ({"backoffLimit": -1}, "spec.backoffLimit", "FieldValueInvalid"),
    ({"activeDeadlineSeconds": -5}, "spec.activeDeadlineSeconds", "FieldValueInvalid"),
    ({"completionMode": "Sometimes"}, "spec.completionMode", "FieldValueNotSupported"),
    ({"completionMode": "Indexed", "parallelism": 2, "completions": None}, "spec.completions", "FieldValueRequired"),
    ({"podReplacementPolicy": "Whenever"}, "spec.podReplacementPolicy", "FieldValueNotSupported"),
    ({"podFailurePolicy": {"rules": [{"action": "Explode", "onExitCodes": {"operator": "In", "values": [1]}}]}},
     "spec.podFailurePolicy.rules[0].action", "FieldValueNotSupported"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.values[0]", "FieldValueInvalid"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 2]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.values[1]", "FieldValueInvalid"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob"}]}}, "spec.podFailurePolicy.rules[0]", "FieldValueInvalid"),
    ({"completionMode": "Indexed", "completions": 2, "maxFailedIndexes": 1}, "spec.backoffLimitPerIndex",
     "FieldValueRequired"),
    ({"completionMode": "Indexed", "completions": 2, "backoffLimitPerIndex": 1, "maxFailedIndexes": 3},
     "spec.maxFailedIndexes", "FieldValueInvalid"),
    ({"backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex", "FieldValueInvalid"),
    ({"successPolicy": {"rules": [{"succeededCount": 1}]}}, "spec.successPolicy", "FieldValueInvalid"),
    ({"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{}]}},
     "spec.successPolicy.rules[0]", "FieldValueRequired"),
    ({"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": "2-1"}]}},
     "spec.successPolicy.rules[0].succeededIndexes", "FieldValueInvalid"),
    ({"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [{"succeededIndexes": "0-5"}]}},
     "spec.successPolicy.rules[0].succeededIndexes", "FieldValueInvalid"),
    ({"completionMode": "Indexed", "completions": 3, "successPolicy": {"rules": [
        {"succeededIndexes": "0,1", "succeededCount": 3}]}}, "spec.successPolicy.rules[0].succeededCount",
     "FieldValueInvalid"),
    ({"podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}},
     "spec.podFailurePolicy.rules[0].action", "FieldValueInvalid"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {
        "containerName": "nope", "operator": "In", "values": [1]}}]}},
     "spec.podFailurePolicy.rules[0].onExitCodes.containerName", "FieldValueInvalid"),
])
def test_invalid_jobs(change: dict[str, Any], field: str, reason: str) -> None:
    obj = job(**change)
    if obj["spec"].get("completions", 0) is None:
        del obj["spec"]["completions"]
    created(obj)
    if change.get("completions", 0) is None:
        obj["spec"].pop("completions", None)
    assert (field, reason) in [(c.field, c.reason) for c in validate_object(STRATEGY, obj)]


def test_restart_policy_always_is_refused_as_kubernetes_says() -> None:
    obj = job()
    del obj["spec"]["template"]["spec"]["restartPolicy"]
    causes = validate_object(STRATEGY, created(obj))
    cause = next(c for c in causes if c.field == "spec.template.spec.restartPolicy")
    assert cause.reason == "FieldValueNotSupported"
    assert cause.message == 'Unsupported value: "Always": supported values: "OnFailure", "Never"'
    obj = created(job(podFailurePolicy={"rules": [{"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}}]}))
    obj["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert ("spec.template.spec.restartPolicy", "FieldValueInvalid") in [
        (c.field, c.reason) for c in validate_object(STRATEGY, obj)]


def test_a_foreign_selector_is_not_auto_generated() -> None:
    obj = job(selector={"matchLabels": {"app": "x"}})
    obj["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    causes = [(c.field, c.reason) for c in validate_object(STRATEGY, created(obj))]
    assert ("spec.selector", "FieldValueInvalid") in causes
    manual = job(selector={"matchLabels": {"app": "x"}}, manualSelector=True)
    manual["spec"]["template"]["metadata"] = {"labels": {"app": "x"}}
    assert validate_object(STRATEGY, created(manual)) == []


def test_update_rules() -> None:
    old = created(job())
    old["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    for path, value in (("selector", {"matchLabels": {"a": "b"}}), ("completions", 3),
                        ("completionMode", "Indexed")):
        new = copy.deepcopy(old)
        new["spec"][path] = value
        assert f"spec.{path}" in [c.field for c in STRATEGY.validate_update(new, old)], path
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "perl:6"
    assert [c.message for c in STRATEGY.validate_update(new, old)] == [
        next(c.message for c in STRATEGY.validate_update(new, old))]
    assert STRATEGY.validate_update(new, old)[0].field == "spec.template"
    new = copy.deepcopy(old)
    new["spec"]["parallelism"], new["spec"]["suspend"], new["spec"]["activeDeadlineSeconds"] = 4, True, 30
    assert STRATEGY.validate_update(new, old) == []
    # A suspended Job that never started may change its scheduling directives.
    suspended = created(job(suspend=True))
    moved = copy.deepcopy(suspended)
    moved["spec"]["template"]["spec"]["nodeSelector"] = {"disk": "ssd"}
    assert STRATEGY.validate_update(moved, suspended) == []
    # Indexed Jobs are elastic: completions may change in tandem with parallelism.
    indexed = created(job(completionMode="Indexed", completions=3, parallelism=3))
    grown = copy.deepcopy(indexed)
    grown["spec"]["completions"] = grown["spec"]["parallelism"] = 5
    assert STRATEGY.validate_update(grown, indexed) == []
    grown["spec"]["parallelism"] = 4
    assert [c.field for c in STRATEGY.validate_update(grown, indexed)] == ["spec.completions"]


@pytest.mark.parametrize(("spec", "state", "cells"), [
    ({"completions": 5}, {"succeeded": 2, "startTime": "2024-05-01T11:59:00Z"}, ["Running", "2/5", "60s"]),
    ({"completions": 1}, {"succeeded": 1, "startTime": "2024-05-01T11:00:00Z", "completionTime": "2024-05-01T11:00:07Z",
                          "conditions": [{"type": "Complete", "status": "True"}]}, ["Complete", "1/1", "7s"]),
    ({"completions": None, "parallelism": 3}, {"conditions": [{"type": "Failed", "status": "True"}]},
     ["Failed", "0/1 of 3", ""]),
    ({"completions": 2, "suspend": True}, {"conditions": [{"type": "Suspended", "status": "True"}]},
     ["Suspended", "0/2", ""]),
])
def test_row(spec: dict[str, Any], state: dict[str, Any], cells: list[Any]) -> None:
    obj = created(job(**spec))
    if spec.get("completions", 0) is None:
        obj["spec"].pop("completions")
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    obj["status"] = state
    row = STRATEGY.row(obj, NOW)
    assert row[1:4] == cells
    assert row[0] == "pi" and row[4] == "60m" and row[5:7] == ["pi", "perl:5.34.0"]
    assert row[7] == f"batch.kubernetes.io/controller-uid={UID}"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Status", "Completions", "Duration", "Age", "Containers",
                                                   "Images", "Selector"]


def test_jobs_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    r = http.post(url, json={**job(), "metadata": {"name": "pi"}})
    assert r.status_code == 201, r.text
    body = r.json()
    uid = body["metadata"]["uid"]
    assert body["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert body["status"] == {}
    r = http.patch(f"{url}/pi", json={"spec": {"template": {"spec": {"containers": [
        {"name": "pi", "image": "perl:6"}]}}}}, headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.template", r.text
    bad = job()
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    r = http.post(url, json={**bad, "metadata": {"name": "bad"}})
    assert r.status_code == 422 and "spec.template.spec.restartPolicy" in r.text, r.text
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert table["rows"][0]["cells"][:3] == ["pi", "Running", "0/1"]
    r = http.get(url, params={"fieldSelector": "status.successful=0"})
    assert [i["metadata"]["name"] for i in r.json()["items"]] == ["pi"]
    resources = {x["name"]: x for x in http.get("/apis/batch/v1").json()["resources"]}
    assert "jobs/status" in resources and resources["jobs"]["categories"] == ["all"]
