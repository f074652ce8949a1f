"""The disruption controller: the pure status plan, then the controller against the real apiserver."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from controller_helpers import eventually, running

from controllers import disruption
from controllers.disruptionplan import (SyncError, cleared_disruption, fail_safe, plan, scaled_value,
                                       stale_disruption_wait)

Obj = dict[str, Any]
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def pod(name: str, *, ready: bool = True, owner: str | None = "rs-uid", deleting: bool = False,
        labels: dict[str, str] | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": "ns", "labels": labels if labels is not None else {"app": "web"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner,
                                    "controller": True}]
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(generation: int = 1, status: Obj | None = None, **spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "generation": generation},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, **spec}, "status": status or {}}


@pytest.mark.parametrize("value,total,up,expected", [
    (3, 10, True, 3), ("50%", 5, True, 3), ("50%", 5, False, 2), ("100%", 7, True, 7), ("0%", 4, True, 0),
])
def test_scaled_value(value: Any, total: int, up: bool, expected: int) -> None:
    assert scaled_value(value, total, round_up=up) == expected


def test_scaled_value_refuses_non_percent_strings() -> None:
    with pytest.raises(SyncError):
        scaled_value("half", 4, round_up=True)


@pytest.mark.parametrize("spec,scale,expected,desired,allowed", [
    ({"minAvailable": 2}, None, 5, 2, 1),  # an int minAvailable: expected = the pods selected (any state)
    ({"minAvailable": 3}, None, 5, 3, 0),
    ({"minAvailable": "50%"}, 4, 4, 2, 1),  # percent: the controller's scale, rounded up
    ({"maxUnavailable": 1}, 4, 4, 3, 0),
    ({"maxUnavailable": "25%"}, 8, 8, 6, 0),
    ({"maxUnavailable": 5}, 3, 3, 0, 3),
])
def test_status_from_pods_and_scale(spec: Obj, scale: int | None, expected: int, desired: int, allowed: int) -> None:
    pods = [pod("a"), pod("b"), pod("c"), pod("d", ready=False), pod("e", deleting=True),
            pod("other", labels={"app": "db"})]
    scales = {"rs-uid": ("deploy-uid", scale)} if scale is not None else {}
    p = plan(pdb(**spec), pods, scales, now=NOW)
    assert p.status is not None
    assert (p.status["expectedPods"], p.status["desiredHealthy"], p.status["currentHealthy"],
            p.status["disruptionsAllowed"]) == (expected, desired, 3, allowed)
    assert p.status["observedGeneration"] == 1
    cond = p.status["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == (
        "DisruptionAllowed", "True" if allowed else "False", "SufficientPods" if allowed else "InsufficientPods")


def test_two_replica_sets_of_one_deployment_count_once() -> None:
    pods = [pod("a", owner="rs-1"), pod("b", owner="rs-2")]
    p = plan(pdb(maxUnavailable=1), pods, {"rs-1": ("d", 2), "rs-2": ("d", 2)}, now=NOW)
    assert p.status is not None and p.status["expectedPods"] == 2


def test_a_pod_whose_controller_is_missing_fails_the_sync() -> None:
    with pytest.raises(SyncError, match='found no controllers for pod "a"'):
        plan(pdb(maxUnavailable=1), [pod("a")], {"rs-uid": None}, now=NOW)


def test_unmanaged_pods_are_reported_not_counted() -> None:
    p = plan(pdb(minAvailable="50%"), [pod("a", owner=None), pod("b")], {"rs-uid": ("rs-uid", 2)}, now=NOW)
    assert p.unmanaged == ["a"] and p.status is not None and p.status["expectedPods"] == 2


def test_disrupted_pods_do_not_count_until_they_expire() -> None:
    recent = (NOW - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    budget = pdb(minAvailable=1, status={"disruptedPods": {"a": recent, "b": old, "gone": recent}})
    p = plan(budget, [pod("a"), pod("b"), pod("c")], {}, now=NOW)
    assert p.status is not None
    assert p.status["disruptedPods"] == {"a": recent}  # b expired, gone's pod is gone
    assert p.status["currentHealthy"] == 2 and p.status["disruptionsAllowed"] == 1
    assert p.recheck_after == pytest.approx(90.0)


def test_nothing_expected_allows_nothing() -> None:
    p = plan(pdb(maxUnavailable=1), [], {}, now=NOW)
    assert p.status is not None and p.status["disruptionsAllowed"] == 0


def test_a_current_status_is_not_written_again() -> None:
    first = plan(pdb(minAvailable=1), [pod("a"), pod("b")], {}, now=NOW)
    assert first.status is not None
    again = plan(pdb(minAvailable=1, status=first.status), [pod("a"), pod("b")], {}, now=NOW + timedelta(seconds=5))
    assert again.status is None
    newer = plan(pdb(generation=2, minAvailable=1, status=first.status), [pod("a"), pod("b")], {}, now=NOW)
    assert newer.status is not None and newer.status["observedGeneration"] == 2


def test_fail_safe_allows_nothing() -> None:
    state = fail_safe(pdb(status={"disruptionsAllowed": 3, "observedGeneration": 1}), "boom", now=NOW)
    assert state["disruptionsAllowed"] == 0
    assert state["conditions"][0] == {"type": "DisruptionAllowed", "status": "False", "observedGeneration": 1,
                                      "reason": "SyncFailed", "message": "boom",
                                      "lastTransitionTime": "2026-01-01T12:00:00Z"}


def _target(pod_: Obj, *, at: datetime, reason: str = "EvictionByEvictionAPI", status: str = "True") -> Obj:
    pod_["status"]["conditions"].append({"type": "DisruptionTarget", "status": status, "reason": reason,
                                         "lastTransitionTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return pod_


@pytest.mark.parametrize("p,wait", [
    (pod("a"), None),
    (_target(pod("a"), at=NOW - timedelta(seconds=30)), 90.0),
    (_target(pod("a"), at=NOW - timedelta(minutes=5)), 0.0),
    (_target(pod("a", deleting=True), at=NOW - timedelta(minutes=5)), None),  # being deleted: not stale
    (_target(pod("a"), at=NOW, reason="TerminationByKubelet"), None),
    (_target(pod("a"), at=NOW, status="False"), None),
])
def test_stale_disruption_conditions(p: Obj, wait: float | None) -> None:
    assert stale_disruption_wait(p, NOW) == wait


def test_a_stale_condition_is_cleared_to_false() -> None:
    conds = _target(pod("a"), at=NOW - timedelta(minutes=5))["status"]["conditions"]
    assert cleared_disruption(conds, NOW) == [
        {"type": "Ready", "status": "True"},
        {"type": "DisruptionTarget", "status": "False", "lastProbeTime": None,
         "lastTransitionTime": "2026-01-01T12:00:00Z"}]


# ------------------------------------------------------------------------------ the controller
def _make(http: httpx.Client, path: str, body: Obj) -> Obj:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def _ready(http: httpx.Client, ns: str, name: str) -> None:
    live = http.get(f"/api/v1/namespaces/{ns}/pods/{name}").json()
    live["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    assert http.put(f"/api/v1/namespaces/{ns}/pods/{name}/status", json=live).status_code == 200


async def test_controller_keeps_pdb_status(apiserver: Any, http: httpx.Client, namespace: str) -> None:
    rs = _make(http, f"/apis/apps/v1/namespaces/{namespace}/replicasets", {
        "metadata": {"name": "web"}, "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                                              "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                                                  "containers": [{"name": "c", "image": "busybox"}]}}}})
    ref = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
           "controller": True}
    for i in range(3):
        _make(http, f"/api/v1/namespaces/{namespace}/pods", {
            "metadata": {"name": f"web-{i}", "labels": {"app": "web"}, "ownerReferences": [ref]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        _ready(http, namespace, f"web-{i}")
    base = f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
    _make(http, base, {"metadata": {"name": "int"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    _make(http, f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
          {"metadata": {"name": "pct"}, "spec": {"maxUnavailable": "50%", "selector": {"matchLabels": {"app": "web"}}}})

    def status(name: str) -> Obj:
        return dict(http.get(f"{base}/{name}").json().get("status") or {})

    async with running(disruption, apiserver.url):
        async def settled() -> bool:
            a, b = status("int"), status("pct")
            return ((a.get("expectedPods"), a.get("desiredHealthy"), a.get("currentHealthy"), a.get("disruptionsAllowed"))
                    == (3, 2, 3, 1)
                    and (b.get("expectedPods"), b.get("desiredHealthy"), b.get("disruptionsAllowed")) == (4, 2, 1))
        await eventually(settled, 15, "PDB status from 3 ready pods of a ReplicaSet of 4")
        assert status("int")["observedGeneration"] == 1
        # A pod losing readiness is seen.
        live = http.get(f"/api/v1/namespaces/{namespace}/pods/web-0").json()
        live["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
        http.put(f"/api/v1/namespaces/{namespace}/pods/web-0/status", json=live)

        async def dropped() -> bool:
            s = status("int")
            return s.get("currentHealthy") == 2 and s.get("disruptionsAllowed") == 0 and any(
                c["reason"] == "InsufficientPods" for c in s.get("conditions") or [])
        await eventually(dropped, 15, "currentHealthy 2, no disruption allowed")


async def test_controllers_scale_comes_from_their_scale_subresource(apiserver: Any, http: httpx.Client,
                                                                   namespace: str) -> None:
    """A pod of a ReplicationController: its scale is read through /scale (Kubernetes' scale finder)."""
    rc = _make(http, f"/api/v1/namespaces/{namespace}/replicationcontrollers", {
        "metadata": {"name": "legacy"}, "spec": {"replicas": 5, "selector": {"app": "legacy"},
                                                 "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {
                                                     "containers": [{"name": "c", "image": "busybox"}]}}}})
    ref = {"apiVersion": "v1", "kind": "ReplicationController", "name": "legacy", "uid": rc["metadata"]["uid"],
           "controller": True}
    _make(http, f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "legacy-0", "labels": {"app": "legacy"}, "ownerReferences": [ref]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    _ready(http, namespace, "legacy-0")
    base = f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
    _make(http, base, {"metadata": {"name": "legacy"},
                       "spec": {"maxUnavailable": "40%", "selector": {"matchLabels": {"app": "legacy"}}}})
    orphan = {"metadata": {"name": "lost"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "lost"}}}}
    _make(http, base, orphan)
    gone = {"apiVersion": "v1", "kind": "ReplicationController", "name": "gone", "uid": "no-such-uid",
            "controller": True}
    _make(http, f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "lost-0", "labels": {"app": "lost"}, "ownerReferences": [gone]},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})

    def status(name: str) -> Obj:
        return dict(http.get(f"{base}/{name}").json().get("status") or {})

    async with running(disruption, apiserver.url):
        async def settled() -> bool:
            s = status("legacy")
            return (s.get("expectedPods"), s.get("desiredHealthy"), s.get("currentHealthy")) == (5, 3, 1)
        await eventually(settled, 15, "expectedPods 5 from the RC's /scale, 5 - ceil(40% of 5) desired")

        async def failed() -> bool:
            conds = {c["type"]: c for c in status("lost").get("conditions") or []}
            cond = conds.get("DisruptionAllowed") or {}
            return cond.get("reason") == "SyncFailed" and cond.get("message") == 'found no controllers for pod "lost-0"'
        await eventually(failed, 15, "SyncFailed for a pod whose controller is gone")


async def test_stale_disruption_target_is_cleared(apiserver: Any, http: httpx.Client, namespace: str) -> None:
    _make(http, f"/api/v1/namespaces/{namespace}/pods", {
        "metadata": {"name": "kept"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    live = http.get(f"/api/v1/namespaces/{namespace}/pods/kept").json()
    live["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                                     "message": "Eviction API: evicting", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
    assert http.put(f"/api/v1/namespaces/{namespace}/pods/kept/status", json=live).status_code == 200
    async with running(disruption, apiserver.url):
        async def cleared() -> bool:
            pod_ = http.get(f"/api/v1/namespaces/{namespace}/pods/kept").json()
            conds = {c["type"]: c["status"] for c in pod_["status"].get("conditions") or []}
            return conds.get("DisruptionTarget") == "False"
        await eventually(cleared, 15, "the stale DisruptionTarget condition set to False")
