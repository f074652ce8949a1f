"""Deployment controller, pure: hashing, fenceposts, rolling-update steps within maxSurge and
maxUnavailable, Recreate sequencing, rollback reusing the old ReplicaSet, proportional scaling,
revision-history clean-up, pause, and the Progressing/Available conditions."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest
from workload_helpers import T0, template

from controllers import deploymentplan as dc
from controllers import deploymentutil as du

Obj = dict[str, Any]


def deployment(replicas: int = 10, *, surge: Any = "25%", unavailable: Any = "25%", image: str = "nginx:1",
               strategy: str = "RollingUpdate", history: int = 10, generation: int = 1, paused: bool = False,
               pds: int = 600) -> Obj:
    strat: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    spec: Obj = {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "strategy": strat,
                 "template": template(image), "revisionHistoryLimit": history, "progressDeadlineSeconds": pds}
    if paused:
        spec["paused"] = True
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "d-uid", "generation": generation,
                         "resourceVersion": "1", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": spec}


class World:
    """A deployment, its ReplicaSets and a perfect ReplicaSet controller: every reconcile of the
    deployment is followed by the RS controller making pods match spec (deleting not-ready pods
    first); ``ready()`` then makes new pods ready. Invariants are checked on the pods."""

    def __init__(self, d: Obj) -> None:
        self.d = d
        self.rss: dict[str, Obj] = {}
        self.pods: dict[str, list[bool]] = {}  # rs name -> readiness of each pod
        self.clock = T0
        self.uid = itertools.count(1)
        self.tick = itertools.count(1)

    @property
    def now(self) -> datetime:
        return self.clock

    def step(self) -> dc.DeploymentPlan:
        self.clock += timedelta(seconds=1)
        p = dc.plan(self.d, list(self.rss.values()), [], now=self.clock)
        assert not p.adopt and not p.release
        for a in p.actions:
            if isinstance(a, dc.CreateReplicaSet):
                body = copy.deepcopy(a.body)
                assert body["metadata"]["name"] not in self.rss
                body["metadata"].update(uid=f"rs-{next(self.uid)}", generation=1, resourceVersion="1",
                                        creationTimestamp=(T0 + timedelta(seconds=next(self.tick))).isoformat())
                body["status"] = {"replicas": 0}
                self.rss[body["metadata"]["name"]] = body
                self.pods[body["metadata"]["name"]] = []
            elif isinstance(a, dc.UpdateReplicaSet):
                cur = self.rss[a.rs["metadata"]["name"]]
                assert cur["metadata"]["resourceVersion"] == a.rs["metadata"]["resourceVersion"]
                new = copy.deepcopy(a.rs)
                new["status"] = cur["status"]
                new["metadata"]["resourceVersion"] = str(int(cur["metadata"]["resourceVersion"]) + 1)
                if new["spec"] != cur["spec"]:
                    new["metadata"]["generation"] = cur["metadata"]["generation"] + 1
                self.rss[new["metadata"]["name"]] = new
            else:
                del self.rss[a.rs["metadata"]["name"]]
                self.pods.pop(a.rs["metadata"]["name"], None)
        if p.annotations is not None:
            self.d["metadata"]["annotations"] = p.annotations
        if p.status is not None:
            self.d["status"] = p.status
        self.sync_replica_sets()
        return p

    def sync_replica_sets(self) -> None:
        for name, rs in self.rss.items():
            pods = self.pods[name]
            want = rs["spec"]["replicas"]
            while len(pods) > want:
                pods.remove(False) if False in pods else pods.pop()
            while len(pods) < want:
                pods.append(False)
            ready = sum(pods)
            rs["status"] = {"replicas": len(pods), "readyReplicas": ready, "availableReplicas": ready,
                            "observedGeneration": rs["metadata"]["generation"]}

    def ready(self, n: int = 10**9) -> None:
        for pods in self.pods.values():
            for i, r in enumerate(pods):
                if not r and n > 0:
                    pods[i] = True
                    n -= 1
        self.sync_replica_sets()

    def total_pods(self) -> int:
        return sum(len(p) for p in self.pods.values())

    def available(self) -> int:
        return sum(sum(p) for p in self.pods.values())

    def new_rs(self) -> Obj | None:
        return du.find_new_rs(self.d, list(self.rss.values()))

    def complete(self) -> bool:
        return du.deployment_complete(self.d, self.d.get("status") or {})

    def converge(self, *, ready_per_step: int = 10**9, max_steps: int = 200,
                 check: bool = True) -> list[tuple[int, int]]:
        """Run until complete; returns (pods, available) after every step."""
        trace = []
        for _ in range(max_steps):
            self.step()
            trace.append((self.total_pods(), self.available()))
            self.check_bounds(check)
            if self.complete() and all(self.rss[n]["spec"]["replicas"] == 0 for n in self.rss
                                       if self.rss[n] is not self.new_rs()):
                return trace
            self.ready(ready_per_step)
            trace.append((self.total_pods(), self.available()))
            self.check_bounds(check)
        raise AssertionError(f"did not converge: {trace[-6:]}")

    def check_bounds(self, check: bool) -> None:
        if not check or not du.is_rolling(self.d):
            return
        want = du.replicas_of(self.d)
        assert self.total_pods() <= want + du.max_surge(self.d), (self.total_pods(), self.rss.keys())
        # Availability only binds once the first rollout has made pods available.
        if self.d.get("_rolled"):
            assert self.available() >= want - du.max_unavailable(self.d)


# ============================================================================ hashing, fenceposts
def test_hash_is_stable_and_safe() -> None:
    t = template("nginx:1")
    h = du.compute_hash(t)
    assert h == du.compute_hash(copy.deepcopy(t))
    reordered = {"spec": t["spec"], "metadata": t["metadata"]}
    assert du.compute_hash(reordered) == h
    assert du.compute_hash(template("nginx:2")) != h
    assert du.compute_hash(t, 1) != h and du.compute_hash(t, 1) != du.compute_hash(t, 2)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    # Each decimal digit byte maps to alphanums[byte % 27]: '0' (48) -> '4' ... '9' (57) -> 'f',
    # which is why real pod-template-hashes look like "7c5ddbdf54".
    assert du.safe_encode("0123456789") == "456789bcdf"


def test_hash_known_value() -> None:
    # FNV-32a("") = 0x811c9dc5 = 2166136261, safe-encoded digit by digit.
    assert du.fnv32a(b"") == 2166136261
    assert du.fnv32a(b"a") == 0xE40C292C


@pytest.mark.parametrize(("surge", "unavailable", "desired", "want"), [
    ("25%", "25%", 10, (3, 2)), ("25%", "25%", 4, (1, 1)), ("25%", "25%", 1, (1, 0)),
    (1, 0, 3, (1, 0)), (0, 1, 3, (0, 1)), ("0%", "0%", 3, (0, 1)), ("10%", "10%", 5, (1, 0)),
    (0, "10%", 5, (0, 1)), (2, 5, 3, (2, 5))])
def test_resolve_fenceposts(surge: Any, unavailable: Any, desired: int, want: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(surge, unavailable, desired) == want


def test_max_unavailable_capped_at_replicas() -> None:
    assert du.max_unavailable(deployment(3, surge=2, unavailable=5)) == 3
    assert du.max_unavailable(deployment(0)) == 0
    assert du.max_surge(deployment(3, strategy="Recreate")) == 0


# ============================================================================ first rollout
def test_first_rollout_creates_one_rs_named_by_hash() -> None:
    w = World(deployment(10))
    p = w.step()
    assert len(p.actions) == 1 and isinstance(p.actions[0], dc.CreateReplicaSet)
    rs = p.actions[0].body
    h = du.compute_hash(w.d["spec"]["template"])
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["replicas"] == 10
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["ownerReferences"][0] | {} == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                         "name": "web", "uid": "d-uid", "controller": True,
                                                         "blockOwnerDeletion": True}
    ann = rs["metadata"]["annotations"]
    assert ann == {du.REVISION: "1", du.DESIRED_REPLICAS: "10", du.MAX_REPLICAS: "13"}
    assert p.annotations == {du.REVISION: "1"}
    assert p.status is not None
    assert du.get_condition(p.status, "Progressing")["reason"] == du.NEW_RS_REASON
    assert du.get_condition(p.status, "Available")["status"] == "False"


def test_first_rollout_completes_with_conditions() -> None:
    w = World(deployment(10))
    w.converge()
    st = w.d["status"]
    assert {k: st.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "observedGeneration")} == dict(replicas=10, updatedReplicas=10, readyReplicas=10,
                                                                  availableReplicas=10, observedGeneration=1)
    assert "unavailableReplicas" not in st
    assert du.get_condition(st, "Available")["reason"] == du.MIN_AVAILABLE_REASON
    prog = du.get_condition(st, "Progressing")
    assert prog["status"] == "True" and prog["reason"] == du.NEW_RS_AVAILABLE_REASON
    # Converged: another pass changes nothing.
    p = w.step()
    assert p.actions == [] and p.status is None and p.annotations is None


# ============================================================================ rolling update bounds
def _roll(w: World, image: str) -> None:
    w.d["_rolled"] = True
    w.d["spec"]["template"] = template(image)
    w.d["metadata"]["generation"] += 1


@pytest.mark.parametrize("replicas,surge,unavailable", [
    (10, "25%", "25%"), (10, 1, 0), (10, 0, 1), (10, 3, 2), (5, "50%", "0%"), (5, "0%", "50%"),
    (3, 1, 1), (1, 1, 0), (1, 0, 1), (10, "100%", "100%"), (7, "30%", "20%"), (4, 0, "10%")])
@pytest.mark.parametrize("ready_per_step", [1, 3, 1000])
def test_rolling_update_never_exceeds_bounds(replicas: int, surge: Any, unavailable: Any,
                                             ready_per_step: int) -> None:
    w = World(deployment(replicas, surge=surge, unavailable=unavailable))
    w.converge()
    old_name = w.new_rs()["metadata"]["name"]  # type: ignore[index]
    _roll(w, "nginx:2")
    w.converge(ready_per_step=ready_per_step)
    new = w.new_rs()
    assert new is not None and new["metadata"]["name"] != old_name
    assert new["spec"]["replicas"] == replicas and w.rss[old_name]["spec"]["replicas"] == 0
    assert w.total_pods() == replicas and w.available() == replicas
    assert new["metadata"]["annotations"][du.REVISION] == "2"
    assert w.d["metadata"]["annotations"][du.REVISION] == "2"
    st = w.d["status"]
    assert st["updatedReplicas"] == st["replicas"] == st["availableReplicas"] == replicas
    assert st["observedGeneration"] == 2


def test_rolling_steps_10_replicas_surge_3_unavailable_2() -> None:
    w = World(deployment(10, surge=3, unavailable=2))
    w.converge()
    _roll(w, "nginx:2")
    sizes = []
    for _ in range(30):
        w.step()
        names = sorted(w.rss, key=lambda n: w.rss[n]["metadata"]["creationTimestamp"])
        sizes.append(tuple(w.rss[n]["spec"]["replicas"] for n in names))
        w.ready()
        if w.complete():
            break
    # Kubernetes' sequence (old, new): the pass that creates the new RS at maxSurge also takes
    # maxUnavailable old pods down; then new up to replicas + maxSurge as pods become available,
    # old down as far as replicas - maxUnavailable allows, and so on.
    distinct = [x for i, x in enumerate(sizes) if i == 0 or x != sizes[i - 1]]
    assert distinct == [(8, 3), (8, 5), (3, 5), (3, 10), (0, 10)]


def test_stuck_rollout_holds_availability() -> None:
    """New pods never become ready: old pods are only removed as far as maxUnavailable allows."""
    w = World(deployment(10, surge=3, unavailable=2))
    w.converge()
    _roll(w, "broken:1")
    for _ in range(20):
        w.step()
        w.check_bounds(True)
    assert w.available() == 8 and w.total_pods() == 13


# ============================================================================ Recreate
def test_recreate_scales_old_to_zero_then_creates_new() -> None:
    w = World(deployment(4, strategy="Recreate"))
    w.converge()
    old = w.new_rs()["metadata"]["name"]  # type: ignore[index]
    w.d["spec"]["template"] = template("nginx:2")
    w.d["metadata"]["generation"] += 1
    # First pass: old RS scaled to 0, no new RS yet.
    p = dc.plan(w.d, list(w.rss.values()), [], now=w.now)
    assert [type(a) for a in p.actions] == [dc.UpdateReplicaSet]
    assert p.actions[0].rs["spec"]["replicas"] == 0
    # Old RS at spec 0, but its pods still exist: still no new RS.
    scaled = copy.deepcopy(w.rss[old])
    scaled["spec"]["replicas"] = 0
    old_pod = {"metadata": {"name": "p", "ownerReferences": [{"uid": scaled["metadata"]["uid"], "controller": True}]},
               "status": {"phase": "Running"}}
    p = dc.plan(w.d, [scaled], [old_pod], now=w.now)
    assert not any(isinstance(a, dc.CreateReplicaSet) for a in p.actions)
    # Pods gone (and status caught up): the new RS is created at full size.
    scaled["status"] = {"replicas": 0, "observedGeneration": 2}
    p = dc.plan(w.d, [scaled], [], now=w.now)
    creates = [a for a in p.actions if isinstance(a, dc.CreateReplicaSet)]
    assert len(creates) == 1 and creates[0].body["spec"]["replicas"] == 4
    w.converge()
    assert w.new_rs()["spec"]["replicas"] == 4  # type: ignore[index]


# ============================================================================ rollback, history
def test_rollback_reuses_old_replica_set_and_bumps_its_revision() -> None:
    w = World(deployment(4))
    w.converge()
    first = w.new_rs()["metadata"]["name"]  # type: ignore[index]
    _roll(w, "nginx:2")
    w.converge()
    # `kubectl rollout undo`: the template goes back to revision 1's.
    _roll(w, "nginx:1")
    p = w.step()
    assert not any(isinstance(a, dc.CreateReplicaSet) for a in p.actions)
    w.converge()
    assert len(w.rss) == 2
    assert w.new_rs()["metadata"]["name"] == first  # type: ignore[index]
    ann = w.rss[first]["metadata"]["annotations"]
    assert ann[du.REVISION] == "3" and ann[du.REVISION_HISTORY] == "1"
    assert w.d["metadata"]["annotations"][du.REVISION] == "3"
    assert w.rss[first]["spec"]["replicas"] == 4


def test_revision_history_limit_deletes_oldest_empty_replica_sets() -> None:
    w = World(deployment(2, history=2))
    w.converge()
    for i in range(2, 7):
        _roll(w, f"nginx:{i}")
        w.converge()
        w.step()  # the pass after completion cleans up
    revisions = sorted(du.revision_of(rs) for rs in w.rss.values())
    assert revisions == [4, 5, 6]  # the new RS plus revisionHistoryLimit=2 old ones


def test_history_limit_zero_keeps_only_the_new_rs() -> None:
    w = World(deployment(2, history=0))
    w.converge()
    _roll(w, "nginx:2")
    w.converge()
    w.step()
    assert len(w.rss) == 1


# ============================================================================ scaling, pause
def test_scale_to_zero_and_back() -> None:
    w = World(deployment(5))
    w.converge()
    w.d["spec"]["replicas"] = 0
    w.d["metadata"]["generation"] += 1
    w.converge()
    assert w.total_pods() == 0 and "replicas" not in w.d["status"]
    assert du.get_condition(w.d["status"], "Available")["status"] == "True"
    w.d["spec"]["replicas"] = 5
    w.d["metadata"]["generation"] += 1
    w.converge()
    assert w.total_pods() == 5 and len(w.rss) == 1


def test_proportional_scaling_mid_rollout() -> None:
    w = World(deployment(10, surge=3, unavailable=2))
    w.converge()
    _roll(w, "broken:1")  # new pods never get ready
    for _ in range(5):
        w.step()
    sizes = {n: rs["spec"]["replicas"] for n, rs in w.rss.items()}
    assert sorted(sizes.values()) == [5, 8]  # 13 = 10 + maxSurge 3, split old 8 / new 5
    w.d["spec"]["replicas"] = 20  # maxSurge 25%... here fixed 3: allowed 23
    w.d["metadata"]["generation"] += 1
    p = w.step()
    after = {n: rs["spec"]["replicas"] for n, rs in w.rss.items()}
    assert sum(after.values()) == 23
    old_name = max(sizes, key=lambda n: sizes[n])
    # Each RS grows in proportion to its size (8 -> 14, 5 -> 9), not all on one RS.
    assert after[old_name] == 14 and sum(after.values()) - after[old_name] == 9
    assert any(isinstance(a, dc.UpdateReplicaSet) for a in p.actions)
    for rs in w.rss.values():
        assert rs["metadata"]["annotations"][du.DESIRED_REPLICAS] == "20"
        assert rs["metadata"]["annotations"][du.MAX_REPLICAS] == "23"


def test_pause_stops_rollout_but_not_scaling() -> None:
    w = World(deployment(4, paused=True))
    w.d["spec"].pop("paused")
    w.converge()
    w.d["spec"]["paused"] = True
    _roll(w, "nginx:2")
    p = w.step()
    assert not any(isinstance(a, dc.CreateReplicaSet) for a in p.actions)
    prog = du.get_condition(w.d["status"], "Progressing")
    assert prog["status"] == "Unknown" and prog["reason"] == du.PAUSED_REASON
    w.d["spec"]["replicas"] = 6
    w.step()
    assert [rs["spec"]["replicas"] for rs in w.rss.values()] == [6]
    w.ready()
    w.d["spec"]["paused"] = False
    p = w.step()
    assert any(isinstance(a, dc.CreateReplicaSet) for a in p.actions)
    prog = du.get_condition(w.d["status"], "Progressing")
    assert prog["status"] == "True" and prog["reason"] != du.PAUSED_REASON
    w.converge()
    assert w.new_rs()["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"  # type: ignore[index]


def test_progress_deadline_exceeded() -> None:
    w = World(deployment(3, surge=1, unavailable=0, pds=30))
    w.converge()
    _roll(w, "broken:1")
    for _ in range(3):
        p = w.step()
    assert p.requeue_after is not None and 0 < p.requeue_after <= 31
    w.clock += timedelta(seconds=40)
    w.step()
    prog = du.get_condition(w.d["status"], "Progressing")
    assert prog["status"] == "False" and prog["reason"] == du.TIMED_OUT_REASON
    assert "has timed out progressing" in prog["message"]


def test_orphan_replica_sets_are_adopted() -> None:
    d = deployment(2)
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "x", "namespace": "ns", "uid": "o", "labels": {"app": "web"}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template()}}
    theirs = copy.deepcopy(orphan)
    theirs["metadata"].update(name="y", uid="t", ownerReferences=[{"uid": "other", "controller": True}])
    p = dc.plan(d, [orphan, theirs], [], now=T0)
    assert [rs["metadata"]["name"] for rs in p.adopt] == ["x"]
