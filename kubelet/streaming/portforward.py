"""port-forward over WebSocket: kubectl's SPDY tunnel and the channel protocol of other clients.

Data flow (``kubectl port-forward pod/web 18080:8080``, then a connection to 127.0.0.1:18080):

    kubectl --WebSocket "SPDY/3.1+portforward.k8s.io", relayed by the API server--> handle_portforward
      -> ctx.sandbox(ns, pod): the sandbox's pid and IP (StreamError: answered as text, no upgrade)
      -> _SpdyForwarder: the binary messages feed a spdysession.ServerSession; per accepted TCP connection
         kubectl opens an error stream then a data stream (headers streamtype, port, requestid); both
         get a SYN_REPLY, are paired by requestid, and the pair gets a task: netns.open_pod_connection
         (localhost:PORT inside the pod) <-> the data stream; a failure is written on the error stream
         in the kubelet's words ("error forwarding port P to pod SANDBOX, uid : ..."); both streams
         then end with FIN, the error stream first (pkg/kubelet/cri/streaming/portforward/httpstream.go)

    the official Python client --WebSocket "v4.channel.k8s.io" (or portforward.k8s.io, the base64
    variants, or none) with ?ports=A,B--> _serve_channels: one pod connection per port, data on
    channel 2i, errors on 2i+1, each channel first carrying the port (machinery.remotecommand);
    the WebSocket closes once every port's connection has ended (pkg/.../portforward/websocket.go)

Each pod connection copies both ways in ``kubelet.streaming.relay`` (half-closes, the close grace,
the per-connection buffer that keeps a slow pod from stalling the others).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from machinery import remotecommand as rc

from . import spdy, spdysession
from .context import PodTarget, StreamError, StreamingContext
from .netns import ForwardError, open_pod_connection
from .relay import Inbox, forward

log = logging.getLogger(__name__)

# The stream headers of client-go's port-forward (k8s.io/api/core/v1), as SPDY carries them: lower case
STREAM_TYPE, PORT, REQUEST_ID = "streamtype", "port", "requestid"
STREAM_TYPE_ERROR, STREAM_TYPE_DATA = "error", "data"
MAX_MESSAGE = 1 << 20  # bytes of SPDY per WebSocket message (aiohttp's default limit is 4 MiB)


@dataclass(frozen=True)
class ForwardSettings:
    connect_timeout: float = 30.0
    stream_creation_timeout: float = 30.0  # the kubelet's default: the pair's second stream must come by then
    close_grace: float = 1.0  # containerd: after one direction ends, the other gets this long
    read_size: int = 32 * 1024
    max_buffered: int = 4 * 1024 * 1024  # client bytes waiting for one slow pod connection


Connector = Callable[[PodTarget, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def forwarding_error(port: int, target: PodTarget, reason: str) -> str:
    """The kubelet's message (CRI streaming: the pod is named by its sandbox id, the uid is empty)."""
    return f"error forwarding port {port} to pod {target.sandbox_id}, uid : {reason}"


# ------------------------------------------------------------------------------------- SPDY


@dataclass
class _Pair:
    request_id: str
    port: int
    error_id: int | None = None
    data_id: int | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass
