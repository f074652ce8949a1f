"""The client side of exec, attach and port-forward: WebSockets through the API server.

Data flow (``mkctl exec -i web -- cat``):

    StreamDialer(ClientConfig: server, TLS/CA, bearer token or basic auth, as kubectl reads them)
      .dial("/api/v1/namespaces/NS/pods/web/exec", [("command", "cat"), ("stdin", "true"), ...],
            (v5.channel.k8s.io, v4.channel.k8s.io))  -> a WebSocket and the protocol the server chose
      (a refused upgrade: the server's ``Status`` -> ``machinery.errors.ApiError``, like the client)
    run_remote_command(ws, protocol, RemoteIO(stdin chunks, stdout/stderr sinks, resize sizes))
      stdin chunks  -> [0]+data ...; at their end the v5 CLOSE message [255, 0] (what ends ``tar x``)
      resize sizes  -> [4]+{"Width": W, "Height": H}
      [1]/[2] data  -> the stdout / stderr sinks;  [3] the status -> ``Outcome`` (``outcome_of``)
    forward_connection(dialer, path, port, reader, writer): one WebSocket per accepted TCP
      connection, ``?ports=PORT`` with ``v4.channel.k8s.io`` (the Python client's protocol): channel 0
      data and channel 1 error, each opened by the server with the port's two little-endian bytes.

Local terminal plumbing for the CLI sits here too: ``fd_chunks`` (a file descriptor read in a
daemon thread, since a terminal, pipe or regular file cannot all be read by the event loop),
``raw_terminal`` (termios raw mode, restored at the end) and ``terminal_sizes`` (the current size,
then one per SIGWINCH). The channel encoding itself is ``machinery.remotecommand``'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import signal
import threading
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence

import aiohttp

from machinery import errors, remotecommand as rc
from machinery.client import ConnectionFailedError
from machinery.kubeconfig import ClientConfig

EXEC_PROTOCOLS = (rc.V5, rc.V4)
PORTFORWARD_PROTOCOLS = (rc.V4,)
Sink = Callable[[bytes], Any]


# --------------------------------------------------------------------------------- dialing
# The body of a refused upgrade (aiohttp's WSServerHandshakeError drops it, and it carries the
# server's Status): the session's middleware keeps it in the dialing task's own holder.
_REFUSAL: contextvars.ContextVar[list[bytes] | None] = contextvars.ContextVar("_REFUSAL", default=None)


async def _keep_refusal(req: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
    resp = await handler(req)
    holder = _REFUSAL.get()
    if resp.status != 101 and holder is not None:
        with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
            holder.append(await resp.read())
    return resp


class StreamDialer:
    """One aiohttp session with the kubeconfig's connection settings; ``dial`` opens WebSockets."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._http: aiohttp.ClientSession | None = None

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None:
            basic = self.config.basic_auth
            headers = self.config.auth_headers
            auth = aiohttp.BasicAuth(*basic) if basic and "Authorization" not in headers else None
            self._http = aiohttp.ClientSession(
                headers=headers, auth=auth, connector=aiohttp.TCPConnector(ssl=self.config.verify, limit=0),
                middlewares=(_keep_refusal,))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> "StreamDialer":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def dial(self, path: str, params: Sequence[tuple[str, str]],
                   protocols: Sequence[str]) -> tuple[aiohttp.ClientWebSocketResponse, str | None]:
        """A WebSocket on ``path`` and the subprotocol the server chose (None: none named)."""
        url = self.config.server.rstrip("/") + path
        refused: list[bytes] = []
        token = _REFUSAL.set(refused)
        try:
            ws = await self._session().ws_connect(
                url, params=list(params), protocols=tuple(protocols), autoping=True,
                max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0))
        except aiohttp.WSServerHandshakeError as e:
            raise upgrade_error(e.status, refused[0] if refused else b"") from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise ConnectionFailedError(message=f"GET {url} failed: {type(e).__name__}: {e}") from e
        finally:
            _REFUSAL.reset(token)
        return ws, ws.protocol


def upgrade_error(status: int, body: bytes) -> errors.ApiError:
    """A refused upgrade as the client reports it: the server's ``Status``, else its text."""
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("kind") == "Status":
        return errors.ApiError.from_status(doc, status)
    text = body.decode("utf-8", "replace").strip()
    return errors.ApiError.from_status(
        {"message": f"unable to upgrade connection: {text or f'the server responded with HTTP {status}'}"}, status)


