"""/metrics on the components' health listeners (machinery.healthz, machinery.delegatedauth).

In process: which client configs carry a credential, an open /metrics for a component without one,
and ``check_bearer``'s decision table over a stand-in reviewer (401 / 403 with Kubernetes' text /
500, answers cached). Against a real secured API server (tests/securecluster.py) with a
controller-manager, dns, proxy and ingress process, each with its own client certificate: /healthz stays
anonymous; /metrics refuses no token and a token the API server does not know (401) and a user
without the grant (403), and answers a member of system:monitoring and a cluster admin (200);
after a Deployment is created, the controller-manager's scrape shows its queues' work and its
leadership, and the dns server's shows CoreDNS' counters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Iterator

import httpx
import pytest

from machinery import errors
from machinery.client import ApiClient
from machinery.delegatedauth import DelegatedAuth, NonResource, has_credential
from machinery.healthz import serve_healthz
from machinery.kubeconfig import ClientConfig
from machinery.metrics import Sample, parse, value
from machinery.userinfo import UserInfo
from tests.cluster import free_port
from tests.securecluster import SecureCluster

METRICS = NonResource("get", "/metrics")


@pytest.mark.parametrize(("config", "expected"), [
    (None, False),
    ("http://127.0.0.1:8080", False),
    (ClientConfig(), False),
    (ClientConfig(token="t0k3n"), True),
    (ClientConfig(username="u", password="p"), True),
    (ClientConfig(cert_file="/x/client.crt", key_file="/x/client.key"), True),
    (ClientConfig(cert_data=b"-----BEGIN CERTIFICATE-----"), True),
])
def test_has_credential(config: ClientConfig | str | None, expected: bool) -> None:
    assert has_credential(config) is expected


async def test_without_a_credential_metrics_are_open_and_health_stays() -> None:
    port = free_port()
    async with ApiClient("http://127.0.0.1:1") as client:  # a plain-HTTP cluster: no credential
        runner = await serve_healthz("127.0.0.1", port, {}, client=client)
        assert runner is not None
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                r = await http.get("/metrics")
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
                assert "python_info" in parse(r.text)
                r = await http.get("/metrics", headers={"Accept": "application/openmetrics-text"})
                assert r.headers["content-type"].startswith("application/openmetrics-text")
                assert (await http.get("/healthz")).text == "ok"
        finally:
            await runner.cleanup()


class Reviewer:
    """Stands in for the component's ApiClient: answers reviews from tables, counts the calls."""

    def __init__(self) -> None:
        self.users = {"mon-token": UserInfo("prom", groups=("system:monitoring",)), "alice-token": UserInfo("alice")}
        self.calls = 0
        self.down = False

    async def request(self, method: str, path: str, *, json: Any = None, **_: Any) -> Any:
        self.calls += 1
        if self.down:
            raise errors.ServiceUnavailableError("the API server is down")
        spec = json["spec"]
        if path.endswith("tokenreviews"):
            user = self.users.get(spec["token"])
            return {"status": {"authenticated": True, "user": user.to_api()} if user else {"authenticated": False}}
        assert spec["nonResourceAttributes"] == {"verb": "get", "path": "/metrics"}
        return {"status": {"allowed": "system:monitoring" in spec.get("groups", [])}}


@pytest.mark.parametrize(("header", "code", "message"), [
    (None, 401, "Unauthorized"),
    ("Basic eDp5", 401, "Unauthorized"),
    ("Bearer garbage", 401, "Unauthorized"),
    ("Bearer alice-token", 403, 'forbidden: User "alice" cannot get path "/metrics"'),
    ("Bearer mon-token", None, None),
])
async def test_check_bearer(header: str | None, code: int | None, message: str | None) -> None:
    reviewer = Reviewer()
    auth = DelegatedAuth(reviewer)  # type: ignore[arg-type]
    for _ in range(2):  # the second time from the caches
        refused = await auth.check_bearer(header, METRICS)
        assert (refused.code, refused.message) == (code, message) if refused else code is None
    assert reviewer.calls == (0 if header in (None, "Basic eDp5") else 1 if header == "Bearer garbage" else 2)


async def test_check_bearer_when_the_api_server_is_away() -> None:
    reviewer = Reviewer()
    auth = DelegatedAuth(reviewer)  # type: ignore[arg-type]
    reviewer.down = True
    refused = await auth.check_bearer("Bearer mon-token", METRICS)
    assert refused is not None and refused.code == 401  # not cached: asked again next time
    reviewer.down = False
    assert await auth.authenticate("mon-token") is not None
    reviewer.down = True
    refused = await auth.check_bearer("Bearer mon-token", METRICS)
    assert refused is not None and refused.code == 500 and refused.to_status()["reason"] == "InternalError"


# ------------------------------------------------------------------ against a secured API server
TOKENS = {
    "alice-token-0123456789": ("alice", "1001", ()),
    "prom-token-0123456789": ("prom", "1003", ("system:monitoring",)),
    "root-token-0123456789": ("root", "1004", ("system:masters",)),
}


