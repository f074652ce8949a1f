"""The cluster's DNS records (traffic.dns.records): Services + EndpointSlices -> answers, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from traffic.dns.records import A, CNAME, NS, PTR, SOA, SRV, TXT, Reply, build_zone, lookup, reverse_name


def svc(name: str, ns: str = "default", *, ip: str | None = "172.28.128.20", ports: list[dict[str, Any]] | None = None,
        **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name, "namespace": ns},
                            "spec": {"ports": ports if ports is not None else
                                     [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], **spec}}
    if ip is not None:
        body["spec"]["clusterIP"] = ip
    return body


def eps(service: str, ns: str = "default", *endpoints: dict[str, Any], ports: list[dict[str, Any]] | None = None,
        name: str | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name or f"{service}-abc", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": list(endpoints),
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def ep(ip: str, *, ready: bool | None = True, hostname: str | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}}
    if hostname:
        e["hostname"] = hostname
    return e


SERVICES = [
    svc("web"),
    svc("db", "prod", ip="172.28.128.30", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"},
                                                  {"port": 9000, "protocol": "TCP"}]),
    svc("peers", ip="None", ports=[{"name": "gossip", "port": 7000, "protocol": "UDP"}]),
    svc("sts", ip="None"),
    svc("lazy", ip="None", publishNotReadyAddresses=True),
    svc("empty", ip="None"),
    svc("ext", ip=None, type="ExternalName", externalName="example.com."),
    svc("alias", ip=None, type="ExternalName", externalName="web.default.svc.cluster.local"),
    svc("pending", ip=None),
]
SLICES = [
    eps("peers", "default", ep("172.28.0.5"), ep("172.28.0.6"), ep("172.28.0.7", ready=False),
        ports=[{"name": "gossip", "port": 7001, "protocol": "UDP"}]),
    eps("sts", "default", ep("172.28.0.11", hostname="sts-0"), ep("172.28.0.12", hostname="sts-1", ready=None)),
    eps("lazy", "default", ep("172.28.0.21", ready=False), ep("172.28.0.22")),
    eps("web", "default", ep("172.28.0.31")),  # a ClusterIP Service's endpoints never show in DNS
    eps("gone", "default", ep("172.28.0.41")),  # a slice without its Service
]
ZONE = build_zone(SERVICES, SLICES, dns_ip="172.28.128.10")
D = "cluster.local"


def kinds(reply: Reply) -> list[tuple[str, Any]]:
    return [(a.name, a.rdata) for a in reply.answers]


@pytest.mark.parametrize("qname,qtype,expected", [
    (f"web.default.svc.{D}", "A", [A("172.28.128.20")]),
    (f"WEB.Default.svc.{D}.", "A", [A("172.28.128.20")]),
    (f"db.prod.svc.{D}", "A", [A("172.28.128.30")]),
    (f"peers.default.svc.{D}", "A", [A("172.28.0.5"), A("172.28.0.6")]),
    (f"sts.default.svc.{D}", "A", [A("172.28.0.11"), A("172.28.0.12")]),
    (f"lazy.default.svc.{D}", "A", [A("172.28.0.21"), A("172.28.0.22")]),
    (f"sts-0.sts.default.svc.{D}", "A", [A("172.28.0.11")]),
    (f"sts-1.sts.default.svc.{D}", "A", [A("172.28.0.12")]),
    (f"172-28-0-5.peers.default.svc.{D}", "A", [A("172.28.0.5")]),
    (f"_http._tcp.web.default.svc.{D}", "SRV", [SRV(0, 100, 80, f"web.default.svc.{D}")]),
    (f"_pg._tcp.db.prod.svc.{D}", "SRV", [SRV(0, 100, 5432, f"db.prod.svc.{D}")]),
    (f"db.prod.svc.{D}", "SRV", [SRV(0, 100, 5432, f"db.prod.svc.{D}"), SRV(0, 100, 9000, f"db.prod.svc.{D}")]),
    (f"_gossip._udp.peers.default.svc.{D}", "SRV",
     [SRV(0, 50, 7001, f"172-28-0-5.peers.default.svc.{D}"), SRV(0, 50, 7001, f"172-28-0-6.peers.default.svc.{D}")]),
    (f"_http._tcp.sts.default.svc.{D}", "SRV",
     [SRV(0, 50, 8080, f"sts-0.sts.default.svc.{D}"), SRV(0, 50, 8080, f"sts-1.sts.default.svc.{D}")]),
    (f"10-1-2-3.default.pod.{D}", "A", [A("10.1.2.3")]),
    (f"172-28-0-9.any-ns.pod.{D}", "A", [A("172.28.0.9")]),
    (f"dns-version.{D}", "TXT", [TXT("1.1.0")]),
    (D, "NS", [NS(f"ns.dns.{D}")]),
    (f"ns.dns.{D}", "A", [A("172.28.128.10")]),
    ("20.128.28.172.in-addr.arpa", "PTR", [PTR(f"web.default.svc.{D}")]),
    ("11.0.28.172.in-addr.arpa", "PTR", [PTR(f"sts-0.sts.default.svc.{D}")]),
])
def test_answers(qname: str, qtype: str, expected: list[Any]) -> None:
    reply = lookup(ZONE, qname, qtype)
    assert reply.rcode == "NOERROR" and not reply.forward
    assert [r for _, r in kinds(reply)] == expected


@pytest.mark.parametrize("qname,qtype", [
    (f"web.default.svc.{D}", "AAAA"),  # an existing name without that type: no NXDOMAIN (glibc)
    (f"web.default.svc.{D}", "TXT"),
    (f"empty.default.svc.{D}", "A"),  # headless without endpoints
    (f"_http._tcp.web.default.svc.{D}", "A"),
    (f"default.svc.{D}", "A"),  # empty non-terminals exist
    (f"svc.{D}", "A"),
    (D, "A"),
    (f"pod.{D}", "A"),
    (f"10-1-2-3.default.pod.{D}", "AAAA"),
    ("20.128.28.172.in-addr.arpa", "A"),
])
def test_no_data(qname: str, qtype: str) -> None:
    reply = lookup(ZONE, qname, qtype)
    assert (reply.rcode, reply.answers, reply.forward) == ("NOERROR", (), False)


@pytest.mark.parametrize("qname,qtype", [
    (f"nope.default.svc.{D}", "A"),
    (f"nope.default.svc.{D}", "AAAA"),
    (f"web.other.svc.{D}", "A"),
    (f"pending.default.svc.{D}", "A"),  # no ClusterIP yet: nothing to say
    (f"gone.default.svc.{D}", "A"),
    (f"172-28-0-7.peers.default.svc.{D}", "A"),  # not ready
    (f"sts-9.sts.default.svc.{D}", "A"),
    (f"_nope._tcp.web.default.svc.{D}", "SRV"),
    (f"_http._udp.web.default.svc.{D}", "SRV"),
    (f"foo.{D}", "A"),
    (f"not-an-ip.default.pod.{D}", "A"),
    (f"1-2-3.default.pod.{D}", "A"),
    (f"a.1-2-3-4.default.pod.{D}", "A"),
    ("web", "A"),  # single labels: never forwarded
    ("localhost", "AAAA"),
])
def test_nxdomain(qname: str, qtype: str) -> None:
    reply = lookup(ZONE, qname, qtype)
    assert (reply.rcode, reply.answers, reply.forward) == ("NXDOMAIN", (), False)


@pytest.mark.parametrize("qname,qtype", [
    ("example.com", "A"),
    ("example.com.", "AAAA"),
    ("cluster.local.example.com", "A"),
    ("1.0.0.127.in-addr.arpa", "PTR"),  # not one of ours: upstream
    (".", "NS"),
])
def test_forwarded(qname: str, qtype: str) -> None:
    assert lookup(ZONE, qname, qtype).forward


def test_external_name_is_a_cname_chased_upstream() -> None:
    reply = lookup(ZONE, f"ext.default.svc.{D}", "A")
    assert kinds(reply) == [(f"ext.default.svc.{D}", CNAME("example.com"))]
    assert reply.chase == "example.com" and not reply.forward


def test_external_name_inside_the_cluster_is_followed_here() -> None:
    reply = lookup(ZONE, f"alias.default.svc.{D}", "A")
    assert kinds(reply) == [(f"alias.default.svc.{D}", CNAME(f"web.default.svc.{D}")),
                            (f"web.default.svc.{D}", A("172.28.128.20"))]
    assert reply.chase is None
    assert kinds(lookup(ZONE, f"alias.default.svc.{D}", "CNAME")) == [
        (f"alias.default.svc.{D}", CNAME(f"web.default.svc.{D}"))]


def test_srv_targets_come_with_their_addresses() -> None:
    reply = lookup(ZONE, f"_http._tcp.sts.default.svc.{D}", "SRV")
    assert [(a.name, a.rdata) for a in reply.additional] == [
        (f"sts-0.sts.default.svc.{D}", A("172.28.0.11")), (f"sts-1.sts.default.svc.{D}", A("172.28.0.12"))]


def test_negative_answers_carry_the_soa_with_the_ttl() -> None:
    zone = build_zone([], [], domain="corp.example", ttl=7)
    reply = lookup(zone, "nope.default.svc.corp.example", "A")
    assert reply.rcode == "NXDOMAIN"
    (soa,) = reply.authority
    assert soa.name == "corp.example" and isinstance(soa.rdata, SOA) and soa.rdata.minimum == 7
    assert lookup(zone, "nope.default.svc.cluster.local", "A").forward  # another domain is not ours


def test_ttl_and_domain_are_settings() -> None:
    zone = build_zone([svc("web")], [], domain="Corp.Example.", ttl=30)
    (answer,) = lookup(zone, "web.default.svc.corp.example", "A").answers
    assert answer.ttl == 30 and answer.rdata == A("172.28.128.20")


def test_endpoint_in_two_slices_counts_once_and_ready_wins() -> None:
    zone = build_zone([svc("h", ip="None")], [eps("h", "default", ep("172.28.0.2", ready=False), name="h-1"),
                                               eps("h", "default", ep("172.28.0.2"), name="h-2")])
    assert [a.rdata for a in lookup(zone, f"h.default.svc.{D}", "A").answers] == [A("172.28.0.2")]


def test_ipv6_slices_and_clusterips_are_left_out() -> None:
    six = {**eps("h", "default", ep("fd00::1")), "addressType": "IPv6"}
    zone = build_zone([svc("h", ip="None"), svc("v6", ip="fd00::10")], [six])
    assert lookup(zone, f"h.default.svc.{D}", "A").answers == ()
    assert lookup(zone, f"v6.default.svc.{D}", "A").rcode == "NXDOMAIN"


def test_the_zone_is_immutable() -> None:
    with pytest.raises(TypeError):
        ZONE.records["x"] = {}  # type: ignore[index]


def test_reverse_name() -> None:
    assert reverse_name("172.28.128.10") == "10.128.28.172.in-addr.arpa"
