"""Acceptance (issue 14): a pod's own ServiceAccount token lets the official client inside it list
what its Role allows and nothing else.

This module's cluster, secured like a real one: etcd; ``minik8s apiserver`` with TLS (a PKI whose
serving certificate names the pod network's gateway and the ``kubernetes`` Service's ClusterIP),
client certificates, ServiceAccount keys and ``--authorization-mode Node,RBAC``, its secure port
on the Docker network's gateway (an address of this host the pods reach) advertised there, so
``default/kubernetes`` sends pods to it; the plain port on 127.0.0.1 for the test's own set-up;
the scheduler and the controller-manager (serviceaccounts and the root CA publisher with
``--root-ca-file``) with their own certificates; one Docker kubelet with its node's certificate.

The pod runs the local minik8s image (Python and the ``kubernetes`` package). Its
ServiceAccount admission volume brings the token, ``ca.crt`` and the namespace; the kubelet's
service proxy DNATs the ClusterIP to the API server; ``config.load_incluster_config()`` then
lists pods in its namespace (its Role allows it), and gets 403 for the Secrets there and for the
pods of another namespace.

On the same cluster, the kubelet's API (kubelet.authn against the real API server): 401 without a
token or with one TokenReview refuses, Kubernetes' 403 ``Forbidden (user=..., verb=get,
resource=nodes, subresource=proxy)`` for a ServiceAccount without the grant, the pod's logs for
one bound to ``nodes/proxy`` (and 403 on ``nodes/stats``), and ``kubectl logs`` through the API
server (its own credential).
"""

from __future__ import annotations

import ipaddress
import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from kubelet.runtime import LABEL_NODE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_ROLE, ROLE_CONTAINER, DockerRuntime
from cli.processes import wait_http
from machinery import pki as pkimod
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.dockertest import checked_runtime, make_test_network
from tests.e2e.dockercluster import clean
from tests.securecluster import SecureCluster
from tests.test_images import MINIK8S_IMAGE
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
LEASE = ("--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2")
IN_POD = """
import json, sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_incluster_config()
v1 = client.CoreV1Api()
out = {}
def attempt(name, call):
    try:
        out[name] = ["ok", sorted(p.metadata.name for p in call().items)]
    except ApiException as e:
        out[name] = [e.status, json.loads(e.body).get("message")]
    except Exception as e:
        out[name] = ["error", repr(e)]
ns = open("%s/namespace").read()
attempt("pods", lambda: v1.list_namespaced_pod(ns))
attempt("secrets", lambda: v1.list_namespaced_secret(ns))
attempt("other", lambda: v1.list_namespaced_pod(sys.argv[1]))
print("RESULT " + json.dumps(out), flush=True)
import time; time.sleep(3600)
""" % SA_DIR


