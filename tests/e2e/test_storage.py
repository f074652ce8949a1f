"""Storage end to end: real etcd, apiserver, scheduler, controller-manager (PV binder and local-path
provisioner) and simulated kubelets as separate processes, driven by the real kubectl.

Covers: the default class ``local-path`` (made by the provisioner) is assigned at create; a claim
of it stays Pending (WaitForFirstConsumer) until a pod uses it, then is Bound to a volume
provisioned on the pod's node; static volumes bind Immediate claims (the smallest that fits,
access modes checked); Retain leaves a volume Released; the scheduler's VolumeBinding messages;
``kubectl get pv,pvc,sc`` columns; Kubernetes' validation messages. The cluster is this module's
own; nodes ``sim-s-0`` and ``sim-s-1`` (one simulated kubelet process).
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.cluster import ComponentProcess
from tests.e2e.dockercluster import LEASE, ProcessCluster, node_ready, started

pytestmark = pytest.mark.e2e

CONTROLLERS = "persistentvolume-binder,local-path-provisioner,pvc-protection,pv-protection,namespace"


class Cluster(ProcessCluster):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, capacity="cpu=2,memory=4Gi,pods=30", ns_prefix="s-", kubectl_timeout=60, wait_timeout=30)
        self.nodes = self.kubelet("sim-s", "--count", "2")
        self.scheduler = self.component("scheduler", *LEASE)
        self.cm = self.component("controller-manager", *LEASE, "--controllers", CONTROLLERS)

    def components(self) -> list[ComponentProcess]:
        return [self.scheduler, self.cm, self.nodes]

    def apply(self, *docs: dict[str, Any], namespace: str = "") -> subprocess.CompletedProcess[str]:
        body = yaml.safe_dump_all(docs)
        return self.kubectl("apply", "-f", "-", *(("-n", namespace) if namespace else ()), stdin=body, check=False)

    def get(self, path: str) -> dict[str, Any]:
        r = self.http.get(path)
        return r.json() if r.status_code == 200 else {}

    def claim(self, ns: str, name: str) -> dict[str, Any]:
        return self.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}")

    def volume(self, name: str) -> dict[str, Any]:
        return self.get(f"/api/v1/persistentvolumes/{name}")

    def volume_class(self, name: str) -> dict[str, Any]:
        return self.get(f"/apis/storage.k8s.io/v1/storageclasses/{name}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with started(lambda: Cluster(tmp_path_factory.mktemp("storage")), "2 Ready nodes",
                 lambda c: all(node_ready(c, n) for n in ("sim-s-0", "sim-s-1"))) as c:
        c.wait("the default StorageClass", lambda: c.volume_class("local-path"))
        yield c


def claim(name: str, *, size: str = "1Gi", modes: tuple[str, ...] = ("ReadWriteOnce",),
          cls: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": list(modes), "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def volume(name: str, *, size: str, modes: tuple[str, ...] = ("ReadWriteOnce",), cls: str = "") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": list(modes), "storageClassName": cls,
                     "hostPath": {"path": f"/tmp/minik8s-e2e/{name}"}}}


def pod(name: str, *claims: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                     "volumeMounts": [{"name": f"v{i}", "mountPath": f"/data{i}"}
                                                      for i in range(len(claims))]}],
                     "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
                                 for i, c in enumerate(claims)]}}


def phase(obj: dict[str, Any]) -> str:
    return str((obj.get("status") or {}).get("phase") or "")


def test_the_default_class_is_made_and_assigned_at_create(cluster: Cluster) -> None:
    sc = cluster.volume_class("local-path")
    assert (sc["provisioner"], sc["reclaimPolicy"], sc["volumeBindingMode"]) == \
        ("minik8s.io/local-path", "Delete", "WaitForFirstConsumer")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    ns = cluster.namespace()
    assert cluster.apply(claim("data"), namespace=ns).returncode == 0
    assert cluster.claim(ns, "data")["spec"]["storageClassName"] == "local-path"
    assert cluster.apply(claim("none", cls=""), namespace=ns).returncode == 0
    assert cluster.claim(ns, "none")["spec"]["storageClassName"] == ""
    cluster.kubectl("delete", "pvc", "--all", "-n", ns)


def test_a_wait_for_first_consumer_claim_binds_on_the_pods_node(cluster: Cluster) -> None:
    ns = cluster.namespace()
    assert cluster.apply(claim("data", size="2Gi"), namespace=ns).returncode == 0
    cluster.wait("the WaitForFirstConsumer event", lambda: any(
        e.get("reason") == "WaitForFirstConsumer"
        for e in cluster.get(f"/api/v1/namespaces/{ns}/events").get("items", [])))
    time.sleep(1.0)  # nothing binds it meanwhile
    assert phase(cluster.claim(ns, "data")) == "Pending"
    assert cluster.claim(ns, "data")["spec"].get("volumeName") is None
    assert cluster.apply(pod("app", "data"), namespace=ns).returncode == 0
    node = cluster.wait("the pod scheduled", lambda: cluster.get(f"/api/v1/namespaces/{ns}/pods/app")
                        .get("spec", {}).get("nodeName"))
    bound = cluster.wait("the claim Bound", lambda: (c := cluster.claim(ns, "data")) and phase(c) == "Bound" and c)
    assert bound["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    assert bound["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert bound["status"]["capacity"] == {"storage": "2Gi"} and bound["status"]["accessModes"] == ["ReadWriteOnce"]
    pv_name = bound["spec"]["volumeName"]
    assert pv_name == f"pvc-{bound['metadata']['uid']}"
    pv = cluster.wait("the volume Bound", lambda: (v := cluster.volume(pv_name)) and phase(v) == "Bound" and v)
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "minik8s.io/local-path"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == [node]
    assert pv["spec"]["local"]["path"].endswith(f"/{pv_name}_{ns}_data")
    assert (pv["spec"]["persistentVolumeReclaimPolicy"], pv["spec"]["claimRef"]["uid"]) == \
        ("Delete", bound["metadata"]["uid"])
    # A second pod of that claim can only go where the volume is.
    assert cluster.apply({**pod("again", "data"), "metadata": {"name": "again"}}, namespace=ns).returncode == 0
    assert cluster.wait("the second pod scheduled", lambda: cluster.get(f"/api/v1/namespaces/{ns}/pods/again")
                        .get("spec", {}).get("nodeName")) == node


def test_static_volumes_bind_the_smallest_fit_and_access_modes_are_checked(cluster: Cluster) -> None:
    tag = uuid.uuid4().hex[:6]
    small, big, rwx, cls = f"small-{tag}", f"big-{tag}", f"rwx-{tag}", f"manual-{tag}"  # a class without an object
    for body in (volume(big, size="5Gi", cls=cls), volume(small, size="1Gi", cls=cls)):
        assert cluster.apply(body).returncode == 0
    cluster.wait("the volumes Available", lambda: all(phase(cluster.volume(n)) == "Available" for n in (small, big)))
    ns = cluster.namespace()
    assert cluster.apply(claim("one", size="512Mi", cls=cls), namespace=ns).returncode == 0
    one = cluster.wait("claim one Bound", lambda: (c := cluster.claim(ns, "one")) and phase(c) == "Bound" and c)
    assert one["spec"]["volumeName"] == small
    assert one["status"]["capacity"] == {"storage": "1Gi"}
    pv = cluster.volume(small)
    assert pv["spec"]["claimRef"]["name"] == "one" and phase(pv) == "Bound"
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    # ReadWriteMany: the ReadWriteOnce volume left does not do, whatever its size.
    assert cluster.apply(claim("shared", modes=("ReadWriteMany",), cls=cls), namespace=ns).returncode == 0
    time.sleep(1.5)
    assert phase(cluster.claim(ns, "shared")) == "Pending" and phase(cluster.volume(big)) == "Available"
    assert cluster.apply(volume(rwx, size="3Gi", modes=("ReadWriteOnce", "ReadWriteMany"), cls=cls)).returncode == 0
    shared = cluster.wait("claim shared Bound", lambda: (c := cluster.claim(ns, "shared")) and phase(c) == "Bound"
                          and c)
    assert shared["spec"]["volumeName"] == rwx and shared["status"]["accessModes"] == ["ReadWriteOnce",
                                                                                       "ReadWriteMany"]
    # Retain (the default of a static volume): the claim goes, the volume stays Released.
    cluster.kubectl("delete", "pvc", "one", "-n", ns)
    cluster.wait("the volume Released", lambda: phase(cluster.volume(small)) == "Released")
    time.sleep(1.0)
    kept = cluster.volume(small)
    assert phase(kept) == "Released" and kept["spec"]["claimRef"]["name"] == "one"
    # kubectl's columns (printPersistentVolume / printPersistentVolumeClaim / printStorageClass).
    out = cluster.kubectl("get", "pv", small, big).stdout.splitlines()
    assert out[0].split() == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM",
                              "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"]
    rows = {line.split()[0]: line.split() for line in out[1:]}
    assert rows[small][1:8] == ["1Gi", "RWO", "Retain", "Released", f"{ns}/one", cls, "<unset>"]
    assert rows[big][1:5] == ["5Gi", "RWO", "Retain", "Available"]
    wide = cluster.kubectl("get", "pv", small, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-1] == "VOLUMEMODE" and wide[1].split()[-1] == "Filesystem"
    out = cluster.kubectl("get", "pvc", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                              "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert out[1].split()[:7] == ["shared", "Bound", rwx, "3Gi", "RWO,RWX", cls, "<unset>"]
    out = cluster.kubectl("get", "sc").stdout.splitlines()
    assert out[0].split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION",
                              "AGE"]
    assert out[1].split()[:6] == ["local-path", "(default)", "minik8s.io/local-path", "Delete",
                                  "WaitForFirstConsumer", "false"]
    both = cluster.kubectl("get", "pv,pvc,sc", "-n", ns).stdout
    assert f"persistentvolume/{small}" in both and "persistentvolumeclaim/shared" in both
    assert "storageclass.storage.k8s.io/local-path (default)" in both
    for name in (small, big, rwx):
        cluster.kubectl("delete", "pv", name, "--wait=false")


def test_the_scheduler_waits_for_claims(cluster: Cluster) -> None:
    ns = cluster.namespace()
    assert cluster.apply(pod("orphan", "nope"), namespace=ns).returncode == 0

    def scheduled_condition(name: str) -> str:
        conds = cluster.get(f"/api/v1/namespaces/{ns}/pods/{name}").get("status", {}).get("conditions") or []
        return next((c.get("message", "") for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"),
                    "")
    assert cluster.wait("orphan unschedulable", lambda: scheduled_condition("orphan")) == (
        '0/2 nodes are available: persistentvolumeclaim "nope" not found. preemption: 0/2 nodes are available: '
        "2 Preemption is not helpful for scheduling.")
    # The claim arrives: the pod is scheduled and its claim provisioned.
    assert cluster.apply(claim("nope"), namespace=ns).returncode == 0
    cluster.wait("orphan scheduled", lambda: cluster.get(f"/api/v1/namespaces/{ns}/pods/orphan")
                 .get("spec", {}).get("nodeName"))
    cluster.wait("its claim Bound", lambda: phase(cluster.claim(ns, "nope")) == "Bound")
    # An Immediate claim nothing can bind keeps its pod Pending.
    assert cluster.apply(claim("never", size="1Ti", cls=""), namespace=ns).returncode == 0
    assert cluster.apply(pod("waiting", "never"), namespace=ns).returncode == 0
    assert "pod has unbound immediate PersistentVolumeClaims" in cluster.wait(
        "waiting unschedulable", lambda: scheduled_condition("waiting"))


@pytest.mark.parametrize("doc,message", [
    (claim("bad", modes=()), "spec.accessModes: Required value: at least 1 access mode is required"),
    ({**claim("bad"), "spec": {"accessModes": ["ReadWriteOnce"]}}, "spec.resources[storage]: Required value"),
    (claim("bad", modes=("ReadWriteSometimes",)), 'spec.accessModes: Unsupported value: "ReadWriteSometimes"'),
    ({**volume("bad", size="1Gi"), "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]}},
     "spec: Required value: must specify a volume type"),
    ({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "bad"},
      "provisioner": "x.io/p", "volumeBindingMode": "Eventually"}, 'volumeBindingMode: Unsupported value: "Eventually"'),
])
def test_validation_messages(cluster: Cluster, doc: dict[str, Any], message: str) -> None:
    ns = cluster.namespace() if doc["kind"] == "PersistentVolumeClaim" else ""
    p = cluster.apply(doc, namespace=ns)
    assert p.returncode != 0 and message in p.stderr, p.stderr


def test_a_claims_spec_is_immutable_and_a_classs_provisioner_too(cluster: Cluster) -> None:
    ns = cluster.namespace()
    assert cluster.apply(claim("fixed", cls=""), namespace=ns).returncode == 0
    p = cluster.kubectl("patch", "pvc", "fixed", "-n", ns, "-p", '{"spec":{"accessModes":["ReadWriteMany"]}}',
                        check=False)
    assert p.returncode != 0 and "spec: Forbidden: spec is immutable after creation except resources.requests" \
        in p.stderr, p.stderr
    p = cluster.kubectl("patch", "sc", "local-path", "-p", '{"provisioner":"other.io/p"}', check=False)
    assert p.returncode != 0 and "provisioner: Forbidden: updates to provisioner are forbidden." in p.stderr, p.stderr


def test_a_users_edit_of_the_default_class_survives_a_restart(cluster: Cluster) -> None:
    cluster.kubectl("annotate", "sc", "local-path", "note=mine")
    cluster.cm.stop()
    cluster.cm = ComponentProcess.start("controller-manager", "--server", cluster.url, *LEASE, "--controllers",
                                        CONTROLLERS)
    ns = cluster.namespace()
    assert cluster.apply(claim("after"), namespace=ns).returncode == 0
    assert cluster.apply(pod("user", "after"), namespace=ns).returncode == 0
    cluster.wait("the claim Bound after the restart", lambda: phase(cluster.claim(ns, "after")) == "Bound", 40)
    assert cluster.volume_class("local-path")["metadata"]["annotations"]["note"] == "mine"


def test_an_immediate_local_path_class_provisions_at_once_and_expands(cluster: Cluster) -> None:
    cls = f"expandable-{uuid.uuid4().hex[:6]}"
    assert cluster.apply({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": cls},
                          "provisioner": "minik8s.io/local-path", "allowVolumeExpansion": True}).returncode == 0
    ns = cluster.namespace()
    p = cluster.apply(claim("grow", cls=cls), claim("fixed"), namespace=ns)
    assert p.returncode == 0, p.stderr
    grown = cluster.wait("the Immediate claim Bound without a pod",
                         lambda: (c := cluster.claim(ns, "grow")) and phase(c) == "Bound" and c)
    pv_name = grown["spec"]["volumeName"]
    assert cluster.volume(pv_name)["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0][
        "matchExpressions"][0]["values"][0] in ("sim-s-0", "sim-s-1")
    cluster.kubectl("patch", "pvc", "grow", "-n", ns, "-p", '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}')
    cluster.wait("the volume grown", lambda: cluster.volume(pv_name)["spec"]["capacity"] == {"storage": "3Gi"})
    cluster.wait("the claim's capacity grown",
                 lambda: cluster.claim(ns, "grow")["status"].get("capacity") == {"storage": "3Gi"})
    # The default class does not allow expansion: the resize admission refuses a bound claim's growth.
    assert cluster.apply(pod("user", "fixed"), namespace=ns).returncode == 0
    cluster.wait("fixed Bound", lambda: phase(cluster.claim(ns, "fixed")) == "Bound")
    p = cluster.kubectl("patch", "pvc", "fixed", "-n", ns, "-p",
                        '{"spec":{"resources":{"requests":{"storage":"3Gi"}}}}', check=False)
    assert p.returncode != 0 and ('persistentvolumeclaims "fixed" is forbidden: only dynamically provisioned pvc can '
                                  "be resized and the storageclass that provisions the pvc must support resize") \
        in p.stderr, p.stderr
    cluster.kubectl("delete", "sc", cls)


def test_a_claim_in_use_is_not_deleted_under_its_pod(cluster: Cluster) -> None:
    ns = cluster.namespace()
    assert cluster.apply(claim("busy"), pod("user", "busy"), namespace=ns).returncode == 0
    bound = cluster.wait("busy Bound", lambda: (c := cluster.claim(ns, "busy")) and phase(c) == "Bound" and c)
    assert bound["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    pv_name = bound["spec"]["volumeName"]
    assert cluster.volume(pv_name)["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    cluster.kubectl("delete", "pvc", "busy", "-n", ns, "--wait=false")
    time.sleep(1.0)
    held = cluster.claim(ns, "busy")
    assert held["metadata"].get("deletionTimestamp") and phase(held) == "Bound"  # the pod still uses it
    assert cluster.kubectl("get", "pvc", "busy", "-n", ns).stdout.splitlines()[1].split()[1] == "Terminating"
    assert phase(cluster.volume(pv_name)) == "Bound"
    cluster.kubectl("delete", "pod", "user", "-n", ns, "--grace-period=0", "--force")
    cluster.wait("the claim gone once its pod is", lambda: not cluster.claim(ns, "busy"))
    cluster.wait("its volume Released", lambda: phase(cluster.volume(pv_name)) == "Released")
    # A deleted volume that is not Bound goes at once; the protection only holds Bound ones.
    cluster.kubectl("delete", "pv", pv_name)
    assert not cluster.volume(pv_name)


def test_two_claims_racing_for_one_volume_one_wins(cluster: Cluster) -> None:
    cls = f"race-{uuid.uuid4().hex[:6]}"
    only = f"only-{cls}"
    assert cluster.apply(volume(only, size="1Gi", cls=cls)).returncode == 0
    cluster.wait("the volume Available", lambda: phase(cluster.volume(only)) == "Available")
    ns = cluster.namespace()
    assert cluster.apply(*(claim(f"c{i}", cls=cls) for i in range(4)), namespace=ns).returncode == 0
    winner = cluster.wait("one claim Bound", lambda: [c["metadata"]["name"] for c in cluster.get(
        f"/api/v1/namespaces/{ns}/persistentvolumeclaims")["items"] if phase(c) == "Bound"])
    time.sleep(1.0)
    claims = cluster.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims")["items"]
    assert sorted(phase(c) for c in claims) == ["Bound", "Pending", "Pending", "Pending"], winner
    assert cluster.volume(only)["spec"]["claimRef"]["name"] == winner[0]
    cluster.kubectl("delete", "pvc", "--all", "-n", ns)
    cluster.kubectl("delete", "pv", only, "--wait=false")
