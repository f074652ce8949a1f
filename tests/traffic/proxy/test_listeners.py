"""traffic.proxy.listeners (pure): which sockets ``minik8s proxy`` holds, and the diff that moves
them; and userspace.Balancer's choice of endpoint (round robin, ClientIP affinity, Local)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from traffic.proxy.listeners import Listener, desired, diff, parse_addresses
from traffic.proxy.userspace import Balancer
from traffic.servicemap import Endpoint, ServicePort, service_ports


def svc(name: str, type_: str, *ports: dict[str, Any], lb: tuple[str, ...] = (), **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": "default"},
                            "spec": {"type": type_, "clusterIP": "10.0.0.1", "ports": list(ports), **spec}}
    if lb:
        body["status"] = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb]}}
    return body


def L(address: str, port: int, protocol: str = "TCP") -> Listener:
    return Listener(address, port, protocol)


SERVICES = [
    svc("web", "NodePort", {"name": "http", "port": 80, "nodePort": 30080},
        {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053}),
    svc("lb", "LoadBalancer", {"port": 80, "nodePort": 30081}, lb=("127.240.0.1",)),
    svc("pending-lb", "LoadBalancer", {"port": 80, "nodePort": 30082}),  # no ingress IP yet
    svc("plain", "ClusterIP", {"port": 80}),
    svc("sctp", "NodePort", {"port": 80, "protocol": "SCTP", "nodePort": 30090}),
]


@pytest.mark.parametrize(("addresses", "expected"), [
    (("127.0.0.1",), {L("127.0.0.1", 30080): "default/web:http", L("127.0.0.1", 30053, "UDP"): "default/web:dns",
                      L("127.0.0.1", 30081): "default/lb", L("127.240.0.1", 80): "default/lb",
                      L("127.0.0.1", 30082): "default/pending-lb"}),
    (("127.0.0.1", "10.1.2.3"), {L("127.0.0.1", 30080): "default/web:http", L("10.1.2.3", 30080): "default/web:http",
                                 L("127.0.0.1", 30053, "UDP"): "default/web:dns",
                                 L("10.1.2.3", 30053, "UDP"): "default/web:dns",
                                 L("127.0.0.1", 30081): "default/lb", L("10.1.2.3", 30081): "default/lb",
                                 L("127.240.0.1", 80): "default/lb", L("127.0.0.1", 30082): "default/pending-lb",
                                 L("10.1.2.3", 30082): "default/pending-lb"}),
    # 0.0.0.0 covers 127.0.0.1: one socket, whatever order they were given in
    (("127.0.0.1", "0.0.0.0"), {L("0.0.0.0", 30080): "default/web:http", L("0.0.0.0", 30053, "UDP"): "default/web:dns",
                                L("0.0.0.0", 30081): "default/lb", L("127.240.0.1", 80): "default/lb",
                                L("0.0.0.0", 30082): "default/pending-lb"}),
])
def test_desired_listeners(addresses: tuple[str, ...], expected: dict[Listener, str]) -> None:
    want = desired(service_ports(SERVICES, []), nodeport_addresses=addresses)
    assert {k: v.key for k, v in want.listeners.items()} == expected
    assert want.unsupported == ("default/sctp",)
    assert not want.conflicts


def test_two_services_on_one_socket_conflict_and_the_first_keeps_it() -> None:
    services = [svc("a", "LoadBalancer", {"port": 80, "nodePort": 30001}, lb=("127.240.0.9",)),
                svc("b", "LoadBalancer", {"port": 80, "nodePort": 30002}, lb=("127.240.0.9",))]
    want = desired(service_ports(services, []))
    assert want.listeners[L("127.240.0.9", 80)].key == "default/a"
    assert [(c.listener, c.winner, c.loser, c.reason) for c in want.conflicts] == [
        (L("127.240.0.9", 80), "default/a", "default/b", "LoadBalancer")]
    # the same port over UDP is another socket
    services[1]["spec"]["ports"][0]["protocol"] = "UDP"
    assert not desired(service_ports(services, [])).conflicts


def sp(name: str, *ips: str, **kw: Any) -> ServicePort:
    return ServicePort(namespace="default", service=name, port_name="", protocol="TCP", port=80, type="NodePort",
                       node_port=30000, endpoints=tuple(Endpoint(ip=ip, port=8080) for ip in ips), **kw)


def test_diff_opens_closes_and_retargets() -> None:
    a, b, c = L("127.0.0.1", 30001), L("127.0.0.1", 30002), L("127.0.0.1", 30003)
    have = {a: sp("a", "10.0.0.1"), b: sp("b", "10.0.0.2")}
    want = {a: sp("a", "10.0.0.1", "10.0.0.3"), c: sp("c")}
    plan = diff(want, have)
    assert plan.open == {c: sp("c")}
    assert plan.close == (b,)
    assert plan.retarget == {a: want[a]}  # a stays open, only its endpoints change
    assert diff(want, want).empty


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1", ("127.0.0.1",)),
    (" 127.0.0.1, 10.0.0.5,127.0.0.1 ", ("127.0.0.1", "10.0.0.5")),
    ("0.0.0.0", ("0.0.0.0",)),
    ("::1", ("::1",)),
])
def test_parse_addresses(value: str, expected: tuple[str, ...]) -> None:
    assert parse_addresses(value) == expected


@pytest.mark.parametrize("value", ["", "localhost", "127.0.0.0/8", "300.1.1.1"])
def test_parse_addresses_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        parse_addresses(value)


def test_balancer_round_robin_then_failover_order() -> None:
    b = Balancer(sp("a", "10.0.0.1", "10.0.0.2", "10.0.0.3"))
    firsts = [b.candidates("1.1.1.1")[0].ip for _ in range(6)]
    assert firsts == ["10.0.0.1", "10.0.0.2", "10.0.0.3"] * 2
    assert [e.ip for e in b.candidates("1.1.1.1")] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert [e.ip for e in b.candidates("1.1.1.1")] == ["10.0.0.2", "10.0.0.3", "10.0.0.1"]
    b.update(sp("a"))
    assert b.candidates("1.1.1.1") == []


def test_balancer_client_ip_affinity_expires_and_follows_endpoints() -> None:
    now = [100.0]
    b = Balancer(sp("a", "10.0.0.1", "10.0.0.2", session_affinity=True, affinity_timeout=10), clock=lambda: now[0])
    first = b.candidates("1.1.1.1")[0]
    b.chose("1.1.1.1", first)
    assert all(b.candidates("1.1.1.1")[0] == first for _ in range(5))
    other = b.candidates("2.2.2.2")[0]
    assert other != first  # another client still goes round
    now[0] += 11
    assert {b.candidates("1.1.1.1")[0].ip for _ in range(4)} == {"10.0.0.1", "10.0.0.2"}  # expired
    b.chose("1.1.1.1", first)
    remaining = "10.0.0.2" if first.ip == "10.0.0.1" else "10.0.0.1"
    b.update(sp("a", remaining, session_affinity=True, affinity_timeout=10))  # its endpoint left
    assert b.candidates("1.1.1.1")[0].ip == remaining


def test_balancer_external_traffic_policy_local() -> None:
    local = replace(sp("a"), external_local=True,
                    endpoints=(Endpoint(ip="10.0.0.1", port=80, node="n1"), Endpoint(ip="10.0.0.2", port=80, node="n2")))
    assert [e.ip for e in Balancer(local, node="n1").endpoints] == ["10.0.0.1"]
    assert [e.ip for e in Balancer(local, node=None).endpoints] == ["10.0.0.1", "10.0.0.2"]