class InClusterCluster:
    """The secured cluster described in the module docstring (``secure``: its SecureCluster)."""

    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.rt = rt
        self.node = f"incl-{uuid.uuid4().hex[:6]}"
        clean(rt, (self.node,))
        self.net = make_test_network(rt, f"mk-incl-{uuid.uuid4().hex[:6]}", {"io.minik8s.test": "incluster"},
                                     engine_lower_half=True)
        subnet = ipaddress.IPv4Network(self.net.subnet)
        lower, upper = subnet.subnets(prefixlen_diff=1)
        self.gateway = str(self.net.gateway or subnet.network_address + 1)
        self.cluster_ip = str(upper.network_address + 1)  # the kubernetes Service's, as Kubernetes
        self.secure: SecureCluster | None = None
        etcd = Etcd.start()
        try:
            pki = pkimod.ensure_cluster_pki(tmp / "pki", hosts=["127.0.0.1", self.gateway, self.cluster_ip],
                                            nodes=[self.node])
            port = free_port()
            api = ApiServerProcess.start(
                etcd.url, "--secure-port", str(port), *pki.apiserver_flags(encryption=False),
                "--authorization-mode", "Node,RBAC", "--bind-address", self.gateway,
                "--advertise-address", self.gateway, "--service-cluster-ip-range", str(upper), wait_ready=False)
            self.secure = SecureCluster(f"https://{self.gateway}:{port}", api.url, pki, etcd, api, tmp)
            # Generous: a loaded 2-core machine takes long to import and start it.
            wait_http(f"{self.secure.url}/readyz", api.proc, api.log, timeout=90,
                      verify=self.secure.ssl_context("admin"))
            self.http = httpx.Client(base_url=api.url, timeout=30)  # the superuser, for set-up
            self.secure.start_component("scheduler", *LEASE)
            self.missing_kubelet_grants = self._missing_kubelet_grants()
            self.secure.start_component("controller-manager", *LEASE, "--healthz-port", "0", "--controllers",
                                        "serviceaccounts,root-ca-cert-publisher",
                                        "--root-ca-file", str(pki.ca_cert))
            self.kubelet = self.secure.start_component(
                "kubelet", "--node-name", self.node, "--lease-renew-interval", "0.5", "--sync-interval", "0.5",
                "--kubelet-port", str(free_port()), "--pod-network-name", self.net.name,
                "--pod-network-subnet", self.net.subnet, "--pod-ip-range", str(lower),
                "--root-dir", str(tmp / "kubelet"), who=f"{pkimod.NODE_PREFIX}{self.node}")
        except BaseException:
            if self.secure is None:
                etcd.stop()
            self.stop()
            raise

    def _can(self, user: str, **attrs: str) -> bool:
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": user, "groups": ["system:nodes", "system:authenticated"],
                           "resourceAttributes": attrs}}
        r = self.http.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review)
        assert r.status_code == 201, r.text
        return bool(r.json()["status"].get("allowed"))

    def _missing_kubelet_grants(self) -> list[str]:
        """What this project's kubelet reads beyond Kubernetes' node rules (its built-in service
        proxy's EndpointSlices, the local-path reclaimer's PersistentVolumes, the API server's
        credential Secret) that the bootstrap policy does not grant its node identity."""
        user = f"system:node:{self.node}"
        needs = {
            "watch endpointslices.discovery.k8s.io": dict(verb="watch", group="discovery.k8s.io",
                                                          resource="endpointslices"),
            "watch persistentvolumes": dict(verb="watch", group="", resource="persistentvolumes"),
            "watch secrets kube-system/minik8s-kubelet-client": dict(
                verb="watch", group="", resource="secrets", namespace="kube-system", name="minik8s-kubelet-client"),
        }
        return [what for what, attrs in needs.items() if not self._can(user, **attrs)]

    def diagnostics(self) -> str:
        assert self.secure is not None
        procs: list[ApiServerProcess | ComponentProcess] = [self.secure.apiserver, *self.secure.components]
        return "\n".join(f"--- {' '.join(p.args[-8:])}:\n{p.logs()[-2500:]}" for p in procs)

    def wait(self, what: str, check: Any, timeout: float = 60) -> Any:
        return wait_for(check, timeout, what, self.diagnostics)

    def get(self, path: str) -> dict[str, Any] | None:
        r = self.http.get(path)
        return dict(r.json()) if r.status_code == 200 else None

    def create(self, path: str, body: dict[str, Any]) -> None:
        r = self.http.post(path, json=body)
        assert r.status_code == 201, r.text

    def pod_output(self, ns: str, name: str) -> str:
        labels = {LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: name, LABEL_ROLE: ROLE_CONTAINER, LABEL_NODE: self.node}
        found = self.rt.list(labels)
        return "".join(self.rt.logs(c.id).decode(errors="replace") for c in found) if found else ""

    def stop(self) -> None:
        if self.secure is not None:
            self.secure.stop()
        if getattr(self, "http", None) is not None:
            self.http.close()
        clean(self.rt, (self.node,))
        try:
            self.rt.remove_network(self.net.name)
        except Exception:  # noqa: BLE001 - best effort
            pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InClusterCluster]:
    rt = checked_runtime()
    c = InClusterCluster(tmp_path_factory.mktemp("incluster"), rt)
    try:
        c.wait("the node Ready", lambda: any(
            x.get("type") == "Ready" and x.get("status") == "True"
            for x in ((c.get(f"/api/v1/nodes/{c.node}") or {}).get("status") or {}).get("conditions") or []))
        yield c
    finally:
        c.stop()
        rt.close()


