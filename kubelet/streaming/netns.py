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
class _Candidate:
    """A socket made inside the namespace for one loopback address (or why there is none)."""
    network: str  # Go's name: tcp4 | tcp6
    host: str
    sock: socket.socket | None
    error: OSError | None = None

    def shown(self, port: int) -> str:
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"


_LOOPBACKS = (("tcp4", socket.AF_INET, "127.0.0.1"), ("tcp6", socket.AF_INET6, "::1"))  # containerd's order


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


def _sockets_in_namespace(path: str) -> list[_Candidate]:
    """In the calling thread: enter the namespace, create an IPv4 and an IPv6 socket there."""
    _setns(path)
    out: list[_Candidate] = []
    for network, family, host in _LOOPBACKS:
        try:
            out.append(_Candidate(network, host, socket.socket(family, socket.SOCK_STREAM)))
        except OSError as e:  # e.g. no IPv6 in that namespace
            out.append(_Candidate(network, host, None, e))
    return out


async def _in_namespace_thread(path: str) -> list[_Candidate]:
    """Runs ``_sockets_in_namespace`` in a thread of its own that ends right after."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[list[_Candidate]] = loop.create_future()

    def deliver(result: list[_Candidate] | None, error: BaseException | None) -> None:
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


def _close(candidates: list[_Candidate]) -> None:
    for c in candidates:
        if c.sock is not None:
            c.sock.close()


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
        candidates = await _in_namespace_thread(path)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EACCES, errno.ENOENT, errno.ESRCH, errno.EINVAL):
            raise NamespaceUnavailable(f"cannot enter {path}: {e.strerror}") from None
        raise
    errors: list[str] = []
    try:
        for c in candidates:
            if c.sock is None:
                errors.append(f"dial {c.network} {c.shown(port)}: socket: {c.error}")
                continue
            try:
                await _connect(c.sock, (c.host, port), timeout)
                sock, c.sock = c.sock, None
                return sock
            except (OSError, asyncio.TimeoutError) as e:
                errors.append(_go_dial_error(c.network, c.shown(port), e))
        raise ForwardError(
            f'failed to execute portforward in network namespace "{path}": failed to connect to localhost:{port} '
            f'inside namespace "{target.sandbox_id}", IPv4: {errors[0]} IPv6 {errors[1]} ')
    finally:
        _close(candidates)


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
