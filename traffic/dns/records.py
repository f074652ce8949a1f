"""The cluster's DNS records (pure): Services + EndpointSlices -> an immutable ``Zone``, and lookups in it.

Data flow: the Service and EndpointSlice dicts of the informer caches -> ``build_zone`` (rebuilt
whole on every change burst; a few thousand Services take milliseconds) -> ``Zone`` -> ``lookup(zone,
qname, qtype)`` -> a ``Reply``: the answer records, NXDOMAIN, or "forward upstream" -> the server
(``traffic.dns.server``) encodes it with dnslib. Kubernetes' DNS specification with CoreDNS's
kubernetes plugin as the reference (``pods insecure``, ``fallthrough in-addr.arpa``):

- ``SVC.NS.svc.DOMAIN`` A: the ClusterIP; headless (``clusterIP: None``): the ready endpoint IPs
  (all of them with ``publishNotReadyAddresses``); ExternalName: a CNAME to ``externalName``.
- ``HOST.SVC.NS.svc.DOMAIN`` A for each endpoint of a headless Service: ``HOST`` is the endpoint's
  ``hostname`` (pods with ``hostname`` + ``subdomain``) or its dashed IP, as CoreDNS names them.
- ``_PORT._PROTO.SVC.NS.svc.DOMAIN`` SRV for named ports: to ``SVC.NS.svc.DOMAIN`` at the Service
  port, or for a headless Service one per endpoint, to its ``HOST`` name at the endpoint's port.
  ``SVC.NS.svc.DOMAIN`` SRV lists every port the same way.
- ``A-B-C-D.NS.pod.DOMAIN`` A: ``A.B.C.D`` for any dashed IPv4 (no pod lookup, CoreDNS' insecure mode).
- PTR for ClusterIPs (-> the Service name) and headless endpoint IPs (-> their ``HOST`` name); other
  reverse names are forwarded.
- ``dns-version.DOMAIN`` TXT ``1.1.0`` (the specification's schema version); SOA and NS at the apex.
- A name that exists but has no record of the asked type (AAAA of a Service, say) answers NOERROR
  with no records, never NXDOMAIN (glibc would stop at the first NXDOMAIN of a dual lookup); an
  unknown name inside the domain, and any single-label name, is NXDOMAIN at once; everything else
  is forwarded.

No I/O here: no sockets, no dnslib.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Iterable, Literal, Mapping, Union

Obj = Mapping[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SCHEMA_VERSION = "1.1.0"
SOA_SERIAL = 12345  # CoreDNS answers a constant-ish serial too; nothing transfers this zone


@dataclass(frozen=True)
class A:
    ip: str


@dataclass(frozen=True)
class CNAME:
    target: str


@dataclass(frozen=True)
class SRV:
    priority: int
    weight: int
    port: int
    target: str


@dataclass(frozen=True)
class PTR:
    target: str


@dataclass(frozen=True)
class TXT:
    text: str


@dataclass(frozen=True)
class NS:
    target: str


@dataclass(frozen=True)
class SOA:
    mname: str
    rname: str
    serial: int
    refresh: int
    retry: int
    expire: int
    minimum: int


Rdata = Union[A, CNAME, SRV, PTR, TXT, NS, SOA]
RTYPE: dict[type, str] = {A: "A", CNAME: "CNAME", SRV: "SRV", PTR: "PTR", TXT: "TXT", NS: "NS", SOA: "SOA"}


@dataclass(frozen=True)
class Answer:
    name: str  # absolute, without the trailing dot
    ttl: int
    rdata: Rdata

    @property
    def rtype(self) -> str:
        return RTYPE[type(self.rdata)]


@dataclass(frozen=True)
class Reply:
    """What to answer: ``rcode`` NOERROR or NXDOMAIN with ``answers`` (+ ``additional``), or ``forward``.

    ``authority`` carries the zone's SOA on negative answers (negative caching, RFC 2308).
    ``chase``: a CNAME target outside the zone that the server should resolve upstream for the same
    type and append (CoreDNS does that for ExternalName Services; a stub resolver will not)."""

    rcode: Literal["NOERROR", "NXDOMAIN"] = "NOERROR"
    answers: tuple[Answer, ...] = ()
    additional: tuple[Answer, ...] = ()
    authority: tuple[Answer, ...] = ()
    forward: bool = False
    chase: str | None = None
    authoritative: bool = True


FORWARD = Reply(forward=True, authoritative=False)


@dataclass(frozen=True)
class Zone:
    """The records of one snapshot of the cluster: ``records[name][type]`` and every existing name."""

    domain: str
    ttl: int
    records: Mapping[str, Mapping[str, tuple[Rdata, ...]]] = field(default_factory=dict)
    names: frozenset[str] = frozenset()  # every name with records, and their ancestors down to ``domain``
    reverse: Mapping[str, tuple[PTR, ...]] = field(default_factory=dict)
    synced: bool = True


def normalize(name: str) -> str:
    """Lower case, no trailing dot (DNS names compare without case)."""
    return name.rstrip(".").lower()


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def reverse_name(ip: str) -> str:
    return normalize(ipaddress.ip_address(ip).reverse_pointer)


def _is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
        return True
    except ValueError:
        return False


@dataclass
class _Builder:
    domain: str
    records: dict[str, dict[str, list[Rdata]]] = field(default_factory=dict)
    reverse: dict[str, list[PTR]] = field(default_factory=dict)

    def add(self, name: str, rdata: Rdata) -> None:
        found = self.records.setdefault(name, {}).setdefault(RTYPE[type(rdata)], [])
        if rdata not in found:
            found.append(rdata)

    def add_ptr(self, ip: str, target: str) -> None:
        try:
            name = reverse_name(ip)
        except ValueError:
            return
        found = self.reverse.setdefault(name, [])
        if PTR(target) not in found:
            found.append(PTR(target))

    def zone(self, ttl: int, *, synced: bool) -> Zone:
        names: set[str] = set()
        suffix_labels = self.domain.count(".") + 1
        for name in self.records:
            labels = name.split(".")
            for i in range(len(labels) - suffix_labels + 1):
                names.add(".".join(labels[i:]))
        records = MappingProxyType({n: MappingProxyType({t: tuple(v) for t, v in by_type.items()})
                                    for n, by_type in self.records.items()})
        reverse = MappingProxyType({n: tuple(v) for n, v in self.reverse.items()})
        return Zone(domain=self.domain, ttl=ttl, records=records, names=frozenset(names), reverse=reverse,
                    synced=synced)


@dataclass(frozen=True)
class _Endpoint:
    ip: str
    host: str  # hostname, or the dashed IP
    ready: bool


def _endpoints(slices: Iterable[Obj]) -> list[_Endpoint]:
    """The IPv4 endpoints of a Service's slices, one per address (deduplicated, stable order)."""
    seen: dict[str, _Endpoint] = {}
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        for ep in s.get("endpoints") or []:
            ready = (ep.get("conditions") or {}).get("ready")
            for ip in ep.get("addresses") or []:
                if not _is_ipv4(str(ip)):
                    continue
                host = ep.get("hostname") or dashed(str(ip))
                new = _Endpoint(str(ip), str(host).lower(), ready is None or bool(ready))
                old = seen.get(new.ip)
                if old is None or (new.ready and not old.ready):
                    seen[new.ip] = new
    return sorted(seen.values(), key=lambda e: (e.host, e.ip))


