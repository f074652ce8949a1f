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


def test_namespaces_with_custom_resources_empty_and_go_as_crds_come_and_go(http: httpx.Client) -> None:
    """The controller discovers what to delete every time: custom resources of a CRD created after it
    started are deleted with their namespace, and a CRD deleted meanwhile does not hold anyone up."""
    group = f"nsctl{int(time.time() * 1000) % 10**9}.example.com"
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    r = http.post(crds, json={"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                              "metadata": {"name": f"widgets.{group}"},
                              "spec": {"group": group, "scope": "Namespaced",
                                       "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                                       "versions": [{"name": "v1", "served": True, "storage": True,
                                                     "schema": {"openAPIV3Schema": schema}}]}})
    assert r.status_code == 201, r.text
    deadline = time.monotonic() + 10
    while http.get(f"/apis/{group}/v1").status_code != 200:
        assert time.monotonic() < deadline, "the CRD was not served"
        time.sleep(0.1)

    def make_namespace_with_widget(name: str) -> None:
        assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        r = http.post(f"/apis/{group}/v1/namespaces/{name}/widgets",
                      json={"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}})
        assert r.status_code == 201, r.text

    def wait_gone(path: str, seconds: float = 25) -> None:
        end = time.monotonic() + seconds
        while http.get(path).status_code != 404:
            assert time.monotonic() < end, f"{path} is still there"
            time.sleep(0.2)

    make_namespace_with_widget("ns-ctl-cr-1")
    assert http.delete("/api/v1/namespaces/ns-ctl-cr-1").status_code == 200
    wait_gone("/api/v1/namespaces/ns-ctl-cr-1")
    assert http.get(f"/apis/{group}/v1/namespaces/ns-ctl-cr-1/widgets/w").status_code == 404
    # The CRD goes (its objects with it); a namespace deleted afterwards is not held up by it.
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": "ns-ctl-cr-2"}}).status_code == 201
    assert http.delete(f"{crds}/widgets.{group}").status_code == 200
    wait_gone(f"{crds}/widgets.{group}")
    assert http.delete("/api/v1/namespaces/ns-ctl-cr-2").status_code == 200
    wait_gone("/api/v1/namespaces/ns-ctl-cr-2")
