"""The audit log: the Policy's rules as pure tables, then the real app in process over the session's
etcd, wrapped as the API server wraps its listeners (audit outermost, then the secure port's
authentication and authorization, or the plain-HTTP port's insecure superuser), with the events
read back from the log file."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import httpx
import orjson
import pytest
import yaml

from apiserver.app import create_app
from apiserver.audit import audit_middleware, response_status, writer_for
from apiserver.auditpolicy import AuditPolicyError, DEFAULT_POLICY, capped_level, load_policy, parse_policy
from apiserver.auth.attributes import Attributes, request_attributes
from apiserver.auth.authn import Authenticator
from apiserver.auth.authorizer import Decision
from apiserver.auth.middleware import insecure_app, secure_app
from apiserver.auth.tokenfile import TokenFileAuthenticator
from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from apiserver.tokens import ServiceAccountKeys
from machinery.userinfo import INSECURE_SUPERUSER, UserInfo
from tests.cluster import Etcd

ALICE = UserInfo(name="alice", uid="1001", groups=("devs", "system:authenticated"))
ADMIN = UserInfo(name="admin", groups=("system:masters", "system:authenticated"))


def attrs(method: str, path: str, query: dict[str, str] | None = None, user: UserInfo = ALICE) -> Attributes:
    return request_attributes(user, method, path, query or {})


POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["RequestReceived"], "rules": [
    {"level": "None", "users": ["system:kube-proxy"], "verbs": ["watch"]},
    {"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
    {"level": "RequestResponse", "resources": [{"group": "", "resources": ["configmaps"]}]},
    {"level": "Request", "userGroups": ["devs"], "namespaces": ["team"]},
    {"level": "Metadata", "resources": [{"group": "apps", "resources": ["deployments/scale"]}]},
    {"level": "Request", "resources": [{"group": "", "resources": ["pods/*"], "resourceNames": ["web"]}]},
    {"level": "Metadata", "omitStages": ["ResponseStarted"]},
]}


@pytest.mark.parametrize("a,level,omitted", [
    (attrs("GET", "/api/v1/pods", {"watch": "1"}, UserInfo(name="system:kube-proxy")), "None", set()),
    (attrs("GET", "/healthz/etcd"), "None", set()),
    (attrs("GET", "/version"), "None", set()),
    (attrs("POST", "/api/v1/namespaces/x/configmaps"), "Metadata", set()),  # capped: never bodies
    (attrs("POST", "/api/v1/namespaces/team/pods"), "Request", set()),
    (attrs("POST", "/api/v1/namespaces/team/secrets"), "Metadata", set()),  # capped
    (attrs("PUT", "/apis/apps/v1/namespaces/a/deployments/d/scale"), "Metadata", set()),
    (attrs("GET", "/api/v1/namespaces/a/pods/web/log"), "Request", set()),
    (attrs("GET", "/api/v1/namespaces/a/pods/other/log"), "Metadata", {"ResponseStarted"}),
    (attrs("GET", "/apis"), "Metadata", {"ResponseStarted"}),
])
def test_policy_first_matching_rule_wins(a: Attributes, level: str, omitted: set[str]) -> None:
    policy = parse_policy(POLICY)
    got, omit = policy.level_and_stages(a)
    assert capped_level(got, a) == level and omit == {"RequestReceived"} | omitted


def test_default_policy_and_no_match() -> None:
    assert DEFAULT_POLICY.level_and_stages(attrs("GET", "/api/v1/pods")) == ("Metadata", frozenset({"RequestReceived"}))
    only = parse_policy({**POLICY, "rules": [{"level": "Metadata", "verbs": ["create"]}]})
    assert only.level_and_stages(attrs("GET", "/api/v1/pods"))[0] == "None"  # Kubernetes: unmatched -> None


@pytest.mark.parametrize("doc,message", [
    ({"apiVersion": "v1", "kind": "Policy", "rules": []}, 'expected apiVersion "audit.k8s.io/v1"'),
    ({**POLICY, "rules": []}, "at least one rule"),
    ({**POLICY, "rules": [{"level": "Everything"}]}, "rules[0].level: Unsupported value: 'Everything'"),
    ({**POLICY, "omitStages": ["Done"]}, 'omitStages[0]: Unsupported value: "Done"'),
    ({**POLICY, "rules": [{"level": "None", "nonResourceURLs": ["/x"], "namespaces": ["a"]}]},
     "cannot apply to both regular resources and non-resource URLs"),
    ({**POLICY, "rules": [{"level": "None", "users": "alice"}]}, "rules[0].users: Invalid value"),
])
def test_bad_policies_name_the_problem(doc: Any, message: str) -> None:
    with pytest.raises(AuditPolicyError) as e:
        parse_policy(doc)
    assert message in str(e.value)


def test_policy_files(tmp_path: Path) -> None:
    with pytest.raises(AuditPolicyError, match="failed to read audit policy file"):
        load_policy(str(tmp_path / "none.yaml"))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(POLICY))
    assert load_policy(str(tmp_path / "p.yaml")).rules[0].level == "None"
    assert load_policy("") is DEFAULT_POLICY


def test_response_status_of_a_failure() -> None:
    body = orjson.dumps({"kind": "Status", "status": "Failure", "message": "nope", "reason": "Forbidden",
                         "details": {"kind": "pods"}, "code": 403})
    assert response_status(403, body) == {"metadata": {}, "code": 403, "status": "Failure", "message": "nope",
                                          "reason": "Forbidden", "details": {"kind": "pods"}}
    assert response_status(200, body) == {"metadata": {}, "code": 200}
    assert response_status(500, b"not json") == {"metadata": {}, "code": 500}


# ------------------------------------------------------------------------------ in process
class OnlyPodsForAlice:
    """Alice may read pods; the admin anything; nobody else anything."""

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        if "system:masters" in a.user.groups:
            return Decision.ALLOW, ""
        if a.user.name == "alice" and a.resource == "pods" and a.verb in ("get", "list", "watch"):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


@pytest.fixture(scope="module")
async def registry(etcd: Etcd) -> AsyncIterator[Registry]:
    storage = EtcdStorage(etcd.url)
    reg = Registry(storage, default_resources())
    await reg.start()
    yield reg
    await reg.stop()
    await storage.close()


@pytest.fixture
async def namespace(registry: Registry) -> str:
    """A namespace of this test, made through the app itself (no API server process needed)."""
    name = f"audit-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(registry)), base_url="http://a") as c:
        r = await c.post("/api/v1/namespaces", json={"metadata": {"name": name}})
        assert r.status_code == 201, r.text
    return name


Client = Callable[..., httpx.AsyncClient]


@pytest.fixture
def audited(registry: Registry, tmp_path: Path) -> Callable[..., tuple[Client, Callable[[], list[dict[str, Any]]]]]:
    def make(*, secure: bool, policy: dict[str, Any] | None = None) -> tuple[Client, Callable[[], list[dict[str, Any]]]]:
        log = tmp_path / f"audit-{uuid.uuid4().hex[:6]}.log"
        policy_file = ""
        if policy is not None:
            (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
            policy_file = str(tmp_path / "policy.yaml")
        app = create_app(registry)
        if secure:
            tokens = TokenFileAuthenticator({"alice-token": ALICE, "admin-token": ADMIN})
            authn = Authenticator(keys=ServiceAccountKeys(registry.storage), registry=registry, token_file=tokens)
            wrapped = secure_app(app, authenticator=authn, authorizer=OnlyPodsForAlice())
        else:
            wrapped = insecure_app(app)
        audited_app = audit_middleware(wrapped, log_path=str(log), policy_file=policy_file)

        def client(token: str = "", **kw: Any) -> httpx.AsyncClient:
            headers = {"Authorization": f"Bearer {token}", "User-Agent": "audit-test/1"} if token else \
                {"User-Agent": "audit-test/1"}
            return httpx.AsyncClient(transport=httpx.ASGITransport(app=audited_app, client=("127.0.0.9", 5000)),
                                     base_url="http://apiserver", headers=headers, **kw)

        def events() -> list[dict[str, Any]]:
            assert writer_for(str(log)).flush()
            return [orjson.loads(line) for line in log.read_bytes().splitlines()]
        return client, events
    return make


async def test_secure_port_events(audited: Any, namespace: str) -> None:
    client, events = audited(secure=True)
    async with client("admin-token") as admin, client("alice-token") as alice, client("wrong") as stranger:
        r = await admin.post(f"/api/v1/namespaces/{namespace}/secrets",
                             json={"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
        assert r.status_code == 201, r.text
        created_id = r.headers["Audit-ID"]
        assert (await alice.get(f"/api/v1/namespaces/{namespace}/pods")).status_code == 200
        assert (await alice.get(f"/api/v1/namespaces/{namespace}/secrets/s")).status_code == 403
        assert (await stranger.get("/api/v1/pods")).status_code == 401
        r = await alice.get(f"/api/v1/namespaces/{namespace}/pods", params={"watch": "1", "timeoutSeconds": "1"})
        assert r.status_code == 200
        r = await admin.get("/version", headers={"Audit-ID": "given-id"})
        assert r.headers["Audit-ID"] == "given-id"
    evs = events()
    assert all(e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1" and e["level"] == "Metadata"
               and e["sourceIPs"] == ["127.0.0.9"] and e["userAgent"] == "audit-test/1" for e in evs)
    create = next(e for e in evs if e["auditID"] == created_id)
    assert create["stage"] == "ResponseComplete" and create["verb"] == "create"
    assert create["user"]["username"] == "admin" and create["responseStatus"] == {"metadata": {}, "code": 201}
    assert create["objectRef"] == {"resource": "secrets", "namespace": namespace, "apiVersion": "v1"}
    assert create["requestURI"] == f"/api/v1/namespaces/{namespace}/secrets"
    assert create["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert create["requestReceivedTimestamp"] <= create["stageTimestamp"]
    forbidden = next(e for e in evs if e["responseStatus"]["code"] == 403)
    assert forbidden["verb"] == "get" and forbidden["objectRef"]["name"] == "s"
    assert forbidden["responseStatus"]["reason"] == "Forbidden"
    assert forbidden["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert forbidden["user"]["username"] == "alice"  # who was refused, as Kubernetes logs it
    unauthorized = next(e for e in evs if e["responseStatus"]["code"] == 401)
    assert unauthorized["user"] == {} and unauthorized["verb"] == "list"
    assert unauthorized["responseStatus"]["message"] == "Unauthorized"
    watch = [e for e in evs if e["verb"] == "watch"]
    assert [e["stage"] for e in watch] == ["ResponseStarted", "ResponseComplete"]
    assert len({e["auditID"] for e in watch}) == 1 and watch[0]["user"]["username"] == "alice"
    assert any(e["auditID"] == "given-id" and e["requestURI"] == "/version" for e in evs)
    text = b"".join(orjson.dumps(e) for e in evs)
    assert b"hunter2" not in text and base64.b64encode(b"hunter2") not in text


async def test_pod_security_audit_annotations_reach_the_log(audited: Any) -> None:
    """Admission's audit annotations (a namespace's pod-security audit level) are in the request's event."""
    client, events = audited(secure=False)
    async with client() as c:
        ns = f"psa-audit-{uuid.uuid4().hex[:6]}"
        assert (await c.post("/api/v1/namespaces", json={"metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/audit": "restricted"}}})).status_code == 201
        r = await c.post(f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
        assert r.status_code == 201, r.text
        created = r.headers["Audit-ID"]
    event = next(e for e in events() if e["auditID"] == created)
    assert event["annotations"]["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest"')


async def test_policy_levels_on_the_insecure_port(audited: Any, namespace: str) -> None:
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["namespaces"]}]},
        {"level": "RequestResponse", "resources": [{"group": "", "resources": ["secrets", "services"]}]},
        {"level": "Request", "resources": [{"group": "", "resources": ["configmaps"]}], "omitStages": []},
        {"level": "Metadata"},
    ]}
    client, events = audited(secure=False, policy=policy)
    service = {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}
    async with client() as c:
        assert (await c.get(f"/api/v1/namespaces/{namespace}")).status_code == 200
        assert (await c.post(f"/api/v1/namespaces/{namespace}/services", json=service)).status_code == 201
        r = await c.post(f"/api/v1/namespaces/{namespace}/secrets",
                         json={"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
        assert r.status_code == 201
        r = await c.post(f"/api/v1/namespaces/{namespace}/configmaps",
                         json={"metadata": {"name": "cm"}, "data": {"k": "v"}})
        assert r.status_code == 201
        assert (await c.get("/api/v1/nodes")).status_code == 200
    evs = events()
    assert not [e for e in evs if e.get("objectRef", {}).get("resource") == "namespaces"]  # level None
    svc = next(e for e in evs if e.get("objectRef", {}).get("resource") == "services"
               and e["stage"] == "ResponseComplete")
    assert svc["level"] == "RequestResponse" and svc["user"]["username"] == INSECURE_SUPERUSER.name
    assert svc["requestObject"] == service and svc["responseObject"]["spec"]["clusterIP"]
    assert "annotations" not in svc  # nothing was authorized on the insecure port
    secret = [e for e in evs if e.get("objectRef", {}).get("resource") == "secrets"]
    assert [e["level"] for e in secret] == ["Metadata", "Metadata"]  # RequestReceived too: no omitStages
    assert [e["stage"] for e in secret] == ["RequestReceived", "ResponseComplete"]
    assert all("requestObject" not in e and "responseObject" not in e for e in secret)
    cm = [e for e in evs if e.get("objectRef", {}).get("resource") == "configmaps"]
    assert {e["level"] for e in cm} == {"Metadata"}  # Request asked, configmaps capped
    nodes = [e for e in evs if e.get("objectRef", {}).get("resource") == "nodes"]
    assert [e["stage"] for e in nodes] == ["RequestReceived", "ResponseComplete"] and nodes[0]["level"] == "Metadata"
    assert "responseStatus" not in nodes[0] and nodes[1]["responseStatus"]["code"] == 200
    assert b"hunter2" not in b"".join(orjson.dumps(e) for e in evs)


async def test_websocket_exec_is_long_running(tmp_path: Path) -> None:
    """A WebSocket exec: accepted (101) -> ResponseStarted, closed -> ResponseComplete, one auditID."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept", "subprotocol": "v5.channel.k8s.io"})
        await send({"type": "websocket.close", "code": 1000})

    sent: list[dict[str, Any]] = []
    log = tmp_path / "ws.log"
    wrapped = audit_middleware(insecure_app(app), log_path=str(log), policy_file="")
    scope = {"type": "websocket", "path": "/api/v1/namespaces/a/pods/p/exec", "query_string": b"command=sh",
             "headers": [(b"user-agent", b"kubectl/v1.32.0")], "client": ("127.0.0.1", 1), "subprotocols": []}

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)
    await wrapped(scope, receive, send)
    assert writer_for(str(log)).flush()
    evs = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [(e["stage"], e["verb"], e["responseStatus"]["code"]) for e in evs] == [
        ("ResponseStarted", "create", 101), ("ResponseComplete", "create", 101)]
    assert evs[0]["objectRef"]["subresource"] == "exec" and evs[0]["requestURI"].endswith("?command=sh")
    assert (b"audit-id", evs[0]["auditID"].encode()) in sent[0]["headers"]