class _SpdyForwarder:
    ws: web.WebSocketResponse
    target: PodTarget
    settings: ForwardSettings
    connect: Connector
    session: spdysession.ServerSession = field(default_factory=spdysession.ServerSession)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pairs: dict[str, _Pair] = field(default_factory=dict)
    inboxes: dict[int, Inbox] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    goaway: bool = False
    closing: asyncio.Task[None] | None = None  # the WebSocket's close after a GOAWAY (a strong reference)

    async def flush(self) -> None:
        """Sends what the session encoded, in encoding order (header compression depends on it)."""
        async with self.lock:
            data = self.session.data_to_send()
            try:
                # the tunnel is one byte stream: any cut will do, and relays cap a message's size
                for start in range(0, len(data), MAX_MESSAGE):
                    if self.ws.closed:
                        return
                    await self.ws.send_bytes(data[start:start + MAX_MESSAGE])
            except ConnectionError:
                pass

    async def send(self, stream_id: int, data: bytes) -> bool:
        ok = self.session.send_data(stream_id, data)
        await self.flush()
        return ok

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    log.warning("port-forward %s/%s: a %s message on the SPDY tunnel ends it", self.target.namespace,
                                self.target.name, msg.type.name)
                    break
                try:
                    events = self.session.receive(msg.data)
                except spdy.SpdyProtocolError as e:
                    log.warning("port-forward %s/%s: %s", self.target.namespace, self.target.name, e)
                    self.session.goaway(spdy.GOAWAY_PROTOCOL_ERROR)
                    await self.flush()
                    break
                for event in events:
                    await self.on_event(event)
                await self.flush()
                if self.goaway and not self.tasks:
                    break
        finally:
            for pair in self.pairs.values():
                if pair.timer is not None:
                    pair.timer.cancel()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.ws.close()

    async def on_event(self, event: spdysession.Event) -> None:
        if isinstance(event, spdysession.StreamOpened):
            self.open_stream(event.stream_id, event.headers)
        elif isinstance(event, spdysession.StreamData):
            inbox = self.inboxes.get(event.stream_id)
            if inbox is not None:
                await inbox.put(event.data)
        elif isinstance(event, spdysession.StreamEnded):
            if (inbox := self.inboxes.get(event.stream_id)) is not None:
                inbox.end()
        elif isinstance(event, spdysession.StreamReset):
            if (inbox := self.inboxes.get(event.stream_id)) is not None:
                inbox.drop()
        elif isinstance(event, spdysession.GoAwayReceived):
            self.goaway = True

    def open_stream(self, sid: int, headers: spdy.Headers) -> None:
        """httpStreamReceived's checks, the SYN_REPLY, then the pairing by request id."""
        stream_type = (headers.get(STREAM_TYPE) or [""])[0]
        port_text = (headers.get(PORT) or [""])[0]
        problem = _check_stream(stream_type, port_text)
        if problem:
            log.warning("port-forward %s/%s: stream rejected: %s", self.target.namespace, self.target.name, problem)
            self.session.reset(sid, spdy.CANCEL)
            return
        self.session.reply(sid)
        request_id = (headers.get(REQUEST_ID) or [""])[0]
        if not request_id:  # clients before requestid: error stream N, data stream N+2
            request_id = str(sid if stream_type == STREAM_TYPE_ERROR else sid - 2)
        pair = self.pairs.get(request_id)
        if pair is None:
            pair = self.pairs[request_id] = _Pair(request_id, int(port_text))
            pair.timer = asyncio.get_running_loop().call_later(
                self.settings.stream_creation_timeout, self.pair_timed_out, request_id)
        slot = "error_id" if stream_type == STREAM_TYPE_ERROR else "data_id"
        if getattr(pair, slot) is not None:
            msg = f"error processing stream for request {request_id}: {stream_type} stream already assigned"
            log.warning("port-forward %s/%s: %s", self.target.namespace, self.target.name, msg)
            if pair.error_id is not None:
                self.session.send_data(pair.error_id, msg.encode())
            self.session.reset(sid, spdy.CANCEL)
            return
        setattr(pair, slot, sid)
        if stream_type == STREAM_TYPE_DATA:
            self.inboxes[sid] = Inbox(self.settings.max_buffered)
        if pair.error_id is not None and pair.data_id is not None:
            if pair.timer is not None:
                pair.timer.cancel()
            del self.pairs[request_id]
            task = asyncio.create_task(self.forward_pair(pair))
            self.tasks.add(task)
            task.add_done_callback(self.task_done)

    def pair_timed_out(self, request_id: str) -> None:
        pair = self.pairs.pop(request_id, None)
        if pair is None:
            return
        msg = f"(conn={id(self.ws):#x}, request={request_id}) timed out waiting for streams"
        log.warning("port-forward %s/%s: %s", self.target.namespace, self.target.name, msg)
        if pair.error_id is not None:
            self.session.send_data(pair.error_id, msg.encode(), fin=True)
        if pair.data_id is not None:
            self.session.finish(pair.data_id)
            self.inboxes.pop(pair.data_id, None)
        self.spawn_flush()

    def spawn_flush(self) -> None:
        task = asyncio.create_task(self.flush())
        self.tasks.add(task)
        task.add_done_callback(self.task_done)

    def task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("port-forward %s/%s: %r", self.target.namespace, self.target.name, task.exception())
        if self.goaway and not self.tasks and not self.ws.closed and self.closing is None:
            self.closing = asyncio.create_task(self._close())

    async def _close(self) -> None:
        await self.ws.close()

    async def forward_pair(self, pair: _Pair) -> None:
        assert pair.error_id is not None and pair.data_id is not None
        data_id, error_id = pair.data_id, pair.error_id
        inbox = self.inboxes[data_id]
        try:
            try:
                reader, writer = await self.connect(self.target, pair.port)
            except ForwardError as e:
                msg = forwarding_error(pair.port, self.target, str(e))
                log.warning("port-forward %s/%s: %s", self.target.namespace, self.target.name, msg)
                self.session.send_data(error_id, msg.encode())
            else:
                await forward(reader, writer, inbox=inbox, send=lambda data: self.send(data_id, data),
                              close_grace=self.settings.close_grace, read_size=self.settings.read_size)
        finally:
            inbox.drop()
            self.inboxes.pop(data_id, None)
            self.session.finish(error_id)
            self.session.finish(data_id)
            await self.flush()


