"""Namespace controller: when to finalize (pure), and end to end through the session's controller-manager."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from controllers.namespace import plan_finalize


def ns(*, deleting: bool, finalizers: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x", "resourceVersion": "9"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"finalizers": finalizers}}


@pytest.mark.parametrize("obj,remaining,expected", [
    (ns(deleting=True, finalizers=["kubernetes"]), 0, []),
    (ns(deleting=True, finalizers=["kubernetes", "other"]), 0, ["other"]),
    (ns(deleting=True, finalizers=["kubernetes"]), 3, None),        # content left: not yet
    (ns(deleting=False, finalizers=["kubernetes"]), 0, None),       # not being deleted
    (ns(deleting=True, finalizers=[]), 0, None),                    # already finalized
])
def test_plan_finalize(obj: dict[str, Any], remaining: int, expected: list[str] | None) -> None:
    body = plan_finalize(obj, remaining)
    if expected is None:
        assert body is None
    else:
        assert body is not None and body["spec"]["finalizers"] == expected
        assert body["metadata"]["resourceVersion"] == "9"  # a compare-and-swap write


def test_deleting_a_namespace_waits_for_its_pods_then_goes(http: httpx.Client) -> None:
    name = "ns-ctl-e2e"
    http.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    pods = f"/api/v1/namespaces/{name}/pods"
    # A pod on a node is deleted gracefully: the namespace must wait until it is really gone.
    http.post(pods, json={"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i"}]}})
    http.post(f"/api/v1/namespaces/{name}/configmaps", json={"metadata": {"name": "c"}})
    assert http.delete(f"/api/v1/namespaces/{name}").status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and http.get(pods + "/p").json().get("metadata", {}).get("deletionTimestamp") is None:
        time.sleep(0.2)
    pod = http.get(pods + "/p").json()
    assert pod["metadata"]["deletionTimestamp"], "the controller deleted the pod (gracefully)"
    assert http.get(f"/api/v1/namespaces/{name}/configmaps/c").status_code == 404
    time.sleep(1.5)
    assert http.get(f"/api/v1/namespaces/{name}").json()["status"]["phase"] == "Terminating"
    # The "kubelet" finishes the pod; then the namespace goes.
    http.delete(pods + "/p", params={"gracePeriodSeconds": 0})
    while time.monotonic() < deadline + 10 and http.get(f"/api/v1/namespaces/{name}").status_code == 200:
        time.sleep(0.2)
    assert http.get(f"/api/v1/namespaces/{name}").status_code == 404