# --------------------------------------------------------------------------------- exec / attach
@dataclass(frozen=True)
class Outcome:
    """How a remote command ended: ``code`` for the process to exit with, ``message`` for stderr
    ("" on success; kubectl's "command terminated with exit code 3" for a non-zero exit)."""
    code: int
    message: str = ""


def outcome_of(protocol: str | None, payload: bytes | None) -> Outcome:
    """client-go's ``errorDecoderV4`` (and the text of the older protocols) as an ``Outcome``."""
    code = rc.exit_code_of(protocol, payload)
    if code == 0:
        return Outcome(0)
    message = rc.status_message(protocol, payload)
    if rc.status_is_json(protocol):
        try:
            doc = json.loads(payload or b"")
        except ValueError:
            return Outcome(1, f"error stream protocol error: invalid status {payload!r}")
        if isinstance(doc, dict) and doc.get("reason") == rc.NON_ZERO_EXIT_CODE:
            return Outcome(code, f"command terminated with exit code {code}")
    return Outcome(1, message or "error executing remote command")


@dataclass
class RemoteIO:
    """The local ends of a remote command: what to send, where received bytes go."""
    stdin: AsyncIterator[bytes] | None = None
    stdout: Sink | None = None
    stderr: Sink | None = None
    resize: AsyncIterator[rc.TerminalSize] | None = None


def remote_command_params(*, command: Sequence[str] = (), container: str | None, stdin: bool, stdout: bool,
                          stderr: bool, tty: bool) -> list[tuple[str, str]]:
    """``PodExecOptions`` / ``PodAttachOptions`` as query parameters (false values left out, as
    client-go's parameter codec does)."""
    out = [("command", c) for c in command]
    if container:
        out.append(("container", container))
    out += [(name, "true") for name, on in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr), ("tty", tty))
            if on]
    return out


async def _messages(ws: aiohttp.ClientWebSocketResponse, protocol: str | None) -> AsyncIterator[tuple[int, bytes]]:
    """(channel, payload) of each data message until the WebSocket closes (malformed ones skipped)."""
    async for msg in ws:
        if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            return
        try:
            yield rc.decode(protocol, msg.data)
        except rc.ProtocolError:
            continue


async def _send(ws: aiohttp.ClientWebSocketResponse, protocol: str | None, channel: int, payload: bytes) -> None:
    message = rc.encode(protocol, channel, payload)
    await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))


async def _finish(ws: aiohttp.ClientWebSocketResponse, tasks: list[asyncio.Task[None]]) -> None:
    """Stop the sending tasks (the server has closed, or the local side went away) and close."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, ConnectionError, RuntimeError):
            await t
    await ws.close()


async def _emit(sink: Sink | None, data: bytes) -> None:
    if sink is not None and data:
        result = sink(data)
        if asyncio.iscoroutine(result):
            await result


async def run_remote_command(ws: aiohttp.ClientWebSocketResponse, protocol: str | None, io: RemoteIO) -> Outcome:
    """Pump the streams until the server closes the WebSocket; the error channel's ``Outcome``."""
    lock = asyncio.Lock()

    async def send(channel: int, payload: bytes) -> None:
        async with lock:
            await _send(ws, protocol, channel, payload)

    async def pump_stdin(chunks: AsyncIterator[bytes]) -> None:
        async for chunk in chunks:
            await send(rc.STDIN, chunk)
        if rc.supports_close(protocol):
            await send(rc.CLOSE, bytes([rc.STDIN]))

    async def pump_resize(sizes: AsyncIterator[rc.TerminalSize]) -> None:
        async for size in sizes:
            await send(rc.RESIZE, rc.encode_resize(size))

    tasks = []
    if io.stdin is not None:
        tasks.append(asyncio.create_task(pump_stdin(io.stdin)))
    if io.resize is not None:
        tasks.append(asyncio.create_task(pump_resize(io.resize)))
    status: bytes | None = None
    try:
        async for channel, payload in _messages(ws, protocol):
            if channel == rc.STDOUT:
                await _emit(io.stdout, payload)
            elif channel == rc.STDERR:
                await _emit(io.stderr, payload)
            elif channel == rc.ERROR:
                status = (status or b"") + payload
    finally:
        await _finish(ws, tasks)
    if status is None and ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
        # the connection was lost before the command's status (client-go's wording)
        return Outcome(1, "error reading from error stream: websocket: close 1006 (abnormal closure): "
                          "unexpected EOF")
    return outcome_of(protocol, status)


