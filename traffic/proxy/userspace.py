"""The user-space relays of ``minik8s proxy``: one listening socket -> a Service's endpoints.

Data flow, TCP: ``TcpRelay.start()`` binds ``address:port`` -> each accepted connection asks the
``Balancer`` for endpoints (ClientIP affinity first, else round robin over
``ServicePort.endpoints_for_external(node=...)``) -> connects to the first that answers within
``connect_timeout`` (the next on failure) -> two ``_Side`` protocols copy bytes both ways at the
transport level (no streams): a full write buffer on one side pauses reading on the other
(backpressure), an EOF is passed on as a half-close, a reset as a reset. No endpoint, or none that
answers: the client is reset at once (SO_LINGER 0, then close), never left waiting.

UDP: ``UdpRelay`` keeps one connected socket per client address (a "session", kube-proxy's
conntrack entry) to the endpoint chosen for its first datagram; replies go back to the client
from the listening socket; a session idle for ``udp_idle_timeout`` is closed, and so is one whose
endpoint left the Service (kube-proxy clears stale UDP conntrack entries the same way).

``retarget(service_port)`` swaps the endpoints under a live listener: new connections and new
sessions see them at once, established TCP connections keep their endpoint.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Callable, cast

from traffic.proxy.listeners import Listener
from traffic.servicemap import Endpoint, ServicePort

log = logging.getLogger(__name__)

_LINGER_RESET = struct.pack("ii", 1, 0)
_AFFINITY_SWEEP_EVERY = 1024


@dataclass(frozen=True)
class RelaySettings:
    node: str | None = None  # --node-name: externalTrafficPolicy Local keeps to this node's endpoints
    connect_timeout: float = 1.0  # per endpoint tried
    udp_idle_timeout: float = 30.0  # nf_conntrack_udp_timeout
    backlog: int = 1024


class Balancer:
    """Which endpoint a new connection from a client IP goes to, for one ServicePort."""

    def __init__(self, service_port: ServicePort, *, node: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._node = node
        self._clock = clock
        self._next = 0
        self._affinity: dict[str, tuple[tuple[str, int], float]] = {}
        self._chosen = 0
        self.service_port = service_port
        self.endpoints: tuple[Endpoint, ...] = ()
        self.update(service_port)

    def update(self, service_port: ServicePort) -> None:
        self.service_port = service_port
        self.endpoints = service_port.endpoints_for_external(node=self._node)
        if not service_port.session_affinity:
            self._affinity.clear()
            return
        live = {(e.ip, e.port) for e in self.endpoints}
        self._affinity = {ip: v for ip, v in self._affinity.items() if v[0] in live}

    def candidates(self, client_ip: str) -> list[Endpoint]:
        """The endpoints to try, in order: the client's sticky endpoint if it has a live one, else
        the next in round robin; then the others (for when the first does not answer)."""
        eps = self.endpoints
        if not eps:
            return []
        start = None
        if self.service_port.session_affinity:
            held = self._affinity.get(client_ip)
            if held is not None and held[1] > self._clock():
                start = next((i for i, e in enumerate(eps) if (e.ip, e.port) == held[0]), None)
        if start is None:
            start = self._next % len(eps)
            self._next += 1
        return list(eps[start:] + eps[:start])

    def chose(self, client_ip: str, endpoint: Endpoint) -> None:
        """``endpoint`` took a connection from ``client_ip``: with ClientIP affinity the client sticks
        to it for ``affinity_timeout`` seconds from now (each new connection renews it)."""
        sp = self.service_port
        if not sp.session_affinity:
            return
        now = self._clock()
        self._affinity[client_ip] = ((endpoint.ip, endpoint.port), now + sp.affinity_timeout)
        self._chosen += 1
        if self._chosen % _AFFINITY_SWEEP_EVERY == 0:
            self._affinity = {ip: v for ip, v in self._affinity.items() if v[1] > now}


def bind_socket(listener: Listener, kind: socket.SocketKind) -> socket.socket:
    """A non-blocking socket bound to the listener's address (OSError, e.g. EADDRINUSE, if not)."""
    family = socket.AF_INET6 if ipaddress.ip_address(listener.address).version == 6 else socket.AF_INET
    sock = socket.socket(family, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((listener.address, listener.port))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def reset(transport: asyncio.BaseTransport) -> None:
    """Close with a TCP reset (SO_LINGER 0): the peer sees ECONNRESET now, not a hang or a clean EOF."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    abort = getattr(transport, "abort", None)  # uvloop's transports are not asyncio.Transport subclasses
    if abort is not None:
        abort()
    else:
        transport.close()


class _Side(asyncio.Protocol):
    """One socket of a relayed connection; ``peer`` is the other one. Until ``join`` links the two,
    what arrives is held (uvloop starts reading after ``connection_made`` even when it paused)."""

    transport: asyncio.Transport | None = None
    peer: "_Side | None" = None
    eof = False
    lost = False
    held: list[bytes] | None = None
    blocked = False  # reading is paused because the peer's write buffer is full

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
            return
        if self.held is None:
            self.held = []
        self.held.append(data)
        if self.transport is not None:
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None:
            return True  # passed on by join
        return self._pass_eof(peer)

    def _pass_eof(self, peer: "_Side") -> bool:
        assert peer.transport is not None
        if peer.eof:  # both directions are done
            peer.transport.close()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()  # after the buffered bytes: a half-close, as the sender did
            return True  # keep our write side open for the answer
        peer.transport.close()
        return False

    def join(self, peer: "_Side") -> None:
        """Link the two sides and pass on what either received before."""
        self.peer, peer.peer = peer, self
        for side in (self, peer):
            other = side.peer
            assert other is not None and other.transport is not None and side.transport is not None
            for chunk in side.held or ():
                other.transport.write(chunk)
            side.held = None
        for side in (self, peer):
            assert side.peer is not None and side.transport is not None
            if side.eof and not side.peer.lost:
                if not side._pass_eof(side.peer):
                    side.transport.close()
            elif not side.blocked and not side.transport.is_closing():
                side.transport.resume_reading()

    # The peer's reading follows our writing: a full buffer here stops the bytes flowing in there.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.blocked = True
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.blocked = False
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.lost:
            return
        if exc is not None:
            reset(peer.transport)  # a reset (or error) on one side is a reset on the other
        else:
            peer.transport.close()  # flushes what is buffered first


class _Backend(_Side):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        transport.pause_reading()  # a server that speaks first waits until the client side is joined


class _Client(_Side):
    def __init__(self, relay: "TcpRelay") -> None:
        self.relay = relay
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        client_ip = str(peer[0]) if peer else ""
        endpoints = self.relay.balancer.candidates(client_ip)
        if not endpoints:
            self.relay.refused += 1
            reset(transport)
            return
        transport.pause_reading()  # until the backend answers; bytes wait in the kernel
        self.task = asyncio.get_running_loop().create_task(self._connect(client_ip, endpoints))
        self.relay.connections.add(self)

    async def _connect(self, client_ip: str, endpoints: list[Endpoint]) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.relay.settings.connect_timeout
        for ep in endpoints:
            if self.lost:
                return
            try:
                backend_transport, backend = await asyncio.wait_for(
                    loop.create_connection(_Backend, ep.ip, ep.port), timeout)
            except (OSError, asyncio.TimeoutError) as e:
                log.debug("%s: endpoint %s:%d failed: %s", self.relay.listener, ep.ip, ep.port, e or "timeout")
                continue
            if self.lost or self.transport is None:
                backend_transport.close()
                return
            if backend.lost:
                continue
            self.relay.balancer.chose(client_ip, ep)
            self.join(backend)
            return
        if self.transport is not None and not self.lost:
            log.info("%s: no endpoint of %s answered; resetting the client", self.relay.listener,
                     self.relay.balancer.service_port.key)
            self.relay.refused += 1
            reset(self.transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.relay.connections.discard(self)


class TcpRelay:
    """A TCP listener relaying every connection to one of a ServicePort's endpoints."""

    def __init__(self, listener: Listener, service_port: ServicePort, *,
                 settings: RelaySettings = RelaySettings()) -> None:
        self.listener = listener
        self.settings = settings
        self.balancer = Balancer(service_port, node=settings.node)
        self.connections: set[_Client] = set()
        self.refused = 0
        self._server: asyncio.Server | None = None

    @property
    def service_port(self) -> ServicePort:
        return self.balancer.service_port

    async def start(self) -> None:
        sock = bind_socket(self.listener, socket.SOCK_STREAM)
        try:
            sock.listen(self.settings.backlog)
            self._server = await asyncio.get_running_loop().create_server(lambda: _Client(self), sock=sock)
        except BaseException:
            sock.close()
            raise

    def retarget(self, service_port: ServicePort) -> None:
        self.balancer.update(service_port)

    async def close(self) -> None:
        """Stop accepting; established connections run on until either side ends them."""
        if self._server is not None:
            self._server.close()
            self._server = None


class _UdpSession:
    """One client address <-> one endpoint, through a connected socket of its own."""

    def __init__(self, relay: "UdpRelay", client: tuple[str, int], endpoint: Endpoint) -> None:
        self.relay = relay
        self.client = client
        self.endpoint = endpoint
        self.last = time.monotonic()
        family = socket.AF_INET6 if ":" in endpoint.ip else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            self.sock.connect((endpoint.ip, endpoint.port))  # UDP: no packet, only the route
        except OSError:
            self.sock.close()
            raise
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def send(self, data: bytes) -> None:
        self.last = time.monotonic()
        with suppress(BlockingIOError, ConnectionRefusedError, InterruptedError):
            self.sock.send(data)  # a full buffer drops the datagram, as the network would

    def _readable(self) -> None:
        for _ in range(64):
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # an ICMP error from the endpoint (port unreachable): forget it
                log.debug("%s: session %s -> %s:%d: %s", self.relay.listener, self.client, self.endpoint.ip,
                          self.endpoint.port, e)
                self.relay.drop(self.client)
                return
            self.last = time.monotonic()
            self.relay.reply(data, self.client)

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            with suppress(Exception):
                asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()


class _UdpListen(asyncio.DatagramProtocol):
    def __init__(self, relay: "UdpRelay") -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.relay.received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("%s: %s", self.relay.listener, exc)


class UdpRelay:
    """A UDP listener relaying each client's datagrams to one endpoint and the replies back."""

    def __init__(self, listener: Listener, service_port: ServicePort, *,
                 settings: RelaySettings = RelaySettings()) -> None:
        self.listener = listener
        self.settings = settings
        self.balancer = Balancer(service_port, node=settings.node)
        self.sessions: dict[tuple[str, int], _UdpSession] = {}
        self.dropped = 0
        self._transport: asyncio.DatagramTransport | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def service_port(self) -> ServicePort:
        return self.balancer.service_port

    async def start(self) -> None:
        sock = bind_socket(self.listener, socket.SOCK_DGRAM)
        try:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _UdpListen(self), sock=sock)
        except BaseException:
            sock.close()
            raise
        self._transport = transport
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    def received(self, data: bytes, client: tuple[str, int]) -> None:
        session = self.sessions.get(client)
        if session is None:
            for ep in self.balancer.candidates(client[0])[:1]:
                try:
                    session = _UdpSession(self, client, ep)
                except OSError as e:
                    log.info("%s: endpoint %s:%d: %s", self.listener, ep.ip, ep.port, e)
                    break
                self.balancer.chose(client[0], ep)
                self.sessions[client] = session
            if session is None:  # no endpoint: the datagram is dropped, as a reject rule would
                self.dropped += 1
                return
        session.send(data)

    def reply(self, data: bytes, client: tuple[str, int]) -> None:
        if self._transport is not None:
            self._transport.sendto(data, client)

    def drop(self, client: tuple[str, int]) -> None:
        session = self.sessions.pop(client, None)
        if session is not None:
            session.close()

    def retarget(self, service_port: ServicePort) -> None:
        self.balancer.update(service_port)
        live = {(e.ip, e.port) for e in self.balancer.endpoints}
        for client, s in list(self.sessions.items()):
            if (s.endpoint.ip, s.endpoint.port) not in live:
                self.drop(client)

    async def _sweep(self) -> None:
        idle = self.settings.udp_idle_timeout
        while True:
            await asyncio.sleep(max(0.05, idle / 4))
            cutoff = time.monotonic() - idle
            for client, s in list(self.sessions.items()):
                if s.last < cutoff:
                    self.drop(client)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        for client in list(self.sessions):
            self.drop(client)
        if self._transport is not None:
            self._transport.close()
            self._transport = None


Relay = TcpRelay | UdpRelay


def make_relay(listener: Listener, service_port: ServicePort, *, settings: RelaySettings) -> Relay:
    if listener.protocol == "UDP":
        return UdpRelay(listener, service_port, settings=settings)
    return TcpRelay(listener, service_port, settings=settings)


__all__ = ["Balancer", "RelaySettings", "Relay", "TcpRelay", "UdpRelay", "bind_socket", "make_relay", "reset"]
