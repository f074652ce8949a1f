"""The HTTP clients of bench_streams' port-forward measurements.

``download(host, port, path=, size=)``: one ``GET`` on a new TCP connection (to the pod IP, or to a
forward's local port), read up to the Content-Length as HTTP clients do, or on to the server's
close (``to_eof``: how long the close takes to come through). ``Forward``: a ``kubectl|mkctl
port-forward ... LOCAL:8080`` process, ready once a GET through it answers, stopped by its pid.

``get_through_forward``: one GET through a port-forward WebSocket in this process, so the API
server's relay can be set against the kubelet alone (where a forward's time goes).
Data flow: ``get_through_forward(server, path, token=..., port=8080, request_path="/big", size=N)``
-> ``machinery.streamclient.StreamDialer`` opens ``path?ports=8080`` with ``v4.channel.k8s.io``
(the official Python client's protocol; ``path`` is the API server's
``/api/v1/namespaces/NS/pods/NAME/portforward`` or the kubelet's own ``/portforward/NS/NAME``, which
takes the API server's bearer token) -> the request goes out on data channel 0 -> the answer's bytes
come back on channel 0 (the first message of each channel opens with the port's two bytes) until
the head and ``size`` body bytes are in -> the WebSocket is closed. RuntimeError on an error
channel message, a non-200 answer or a short body.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from pathlib import Path

from machinery import remotecommand as rc
from machinery.kubeconfig import ClientConfig
from machinery.streamclient import StreamDialer


async def _get(server: str, path: str, *, token: str | None, port: int, request_path: str, size: int | None) -> None:
    async with StreamDialer(ClientConfig(server=server, token=token)) as dialer:
        ws, protocol = await dialer.dial(path, [("ports", str(port))], (rc.V4,))
        data_ch, error_ch = rc.portforward_channels(0)
        opened: set[int] = set()
        buf = b""
        head: bytes | None = None
        body = 0
        try:
            request = rc.encode(protocol, data_ch, (
                f"GET {request_path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n").encode())
            await (ws.send_bytes(request) if isinstance(request, bytes) else ws.send_str(request))
            async for msg in ws:
                channel, payload = rc.decode(protocol, msg.data)
                if channel not in opened:
                    opened.add(channel)
                    payload = payload[2:]
                if channel == error_ch and payload:
                    raise RuntimeError(f"port-forward error: {payload.decode(errors='replace')}")
                if channel != data_ch:
                    continue
                if head is None:
                    buf += payload
                    if b"\r\n\r\n" in buf:
                        head, rest = buf.split(b"\r\n\r\n", 1)
                        body = len(rest)
                else:
                    body += len(payload)
                if head is not None and size is not None and body >= size:
                    break
        finally:
            await ws.close()
    status = (head or b"").split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" " or (size is not None and body != size):
        raise RuntimeError(f"GET {request_path} through {path}: {status.decode(errors='replace')!r}, "
                           f"{body} body bytes (want {size})")


def get_through_forward(server: str, path: str, *, token: str | None = None, port: int = 8080,
                        request_path: str = "/", size: int | None = None) -> None:
    """``GET request_path`` to ``port`` of the pod through one port-forward WebSocket (see above)."""
    asyncio.run(_get(server, path, token=token, port=port, request_path=request_path, size=size))


class Forward:
    """``kubectl|mkctl port-forward ... LOCAL:8080`` running (its output in a file: kubectl prints a
    line per connection, which would fill a pipe), until it answers HTTP; stopped by its pid."""

    def __init__(self, argv: list[str], env: dict[str, str], *, port: int, log: Path) -> None:
        self.port, self.log = port, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([*argv, f"{port}:8080"], stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(argv)} exited {self.proc.returncode}: {self.output()}")
            try:
                download("127.0.0.1", port, path="/", size=None, timeout=5)
                return
            except (OSError, RuntimeError) as e:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{' '.join(argv)}: no answer on 127.0.0.1:{port} ({e}): {self.output()}")
                time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-1500:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def download(host: str, port: int, *, path: str, size: int | None, timeout: float = 60, to_eof: bool = False) -> float:
    """``GET path`` on a new connection, read up to the Content-Length as HTTP clients do (with
    ``to_eof`` on to the server's close); RuntimeError unless the answer is 200 with ``size`` body
    bytes (any size when None). Seconds from the last body byte to the close (0 without ``to_eof``)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"connection closed after {len(head)} bytes of the answer's head")
            head += chunk
        head, body = head.split(b"\r\n\r\n", 1)
        length = next((int(v) for k, _, v in (x.partition(b":") for x in head.split(b"\r\n")[1:])
                       if k.strip().lower() == b"content-length"), None)
        n = len(body)
        while (length is None or n < length) and (chunk := s.recv(1 << 20)):
            n += len(chunk)
        done = time.monotonic()
        while to_eof and s.recv(1 << 20):
            pass
        closed = time.monotonic() if to_eof else done
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" " or (size is not None and n != size):
        raise RuntimeError(f"GET {path}: {status.decode(errors='replace')}, {n} body bytes (want {size})")
    return closed - done
