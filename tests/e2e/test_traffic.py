"""Issue 11's acceptance, end to end, with real Docker pods and real packets on this machine only:
Services by DNS name from a pod, NodePort from the host, scaling and readiness, headless names,
the Ingress. The cluster (tests/e2e/trafficcluster.py) is shared by the module; every test works
in its own namespace.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any, Iterator

import httpx
import pytest

from tests.dockertest import checked_runtime
from tests.dockertest import IMAGE
from tests.e2e.trafficcluster import TrafficCluster, client_pod, web_deployment

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrafficCluster]:
    rt = checked_runtime()
    c = TrafficCluster(tmp_path_factory.mktemp("traffic"), rt)
    try:
        def nodes_ready() -> bool:
            items = c.http.get("/api/v1/nodes").json().get("items") or []
            return len(items) == len(c.nodes) and all(
                any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions") or [])
                for n in items)
        c.wait("both nodes Ready", nodes_ready, 60)
        yield c
    finally:
        c.stop()
        rt.close()


@pytest.fixture
def ns(cluster: TrafficCluster) -> Iterator[str]:
    name = cluster.namespace()
    yield name
    cluster.http.delete(f"/api/v1/namespaces/{name}")


def service(ns: str, name: str = "web", *, app: str = "web", type_: str = "ClusterIP", extra: str = "") -> str:
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  type: {type_}
  selector: {{app: {app}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
{extra}"""


def start_web(c: TrafficCluster, ns: str, *, replicas: int = 2, name: str = "web") -> list[str]:
    c.apply(web_deployment(ns, name, replicas))
    pods = c.wait(f"{replicas} ready {name} pods", lambda: (lambda p: p if len(p) == replicas else None)(
        c.ready_pods(ns, f"app={name}")), 60)
    return sorted(p["metadata"]["name"] for p in pods)


def start_client(c: TrafficCluster, ns: str) -> None:
    c.apply(client_pod(ns))
    c.wait("the client pod running", lambda: c.ready_pods(ns, "") and any(
        p["metadata"]["name"] == "client" for p in c.ready_pods(ns, "")), 60)


def fetch_many(c: TrafficCluster, ns: str, url: str, n: int = 20) -> list[str]:
    code, out, _ = c.sh(ns, "client", f"for i in $(seq {n}); do timeout 3 wget -qO- {url} || echo FAILED; done",
                        timeout=60)
    return [line.strip() for line in out.splitlines() if line.strip()]


