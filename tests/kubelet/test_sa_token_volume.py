"""Projected ServiceAccount tokens: the kubelet's token manager (kubelet.volumes.tokens) and the
``kube-api-access`` volume on a real Docker kubelet.

Pure: Kubernetes' refresh rule (80% of the lifetime, 24 h at most, the jitter) and the manager's
cache, refresh and failure answers against a recording stand-in for the client's ``request``.

Real: etcd, an apiserver, a controller-manager (serviceaccounts and the root CA publisher with
``--root-ca-file``) and one Docker kubelet on a test network. A pod with the volume
ServiceAccount admission adds (token 3607 s, ``kube-root-ca.crt``'s ``ca.crt``, the namespace)
finds the three files at /var/run/secrets/kubernetes.io/serviceaccount, read-only, its token a
TokenRequest bound to the pod. A pod whose ServiceAccount is gone when it reaches the kubelet waits
in ContainerCreating with a FailedMount event naming why (the kubelet keeps running), and starts
once the account exists.
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
from kubelet.volumes import SourceError
from kubelet.volumes.projection import TokenRef
from kubelet.volumes.tokens import MAX_TTL, Token, TokenManager, requires_refresh
from machinery import errors
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
T0 = 1_800_000_000.0


@pytest.mark.parametrize(("seconds", "age", "jitter", "refresh"), [
    (3607, 0, 0, False),
    (3607, 0.79 * 3607, 0, False),
    (3607, 0.81 * 3607, 0, True),
    (3607, 2880, 0, False),  # 20% of 3607 s before the expiry is 2886 s after the issue
    (3607, 2880, 10, True),  # the jitter brings it forward
    (600, 479, 0, False),
    (600, 481, 0, True),
    (365 * 86400, 86399, 0, False),  # a year-long token: fetched again after 24 h
    (365 * 86400, 86401, 0, True),
    (3607, 4000, 0, True),  # expired
])
def test_requires_refresh(seconds: int, age: float, jitter: float, refresh: bool) -> None:
    token = Token(token="t", expires=T0 + seconds, expiration_seconds=seconds)
    assert requires_refresh(token, now=T0 + age, jitter=jitter) is refresh
    assert MAX_TTL == 86400


class TokenApi:
    """Stands in for the kubelet's ApiClient: answers TokenRequests as the API server does."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.fail: errors.ApiError | None = None

    async def request(self, method: str, path: str, *, json: Any = None, **_: Any) -> Any:
        self.requests.append((path, json))
        if self.fail is not None:
            raise self.fail
        seconds = json["spec"]["expirationSeconds"]
        expires = self.clock[0] + seconds
        return {"spec": json["spec"], "status": {"token": f"tok-{len(self.requests)}", "expirationTimestamp":
                                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires))}}


POD = {"metadata": {"name": "web", "namespace": "ns", "uid": "u-1"}, "spec": {"serviceAccountName": "robot"}}
REF = TokenRef(index=0, audience="", expiration_seconds=3607, path="token")


async def test_token_manager_caches_refreshes_and_survives_a_failed_refresh() -> None:
    clock = [T0]
    api = TokenApi(clock)
    tokens = TokenManager(api, clock=lambda: clock[0], jitter=lambda: 0.0)  # type: ignore[arg-type]
    assert await tokens.get(POD, REF) == "tok-1"
    path, body = api.requests[0]
    assert path == "/api/v1/namespaces/ns/serviceaccounts/robot/token"
    assert body["spec"] == {"audiences": [], "expirationSeconds": 3607,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "web", "uid": "u-1"}}
    clock[0] = T0 + 0.7 * 3607
    assert await tokens.get(POD, REF) == "tok-1" and len(api.requests) == 1
    aud = TokenRef(index=1, audience="vault", expiration_seconds=600, path="vault-token")
    assert await tokens.get(POD, aud) == "tok-2" and api.requests[1][1]["spec"]["audiences"] == ["vault"]
    clock[0] = T0 + 0.85 * 3607  # past 80%: fetched again
    assert await tokens.get(POD, REF) == "tok-3"
    # A refresh that fails keeps the token that is still valid; once expired, the error shows.
    api.fail = errors.ServiceUnavailableError("the API server is down")
    clock[0] += 0.9 * 3607
    assert await tokens.get(POD, REF) == "tok-3"
    clock[0] += 0.2 * 3607
    with pytest.raises(SourceError, match="expired and refresh failed: the API server is down"):
        await tokens.get(POD, REF)
    tokens.forget("u-1")
    api.fail = errors.NotFoundError('serviceaccounts "robot" not found')
    with pytest.raises(SourceError) as e:
        await tokens.get(POD, REF)
    assert str(e.value) == 'failed to fetch token: serviceaccounts "robot" not found'


# ---------------------------------------------------------------------------------------------
# A real Docker kubelet

def access_volume(name: str = "kube-api-access-test") -> dict[str, Any]:
    """The volume ServiceAccount admission adds to a pod (Kubernetes' kube-api-access-xxxxx)."""
    return {"name": name, "projected": {"defaultMode": 0o644, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                      "fieldPath": "metadata.namespace"}}]}}]}}


