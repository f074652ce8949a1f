"""The resource quota controller's plan: status from the namespace's objects, what it watches."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from controllers.resourcequotaplan import calculate_status, needed_resources, status_changed, usage_changed

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def pod(name: str, *, cpu: str | None = None, phase: str = "Running", **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu, "memory": "64Mi"}}
    return {"metadata": {"name": name, "namespace": "ns"}, "spec": {"containers": [container], **spec},
            "status": {"phase": phase}}


def quota(hard: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "q", "namespace": "ns"}, "spec": {"hard": hard, **spec}}


def test_usage_of_live_pods_only() -> None:
    q = quota({"pods": "5", "count/pods": "9", "requests.cpu": "2", "limits.memory": "1Gi", "services": "1"})
    pods = [pod("a", cpu="500m"), pod("b", cpu="250m"), pod("done", cpu="1", phase="Succeeded"), pod("c")]
    status = calculate_status(q, {"pods": pods, "services": []}, now=NOW)
    assert status == {"hard": q["spec"]["hard"], "used": {
        "count/pods": "4", "limits.memory": "128Mi", "pods": "3", "requests.cpu": "750m", "services": "0"}}


def test_scopes_and_missing_resources() -> None:
    q = quota({"pods": "5", "count/widgets.example.com": "2"}, scopes=["BestEffort"])
    status = calculate_status(q, {"pods": [pod("a", cpu="1"), pod("b")]}, now=NOW)
    assert status["used"] == {"count/widgets.example.com": "0", "pods": "1"}
    assert needed_resources(q) == {"pods", "widgets.example.com"}
    assert needed_resources(quota({"requests.storage": "1Gi", "cpu": "1", "secrets": "1"})) == {
        "persistentvolumeclaims", "pods", "secrets"}


def test_status_changed_compares_quantities() -> None:
    q = quota({"pods": "2"})
    assert status_changed(q, {"hard": {"pods": "2"}, "used": {"pods": "0"}})
    q["status"] = {"hard": {"pods": "2"}, "used": {"pods": "0"}}
    assert not status_changed(q, {"hard": {"pods": "2"}, "used": {"pods": "0"}})
    q["status"]["used"] = {"requests.cpu": "1000m"}
    assert not status_changed({**q, "spec": {"hard": {"pods": "2"}}}, {"hard": {"pods": "2"}, "used": {"requests.cpu": "1"}})


def test_usage_changed() -> None:
    running, finished = pod("a", cpu="1"), pod("a", cpu="1", phase="Failed")
    assert usage_changed("pods", running, finished, now=NOW)
    assert not usage_changed("pods", running, {**running, "metadata": {**running["metadata"], "labels": {"x": "y"}}},
                             now=NOW)
    assert usage_changed("pods", running, None, now=NOW)
    assert not usage_changed("pods", None, running, now=NOW)
