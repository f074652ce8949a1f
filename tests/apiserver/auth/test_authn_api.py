"""The secure app in process (secure_app over httpx's ASGI transport, a real etcd): 401 for every
verb and path but the anonymous ones, each authenticator (client certificate, token file,
ServiceAccount JWT incl. the WebSocket subprotocol), the JWT edge cases, Kubernetes' 403 forms,
impersonation, the review APIs and the issuer discovery documents."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from apiserver.app import create_app
from apiserver.auth import jws
from apiserver.auth.attributes import Attributes
from apiserver.auth.authn import Authenticator
from apiserver.auth.authorizer import Decision
from apiserver.auth.middleware import secure_app
from apiserver.auth.tokenfile import TokenFileAuthenticator
from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from apiserver.tokens import ISSUER, ServiceAccountKeys
from machinery.userinfo import UserInfo
from tests.cluster import Etcd

Obj = dict[str, Any]
ADMIN, BOB, CAROL = "admin-token", "bob-token", "carol-token"


class FakeAuthorizer:
    """Group "admins" may do anything; bob is denied with a reason; carol may only read pods."""

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        if "admins" in a.user.groups:
            return Decision.ALLOW, "admins may"
        if a.user.name == "bob":
            return Decision.DENY, "bob never"
        if a.user.name == "carol" and a.resource == "pods" and a.verb in ("get", "list"):
            return Decision.ALLOW, ""
        if a.user.name.startswith("system:serviceaccount:") and a.verb == "create" and \
                a.resource in ("selfsubjectreviews", "tokenreviews"):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


def _client_cert(cn: str, *orgs: str) -> str:
    key = jws.new_private_key()
    name = x509.Name([*([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else []),
                      *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(hours=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _with_tls(app: Any) -> Any:
    """What the TLS listener does: a verified client certificate (here from a test header) in the scope."""
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        for k, v in scope.get("headers") or []:
            if k == b"x-test-client-cert":
                scope["extensions"] = {**(scope.get("extensions") or {}),
                                       "tls": {"client_cert_chain": [base64.b64decode(v).decode()]}}
        await app(scope, receive, send)
    return wrapped


class Cluster:
    def __init__(self, registry: Registry, authenticator: Authenticator, app: Any) -> None:
        self.registry, self.authenticator, self.app = registry, authenticator, app

    def client(self, token: str = "", cert: str = "") -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if cert:
            headers["x-test-client-cert"] = base64.b64encode(cert.encode()).decode()
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="https://apiserver",
                                 headers=headers)


@pytest.fixture(scope="module")
async def cluster(etcd: Etcd, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    tokens = tmp_path_factory.mktemp("authn") / "tokens.csv"
    tokens.write_text(f'{ADMIN},alice,uid-alice,"admins,dev"\n{BOB},bob,uid-bob\n{CAROL},carol,uid-carol\n')
    registry = Registry(EtcdStorage(etcd.url), default_resources())
    authenticator = Authenticator(keys=ServiceAccountKeys(registry.storage), registry=registry,
                                  token_file=TokenFileAuthenticator.load(str(tokens)))
    app = create_app(registry, authenticator=authenticator, authorizer=FakeAuthorizer())
    await registry.start()
    yield Cluster(registry, authenticator, _with_tls(secure_app(app, authenticator=authenticator,
                                                                authorizer=FakeAuthorizer())))
    await registry.stop()
    await registry.storage.close()


@pytest.fixture(scope="module")
async def ns(cluster: Cluster) -> str:
    name = f"authn-{uuid.uuid4().hex[:8]}"
    async with cluster.client(ADMIN) as c:
        r = await c.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert r.status_code == 201, r.text
        r = await c.post(f"/api/v1/namespaces/{name}/serviceaccounts", json={"metadata": {"name": "robot"}})
        assert r.status_code == 201, r.text
    return name


def _is_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "Unauthorized", "reason": "Unauthorized", "code": 401}


# ------------------------------------------------------------------------------ 401 and anonymous
@pytest.mark.parametrize("method,path", [
    ("GET", "/api"), ("GET", "/apis"), ("GET", "/api/v1/pods"), ("GET", "/api/v1/namespaces/default/pods/x"),
    ("POST", "/api/v1/namespaces"), ("PUT", "/api/v1/namespaces/default"), ("PATCH", "/api/v1/nodes/n"),
    ("DELETE", "/api/v1/namespaces/default/pods"), ("GET", "/openapi/v2"), ("GET", "/openid/v1/jwks"),
    ("GET", "/metrics"), ("GET", "/"), ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"),
    ("GET", "/api/v1/namespaces/default/pods/x/log"), ("GET", "/api/v1/watch/pods"),
])
async def test_no_credentials_is_401(cluster: Cluster, method: str, path: str) -> None:
    async with cluster.client() as c:
        _is_unauthorized(await c.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None))


@pytest.mark.parametrize("token", ["nope", "a.b.c", jws.sign({"iss": ISSUER, "sub": "x"}, jws.new_private_key())])
async def test_bad_credentials_are_401_even_on_health_paths(cluster: Cluster, token: str) -> None:
    async with cluster.client(token) as c:
        _is_unauthorized(await c.get("/api/v1/pods"))
        _is_unauthorized(await c.get("/healthz"))


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/version"])
async def test_health_paths_are_anonymous(cluster: Cluster, path: str) -> None:
    async with cluster.client() as c:
        assert (await c.get(path)).status_code == 200


# ------------------------------------------------------------------------------ the authenticators
async def _whoami(c: httpx.AsyncClient) -> Obj:
    r = await c.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                     json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "SelfSubjectReview" and r.json()["metadata"]["creationTimestamp"]
    return dict(r.json()["status"]["userInfo"])


async def test_token_file_user(cluster: Cluster) -> None:
    async with cluster.client(ADMIN) as c:
        assert await _whoami(c) == {"username": "alice", "uid": "uid-alice",
                                    "groups": ["admins", "dev", "system:authenticated"]}


async def test_client_certificate_user(cluster: Cluster) -> None:
    async with cluster.client(cert=_client_cert("dora", "admins", "ops")) as c:
        me = await _whoami(c)
    assert me["username"] == "dora" and me["groups"] == ["admins", "ops", "system:authenticated"]
    assert me["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("X509SHA256=")
    async with cluster.client(cert=_client_cert("", "admins")) as c:  # no CN: no identity
        _is_unauthorized(await c.get("/api/v1/pods"))


async def _token(cluster: Cluster, ns: str, **spec: Any) -> str:
    async with cluster.client(ADMIN) as c:
        r = await c.post(f"/api/v1/namespaces/{ns}/serviceaccounts/robot/token", json={"spec": spec})
        assert r.status_code == 201, r.text
        return str(r.json()["status"]["token"])


async def test_service_account_token(cluster: Cluster, ns: str) -> None:
    token = await _token(cluster, ns)
    assert jws.parse(token).header["alg"] == "RS256"
    async with cluster.client(token) as c:
        me = await _whoami(c)
        assert me["username"] == f"system:serviceaccount:{ns}:robot"
        assert me["groups"] == ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        assert me["extra"]["authentication.kubernetes.io/credential-id"][0].startswith("JTI=")
        r = await c.get(f"/api/v1/namespaces/{ns}/pods")
        assert r.status_code == 403 and r.json()["message"] == (
            f'pods is forbidden: User "system:serviceaccount:{ns}:robot" cannot list resource "pods" in API group "" '
            f'in the namespace "{ns}"')


async def test_token_bound_to_a_pod_dies_with_it(cluster: Cluster, ns: str) -> None:
    async with cluster.client(ADMIN) as admin:
        r = await admin.post(f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        assert r.status_code == 201, r.text
        token = await _token(cluster, ns, boundObjectRef={"kind": "Pod", "apiVersion": "v1", "name": "p"})
        async with cluster.client(token) as c:
            me = await _whoami(c)
            assert me["extra"]["authentication.kubernetes.io/pod-name"] == ["p"]
            assert me["extra"]["authentication.kubernetes.io/pod-uid"] == [r.json()["metadata"]["uid"]]
            assert (await admin.delete(f"/api/v1/namespaces/{ns}/pods/p",
                                       params={"gracePeriodSeconds": "0"})).status_code == 200
            for _ in range(50):
                if (await c.get("/version")).status_code == 401:
                    break
                await asyncio.sleep(0.1)
            _is_unauthorized(await c.get(f"/api/v1/namespaces/{ns}/pods"))
        review = await _review(admin, token)
        assert review["status"] == {"user": {}, "error": "service account token has been invalidated"}


async def _review(c: httpx.AsyncClient, token: str, *audiences: str) -> Obj:
    spec: Obj = {"token": token, **({"audiences": list(audiences)} if audiences else {})}
    r = await c.post("/apis/authentication.k8s.io/v1/tokenreviews",
                     json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_jwt_edge_cases(cluster: Cluster, ns: str) -> None:
    keys = cluster.authenticator.keys
    good = jws.parse(await _token(cluster, ns)).claims
    now = int(datetime.now(timezone.utc).timestamp())
    other_key = jws.new_private_key()
    cases = [
        (await keys.sign({**good, "exp": now - 120}), "service account token has expired"),
        (await keys.sign({**good, "nbf": now + 600, "iat": now + 600}), "service account token is not valid yet"),
        (await keys.sign({**good, "aud": ["vault"]}),
         f'token audiences ["vault"] is invalid for the target audiences ["{ISSUER}"]'),
        (jws.sign(good, other_key), "square/go-jose: error in cryptographic primitive"),
        (await keys.sign({**good, "kubernetes.io": {**good["kubernetes.io"],
                                                    "serviceaccount": {"name": "robot", "uid": "old"}}}),
         "service account UID ("),
        (await keys.sign({**good, "kubernetes.io": {**good["kubernetes.io"],
                                                    "serviceaccount": {"name": "gone", "uid": "x"}}}),
         'serviceaccounts "gone" not found'),
        (await keys.sign({**good, "iss": "https://elsewhere"}), "invalid bearer token"),
    ]
    async with cluster.client(ADMIN) as admin:
        for token, error in cases:
            review = await _review(admin, token)
            assert "authenticated" not in review["status"] and error in review["status"]["error"], (error, review)
            async with cluster.client(token) as c:
                _is_unauthorized(await c.get("/api/v1/pods"))


async def test_token_review_audiences(cluster: Cluster, ns: str) -> None:
    vault = await _token(cluster, ns, audiences=["vault", "x"])
    async with cluster.client(ADMIN) as admin:
        review = await _review(admin, vault, "vault")
        assert review["status"]["authenticated"] is True and review["status"]["audiences"] == ["vault"]
        assert review["status"]["user"]["username"] == f"system:serviceaccount:{ns}:robot"
        assert "error" in (await _review(admin, vault))["status"]  # not for the API audience
        static = await _review(admin, BOB)  # token-file tokens: the API audiences only
        assert static["status"]["authenticated"] and static["status"]["audiences"] == [ISSUER]
        assert (await _review(admin, BOB, "vault"))["status"] == {"user": {}, "error": "invalid bearer token"}
        r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json={"spec": {}})
        assert r.status_code == 400 and r.json()["message"] == "token is required for TokenReview in authentication"


# ------------------------------------------------------------------------------ 403, impersonation
async def test_forbidden_forms(cluster: Cluster, ns: str) -> None:
    async with cluster.client(BOB) as c:
        r = await c.get(f"/api/v1/namespaces/{ns}/pods/x")
        assert r.status_code == 403 and r.json()["reason"] == "Forbidden"
        assert r.json()["message"] == (f'pods "x" is forbidden: User "bob" cannot get resource "pods" in API group "" '
                                       f'in the namespace "{ns}": bob never')
        assert r.json()["details"] == {"name": "x", "kind": "pods"}
        r = await c.get("/metrics")
        assert r.status_code == 403 and r.json()["message"] == 'forbidden: User "bob" cannot get path "/metrics": ' \
                                                              "bob never"
    async with cluster.client(CAROL) as c:
        assert (await c.get(f"/api/v1/namespaces/{ns}/pods")).status_code == 200
        r = await c.delete(f"/api/v1/namespaces/{ns}/pods/x")
        assert r.status_code == 403 and r.json()["message"] == (
            f'pods "x" is forbidden: User "carol" cannot delete resource "pods" in API group "" in the namespace "{ns}"')


async def test_impersonation(cluster: Cluster, ns: str) -> None:
    async with cluster.client(ADMIN) as c:
        r = await c.post("/apis/authentication.k8s.io/v1/selfsubjectreviews", json={},
                         headers={"Impersonate-User": "carol", "Impersonate-Group": "admins"})
        assert r.status_code == 201 and r.json()["status"]["userInfo"] == {"username": "carol", "groups": ["admins"]}
        r = await c.get(f"/api/v1/namespaces/{ns}/pods", headers={"Impersonate-User": f"system:serviceaccount:{ns}:robot"})
        assert r.status_code == 403 and f'User "system:serviceaccount:{ns}:robot" cannot list' in r.json()["message"]
        r = await c.get("/api/v1/pods", headers={"Impersonate-Group": "admins"})
        assert r.status_code == 400
    async with cluster.client(CAROL) as c:
        r = await c.get("/api/v1/pods", headers={"Impersonate-User": "alice"})
        assert r.status_code == 403 and r.json()["message"] == (
            'users "alice" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the '
            "cluster scope")


# ------------------------------------------------------------------------------ the review APIs
async def test_access_reviews(cluster: Cluster, ns: str) -> None:
    async with cluster.client(CAROL) as c:
        r = await c.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                         json={"spec": {"resourceAttributes": {"namespace": ns, "verb": "list", "resource": "pods"}}})
        assert r.status_code == 403  # carol may not even ask (the fake authorizer grants her pods only)
    async with cluster.client(ADMIN) as c:
        url = "/apis/authorization.k8s.io/v1"
        r = await c.post(f"{url}/selfsubjectaccessreviews",
                         json={"spec": {"resourceAttributes": {"namespace": ns, "verb": "list", "resource": "pods"}}})
        assert r.status_code == 201 and r.json()["status"] == {"allowed": True, "reason": "admins may"}
        r = await c.post(f"{url}/subjectaccessreviews", json={"spec": {"user": "bob", "nonResourceAttributes": {
            "path": "/metrics", "verb": "get"}}})
        assert r.json()["status"] == {"allowed": False, "denied": True, "reason": "bob never"}
        r = await c.post(f"{url}/subjectaccessreviews", json={"spec": {"user": "carol", "resourceAttributes": {
            "namespace": ns, "verb": "delete", "resource": "pods"}}})
        assert r.json()["status"] == {"allowed": False}
        r = await c.post(f"{url}/subjectaccessreviews", json={"spec": {"resourceAttributes": {"verb": "get"}}})
        assert r.status_code == 422 and r.json()["message"] == (
            'SubjectAccessReview.authorization.k8s.io "" is invalid: spec.user: Invalid value: "": at least one of '
            "user or group must be specified")
        r = await c.post(f"{url}/namespaces/{ns}/localsubjectaccessreviews", json={"spec": {
            "user": "carol", "resourceAttributes": {"namespace": ns, "verb": "get", "resource": "pods"}}})
        assert r.status_code == 201 and r.json()["status"]["allowed"] and r.json()["metadata"]["namespace"] == ns
        r = await c.post(f"{url}/namespaces/{ns}/localsubjectaccessreviews", json={"spec": {
            "user": "carol", "resourceAttributes": {"namespace": "other", "verb": "get", "resource": "pods"}}})
        assert r.status_code == 422 and "must match metadata.namespace" in r.json()["message"]
        r = await c.post(f"{url}/selfsubjectrulesreviews", json={"spec": {"namespace": ns}})
        assert r.status_code == 201 and r.json()["status"]["incomplete"] is False
        assert (await c.get(f"{url}/selfsubjectaccessreviews")).status_code == 405
        r = await c.post(f"{url}/selfsubjectaccessreviews", json={"kind": "Pod"})
        assert r.status_code == 400


async def test_discovery_lists_the_reviews(cluster: Cluster) -> None:
    async with cluster.client(ADMIN) as c:
        authn = (await c.get("/apis/authentication.k8s.io/v1")).json()["resources"]
        authz = (await c.get("/apis/authorization.k8s.io/v1")).json()["resources"]
    assert {(r["name"], tuple(r["verbs"]), r["namespaced"]) for r in authn} >= {
        ("tokenreviews", ("create",), False), ("selfsubjectreviews", ("create",), False)}
    assert {(r["name"], r["namespaced"]) for r in authz} == {
        ("subjectaccessreviews", False), ("selfsubjectaccessreviews", False), ("selfsubjectrulesreviews", False),
        ("localsubjectaccessreviews", True)}


async def test_issuer_discovery(cluster: Cluster, ns: str) -> None:
    async with cluster.client(ADMIN) as c:
        config = (await c.get("/.well-known/openid-configuration")).json()
        r = await c.get("/openid/v1/jwks")
    assert config["issuer"] == ISSUER and config["jwks_uri"] == f"{ISSUER}/openid/v1/jwks"
    assert config["id_token_signing_alg_values_supported"] == ["RS256"]
    assert r.headers["content-type"] == "application/jwk-set+json"
    token = jws.parse(await _token(cluster, ns))
    assert token.header["kid"] in [k["kid"] for k in r.json()["keys"]]


async def test_websocket_subprotocol_token_reaches_the_app(cluster: Cluster, ns: str) -> None:
    """A WebSocket handshake: the token in the subprotocol authenticates and is removed from the offer."""
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((list(scope["subprotocols"]), scope["state"]["user"]))
        await send({"type": "websocket.close", "code": 1000})

    wrapped = secure_app(app, authenticator=cluster.authenticator, authorizer=FakeAuthorizer())
    encoded = base64.urlsafe_b64encode(ADMIN.encode()).decode().rstrip("=")
    sent: list[Any] = []

    async def receive() -> Any:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": f"/api/v1/namespaces/{ns}/pods/p/exec", "query_string": b"command=ls",
             "headers": [(b"sec-websocket-protocol", f"base64url.bearer.authorization.k8s.io.{encoded}, "
                                                     "v5.channel.k8s.io".encode())],
             "subprotocols": [f"base64url.bearer.authorization.k8s.io.{encoded}", "v5.channel.k8s.io"]}
    await wrapped(scope, receive, send)
    assert seen[0][0] == ["v5.channel.k8s.io"] and seen[0][1].name == "alice"
    seen.clear()
    sent.clear()
    await wrapped({**scope, "headers": [], "subprotocols": ["v5.channel.k8s.io"]}, receive, send)
    assert not seen and sent  # refused before the app: no credentials
    assert sent[0]["type"] in ("websocket.http.response.start", "websocket.close")


def test_unknown_token_file_path_fails(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        TokenFileAuthenticator.load(str(tmp_path / "absent.csv"))


_ = UserInfo  # re-exported name used in annotations by readers of this module
