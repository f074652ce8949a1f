"""The local-path provisioner's pure decisions: which claims get a volume, where, and its shape."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.localprovisionerplan import choose_node, default_class, expanded, provision

Obj = dict[str, Any]

WFFC = {"metadata": {"name": "local-path"}, "provisioner": "minik8s.io/local-path", "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer"}
NOW = {"metadata": {"name": "local-now"}, "provisioner": "minik8s.io/local-path", "reclaimPolicy": "Retain",
       "volumeBindingMode": "Immediate", "mountOptions": ["noatime"]}
OTHER = {"metadata": {"name": "other"}, "provisioner": "example.com/other", "volumeBindingMode": "Immediate"}
CLASSES = {c["metadata"]["name"]: c for c in (WFFC, NOW, OTHER)}


def node(name: str, ready: bool = True, local_dir: str = "") -> Obj:
    meta: Obj = {"name": name}
    if local_dir:
        meta["annotations"] = {"minik8s.io/local-path-dir": local_dir}
    return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def claim(cls: str = "local-path", *, selected: str = "", volume: str = "") -> Obj:
    meta: Obj = {"name": "data", "namespace": "ns", "uid": "1234", "resourceVersion": "9"}
    if selected:
        meta["annotations"] = {"volume.kubernetes.io/selected-node": selected}
    spec: Obj = {"storageClassName": cls, "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                 "resources": {"requests": {"storage": "2Gi"}}}
    if volume:
        spec["volumeName"] = volume
    return {"metadata": meta, "spec": spec}


NODES = {"n1": node("n1", local_dir="/srv/n1/local-path"), "n2": node("n2"), "down": node("down", ready=False)}


def test_the_default_class() -> None:
    sc = default_class()
    assert sc["metadata"] == {"name": "local-path",
                              "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == \
        ("minik8s.io/local-path", "Delete", "WaitForFirstConsumer")


def test_a_wait_for_first_consumer_claim_gets_its_volume_on_the_selected_node() -> None:
    assert provision(claim(), CLASSES, NODES, set()) is None  # no node selected yet
    body = provision(claim(selected="n1"), CLASSES, NODES, set())
    assert body is not None
    assert body["metadata"] == {"name": "pvc-1234",
                                "annotations": {"pv.kubernetes.io/provisioned-by": "minik8s.io/local-path"}}
    spec = body["spec"]
    assert spec["local"] == {"path": "/srv/n1/local-path/pvc-1234_ns_data"}
    assert spec["nodeAffinity"]["required"]["nodeSelectorTerms"] == [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]
    assert (spec["capacity"], spec["accessModes"], spec["persistentVolumeReclaimPolicy"], spec["storageClassName"]) == \
        ({"storage": "2Gi"}, ["ReadWriteOnce"], "Delete", "local-path")
    assert spec["claimRef"] == {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": "ns",
                                "name": "data", "uid": "1234", "resourceVersion": "9"}
    # A node without the annotation: the default directory.
    other = provision(claim(selected="n2"), CLASSES, NODES, set())
    assert other is not None and other["spec"]["local"]["path"] == "/var/lib/minik8s/local-path/pvc-1234_ns_data"


@pytest.mark.parametrize("the_claim,existing", [
    (claim(selected="n1"), {"pvc-1234"}),  # done already
    (claim(selected="n1", volume="pvc-1234"), set()),  # bound
    (claim("other"), set()),  # another provisioner's class
    (claim("missing"), set()),
])
def test_claims_left_alone(the_claim: Obj, existing: set[str]) -> None:
    assert provision(the_claim, CLASSES, NODES, existing) is None


def test_an_immediate_claim_goes_to_a_ready_node_chosen_stably() -> None:
    body = provision(claim("local-now"), CLASSES, NODES, set())
    assert body is not None and body["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
    assert body["spec"]["mountOptions"] == ["noatime"]
    chosen = body["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"]
    assert chosen[0] in ("n1", "n2")
    assert choose_node(claim("local-now"), NOW, NODES.values()) == chosen[0]
    assert choose_node(claim("local-now"), NOW, [node("down", ready=False)]) is None


def test_a_grown_claim_of_an_expandable_class_grows_its_volume() -> None:
    classes = {**CLASSES, "local-path": {**WFFC, "allowVolumeExpansion": True}}
    bound = claim(selected="n1", volume="pvc-1234")
    volume = provision(claim(selected="n1"), classes, NODES, set())
    assert volume is not None
    assert expanded(bound, volume, classes) is None  # 2Gi asked, 2Gi there
    bound["spec"]["resources"]["requests"]["storage"] = "3Gi"
    grown = expanded(bound, volume, classes)
    assert grown is not None and grown["spec"]["capacity"] == {"storage": "3Gi"}
    assert volume["spec"]["capacity"] == {"storage": "2Gi"}  # not mutated
    assert expanded(bound, volume, CLASSES) is None  # the class does not allow expansion
    assert expanded(bound, None, classes) is None
