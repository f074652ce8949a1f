"""CronJob: defaults, schedule/timeZone/template validation, the table row; over the API too."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.batch.cronjob import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def cronjob(**spec: Any) -> dict[str, Any]:
    """The docs' hello CronJob."""
    base: dict[str, Any] = {
        "schedule": "* * * * *",
        "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "hello", "image": "busybox:1.28", "imagePullPolicy": "IfNotPresent",
                            "command": ["/bin/sh", "-c", "date; echo Hello from the Kubernetes cluster"]}],
            "restartPolicy": "OnFailure"}}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "hello", "namespace": "ns"},
            "spec": {**base, **spec}}


def test_defaults() -> None:
    obj = cronjob()
    STRATEGY.defaults(obj)
    s = obj["spec"]
    assert (s["concurrencyPolicy"], s["suspend"], s["successfulJobsHistoryLimit"], s["failedJobsHistoryLimit"]) == (
        "Allow", False, 3, 1)
    assert s["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert "backoffLimit" not in s["jobTemplate"]["spec"]
    assert validate_object(STRATEGY, obj) == []


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"schedule": ""}, "spec.schedule", "Required value"),
    ({"schedule": "61 * * * *"}, "spec.schedule", 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61'),
    ({"schedule": "TZ=UTC 0 * * * *"}, "spec.schedule",
     'Invalid value: "TZ=UTC 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead'),
    ({"schedule": "CRON_TZ=UTC 0 * * * *", "timeZone": "UTC"}, "spec.schedule",
     'Invalid value: "CRON_TZ=UTC 0 * * * *": cannot use both timeZone field and TZ or CRON_TZ in schedule'),
    ({"timeZone": "Mars/Olympus"}, "spec.timeZone", 'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus'),
    ({"concurrencyPolicy": "Sometimes"}, "spec.concurrencyPolicy",
     'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"'),
    ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds", "Invalid value: -1: must be greater than or equal to 0"),
    ({"failedJobsHistoryLimit": -1}, "spec.failedJobsHistoryLimit", "Invalid value: -1: must be greater than or equal to 0"),
])
def test_invalid_cronjobs(change: dict[str, Any], field: str, message: str) -> None:
    obj = cronjob(**change)
    STRATEGY.defaults(obj)
    assert (field, message) in [(c.field, c.message) for c in validate_object(STRATEGY, obj)]


def test_template_rules_and_name_length() -> None:
    obj = cronjob()
    obj["spec"]["jobTemplate"]["spec"]["selector"] = {"matchLabels": {"a": "b"}}
    obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    obj["metadata"]["name"] = "x" * 53
    STRATEGY.defaults(obj)
    fields = [c.field for c in validate_object(STRATEGY, obj)]
    assert {"spec.jobTemplate.spec.selector", "spec.jobTemplate.spec.template.spec.restartPolicy",
            "metadata.name"} <= set(fields)


def test_row() -> None:
    obj = cronjob(timeZone="Europe/Berlin")
    STRATEGY.defaults(obj)
    obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    obj["status"] = {"active": [{"name": "a"}], "lastScheduleTime": "2024-05-01T11:59:00Z"}
    assert [c.name for c in STRATEGY.columns] == ["Name", "Schedule", "Timezone", "Suspend", "Active",
                                                   "Last Schedule", "Age", "Containers", "Images", "Selector"]
    assert STRATEGY.row(obj, NOW) == ["hello", "* * * * *", "Europe/Berlin", "False", 1, "60s", "120m", "hello",
                                      "busybox:1.28", "<none>"]
    bare = cronjob()
    bare["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z"
    assert STRATEGY.row(bare, NOW)[2:6] == ["<none>", "<unset>", 0, "<none>"]


def test_cronjobs_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/batch/v1/namespaces/{namespace}/cronjobs"
    r = http.post(url, json={**cronjob(), "metadata": {"name": "hello"}})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == {} and r.json()["spec"]["concurrencyPolicy"] == "Allow"
    r = http.post(url, json={**cronjob(schedule="every minute"), "metadata": {"name": "bad"}})
    assert r.status_code == 422 and r.json()["details"]["causes"][0]["field"] == "spec.schedule", r.text
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert table["rows"][0]["cells"][:6] == ["hello", "* * * * *", "<none>", "False", 0, "<none>"]
    resources = {x["name"]: x for x in http.get("/apis/batch/v1").json()["resources"]}
    assert resources["cronjobs"]["shortNames"] == ["cj"] and "cronjobs/status" in resources
