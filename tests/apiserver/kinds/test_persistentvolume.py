"""PersistentVolume and PersistentVolumeClaim (core/v1): defaults, validation with Kubernetes'
messages, update rules, the DefaultStorageClass admission, table cells; over the real API too."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.base import CreateContext
from apiserver.kinds.core.persistentvolume import STRATEGY as PV, access_modes_string
from apiserver.kinds.core.persistentvolumeclaim import IMMUTABLE_SPEC, STRATEGY as PVC

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def volume(name: str = "pv1", **spec: Any) -> dict[str, Any]:
    body = {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/pv1"}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": body}


def claim(name: str = "c1", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    body = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name, "namespace": namespace},
            "spec": body}


def messages(strategy: Any, obj: dict[str, Any], old: dict[str, Any] | None = None) -> set[tuple[str, str]]:
    strategy.defaults(obj)
    return {(c.field, c.message) for c in validate_object(strategy, obj, old=old)}


def test_volume_defaults() -> None:
    obj = volume()
    PV.defaults(obj)
    assert obj["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert obj["spec"]["volumeMode"] == "Filesystem"
    assert messages(PV, volume()) == set()


LOCAL_AFFINITY = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}]}]}}


@pytest.mark.parametrize("spec,expected", [
    ({"accessModes": []}, {("spec.accessModes", "Required value")}),
    ({"accessModes": ["ReadWriteSome"]}, {("spec.accessModes", 'Unsupported value: "ReadWriteSome": supported values: '
                                           '"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"')}),
    ({"accessModes": ["ReadWriteOncePod", "ReadWriteOnce"]},
     {("spec.accessModes", "Forbidden: may not use ReadWriteOncePod with other access modes")}),
    ({"capacity": {}}, {("spec.capacity", "Required value"),
                        ("spec.capacity", "Unsupported value: {}: supported values: \"storage\"")}),
    ({"capacity": {"storage": "0"}}, {("spec.capacity[storage]", 'Invalid value: "0": must be greater than zero')}),
    ({"capacity": {"storage": "lots"}}, {("spec.capacity[storage]", 'Invalid value: "lots": quantities must match the '
                                          "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")}),
    ({"hostPath": None}, {("spec", "Required value: must specify a volume type")}),
    ({"nfs": {"server": "nfs.example", "path": "/exports"}},
     {("spec.nfs", "Forbidden: may not specify more than 1 volume type")}),
    ({"hostPath": None, "local": {"path": "/mnt/disk"}},
     {("spec.nodeAffinity", "Required value: Local volume requires node affinity")}),
    ({"hostPath": None, "local": {"path": "/mnt/disk"}, "nodeAffinity": LOCAL_AFFINITY}, set()),
    ({"hostPath": {"path": "/a/../b"}}, {("spec.hostPath.path", "Invalid value: \"/a/../b\": must not contain '..'")}),
    ({"persistentVolumeReclaimPolicy": "Keep"}, {("spec.persistentVolumeReclaimPolicy",
                                                 'Unsupported value: "Keep": supported values: "Delete", "Recycle", '
                                                 '"Retain"')}),
    ({"volumeMode": "Raw"}, {("spec.volumeMode", 'Unsupported value: "Raw": supported values: "Block", "Filesystem"')}),
    ({"storageClassName": "Fast_Disks"}, {("spec.storageClassName",
                                           'Invalid value: "Fast_Disks": a lowercase RFC 1123 subdomain must consist '
                                           "of lower case alphanumeric characters, '-' or '.', and must start and end "
                                           "with an alphanumeric character (e.g. 'example.com', regex used for "
                                           "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                                           "[a-z0-9])?)*')")}),
])
def test_volume_validation(spec: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert messages(PV, volume(**spec)) == expected


def test_volume_source_and_mode_are_immutable_a_claim_ref_is_not() -> None:
    old = volume()
    PV.defaults(old)
    new = copy.deepcopy(old)
    new["spec"]["hostPath"] = {"path": "/elsewhere"}
    new["spec"]["volumeMode"] = "Block"
    assert {c.field for c in PV.validate_update(new, old)} == {"spec.persistentvolumesource", "volumeMode"}
    bound = copy.deepcopy(old)
    bound["spec"]["claimRef"] = {"namespace": "default", "name": "c1"}
    assert PV.validate_update(bound, old) == []


def test_claim_validation_messages() -> None:
    empty = claim()
    empty["spec"] = {}
    assert messages(PVC, empty) == {("spec.accessModes", "Required value: at least 1 access mode is required"),
                                    ("spec.resources[storage]", "Required value")}
    assert messages(PVC, claim(resources={"requests": {"storage": "-1Gi"}})) == {
        ("spec.resources[storage]", 'Invalid value: "-1Gi": must be greater than zero')}
    assert messages(PVC, claim(accessModes=["ReadWriteMany"], storageClassName="fast")) == set()


def bound(obj: dict[str, Any], size: str = "1Gi") -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out["spec"]["volumeName"] = "pv1"
    out["status"] = {"phase": "Bound", "capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"]}
    PVC.defaults(out)
    return out


def test_claim_spec_is_immutable_except_binding_and_the_request_of_a_bound_claim() -> None:
    old = claim(storageClassName="fast")
    PVC.defaults(old)
    old["status"] = {"phase": "Pending"}
    assert PVC.validate_update(bound(old), old) == []  # the binder sets volumeName once
    changed = copy.deepcopy(old)
    changed["spec"]["accessModes"] = ["ReadWriteMany"]
    assert [(c.field, c.message) for c in PVC.validate_update(changed, old)] == [
        ("spec", f"Forbidden: {IMMUTABLE_SPEC}")]
    grown = copy.deepcopy(old)
    grown["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert [c.field for c in PVC.validate_update(grown, old)] == ["spec"]  # not bound: immutable
    bound_old = bound(old)
    bound_new = copy.deepcopy(bound_old)
    bound_new["spec"]["resources"]["requests"]["storage"] = "2Gi"
    assert PVC.validate_update(bound_new, bound_old) == []
    shrunk = copy.deepcopy(bound_old)
    shrunk["spec"]["resources"]["requests"]["storage"] = "512Mi"
    assert [(c.field, c.message) for c in PVC.validate_update(shrunk, bound_old)] == [
        ("spec.resources.requests.storage", "Forbidden: field can not be less than status.capacity")]
    rebound = copy.deepcopy(bound_old)
    rebound["spec"]["volumeName"] = "pv2"
    assert [c.field for c in PVC.validate_update(rebound, bound_old)] == ["spec"]
    no_class = claim()
    PVC.defaults(no_class)
    late_default = copy.deepcopy(no_class)
    late_default["spec"]["storageClassName"] = "local-path"
    assert PVC.validate_update(late_default, no_class) == []  # the retroactive default class


def _class(name: str, created: str, default: bool = True) -> dict[str, Any]:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
            "provisioner": "minik8s.io/local-path"}


def test_a_claim_without_a_class_gets_the_default_class_at_create() -> None:
    classes = [_class("old", "2024-01-01T00:00:00Z"), _class("new", "2024-02-01T00:00:00Z"),
               _class("plain", "2024-03-01T00:00:00Z", default=False)]
    ctx = CreateContext(now=NOW, stored=lambda gr: classes if gr == "storageclasses.storage.k8s.io" else [])

    def created(obj: dict[str, Any]) -> dict[str, Any]:
        PVC.prepare_for_create(obj, ctx)
        return obj
    assert created(claim())["spec"]["storageClassName"] == "new"
    assert created(claim())["status"] == {"phase": "Pending"}
    assert created(claim(storageClassName=""))["spec"]["storageClassName"] == ""  # explicitly no class
    assert created(claim(storageClassName="plain"))["spec"]["storageClassName"] == "plain"
    legacy = claim()
    legacy["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "plain"}
    assert "storageClassName" not in created(legacy)["spec"]


def test_table_rows() -> None:
    pv = volume(storageClassName="manual", claimRef={"namespace": "default", "name": "c1"})
    PV.defaults(pv)
    pv["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    pv["status"] = {"phase": "Bound"}
    assert [c.name for c in PV.columns] == ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
                                            "StorageClass", "VolumeAttributesClass", "Reason", "Age", "VolumeMode"]
    assert PV.row(pv, NOW) == ["pv1", "1Gi", "RWO", "Retain", "Bound", "default/c1", "manual", "<unset>", "",
                               "60m", "Filesystem"]
    pending = claim(storageClassName="manual")
    pending["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    pending["status"] = {"phase": "Pending"}
    assert [c.name for c in PVC.columns] == ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                                             "VolumeAttributesClass", "Age", "VolumeMode"]
    assert PVC.row(pending, NOW) == ["c1", "Pending", "", "", "", "manual", "<unset>", "60m", "<unset>"]
    assert PVC.row(bound(pending), NOW)[:5] == ["c1", "Bound", "pv1", "1Gi", "RWO"]
    assert access_modes_string(["ReadWriteOncePod", "ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"]) == \
        "RWO,ROX,RWX,RWOP"


def test_volumes_and_claims_over_the_api(http: httpx.Client, namespace: str) -> None:
    pv_name = f"pv-{uuid.uuid4().hex[:8]}"
    r = http.post("/api/v1/persistentvolumes", json=volume(pv_name))
    assert r.status_code == 201, r.text
    created = r.json()
    try:
        assert created["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
        assert created["status"] == {"phase": "Pending"}
        assert "namespace" not in created["metadata"]
        assert created["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
        r = http.post("/api/v1/persistentvolumes", json=volume(f"{pv_name}-x", accessModes=[]))
        assert r.status_code == 422, r.text
        assert r.json()["details"]["causes"] == [{"reason": "FieldValueRequired", "message": "Required value",
                                                  "field": "spec.accessModes"}]
        r = http.put(f"/api/v1/persistentvolumes/{pv_name}/status",
                     json={**created, "status": {"phase": "Available"}})
        assert r.status_code == 200 and r.json()["status"]["phase"] == "Available", r.text
        r = http.get("/api/v1/persistentvolumes", params={"fieldSelector": f"name={pv_name}"})
        assert [i["metadata"]["name"] for i in r.json()["items"]] == [pv_name]
        r = http.post(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
                      json=claim("c1", namespace, storageClassName=""))
        assert r.status_code == 201, r.text
        assert r.json()["status"] == {"phase": "Pending"} and r.json()["spec"]["volumeMode"] == "Filesystem"
        assert r.json()["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
        r = http.patch(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/c1",
                       json={"spec": {"accessModes": ["ReadWriteMany"]}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 422 and IMMUTABLE_SPEC in r.text, r.text
        r = http.post(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", json=claim("c2", namespace,
                                                                                        accessModes=[]))
        assert r.status_code == 422 and "at least 1 access mode is required" in r.text, r.text
        resources = {x["name"]: x for x in http.get("/api/v1").json()["resources"]}
        assert resources["persistentvolumes"]["shortNames"] == ["pv"]
        assert resources["persistentvolumeclaims"]["shortNames"] == ["pvc"]
        assert resources["persistentvolumeclaims"]["namespaced"] is True
        assert "persistentvolumeclaims/status" in resources
    finally:
        http.delete(f"/api/v1/persistentvolumes/{pv_name}")


async def test_a_bound_claim_grows_only_in_an_expandable_class() -> None:
    """The PersistentVolumeClaimResize admission (before_update reads the stored classes)."""
    from machinery import errors

    classes = [{"metadata": {"name": "grows"}, "provisioner": "p.io/x", "allowVolumeExpansion": True},
               {"metadata": {"name": "fixed"}, "provisioner": "p.io/x"}]
    ctx = CreateContext(now=NOW, stored=lambda gr: classes if gr == "storageclasses.storage.k8s.io" else [])
    for cls, allowed in (("grows", True), ("fixed", False), ("missing", False)):
        old = bound(claim(storageClassName=cls))
        new = copy.deepcopy(old)
        new["spec"]["resources"]["requests"]["storage"] = "2Gi"
        if allowed:
            await PVC.before_update(new, old, ctx)
        else:
            with pytest.raises(errors.ForbiddenError, match="only dynamically provisioned pvc can be resized"):
                await PVC.before_update(new, old, ctx)
    pending = claim(storageClassName="fixed")
    pending["status"] = {"phase": "Pending"}
    await PVC.before_update(copy.deepcopy(pending), pending, ctx)  # nothing grew: nothing to admit
