"""Pod Security, the Docker-socket ban, ServiceAccount admission and NodeRestriction over the API.

An in-process API server (registry + HTTP app) on the session's real etcd, with ServiceAccount
token volumes on (as when the API server signs tokens). The request's identity is set the way the
secure port's middleware sets it (``apiserver.auth.context.current_user``); unset, it is the
insecure superuser of the plain-HTTP port.
"""

from __future__ import annotations

import uuid
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest

from apiserver.app import create_app
from apiserver.auth import context
from apiserver.registry import Registry, RegistrySettings
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from machinery import errors
from machinery.userinfo import AUTHENTICATED, NODES_GROUP, UserInfo
from tests.cluster import Etcd

MERGE = {"Content-Type": "application/merge-patch+json"}
ENFORCE = "pod-security.kubernetes.io/enforce"


class Api:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(registry)), base_url="http://api")

    async def namespace(self, **labels: str) -> str:
        name = f"psa-{uuid.uuid4().hex[:8]}"
        r = await self.http.post("/api/v1/namespaces", json={"metadata": {"name": name, "labels": labels}})
        assert r.status_code == 201, r.text
        return name

    async def create_pod(self, ns: str, name: str, **spec: Any) -> httpx.Response:
        body = {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
        return await self.http.post(f"/api/v1/namespaces/{ns}/pods", json=body)


@pytest.fixture(scope="module")
async def api(etcd: Etcd) -> AsyncIterator[Api]:
    storage = EtcdStorage(etcd.url)
    registry = Registry(storage, default_resources(), settings=RegistrySettings(service_account_token_volume=True))
    await registry.start()
    a = Api(registry)
    yield a
    await a.http.aclose()
    await registry.stop()
    await storage.close()


@pytest.fixture
def as_node() -> Iterator[None]:
    token = context.current_user.set(UserInfo(name="system:node:a", groups=(NODES_GROUP, AUTHENTICATED)))
    yield
    context.current_user.reset(token)


PRIVILEGED_C = [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]
HOST_PATH = [{"name": "data", "hostPath": {"path": "/data"}}]


@pytest.mark.parametrize("spec,message", [
    ({"containers": PRIVILEGED_C}, 'pods "p" is forbidden: violates PodSecurity "baseline:latest": privileged '
                                   '(container "c" must not set securityContext.privileged=true)'),
    ({"volumes": HOST_PATH}, 'pods "p" is forbidden: violates PodSecurity "baseline:latest": hostPath volumes '
                             '(volume "data")'),
    ({"hostNetwork": True}, 'pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces '
                            '(hostNetwork=true)'),
], ids=["privileged", "hostPath", "hostNetwork"])
async def test_baseline_namespace_refuses_and_privileged_one_accepts(api: Api, spec: dict[str, Any],
                                                                     message: str) -> None:
    baseline = await api.namespace()  # no label: --pod-security-default (baseline)
    r = await api.create_pod(baseline, "p", **spec)
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "Forbidden" and r.json()["message"] == message
    privileged = await api.namespace(**{ENFORCE: "privileged"})
    r = await api.create_pod(privileged, "p", **spec)
    assert r.status_code == 201, r.text
    assert not r.headers.get_list("warning")  # warn follows the labelled enforce level


@pytest.mark.parametrize("path,field", [
    ("/var/run/docker.sock", "spec.volumes[0].hostPath.path"),
    ("//run//docker.sock/", "spec.volumes[0].hostPath.path"),
    ("/var/./run", "spec.volumes[0].hostPath.path"),
    ("/", "spec.volumes[0].hostPath.path"),
])
async def test_docker_socket_is_never_mounted(api: Api, path: str, field: str) -> None:
    for ns in (await api.namespace(), await api.namespace(**{ENFORCE: "privileged"})):
        r = await api.create_pod(ns, "sock", volumes=[{"name": "s", "hostPath": {"path": path}}])
        assert r.status_code == 403, r.text
        status = r.json()
        assert status["message"].startswith(f'pods "sock" is forbidden: {field}: Forbidden: "{path}" ')
        assert "Docker engine's socket" in status["message"]
        assert status["details"]["causes"][0]["field"] == field
    r = await api.http.post("/api/v1/persistentvolumes", json={"metadata": {"name": f"pv-{uuid.uuid4().hex[:6]}"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": path}}})
    assert r.status_code == 403, r.text
    assert r.json()["details"]["causes"][0]["field"] == "spec.hostPath.path"


async def test_warnings_for_pods_and_workload_templates(api: Api) -> None:
    ns = await api.namespace(**{"pod-security.kubernetes.io/warn": "restricted"})
    r = await api.create_pod(ns, "plain")
    assert r.status_code == 201, r.text
    assert r.headers["warning"].startswith('299 - "would violate PodSecurity \\"restricted:latest\\": allowPrivilegeEscalation')
    template = {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": PRIVILEGED_C, "volumes": [
        {"name": "s", "hostPath": {"path": "/var/run/docker.sock"}}]}}
    baseline = await api.namespace()
    r = await api.http.post(f"/apis/apps/v1/namespaces/{baseline}/deployments", json={
        "metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": template}})
    assert r.status_code == 201, r.text  # workloads get warnings only; their pods are refused
    warnings = r.headers.get_list("warning")
    assert any("spec.template.spec.volumes[0].hostPath.path: Forbidden" in w for w in warnings), warnings
    assert any('would violate PodSecurity \\"baseline:latest\\": hostPath volumes' in w for w in warnings), warnings
    r = await api.http.post(f"/apis/batch/v1/namespaces/{baseline}/cronjobs", json={
        "metadata": {"name": "cj"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
            "spec": {"containers": PRIVILEGED_C, "restartPolicy": "Never"}}}}}})
    assert r.status_code == 201, r.text
    assert any("privileged" in w for w in r.headers.get_list("warning"))


