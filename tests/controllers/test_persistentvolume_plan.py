"""The PV binder's pure decisions (controllers.pvbinderplan) and the shared matching rules
(machinery.volumematch): which volume a claim gets, what a bind writes, what a released volume
becomes."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.pvbinderplan import Event, Wake, Write, apply_action, plan_claim, plan_volume
from machinery.volumematch import find_matching_volume, protection_to_remove, uses_claim

Obj = dict[str, Any]


def pv(name: str, size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), phase: str = "Available",
       cls: str = "", ref: Obj | None = None, labels: Obj | None = None, annotations: Obj | None = None,
       policy: str = "Retain", mode: str = "Filesystem") -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                 "persistentVolumeReclaimPolicy": policy, "volumeMode": mode, "hostPath": {"path": f"/tmp/{name}"}}
    if ref is not None:
        spec["claimRef"] = ref
    return {"metadata": {"name": name, "resourceVersion": "5", "labels": labels or {},
                         "annotations": annotations or {}}, "spec": spec, "status": {"phase": phase}}


def pvc(name: str = "c", size: str = "1Gi", *, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str | None = "",
        volume: str = "", annotations: Obj | None = None, selector: Obj | None = None, uid: str = "u1") -> Obj:
    spec: Obj = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}, "volumeMode": "Filesystem"}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume:
        spec["volumeName"] = volume
    if selector is not None:
        spec["selector"] = selector
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "7",
                         "annotations": annotations or {}}, "spec": spec, "status": {"phase": "Pending"}}


REF = {"kind": "PersistentVolumeClaim", "namespace": "ns", "name": "c", "uid": "u1", "apiVersion": "v1"}
WFFC = {"local-path": {"metadata": {"name": "local-path"}, "provisioner": "minik8s.io/local-path",
                       "volumeBindingMode": "WaitForFirstConsumer"},
        "fast": {"metadata": {"name": "fast"}, "provisioner": "example.com/fast", "volumeBindingMode": "Immediate"}}


@pytest.mark.parametrize("claim,volumes,expected", [
    (pvc(size="1Gi"), [pv("big", "10Gi"), pv("small", "2Gi"), pv("tiny", "500Mi")], "small"),
    (pvc(modes=("ReadWriteMany",)), [pv("rwo", "1Gi")], None),
    (pvc(modes=("ReadWriteMany",)), [pv("rwo", "1Gi"), pv("rwx", "5Gi", modes=("ReadWriteOnce", "ReadWriteMany"))],
     "rwx"),
    (pvc(cls="gold"), [pv("plain", "1Gi"), pv("gold", "3Gi", cls="gold")], "gold"),
    (pvc(), [pv("taken", ref={**REF, "name": "other", "uid": "u9"})], None),
    (pvc(), [pv("released", phase="Released")], None),
    (pvc(), [pv("pending", phase="Pending")], None),
    (pvc(), [pv("block", mode="Block")], None),
    (pvc(selector={"matchLabels": {"disk": "ssd"}}), [pv("hdd", labels={"disk": "hdd"}),
                                                      pv("ssd", "4Gi", labels={"disk": "ssd"})], "ssd"),
    (pvc(), [pv("prebound", "8Gi", phase="Pending", ref={"namespace": "ns", "name": "c"}), pv("small")],
     "prebound"),
])
def test_find_matching_volume(claim: Obj, volumes: list[Obj], expected: str | None) -> None:
    found = find_matching_volume(claim, volumes)
    assert (found["metadata"]["name"] if found else None) == expected


def writes(actions: list[Any]) -> list[tuple[str, str, str]]:
    return [(a.kind, a.key, a.op) for a in actions if isinstance(a, Write)]


def test_an_immediate_claim_binds_the_smallest_volume_in_four_writes() -> None:
    claim = pvc()
    actions = plan_claim(claim, [pv("big", "5Gi"), pv("fit", "1Gi")], {})
    assert writes(actions) == [("pv", "fit", "bind-volume"), ("pv", "fit", "volume-phase"),
                               ("pvc", "ns/c", "bind-claim"), ("pvc", "ns/c", "claim-status")]
    volume = apply_action(actions[0], pv("fit"))
    assert volume is not None
    assert volume["spec"]["claimRef"] == {**REF, "resourceVersion": "7"}
    assert volume["metadata"]["annotations"] == {"pv.kubernetes.io/bound-by-controller": "yes"}
    bound = apply_action(actions[2], claim)
    assert bound is not None and bound["spec"]["volumeName"] == "fit"
    assert bound["metadata"]["annotations"] == {"pv.kubernetes.io/bind-completed": "yes",
                                                "pv.kubernetes.io/bound-by-controller": "yes"}
    status = apply_action(actions[3], bound)
    assert status is not None and status["status"] == {"phase": "Bound", "capacity": {"storage": "1Gi"},
                                                       "accessModes": ["ReadWriteOnce"]}
    assert apply_action(actions[3], status) is None  # already so: no write


def test_a_bound_claim_with_everything_in_place_writes_nothing() -> None:
    claim = pvc(volume="v", annotations={"pv.kubernetes.io/bind-completed": "yes"})
    claim["status"] = {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}
    volume = pv("v", phase="Bound", ref={**REF, "resourceVersion": "7"})
    for action in plan_claim(claim, [volume], {}):
        assert isinstance(action, Write)
        assert apply_action(action, volume if action.kind == "pv" else claim) is None


def test_claims_that_wait() -> None:
    assert [a.reason for a in plan_claim(pvc(cls="local-path"), [], WFFC) if isinstance(a, Event)] == \
        ["WaitForFirstConsumer"]
    selected = pvc(cls="local-path", annotations={"volume.kubernetes.io/selected-node": "n1"})
    actions = plan_claim(selected, [], WFFC)
    assert ("pvc", "ns/c", "annotate-claim") in writes(actions)
    annotated = apply_action(next(a for a in actions if isinstance(a, Write) and a.op == "annotate-claim"), selected)
    assert annotated is not None
    assert annotated["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"] == "minik8s.io/local-path"
    assert [a.reason for a in plan_claim(pvc(), [], {}) if isinstance(a, Event)] == ["FailedBinding"]
    assert [a.reason for a in plan_claim(pvc(cls="missing"), [], {}) if isinstance(a, Event)] == \
        ["ProvisioningFailed"]
    # A WaitForFirstConsumer claim is not bound here even when a volume would fit.
    assert writes(plan_claim(pvc(cls="local-path"), [pv("v", cls="local-path")], WFFC)) == \
        [("pvc", "ns/c", "claim-status")]


def test_a_claim_without_a_class_gets_the_default_one_first() -> None:
    classes = {"local-path": {**WFFC["local-path"], "metadata": {
        "name": "local-path", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}}}
    actions = plan_claim(pvc(cls=None), [pv("v")], classes)
    assert writes(actions) == [("pvc", "ns/c", "set-class")]
    assert writes(plan_claim(pvc(cls=""), [pv("v")], classes))[0] == ("pv", "v", "bind-volume")


@pytest.mark.parametrize("volume,message", [
    (pv("v", "512Mi"), "requested PV is too small"),
    (pv("v", cls="gold"), "storageClassName does not match"),
    (pv("v", mode="Block"), "incompatible volumeMode"),
    (pv("v", modes=("ReadOnlyMany",)), "incompatible accessMode"),
])
def test_a_claim_naming_a_volume_that_does_not_satisfy_it_waits(volume: Obj, message: str) -> None:
    actions = plan_claim(pvc(volume="v"), [volume], {})
    assert writes(actions) == [("pvc", "ns/c", "claim-status")]
    assert [(a.reason, a.message) for a in actions if isinstance(a, Event)] == [
        ("VolumeMismatch", f'Cannot bind to requested volume "v": {message}')]


def test_claims_naming_a_volume() -> None:
    assert writes(plan_claim(pvc(volume="v"), [pv("v", "5Gi")], {}))[0] == ("pv", "v", "bind-volume")
    taken = plan_claim(pvc(volume="v"), [pv("v", ref={**REF, "uid": "other"})], {})
    assert [a.reason for a in taken if isinstance(a, Event)] == ["FailedBinding"]
    assert writes(plan_claim(pvc(volume="gone"), [], {})) == [("pvc", "ns/c", "claim-status")]


@pytest.mark.parametrize("volumes,reason", [
    ([], "ClaimLost"),
    ([pv("v", ref={**REF, "uid": "someone-else"})], "ClaimMisbound"),
])
def test_a_bound_claim_whose_volume_is_gone_or_taken_is_lost(volumes: list[Obj], reason: str) -> None:
    claim = pvc(volume="v", annotations={"pv.kubernetes.io/bind-completed": "yes"})
    actions = plan_claim(claim, volumes, {})
    status = next(a for a in actions if isinstance(a, Write))
    assert status.args["phase"] == "Lost"
    assert [a.reason for a in actions if isinstance(a, Event)] == [reason]


def phases(actions: list[Any]) -> list[str]:
    return [a.args["phase"] for a in actions if isinstance(a, Write) and a.op == "volume-phase"]


def test_volume_phases() -> None:
    claim = pvc(volume="v")
    assert phases(plan_volume(pv("v", phase="Pending"), {})) == ["Available"]
    assert phases(plan_volume(pv("v", ref={"namespace": "ns", "name": "c"}), {})) == ["Available"]  # pre-bound
    assert phases(plan_volume(pv("v", ref=REF), {"ns/c": claim})) == ["Bound"]
    assert plan_volume(pv("v", ref=REF), {"ns/c": pvc()}) == [Wake("ns/c")]


def test_retain_leaves_the_volume_released() -> None:
    actions = plan_volume(pv("v", phase="Bound", ref=REF), {})
    assert phases(actions) == ["Released"] and not [a for a in actions if isinstance(a, Event)]
    assert plan_volume(pv("v", phase="Released", ref=REF), {}) == []
    recreated = pvc(uid="u2", volume="")
    assert phases(plan_volume(pv("v", phase="Bound", ref=REF), {"ns/c": recreated})) == ["Released"]


def test_delete_of_a_provisioned_volume_is_its_provisioners_job_a_static_one_fails() -> None:
    provisioned = pv("v", phase="Bound", ref=REF, policy="Delete",
                     annotations={"pv.kubernetes.io/provisioned-by": "minik8s.io/local-path"})
    assert phases(plan_volume(provisioned, {})) == ["Released"]
    static = plan_volume(pv("v", phase="Bound", ref=REF, policy="Delete"), {})
    assert phases(static) == ["Released", "Failed"]
    assert [a.reason for a in static if isinstance(a, Event)] == ["VolumeFailedDelete"]


def test_a_volume_bound_by_the_controller_to_a_claim_bound_elsewhere_is_unbound() -> None:
    volume = pv("v", phase="Bound", ref=REF, annotations={"pv.kubernetes.io/bound-by-controller": "yes"})
    actions = plan_volume(volume, {"ns/c": pvc(volume="other")})
    assert writes(actions) == [("pv", "v", "unbind-volume"), ("pv", "v", "volume-phase")]
    unbound = apply_action(actions[0], volume)
    assert unbound is not None and "claimRef" not in unbound["spec"] and "annotations" not in unbound["metadata"]


def running_pod(*claims: str, node: str = "n1", phase: str = "Running", ephemeral: str = "") -> Obj:
    volumes: list[Obj] = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    if ephemeral:
        volumes.append({"name": ephemeral, "ephemeral": {}})
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"nodeName": node, "volumes": volumes},
            "status": {"phase": phase}}


@pytest.mark.parametrize("the_pod,in_use", [
    (running_pod("c"), True),
    (running_pod("other"), False),
    (running_pod("c", node=""), False),  # not scheduled: the kubelet will refuse a deleting claim
    (running_pod("c", phase="Succeeded"), False),
    (running_pod(ephemeral="c"), False),
    ({**running_pod(ephemeral="data"), "metadata": {"name": "p", "namespace": "ns"}}, False),
])
def test_which_pods_use_a_claim(the_pod: Obj, in_use: bool) -> None:
    assert uses_claim(the_pod, pvc("c")) is in_use
    assert uses_claim(running_pod(ephemeral="data"), pvc("p-data")) is True


def test_the_protection_finalizer_goes_only_when_deleting_and_unused() -> None:
    claim = pvc()
    claim["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection", "example.com/keep"]
    assert protection_to_remove(claim, "kubernetes.io/pvc-protection", in_use=False) is None  # not deleting
    claim["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert protection_to_remove(claim, "kubernetes.io/pvc-protection", in_use=True) is None
    freed = protection_to_remove(claim, "kubernetes.io/pvc-protection", in_use=False)
    assert freed is not None and freed["metadata"]["finalizers"] == ["example.com/keep"]
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection", "example.com/keep"]
