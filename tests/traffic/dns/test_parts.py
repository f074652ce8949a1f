"""The parts of ``minik8s dns`` that need no cluster: flags' values, query handling in process, and
the kube-dns objects registration writes."""

from __future__ import annotations

from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord  # type: ignore[import-untyped]

from traffic.dns import records
from traffic.dns.registration import (endpoints_body, endpoints_differ, eleventh_address, merged_service,
                                      service_body, service_differs, slice_body, slice_differs, usable_endpoint)
from traffic.dns.server import DnsServer, error_reply, parse_upstream, resolv_conf_nameservers, without_self


@pytest.mark.parametrize("value,expected", [
    ("10.0.0.2", ("10.0.0.2", 53)), ("127.0.0.1:5353", ("127.0.0.1", 5353)), ("fd00::1", ("fd00::1", 53)),
    ("[fd00::1]:5353", ("fd00::1", 5353)), ("[fd00::1]", ("fd00::1", 53)), (" dns.example ", ("dns.example", 53))])
def test_parse_upstream(value: str, expected: tuple[str, int]) -> None:
    assert parse_upstream(value) == expected


def test_resolv_conf_nameservers() -> None:
    text = "# generated\nsearch corp.example\nnameserver 10.0.0.2\nnameserver fe80::1%eth0 # link\n" \
           "options ndots:5\n;nameserver 10.9.9.9\nnameserver\n"
    assert resolv_conf_nameservers(text) == ["10.0.0.2", "fe80::1"]


@pytest.mark.parametrize("bind,upstreams,kept", [
    ("0.0.0.0", [("127.0.0.1", 53), ("127.0.0.53", 53), ("10.0.0.2", 53)], [("10.0.0.2", 53)]),
    ("0.0.0.0", [("127.0.0.1", 5353)], [("127.0.0.1", 5353)]),
    ("127.0.0.1", [("127.0.0.1", 53), ("127.0.0.11", 53)], [("127.0.0.11", 53)]),
])
def test_never_forward_to_ourselves(bind: str, upstreams: list[tuple[str, int]],
                                    kept: list[tuple[str, int]]) -> None:
    assert without_self(upstreams, bind_address=bind, port=53) == kept


def _server(*, synced: bool = True) -> DnsServer:
    server = DnsServer(upstreams=[])
    svc = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "172.28.128.20", "ports": []}}
    server.zone = records.build_zone([svc], [], synced=synced)
    return server


def test_answers_in_process() -> None:
    q = DNSRecord.question("web.default.svc.cluster.local")
    reply = DNSRecord.parse(_server().answer_local(bytes(q.pack()), tcp=False))
    assert reply.header.id == q.header.id and reply.header.aa == 1 and reply.header.ra == 1
    assert [str(r.rdata) for r in reply.rr] == ["172.28.128.20"]


def test_cluster_names_are_servfail_until_synced_and_others_still_forwarded() -> None:
    server = _server(synced=False)
    reply = DNSRecord.parse(server.answer_local(bytes(DNSRecord.question("web.default.svc.cluster.local").pack()),
                                                tcp=False))
    assert reply.header.rcode == RCODE.SERVFAIL
    forward = server.answer_local(bytes(DNSRecord.question("example.com").pack()), tcp=False)
    assert isinstance(forward, records.Reply) and forward.forward


def test_edns_is_answered_with_edns() -> None:
    q = DNSRecord.question("web.default.svc.cluster.local")
    q.add_ar(EDNS0(udp_len=1232))
    reply = DNSRecord.parse(_server().answer_local(bytes(q.pack()), tcp=False))
    assert [r.rtype for r in reply.ar] == [QTYPE.OPT]


def test_responses_and_junk_are_not_answered_and_bad_queries_get_errors() -> None:
    server = _server()
    response = DNSRecord.question("web.default.svc.cluster.local").reply()
    assert server.answer_local(bytes(response.pack()), tcp=False) is None
    assert server.answer_local(b"\x00\x01", tcp=False) is None
    garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff"
    out = server.answer_local(garbage, tcp=False)
    assert isinstance(out, bytes) and out[:2] == b"\x12\x34" and out[3] & 0x0F == RCODE.FORMERR
    assert error_reply(b"short", RCODE.SERVFAIL) is None


def test_kube_dns_bodies() -> None:
    svc = service_body(cluster_ip="172.28.128.10", target_port=1053)
    assert svc["spec"]["clusterIP"] == "172.28.128.10" and "selector" not in svc["spec"]
    assert [(p["name"], p["port"], p["protocol"], p["targetPort"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP", 1053), ("dns-tcp", 53, "TCP", 1053)]
    sl = slice_body(address="172.28.0.53", port=1053, owner_uid="u1")
    assert sl["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "minik8s-dns"
    assert sl["metadata"]["ownerReferences"][0]["uid"] == "u1"
    ep = endpoints_body(address="172.28.0.53", port=1053)
    assert ep["subsets"][0]["addresses"] == [{"ip": "172.28.0.53"}]


def _live(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**body, "metadata": {**body["metadata"], "uid": "u1", "resourceVersion": "7",
                                "labels": {**body["metadata"].get("labels", {}), "extra": "kept"}}}
    out.update(changes)
    return out


def test_what_counts_as_a_difference() -> None:
    want = service_body(cluster_ip="172.28.128.10", target_port=1053)
    live = _live(want, spec={**want["spec"], "sessionAffinity": "None", "ipFamilies": ["IPv4"]})
    assert not service_differs(live, want)  # the server's defaults and others' labels are fine
    assert service_differs(None, want)
    assert service_differs(_live(want, spec={**want["spec"], "selector": {"app": "x"}}), want)
    other_port = service_body(cluster_ip="172.28.128.10", target_port=53)
    assert service_differs(_live(other_port), want)
    fixed = merged_service(_live(other_port, spec={**other_port["spec"], "selector": {"a": "b"}}), want)
    assert not service_differs(fixed, want) and fixed["metadata"]["labels"]["extra"] == "kept"

    sl = slice_body(address="172.28.0.53", port=1053, owner_uid="u1")
    assert not slice_differs(_live(sl), sl)
    assert slice_differs(_live(sl), slice_body(address="172.28.0.54", port=1053, owner_uid="u1"))
    assert slice_differs(_live(sl), slice_body(address="172.28.0.53", port=1053, owner_uid="u2"))
    ep = endpoints_body(address="172.28.0.53", port=1053)
    assert not endpoints_differ(_live(ep), ep)
    assert endpoints_differ(_live(ep), endpoints_body(address="172.28.0.53", port=53))


@pytest.mark.parametrize("address,usable", [("172.28.0.53", True), ("127.0.0.1", False), ("0.0.0.0", False),
                                            ("169.254.1.1", False), ("", False), ("fd00::1", False)])
def test_usable_endpoint(address: str, usable: bool) -> None:
    assert usable_endpoint(address) is usable


def test_the_eleventh_address() -> None:
    assert eleventh_address("172.28.128.1") == "172.28.128.10"
    assert eleventh_address("10.96.0.1") == "10.96.0.10"
