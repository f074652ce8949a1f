"""A process's stdio through the Docker engine: hijacked exec/attach connections (``kubelet.runtime`` only).

Role: the part of the Docker runtime that ``kubectl exec -i``/``attach`` need and the Docker SDK
does not give safely: the SDK's ``exec_start(socket=True)`` reads the HTTP response head through
a buffered reader and hands back the raw socket, so output the engine sent right behind the head
(an attach to a container that prints all the time) can be lost. Here the upgrade request is
written and its head read by hand, and whatever arrived past the head is kept.

Data flow:

    DockerRuntime.exec_stream / attach_stream (in the kubelet's thread pool)
      -> hijack(base_url, "POST /v1.41/exec/ID/start" | "/containers/ID/attach?stream=1&..."):
         connect (unix:// or tcp://), ``Connection: Upgrade``, read the head (101 or 200), keep the rest
      -> HijackedStdio(socket, pending bytes, multiplexed=not tty): a kubelet.cri.StdioStream
      -> the streaming server (event loop) reads it non-blocking; ``DockerFrames`` splits the
         non-TTY stream's 8-byte headers (stream type 1 stdout / 2 stderr, 0, 0, 0, big-endian
         size) into (channel, bytes) chunks; a TTY stream is raw bytes on stdout.

Engine errors before the upgrade (404 no such container, 409 not running) become the errors of
``kubelet.cri``. No Docker SDK here: plain sockets and the engine's documented HTTP API.
"""

from __future__ import annotations

import json
import socket
import struct
from urllib.parse import urlsplit

from kubelet.cri import (
    STDERR,
    STDOUT,
    ContainerNotFound,
    ContainerRuntimeError,
    InvalidSpec,
    RuntimeConflict,
    RuntimeTimeout,
    RuntimeUnavailable,
)

_MAX_HEAD = 64 * 1024
_READ = 64 * 1024


class DockerFrames:
    """Incremental decoder of Docker's multiplexed stdio stream (pure; keeps a partial frame)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        out: list[tuple[int, bytes]] = []
        while len(self._buf) >= 8:
            kind = self._buf[0]
            size = struct.unpack(">I", self._buf[4:8])[0]
            if len(self._buf) < 8 + size:
                break
            payload = bytes(self._buf[8:8 + size])
            del self._buf[:8 + size]
            # 0 is stdin (never sent by the engine); anything but stderr counts as stdout.
            channel = STDERR if kind == 2 else STDOUT
            if payload:
                if out and out[-1][0] == channel:
                    out[-1] = (channel, out[-1][1] + payload)
                else:
                    out.append((channel, payload))
        return out


class HijackedStdio:
    """``kubelet.cri.StdioStream`` on a hijacked engine connection (non-blocking after construction)."""

    def __init__(self, sock: socket.socket, pending: bytes, *, tty: bool, exec_id: str | None) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._pending = pending
        self._frames = None if tty else DockerFrames()
        self._tty = tty
        self._exec_id = exec_id
        self._ended = False

    @property
    def exec_id(self) -> str | None:
        return self._exec_id

    @property
    def tty(self) -> bool:
        return self._tty

    def fileno(self) -> int:
        return self._sock.fileno()

    def read(self) -> list[tuple[int, bytes]] | None:
        if self._ended:
            return None
        if self._pending:
            data, self._pending = self._pending, b""
        else:
            try:
                data = self._sock.recv(_READ)
            except (BlockingIOError, InterruptedError):
                return []
            except OSError:
                data = b""
            if not data:
                self._ended = True
                return None
        if self._frames is None:
            return [(STDOUT, data)]
        return self._frames.feed(data)

    def write(self, data: bytes) -> int:
        try:
            return self._sock.send(data)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError as e:
            raise ConnectionError(f"stdin closed: {e}") from e

    def close_write(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # already closed by the engine

    def close(self) -> None:
        self._sock.close()


def _connect(base_url: str, timeout: float) -> socket.socket:
    url = urlsplit(base_url)
    try:
        if url.scheme in ("unix", "http+unix"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(url.path)
            except OSError:
                sock.close()
                raise
            return sock
        if url.scheme in ("tcp", "http") and url.hostname:
            return socket.create_connection((url.hostname, url.port or 2375), timeout=timeout)
    except OSError as e:
        raise RuntimeUnavailable(f"connect to the Docker engine at {base_url}: {e}") from e
    raise ContainerRuntimeError(f"exec and attach need a unix:// or tcp:// engine address, not {base_url}")


def _error(status: int, what: str, body: bytes) -> ContainerRuntimeError:
    try:
        message = str(json.loads(body).get("message") or "")
    except (ValueError, AttributeError):
        message = body.decode("utf-8", "replace").strip()
    text = f"{what}: {message or f'engine answered {status}'}"
    if status == 404:
        return ContainerNotFound(text)
    if status == 409:
        return RuntimeConflict(text)
    if status == 400:
        return InvalidSpec(text)
    return ContainerRuntimeError(text)


def _error_body(sock: socket.socket, head: bytes, rest: bytes) -> bytes:
    """The body of an error answer: by Content-Length, else (chunked) up to the last chunk."""
    length = None
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
        elif name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    body = rest
    try:
        while (length is not None and len(body) < length) or (chunked and b"\r\n0\r\n" not in b"\r\n" + body):
            chunk = sock.recv(_READ)
            if not chunk:
                break
            body += chunk
    except OSError:
        pass
    if chunked:
        out, i = b"", 0
        while True:
            end = body.find(b"\r\n", i)
            if end < 0:
                break
            try:
                size = int(body[i:end].split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            out += body[end + 2:end + 2 + size]
            i = end + 2 + size + 2
        return out
    return body if length is None else body[:length]


def hijack(base_url: str, path: str, *, body: dict[str, object] | None, what: str,
           timeout: float) -> tuple[socket.socket, bytes]:
    """POSTs ``path`` asking to upgrade the connection; returns the connected socket (blocking,
    no timeout) and the stream bytes that arrived with the response head."""
    sock = _connect(base_url, timeout)
    payload = json.dumps(body).encode() if body is not None else b""
    request = (f"POST {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: minik8s-kubelet\r\n"
               "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(payload)}\r\n\r\n").encode() + payload
    try:
        sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(_READ)
            if not chunk:
                raise RuntimeUnavailable(f"{what}: the engine closed the connection")
            buf += chunk
            if len(buf) > _MAX_HEAD:
                raise ContainerRuntimeError(f"{what}: oversized response head")
        head, rest = buf.split(b"\r\n\r\n", 1)
        try:
            status = int(head.split(b" ", 2)[1])
        except (IndexError, ValueError):
            raise ContainerRuntimeError(f"{what}: bad response {head[:80]!r}") from None
        if status not in (101, 200):
            raise _error(status, what, _error_body(sock, head, rest))
    except TimeoutError as e:
        sock.close()
        raise RuntimeTimeout(f"{what}: {e}") from e
    except OSError as e:
        sock.close()
        raise RuntimeUnavailable(f"{what}: {e}") from e
    except ContainerRuntimeError:
        sock.close()
        raise
    sock.settimeout(None)
    return sock, rest


__all__ = ["DockerFrames", "HijackedStdio", "hijack"]