@pytest.fixture(scope="module")
def client_pod(cluster: InClusterCluster) -> tuple[str, str]:
    """(namespace, other namespace) of pod ``client`` (ServiceAccount ``reader``: list pods there)."""
    ns, other = f"incl-{uuid.uuid4().hex[:6]}", f"incl-other-{uuid.uuid4().hex[:6]}"
    for name in (ns, other):
        cluster.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    cluster.create(f"/api/v1/namespaces/{ns}/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "reader"}})
    cluster.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
    cluster.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "reader-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}]})
    cluster.wait("kube-root-ca.crt published", lambda: cluster.get(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"))
    cluster.create(f"/api/v1/namespaces/{ns}/pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "client"},
        "spec": {"serviceAccountName": "reader", "terminationGracePeriodSeconds": 0, "restartPolicy": "Never",
                 "containers": [{"name": "c", "image": MINIK8S_IMAGE, "imagePullPolicy": "Never",
                                 "command": ["python3", "-c", IN_POD, other]}]}})
    return ns, other


def test_the_official_client_in_a_pod_gets_what_its_role_allows(cluster: InClusterCluster,
                                                                client_pod: tuple[str, str]) -> None:
    ns, other = client_pod
    pod = cluster.get(f"/api/v1/namespaces/{ns}/pods/client") or {}
    volumes = [v["name"] for v in pod["spec"].get("volumes") or []]
    assert any(v.startswith("kube-api-access-") for v in volumes), \
        f"ServiceAccount admission did not add the token volume: {volumes}"

    def result() -> dict[str, Any] | None:
        line = next((x for x in cluster.pod_output(ns, "client").splitlines() if x.startswith("RESULT ")), None)
        return json.loads(line[len("RESULT "):]) if line else None
    got = cluster.wait("the in-pod client's answers", result, timeout=90)
    user = f"system:serviceaccount:{ns}:reader"
    assert got == {
        "pods": ["ok", ["client"]],
        "secrets": [403, f'secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" '
                         f'in the namespace "{ns}"'],
        "other": [403, f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
                       f'in the namespace "{other}"'],
    }, f"{cluster.pod_output(ns, 'client')}\n{cluster.diagnostics()}"


def test_the_bootstrap_policy_lets_the_kubelet_work(cluster: InClusterCluster) -> None:
    """The kubelet's node identity may read what this project's kubelet reads (the bootstrap
    policy's system:minik8s:node; ``_missing_kubelet_grants`` lists what it lacks)."""
    assert cluster.missing_kubelet_grants == []


def test_the_kubelet_api_asks_the_api_server_who_may_call(cluster: InClusterCluster,
                                                          client_pod: tuple[str, str]) -> None:
    """kubelet.authn against the real API server: TokenReview, then SubjectAccessReview on nodes/<sub>."""
    ns, _ = client_pod
    cluster.wait("the client pod's output", lambda: "RESULT " in cluster.pod_output(ns, "client"), timeout=90)
    node = cluster.get(f"/api/v1/nodes/{cluster.node}") or {}
    base = f"http://127.0.0.1:{node['status']['daemonEndpoints']['kubeletEndpoint']['Port']}"

    def token(account: str) -> str:
        cluster.create(f"/api/v1/namespaces/{ns}/serviceaccounts",
                       {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account}})
        r = cluster.http.post(f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token",
                              json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        assert r.status_code == 201, r.text
        return str(r.json()["status"]["token"])

    logs, stats = f"/containerLogs/{ns}/client/c", "/stats/summary"
    plain, granted = token("no-grant"), token("node-proxy")
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    cluster.create(f"{rbac}/clusterroles", {"metadata": {"name": f"{ns}:node-proxy"}, "rules": [
        {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}]})
    cluster.create(f"{rbac}/clusterrolebindings", {
        "metadata": {"name": f"{ns}:node-proxy"},
        "subjects": [{"kind": "ServiceAccount", "name": "node-proxy", "namespace": ns}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"{ns}:node-proxy"}})
    with httpx.Client(base_url=base, timeout=30) as k:
        assert (k.get("/healthz").status_code, k.get("/healthz").text) == (200, "ok")
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            r = k.get(logs, headers=headers)
            assert (r.status_code, r.text.strip()) == (401, "Unauthorized"), r.text
        sa = f"system:serviceaccount:{ns}"
        r = k.get(logs, headers={"Authorization": f"Bearer {plain}"})
        assert (r.status_code, r.text.strip()) == (
            403, f"Forbidden (user={sa}:no-grant, verb=get, resource=nodes, subresource=proxy)")
        r = k.get(logs, headers={"Authorization": f"Bearer {granted}"})
        assert r.status_code == 200 and "RESULT " in r.text, r.text
        r = k.get(stats, headers={"Authorization": f"Bearer {granted}"})  # nodes/stats is not granted
        assert (r.status_code, r.text.strip()) == (
            403, f"Forbidden (user={sa}:node-proxy, verb=get, resource=nodes, subresource=stats)")
    # The API server's own credential still gets in: kubectl logs through the secure API server.
    assert cluster.secure is not None
    p = cluster.secure.kubectl("admin", "logs", "-n", ns, "client")
    assert p.returncode == 0 and "RESULT " in p.stdout, p.stderr
