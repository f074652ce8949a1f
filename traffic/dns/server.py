"""The cluster DNS server (``minik8s dns``): UDP + TCP answers from the current ``Zone``, the rest upstream.

Data flow: ``run(settings)`` -> the UDP and TCP listeners on ``bind_address:port`` start at once
(names outside the cluster are forwarded from the first second; cluster names answer SERVFAIL,
which resolvers retry, until both informers have listed) -> a ``ServiceWatch`` (Services +
EndpointSlices) -> after each debounced burst ``records.build_zone`` makes a new immutable ``Zone``
and the server swaps it in -> every query is parsed (dnslib), looked up (``records.lookup``, in the
event loop, no task) and answered; names ``lookup`` does not own are sent as they came to the
upstream servers (``--upstream``, else the nameservers of /etc/resolv.conf) in turn, within one
deadline (``upstream_timeout``, 1 s), and answered SERVFAIL when none replied, so a client never
times out waiting on us. ``/healthz`` (aiohttp, ``health_port``) is 200 once the zone is synced.
``traffic.dns.registration`` keeps Service kube-system/kube-dns pointing at this server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from dataclasses import dataclass, field
from typing import Any

from dnslib import (  # type: ignore[import-untyped]  # dnslib ships no type information
    DNSRecord, EDNS0, OPCODE, QTYPE, RCODE, RR, A as DA, CNAME as DCNAME, NS as DNS_NS, PTR as DPTR, SOA as DSOA,
    SRV as DSRV, TXT as DTXT)

from machinery.client import ApiClient, default_user_agent
from machinery.healthz import serve_healthz
from machinery.kubeconfig import ClientConfig
from machinery.process import run_until_signalled, until_stopped
from machinery.sharedinformers import InformerFactory
from traffic.watch import ServiceWatch

from . import metrics, records
from .records import Answer, Reply, Zone

log = logging.getLogger(__name__)

RESOLV_CONF = "/etc/resolv.conf"
MAX_UDP = 4096
TCP_IDLE = 10.0
CLASS_IN, CLASS_ANY = 1, 255


@dataclass
class DnsSettings:
    server: str | ClientConfig = "http://127.0.0.1:8080"  # a URL, or a kubeconfig's address and credential
    bind_address: str = "0.0.0.0"
    port: int = 53  # 0: any free port (UDP and TCP share it)
    advertise_address: str = ""  # "": the bind address when concrete, else this host's address
    cluster_ip: str = "172.28.128.10"  # "": the kubernetes Service's ClusterIP + 9 (the range's 11th address)
    cluster_domain: str = "cluster.local"
    upstreams: list[str] = field(default_factory=list)  # HOST or HOST:PORT ([V6]:PORT); []: /etc/resolv.conf
    upstream_timeout: float = 1.0
    ttl: int = 5
    health_port: int = 8181  # 0: none
    register: bool = True
    register_interval: float = 30.0  # also re-checked after every change burst


def parse_upstream(value: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``V6``, ``[V6]:PORT`` -> (host, port)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if value.count(":") == 1:
        host, port = value.split(":")
        return host, int(port)
    return value, 53


def resolv_conf_nameservers(text: str) -> list[str]:
    """The ``nameserver`` lines of a resolv.conf."""
    found = []
    for line in text.splitlines():
        parts = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            found.append(parts[1].split("%", 1)[0])
    return found


def default_upstreams(path: str = RESOLV_CONF) -> list[str]:
    try:
        with open(path) as f:
            return resolv_conf_nameservers(f.read())
    except OSError:
        return []


def without_self(upstreams: list[tuple[str, int]], *, bind_address: str, port: int) -> list[tuple[str, int]]:
    """The upstreams that are not this server itself (a query sent to ourselves would loop until its
    deadline): same port and the bind address, or any local address when binding them all."""
    kept = []
    for host, p in upstreams:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            kept.append((host, p))
            continue
        wildcard = bind_address in ("0.0.0.0", "::", "")
        if p == port and (host == bind_address or (wildcard and (ip.is_loopback or ip.is_unspecified))):
            log.warning("upstream %s:%d is this server: left out", host, p)
            continue
        kept.append((host, p))
    return kept


def _rdata(r: records.Rdata) -> Any:
    if isinstance(r, records.A):
        return DA(r.ip)
    if isinstance(r, records.CNAME):
        return DCNAME(r.target + ".")
    if isinstance(r, records.SRV):
        return DSRV(priority=r.priority, weight=r.weight, port=r.port, target=r.target + ".")
    if isinstance(r, records.PTR):
        return DPTR(r.target + ".")
    if isinstance(r, records.TXT):
        return DTXT(r.text)
    if isinstance(r, records.NS):
        return DNS_NS(r.target + ".")
    return DSOA(r.mname + ".", r.rname + ".", (r.serial, r.refresh, r.retry, r.expire, r.minimum))


def _rr(answer: Answer, *, qname: str) -> RR:
    # The question's own spelling for its own name (resolvers that randomise case check it).
    name = qname if records.normalize(qname) == answer.name else answer.name + "."
    return RR(name, getattr(QTYPE, answer.rtype), rdata=_rdata(answer.rdata), ttl=answer.ttl)


def _udp_limit(request: DNSRecord) -> int:
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return max(512, min(int(rr.rclass), MAX_UDP))
    return 512


def _has_opt(request: DNSRecord) -> bool:
    return any(rr.rtype == QTYPE.OPT for rr in request.ar)


def error_reply(data: bytes, rcode: int) -> bytes | None:
    """A reply with ``rcode`` and the question of ``data`` (as far as it parses), or None for junk."""
    try:
        request = DNSRecord.parse(data)
    except Exception:
        if len(data) < 12:
            return None
        ident, flags = struct.unpack("!HH", data[:4])
        # QR set, the opcode and RD kept, RA set, the rcode; no sections.
        return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x7900) | 0x0080 | rcode, 0, 0, 0, 0)
    reply = request.reply(ra=1, aa=0)
    reply.header.rcode = rcode
    if _has_opt(request):
        reply.add_ar(EDNS0(udp_len=MAX_UDP))
    return bytes(reply.pack())


class _UdpUpstream(asyncio.DatagramProtocol):
    def __init__(self, ident: bytes) -> None:
        self.ident = ident
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if data[:2] == self.ident and not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc or ConnectionError("closed"))


async def _exchange_udp(host: str, port: int, data: bytes) -> bytes:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(lambda: _UdpUpstream(data[:2]), remote_addr=(host, port))
    try:
        transport.sendto(data)
        return await protocol.answer
    finally:
        transport.close()


async def _exchange_tcp(host: str, port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(struct.pack("!H", len(data)) + data)
        await writer.drain()
        (size,) = struct.unpack("!H", await reader.readexactly(2))
        return await reader.readexactly(size)
    finally:
        writer.close()


class DnsServer:
    """Answers DNS queries from ``zone`` (replaced whole on every change) and forwards the rest."""

    def __init__(self, *, domain: str = "cluster.local", ttl: int = 5, upstreams: list[tuple[str, int]],
                 upstream_timeout: float = 1.0) -> None:
        self.zone: Zone = records.build_zone([], [], domain=domain, ttl=ttl, synced=False)
        self.upstreams = upstreams
        self.upstream_timeout = upstream_timeout
        self.port = 0
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.metrics_server = "dns://:0"  # the ``server`` label of its metrics, once listening

    def observe(self, query: bytes, reply: bytes | None, *, proto: str) -> None:
        """Count one query and its reply in ``coredns_dns_*`` (traffic.dns.metrics)."""
        metrics.observe(self.metrics_server, query, reply, proto=proto, domain=self.zone.domain)

    @property
    def synced(self) -> bool:
        return self.zone.synced

    # ------------------------------------------------------------------ answering
    def answer_local(self, data: bytes, *, tcp: bool) -> bytes | None | Reply:
        """The reply bytes of a query answered from the zone (None: drop it), or the ``Reply`` that
        asks for upstream work (forward, or chase a CNAME)."""
        try:
            request = DNSRecord.parse(data)
        except Exception:
            return error_reply(data, RCODE.FORMERR)
        if request.header.qr:
            return None  # a response sent to us: never answer one (no loops)
        if request.header.opcode != OPCODE.QUERY:
            return error_reply(data, RCODE.NOTIMP)
        if len(request.questions) != 1:
            return error_reply(data, RCODE.FORMERR)
        question = request.questions[0]
        if question.qclass not in (CLASS_IN, CLASS_ANY):
            return Reply(forward=True, authoritative=False)
        qname, qtype = str(question.qname), str(QTYPE.get(question.qtype))
        zone = self.zone
        if not zone.synced and self._in_domain(zone, qname):
            return error_reply(data, RCODE.SERVFAIL)
        reply = records.lookup(zone, qname, qtype)
        if reply.forward or reply.chase:
            return reply
        return self._encode(request, reply, tcp=tcp)

    @staticmethod
    def _in_domain(zone: Zone, qname: str) -> bool:
        name = records.normalize(qname)
        return name == zone.domain or name.endswith("." + zone.domain)

    def _encode(self, request: DNSRecord, reply: Reply, *, tcp: bool, extra: list[RR] | None = None) -> bytes:
        qname = str(request.questions[0].qname)
        response = request.reply(ra=1, aa=int(reply.authoritative))
        response.header.rcode = RCODE.NXDOMAIN if reply.rcode == "NXDOMAIN" else RCODE.NOERROR
        for a in reply.answers:
            response.add_answer(_rr(a, qname=qname))
        for rr in extra or []:
            response.add_answer(rr)
        for a in reply.authority:
            response.add_auth(_rr(a, qname=qname))
        for a in reply.additional:
            response.add_ar(_rr(a, qname=qname))
        if _has_opt(request):
            response.add_ar(EDNS0(udp_len=MAX_UDP))
        packed = bytes(response.pack())
        if not tcp and len(packed) > _udp_limit(request):
            short = request.reply(ra=1, aa=int(reply.authoritative))
            short.header.rcode = response.header.rcode
            short.header.tc = 1
            packed = bytes(short.pack())
        return packed

    async def answer(self, data: bytes, *, tcp: bool) -> bytes | None:
        local = self.answer_local(data, tcp=tcp)
        if not isinstance(local, Reply):
            return local
        if local.chase:
            return await self._chase(data, local, tcp=tcp)
        forwarded = await self.forward(data, tcp=tcp)
        return forwarded if forwarded is not None else error_reply(data, RCODE.SERVFAIL)

    async def forward(self, data: bytes, *, tcp: bool) -> bytes | None:
        """The first upstream answer to ``data`` (as it came, same id), or None when none answered
        before the deadline: each upstream in turn gets a fair share of what is left of it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.upstream_timeout
        for i, (host, port) in enumerate(self.upstreams):
            left = deadline - loop.time()
            if left <= 0:
                break
            share = left / (len(self.upstreams) - i)
            exchange = _exchange_tcp if tcp else _exchange_udp
            try:
                return await asyncio.wait_for(exchange(host, port, data), share)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, struct.error) as e:
                log.debug("upstream %s:%s did not answer: %r", host, port, e)
        return None

    async def _chase(self, data: bytes, reply: Reply, *, tcp: bool) -> bytes:
        """An ExternalName's CNAME plus the upstream's records of its target (CoreDNS does this)."""
        request = DNSRecord.parse(data)
        question = request.questions[0]
        extra: list[RR] = []
        if reply.chase:
            inner = DNSRecord.question(reply.chase, str(QTYPE.get(question.qtype)))
            inner.header.rd = 1
            answered = await self.forward(bytes(inner.pack()), tcp=tcp)
            if answered is not None:
                try:
                    extra = list(DNSRecord.parse(answered).rr)
                except Exception:
                    extra = []
        return self._encode(request, reply, tcp=tcp, extra=extra)

    # ------------------------------------------------------------------ listening
    async def start(self, host: str, port: int) -> int:
        """Listen on UDP and TCP ``host:port`` (0: one free port for both); returns the port."""
        loop = asyncio.get_running_loop()
        for attempt in range(20):
            transport, _ = await loop.create_datagram_endpoint(lambda: _UdpServer(self), local_addr=(host, port))
            bound = int(transport.get_extra_info("sockname")[1])
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, host, bound, reuse_address=True)
            except OSError:
                transport.close()
                if port or attempt == 19:
                    raise
                continue
            self._udp = transport
            self.port = bound
            self.metrics_server = f"dns://{host}:{bound}"
            return bound
        raise OSError("no free port for UDP and TCP")  # pragma: no cover

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (size,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), TCP_IDLE))
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                out = await self.answer(data, tcp=True)
                self.observe(data, out, proto="tcp")
                if out is None:
                    continue
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def _spawn(self, data: bytes, addr: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._answer_udp(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_udp(self, data: bytes, addr: Any) -> None:
        try:
            out = await self.answer(data, tcp=False)
        except Exception:
            log.exception("answering %s", addr)
            out = error_reply(data, RCODE.SERVFAIL)
        self.observe(data, out, proto="udp")
        if out is not None and self._udp is not None:
            self._udp.sendto(out, addr)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()
        for t in list(self._tasks):
            t.cancel()


class _UdpServer(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            local = self.server.answer_local(data, tcp=False)
        except Exception:
            log.exception("answering %s", addr)
            local = error_reply(data, RCODE.SERVFAIL)
        if isinstance(local, Reply):
            self.server._spawn(data, addr)  # upstream work: off the hot path
            return
        self.server.observe(data, local, proto="udp")
        if local is not None and self.transport is not None:
            self.transport.sendto(local, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp: %r", exc)


async def main(settings: DnsSettings, *, stop: asyncio.Event | None = None) -> None:
    from .registration import Registrar, advertise_address

    upstreams = without_self([parse_upstream(u) for u in (settings.upstreams or default_upstreams())],
                             bind_address=settings.bind_address, port=settings.port)
    server = DnsServer(domain=settings.cluster_domain, ttl=settings.ttl, upstreams=upstreams,
                       upstream_timeout=settings.upstream_timeout)
    port = await server.start(settings.bind_address, settings.port)
    log.info("DNS for %s on %s:%d (udp, tcp), upstream %s", settings.cluster_domain, settings.bind_address, port,
             ", ".join(f"{h}:{p}" for h, p in upstreams) or "none (SERVFAIL)")
    health = None
    client = ApiClient(settings.server, user_agent=default_user_agent("minik8s-dns"))
    if settings.health_port:
        health = await serve_healthz(settings.bind_address, settings.health_port, {
            "zone-synced": lambda: None if server.synced else "Services and EndpointSlices not listed yet"},
            client=client)
    factory = InformerFactory(client)
    watch = ServiceWatch(factory)
    registrar = None
    if settings.register:
        address = settings.advertise_address or advertise_address(settings.bind_address)
        registrar = Registrar(client, services=watch.services, slices=watch.slices, cluster_ip=settings.cluster_ip,
                              address=address, port=port, interval=settings.register_interval)
    factory.start()

    async def follow() -> None:
        async for _ in watch.changes():
            try:
                server.zone = records.build_zone(watch.services.list(), watch.slices.list(),
                                                 domain=settings.cluster_domain, ttl=settings.ttl,
                                                 dns_ip=registrar.cluster_ip if registrar else None)
            except Exception:  # a bug, or an object no validation foresaw: keep answering from the last zone
                log.exception("building the zone")
            if registrar is not None:
                registrar.poke()

    async def work() -> None:
        await asyncio.gather(follow(), *([registrar.run()] if registrar else []))

    try:
        await until_stopped(work(), stop or asyncio.Event())
    finally:
        await server.stop()
        if health is not None:
            await health.cleanup()
        await factory.stop()
        await client.close()


def run(settings: DnsSettings) -> None:
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["DnsServer", "DnsSettings", "default_upstreams", "error_reply", "main", "parse_upstream",
           "resolv_conf_nameservers", "run", "without_self"]
