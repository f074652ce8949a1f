"""Admission over TLS with real identities: NodeRestriction for a kubelet's certificate, Pod Security
and the Docker-socket ban through the real kubectl.

The module's secure cluster (tests/securecluster.py: TLS, client certificates, Node,RBAC): the
admin (system:masters) sets the stage; ``node:a`` is the client certificate kubelet ``a`` gets. The
authorizers let a kubelet patch Nodes and pods/status at all; NodeRestriction narrows that to its
own Node and the pods bound to it, with Kubernetes' messages.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.securecluster import SecureCluster

pytestmark = pytest.mark.e2e

MERGE = {"Content-Type": "application/merge-patch+json"}


def test_a_kubelet_writes_only_its_own_node_and_pods(secure_cluster: SecureCluster) -> None:
    with secure_cluster.client("admin") as admin:
        for node in ("a", "b"):
            r = admin.post("/api/v1/nodes", json={"metadata": {"name": node}})
            assert r.status_code in (201, 409), r.text
        for pod, node in (("nr-on-a", "a"), ("nr-on-b", "b")):
            r = admin.post("/api/v1/namespaces/default/pods", json={
                "metadata": {"name": pod}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})
            assert r.status_code in (201, 409), r.text
    with secure_cluster.client("node:a") as kubelet:
        r = kubelet.patch("/api/v1/nodes/b", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
        assert r.status_code == 403, r.text
        assert r.json()["message"] == 'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'
        status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        assert kubelet.patch("/api/v1/nodes/a/status", json=status, headers=MERGE).status_code == 200
        r = kubelet.patch("/api/v1/namespaces/default/pods/nr-on-b/status", json=status, headers=MERGE)
        assert r.status_code == 403, r.text
        assert r.json()["message"] == ('pods "nr-on-b" is forbidden: node "a" can only update pod status for pods '
                                       "with spec.nodeName set to itself")
        r = kubelet.patch("/api/v1/namespaces/default/pods/nr-on-a/status", json=status, headers=MERGE)
        assert r.status_code == 200, r.text
    # The real kubectl shows the same refusal.
    out = secure_cluster.kubectl("node:a", "label", "node", "b", "x=y")
    assert out.returncode != 0
    assert 'nodes "b" is forbidden: node "a" is not allowed to modify node "b"' in out.stderr


def test_pod_security_and_the_socket_through_kubectl(secure_cluster: SecureCluster, tmp_path: Path) -> None:
    def pod(name: str, path: str) -> str:
        f = tmp_path / f"{name}.json"
        f.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "hostPath": {"path": path}}]}}))
        return str(f)

    def apply(name: str, path: str) -> subprocess.CompletedProcess[str]:
        return secure_cluster.kubectl("admin", "apply", "-n", "psa-tls", "-f", pod(name, path))

    assert secure_cluster.kubectl("admin", "create", "namespace", "psa-tls").returncode == 0
    # A workload is admitted with kubectl's Warning; its pods would be refused.
    out = secure_cluster.kubectl("admin", "create", "deployment", "web", "-n", "psa-tls", "--image", "busybox",
                                 "--port", "80", "--dry-run=server", "-o", "name")
    assert out.returncode == 0 and "Warning" not in out.stderr, out.stderr
    f = tmp_path / "ds.json"
    f.write_text(json.dumps({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "logs"}, "spec": {
        "selector": {"matchLabels": {"app": "logs"}}, "template": {"metadata": {"labels": {"app": "logs"}}, "spec": {
            "hostNetwork": True, "containers": [{"name": "c", "image": "busybox"}]}}}}))
    out = secure_cluster.kubectl("admin", "apply", "-n", "psa-tls", "-f", str(f))
    assert out.returncode == 0, out.stderr
    assert 'Warning: would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)' in out.stderr
    out = apply("data", "/data")
    assert out.returncode == 1
    assert 'pods "data" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes (volume "v")' \
           in out.stderr
    assert secure_cluster.kubectl("admin", "label", "namespace", "psa-tls",
                                  "pod-security.kubernetes.io/enforce=privileged").returncode == 0
    assert apply("data", "/data").returncode == 0
    out = apply("sock", "/var/run/docker.sock")
    assert out.returncode == 1
    assert 'spec.volumes[0].hostPath.path: Forbidden: "/var/run/docker.sock" is the Docker engine\'s socket' \
           in out.stderr
