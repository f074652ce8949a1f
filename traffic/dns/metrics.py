"""The DNS server's Prometheus metrics, with CoreDNS' names: requests by type, responses by rcode.

Data flow: each query the server answers (``traffic.dns.server``: UDP from the zone, UDP after the
upstream, TCP) ends in one ``observe(server, query, reply, proto=..., domain=...)`` -> the
question's name and type are read from the raw bytes (``question``: no dnslib parse on this path)
and the reply's rcode from its header (``rcode_name``) -> ``coredns_dns_requests_total{server,
zone,proto,type}`` and ``coredns_dns_responses_total{server,zone,rcode}`` (a query dropped
unanswered counts as a request only). As CoreDNS (plugin/metrics/vars): ``server`` is
``dns://HOST:PORT``, ``zone`` the zone that answered (the cluster domain with its dot, else
``.``), ``type`` one of the monitored query types or ``other``, so the labels stay bounded.
"""

from __future__ import annotations

import struct

from prometheus_client import Counter

from machinery.metrics import REGISTRY

REQUESTS = Counter("coredns_dns_requests_total", "Counter of DNS requests made per zone, protocol and family.",
                   ["server", "zone", "proto", "type"], registry=REGISTRY)
RESPONSES = Counter("coredns_dns_responses_total", "Counter of response status codes.",
                    ["server", "zone", "rcode"], registry=REGISTRY)

# CoreDNS' monitored query types (plugin/metrics/vars/monitor.go); any other is "other".
TYPES = {1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
         43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 65: "HTTPS", 251: "IXFR", 252: "AXFR",
         255: "ANY"}
RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET",
          "NOTAUTH", "NOTZONE")


def question(data: bytes) -> tuple[str, int] | None:
    """The first question's name (lower case, no final dot) and type of a raw DNS message, or None
    when it has none or does not parse (pure)."""
    if len(data) < 12 or struct.unpack_from("!H", data, 4)[0] == 0:
        return None
    labels: list[bytes] = []
    at = 12
    while at < len(data):
        size = data[at]
        if size == 0:
            if at + 3 > len(data):
                return None
            name = b".".join(labels).decode("ascii", "replace").lower()
            return name, struct.unpack_from("!H", data, at + 1)[0]
        if size & 0xC0 or at + 1 + size > len(data):
            return None  # a compression pointer has no place in a query's first question
        labels.append(data[at + 1:at + 1 + size])
        at += 1 + size
    return None


def rcode_name(reply: bytes) -> str:
    """The rcode of a raw DNS reply, as CoreDNS names it (pure)."""
    if len(reply) < 4:
        return "FORMERR"
    code = reply[3] & 0x0F
    return RCODES[code] if code < len(RCODES) else f"RCODE{code}"


def zone_of(name: str, domain: str) -> str:
    return domain + "." if name == domain or name.endswith("." + domain) else "."


def observe(server: str, query: bytes, reply: bytes | None, *, proto: str, domain: str) -> None:
    """Count one query and its reply (None: dropped); never raises into the server."""
    try:
        q = question(query)
        zone = zone_of(q[0], domain) if q is not None else "."
        REQUESTS.labels(server, zone, proto, TYPES.get(q[1], "other") if q is not None else "other").inc()
        if reply is not None:
            RESPONSES.labels(server, zone, rcode_name(reply)).inc()
    except Exception:  # pragma: no cover - a metric must never break an answer
        pass


__all__ = ["REQUESTS", "RESPONSES", "TYPES", "observe", "question", "rcode_name", "zone_of"]