async def test_namespace_labels_are_validated_and_tightening_warns(api: Api) -> None:
    ns = await api.namespace(**{ENFORCE: "privileged"})
    assert (await api.create_pod(ns, "hostnet", hostNetwork=True)).status_code == 201
    r = await api.http.patch(f"/api/v1/namespaces/{ns}", json={"metadata": {"labels": {ENFORCE: "strict"}}},
                             headers=MERGE)
    assert r.status_code == 422, r.text
    assert r.json()["message"] == (f'Namespace "{ns}" is invalid: metadata.labels[{ENFORCE}]: Invalid value: '
                                   '"strict": must be one of privileged, baseline, restricted')
    r = await api.http.post("/api/v1/namespaces", json={"metadata": {"name": f"bad-{uuid.uuid4().hex[:6]}", "labels": {
        "pod-security.kubernetes.io/warn-version": "1.30"}}})
    assert r.status_code == 422, r.text
    assert r.json()["message"].endswith('[pod-security.kubernetes.io/warn-version]: Invalid value: "1.30": '
                                        'must be "latest" or "v1.x"')
    r = await api.http.patch(f"/api/v1/namespaces/{ns}", json={"metadata": {"labels": {ENFORCE: "baseline"}}},
                             headers=MERGE)
    assert r.status_code == 200, r.text
    assert r.headers["warning"] == (  # two Warning headers, joined
        f'299 - "existing pods in namespace \\"{ns}\\" violate the new PodSecurity enforce level '
        '\\"baseline:latest\\"", 299 - "hostnet: host namespaces"')


async def test_pod_updates_that_add_a_container_are_checked(api: Api) -> None:
    ns = await api.namespace()
    assert (await api.create_pod(ns, "p")).status_code == 201
    r = await api.http.patch(f"/api/v1/namespaces/{ns}/pods/p/ephemeralcontainers", headers={
        "Content-Type": "application/strategic-merge-patch+json"}, json={"spec": {"ephemeralContainers": [
            {"name": "dbg", "image": "busybox", "securityContext": {"privileged": True}}]}})
    assert r.status_code == 403, r.text
    assert 'container "dbg" must not set securityContext.privileged=true' in r.json()["message"]
    # An update that changes no image is not checked (Kubernetes' significant updates only).
    r = await api.http.patch(f"/api/v1/namespaces/{ns}/pods/p", json={"metadata": {"labels": {"x": "y"}}},
                             headers=MERGE)
    assert r.status_code == 200, r.text