def _slice_ports(slices: Iterable[Obj]) -> dict[tuple[str, str], int]:
    """(port name, protocol) -> the endpoint (target) port, from the slices."""
    ports: dict[tuple[str, str], int] = {}
    for s in slices:
        for p in s.get("ports") or []:
            if p.get("port"):
                ports.setdefault((p.get("name") or "", p.get("protocol") or "TCP"), int(p["port"]))
    return ports


def _weight(n: int) -> int:
    return max(1, 100 // max(1, n))


def _add_service(b: _Builder, svc: Obj, slices: list[Obj]) -> None:
    meta = svc.get("metadata") or {}
    spec = svc.get("spec") or {}
    name, ns = str(meta.get("name") or "").lower(), str(meta.get("namespace") or "default").lower()
    if not name:
        return
    fqdn = f"{name}.{ns}.svc.{b.domain}"
    kind = spec.get("type") or "ClusterIP"
    if kind == "ExternalName":
        target = normalize(str(spec.get("externalName") or ""))
        if target:
            b.add(fqdn, CNAME(target))
        return
    cluster_ip = spec.get("clusterIP")
    ports = [p for p in spec.get("ports") or [] if p.get("port")]
    if cluster_ip and cluster_ip != "None":
        if not _is_ipv4(str(cluster_ip)):
            return
        b.add(fqdn, A(str(cluster_ip)))
        b.add_ptr(str(cluster_ip), fqdn)
        for p in ports:
            srv = SRV(0, 100, int(p["port"]), fqdn)
            b.add(fqdn, srv)
            if p.get("name"):
                b.add(f"_{str(p['name']).lower()}._{str(p.get('protocol') or 'TCP').lower()}.{fqdn}", srv)
        return
    if not cluster_ip:
        return  # not allocated yet (or an API server that leaves it empty): nothing to say
    # headless
    everyone = bool(spec.get("publishNotReadyAddresses"))
    eps = [e for e in _endpoints(slices) if e.ready or everyone]
    if not eps:
        b.records.setdefault(fqdn, {})  # the name exists, with no address: NOERROR, no answers
    target_ports = _slice_ports(slices)
    for e in eps:
        host_fqdn = f"{e.host}.{fqdn}"
        b.add(fqdn, A(e.ip))
        b.add(host_fqdn, A(e.ip))
        b.add_ptr(e.ip, host_fqdn)
    for p in ports:
        port_name, protocol = str(p.get("name") or ""), str(p.get("protocol") or "TCP")
        number = target_ports.get((port_name, protocol))
        if number is None:
            continue
        for e in eps:
            srv = SRV(0, _weight(len(eps)), number, f"{e.host}.{fqdn}")
            b.add(fqdn, srv)
            if port_name:
                b.add(f"_{port_name.lower()}._{protocol.lower()}.{fqdn}", srv)


def build_zone(services: Iterable[Obj], slices: Iterable[Obj], *, domain: str = "cluster.local", ttl: int = 5,
               dns_ip: str | None = None, synced: bool = True) -> Zone:
    """The ``Zone`` of these Services and EndpointSlices; ``dns_ip`` (the DNS Service's ClusterIP)
    gives the apex NS record its address."""
    domain = normalize(domain)
    b = _Builder(domain)
    grouped: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if owner:
            grouped.setdefault((str(meta.get("namespace") or "default"), str(owner)), []).append(s)
    for svc in services:
        meta = svc.get("metadata") or {}
        _add_service(b, svc, grouped.get((str(meta.get("namespace") or "default"), str(meta.get("name") or "")), []))
    ns_name = f"ns.dns.{domain}"
    b.add(domain, SOA(ns_name, f"hostmaster.{domain}", SOA_SERIAL, 7200, 1800, 86400, ttl))
    b.add(domain, NS(ns_name))
    if dns_ip and _is_ipv4(dns_ip):
        b.add(ns_name, A(dns_ip))
    b.add(f"dns-version.{domain}", TXT(SCHEMA_VERSION))
    return b.zone(ttl, synced=synced)


def _answers(name: str, ttl: int, rdatas: Iterable[Rdata]) -> tuple[Answer, ...]:
    return tuple(Answer(name, ttl, r) for r in rdatas)


def _soa(zone: Zone) -> tuple[Answer, ...]:
    return _answers(zone.domain, zone.ttl, zone.records.get(zone.domain, {}).get("SOA", ()))


def _targets(zone: Zone, answers: Iterable[Answer]) -> tuple[Answer, ...]:
    """The A records of SRV and NS targets inside the zone (the additional section)."""
    extra: list[Answer] = []
    for a in answers:
        if isinstance(a.rdata, (SRV, NS)):
            for r in zone.records.get(a.rdata.target, {}).get("A", ()):
                ans = Answer(a.rdata.target, zone.ttl, r)
                if ans not in extra:
                    extra.append(ans)
    return tuple(extra)


def _pod_answer(zone: Zone, name: str, qtype: str) -> Reply | None:
    """``A-B-C-D.NS.pod.DOMAIN`` (any namespace); ``pod.DOMAIN`` and ``NS.pod.DOMAIN`` exist, empty."""
    pod_zone = f"pod.{zone.domain}"
    if name == pod_zone:
        return Reply(authority=_soa(zone))
    if not name.endswith("." + pod_zone):
        return None
    labels = name[: -len(pod_zone) - 1].split(".")
    if len(labels) == 1:
        return Reply(authority=_soa(zone))
    if len(labels) != 2:
        return Reply(rcode="NXDOMAIN", authority=_soa(zone))
    ip = labels[0].replace("-", ".")
    if not _is_ipv4(ip) or labels[0].count("-") != 3:
        return Reply(rcode="NXDOMAIN", authority=_soa(zone))
    if qtype in ("A", "ANY"):
        return Reply(answers=(Answer(name, zone.ttl, A(str(ipaddress.IPv4Address(ip)))),))
    return Reply(authority=_soa(zone))


def lookup(zone: Zone, qname: str, qtype: str) -> Reply:
    """The reply to one question (``qtype`` a name such as ``"A"``, ``"AAAA"``, ``"SRV"``)."""
    name = normalize(qname)
    qtype = qtype.upper()
    if not name:
        return FORWARD  # the root: not ours
    if "." not in name:
        return Reply(rcode="NXDOMAIN", authoritative=False)  # single label: never a real name
    if name.endswith(".in-addr.arpa") or name.endswith(".ip6.arpa"):
        ptrs = zone.reverse.get(name)
        if not ptrs:
            return FORWARD
        return Reply(answers=_answers(name, zone.ttl, ptrs) if qtype in ("PTR", "ANY") else ())
    if name != zone.domain and not name.endswith("." + zone.domain):
        return FORWARD
    pod = _pod_answer(zone, name, qtype)
    if pod is not None:
        return pod
    if name not in zone.names:
        return Reply(rcode="NXDOMAIN", authority=_soa(zone))
    by_type = zone.records.get(name, {})
    cname = by_type.get("CNAME", ())
    if cname and qtype != "CNAME":
        answers = _answers(name, zone.ttl, cname)
        target = cname[0].target  # type: ignore[union-attr]
        if target == zone.domain or target.endswith("." + zone.domain):
            inner = lookup(zone, target, qtype)
            return Reply(rcode=inner.rcode, answers=answers + inner.answers, additional=inner.additional,
                         authority=inner.authority)
        return Reply(answers=answers, chase=target)
    if qtype == "ANY":
        found = tuple(a for t in ("A", "SRV", "TXT", "NS", "SOA") for a in _answers(name, zone.ttl, by_type.get(t, ())))
    else:
        found = _answers(name, zone.ttl, by_type.get(qtype, ()))
    if not found:
        return Reply(authority=_soa(zone))
    return Reply(answers=found, additional=_targets(zone, found))


__all__ = ["A", "Answer", "CNAME", "FORWARD", "NS", "PTR", "Reply", "SOA", "SRV", "TXT", "Zone", "build_zone",
           "dashed", "lookup", "normalize", "reverse_name"]
