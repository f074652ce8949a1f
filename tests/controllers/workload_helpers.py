"""Test helpers shared by the controller tests: object builders and pod readiness without a kubelet."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from machinery.client import ApiClient

Obj = dict[str, Any]
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
_uids = itertools.count(1)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def template(image: str = "nginx:1", labels: dict[str, str] | None = None) -> Obj:
    return {"metadata": {"labels": dict(labels or {"app": "web"})},
            "spec": {"containers": [{"name": "c", "image": image}]}}


def pod(name: str, *, labels: dict[str, str] | None = None, owner: Obj | None = None, node: str = "",
        phase: str = "Running", ready: bool = True, created: float = 0, ready_at: float | None = None,
        restarts: int = 0, deleting: bool = False) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "uid": f"pod-{name}", "labels": dict(labels or {"app": "web"}),
                 "creationTimestamp": ts(created), "resourceVersion": "1"}
    if owner is not None:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    if deleting:
        meta["deletionTimestamp"] = ts(1000)
    status: Obj = {"phase": phase,
                   "containerStatuses": [{"name": "c", "ready": ready, "restartCount": restarts}]}
    if phase == "Running":
        status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                 "lastTransitionTime": ts(ready_at if ready_at is not None else created)}]
    spec: Obj = {"containers": [{"name": "c", "image": "nginx:1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def replica_set(name: str = "rs", replicas: int = 3, *, uid: str | None = None, generation: int = 1,
                min_ready: int = 0, labels: dict[str, str] | None = None) -> Obj:
    labels = labels or {"app": "web"}
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                 "template": template(labels=labels)}
    if min_ready:
        spec["minReadySeconds"] = min_ready
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "ns", "uid": uid or f"rs-uid-{next(_uids)}",
                         "generation": generation, "resourceVersion": "1", "creationTimestamp": ts(0)},
            "spec": spec}


async def until(cond: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def make_ready(client: ApiClient, p: Obj) -> Obj:
    """What a kubelet would report: Running, Ready=True, containers ready (PUT pods/x/status)."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {**p, "status": {
        "phase": "Running", "podIP": "10.244.0.1", "startTime": now,
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": now}
                       for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
        "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                               "started": True, "restartCount": 0, "state": {"running": {"startedAt": now}}}
                              for c in p["spec"]["containers"]]}}
    return await client.update_status("pods", body)