async def test_audit_annotation(api: Api) -> None:
    ns = await api.namespace(**{"pod-security.kubernetes.io/audit": "restricted"})
    annotations: dict[str, str] = {}
    token = context.audit_annotations.set(annotations)
    try:
        assert (await api.create_pod(ns, "p")).status_code == 201
    finally:
        context.audit_annotations.reset(token)
    assert annotations["pod-security.kubernetes.io/enforce-policy"] == "baseline:latest"
    assert annotations["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest": allowPrivilegeEscalation != false')


# ---------------------------------------------------------------------------- ServiceAccount admission
async def test_token_volume_added_with_kubernetes_shape(api: Api) -> None:
    ns = await api.namespace()
    body = {"metadata": {"name": "p"}, "spec": {"initContainers": [{"name": "i", "image": "busybox"}],
                                                "containers": [{"name": "c", "image": "busybox"}]}}
    r = await api.http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    [volume] = spec["volumes"]
    assert volume["name"].startswith("kube-api-access-") and len(volume["name"]) == len("kube-api-access-") + 5
    assert volume["projected"] == {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}
    mount = {"name": volume["name"], "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
    assert spec["containers"][0]["volumeMounts"] == [mount] and spec["initContainers"][0]["volumeMounts"] == [mount]


async def test_token_volume_not_added_when_automount_is_off_or_mounted(api: Api) -> None:
    ns = await api.namespace()
    r = await api.http.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={
        "metadata": {"name": "quiet"}, "automountServiceAccountToken": False,
        "imagePullSecrets": [{"name": "regcred"}]})
    assert r.status_code == 201, r.text
    spec = (await api.create_pod(ns, "sa-off", serviceAccountName="quiet")).json()["spec"]
    assert "volumes" not in spec and spec["imagePullSecrets"] == [{"name": "regcred"}]
    # The pod's own choice wins over the account's.
    spec = (await api.create_pod(ns, "pod-on", serviceAccountName="quiet", automountServiceAccountToken=True)).json()["spec"]
    assert spec["volumes"][0]["name"].startswith("kube-api-access-")
    spec = (await api.create_pod(ns, "pod-off", automountServiceAccountToken=False)).json()["spec"]
    assert "volumes" not in spec
    own = {"name": "c", "image": "busybox", "volumeMounts": [
        {"name": "mine", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}
    spec = (await api.create_pod(ns, "own", containers=[own], volumes=[{"name": "mine", "emptyDir": {}}])).json()["spec"]
    assert [v["name"] for v in spec["volumes"]] == ["mine"]


async def test_missing_service_account(api: Api) -> None:
    ns = await api.namespace()
    r = await api.create_pod(ns, "p", serviceAccountName="ghost")
    assert r.status_code == 403, r.text
    assert r.json()["message"] == (f'pods "p" is forbidden: error looking up service account {ns}/ghost: '
                                   'serviceaccount "ghost" not found')


# ---------------------------------------------------------------------------- NodeRestriction
async def test_node_restriction(api: Api, as_node: None) -> None:
    token = context.current_user.set(None)  # the superuser sets the stage
    ns = await api.namespace()
    for node in ("a", "b"):
        r = await api.http.post("/api/v1/nodes", json={"metadata": {"name": f"{node}"}})
        assert r.status_code in (201, 409), r.text
    r = await api.http.post("/api/v1/namespaces", json={"metadata": {"name": "kube-node-lease"}})
    assert r.status_code in (201, 409), r.text
    for pod, node in (("on-a", "a"), ("on-b", "b")):
        assert (await api.create_pod(ns, pod, nodeName=node)).status_code == 201
    context.current_user.reset(token)

    r = await api.http.patch("/api/v1/nodes/b", json={"metadata": {"labels": {"x": "y"}}}, headers=MERGE)
    assert r.status_code == 403 and r.json()["message"] == 'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'
    r = await api.http.patch("/api/v1/nodes/b/status", json={"status": {"phase": "Running"}}, headers=MERGE)
    assert r.status_code == 403, r.text
    assert (await api.http.patch("/api/v1/nodes/a/status", json={"status": {"phase": "Running"}},
                                 headers=MERGE)).status_code == 200
    r = await api.http.patch("/api/v1/nodes/a", json={"metadata": {"labels": {
        "node-restriction.kubernetes.io/trusted": "yes"}}}, headers=MERGE)
    assert r.status_code == 403 and r.json()["message"].endswith(
        "is not allowed to modify labels: node-restriction.kubernetes.io/trusted")
    r = await api.http.patch("/api/v1/nodes/a", json={"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}},
                             headers=MERGE)
    assert r.status_code == 403 and r.json()["message"].endswith('node "a" is not allowed to modify taints')

    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    r = await api.http.patch(f"/api/v1/namespaces/{ns}/pods/on-b/status", json=status, headers=MERGE)
    assert r.status_code == 403 and r.json()["message"] == (
        'pods "on-b" is forbidden: node "a" can only update pod status for pods with spec.nodeName set to itself')
    assert (await api.http.patch(f"/api/v1/namespaces/{ns}/pods/on-a/status", json=status,
                                 headers=MERGE)).status_code == 200
    r = await api.http.patch(f"/api/v1/namespaces/{ns}/pods/on-a", json={"metadata": {"labels": {"x": "y"}}},
                             headers=MERGE)
    assert r.status_code == 403, r.text  # no spec or metadata updates of pods
    r = await api.create_pod(ns, "new", nodeName="a")
    assert r.status_code == 403 and "can only create mirror pods" in r.json()["message"]
    assert (await api.http.delete(f"/api/v1/namespaces/{ns}/pods/on-b")).status_code == 403
    assert (await api.http.delete(f"/api/v1/namespaces/{ns}/pods/on-a")).status_code == 200

    leases = "/apis/coordination.k8s.io/v1/namespaces"
    r = await api.http.post(f"{leases}/kube-node-lease/leases", json={"metadata": {"name": "b"}, "spec": {}})
    assert r.status_code == 403 and r.json()["message"].endswith(
        "can only access node lease with the same name as the requesting node")
    r = await api.http.post(f"{leases}/kube-node-lease/leases", json={"metadata": {"name": "a"}, "spec": {}})
    assert r.status_code in (201, 409), r.text
    r = await api.http.post(f"{leases}/{ns}/leases", json={"metadata": {"name": "a"}, "spec": {}})
    assert r.status_code == 403 and r.json()["message"].endswith(
        'can only access leases in the "kube-node-lease" system namespace')

    on_b = (await api.registry.get(api.registry.resources.by_kind("Pod", ""), ns, "on-b")).obj  # type: ignore[arg-type]
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "on-b", "uid": on_b["metadata"]["uid"]}
    with pytest.raises(errors.ForbiddenError, match="node requested token bound to a pod scheduled on a different node"):
        await api.registry.admission.admit_token_request(ns, "default", {"boundObjectRef": ref})
    with pytest.raises(errors.ForbiddenError, match="node requested token not bound to a pod"):
        await api.registry.admission.admit_token_request(ns, "default", {})
    # The TokenRequest API itself asks NodeRestriction before it signs anything.
    r = await api.http.post(f"/api/v1/namespaces/{ns}/serviceaccounts/default/token",
                            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                                  "spec": {"boundObjectRef": ref}})
    assert r.status_code == 403 and "bound to a pod scheduled on a different node" in r.json()["message"], r.text


async def test_node_user_without_a_name_is_refused(api: Api) -> None:
    token = context.current_user.set(UserInfo(name="system:node:", groups=(NODES_GROUP,)))
    try:
        r = await api.http.post("/api/v1/nodes", json={"metadata": {"name": "x"}})
    finally:
        context.current_user.reset(token)
    assert r.status_code == 403 and r.json()["message"].endswith('could not determine node from user "system:node:"')
