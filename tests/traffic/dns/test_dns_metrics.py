"""traffic.dns.metrics (pure): the question and rcode read from raw DNS bytes, the zone label, and
that a query counts once with its reply. The served counters on a real dns process:
tests/machinery/test_component_metrics.py::test_the_dns_servers_counters."""

from __future__ import annotations

import pytest
from dnslib import DNSRecord, RCODE  # type: ignore[import-untyped]

from machinery.metrics import exposition, parse
from traffic.dns import metrics


@pytest.mark.parametrize(("name", "qtype", "number"), [
    ("kubernetes.default.svc.cluster.local", "A", 1),
    ("Web.Default.SVC.cluster.local", "AAAA", 28),
    ("_http._tcp.web.default.svc.cluster.local", "SRV", 33),
    ("10.0.96.10.in-addr.arpa", "PTR", 12),
    ("example.org", "TXT", 16),
])
def test_question(name: str, qtype: str, number: int) -> None:
    data = bytes(DNSRecord.question(name, qtype).pack())
    assert metrics.question(data) == (name.lower(), number)


@pytest.mark.parametrize("data", [b"", b"\x00" * 11, b"\x12\x34\x01\x00" + b"\x00" * 8,  # no question
                                  b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03ab",  # cut short
                                  b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"])
def test_question_of_junk(data: bytes) -> None:
    assert metrics.question(data) is None


@pytest.mark.parametrize("rcode", ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"])
def test_rcode_name(rcode: str) -> None:
    reply = DNSRecord.question("x.example").reply()
    reply.header.rcode = getattr(RCODE, rcode)
    assert metrics.rcode_name(bytes(reply.pack())) == rcode


@pytest.mark.parametrize(("name", "zone"), [
    ("cluster.local", "cluster.local."), ("a.b.svc.cluster.local", "cluster.local."),
    ("notcluster.local", "."), ("example.org", "."),
])
def test_zone_of(name: str, zone: str) -> None:
    assert metrics.zone_of(name, "cluster.local") == zone


def test_observe_counts_a_query_once_and_its_reply() -> None:
    server = "dns://127.0.0.1:test-observe"
    query = bytes(DNSRecord.question("mx.example.org", "MX").pack())
    reply = DNSRecord.parse(query).reply()
    reply.header.rcode = RCODE.SERVFAIL
    metrics.observe(server, query, bytes(reply.pack()), proto="tcp", domain="cluster.local")
    metrics.observe(server, b"junk", None, proto="udp", domain="cluster.local")  # dropped: a request only
    s = parse(exposition()[0].decode())
    ours = {k: [(lab, v) for lab, v in rows if lab.get("server") == server] for k, rows in s.items()}
    assert ours["coredns_dns_requests_total"] == [
        ({"server": server, "zone": ".", "proto": "tcp", "type": "MX"}, 1.0),
        ({"server": server, "zone": ".", "proto": "udp", "type": "other"}, 1.0)]
    assert ours["coredns_dns_responses_total"] == [({"server": server, "zone": ".", "rcode": "SERVFAIL"}, 1.0)]
