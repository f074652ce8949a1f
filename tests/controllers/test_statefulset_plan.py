"""The StatefulSet planner and member helpers, without I/O: tables of sets, pods and claims in,
steps and status out (controllers.statefulsetplan, controllers.statefulsetpods)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from controllers import history
from controllers.statefulsetplan import (CreateClaims, CreatePod, DeletePod, UpdateClaimRefs, current_revision,
                                         decide_revision, plan, replica_status)
from controllers.statefulsetpods import (claim_refs_for_policy, claim_refs_up_to_date, claims_for, new_pod,
                                         parent_and_ordinal)

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
T0 = (NOW - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sts(replicas: int = 3, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "replicas": replicas, "serviceName": "nginx", "podManagementPolicy": "OrderedReady",
        "selector": {"matchLabels": {"app": "nginx"}},
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "revisionHistoryLimit": 10,
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "img:1",
                                              "volumeMounts": [{"name": "www", "mountPath": "/www"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 2}, "spec": base}


def running(pod: dict[str, Any], *, ready: bool = True, uid: str = "") -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["metadata"]["uid"] = uid or f"uid-{pod['metadata']['name']}"
    pod["status"] = {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": T0}]}
    return pod


def member(s: dict[str, Any], ordinal: int, revision: str = "rev-1", **kw: Any) -> dict[str, Any]:
    return running(new_pod(s, ordinal, revision), **kw)


def claims_of(s: dict[str, Any], *ordinals: int) -> dict[str, dict[str, Any]]:
    out = {}
    for o in ordinals:
        for c in claims_for(s, o):
            c["metadata"]["uid"] = f"claim-{c['metadata']['name']}"
            out[c["metadata"]["name"]] = c
    return out


def run(s: dict[str, Any], pods: list[dict[str, Any]], claims: dict[str, dict[str, Any]] | None = None, *,
        current: str = "rev-1", update: str = "rev-1", current_set: dict[str, Any] | None = None) -> Any:
    return plan(s, pods, claims or {}, current_set=current_set or s, update_set=s, current=current, update=update,
                collision_count=0, now=NOW)


def actions(p: Any) -> list[tuple[str, str]]:
    out = []
    for step in p.steps:
        for a in step:
            if isinstance(a, CreatePod):
                out.append(("create", a.pod["metadata"]["name"]))
            elif isinstance(a, DeletePod):
                out.append((f"delete-{a.why}", a.pod["metadata"]["name"]))
            elif isinstance(a, CreateClaims):
                out.append(("claims", a.pod_name))
            elif isinstance(a, UpdateClaimRefs):
                out.append(("refs", a.claim["metadata"]["name"]))
    return out


@pytest.mark.parametrize(("name", "parent", "ordinal"), [
    ("web-0", "web", 0), ("web-12", "web", 12), ("my-web-3", "my-web", 3), ("web", "", -1), ("web-x", "", -1),
    ("web-99999999999", "web", -1),
])
def test_parent_and_ordinal(name: str, parent: str, ordinal: int) -> None:
    assert parent_and_ordinal({"metadata": {"name": name}}) == (parent, ordinal)


def test_member_pod_has_stable_identity_and_its_own_claim() -> None:
    pod = new_pod(sts(), 1, "web-abc")
    m = pod["metadata"]
    assert m["name"] == "web-1" and m["generateName"] == "web-"
    assert m["labels"] == {"app": "nginx", "statefulset.kubernetes.io/pod-name": "web-1",
                           "apps.kubernetes.io/pod-index": "1", "controller-revision-hash": "web-abc"}
    assert m["ownerReferences"][0]["kind"] == "StatefulSet" and m["ownerReferences"][0]["controller"] is True
    assert pod["spec"]["hostname"] == "web-1" and pod["spec"]["subdomain"] == "nginx"
    assert pod["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}]
    claim = claims_for(sts(), 1)[0]
    assert claim["metadata"]["name"] == "www-web-1" and claim["metadata"]["labels"] == {"app": "nginx"}


def test_ordered_ready_creates_one_pod_at_a_time_claims_first() -> None:
    s = sts()
    p = run(s, [])
    assert actions(p) == [("create", "web-0")]
    assert [c["metadata"]["name"] for c in p.steps[0][0].claims] == ["www-web-0"]
    # web-0 exists but is not Ready: nothing more.
    p = run(s, [member(s, 0, ready=False)], claims_of(s, 0))
    assert actions(p) == [] and "web-0" in p.waiting_for
    # web-0 Ready: web-1 next, its claim with it (web-0's claim exists).
    p = run(s, [member(s, 0)], claims_of(s, 0))
    assert actions(p) == [("create", "web-1")]
    assert [c["metadata"]["name"] for c in p.steps[0][0].claims] == ["www-web-1"]


def test_parallel_creates_every_missing_pod_at_once() -> None:
    s = sts(podManagementPolicy="Parallel")
    p = run(s, [member(s, 1, ready=False)], claims_of(s, 1))
    assert len(p.steps) == 1 and actions(p) == [("create", "web-0"), ("create", "web-2")]


def test_scale_down_deletes_the_highest_ordinal_first_and_keeps_claims() -> None:
    s = sts(replicas=1)
    pods = [member(s, o) for o in range(3)]
    p = run(s, pods, claims_of(s, 0, 1, 2))
    assert actions(p) == [("delete-condemned", "web-2")]  # Retain: no claim ownership change
    terminating = copy.deepcopy(pods[2])
    terminating["metadata"]["deletionTimestamp"] = T0
    assert actions(run(s, [pods[0], pods[1], terminating], claims_of(s, 0, 1, 2))) == []
    assert actions(run(sts(replicas=1, podManagementPolicy="Parallel"), pods)) == [
        ("delete-condemned", "web-2"), ("delete-condemned", "web-1")]


def test_scale_down_with_when_scaled_delete_hands_the_claim_to_the_pod() -> None:
    s = sts(replicas=1, persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"})
    pods = [member(s, 0), member(s, 1)]
    p = run(s, pods, claims_of(s, 0, 1))
    assert actions(p) == [("refs", "www-web-1")]
    refs = p.steps[0][0].refs
    assert [(r["kind"], r["name"], r["uid"]) for r in refs] == [("Pod", "web-1", "uid-web-1")]
    claims = claims_of(s, 0, 1)
    claims["www-web-1"]["metadata"]["ownerReferences"] = list(refs)
    assert actions(run(s, pods, claims)) == [("delete-condemned", "web-1")]


@pytest.mark.parametrize(("policy", "in_range", "kinds"), [
    (("Retain", "Retain"), True, []),
    (("Delete", "Retain"), True, ["StatefulSet"]),
    (("Retain", "Delete"), True, []),
    (("Retain", "Delete"), False, ["Pod"]),
    (("Delete", "Delete"), True, ["StatefulSet"]),
    (("Delete", "Delete"), False, ["Pod"]),
])
def test_claim_references_follow_the_retention_policy(policy: tuple[str, str], in_range: bool,
                                                      kinds: list[str]) -> None:
    s = sts(replicas=2 if in_range else 1,
            persistentVolumeClaimRetentionPolicy={"whenDeleted": policy[0], "whenScaled": policy[1]})
    pod = member(s, 1)
    claim = claims_of(s, 1)["www-web-1"]
    refs = claim_refs_for_policy(claim, s, pod)
    assert [r["kind"] for r in refs] == kinds
    assert claim_refs_up_to_date(claim, s, pod) == (kinds == [])
    claim["metadata"]["ownerReferences"] = refs
    assert claim_refs_up_to_date(claim, s, pod)


def test_new_claims_carry_the_set_reference_when_deleted_with_it() -> None:
    s = sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Retain"})
    claim = run(s, []).steps[0][0].claims[0]
    assert claim["metadata"]["ownerReferences"][0]["uid"] == "set-uid"


def test_a_claim_being_deleted_blocks_its_pod() -> None:
    s = sts()
    claims = claims_of(s, 0)
    claims["www-web-0"]["metadata"]["deletionTimestamp"] = T0
    p = run(s, [], claims)
    assert actions(p) == [] and (p.error, p.error_pod) == ("pvc www-web-0 is being deleted", "web-0")


def test_pending_pod_gets_its_missing_claims() -> None:
    s = sts()
    pod = member(s, 0)
    pod["status"] = {"phase": "Pending"}
    assert actions(run(s, [pod])) == [("claims", "web-0")]


def test_failed_pod_is_deleted_to_be_recreated() -> None:
    s = sts()
    pod = member(s, 0)
    pod["status"]["phase"] = "Failed"
    assert actions(run(s, [pod], claims_of(s, 0))) == [("delete-failed", "web-0")]


def test_rolling_update_goes_from_the_highest_ordinal_down_to_the_partition() -> None:
    s = sts()
    old = [member(s, o, "rev-1") for o in range(3)]
    p = run(s, old, claims_of(s, 0, 1, 2), current="rev-1", update="rev-2")
    assert actions(p) == [("delete-update", "web-2")]
    # web-2 recreated at rev-2 but not ready yet: wait.
    pods = [old[0], old[1], member(s, 2, "rev-2", ready=False)]
    p = run(s, pods, claims_of(s, 0, 1, 2), current="rev-1", update="rev-2")
    assert actions(p) == [] and "web-2" in p.waiting_for
    pods[2] = member(s, 2, "rev-2")
    assert actions(run(s, pods, claims_of(s, 0, 1, 2), current="rev-1", update="rev-2")) == [
        ("delete-update", "web-1")]
    # partition 2: only web-2 is updated.
    staged = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    assert actions(run(staged, pods, claims_of(s, 0, 1, 2), current="rev-1", update="rev-2")) == []
    # OnDelete: never.
    on_delete = sts(updateStrategy={"type": "OnDelete"})
    assert actions(run(on_delete, old, claims_of(s, 0, 1, 2), current="rev-1", update="rev-2")) == []


def test_below_the_partition_a_recreated_pod_keeps_the_current_revision() -> None:
    s = sts(updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 2}})
    old_set = copy.deepcopy(s)
    old_set["spec"]["template"]["spec"]["containers"][0]["image"] = "img:0"
    pods = [member(s, 0, "rev-1"), member(s, 2, "rev-2")]
    p = run(s, pods, claims_of(s, 0, 1, 2), current="rev-1", update="rev-2", current_set=old_set)
    created = p.steps[0][0].pod
    assert created["metadata"]["labels"]["controller-revision-hash"] == "rev-1"
    assert created["spec"]["containers"][0]["image"] == "img:0"


def test_status_counts_and_a_finished_rollout_makes_the_update_revision_current() -> None:
    s = sts()
    pods = [member(s, 0, "rev-2"), member(s, 1, "rev-2"), member(s, 2, "rev-2")]
    status = replica_status(s, pods, current="rev-1", update="rev-2", collision_count=0, now=NOW)
    assert status == {"replicas": 3, "observedGeneration": 2, "readyReplicas": 3, "currentReplicas": 3,
                      "updatedReplicas": 3, "currentRevision": "rev-2", "updateRevision": "rev-2",
                      "collisionCount": 0, "availableReplicas": 3}
    pods[0] = member(s, 0, "rev-1", ready=False)
    status = replica_status(s, pods, current="rev-1", update="rev-2", collision_count=0, now=NOW)
    assert (status["readyReplicas"], status["currentReplicas"], status["updatedReplicas"],
            status["currentRevision"]) == (2, 1, 2, "rev-1")


def test_revisions_are_created_reused_and_renumbered_on_rollback() -> None:
    s = sts()
    first = decide_revision(s, [])
    assert first.action == "create" and first.number == 1
    rev1 = copy.deepcopy(first.revision)
    assert rev1["metadata"]["name"].startswith("web-") and rev1["data"]["spec"]["template"]["$patch"] == "replace"
    assert decide_revision(s, [rev1]).action == "reuse"
    changed = sts()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "img:2"
    second = decide_revision(changed, [rev1])
    assert second.action == "create" and second.number == 2
    rev2 = copy.deepcopy(second.revision)
    back = decide_revision(s, [rev1, rev2])  # the template went back to revision 1's
    assert back.action == "renumber" and back.number == 3 and back.revision is rev1
    with_status = copy.deepcopy(changed)
    with_status["status"] = {"currentRevision": rev1["metadata"]["name"]}
    assert current_revision(with_status, [rev1, rev2], rev2) is rev1
    assert history.apply_revision(changed, rev1)["spec"]["template"]["spec"]["containers"][0]["image"] == "img:1"


def test_min_ready_seconds_holds_the_next_pod_and_asks_for_another_look() -> None:
    s = sts(minReadySeconds=600)
    p = run(s, [member(s, 0)], claims_of(s, 0))  # ready 5 minutes ago, available after 10
    assert actions(p) == [] and "available" in p.waiting_for and p.requeue_after == 600.0
    assert p.status["readyReplicas"] == 1 and p.status["availableReplicas"] == 0
    parallel = sts(minReadySeconds=600, podManagementPolicy="Parallel")
    p = run(parallel, [member(parallel, o) for o in range(3)], claims_of(parallel, 0, 1, 2))
    assert actions(p) == [] and p.requeue_after == 600.0


def test_ordinals_start_moves_the_names() -> None:
    s = sts(replicas=2, ordinals={"start": 5})
    assert actions(run(s, [])) == [("create", "web-5")]
    old = sts(replicas=2)
    p = run(s, [member(old, 0), member(old, 1), member(s, 5), member(s, 6)], claims_of(s, 0, 1, 5, 6))
    assert actions(p) == [("delete-condemned", "web-1")]