# --------------------------------------------------------------------------------- port-forward
async def forward_connection(dialer: StreamDialer, path: str, port: int, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> str | None:
    """Relay one local TCP connection to ``port`` of the pod behind ``path`` (``.../portforward``);
    the error the server reported for it (or the failed upgrade), None when it went well."""
    try:
        ws, protocol = await dialer.dial(path, [("ports", str(port))], PORTFORWARD_PROTOCOLS)
    except errors.ApiError as e:
        writer.close()
        return e.message
    data_ch, error_ch = rc.portforward_channels(0)
    prefixed: set[int] = set()
    error = b""

    async def local_to_remote() -> None:
        while chunk := await reader.read(65536):
            await _send(ws, protocol, data_ch, chunk)

    upstream = asyncio.create_task(local_to_remote())
    try:
        async for channel, payload in _messages(ws, protocol):
            if channel not in prefixed and channel in (data_ch, error_ch):
                prefixed.add(channel)  # the first message of each channel opens with the port
                payload = payload[2:]
            if channel == data_ch and payload:
                writer.write(payload)
                await writer.drain()
            elif channel == error_ch:
                error += payload
    except (ConnectionError, aiohttp.ClientError):
        pass  # the local side went away: the WebSocket is closed below
    finally:
        await _finish(ws, [upstream])
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
    return error.decode("utf-8", "replace") or None


# --------------------------------------------------------------------------------- local terminal
async def fd_chunks(fd: int, *, size: int = 32768) -> AsyncIterator[bytes]:
    """The bytes read from ``fd`` until its end, read in a daemon thread (so that a blocked read
    of a terminal never holds the process at exit)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=8)

    def put(chunk: bytes) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(chunk), loop).result()

    def read() -> None:
        try:
            while True:
                chunk = os.read(fd, size)
                put(chunk)
                if not chunk:
                    return
        except (OSError, RuntimeError, asyncio.CancelledError):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(queue.put_nowait, b"")

    threading.Thread(target=read, name=f"stdin-{fd}", daemon=True).start()
    while True:
        chunk = await queue.get()
        if not chunk:
            return
        yield chunk


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """The terminal on ``fd`` in raw mode (keys go to the remote side as typed), restored after."""
    import termios
    import tty
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)  # not TCSAFLUSH: what was typed ahead still goes to the command
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def terminal_size(fd: int) -> rc.TerminalSize | None:
    try:
        cols, rows = os.get_terminal_size(fd)
    except OSError:
        return None
    return rc.TerminalSize(cols, rows)


async def terminal_sizes(fd: int, *, first: Sequence[rc.TerminalSize] = ()) -> AsyncIterator[rc.TerminalSize]:
    """``first`` (or the terminal's size now), then the new size after each SIGWINCH."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    loop.add_signal_handler(signal.SIGWINCH, changed.set)
    try:
        initial = list(first) or [s for s in [terminal_size(fd)] if s is not None]
        for size in initial:
            yield size
        while True:
            await changed.wait()
            changed.clear()
            now = terminal_size(fd)
            if now is not None:
                yield now
    finally:
        loop.remove_signal_handler(signal.SIGWINCH)


def bytes_source(data: bytes, *, chunk: int = 65536) -> AsyncIterator[bytes]:
    """``data`` as stdin chunks (what ``mkctl cp`` sends to ``tar x``)."""
    async def gen() -> AsyncIterator[bytes]:
        for i in range(0, len(data), chunk):
            yield data[i:i + chunk]
    return gen()


def write_sink(write: Callable[[bytes], Any], flush: Callable[[], Any] | None = None) -> Callable[[bytes], Awaitable[None]]:
    """A sink writing to a local file object (flushed at once: a terminal shows output as it comes)."""
    async def sink(data: bytes) -> None:
        write(data)
        if flush is not None:
            flush()
    return sink


__all__ = ["EXEC_PROTOCOLS", "PORTFORWARD_PROTOCOLS", "Outcome", "RemoteIO", "StreamDialer", "bytes_source",
           "fd_chunks", "forward_connection", "is_terminal", "outcome_of", "raw_terminal", "remote_command_params",
           "run_remote_command", "terminal_size", "terminal_sizes", "upgrade_error", "write_sink"]
