"""Authentication end to end over TLS (tests/securecluster.py: a real etcd and ``minik8s apiserver``
with client certificates, a token file, ServiceAccount keys and Node,RBAC): the real kubectl with a
token-file user and with a client certificate (``auth whoami``, ``auth can-i``, ``--list``,
Kubernetes' 403 text), 401 without credentials, the official client with a TokenRequest token
(lists what its Role allows and nothing else), TokenReview, the JWKS, and a WebSocket handshake
authenticated by the bearer subprotocol."""

from __future__ import annotations

import base64
import json
import ssl
import uuid
from typing import Any, Iterator

import httpx
import pytest

from apiserver.auth import jws
from tests.securecluster import SecureCluster

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ns(secure_cluster: SecureCluster) -> Iterator[str]:
    name = f"authn-{uuid.uuid4().hex[:8]}"
    with secure_cluster.client("admin") as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        assert c.post(f"/api/v1/namespaces/{name}/serviceaccounts",
                      json={"metadata": {"name": "reader"}}).status_code == 201
        r = c.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/roles", json={
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
        assert r.status_code == 201, r.text
        r = c.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{name}/rolebindings", json={
            "metadata": {"name": "reader"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                        "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": name}]})
        assert r.status_code == 201, r.text
    yield name


def test_kubectl_whoami_with_a_certificate_and_a_token(secure_cluster: SecureCluster) -> None:
    p = secure_cluster.kubectl("admin", "auth", "whoami", "-o", "json")
    assert p.returncode == 0, p.stderr
    me = json.loads(p.stdout)["status"]["userInfo"]
    assert me["username"] == "kubernetes-admin" and me["groups"] == ["system:masters", "system:authenticated"]
    p = secure_cluster.kubectl("alice", "auth", "whoami", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"]["userInfo"] == {"username": "alice", "uid": "1001",
                                                          "groups": ["system:authenticated"]}


def test_kubectl_can_i_and_the_403(secure_cluster: SecureCluster, ns: str) -> None:
    p = secure_cluster.kubectl("admin", "auth", "can-i", "delete", "pods", "-n", ns)
    assert p.returncode == 0 and p.stdout.strip() == "yes", p.stderr
    p = secure_cluster.kubectl("alice", "auth", "can-i", "list", "pods", "-n", ns)
    assert p.returncode == 1 and p.stdout.strip() == "no", (p.stdout, p.stderr)
    p = secure_cluster.kubectl("admin", "auth", "can-i", "--list", "-n", ns)
    assert p.returncode == 0 and "*.*" in p.stdout, p.stderr
    p = secure_cluster.kubectl("alice", "get", "pods", "-n", ns)
    assert p.returncode == 1
    assert (f'Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API '
            f'group "" in the namespace "{ns}"') in p.stderr


def test_no_credentials_is_401_but_health_is_open(secure_cluster: SecureCluster) -> None:
    with secure_cluster.client("anonymous") as c:
        for path in ("/api", "/api/v1/pods", "/apis/apps/v1/deployments", "/openid/v1/jwks"):
            r = c.get(path)
            assert r.status_code == 401 and r.json()["message"] == "Unauthorized", (path, r.text)
        for path in ("/healthz", "/livez", "/readyz", "/version"):
            assert c.get(path).status_code == 200, path
    with httpx.Client(base_url=secure_cluster.url, verify=secure_cluster.ssl_context(),
                      headers={"Authorization": "Bearer wrong"}) as c:
        assert c.get("/version").status_code == 401


def _token(secure_cluster: SecureCluster, ns: str, **spec: Any) -> str:
    with secure_cluster.client("admin") as c:
        r = c.post(f"/api/v1/namespaces/{ns}/serviceaccounts/reader/token", json={"spec": spec})
        assert r.status_code == 201, r.text
        return str(r.json()["status"]["token"])


def test_official_client_with_a_service_account_token(secure_cluster: SecureCluster, ns: str) -> None:
    from kubernetes import client

    token = _token(secure_cluster, ns)
    config = client.Configuration()
    config.host = secure_cluster.url
    config.ssl_ca_cert = str(secure_cluster.pki.ca_cert)
    config.api_key = {"authorization": token}
    config.api_key_prefix = {"authorization": "Bearer"}
    with client.ApiClient(config) as api:
        core = client.CoreV1Api(api)
        assert core.list_namespaced_pod(ns).items == []
        with pytest.raises(client.ApiException) as err:
            core.list_namespaced_secret(ns)
        assert err.value.status == 403
        assert json.loads(str(err.value.body))["message"] == (
            f'secrets is forbidden: User "system:serviceaccount:{ns}:reader" cannot list resource "secrets" in API '
            f'group "" in the namespace "{ns}"')


def test_token_review_and_jwks(secure_cluster: SecureCluster, ns: str) -> None:
    token = _token(secure_cluster, ns)
    with secure_cluster.client("admin") as c:
        r = c.post("/apis/authentication.k8s.io/v1/tokenreviews", json={"spec": {"token": token}})
        assert r.status_code == 201 and r.json()["status"]["authenticated"] is True
        assert r.json()["status"]["user"]["username"] == f"system:serviceaccount:{ns}:reader"
        keys = c.get("/openid/v1/jwks").json()["keys"]
    assert jws.parse(token).header["kid"] in [k["kid"] for k in keys]


def test_websocket_bearer_subprotocol(secure_cluster: SecureCluster, ns: str) -> None:
    """kubectl's and client-go's WebSocket credential: past authentication (404 for an absent pod), else 401.

    The opening handshake is sent as kubectl sends it, with httpx: the websockets client, refused,
    once hung for 300 s joining its reader thread after it had the answer (CI run 29)."""
    url = secure_cluster.url + f"/api/v1/namespaces/{ns}/pods/absent/exec?command=ls&stdout=1"
    token = base64.urlsafe_b64encode(_token(secure_cluster, ns).encode()).decode().rstrip("=")
    codes = []
    with httpx.Client(verify=ssl.create_default_context(cafile=str(secure_cluster.pki.ca_cert)), timeout=30) as c:
        for protocols in (f"base64url.bearer.authorization.k8s.io.{token}, v5.channel.k8s.io", "v5.channel.k8s.io"):
            r = c.get(url, headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                    "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode(),
                                    "Sec-WebSocket-Protocol": protocols})
            codes.append(r.status_code)
    assert codes == [403, 401]  # the reader may not create pods/exec: authenticated, then refused by RBAC


def test_kubectl_impersonation(secure_cluster: SecureCluster, ns: str) -> None:
    # Groups asked for are all the groups (system:authenticated too: system:basic-user lets it ask whoami).
    p = secure_cluster.kubectl("admin", "auth", "whoami", "--as", "alice", "--as-group", "devs",
                               "--as-group", "system:authenticated", "-o", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"]["userInfo"] == {"username": "alice",
                                                          "groups": ["devs", "system:authenticated"]}
    p = secure_cluster.kubectl("admin", "auth", "whoami", "--as", "alice", "--as-group", "devs")
    assert p.returncode == 1 and "selfsubjectreviews API is not enabled" in p.stderr  # as Kubernetes answers
    p = secure_cluster.kubectl("admin", "get", "pods", "-n", ns, "--as", f"system:serviceaccount:{ns}:reader")
    assert p.returncode == 0, p.stderr
    p = secure_cluster.kubectl("alice", "get", "pods", "-n", ns, "--as", "kubernetes-admin")
    assert p.returncode == 1 and ('users "kubernetes-admin" is forbidden: User "alice" cannot impersonate resource '
                                  '"users" in API group "" at the cluster scope') in p.stderr