def endpoints_count(c: TrafficCluster, ns: str, name: str) -> int:
    items = c.http.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                       params={"labelSelector": f"kubernetes.io/service-name={name}"}).json()["items"]
    return sum(1 for s in items for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready"))


def test_a_service_by_dns_name_reaches_both_replicas_from_a_pod_and_through_the_nodeport(
        cluster: TrafficCluster, ns: str) -> None:
    c = cluster
    c.apply(service(ns, type_="NodePort"))
    pods = start_web(c, ns)
    start_client(c, ns)
    svc = c.get(f"/api/v1/namespaces/{ns}/services/web")
    ip = svc["spec"]["clusterIP"]
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network(c.service_range)
    c.wait("both endpoints ready", lambda: endpoints_count(c, ns, "web") == 2)
    for name in ("web", f"web.{ns}", f"web.{ns}.svc.cluster.local", ip):
        seen = fetch_many(c, ns, f"http://{name}/")
        assert set(seen) == set(pods), f"{name}: {seen}"
    # The Service variables of the Services that existed when the client started.
    _, out, _ = c.sh(ns, "client", "echo $WEB_SERVICE_HOST:$WEB_SERVICE_PORT:$WEB_SERVICE_PORT_HTTP")
    assert out.strip() == f"{ip}:80:80"
    node_port = svc["spec"]["ports"][0]["nodePort"]
    with httpx.Client(timeout=5) as h:
        seen_host = {h.get(f"http://127.0.0.1:{node_port}/").text.strip() for _ in range(20)}
    assert seen_host == set(pods)
    # ... and at the nodes' InternalIP (here both nodes' is the pod network's gateway, this host's).
    for node in c.http.get("/api/v1/nodes").json()["items"]:
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")

        def via_node() -> set[str]:
            with httpx.Client(timeout=5) as h:
                return {h.get(f"http://{ip}:{node_port}/").text.strip() for _ in range(20)}
        c.wait(f"both replicas through {ip}:{node_port}", lambda: via_node() == set(pods), 10)


def test_scaling_to_zero_refuses_at_once_and_back_succeeds_within_seconds(cluster: TrafficCluster, ns: str) -> None:
    c = cluster
    c.apply(service(ns))
    start_web(c, ns)
    start_client(c, ns)
    c.wait("both endpoints ready", lambda: endpoints_count(c, ns, "web") == 2)
    assert fetch_many(c, ns, "http://web/", 2) != ["FAILED", "FAILED"]
    c.kubectl("scale", "deployment/web", "-n", ns, "--replicas=0")
    c.wait("no endpoint left", lambda: endpoints_count(c, ns, "web") == 0)

    def refused() -> float | None:
        # A wget that `timeout 5` ended went out before the proxy's rules followed the empty
        # EndpointSlice (still sent to the pods that went away): not the answer, try again.
        code, out, took = c.sh(ns, "client", "timeout 5 wget -qO- http://web/")
        return took if code != 0 and took < 4.5 else None
    took = c.wait("connections to the Service refused", refused, 20)
    assert took < 1.5, f"a Service without endpoints must refuse at once, took {took:.2f}s"
    c.kubectl("scale", "deployment/web", "-n", ns, "--replicas=2")
    started = time.monotonic()
    c.wait("the Service answering again", lambda: fetch_many(c, ns, "http://web/", 1) != ["FAILED"], 60)
    assert time.monotonic() - started < 60


def test_a_pod_failing_readiness_stops_receiving_traffic(cluster: TrafficCluster, ns: str) -> None:
    """periodSeconds 1, failureThreshold 1: out of rotation within a probe period plus a second."""
    c = cluster
    c.apply(service(ns))
    pods = start_web(c, ns)
    start_client(c, ns)
    c.wait("both endpoints ready", lambda: endpoints_count(c, ns, "web") == 2)
    assert set(fetch_many(c, ns, "http://web/")) == set(pods)
    victim = pods[0]
    c.sh(ns, victim, "rm /tmp/ready")
    started = time.monotonic()
    gone_at: list[float] = []

    def victim_gone() -> bool:
        batch_start = time.monotonic() - started
        seen = fetch_many(c, ns, "http://web/", 10)
        if victim in seen or "FAILED" in seen:
            gone_at.clear()
            return False
        gone_at.append(batch_start)
        return len(gone_at) >= 2  # two batches in a row without it: not luck
    c.wait("the unready pod out of rotation", victim_gone, 20)
    assert gone_at[0] <= 1 + 1 + 0.5, f"still receiving traffic {gone_at[0]:.2f}s after failing its probe"
    assert set(fetch_many(c, ns, "http://web/", 10)) == {pods[1]}


def test_a_headless_service_resolves_to_the_pod_ips_and_unknown_names_fail_fast(
        cluster: TrafficCluster, ns: str) -> None:
    c = cluster
    c.apply(service(ns, "web-headless", extra="  clusterIP: None\n"))
    start_web(c, ns)
    start_client(c, ns)
    ips = sorted(p["status"]["podIP"] for p in c.ready_pods(ns, "app=web"))

    def resolved() -> list[str] | None:
        _, out, _ = c.sh(ns, "client", "nslookup web-headless")
        found = sorted(line.split()[-1] for line in out.splitlines()
                       if line.startswith("Address") and "#" not in line and ":53" not in line)
        return found if found == ips else None
    c.wait(f"web-headless resolving to {ips}", resolved, 20)
    code, out, took = c.sh(ns, "client", "nslookup no-such-service")
    assert code != 0, out
    assert took < 1.0, f"an unknown name must fail fast, took {took:.2f}s"
    code, out, took = c.sh(ns, "client", f"nslookup no-such-service.{ns}.svc.cluster.local")
    assert code != 0 and took < 1.0, (out, took)


INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {{name: routes, namespace: {ns}}}
spec:
  rules:
  - host: a.example.test
    http:
      paths:
      - {{path: /one, pathType: Prefix, backend: {{service: {{name: {a1}, port: {{number: 80}}}}}}}}
      - {{path: /two, pathType: Prefix, backend: {{service: {{name: {a2}, port: {{name: http}}}}}}}}
  - host: b.example.test
    http:
      paths:
      - {{path: /, pathType: Prefix, backend: {{service: {{name: {b}, port: {{number: 80}}}}}}}}
"""


def test_an_ingress_routes_by_host_and_path_and_follows_changes(cluster: TrafficCluster, ns: str) -> None:
    c = cluster
    backends: dict[str, list[str]] = {}
    for name in ("one", "two"):
        c.apply(service(ns, name, app=name))
        backends[name] = start_web(c, ns, replicas=1, name=name)
    c.apply(INGRESS.format(ns=ns, a1="one", a2="two", b="two"))
    url = f"http://127.0.0.1:{c.ingress_port}"

    def get(host: str, path: str) -> tuple[int, str]:
        r = httpx.get(url + path, headers={"Host": host}, timeout=5)
        return r.status_code, r.text.strip()

    def routed() -> bool:
        return (get("a.example.test", "/one/") == (200, backends["one"][0])
                and get("a.example.test", "/two/") == (200, backends["two"][0])
                and get("b.example.test", "/") == (200, backends["two"][0]))
    c.wait("the Ingress routing", routed, 20)
    assert get("a.example.test", "/")[0] == 404  # no path matches on that host
    assert get("nobody.example.test", "/")[0] == 404
    c.apply(INGRESS.format(ns=ns, a1="two", a2="one", b="one"))
    c.wait("the changed routing", lambda: get("a.example.test", "/one/") == (200, backends["two"][0])
           and get("b.example.test", "/") == (200, backends["one"][0]), 10)
    def lb_status() -> list[Any] | None:
        ing = c.get(f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/routes")
        return ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or None
    assert c.wait("the Ingress status", lb_status, 10) == [{"ip": "127.0.0.1"}]


def test_a_new_pod_reaches_services_from_its_first_second(cluster: TrafficCluster, ns: str) -> None:
    """The kubelet writes the pod's Service table before its first container starts: a pod whose
    very first command calls the Service (by name: cluster DNS through the kube-dns ClusterIP, then
    the Service's ClusterIP) succeeds on that first try."""
    c = cluster
    c.apply(service(ns))
    pods = start_web(c, ns)
    c.wait("both endpoints ready", lambda: endpoints_count(c, ns, "web") == 2)
    c.apply(f"""
apiVersion: v1
kind: Pod
metadata: {{name: first-second, namespace: {ns}}}
spec:
  restartPolicy: Never
  containers:
  - name: call
    image: {IMAGE}
    command: ["sh", "-c", "timeout 3 wget -qO- http://web/ && timeout 3 wget -qO- http://$WEB_SERVICE_HOST/"]
""")

    def finished() -> dict[str, Any] | None:
        pod = c.get(f"/api/v1/namespaces/{ns}/pods/first-second")
        return pod if pod["status"].get("phase") in ("Succeeded", "Failed") else None
    pod = c.wait("the pod's first call finished", finished, 60)
    logs = c.http.get(f"/api/v1/namespaces/{ns}/pods/first-second/log").text
    assert pod["status"]["phase"] == "Succeeded", logs
    assert {line.strip() for line in logs.splitlines() if line.strip()} <= set(pods), logs


def test_client_ip_affinity_keeps_a_pod_on_one_endpoint(cluster: TrafficCluster, ns: str) -> None:
    c = cluster
    c.apply(service(ns, "sticky", extra="  sessionAffinity: ClientIP\n"))
    pods = start_web(c, ns)
    start_client(c, ns)
    c.wait("both endpoints ready", lambda: endpoints_count(c, ns, "sticky") == 2)
    seen = fetch_many(c, ns, "http://sticky/", 12)
    assert len(set(seen)) == 1 and seen[0] in pods, seen


def test_a_load_balancer_service_answers_on_its_address_from_the_host(cluster: TrafficCluster, ns: str) -> None:
    c = cluster
    c.apply(service(ns, "lb", type_="LoadBalancer"))
    pods = start_web(c, ns)

    def address() -> str | None:
        ing = ((c.get(f"/api/v1/namespaces/{ns}/services/lb").get("status") or {}).get("loadBalancer") or {})
        ips = [i.get("ip") for i in ing.get("ingress") or []]
        return ips[0] if ips else None
    ip = c.wait("a LoadBalancer address", address, 20)
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("127.240.0.0/16")

    def answers() -> set[str]:
        seen = set()
        for _ in range(12):
            try:
                seen.add(httpx.get(f"http://{ip}:80/", timeout=3).text.strip())
            except httpx.HTTPError:
                seen.add("FAILED")
        return seen
    c.wait(f"both replicas through {ip}:80", lambda: answers() == set(pods), 30)
