"""controllers.daemonsetplan: which nodes run a daemon pod, the pods it creates, manage, the
rolling update (maxUnavailable and maxSurge), status and history, as tables over wire dicts."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from controllers import daemonsetplan as dp
from controllers.history import POD_REVISION_LABEL

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
T0 = "2024-05-01T11:00:00Z"


def ds(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": "ns", "uid": "ds-uid", "generation": 2,
                     "annotations": {dp.TEMPLATE_GENERATION_ANNOTATION: "2"}},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}
    base["spec"].update(spec)
    return base


def node(name: str, *, labels: dict[str, str] | None = None, taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or []}}


def pod(name: str, node_name: str, *, hash_: str = "new", ready: bool = True, phase: str = "Running",
        deleting: bool = False, created: str = T0, owner: bool = True) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"u-{name}", "creationTimestamp": created,
                         "labels": {"app": "agent", POD_REVISION_LABEL: hash_}}
    if owner:
        m["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "ds-uid",
                                 "controller": True}]
    if deleting:
        m["deletionTimestamp"] = T0
    return {"metadata": m, "spec": {"nodeName": node_name},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": T0}]}}


# ---------------------------------------------------------------------------- eligibility
TAINT_NS = {"key": "dedicated", "value": "db", "effect": "NoSchedule"}
TAINT_NE = {"key": "dedicated", "value": "db", "effect": "NoExecute"}


@pytest.mark.parametrize("pod_spec,the_node,expected", [
    ({}, node("n1"), (True, True)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n1"), (False, False)),
    ({"nodeSelector": {"disk": "ssd"}}, node("n1", labels={"disk": "ssd"}), (True, True)),
    ({}, node("n1", taints=[TAINT_NS]), (False, True)),  # NoSchedule: no new pod, an old one stays
    ({}, node("n1", taints=[TAINT_NE]), (False, False)),
    ({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}, node("n1", taints=[TAINT_NE]), (True, True)),
    # the daemon tolerations: not-ready/unreachable NoExecute, unschedulable/pressure NoSchedule
    ({}, node("n1", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]), (True, True)),
    ({}, node("n1", taints=[{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]), (True, True)),
    ({}, node("n1", taints=[{"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]),
     (False, True)),
    ({"hostNetwork": True}, node("n1", taints=[{"key": "node.kubernetes.io/network-unavailable",
                                               "effect": "NoSchedule"}]), (True, True)),
    ({"nodeName": "n2"}, node("n1"), (False, False)),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}},
     node("n1", labels={"zone": "b"}), (False, False)),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}},
     node("n1", labels={"zone": "b"}), (True, True)),
])
def test_should_run(pod_spec: dict[str, Any], the_node: dict[str, Any], expected: tuple[bool, bool]) -> None:
    d = ds()
    d["spec"]["template"]["spec"].update(pod_spec)
    assert dp.should_run(d, the_node) == expected


def test_daemon_tolerations_are_added_once_and_replace_equal_ones() -> None:
    spec = {"tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                             "tolerationSeconds": 300}, {"key": "mine", "operator": "Exists"}]}
    out = dp.with_daemon_tolerations(spec)
    keys = [t.get("key") for t in out["tolerations"]]
    assert keys.count("node.kubernetes.io/not-ready") == 1 and "mine" in keys
    assert len(out["tolerations"]) == 7
    assert all("tolerationSeconds" not in t for t in out["tolerations"])
    assert "tolerationSeconds" in spec["tolerations"][0]  # the input is untouched
    assert len(dp.with_daemon_tolerations({"hostNetwork": True})["tolerations"]) == 7


def test_the_pod_is_pinned_labelled_and_owned() -> None:
    d = ds()
    d["spec"]["template"]["spec"]["affinity"] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": []}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1}]}}
    body = dp.daemon_pod(d, "n7", hash_="h1")
    assert body["metadata"]["generateName"] == "agent-"
    assert body["metadata"]["labels"] == {"app": "agent", POD_REVISION_LABEL: "h1", "pod-template-generation": "2"}
    na = body["spec"]["affinity"]["nodeAffinity"]
    assert na["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}
    assert na["preferredDuringSchedulingIgnoredDuringExecution"] == [{"weight": 1}]
    assert body["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert dp.target_node({"spec": body["spec"]}) == "n7"
    assert "nodeName" not in body["spec"]


# ---------------------------------------------------------------------------- manage
def names(objs: list[dict[str, Any]]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def test_one_pod_per_eligible_node() -> None:
    nodes = [node("n1"), node("n2"), node("n3", taints=[TAINT_NS])]
    p = dp.plan(ds(), [pod("a", "n1")], nodes, hash_="new", now=NOW)
    assert p.create_on == ["n2"] and p.delete == []
    assert p.status["desiredNumberScheduled"] == 2 and p.status["currentNumberScheduled"] == 1


def test_manage_deletes_surplus_failed_and_misplaced_pods() -> None:
    nodes = [node("n1"), node("n2", taints=[TAINT_NE])]
    pods = [pod("old", "n1", created="2024-05-01T10:00:00Z"), pod("dup", "n1"),
            pod("bad", "n2"), pod("failed", "n1", phase="Failed"), pod("ghost", "", owner=True)]
    pods[-1]["spec"] = {"affinity": dp.pin_to_node(None, "gone")}
    p = dp.plan(ds(), pods, nodes, hash_="new", now=NOW)
    assert sorted(names(p.delete)) == ["bad", "dup", "failed", "ghost"]
    assert p.create_on == []


def test_orphans_are_adopted_and_expectations_pending_only_update_status() -> None:
    p = dp.plan(ds(), [pod("orphan", "n1", owner=False)], [node("n1")], hash_="new", now=NOW)
    assert names(p.adopt) == ["orphan"] and p.create_on == []
    p = dp.plan(ds(), [], [node("n1")], hash_="new", now=NOW, manage=False)
    assert p.create_on == [] and p.status["desiredNumberScheduled"] == 1 and "observedGeneration" not in p.status


# ---------------------------------------------------------------------------- rolling update
def test_max_unavailable_deletes_at_most_that_many_old_pods() -> None:
    nodes = [node(f"n{i}") for i in range(4)]
    pods = [pod(f"p{i}", f"n{i}", hash_="old") for i in range(4)]
    p = dp.plan(ds(), pods, nodes, hash_="new", now=NOW)
    assert names(p.delete) == ["p0"] and p.create_on == []
    d = ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0}})
    assert names(dp.plan(d, pods, nodes, hash_="new", now=NOW).delete) == ["p0", "p1"]
    # one node is already between pods (its old pod is terminating): nothing more goes
    pods[0] = pod("p0", "n0", hash_="old", deleting=True)
    assert dp.plan(ds(), pods, nodes, hash_="new", now=NOW).delete == []
    # its replacement is there but not ready yet: still nothing
    pods[0] = pod("p0new", "n0", ready=False)
    assert dp.plan(ds(), pods, nodes, hash_="new", now=NOW).delete == []
    # ready: the next old pod goes
    pods[0] = pod("p0new", "n0")
    assert names(dp.plan(ds(), pods, nodes, hash_="new", now=NOW).delete) == ["p1"]


def test_unavailable_old_pods_are_replaced_first() -> None:
    nodes = [node("n0"), node("n1")]
    pods = [pod("p0", "n0", hash_="old"), pod("p1", "n1", hash_="old", ready=False)]
    assert names(dp.plan(ds(), pods, nodes, hash_="new", now=NOW).delete) == ["p1"]


@pytest.mark.parametrize("ready", [True, False])
def test_on_delete_never_deletes_old_pods(ready: bool) -> None:
    d = ds(updateStrategy={"type": "OnDelete"})
    p = dp.plan(d, [pod("p0", "n0", hash_="old", ready=ready)], [node("n0")], hash_="new", now=NOW)
    assert p.delete == [] and p.create_on == [] and "updatedNumberScheduled" not in p.status


def test_max_surge_creates_beside_old_pods_then_deletes_them() -> None:
    d = ds(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}})
    nodes = [node("n0"), node("n1")]
    pods = [pod("p0", "n0", hash_="old"), pod("p1", "n1", hash_="old")]
    p = dp.plan(d, pods, nodes, hash_="new", now=NOW)
    assert p.create_on == ["n0"] and p.delete == []
    pods.append(pod("q0", "n0", ready=False))
    p = dp.plan(d, pods, nodes, hash_="new", now=NOW)
    assert p.create_on == [] and p.delete == []
    pods[-1] = pod("q0", "n0")
    p = dp.plan(d, pods, nodes, hash_="new", now=NOW)
    assert names(p.delete) == ["p0"] and p.create_on == []


# ---------------------------------------------------------------------------- status
def test_status_counts() -> None:
    d = ds(minReadySeconds=3600)
    nodes = [node("n0"), node("n1"), node("n2"), node("n3", taints=[TAINT_NS])]
    pods = [pod("a", "n0"), pod("b", "n1", hash_="old"), pod("c", "n3"), pod("d", "n2", ready=False)]
    s = dp.plan(d, pods, nodes, hash_="new", now=NOW).status
    assert s == {"currentNumberScheduled": 3, "numberMisscheduled": 1, "desiredNumberScheduled": 3,
                 "numberReady": 2, "observedGeneration": 2, "updatedNumberScheduled": 2,
                 "numberUnavailable": 3}
    later = NOW + timedelta(hours=1)
    s = dp.plan(d, pods, nodes, hash_="new", now=later).status
    assert s["numberAvailable"] == 2 and s["numberUnavailable"] == 1


def test_requeue_when_a_ready_pod_becomes_available() -> None:
    d = ds(minReadySeconds=3700)
    p = dp.plan(d, [pod("a", "n0")], [node("n0")], hash_="new", now=NOW)
    assert p.requeue_after == pytest.approx(100.1)


# ---------------------------------------------------------------------------- history
def rev(name: str, number: int, d: dict[str, Any], *, hash_: str) -> dict[str, Any]:
    from controllers.history import daemonset_revision
    out = daemonset_revision(d, revision=number, hash_=hash_)
    out["metadata"]["name"] = name
    return out


def test_history_creates_reuses_and_renumbers() -> None:
    d = ds()
    hp = dp.plan_history(d, [])
    assert hp.create is not None and hp.create["revision"] == 1
    assert hp.create["metadata"]["name"] == f"agent-{hp.hash_}"
    current = rev("agent-aaa", 1, d, hash_="aaa")
    older = copy.deepcopy(d)
    older["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:0"
    old = rev("agent-bbb", 2, older, hash_="bbb")
    hp = dp.plan_history(d, [current, old])
    assert hp.create is None and hp.current is current and hp.hash_ == "aaa" and hp.renumber_to == 3
    assert hp.old == [old]
    hp = dp.plan_history(d, [rev("agent-aaa", 3, d, hash_="aaa"), old])
    assert hp.renumber_to is None
    other_owner = rev("x", 1, d, hash_="x")
    other_owner["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    assert dp.plan_history(d, [other_owner]).create is not None


def test_history_cleanup_keeps_live_revisions() -> None:
    d = ds(revisionHistoryLimit=1)
    olds = []
    for i in range(4):
        variant = copy.deepcopy(d)
        variant["spec"]["template"]["spec"]["containers"][0]["image"] = f"busybox:{i}"
        olds.append(rev(f"r{i}", i + 1, variant, hash_=f"h{i}"))
    assert names(dp.history_to_delete(d, olds, [pod("p", "n0", hash_="h0")])) == ["r1", "r2", "r3"]
    assert dp.history_to_delete(ds(), olds, []) == []
