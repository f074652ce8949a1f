"""Service ClusterIP and NodePort allocation kept in etcd (apiserver/allocators.py).

Two apiserver processes on one etcd of their own, with a tiny service range (a /28: 14 usable
addresses, the first taken by default/kubernetes) and a tiny node port range, so that races and a
full range are cheap to provoke. Pure helpers are tested without I/O.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid
from typing import Any, Iterator

import httpx
import orjson
import pytest

from apiserver.allocators import (IP_PREFIX, PORT_PREFIX, AllocationRepair, Owner, ServiceAllocations,
                                  ip_record, parse_claim, parse_port_range, port_record, static_band)
from apiserver.registry import Registry, RegistrySettings
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from tests.cluster import ApiServerProcess, Etcd

CIDR = "10.123.0.0/28"
NODE_PORTS = "30100-30109"


# ---------------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize("cidr,band", [("10.0.0.0/28", 0), ("10.0.0.0/24", 16), ("10.96.0.0/20", 256),
                                       ("172.28.128.0/17", 256), ("10.0.0.0/21", 128)])
def test_the_static_band_follows_kep_3070(cidr: str, band: int) -> None:
    assert static_band(ipaddress.ip_network(cidr)) == band


@pytest.mark.parametrize("text,expected", [("30000-32767", (30000, 32767)), ("30000+10", (30000, 30010)),
                                           ("8080", (8080, 8080))])
def test_port_ranges_parse(text: str, expected: tuple[int, int]) -> None:
    assert parse_port_range(text) == expected


@pytest.mark.parametrize("text", ["", "a-b", "32767-30000", "0-10", "1-70000"])
def test_bad_port_ranges_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_port_range(text)


def test_claims_round_trip() -> None:
    owner = Owner("ns", "web", "u-1")
    ip = orjson.loads(ip_record("10.0.0.5", owner, 12.5))
    assert ip["kind"] == "IPAddress" and ip["spec"]["parentRef"] == {
        "group": "", "resource": "services", "namespace": "ns", "name": "web"}
    claim = parse_claim(ip_record("10.0.0.5", owner, 12.5), 7)
    assert claim is not None and (claim.owner, claim.created, claim.revision) == (owner, 12.5, 7)
    claim = parse_claim(port_record(owner, 3.0), 9)
    assert claim is not None and (claim.owner, claim.created) == (owner, 3.0)


# ---------------------------------------------------------------------------------- two apiservers
@pytest.fixture(scope="module")
def own_etcd() -> Iterator[Etcd]:
    e = Etcd.start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def pair(own_etcd: Etcd) -> Iterator[tuple[ApiServerProcess, ApiServerProcess]]:
    flags = ("--service-cluster-ip-range", CIDR, "--service-node-port-range", NODE_PORTS)
    a = ApiServerProcess.start(own_etcd.url, *flags)
    b = ApiServerProcess.start(own_etcd.url, *flags)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture
def ns(pair: tuple[ApiServerProcess, ApiServerProcess]) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=pair[0].url, timeout=30) as c:
        assert c.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        yield name
        for svc in c.get(f"/api/v1/namespaces/{name}/services").json()["items"]:
            c.delete(f"/api/v1/namespaces/{name}/services/{svc['metadata']['name']}")


def svc(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def claims(etcd_url: str, prefix: bytes) -> dict[str, str]:
    """allocated value -> the name of the Service holding it."""
    storage = EtcdStorage(etcd_url)
    try:
        items, _ = await storage.list(prefix)
    finally:
        await storage.close()
    out = {}
    for kv in items:
        claim = parse_claim(kv.value, kv.mod_revision)
        assert claim is not None
        out[kv.key[len(prefix):].decode()] = claim.owner.name
    return out


async def wait_for(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_two_apiservers_never_hand_out_one_ip_twice_and_a_full_range_says_so(pair, ns, own_etcd) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    async with httpx.AsyncClient(timeout=30) as c:
        async def create(i: int) -> httpx.Response:
            server = (a, b)[i % 2]
            return await c.post(f"{server.url}/api/v1/namespaces/{ns}/services", json=svc(f"s{i}"))

        answers = await asyncio.gather(*(create(i) for i in range(20)))
        made = [r.json() for r in answers if r.status_code == 201]
        full = [r.json() for r in answers if r.status_code != 201]
        ips = [s["spec"]["clusterIP"] for s in made]
        # 14 usable addresses in a /28, the first is default/kubernetes'
        assert len(made) == 13 and len(set(ips)) == 13, [r.text for r in answers]
        assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(CIDR) for ip in ips)
        assert "10.123.0.1" not in ips and "10.123.0.0" not in ips and "10.123.0.15" not in ips
        assert {(s["code"], s["reason"], s["message"]) for s in full} == {
            (500, "InternalError", "Internal error occurred: failed to allocate a serviceIP: range is full")}
        held = await claims(own_etcd.url, IP_PREFIX)
        assert {ip: held[ip] for ip in ips} == {s["spec"]["clusterIP"]: s["metadata"]["name"] for s in made}

        # Deleting frees the address (a new Service gets one at once, through the other apiserver).
        victim = made[0]
        r = await c.delete(f"{a.url}/api/v1/namespaces/{ns}/services/{victim['metadata']['name']}")
        assert r.status_code == 200
        r = await c.post(f"{b.url}/api/v1/namespaces/{ns}/services", json=svc("again"))
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["clusterIP"] == victim["spec"]["clusterIP"]


async def test_requested_cluster_ips(pair, ns, own_etcd) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    base = f"/api/v1/namespaces/{ns}/services"
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(a.url + base, json=svc("fixed", clusterIP="10.123.0.10"))
        assert r.status_code == 201 and r.json()["spec"]["clusterIPs"] == ["10.123.0.10"], r.text
        r = await c.post(b.url + base, json=svc("clash", clusterIP="10.123.0.10"))
        assert r.status_code == 422 and r.json()["details"]["causes"] == [{
            "reason": "FieldValueInvalid", "field": "spec.clusterIPs",
            "message": 'Invalid value: ["10.123.0.10"]: failed to allocate IP 10.123.0.10: provided IP is already allocated'}]
        assert r.json()["message"].startswith('Service "clash" is invalid: spec.clusterIPs: ')
        r = await c.post(b.url + base, json=svc("far", clusterIP="10.96.0.10"))
        assert r.status_code == 422 and r.json()["details"]["causes"][0]["message"] == (
            'Invalid value: ["10.96.0.10"]: failed to allocate IP 10.96.0.10: the provided IP (10.96.0.10) is not in '
            f"the valid range. The range of valid IPs is {CIDR}")
        # A Service whose name is taken allocates nothing (its create fails before).
        before = await claims(own_etcd.url, IP_PREFIX)
        r = await c.post(b.url + base, json=svc("fixed"))
        assert r.status_code == 409
        assert await claims(own_etcd.url, IP_PREFIX) == before
        # A dry run allocates nothing either.
        r = await c.post(a.url + base + "?dryRun=All", json=svc("dry", clusterIP="10.123.0.11"))
        assert r.status_code == 201 and r.json()["spec"]["clusterIP"] == "10.123.0.11"
        assert "10.123.0.11" not in await claims(own_etcd.url, IP_PREFIX)
        # Delete and at once create again with the same address, on the other apiserver.
        assert (await c.delete(a.url + base + "/fixed")).status_code == 200
        r = await c.post(b.url + base, json=svc("fixed2", clusterIP="10.123.0.10"))
        assert r.status_code == 201, r.text
        assert (await claims(own_etcd.url, IP_PREFIX))["10.123.0.10"] == "fixed2"


async def test_headless_and_external_name_services_take_no_address_and_type_changes_do(pair, ns, own_etcd) -> None:  # type: ignore[no-untyped-def]
    a, _ = pair
    base = f"{a.url}/api/v1/namespaces/{ns}/services"
    async with httpx.AsyncClient(timeout=30) as c:
        before = await claims(own_etcd.url, IP_PREFIX)
        r = await c.post(base, json=svc("headless", clusterIP="None", selector={"app": "x"}))
        assert r.status_code == 201 and r.json()["spec"]["clusterIPs"] == ["None"]
        r = await c.post(base, json=svc("ext", type="ExternalName", externalName="example.com", ports=[]))
        assert r.status_code == 201 and "clusterIP" not in r.json()["spec"]
        assert await claims(own_etcd.url, IP_PREFIX) == before
        # ExternalName -> ClusterIP allocates; back to ExternalName frees.
        current = r.json()
        current["spec"] = {"type": "ClusterIP", "ports": [{"port": 80}]}
        r = await c.put(f"{base}/ext", json=current)
        assert r.status_code == 200, r.text
        ip = r.json()["spec"]["clusterIP"]
        assert r.json()["spec"]["clusterIPs"] == [ip] and r.json()["spec"]["ipFamilies"] == ["IPv4"]
        assert (await claims(own_etcd.url, IP_PREFIX))[ip] == "ext"
        r = await c.patch(f"{base}/ext", json={"spec": {"type": "ExternalName", "externalName": "example.org"}},
                          headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        assert "clusterIP" not in r.json()["spec"] and "clusterIPs" not in r.json()["spec"]

        async def freed() -> bool:
            return ip not in await claims(own_etcd.url, IP_PREFIX)
        await wait_for(freed)


async def test_node_ports(pair, ns, own_etcd) -> None:  # type: ignore[no-untyped-def]
    a, b = pair
    base = f"/api/v1/namespaces/{ns}/services"
    merge = {"Content-Type": "application/merge-patch+json"}
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.post(a.url + base, json=svc("np", type="NodePort", ports=[
            {"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "web", "port": 80}]))
        assert r.status_code == 201, r.text
        ports = r.json()["spec"]["ports"]
        # the same port number for UDP and TCP shares one node port
        assert ports[0]["nodePort"] == ports[1]["nodePort"] != ports[2]["nodePort"]
        assert all(30100 <= p["nodePort"] <= 30109 for p in ports)
        held = await claims(own_etcd.url, PORT_PREFIX)
        assert held[str(ports[0]["nodePort"])] == held[str(ports[2]["nodePort"])] == "np"

        taken = ports[2]["nodePort"]
        r = await c.post(b.url + base, json=svc("clash", type="NodePort", ports=[{"port": 80, "nodePort": taken}]))
        assert r.status_code == 422 and r.json()["details"]["causes"] == [{
            "reason": "FieldValueInvalid", "field": "spec.ports[0].nodePort",
            "message": f"Invalid value: {taken}: provided port is already allocated"}]
        r = await c.post(b.url + base, json=svc("far", type="NodePort", ports=[{"port": 80, "nodePort": 31000}]))
        assert r.status_code == 422 and r.json()["details"]["causes"][0]["message"] == (
            "Invalid value: 31000: provided port is not in the valid range. The range of valid ports is 30100-30109")

        # An update that leaves the node ports out (a PUT of the manifest, as kubectl apply) keeps them.
        current = r = (await c.get(a.url + base + "/np")).json()
        current["spec"]["ports"] = [{k: v for k, v in p.items() if k != "nodePort"} for p in current["spec"]["ports"]]
        r = await c.put(b.url + base + "/np", json=current)
        assert r.status_code == 200 and r.json()["spec"]["ports"] == ports, r.text

        # A type change to ClusterIP frees them: another Service can ask for one at once.
        r = await c.patch(a.url + base + "/np", json={"spec": {"type": "ClusterIP"}}, headers=merge)
        assert r.status_code == 200, r.text
        assert all("nodePort" not in p for p in r.json()["spec"]["ports"])
        r = await c.post(b.url + base, json=svc("taker", type="NodePort", ports=[{"port": 80, "nodePort": taken}]))
        assert r.status_code == 201, r.text

        # Deleting frees them too.
        assert (await c.delete(a.url + base + "/taker")).status_code == 200
        r = await c.post(b.url + base, json=svc("taker2", type="LoadBalancer", externalTrafficPolicy="Local",
                                                ports=[{"port": 80, "nodePort": taken}]))
        assert r.status_code == 201, r.text
        spec = r.json()["spec"]
        assert spec["ports"][0]["nodePort"] == taken and 30100 <= spec["healthCheckNodePort"] <= 30109
        assert (await claims(own_etcd.url, PORT_PREFIX))[str(spec["healthCheckNodePort"])] == "taker2"


async def test_the_kubernetes_endpoint_slice(own_etcd: Etcd) -> None:
    server = ApiServerProcess.start(own_etcd.url, "--service-cluster-ip-range", CIDR,
                                    "--advertise-address", "192.0.2.7")
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            async def published() -> bool:
                r = await c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
                return r.status_code == 200 and r.json()["endpoints"][0]["addresses"] == ["192.0.2.7"]
            await wait_for(published)
            s = (await c.get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")).json()
            assert s["metadata"]["labels"] == {"kubernetes.io/service-name": "kubernetes"}
            assert s["addressType"] == "IPv4" and s["endpoints"][0]["conditions"]["ready"] is True
            assert s["ports"] == [{"name": "https", "port": server.port, "protocol": "TCP"}]
            kube = (await c.get("/api/v1/namespaces/default/services/kubernetes")).json()
            assert kube["spec"]["clusterIP"] == "10.123.0.1"
    finally:
        server.stop()


# ---------------------------------------------------------------------------------- the repair pass
async def test_repair_frees_stale_claims_and_records_missing_ones(own_etcd: Etcd) -> None:
    storage = EtcdStorage(own_etcd.url)
    registry = Registry(storage, default_resources(), settings=RegistrySettings(service_cidr="10.124.0.0/24",
                                                                                service_node_port_range=NODE_PORTS))
    await registry.start()
    try:
        ghost = Owner("nowhere", "ghost", "uid-ghost")
        await storage.create(IP_PREFIX + b"10.124.0.77", ip_record("10.124.0.77", ghost, time.time() - 3600))
        await storage.create(IP_PREFIX + b"10.124.0.78", ip_record("10.124.0.78", ghost, time.time()))  # in flight?
        await storage.create(IP_PREFIX + b"10.199.0.1", ip_record("10.199.0.1", ghost, time.time() - 3600))  # not ours
        # A Service stored with an address and no claim (written before allocation was kept in etcd).
        res = registry.resources.by_kind("Service", "")
        assert res is not None
        body = svc("old", clusterIP="10.124.0.50")
        body["metadata"].update(namespace="default", uid="uid-old")
        body["spec"]["clusterIPs"] = ["10.124.0.50"]
        await storage.create(res.key("default", "old"), orjson.dumps(body))
        allocations = ServiceAllocations(storage, cidr="10.124.0.0/24", node_port_range=NODE_PORTS)
        await AllocationRepair(registry, allocations).repair()
        held = await claims(own_etcd.url, IP_PREFIX)
        assert "10.124.0.77" not in held  # stale: freed
        assert held["10.124.0.78"] == "ghost"  # young: maybe a create in flight, kept
        assert held["10.199.0.1"] == "ghost"  # another range's: left alone
        assert held["10.124.0.50"] == "old"  # recorded
        await storage.delete(res.key("default", "old"))
    finally:
        await registry.stop()
        await storage.close()