def pod(ns: str, name: str, *, account: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": account, "terminationGracePeriodSeconds": 0, "volumes": [access_volume()],
        "containers": [{"name": "c", "image": IMAGE, "command": ["sleep", "3600"],
                        "volumeMounts": [{"name": "kube-api-access-test", "mountPath": SA_DIR, "readOnly": True}]}]}
    if node:
        spec["nodeName"] = node
    else:
        spec["schedulerName"] = "bound-by-the-test"  # the scheduler leaves it alone
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec}


class TokenCluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.node = f"satok-{uuid.uuid4().hex[:6]}"
        self.ca = "-----BEGIN CERTIFICATE-----\nTEST-ROOT-CA\n-----END CERTIFICATE-----\n"
        (tmp / "ca.crt").write_text(self.ca)
        super().__init__(tmp, rt, prefix="mk-satok", label="sa-token", docker_nodes=(self.node,), ns_prefix="satok-",
                         controllers="serviceaccounts,root-ca-cert-publisher",
                         cm_flags=("--root-ca-file", str(tmp / "ca.crt")), wait_timeout=30)

    def phase_events(self, ns: str, name: str) -> tuple[str, list[tuple[str, str]]]:
        p = self.get(f"/api/v1/namespaces/{ns}/pods/{name}") or {}
        items = self.http.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
        return (str((p.get("status") or {}).get("phase")),
                [(e["reason"], e["message"]) for e in items if e["involvedObject"].get("name") == name])

    def sh(self, ns: str, name: str, script: str) -> str:
        labels = {LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: name, LABEL_ROLE: ROLE_CONTAINER}
        container = next(c for c in self.rt.list(labels) if c.running)
        return self.rt.exec(container.id, ["sh", "-c", script], timeout=10).output.decode().strip()

    def ready_namespace(self) -> str:
        ns = self.namespace()
        self.wait("the default account and kube-root-ca.crt", lambda: self.get(
            f"/api/v1/namespaces/{ns}/serviceaccounts/default") and self.get(
            f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"))
        return ns


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenCluster]:
    tmp = tmp_path_factory.mktemp("sa-token")
    with docker_started(lambda rt: TokenCluster(tmp, rt)) as c:
        c.wait("the node Ready", lambda: c.get(f"/api/v1/nodes/{c.node}"))
        yield c


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))))


def test_the_pod_finds_its_token_ca_and_namespace(cluster: TokenCluster) -> None:
    ns = cluster.ready_namespace()
    assert cluster.http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(ns, "app", account="default",
                                                                       node=cluster.node)).status_code == 201
    p = cluster.wait("the pod Running", lambda: (cluster.get(f"/api/v1/namespaces/{ns}/pods/app") or {})
                     if cluster.phase_events(ns, "app")[0] == "Running" else None)
    assert cluster.sh(ns, "app", f"ls {SA_DIR}").split() == ["ca.crt", "namespace", "token"]
    assert cluster.sh(ns, "app", f"cat {SA_DIR}/namespace") == ns
    assert cluster.sh(ns, "app", f"cat {SA_DIR}/ca.crt") == cluster.ca.strip()
    claims = _claims(cluster.sh(ns, "app", f"cat {SA_DIR}/token"))
    assert claims["sub"] == f"system:serviceaccount:{ns}:default"
    assert claims["kubernetes.io"]["pod"] == {"name": "app", "uid": p["metadata"]["uid"]}
    assert claims["exp"] - claims["iat"] == 3607
    assert "Read-only file system" in cluster.sh(ns, "app", f"touch {SA_DIR}/x 2>&1 || true")


def test_a_pod_whose_token_cannot_be_had_waits_with_an_event(cluster: TokenCluster) -> None:
    ns = cluster.ready_namespace()
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "late", "namespace": ns}}
    assert cluster.http.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json=account).status_code == 201
    # Created unbound (admission may want the account), the account deleted, then bound to the node
    # by the test.
    assert cluster.http.post(f"/api/v1/namespaces/{ns}/pods", json=pod(ns, "waits", account="late")).status_code == 201
    assert cluster.http.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/late").status_code == 200
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "waits"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": cluster.node}}
    assert cluster.http.post(f"/api/v1/namespaces/{ns}/pods/waits/binding", json=binding).status_code == 201
    want = ("FailedMount", 'MountVolume.SetUp failed for volume "kube-api-access-test" : '
                           'failed to fetch token: serviceaccounts "late" not found')
    cluster.wait("the FailedMount event", lambda: want in cluster.phase_events(ns, "waits")[1])
    assert cluster.phase_events(ns, "waits")[0] == "Pending"
    assert all(p.proc.poll() is None for p in cluster.procs)  # the kubelet did not fall over
    assert cluster.http.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json=account).status_code == 201
    cluster.wait("the pod Running once its account exists",
                 lambda: cluster.phase_events(ns, "waits")[0] == "Running", timeout=40)
    claims = _claims(cluster.sh(ns, "waits", f"cat {SA_DIR}/token"))
    assert claims["sub"] == f"system:serviceaccount:{ns}:late"
