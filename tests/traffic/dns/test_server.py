"""``minik8s dns`` as a process against a real etcd and apiserver, queried over UDP and TCP on loopback.

One cluster for the module: etcd, ``minik8s apiserver`` (service range 172.28.128.0/17, so the
default kube-dns ClusterIP 172.28.128.10 is inside it) and ``minik8s dns`` on 127.0.0.1 with free
ports. Its upstreams are a small dnslib server in this process (answers ``*.example.test``, sits on
``blackhole.test`` for 3 s) and then a loopback port nothing listens on, so "forwarded", "upstream
too slow" and "upstream unreachable" are all real. Services are selector-less with hand-written
EndpointSlices: no controller-manager, no Docker. Addresses in records are only data: nothing is
sent to them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator

import httpx
import pytest
from dnslib import QTYPE, RCODE, RR, DNSRecord  # type: ignore[import-untyped]
from dnslib.server import BaseResolver, DNSServer  # type: ignore[import-untyped]

from cli.processes import wait_http
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.waiting import wait_for

D = "cluster.local"
SERVICE_RANGE = "172.28.128.0/17"
ADVERTISE = "172.28.0.53"  # registered only; no packet goes there


class _Upstream(BaseResolver):
    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        name = str(request.q.qname).lower()
        if name.startswith("blackhole.test"):
            time.sleep(3)
        reply = request.reply()
        if name.endswith("example.test.") and request.q.qtype == QTYPE.A:
            reply.add_answer(*RR.fromZone(f"{name} 60 IN A 198.51.100.7"))
        elif not name.endswith("example.test."):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class _Quiet:
    def __getattr__(self, _name: str) -> Callable[..., None]:
        return lambda *a, **k: None


class DnsCluster:
    def __init__(self) -> None:
        self.etcd = Etcd.start()
        self.api = ApiServerProcess.start(self.etcd.url, "--service-cluster-ip-range", SERVICE_RANGE)
        self.upstream_port = free_port()
        self.upstreams = [DNSServer(_Upstream(), address="127.0.0.1", port=self.upstream_port, tcp=tcp,
                                    logger=_Quiet()) for tcp in (False, True)]
        for u in self.upstreams:
            u.start_thread()
        self.dead_port = free_port()
        self.port, self.health_port = free_port(), free_port()
        self.dns = ComponentProcess.start(
            "dns", "--server", self.api.url, "--bind-address", "127.0.0.1", "--port", str(self.port),
            "--health-port", str(self.health_port), "--advertise-address", ADVERTISE,
            "--upstream", f"127.0.0.1:{self.upstream_port}", "--upstream", f"127.0.0.1:{self.dead_port}",
            log_level="debug")
        self.http = httpx.Client(base_url=self.api.url, timeout=10)
        wait_http(f"http://127.0.0.1:{self.health_port}/healthz", self.dns.proc, self.dns.log)

    def stop(self) -> None:
        self.http.close()
        self.dns.stop()
        for u in self.upstreams:
            u.stop()
        self.api.stop()
        self.etcd.stop()

    def logs(self) -> str:
        return f"--- dns (exit {self.dns.proc.poll()}):\n{self.dns.logs()[-5000:]}"

    def ask(self, name: str, qtype: str = "A", *, tcp: bool = False) -> tuple[DNSRecord, float]:
        start = time.monotonic()
        raw = DNSRecord.question(name, qtype).send("127.0.0.1", self.port, tcp=tcp, timeout=2)
        elapsed = time.monotonic() - start
        return DNSRecord.parse(raw), elapsed

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def service(self, name: str, *, ns: str = "default", **spec: Any) -> dict[str, Any]:
        spec.setdefault("ports", [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
        return self.post(f"/api/v1/namespaces/{ns}/services",
                         {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})

    def slice(self, service: str, endpoints: list[dict[str, Any]], *, ns: str = "default",
              ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return self.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{service}-{uuid.uuid4().hex[:5]}", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]})


@pytest.fixture(scope="module")
def cluster() -> Iterator[DnsCluster]:
    c = DnsCluster()
    try:
        yield c
    finally:
        c.stop()


def rrs(reply: DNSRecord, qtype: str = "A") -> list[str]:
    return sorted(str(r.rdata) for r in reply.rr if QTYPE.get(r.rtype) == qtype)


def ep(ip: str, *, ready: bool = True, hostname: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


def within(check: Callable[[], Any], seconds: float, what: str, cluster: DnsCluster) -> float:
    """Seconds until ``check()`` is truthy (polling every 20 ms); fails after ``seconds``."""
    start = time.monotonic()
    wait_for(check, seconds, what, cluster.logs, interval=0.02)
    return time.monotonic() - start


def test_kube_dns_service_slice_and_endpoints_are_registered(cluster: DnsCluster) -> None:
    def registered() -> Any:
        svc = cluster.http.get("/api/v1/namespaces/kube-system/services/kube-dns")
        eps = cluster.http.get("/api/v1/namespaces/kube-system/endpoints/kube-dns")
        sl = cluster.http.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns")
        return (svc.json(), eps.json(), sl.json()) if 200 == svc.status_code == eps.status_code == sl.status_code \
            else None

    svc, eps, sl = wait_for(registered, 10, "kube-dns registered", cluster.logs)
    assert svc["spec"]["clusterIP"] == "172.28.128.10"
    assert "selector" not in svc["spec"]
    assert svc["metadata"]["labels"]["k8s-app"] == "kube-dns"
    assert sorted((p["name"], p["port"], p["protocol"], p["targetPort"]) for p in svc["spec"]["ports"]) == [
        ("dns", 53, "UDP", cluster.port), ("dns-tcp", 53, "TCP", cluster.port)]
    assert sl["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "minik8s-dns"
    assert [e["addresses"] for e in sl["endpoints"]] == [[ADVERTISE]]
    assert sorted((p["name"], p["port"], p["protocol"]) for p in sl["ports"]) == [
        ("dns", cluster.port, "UDP"), ("dns-tcp", cluster.port, "TCP")]
    assert sl["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert eps["subsets"][0]["addresses"] == [{"ip": ADVERTISE}]
    # DNS answers for itself (the watch brings the Service within a second)
    within(lambda: rrs(cluster.ask(f"kube-dns.kube-system.svc.{D}")[0]) == ["172.28.128.10"], 1.0,
           "kube-dns resolves", cluster)

    # deleted: it comes back (same ClusterIP, a new uid), and the slice follows the new owner
    assert cluster.http.delete("/api/v1/namespaces/kube-system/services/kube-dns").status_code == 200
    old_uid = svc["metadata"]["uid"]

    def recreated() -> Any:
        again = cluster.http.get("/api/v1/namespaces/kube-system/services/kube-dns")
        s = cluster.http.get("/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices/kube-dns")
        if again.status_code != 200 or s.status_code != 200 or again.json()["metadata"]["uid"] == old_uid:
            return None
        return again.json()["metadata"]["uid"] == s.json()["metadata"]["ownerReferences"][0]["uid"] and again.json()

    again = wait_for(recreated, 10, "kube-dns created again", cluster.logs)
    assert again["spec"]["clusterIP"] == "172.28.128.10"


def test_health(cluster: DnsCluster) -> None:
    assert httpx.get(f"http://127.0.0.1:{cluster.health_port}/healthz").status_code == 200


def test_cluster_ip_service_over_udp_and_tcp(cluster: DnsCluster) -> None:
    ip = cluster.service("web")["spec"]["clusterIP"]
    name = f"web.default.svc.{D}"
    within(lambda: rrs(cluster.ask(name)[0]) == [ip], 1.0, "web resolves", cluster)
    for tcp in (False, True):
        reply, elapsed = cluster.ask(name, tcp=tcp)
        assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1
        assert rrs(reply) == [ip] and reply.rr[0].ttl == 5
        assert elapsed < 0.2
        six, _ = cluster.ask(name, "AAAA", tcp=tcp)  # exists, no IPv6: NOERROR without answers
        assert six.header.rcode == RCODE.NOERROR and six.rr == []
    srv, _ = cluster.ask(f"_http._tcp.{name}", "SRV")
    assert rrs(srv, "SRV") == [f"0 100 80 {name}."]
    assert [str(r.rdata) for r in srv.ar if r.rtype == QTYPE.A] == [ip]  # the target's address comes along
    ptr, _ = cluster.ask(".".join(reversed(ip.split("."))) + ".in-addr.arpa", "PTR")
    assert rrs(ptr, "PTR") == [f"{name}."]
    mixed, _ = cluster.ask(f"WeB.DeFault.SVC.{D.upper()}")
    assert rrs(mixed) == [ip] and str(mixed.rr[0].rname) == f"WeB.DeFault.SVC.{D.upper()}."


def test_headless_service_hostnames_and_srv(cluster: DnsCluster) -> None:
    cluster.service("db", clusterIP="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}])
    cluster.slice("db", [ep("172.28.0.11", hostname="db-0"), ep("172.28.0.12", hostname="db-1"),
                         ep("172.28.0.13", ready=False, hostname="db-2")],
                  ports=[{"name": "pg", "port": 15432, "protocol": "TCP"}])
    name = f"db.default.svc.{D}"
    within(lambda: rrs(cluster.ask(name)[0]) == ["172.28.0.11", "172.28.0.12"], 1.0, "headless A", cluster)
    assert rrs(cluster.ask(f"db-1.{name}")[0]) == ["172.28.0.12"]
    assert cluster.ask(f"db-2.{name}")[0].header.rcode == RCODE.NXDOMAIN  # not ready
    srv, _ = cluster.ask(f"_pg._tcp.{name}", "SRV", tcp=True)
    assert rrs(srv, "SRV") == [f"0 50 15432 db-0.{name}.", f"0 50 15432 db-1.{name}."]

    cluster.service("db-all", clusterIP="None", publishNotReadyAddresses=True)
    cluster.slice("db-all", [ep("172.28.0.21"), ep("172.28.0.22", ready=False)])
    within(lambda: rrs(cluster.ask(f"db-all.default.svc.{D}")[0]) == ["172.28.0.21", "172.28.0.22"], 1.0,
           "publishNotReadyAddresses lists every endpoint", cluster)
    assert rrs(cluster.ask(f"172-28-0-22.db-all.default.svc.{D}")[0]) == ["172.28.0.22"]


def test_external_name_pod_names_and_the_schema_version(cluster: DnsCluster) -> None:
    cluster.service("ext", type="ExternalName", externalName="www.example.test", ports=[])
    name = f"ext.default.svc.{D}"
    within(lambda: cluster.ask(name)[0].rr, 1.0, "ExternalName answers", cluster)
    reply, _ = cluster.ask(name)
    assert [(QTYPE.get(r.rtype), str(r.rdata)) for r in reply.rr] == [
        ("CNAME", "www.example.test."), ("A", "198.51.100.7")]  # the target resolved upstream, as CoreDNS does
    pod, elapsed = cluster.ask(f"172-28-0-99.default.pod.{D}")
    assert rrs(pod) == ["172.28.0.99"] and elapsed < 0.2
    version, _ = cluster.ask(f"dns-version.{D}", "TXT")
    assert rrs(version, "TXT") == ['"1.1.0"']


@pytest.mark.parametrize("name,qtype", [
    (f"nope.default.svc.{D}", "A"), (f"nope.default.svc.{D}", "AAAA"), (f"web.nowhere.svc.{D}", "A"),
    (f"no-ip.default.pod.{D}", "A"), (f"nothing.{D}", "A"), ("web", "A"), ("localhost", "AAAA")])
def test_unknown_names_fail_at_once(cluster: DnsCluster, name: str, qtype: str) -> None:
    for tcp in (False, True):
        reply, elapsed = cluster.ask(name, qtype, tcp=tcp)
        assert reply.header.rcode == RCODE.NXDOMAIN, reply
        assert elapsed < 0.2


def test_other_names_are_forwarded_or_fail_fast(cluster: DnsCluster) -> None:
    for tcp in (False, True):
        reply, elapsed = cluster.ask("www.example.test", tcp=tcp)
        assert rrs(reply) == ["198.51.100.7"] and elapsed < 0.5
        missing, _ = cluster.ask("missing.org", tcp=tcp)
        assert missing.header.rcode == RCODE.NXDOMAIN  # the upstream's own answer
    # the first upstream sits on it, the second is not there: SERVFAIL, well before a client gives up
    for tcp in (False, True):
        reply, elapsed = cluster.ask("blackhole.test", tcp=tcp)
        assert reply.header.rcode == RCODE.SERVFAIL
        assert elapsed < 1.5, elapsed


def test_changes_are_visible_within_a_second(cluster: DnsCluster) -> None:
    ns = "default"
    ip = cluster.service("late", ns=ns)["spec"]["clusterIP"]
    name = f"late.{ns}.svc.{D}"
    took = within(lambda: rrs(cluster.ask(name)[0]) == [ip], 1.0, "a new Service resolves", cluster)
    assert took < 1.0

    assert cluster.http.delete(f"/api/v1/namespaces/{ns}/services/late").status_code == 200
    within(lambda: cluster.ask(name)[0].header.rcode == RCODE.NXDOMAIN, 1.0, "a deleted Service is gone", cluster)

    cluster.service("flaky", clusterIP="None")
    s = cluster.slice("flaky", [ep("172.28.0.31"), ep("172.28.0.32")])
    name = f"flaky.default.svc.{D}"
    within(lambda: rrs(cluster.ask(name)[0]) == ["172.28.0.31", "172.28.0.32"], 1.0, "both endpoints", cluster)
    s["endpoints"][1]["conditions"] = {"ready": False}
    r = cluster.http.put(f"/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/{s['metadata']['name']}",
                         json=s)
    assert r.status_code == 200, r.text
    within(lambda: rrs(cluster.ask(name)[0]) == ["172.28.0.31"], 1.0, "a not-ready endpoint leaves", cluster)


def test_a_truncated_udp_answer_is_complete_over_tcp(cluster: DnsCluster) -> None:
    ips = [f"172.28.1.{i}" for i in range(1, 61)]
    cluster.service("big", clusterIP="None")
    cluster.slice("big", [ep(ip) for ip in ips])
    name = f"big.default.svc.{D}"
    within(lambda: len(cluster.ask(name, tcp=True)[0].rr) == 60, 1.0, "60 endpoints", cluster)
    raw = DNSRecord.question(name).send("127.0.0.1", cluster.port, timeout=2)  # no TCP fallback: see the TC bit
    udp = DNSRecord.parse(raw)
    assert udp.header.tc == 1 and len(raw) <= 512
    assert rrs(cluster.ask(name, tcp=True)[0]) == sorted(ips)
