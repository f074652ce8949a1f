"""The web console's server against a real secured API server (tests/securecluster.py): logins with
a token or a kubeconfig, the user's own credential on every relayed request (RBAC decides; the
API's 403 message reaches the page), watch streams relayed as they happen, cross-site requests
refused, logout (console/server.py, sessions.py, upstream.py; a real `minik8s console` process)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from tests.cluster import free_port
from tests.securecluster import SecureCluster
from tests.waiting import wait_for

ALICE = "alice-token-0123456789"


@pytest.fixture(scope="module")
def console(secure_cluster: SecureCluster) -> Iterator[str]:
    port = free_port()
    proc = secure_cluster.start_component("console", "--port", str(port), who="admin")
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(url + "/healthz").status_code == 200, 30, "the console's /healthz",
             lambda: proc.logs()[-2000:])
    yield url


def page(url: str) -> httpx.Client:
    """A browser of the console's page: same-origin requests (its Origin header)."""
    return httpx.Client(base_url=url, headers={"Origin": url}, timeout=30)


def login(url: str, body: dict[str, Any]) -> httpx.Client:
    c = page(url)
    r = c.post("/console/login", json=body)
    assert r.status_code == 200, r.text
    return c


def admin_kubeconfig(c: SecureCluster) -> str:
    return Path(c.kubeconfig("admin")).read_text()


def test_the_page_and_health_are_served_without_a_login(console: str) -> None:
    r = httpx.get(console + "/")
    assert r.status_code == 200 and 'src="/static/app.js"' in r.text
    assert httpx.get(console + "/static/store.js").status_code == 200
    assert httpx.get(console + "/healthz").text == "ok"


def test_nothing_reaches_the_api_without_a_login(console: str) -> None:
    r = page(console).get("/api/v1/pods")
    assert r.status_code == 401 and r.json()["message"] == "log in to the console first"
    assert page(console).get("/console/session").status_code == 401


def test_a_token_the_api_server_refuses_is_no_login(console: str) -> None:
    r = page(console).post("/console/login", json={"token": "not-a-token"})
    assert r.status_code == 401
    assert r.json()["message"].startswith("the API server refused this credential")
    r = page(console).post("/console/login", json={})
    assert r.status_code == 400 and r.json()["message"] == "log in with a bearer token or a kubeconfig"


def test_a_token_user_sees_what_rbac_allows_and_gets_the_apis_403(console: str, secure_cluster: SecureCluster) -> None:
    ns = f"console-{uuid.uuid4().hex[:6]}"
    with secure_cluster.client("admin") as admin:
        assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
        admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles", json={
            "metadata": {"name": "read"},
            "rules": [{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list", "watch"]}]})
        admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", json={
            "metadata": {"name": "alice-read"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                            "name": "read"},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]})
        admin.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "settings"}, "data": {"a": "1"}})
    alice = login(console, {"token": ALICE})
    assert alice.get("/console/session").json() == {"username": "alice", "groups": ["system:authenticated"]}
    assert "HttpOnly" in alice.post("/console/login", json={"token": ALICE}).headers["set-cookie"]
    deadline = time.monotonic() + 10
    while (r := alice.get(f"/api/v1/namespaces/{ns}/configmaps")).status_code == 403 and time.monotonic() < deadline:
        time.sleep(0.2)  # the RoleBinding reaches the authorizer's cache
    assert r.status_code == 200 and [i["metadata"]["name"] for i in r.json()["items"]] == ["settings"]
    r = alice.get("/api/v1/namespaces/default/configmaps")
    assert r.status_code == 403
    assert r.json()["message"] == ('configmaps is forbidden: User "alice" cannot list resource "configmaps" '
                                   'in API group "" in the namespace "default"')
    r = alice.delete(f"/api/v1/namespaces/{ns}/configmaps/settings")
    assert r.status_code == 403 and 'cannot delete resource "configmaps"' in r.json()["message"]


def test_requests_from_another_site_are_refused(console: str) -> None:
    alice = login(console, {"token": ALICE})
    r = alice.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "x"}},
                   headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "console's own page" in r.json()["message"]
    r = httpx.post(console + "/console/login", json={"token": ALICE}, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403


def test_a_kubeconfig_with_an_embedded_certificate_logs_in_and_watches_live(
        console: str, secure_cluster: SecureCluster) -> None:
    admin = login(console, {"kubeconfig": admin_kubeconfig(secure_cluster)})
    assert admin.get("/console/session").json()["username"] == "kubernetes-admin"
    ns = f"console-{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    rv = admin.get(f"/api/v1/namespaces/{ns}/configmaps").json()["metadata"]["resourceVersion"]
    seen: list[tuple[str, str, float]] = []

    def follow() -> None:
        with admin.stream("GET", f"/api/v1/namespaces/{ns}/configmaps",
                          params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "10"}) as r:
            for line in r.iter_lines():
                if line:
                    ev = json.loads(line)
                    seen.append((ev["type"], ev["object"]["metadata"]["name"], time.monotonic()))
                    if len(seen) == 2:
                        return
    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.5)
    created = time.monotonic()
    with secure_cluster.client("admin") as direct:
        assert direct.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "one"}}).status_code == 201
        deadline = time.monotonic() + 5
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen and seen[0][:2] == ("ADDED", "one")
        assert seen[0][2] - created < 1.0  # relayed as it happened, not when the stream ends
        direct.delete(f"/api/v1/namespaces/{ns}/configmaps/one")
    t.join(15)
    assert [s[:2] for s in seen] == [("ADDED", "one"), ("DELETED", "one")]


def test_a_kubeconfig_naming_its_certificate_by_file_is_refused_with_how_to_embed_it(
        console: str, secure_cluster: SecureCluster, tmp_path: Path) -> None:
    doc = yaml.safe_load(admin_kubeconfig(secure_cluster))
    user = doc["users"][0]["user"]
    user["client-certificate"], user["client-key"] = "/home/me/admin.crt", "/home/me/admin.key"
    del user["client-certificate-data"], user["client-key-data"]
    r = page(console).post("/console/login", json={"kubeconfig": yaml.safe_dump(doc)})
    assert r.status_code == 400 and "embed it" in r.json()["message"]
    r = page(console).post("/console/login", json={"kubeconfig": "users: [unclosed"})
    assert r.status_code == 400 and r.json()["message"].startswith("the kubeconfig is not YAML")


def test_logout_ends_the_session(console: str) -> None:
    alice = login(console, {"token": ALICE})
    assert alice.post("/console/logout").status_code == 200
    assert alice.get("/console/session").status_code == 401
    assert alice.get("/api/v1/namespaces/default/pods").status_code == 401
