"""One remote-command session: a WebSocket's channels <-> a process's stdio (exec and attach).

Data flow (``kubectl exec -i web -- cat``, after the upgrade):

    client --[0]stdin, [4]resize, v5 [255,0] close-stdin--> ChannelSession.run
        stdin  -> StdioStream.write (non-blocking, waits for the socket to be writable)
        close  -> StdioStream.close_write (the process reads EOF)
        resize -> the ``resize`` callback (Docker exec/container resize, in the thread pool)
    StdioStream.read (non-blocking, woken by loop.add_reader) -> [1]stdout / [2]stderr -> client
    the stream ends -> run() returns True; the caller writes the status on [3] and ``finish``es
    the client leaves -> run() returns False; the caller closes the stream

Nothing here blocks the event loop or occupies an executor thread while a session is idle: the
engine's socket is watched with ``add_reader``/``add_writer``. Messages follow
``machinery.remotecommand`` (binary or base64 framing, v5's close channel).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping

from aiohttp import WSMsgType, web

from kubelet.cri import StdioStream
from machinery import remotecommand as rc

log = logging.getLogger(__name__)

Resize = Callable[[rc.TerminalSize], Awaitable[None]]

_TRUE = ("1", "t", "T", "true", "TRUE", "True")  # Go's strconv.ParseBool; "1" is what the apiserver sends


def parse_bool(value: str | None) -> bool:
    return value in _TRUE


@dataclass(frozen=True)
class StreamOptions:
    """Which streams a client asked for (PodExecOptions / PodAttachOptions)."""
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def parse_options(query: Mapping[str, str]) -> StreamOptions:
    """The kubelet's rules (remotecommand.NewOptions): a TTY has no separate stderr; at least one
    stream. ValueError with the message Kubernetes answers."""
    tty = parse_bool(query.get("tty"))
    opts = StreamOptions(stdin=parse_bool(query.get("stdin")), stdout=parse_bool(query.get("stdout")),
                         stderr=parse_bool(query.get("stderr")) and not tty, tty=tty)
    if not (opts.stdin or opts.stdout or opts.stderr):
        raise ValueError("you must specify at least 1 of stdin, stdout, stderr")
    return opts


async def _wait_fd(fd: int, *, write: bool) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    (loop.add_writer if write else loop.add_reader)(fd, ready)
    try:
        await fut
    finally:
        (loop.remove_writer if write else loop.remove_reader)(fd)


async def discard_until_end(stream: StdioStream, *, timeout: float) -> bool:
    """Reads and drops the stream's output until its end (True) or ``timeout`` (False)."""
    try:
        async with asyncio.timeout(timeout):
            while (chunks := stream.read()) is not None:
                if not chunks:
                    await _wait_fd(stream.fileno(), write=False)
    except TimeoutError:
        return False
    return True


class ChannelSession:
    """The upgraded WebSocket of one exec or attach, speaking ``protocol``'s channels."""

    def __init__(self, ws: web.WebSocketResponse, protocol: str | None, opts: StreamOptions) -> None:
        self.ws = ws
        self.protocol = protocol
        self.opts = opts
        self._stdin_open = opts.stdin
        self._early: list[tuple[int, bytes]] = []  # read by initial_size, relayed first

    async def send(self, channel: int, payload: bytes) -> None:
        msg = rc.encode(self.protocol, channel, payload)
        if isinstance(msg, str):
            await self.ws.send_str(msg)
        else:
            await self.ws.send_bytes(msg)

    async def hello(self) -> None:
        """The empty message on the lowest writable channel: "the connection is established"
        (kubelet createWebSocketStreams)."""
        first = rc.STDOUT if self.opts.stdout else rc.STDERR if self.opts.stderr else rc.ERROR
        await self.send(first, b"")

    async def finish(self, status: Mapping[str, Any]) -> None:
        """Writes how the command ended on the error channel, then closes the WebSocket."""
        payload = rc.status_payload(self.protocol, status)
        try:
            if payload is not None and not self.ws.closed:
                await self.send(rc.ERROR, payload)
        except (ConnectionError, RuntimeError):
            pass  # the client is gone already
        await self.ws.close()

    async def run(self, stream: StdioStream, *, resize: Resize) -> bool:
        """Relays until the stream ends (True) or the client leaves (False). The stream is left
        open: the caller reads the exit code, then closes it."""
        output = asyncio.create_task(self._output(stream))
        inbound = asyncio.create_task(self._input(stream, resize))
        try:
            await asyncio.wait({output, inbound}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (inbound, output):
                task.cancel()
            await asyncio.gather(inbound, output, return_exceptions=True)
        if output.done() and not output.cancelled() and output.exception() is None:
            return True
        if output.done() and not output.cancelled() and output.exception() is not None:
            log.info("stdio relay ended: %s", output.exception())
        return False

    async def _output(self, stream: StdioStream) -> None:
        wanted = {rc.STDOUT: self.opts.stdout, rc.STDERR: self.opts.stderr}
        while True:
            chunks = stream.read()
            if chunks is None:
                return
            if not chunks:
                await _wait_fd(stream.fileno(), write=False)
                continue
            for channel, data in chunks:
                if wanted.get(channel):
                    await self.send(channel, data)

    async def _write_stdin(self, stream: StdioStream, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = stream.write(bytes(view))
            if n:
                view = view[n:]
            else:
                await _wait_fd(stream.fileno(), write=True)

    def _decode(self, data: bytes | str) -> tuple[int, bytes] | None:
        try:
            return rc.decode(self.protocol, data)
        except rc.ProtocolError as e:
            log.debug("ignoring a bad message: %s", e)
            return None

    async def initial_size(self, timeout: float) -> rc.TerminalSize | None:
        """A TTY client's first terminal size, when it comes within ``timeout`` (kubectl sends it at
        once): read before the process starts, so the process starts with it. Messages read
        meanwhile are kept for the relay. None: no size came (or the client left)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                msg = await self.ws.receive(timeout=left)
            except asyncio.TimeoutError:
                return None
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                return None  # closed: the relay sees it too
            decoded = self._decode(msg.data)
            if decoded is None:
                continue
            if decoded[0] == rc.RESIZE:
                try:
                    return rc.decode_resize(decoded[1])
                except rc.ProtocolError:
                    continue
            self._early.append(decoded)
        return None

    async def _input(self, stream: StdioStream, resize: Resize) -> None:
        early, self._early = self._early, []
        for channel, payload in early:
            await self._on_message(stream, resize, channel, payload)
        async for msg in self.ws:  # ends when the client closes or the connection breaks
            if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT) and (decoded := self._decode(msg.data)) is not None:
                await self._on_message(stream, resize, *decoded)

    async def _on_message(self, stream: StdioStream, resize: Resize, channel: int, payload: bytes) -> None:
        if channel == rc.STDIN:
            if self._stdin_open and payload:
                try:
                    await self._write_stdin(stream, payload)
                except ConnectionError:
                    self._stdin_open = False  # the process closed its stdin: drop the rest
        elif channel == rc.RESIZE:
            try:
                size = rc.decode_resize(payload)
            except rc.ProtocolError as e:
                log.debug("ignoring a bad resize: %s", e)
                return
            await resize(size)
        elif channel == rc.CLOSE and rc.supports_close(self.protocol) and payload[:1] == bytes([rc.STDIN]):
            if self._stdin_open:
                self._stdin_open = False
                stream.close_write()


__all__ = ["ChannelSession", "Resize", "StreamOptions", "discard_until_end", "parse_bool", "parse_options"]
