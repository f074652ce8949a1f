"""Pure parts of authentication: the token file, RS256 JWS, the WebSocket bearer subprotocol,
Kubernetes' 403 messages, the anonymous paths, the ServiceAccount claim checks and the
SubjectAccessReview spec rules."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone

import pytest

from apiserver.auth import jws
from apiserver.auth.attributes import Attributes, request_attributes
from apiserver.auth.authorizer import AlwaysAllow, Decision
from apiserver.auth.errors import AuthenticationError, forbidden_status
from apiserver.auth.middleware import anonymous_path, websocket_token
from apiserver.auth.serviceaccount import Bound, check_times, matched_audiences, user_info
from apiserver.auth.tokenfile import TokenFileError, parse_token_file
from apiserver.reviews import access_status, attributes_from_spec, rules_of
from machinery.errors import StatusCause
from machinery.userinfo import UserInfo

ALICE = UserInfo(name="alice", groups=("system:authenticated",))
KEY = jws.new_private_key()


def test_token_file() -> None:
    tokens = parse_token_file('t1,alice,u1,"admins,dev"\n\n t2, bob ,u2\n,ghost,u3\nt1,alice2,u4\n', path="f")
    assert tokens["t1"] == UserInfo(name="alice2", uid="u4")  # the last line of a repeated token wins
    assert tokens["t2"] == UserInfo(name="bob ", uid="u2") and "" not in tokens
    assert parse_token_file('t,a,u,"g1,g2"\n')["t"].groups == ("g1", "g2")


@pytest.mark.parametrize("text,where", [("t1,alice\n", "line 1"), ('ok,a,u\nt2\n', "line 2"),
                                        ('ok,a,u\n"unterminated,x,y\n', "line")])
def test_token_file_errors_name_the_line(text: str, where: str) -> None:
    with pytest.raises(TokenFileError, match=where):
        parse_token_file(text, path="tokens.csv")


def test_jws_round_trip_and_kid() -> None:
    token = jws.sign({"sub": "x", "iss": "i"}, KEY)
    parsed = jws.parse(token)
    assert parsed.header == {"alg": "RS256", "kid": jws.key_id(KEY.public_key())} and parsed.claims["sub"] == "x"
    assert jws.verify(parsed, [jws.new_private_key().public_key(), KEY.public_key()])
    assert not jws.verify(parsed, [jws.new_private_key().public_key()])
    tampered = jws.parse(token.split(".")[0] + "." + jws.b64url(b'{"sub":"root"}') + "." + token.split(".")[2])
    assert not jws.verify(tampered, [KEY.public_key()])
    key = jws.jwk(KEY.public_key())
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["e"] == "AQAB" and key["use"] == "sig"
    assert jws.load_public_keys(jws.private_key_pem(KEY))[0].public_numbers() == KEY.public_key().public_numbers()
    with pytest.raises(jws.JWSError):
        jws.parse("a.b")


def test_websocket_bearer_protocol() -> None:
    encoded = base64.urlsafe_b64encode(b"secret").decode().rstrip("=")
    assert websocket_token([f"base64url.bearer.authorization.k8s.io.{encoded}", "v5.channel.k8s.io"]) == \
        ("secret", ["v5.channel.k8s.io"])
    assert websocket_token(["v4.channel.k8s.io"]) == ("", ["v4.channel.k8s.io"])
    with pytest.raises(AuthenticationError, match="missing additional subprotocol"):
        websocket_token([f"base64url.bearer.authorization.k8s.io.{encoded}"])
    with pytest.raises(AuthenticationError, match="multiple"):
        websocket_token([f"base64url.bearer.authorization.k8s.io.{encoded}"] * 2 + ["x"])


@pytest.mark.parametrize("method,path,query,reason,message", [
    ("GET", "/api/v1/namespaces/default/pods", {}, "",
     'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default"'),
    ("GET", "/api/v1/namespaces/default/pods/x", {}, "",
     'pods "x" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "default"'),
    ("GET", "/api/v1/namespaces/default/pods/x/log", {}, "",
     'pods "x" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "default"'),
    ("DELETE", "/apis/apps/v1/namespaces/a/deployments", {}, "",
     'deployments.apps is forbidden: User "alice" cannot deletecollection resource "deployments" in API group '
     '"apps" in the namespace "a"'),
    ("GET", "/api/v1/nodes", {"watch": "1"}, "",
     'nodes is forbidden: User "alice" cannot watch resource "nodes" in API group "" at the cluster scope'),
    ("GET", "/metrics", {}, "", 'forbidden: User "alice" cannot get path "/metrics"'),
    ("POST", "/api/v1/namespaces", {}, 'RBAC: clusterrole.rbac.authorization.k8s.io "x" not found',
     'namespaces is forbidden: User "alice" cannot create resource "namespaces" in API group "" at the cluster '
     'scope: RBAC: clusterrole.rbac.authorization.k8s.io "x" not found'),
])
def test_forbidden_messages(method: str, path: str, query: dict[str, str], reason: str, message: str) -> None:
    err = forbidden_status(request_attributes(ALICE, method, path, query), reason)
    status = err.to_status()
    assert status["code"] == 403 and status["reason"] == "Forbidden" and status["message"] == message


def test_forbidden_details() -> None:
    status = forbidden_status(request_attributes(ALICE, "GET", "/apis/apps/v1/namespaces/a/deployments/d", {}),
                              "").to_status()
    assert status["details"] == {"name": "d", "group": "apps", "kind": "deployments"}


@pytest.mark.parametrize("path,anonymous", [
    ("/healthz", True), ("/livez/ping", True), ("/readyz", True), ("/readyz/etcd", True), ("/version", True),
    ("/version/", True), ("/healthzx", False), ("/api", False), ("/metrics", False), ("/", False),
    ("/openid/v1/jwks", False), ("/api/v1/namespaces/healthz", False),
])
def test_anonymous_paths(path: str, anonymous: bool) -> None:
    assert anonymous_path(path) is anonymous


def test_claim_times_and_audiences() -> None:
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ts = int(now.timestamp())
    check_times({"exp": ts + 10, "nbf": ts, "iat": ts}, now)
    check_times({"exp": ts - 30}, now)  # within the one-minute leeway
    with pytest.raises(AuthenticationError, match="service account token has expired"):
        check_times({"exp": ts - 61}, now)
    with pytest.raises(AuthenticationError, match="not valid yet"):
        check_times({"nbf": int((now + timedelta(minutes=2)).timestamp())}, now)
    with pytest.raises(AuthenticationError, match="bad exp"):
        check_times({"exp": 1e300}, now)
    assert matched_audiences({"aud": ["api", "x"]}, requested=(), api=("api",)) == ["api"]
    assert matched_audiences({"aud": "x"}, requested=("x", "y"), api=("api",)) == ["x"]
    with pytest.raises(AuthenticationError, match='token audiences \\["vault"\\] is invalid for the target '
                                                  'audiences \\["api"\\]'):
        matched_audiences({"aud": ["vault"]}, requested=(), api=("api",))


def test_service_account_user() -> None:
    bound = Bound.of({"kubernetes.io": {"namespace": "ns", "serviceaccount": {"name": "sa", "uid": "u"},
                                        "pod": {"name": "p", "uid": "pu"}, "node": {"name": "n1", "uid": "nu"}}})
    user = user_info(bound, jti="j1", pod=True, node=True)
    assert user.name == "system:serviceaccount:ns:sa" and user.uid == "u"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ns")
    assert dict(user.extra) == {"authentication.kubernetes.io/pod-name": ("p",),
                                "authentication.kubernetes.io/pod-uid": ("pu",),
                                "authentication.kubernetes.io/credential-id": ("JTI=j1",),
                                "authentication.kubernetes.io/node-name": ("n1",),
                                "authentication.kubernetes.io/node-uid": ("nu",)}
    with pytest.raises(AuthenticationError):
        Bound.of({"kubernetes.io": {"namespace": "ns"}})


@pytest.mark.parametrize("spec,field", [
    ({}, "spec.resourceAttributes"),
    ({"resourceAttributes": {}, "nonResourceAttributes": {}}, "spec.nonResourceAttributes"),
    ({"resourceAttributes": {"verb": 3}}, "spec.resourceAttributes.verb"),
])
def test_access_review_spec_errors(spec: dict[str, object], field: str) -> None:
    causes: list[StatusCause] = []
    attributes_from_spec(spec, ALICE, causes)
    assert field in [c.field for c in causes]


def test_access_review_attributes_and_status() -> None:
    causes: list[StatusCause] = []
    a = attributes_from_spec({"resourceAttributes": {"verb": "get", "resource": "pods", "subresource": "log",
                                                     "namespace": "n", "name": "p", "group": ""}}, ALICE, causes)
    assert not causes and a == Attributes(user=ALICE, verb="get", resource_request=True, path="", namespace="n",
                                          resource="pods", subresource="log", name="p")
    assert attributes_from_spec({"nonResourceAttributes": {"path": "/x", "verb": "get"}}, ALICE, causes).path == "/x"
    assert access_status(Decision.ALLOW, "ok") == {"allowed": True, "reason": "ok"}
    assert access_status(Decision.DENY, "") == {"allowed": False, "denied": True}
    assert access_status(Decision.NO_OPINION, "") == {"allowed": False}


def test_rules_of_the_chain() -> None:
    class Lister:
        def authorize(self, a: Attributes) -> tuple[Decision, str]:
            return Decision.NO_OPINION, ""

        def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict[str, object]], list[dict[str, object]],
                                                                      bool]:
            return [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], [], False

    assert rules_of(Lister(), ALICE, "ns") == ([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}], [],
                                               False)
    resource, non_resource, _ = rules_of(AlwaysAllow(), ALICE, "ns")
    assert resource == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    assert non_resource == [{"verbs": ["*"], "nonResourceURLs": ["*"]}]


async def test_a_failing_authenticator_answers_a_status() -> None:
    import httpx

    from apiserver.auth.middleware import secure_app

    class Broken:
        async def authenticate(self, credentials: object) -> UserInfo | None:
            raise RuntimeError("bug")

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not reached")

    wrapped = secure_app(app, authenticator=Broken(), authorizer=AlwaysAllow())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://x") as c:
        r = await c.get("/api", headers={"Authorization": "Bearer t"})
    assert r.status_code == 500 and r.json()["kind"] == "Status" and "RuntimeError" in r.json()["message"]
