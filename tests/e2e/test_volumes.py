"""Issue 12's volumes, end to end on a real Docker kubelet, driven by the real ``kubectl``.

This module's own cluster: etcd, apiserver, scheduler and controller-manager processes and one
``minik8s kubelet`` (a Docker node) on a test network ``mk-vol-*`` (a free /24 of the test pool),
its ``--root-dir`` in a temporary directory. Each test works in its own namespace; the fixture
removes the node's containers and tmpfs volumes by label, and the network, at the end.

What it proves: data in a PersistentVolumeClaim outlives its pod; a pod waits in
ContainerCreating (FailedMount) while its claim is missing and starts once it is bound; hostPath
DirectoryOrCreate makes the directory and File refuses a directory with Kubernetes' message; an
emptyDir of medium Memory is one tmpfs of the given size for two containers; downwardAPI,
projected and secret files have the expected contents and modes and follow changes; a Released
local-path PV with the Delete policy loses its directory and its object.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.runtime import LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_ROLE, ROLE_CONTAINER, DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


class VolumeCluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.node = f"vol-{uuid.uuid4().hex[:6]}"
        super().__init__(tmp, rt, prefix="mk-vol", label="volumes", docker_nodes=(self.node,), ns_prefix="vol-",
                         kubectl_timeout=60, wait_timeout=30)
        self.root = self.root_dir(self.node)
        try:
            self.wait("node registered", lambda: self.http.get(f"/api/v1/nodes/{self.node}").status_code == 200)
        except BaseException:
            self.stop()
            raise

    def apply(self, objects: list[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def running(self, ns: str, name: str, timeout: float = 40) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            p = self.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            return p if p and (p.get("status") or {}).get("phase") == "Running" else None

        def diagnose() -> str:
            status = (self.get(f"/api/v1/namespaces/{ns}/pods/{name}") or {}).get("status")
            events = [(e["reason"], e["message"]) for e in self.events(ns, name)]
            return f"status: {status}\nevents: {events}\n{self.diagnostics()}"
        return dict(wait_for(check, timeout, f"pod {ns}/{name} Running", diagnose))

    def events(self, ns: str, pod: str) -> list[dict[str, Any]]:
        items = self.http.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
        return [e for e in items if (e.get("involvedObject") or {}).get("name") == pod]

    def sh(self, ns: str, pod: str, script: str, *, container: str | None = None) -> str:
        labels = {LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: pod, LABEL_ROLE: ROLE_CONTAINER}
        found = [c for c in self.rt.list(labels) if c.running and (container is None or c.container_name == container)]
        assert found, f"no running container of pod {ns}/{pod}"
        result = self.rt.exec(found[0].id, ["sh", "-c", script], timeout=10)
        assert result.exit_code == 0, f"{script}: exit {result.exit_code}: {result.output!r}"
        return result.output.decode()

    def delete_pod(self, ns: str, name: str) -> None:
        self.kubectl("delete", "pod", name, "-n", ns, "--wait=true", "--timeout=40s")


def pod(ns: str, name: str, *, volumes: list[dict[str, Any]], mounts: list[dict[str, Any]],
        containers: int = 1, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 0, "volumes": volumes, **spec,
                     "containers": [{"name": f"c{i}", "image": IMAGE, "command": SLEEPER, "volumeMounts": mounts}
                                    for i in range(containers)]}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VolumeCluster]:
    with docker_started(lambda rt: VolumeCluster(tmp_path_factory.mktemp("volumes"), rt)) as c:
        yield c


def test_node_publishes_its_local_path_dir(cluster: VolumeCluster) -> None:
    node = cluster.get(f"/api/v1/nodes/{cluster.node}")
    assert node is not None
    assert node["metadata"]["annotations"]["minik8s.io/local-path-dir"] == str(cluster.root / "local-path")


def test_claim_data_outlives_its_pod(cluster: VolumeCluster) -> None:
    ns = cluster.namespace()
    disk = cluster.home / f"disk-{ns}"
    disk.mkdir()
    pv_name = f"pv-{ns}"
    mount = [{"name": "data", "mountPath": "/data"}]
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    # The pod first, bound to the node by nodeName (the scheduler would keep it Pending): the
    # claim does not exist yet, so the kubelet keeps it in ContainerCreating and tries again.
    cluster.apply([pod(ns, "writer", volumes=volumes, mounts=mount, nodeName=cluster.node)])
    cluster.wait("FailedMount for the missing claim", lambda: any(
        e["reason"] == "FailedMount" and 'persistentvolumeclaim "data" not found' in e["message"]
        for e in cluster.events(ns, "writer")))
    p = cluster.get(f"/api/v1/namespaces/{ns}/pods/writer")
    assert p is not None and p["status"]["phase"] == "Pending"
    assert p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    # A static local PV and a claim bound to it (pre-bound both ways, as an administrator does).
    cluster.apply([
        {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv_name},
         "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                  "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
                  "claimRef": {"namespace": ns, "name": "data"},
                  "local": {"path": str(disk)},
                  "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                      {"key": "kubernetes.io/hostname", "operator": "In", "values": [cluster.node]}]}]}}}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns},
         "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv_name,
                  "resources": {"requests": {"storage": "1Gi"}}}}])
    bind_claim(cluster, ns, "data", pv_name)
    cluster.running(ns, "writer")
    cluster.sh(ns, "writer", "echo kept > /data/file && sync")
    assert (disk / "file").read_text() == "kept\n"
    cluster.delete_pod(ns, "writer")
    assert (disk / "file").read_text() == "kept\n"  # never deleted with the pod
    cluster.apply([pod(ns, "reader", volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data",
                                                                                         "readOnly": True}}],
                       mounts=mount)])
    cluster.running(ns, "reader")
    assert cluster.sh(ns, "reader", "cat /data/file") == "kept\n"
    # claim.readOnly: the mount is read-only.
    assert "Read-only file system" in cluster.sh(ns, "reader", "touch /data/x 2>&1 || true")


def bind_claim(cluster: VolumeCluster, ns: str, claim: str, pv: str) -> None:
    """The claim and its PV Bound: by the PV controller when it runs, else set here through /status."""
    def bound() -> bool:
        c = cluster.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}")
        return bool(c and (c.get("status") or {}).get("phase") == "Bound")
    try:
        wait_for(bound, 5, "claim bound by the PV controller")
        return
    except AssertionError:
        pass
    r = cluster.http.patch(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/{claim}/status",
                           json={"status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"],
                                            "capacity": {"storage": "1Gi"}}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    r = cluster.http.patch(f"/api/v1/persistentvolumes/{pv}/status", json={"status": {"phase": "Bound"}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def test_host_path_types(cluster: VolumeCluster) -> None:
    ns = cluster.namespace()
    # hostPath volumes need the Pod Security level privileged (baseline, the default, refuses them).
    r = cluster.http.patch(f"/api/v1/namespaces/{ns}", json={"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "privileged"}}}, headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    made = cluster.home / f"hp-{ns}" / "made"
    manifest = pod(ns, "dir", volumes=[{"name": "h", "hostPath": {"path": str(made), "type": "DirectoryOrCreate"}}],
                   mounts=[{"name": "h", "mountPath": "/h"}, {"name": "h", "mountPath": "/mine",
                                                               "subPathExpr": "logs/$(POD_NAME)"}])
    manifest["spec"]["containers"][0]["env"] = [{"name": "POD_NAME",
                                                 "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    cluster.apply([manifest])
    cluster.running(ns, "dir")
    assert made.is_dir()
    cluster.sh(ns, "dir", "echo from-pod > /h/f && echo mine > /mine/g")
    assert (made / "f").read_text() == "from-pod\n"
    assert (made / "logs" / "dir" / "g").read_text() == "mine\n"  # subPathExpr: logs/$(POD_NAME)
    cluster.apply([pod(ns, "file", volumes=[{"name": "h", "hostPath": {"path": str(made), "type": "File"}}],
                       mounts=[{"name": "h", "mountPath": "/h"}])])
    message = f'MountVolume.SetUp failed for volume "h" : hostPath type check failed: {made} is not a file'
    cluster.wait("FailedMount of the File type check", lambda: any(
        e["reason"] == "FailedMount" and e["type"] == "Warning" and e["message"].startswith(message)
        for e in cluster.events(ns, "file")))
    p = cluster.get(f"/api/v1/namespaces/{ns}/pods/file")
    assert p is not None and p["status"]["phase"] == "Pending"
    described = cluster.kubectl("describe", "pod", "file", "-n", ns).stdout
    assert "FailedMount" in described and "ContainerCreating" in described


def test_memory_empty_dir_is_one_tmpfs_of_its_size(cluster: VolumeCluster) -> None:
    ns = cluster.namespace()
    cluster.apply([pod(ns, "mem", volumes=[{"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}],
                       mounts=[{"name": "cache", "mountPath": "/cache"}], containers=2)])
    p = cluster.running(ns, "mem")
    df = cluster.sh(ns, "mem", "df -k /cache | tail -1", container="c0").split()
    assert df[0] == "tmpfs" and df[1] == str(16 * 1024), df
    cluster.sh(ns, "mem", "echo shared > /cache/x", container="c0")
    assert cluster.sh(ns, "mem", "cat /cache/x", container="c1") == "shared\n"
    uid = p["metadata"]["uid"]
    assert [v.name for v in cluster.rt.list_volumes({"io.minik8s.pod.uid": uid})] == [f"mk8s-{uid}-cache"]
    cluster.delete_pod(ns, "mem")
    cluster.wait("the tmpfs volume removed with the pod",
                 lambda: cluster.rt.list_volumes({"io.minik8s.pod.uid": uid}) == [])


def test_downward_projected_and_secret_files(cluster: VolumeCluster) -> None:
    ns = cluster.namespace()
    b64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731
    cluster.apply([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": ns},
         "data": {"user": b64("admin"), "password": b64("s3cret")}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns},
         "data": {"mode": "fast", "level": "3"}}])
    volumes = [
        {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400,
                                   "items": [{"key": "password", "path": "pw"},
                                             {"key": "user", "path": "conf/user", "mode": 0o644}]}},
        {"name": "info", "downwardAPI": {"items": [
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o600},
            {"path": "mem", "resourceFieldRef": {"containerName": "c0", "resource": "limits.memory",
                                                 "divisor": "1Mi"}}]}},
        {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "settings", "items": [{"key": "mode", "path": "mode"}]}},
            {"secret": {"name": "creds", "items": [{"key": "user", "path": "user"}]}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
            {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 600}}]}},
        {"name": "cfg", "configMap": {"name": "settings"}},
    ]
    mounts = [{"name": "sec", "mountPath": "/sec"}, {"name": "info", "mountPath": "/info"},
              {"name": "all", "mountPath": "/all"}, {"name": "cfg", "mountPath": "/cfg"}]
    manifest = pod(ns, "files", volumes=volumes, mounts=mounts)
    manifest["spec"]["containers"][0]["resources"] = {"limits": {"memory": "32Mi", "cpu": "250m"}}
    cluster.apply([manifest])
    p = cluster.running(ns, "files")
    out = cluster.sh(ns, "files", "for f in /sec/pw /sec/conf/user /info/name /info/labels /info/mem /all/mode "
                                  "/all/user /all/ns /cfg/level; do echo \"$f $(stat -L -c %a $f) $(cat $f)\"; done")
    assert out.splitlines() == [
        "/sec/pw 400 s3cret", "/sec/conf/user 644 admin", "/info/name 600 files", '/info/labels 644 app="files"',
        "/info/mem 644 32", "/all/mode 440 fast", "/all/user 440 admin", f"/all/ns 440 {ns}", "/cfg/level 644 3"]
    assert "Read-only file system" in cluster.sh(ns, "files", "touch /cfg/new 2>&1 || true")
    # The projected service account token: a TokenRequest bound to the pod.
    token = cluster.sh(ns, "files", "cat /all/token")
    body = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert claims["sub"] == f"system:serviceaccount:{ns}:default" and claims["aud"] == ["vault"]
    assert claims["kubernetes.io"]["pod"] == {"name": "files", "uid": p["metadata"]["uid"]}
    assert claims["exp"] - claims["iat"] == 600
    # Changes reach the running pod: a ConfigMap edit, a new label.
    cluster.kubectl("patch", "configmap", "settings", "-n", ns, "-p", '{"data": {"level": "4"}}')
    cluster.kubectl("label", "pod", "files", "-n", ns, "tier=web")
    cluster.wait("the ConfigMap edit in the volume", lambda: cluster.sh(ns, "files", "cat /cfg/level") == "4")
    cluster.wait("the new label in the downwardAPI file",
                 lambda: cluster.sh(ns, "files", "cat /info/labels") == 'app="files"\ntier="web"')


def test_released_local_path_volume_is_reclaimed(cluster: VolumeCluster) -> None:
    local_dir = cluster.root / "local-path"
    name = f"pvc-{uuid.uuid4().hex[:8]}"
    path = local_dir / f"{name}_ns_claim"
    path.mkdir(parents=True)
    (path / "data").write_text("old")
    kept = local_dir / f"{name}-retain_ns_claim"
    kept.mkdir()
    for pv_name, policy in ((name, "Delete"), (f"{name}-retain", "Retain")):
        cluster.apply([{
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": pv_name, "annotations": {PROVISIONED_BY: "minik8s.io/local-path"}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": policy, "storageClassName": "local-path",
                     "claimRef": {"namespace": "ns", "name": "claim", "uid": str(uuid.uuid4())},
                     "local": {"path": str(local_dir / f"{pv_name}_ns_claim")},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": [cluster.node]}]}]}}}}])
        # Its claim is gone: the PV controller marks it Released; without one, this test does.
        r = cluster.http.patch(f"/api/v1/persistentvolumes/{pv_name}/status", json={"status": {"phase": "Released"}},
                               headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code in (200, 404), r.text  # 404: already Released and reclaimed
    cluster.wait("the Delete PV's directory and object gone", lambda: not path.exists()
                 and cluster.get(f"/api/v1/persistentvolumes/{name}") is None)
    time.sleep(1)
    assert kept.is_dir() and cluster.get(f"/api/v1/persistentvolumes/{name}-retain") is not None


def test_provisioned_claim_keeps_data_and_is_reclaimed_after_the_claim(cluster: VolumeCluster) -> None:
    """The whole local-path life: a claim of the default class, provisioned on this node when its
    first pod is scheduled; the kubelet makes the directory; the data outlives the pod; deleting
    the claim releases the volume and the kubelet removes the directory and the PV."""
    ns = cluster.namespace()
    cluster.apply([{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "cache", "namespace": ns},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "128Mi"}}}}])
    volumes = [{"name": "v", "persistentVolumeClaim": {"claimName": "cache"}}]
    mounts = [{"name": "v", "mountPath": "/v"}]
    cluster.apply([pod(ns, "first", volumes=volumes, mounts=mounts)])
    cluster.running(ns, "first", timeout=60)
    claim = cluster.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/cache")
    assert claim is not None and claim["status"]["phase"] == "Bound"
    pv = cluster.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    assert pv is not None
    path = Path(pv["spec"]["local"]["path"])
    assert path.parent == cluster.root / "local-path" and path.is_dir()
    assert path.stat().st_mode & 0o777 == 0o777
    cluster.sh(ns, "first", "echo survived > /v/data")
    cluster.delete_pod(ns, "first")
    cluster.apply([pod(ns, "second", volumes=volumes, mounts=mounts)])
    cluster.running(ns, "second")
    assert cluster.sh(ns, "second", "cat /v/data") == "survived\n"
    assert "Bound" in cluster.kubectl("get", "pvc", "cache", "-n", ns).stdout
    cluster.delete_pod(ns, "second")
    cluster.kubectl("delete", "pvc", "cache", "-n", ns, "--wait=true", "--timeout=40s")
    cluster.wait("the released volume's directory and PV removed by the kubelet", lambda: not path.exists()
                 and cluster.get(f"/api/v1/persistentvolumes/{pv['metadata']['name']}") is None, timeout=40)


def test_disk_empty_dir_over_its_size_limit_evicts_the_pod(cluster: VolumeCluster) -> None:
    ns = cluster.namespace()
    cluster.apply([pod(ns, "hog", volumes=[{"name": "scratch", "emptyDir": {"sizeLimit": "1Mi"}}],
                       mounts=[{"name": "scratch", "mountPath": "/scratch"}])])
    cluster.running(ns, "hog")
    cluster.sh(ns, "hog", "dd if=/dev/zero of=/scratch/big bs=1024 count=2048 2>/dev/null; sync")
    p = cluster.wait("the pod evicted", lambda: (q := cluster.get(f"/api/v1/namespaces/{ns}/pods/hog"))
                     and q["status"].get("phase") == "Failed" and q)
    message = 'Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". '
    assert (p["status"]["reason"], p["status"]["message"]) == ("Evicted", message)
    assert p["status"]["containerStatuses"][0]["state"].get("terminated") is not None
    assert any(e["reason"] == "Evicted" and e["message"] == message for e in cluster.events(ns, "hog"))
    described = cluster.kubectl("describe", "pod", "hog", "-n", ns).stdout
    assert "Evicted" in described and "exceeds the limit" in described
