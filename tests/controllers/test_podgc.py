"""The pod garbage collector: the pure choices, then passes against the real apiserver."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from controllers.podgc import PodGCController
from controllers.podgcplan import (failed_status, gc_order, missing_nodes, orphaned, terminated_beyond,
                                   terminating_out_of_service, unscheduled_terminating)
from machinery.client import ApiClient
from machinery.sharedinformers import InformerFactory

Obj = dict[str, Any]


def pod(name: str, *, phase: str = "Running", node: str = "n1", created: str = "2026-01-01T00:00:00Z",
        deleting: bool = False, reason: str = "") -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: Obj = {"phase": phase}
    if reason:
        status["reason"] = reason
    return {"metadata": meta, "spec": {"nodeName": node}, "status": status}


def node(name: str, *, ready: bool = True, taints: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": name}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def names(pods: list[Obj]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_terminated_beyond_the_threshold_evicted_then_oldest_first() -> None:
    pods = [pod("new", phase="Succeeded", created="2026-01-03T00:00:00Z"),
            pod("old", phase="Failed", created="2026-01-01T00:00:00Z"),
            pod("evicted", phase="Failed", reason="Evicted", created="2026-01-05T00:00:00Z"),
            pod("mid", phase="Succeeded", created="2026-01-02T00:00:00Z"),
            pod("running"), pod("pending", phase="Pending")]
    assert names(terminated_beyond(pods, 2)) == ["evicted", "old"]
    assert terminated_beyond(pods, 4) == [] and terminated_beyond(pods, 0) == []
    assert names(gc_order([pod("b"), pod("a")])) == ["a", "b"]  # same age: by name


def test_orphans_and_unscheduled_terminating() -> None:
    pods = [pod("a", node="gone"), pod("b", node="n1"), pod("c", node="", deleting=True), pod("d", node="")]
    assert missing_nodes(pods, {"n1"}) == {"gone"}
    assert names(orphaned(pods, {"gone"})) == ["a"]
    assert names(unscheduled_terminating(pods)) == ["c"]


@pytest.mark.parametrize("ready,taint,deleting,chosen", [
    (False, "node.kubernetes.io/out-of-service", True, True),
    (True, "node.kubernetes.io/out-of-service", True, False),
    (False, "node.kubernetes.io/unreachable", True, False),
    (False, "node.kubernetes.io/out-of-service", False, False),
])
def test_terminating_on_out_of_service_nodes(ready: bool, taint: str, deleting: bool, chosen: bool) -> None:
    nodes = {"n1": node("n1", ready=ready, taints=[{"key": taint, "effect": "NoExecute"}])}
    assert bool(terminating_out_of_service([pod("a", deleting=deleting)], nodes)) is chosen


def test_failed_status_keeps_terminal_pods() -> None:
    assert failed_status(pod("a", phase="Succeeded"), condition=None, now="t") is None
    assert failed_status(pod("a"), condition={"type": "DisruptionTarget"}, now="t") == {
        "phase": "Failed", "conditions": [{"type": "DisruptionTarget", "lastProbeTime": None, "lastTransitionTime": "t"}]}


# ------------------------------------------------------------------------------ against the apiserver
def _pod(http: httpx.Client, ns: str, name: str, *, node: str, phase: str = "Running") -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json={
        "metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})
    assert r.status_code == 201, r.text
    live = r.json()
    live["status"]["phase"] = phase
    assert http.put(f"/api/v1/namespaces/{ns}/pods/{name}/status", json=live).status_code == 200


async def test_passes_remove_orphans_after_quarantine_and_trim_terminated(apiserver: Any, http: httpx.Client,
                                                                          namespace: str) -> None:
    node_name = f"node-{namespace}"
    assert http.post("/api/v1/nodes", json={"metadata": {"name": node_name}}).status_code == 201
    _pod(http, namespace, "orphan", node=f"missing-{namespace}")
    _pod(http, namespace, "kept", node=node_name)
    # A graceful delete of a pod on a node with no kubelet leaves it Terminating.
    _pod(http, namespace, "stuck", node=f"missing-{namespace}")
    http.delete(f"/api/v1/namespaces/{namespace}/pods/stuck")
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/stuck").json()["metadata"]["deletionTimestamp"]
    async with ApiClient(apiserver.url) as client:
        factory = InformerFactory(client)
        pods, nodes = factory.informer(("v1", "pods")), factory.informer(("v1", "nodes"))
        factory.start()
        try:
            await pods.wait_synced()
            await nodes.wait_synced()
            gc = PodGCController(client, pods, nodes, threshold=100000, quarantine=0.3, period=0.1)
            first = await gc.gc_once()
            assert f"{namespace}/orphan" not in first  # in quarantine
            await asyncio.sleep(0.4)
            second = await gc.gc_once()
            assert {f"{namespace}/orphan", f"{namespace}/stuck"} <= set(second)
            assert http.get(f"/api/v1/namespaces/{namespace}/pods/orphan").status_code == 404
            assert http.get(f"/api/v1/namespaces/{namespace}/pods/stuck").status_code == 404
            assert http.get(f"/api/v1/namespaces/{namespace}/pods/kept").status_code == 200
        finally:
            await factory.stop()
    http.delete(f"/api/v1/nodes/{node_name}")