def _check_stream(stream_type: str, port_text: str) -> str:
    """Why a new stream is refused ("" when it is fine): the kubelet's httpStreamReceived."""
    if not port_text:
        return f'"{PORT}" header is required'
    if not port_text.isdigit() or int(port_text) > 65535:
        return f'unable to parse "{port_text}" as a port'
    if int(port_text) < 1:
        return f'port "{port_text}" must be > 0'
    if not stream_type:
        return f'"{STREAM_TYPE}" header is required'
    if stream_type not in (STREAM_TYPE_ERROR, STREAM_TYPE_DATA):
        return f'invalid stream type "{stream_type}"'
    return ""


# ------------------------------------------------------------------------- channel protocol


async def _serve_channels(ws: web.WebSocketResponse, protocol: str | None, ports: list[int], *, target: PodTarget,
                          settings: ForwardSettings, connect: Connector) -> None:
    lock = asyncio.Lock()

    async def send(channel: int, payload: bytes) -> bool:
        if ws.closed:
            return False
        message = rc.encode(protocol, channel, payload)
        try:
            async with lock:
                if isinstance(message, str):
                    await ws.send_str(message)
                else:
                    await ws.send_bytes(message)
        except ConnectionError:
            return False
        return True

    inboxes = [Inbox(settings.max_buffered) for _ in ports]

    async def forward_port(index: int, port: int) -> None:
        data_ch, error_ch = rc.portforward_channels(index)
        try:
            reader, writer = await connect(target, port)
        except ForwardError as e:
            msg = forwarding_error(port, target, str(e))
            log.warning("port-forward %s/%s: %s", target.namespace, target.name, msg)
            await send(error_ch, msg.encode())
            return
        await forward(reader, writer, inbox=inboxes[index], send=lambda data: send(data_ch, data),
                      close_grace=settings.close_grace, read_size=settings.read_size)

    async def read_client() -> None:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                break
            try:
                channel, payload = rc.decode(protocol, msg.data)
            except rc.ProtocolError as e:
                log.warning("port-forward %s/%s: %s", target.namespace, target.name, e)
                continue
            if channel % 2 == 0 and channel // 2 < len(ports) and payload:
                await inboxes[channel // 2].put(payload)

    for i, port in enumerate(ports):
        for channel in rc.portforward_channels(i):
            await send(channel, rc.port_prefix(port))
    async def forward_all() -> None:
        await asyncio.gather(*(forward_port(i, p) for i, p in enumerate(ports)))

    forwards = asyncio.create_task(forward_all())
    reading = asyncio.create_task(read_client())
    try:
        await asyncio.wait({forwards, reading}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (forwards, reading):
            t.cancel()
        await asyncio.gather(forwards, reading, return_exceptions=True)
        await ws.close()


# ---------------------------------------------------------------------------------- handler


def _offered_protocols(request: web.Request) -> list[str]:
    raw = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    return [p.strip() for p in raw.split(",") if p.strip()]


def _is_websocket(request: web.Request) -> bool:
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return request.headers.get("Upgrade", "").lower() == "websocket" and "upgrade" in connection


def _requested_ports(request: web.Request) -> list[int]:
    """``?ports=`` (the API's name) or ``?port=`` (the kubelet's own); ProtocolError if none or bad."""
    raw = request.query.getall("ports", []) + request.query.getall("port", [])
    if not raw:
        raise rc.ProtocolError('query parameter "ports" is required')
    ports = rc.parse_ports(raw)
    if not ports:
        raise rc.ProtocolError('query parameter "ports" cannot be empty')
    return ports


async def handle_portforward(request: web.Request, ctx: StreamingContext, *,
                             settings: ForwardSettings | None = None) -> web.StreamResponse:
    settings = settings or ForwardSettings()
    if not _is_websocket(request):
        return web.Response(status=400, text="Upgrade request required")
    namespace, name = request.match_info["namespace"], request.match_info["pod"]
    try:
        target = await ctx.sandbox(namespace, name)
    except StreamError as e:
        return web.Response(status=e.status, text=e.message)
    offered = _offered_protocols(request)
    protocol = rc.choose_protocol(offered, rc.PORTFORWARD_PROTOCOLS)
    if offered and protocol is None:
        return web.Response(status=400, text=f"requested protocol(s) are not supported: {offered}; "
                                             f"supports {list(rc.PORTFORWARD_PROTOCOLS)}")
    ports: list[int] = []
    if protocol != rc.SPDY_PORTFORWARD:
        try:
            ports = _requested_ports(request)
        except rc.ProtocolError as e:
            return web.Response(status=400, text=str(e))

    async def connect(t: PodTarget, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await open_pod_connection(t, port, timeout=settings.connect_timeout)

    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), compress=False)
    await ws.prepare(request)
    log.info("port-forward %s/%s (%s)%s", namespace, name, protocol or "channel.k8s.io",
             f" ports {ports}" if ports else "")
    if protocol == rc.SPDY_PORTFORWARD:
        await _SpdyForwarder(ws, target, settings, connect).run()
    else:
        await _serve_channels(ws, protocol, ports, target=target, settings=settings, connect=connect)
    return ws


__all__ = ["ForwardSettings", "forwarding_error", "handle_portforward"]