class Components:
    def __init__(self, cluster: SecureCluster, ports: dict[str, int]) -> None:
        self.cluster, self.ports = cluster, ports

    def get(self, component: str, path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(f"http://127.0.0.1:{self.ports[component]}{path}", headers=headers, timeout=30)

    def scrape(self, component: str) -> dict[str, list[Sample]]:
        r = self.get(component, "/metrics", "prom-token-0123456789")
        assert r.status_code == 200, r.text
        return parse(r.text)


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Components]:
    cluster = SecureCluster.start(tmp_path_factory.mktemp("component-metrics"), token_users=TOKENS)
    try:
        ports = {name: free_port() for name in ("controller-manager", "dns", "dns-udp", "proxy", "ingress",
                                                "ingress-http")}
        cluster.start_component("controller-manager", "--controllers", "deployment,replicaset",
                                "--healthz-port", str(ports["controller-manager"]))
        cluster.start_component("dns", "--bind-address", "127.0.0.1", "--port", str(ports["dns-udp"]), "--no-register",
                                "--health-port", str(ports["dns"]))
        cluster.start_component("proxy", "--health-port", str(ports["proxy"]))
        cluster.start_component("ingress", "--bind-address", "127.0.0.1", "--port", str(ports["ingress-http"]),
                                "--health-port", str(ports["ingress"]))
        c = Components(cluster, ports)
        deadline = time.monotonic() + 60
        for component in ("controller-manager", "dns", "proxy", "ingress"):
            while True:
                try:
                    if c.get(component, "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "\n".join(p.logs()[-2000:] for p in cluster.components)
                time.sleep(0.2)
        yield c
    finally:
        cluster.stop()


@pytest.mark.parametrize("component", ["controller-manager", "dns", "proxy", "ingress"])
def test_metrics_need_a_user_the_api_server_lets_get_them(components: Components, component: str) -> None:
    assert components.get(component, "/healthz").status_code == 200  # anonymous
    for token in (None, "not-a-token-the-api-server-knows"):
        r = components.get(component, "/metrics", token)
        assert r.status_code == 401, r.text
        assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
    r = components.get(component, "/metrics", "alice-token-0123456789")
    assert r.status_code == 403, r.text
    assert r.json()["reason"] == "Forbidden"
    assert r.json()["message"] == 'forbidden: User "alice" cannot get path "/metrics"'
    for token in ("prom-token-0123456789", "root-token-0123456789"):
        r = components.get(component, "/metrics", token)
        assert r.status_code == 200, r.text
        assert value(parse(r.text), "process_resident_memory_bytes") > 0


def test_the_controller_managers_queues_after_a_rollout(components: Components) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    with components.cluster.client("admin") as admin:
        r = admin.post("/apis/apps/v1/namespaces/default/deployments", json=deployment)
        assert r.status_code == 201, r.text
        deadline = time.monotonic() + 60
        while len(admin.get("/api/v1/namespaces/default/pods").json()["items"]) < 2:
            assert time.monotonic() < deadline, "the rollout made no pods"
            time.sleep(0.3)
    s = components.scrape("controller-manager")
    for queue in ("deployment", "replicaset"):
        assert value(s, "workqueue_adds_total", name=queue) >= 1
        assert value(s, "workqueue_work_duration_seconds_count", name=queue) >= 1
        assert value(s, "workqueue_queue_duration_seconds_count", name=queue) >= 1
        assert 0 <= value(s, "workqueue_depth", name=queue) < 10
        assert value(s, "workqueue_longest_running_processor_seconds", name=queue) < 60
    assert value(s, "leader_election_master_status", name="kube-controller-manager") == 1


async def test_the_dns_servers_counters(components: Components) -> None:
    from dnslib import DNSRecord  # type: ignore[import-untyped]

    from traffic.dns.server import _exchange_udp

    port = components.ports["dns-udp"]
    query = DNSRecord.question("kubernetes.default.svc.cluster.local", "A")
    reply = DNSRecord.parse(await asyncio.wait_for(_exchange_udp("127.0.0.1", port, bytes(query.pack())), 5))
    rcode = {0: "NOERROR", 3: "NXDOMAIN"}[reply.header.rcode]  # the zone is synced: never SERVFAIL
    s = components.scrape("dns")
    server = f"dns://127.0.0.1:{port}"
    assert value(s, "coredns_dns_requests_total", server=server, zone="cluster.local.", proto="udp", type="A") >= 1
    assert value(s, "coredns_dns_responses_total", server=server, zone="cluster.local.", rcode=rcode) >= 1



def test_a_service_account_bound_to_system_monitoring_scrapes(components: Components) -> None:
    """The README's recipe: a ServiceAccount, a binding to system:monitoring, a TokenRequest."""
    with components.cluster.client("admin") as admin:
        assert admin.post("/api/v1/namespaces/kube-system/serviceaccounts",
                          json={"metadata": {"name": "prometheus"}}).status_code == 201
        token = admin.post("/api/v1/namespaces/kube-system/serviceaccounts/prometheus/token",
                           json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        assert token.status_code == 201, token.text
        token_value = token.json()["status"]["token"]
        assert components.get("controller-manager", "/metrics", token_value).status_code == 403
        r = admin.post("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", json={
            "metadata": {"name": "prometheus-metrics"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:monitoring"},
            "subjects": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "kube-system"}]})
        assert r.status_code == 201, r.text
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": "system:serviceaccount:kube-system:prometheus",
                           "groups": ["system:serviceaccounts", "system:authenticated"],
                           "nonResourceAttributes": {"verb": "get", "path": "/metrics"}}}
        deadline = time.monotonic() + 30
        while not admin.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json=review) \
                .json()["status"].get("allowed"):  # until the API server's authorizer sees the binding
            assert time.monotonic() < deadline
            time.sleep(0.2)
    # The controller-manager cached the denial for 30 s (Kubernetes' unauthorized TTL); the ingress asks now.
    r = components.get("ingress", "/metrics", token_value)
    assert r.status_code == 200, r.text
