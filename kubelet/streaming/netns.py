"""TCP connections to localhost:PORT inside a pod's network namespace (port-forward's far end).

Data flow: ``open_pod_connection(target, port)`` -> a short-lived thread of its own enters the
sandbox's network namespace (``setns(CLONE_NEWNET)`` on ``/proc/<sandbox pid>/ns/net``; Python 3.11
has no ``os.setns``, so libc's through ctypes) and creates the sockets there: a socket stays in the
namespace it was created in, whichever thread uses it later. The thread ends right after (its
namespace dies with it; never a pooled thread, nor the loop's default executor). The event loop
then connects the non-blocking socket to 127.0.0.1:PORT, else [::1]:PORT, as containerd does, and
hands it to asyncio streams.

When the namespace cannot be entered (no sandbox pid, no CAP_SYS_ADMIN) the connection goes to the
pod IP instead, and a log line says so: the same port, reached through the pod network.

A failure raises ``ForwardError`` whose message follows containerd's wording, which the kubelet
wraps into "error forwarding port P to pod ..., uid : ..." on the client's error stream.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
import socket
import threading
from dataclasses import dataclass

from .context import PodTarget

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
CONNECT_TIMEOUT = 30.0


class ForwardError(Exception):
    """The pod's port cannot be reached (the message is what the client is told)."""


class NamespaceUnavailable(Exception):
    """The network namespace cannot be entered here (no pid, no permission)."""


@dataclass
class _Sockets:
    v4: socket.socket | None = None
    v6: socket.socket | None = None
    v6_error: OSError | None = None


def netns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def _sockets_in_namespace(path: str) -> _Sockets:
    """In the calling thread: enter the namespace, create one IPv4 and one IPv6 socket there."""
    _setns(path)
    out = _Sockets(v4=socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    try:
        out.v6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError as e:  # no IPv6 in that namespace
        out.v6_error = e
    return out


async def _in_namespace_thread(path: str) -> _Sockets:
    """Runs ``_sockets_in_namespace`` in a thread of its own that ends right after."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[_Sockets] = loop.create_future()

    def deliver(result: _Sockets | None, error: BaseException | None) -> None:
        if fut.cancelled():
            if result is not None:
                _close(result)
            return
        if error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = _sockets_in_namespace(path)
        except BaseException as e:  # handed to the loop, raised there
            loop.call_soon_threadsafe(deliver, None, e)
        else:
            loop.call_soon_threadsafe(deliver, result, None)

    threading.Thread(target=run, name=f"netns-{path}", daemon=True).start()
    return await fut


def _close(s: _Sockets) -> None:
    for sock in (s.v4, s.v6):
        if sock is not None:
            sock.close()


def _go_dial_error(network: str, address: str, e: BaseException) -> str:
    """Go's wording of a failed dial: ``dial tcp4 127.0.0.1:8080: connect: connection refused``."""
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return f"dial {network} {address}: i/o timeout"
    if isinstance(e, OSError) and e.errno is not None:
        return f"dial {network} {address}: connect: {os.strerror(e.errno).lower()}"
    return f"dial {network} {address}: {e}"


async def _connect(sock: socket.socket, address: tuple[str, int], timeout: float) -> None:
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, address), timeout)


async def _connect_in_namespace(target: PodTarget, port: int, timeout: float) -> socket.socket:
    if target.sandbox_pid is None:
        raise NamespaceUnavailable("the sandbox has no process")
    path = netns_path(target.sandbox_pid)
    try:
        socks = await _in_namespace_thread(path)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES, errno.ENOENT, errno.ESRCH, errno.EINVAL):
            raise NamespaceUnavailable(f"cannot enter {path}: {e.strerror}") from None
        raise
    assert socks.v4 is not None
    try:
        try:
            await _connect(socks.v4, ("127.0.0.1", port), timeout)
            sock, socks.v4 = socks.v4, None
            return sock
        except (OSError, asyncio.TimeoutError) as e4:
            err4 = _go_dial_error("tcp4", f"127.0.0.1:{port}", e4)
        if socks.v6 is None:
            err6 = f"dial tcp6 [::1]:{port}: socket: {socks.v6_error}"
        else:
            try:
                await _connect(socks.v6, ("::1", port), timeout)
                sock, socks.v6 = socks.v6, None
                return sock
            except (OSError, asyncio.TimeoutError) as e6:
                err6 = _go_dial_error("tcp6", f"[::1]:{port}", e6)
        raise ForwardError(
            f'failed to execute portforward in network namespace "{path}": failed to connect to localhost:{port} '
            f'inside namespace "{target.sandbox_id}", IPv4: {err4} IPv6 {err6} ')
    finally:
        _close(socks)


async def _connect_to_pod_ip(target: PodTarget, port: int, timeout: float) -> socket.socket:
    if not target.pod_ip:
        raise ForwardError(f'failed to connect to pod "{target.namespace}/{target.name}": it has no network '
                           "namespace this kubelet can enter and no IP")
    family = socket.AF_INET6 if ":" in target.pod_ip else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        await _connect(sock, (target.pod_ip, port), timeout)
        return sock
    except (OSError, asyncio.TimeoutError) as e:
        sock.close()
        network, host = ("tcp6", f"[{target.pod_ip}]") if family == socket.AF_INET6 else ("tcp4", target.pod_ip)
        reason = _go_dial_error(network, f"{host}:{port}", e)
        raise ForwardError(f'failed to connect to {target.pod_ip}:{port} of pod "{target.namespace}/{target.name}": '
                           f"{reason}") from None


async def open_pod_connection(target: PodTarget, port: int, *, timeout: float = CONNECT_TIMEOUT
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Asyncio streams of a TCP connection to localhost:``port`` in the pod (ForwardError if none)."""
    try:
        sock = await _connect_in_namespace(target, port, timeout)
    except NamespaceUnavailable as e:
        log.warning("port-forward to %s/%s:%d through the pod IP %s: %s", target.namespace, target.name, port,
                    target.pod_ip, e)
        sock = await _connect_to_pod_ip(target, port, timeout)
    try:
        return await asyncio.open_connection(sock=sock, limit=1 << 16)
    except BaseException:
        sock.close()
        raise


__all__ = ["CLONE_NEWNET", "ForwardError", "netns_path", "open_pod_connection"]
