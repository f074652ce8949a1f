"""RBAC and the Node authorizer on a secured API server (tests/securecluster.py: TLS, token-file users,
client certificates, ``--authorization-mode Node,RBAC``), as users, kubectl, kubelets and components see them.

- a user bound to a Role in namespace a lists pods there and gets Kubernetes' 403 in namespace b;
- ``kubectl auth can-i`` answers as RBAC says (SelfSubjectAccessReview);
- a kubelet identity reads the Secret a pod bound to its node uses, not another one, and cannot
  delete or write another Node;
- each component's user can do its job (spot checks; the real scheduler and controller-manager run
  with their own certificates) and not more (the scheduler reads no Secret);
- escalation prevention: a namespace admin creates Roles only with rules it holds.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

import httpx
import pytest

from tests.securecluster import SecureCluster

G = "rbac.authorization.k8s.io"


def _ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), r.text
    return r.json() if r.content else {}


@pytest.fixture(scope="module")
def cluster(secure_cluster: SecureCluster) -> Iterator[SecureCluster]:
    """Namespaces a and b, a pod reader Role bound to alice in a, node n1 running a pod that uses Secret used."""
    with httpx.Client(base_url=secure_cluster.insecure_url, timeout=30) as su:
        for ns in ("a", "b"):
            _ok(su.post("/api/v1/namespaces", json={"metadata": {"name": ns}}))
        _ok(su.post(f"/apis/{G}/v1/namespaces/a/roles", json={
            "metadata": {"name": "pod-reader"},
            "rules": [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]}))
        _ok(su.post(f"/apis/{G}/v1/namespaces/a/rolebindings", json={
            "metadata": {"name": "alice-reads-pods"}, "roleRef": {"apiGroup": G, "kind": "Role", "name": "pod-reader"},
            "subjects": [{"kind": "User", "apiGroup": G, "name": "alice"}]}))
        for name in ("used", "unused"):
            _ok(su.post("/api/v1/namespaces/a/secrets", json={"metadata": {"name": name}, "stringData": {"k": "v"}}))
        for node in ("n1", "n2"):
            _ok(su.post("/api/v1/nodes", json={"metadata": {"name": node}}))
        _ok(su.post("/api/v1/namespaces/a/pods", json={
            "metadata": {"name": "web"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "minik8s/busybox:1"}],
                     "volumes": [{"name": "s", "secret": {"secretName": "used"}}]}}))
    yield secure_cluster


def test_a_role_grants_in_its_namespace_only(cluster: SecureCluster) -> None:
    with cluster.client("alice") as alice:
        assert alice.get("/api/v1/namespaces/a/pods").status_code == 200
        r = alice.get("/api/v1/namespaces/b/pods")
        assert r.status_code == 403
        status = r.json()
        assert status["reason"] == "Forbidden" and status["code"] == 403
        assert status["message"] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
                                     'in the namespace "b"')
        assert alice.delete("/api/v1/namespaces/a/pods/web").status_code == 403
        assert alice.get("/api/v1/namespaces/a/secrets/used").status_code == 403


@pytest.mark.parametrize("args,answer", [
    (["list", "pods", "-n", "a"], "yes"),
    (["list", "pods", "-n", "b"], "no"),
    (["delete", "pods", "-n", "a"], "no"),
    (["create", "selfsubjectaccessreviews.authorization.k8s.io"], "yes"),  # system:basic-user
])
def test_kubectl_auth_can_i(cluster: SecureCluster, args: list[str], answer: str) -> None:
    p = cluster.kubectl("alice", "auth", "can-i", *args)
    assert p.stdout.strip() == answer, p.stderr
    assert p.returncode == (0 if answer == "yes" else 1)


def test_kubectl_auth_can_i_list(cluster: SecureCluster) -> None:
    p = cluster.kubectl("alice", "auth", "can-i", "--list", "-n", "a")
    assert p.returncode == 0, p.stderr
    assert any(line.split()[:1] == ["pods"] and "[get list watch]" in line for line in p.stdout.splitlines()), p.stdout


def test_a_kubelet_reads_only_what_its_pods_use(cluster: SecureCluster) -> None:
    with cluster.client("node:n1") as n1, cluster.client("node:n2") as n2:
        assert n1.get("/api/v1/namespaces/a/secrets/used").status_code == 200
        r = n1.get("/api/v1/namespaces/a/secrets/unused")
        assert r.status_code == 403
        assert r.json()["message"].startswith(
            'secrets "unused" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" '
            'in the namespace "a"'), r.text
        assert "no relationship found between node 'n1' and this object" in r.json()["message"]
        assert n2.get("/api/v1/namespaces/a/secrets/used").status_code == 403
        assert n1.get("/api/v1/namespaces/a/secrets").status_code == 403  # no listing all Secrets
        assert n1.get("/api/v1/nodes").status_code == 200
        assert n1.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=n1"}).status_code == 200


def test_a_kubelet_cannot_modify_another_node(cluster: SecureCluster) -> None:
    with cluster.client("node:n1") as n1:
        assert n1.delete("/api/v1/nodes/n2").status_code == 403  # the Node authorizer: no delete at all
        r = n1.patch("/api/v1/nodes/n2", json={"metadata": {"labels": {"owned": "by-n1"}}},
                     headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 403, r.text  # NodeRestriction admission: only its own Node
        lease = {"metadata": {"name": "n2", "namespace": "kube-node-lease"}, "spec": {"holderIdentity": "n1"}}
        assert n1.put("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2", json=lease).status_code == 403


@pytest.mark.parametrize("who,method,path,code", [
    ("scheduler", "GET", "/api/v1/pods", 200),
    ("scheduler", "GET", "/api/v1/nodes", 200),
    ("scheduler", "GET", "/api/v1/namespaces/a/secrets/used", 403),
    ("scheduler", "GET", "/api/v1/secrets", 403),
    ("scheduler", "DELETE", "/api/v1/nodes/n2", 403),
    ("controller-manager", "GET", "/apis/apps/v1/deployments", 200),
    ("controller-manager", "GET", "/api/v1/namespaces/a/secrets", 200),
    ("proxy", "GET", "/apis/discovery.k8s.io/v1/endpointslices", 200),
    ("proxy", "GET", "/api/v1/pods", 403),
    ("dns", "GET", "/api/v1/services", 200),
    ("dns", "GET", "/api/v1/secrets", 403),
    ("ingress", "GET", "/apis/networking.k8s.io/v1/ingresses", 200),
    ("ingress", "DELETE", "/api/v1/namespaces/a/pods/web", 403),
    ("console", "GET", "/api/v1/pods", 200),
    ("console", "GET", "/api/v1/namespaces/a/secrets", 403),
    ("console", "DELETE", "/api/v1/namespaces/a/pods/web", 403),
    ("gitops", "GET", "/api/v1/secrets", 200),  # cluster-admin, as Flux
])
def test_component_users(cluster: SecureCluster, who: str, method: str, path: str, code: int) -> None:
    with cluster.client(who) as c:
        assert c.request(method, path).status_code == code


def test_the_api_servers_kubelet_client_may_use_the_kubelet_api(cluster: SecureCluster) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "system:kube-apiserver-kubelet-client", "groups": ["system:authenticated"],
                       "resourceAttributes": {"verb": "get", "resource": "nodes", "subresource": "proxy", "name": "n1"}}}
    with cluster.client("admin") as admin:
        status = _ok(admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review))["status"]
    assert status["allowed"] is True
    assert status["reason"] == ('RBAC: allowed by ClusterRoleBinding "system:kube-apiserver-kubelet-client" of '
                                'ClusterRole "system:kubelet-api-admin" to User "system:kube-apiserver-kubelet-client"')


def _wait(check: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_scheduler_and_controller_manager_work_with_their_own_roles(cluster: SecureCluster) -> None:
    """The real components, each with its own certificate: a Deployment becomes a ReplicaSet and a pod
    (controller-manager), the pod is bound (scheduler), and admin/edit/view get aggregated."""
    with httpx.Client(base_url=cluster.insecure_url, timeout=30) as su:
        _ok(su.post("/api/v1/nodes", json={"metadata": {"name": "ready-1"}}))
        node = su.get("/api/v1/nodes/ready-1").json()
        node["status"] = {"conditions": [{"type": "Ready", "status": "True"}],
                          "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                          "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        _ok(su.put("/api/v1/nodes/ready-1/status", json=node))
        cluster.start_component("controller-manager", "--no-leader-elect", "--controllers",
                                "deployment,replicaset,clusterrole-aggregation")
        cluster.start_component("scheduler", "--no-leader-elect")
        _ok(su.post("/apis/apps/v1/namespaces/b/deployments", json={
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "minik8s/busybox:1"}]}}}}))

        def bound() -> bool:
            pods = su.get("/api/v1/namespaces/b/pods", params={"labelSelector": "app=web"}).json()["items"]
            return bool(pods) and all(p["spec"].get("nodeName") == "ready-1" for p in pods)
        _wait(bound, "the Deployment's pod created and bound by the components")

        def aggregated() -> bool:
            return all(su.get(f"/apis/{G}/v1/clusterroles/{n}").json().get("rules") for n in ("admin", "edit", "view"))
        _wait(aggregated, "admin, edit and view aggregated")
    for component in cluster.components:  # nothing they tried was refused
        assert "forbidden" not in component.logs().lower(), component.logs()[-3000:]


def test_escalation_is_refused_and_admin_grants_what_it_holds(cluster: SecureCluster) -> None:
    with httpx.Client(base_url=cluster.insecure_url, timeout=30) as su:
        _ok(su.post(f"/apis/{G}/v1/namespaces/b/rolebindings", json={
            "metadata": {"name": "bob-admin"}, "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "admin"},
            "subjects": [{"kind": "User", "apiGroup": G, "name": "bob"}]}))
    _wait(lambda: cluster.kubectl("bob", "auth", "can-i", "create", "roles", "-n", "b").returncode == 0,
          "bob's admin binding (aggregated admin role)")
    with cluster.client("bob") as bob:
        ok = bob.post(f"/apis/{G}/v1/namespaces/b/roles", json={"metadata": {"name": "secret-reader"}, "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]})
        assert ok.status_code == 201, ok.text
        r = bob.post(f"/apis/{G}/v1/namespaces/b/roles", json={"metadata": {"name": "node-reader"}, "rules": [
            {"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}]})
        assert r.status_code == 403, r.text
        assert r.json()["message"] == (
            'roles.rbac.authorization.k8s.io "node-reader" is forbidden: user "bob" (groups=["developers" '
            '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
            '{APIGroups:[""], Resources:["nodes"], Verbs:["get"]}')
        r = bob.post(f"/apis/{G}/v1/namespaces/b/rolebindings", json={
            "metadata": {"name": "give-cluster-admin"}, "roleRef": {"apiGroup": G, "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "apiGroup": G, "name": "alice"}]})
        assert r.status_code == 403 and "attempting to grant RBAC permissions not currently held" in r.text


@pytest.mark.parametrize("attrs,allowed", [
    ({"verb": "watch", "group": "discovery.k8s.io", "resource": "endpointslices"}, True),  # its Service proxy
    ({"verb": "watch", "resource": "persistentvolumes"}, True),  # the local-path reclaimer
    ({"verb": "get", "resource": "secrets", "namespace": "kube-system", "name": "minik8s-kubelet-client"}, True),
    ({"verb": "get", "resource": "secrets", "namespace": "a", "name": "minik8s-kubelet-client"}, False),
    ({"verb": "list", "resource": "secrets", "namespace": "kube-system"}, False),
])
def test_what_this_projects_kubelet_reads_beyond_node_rules(cluster: SecureCluster, attrs: dict[str, str],
                                                           allowed: bool) -> None:
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
              "spec": {"user": "system:node:n1", "groups": ["system:nodes", "system:authenticated"],
                       "resourceAttributes": attrs}}
    with cluster.client("admin") as admin:
        status = _ok(admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review))["status"]
    assert status["allowed"] is allowed, status
