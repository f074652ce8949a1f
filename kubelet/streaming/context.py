"""What the streaming handlers need from the kubelet: the pod's containers and sandbox, the
engine, and the kubelet's thread pool (implemented by the kubelet; tests bring their own).

Data flow: a handler asks ``container(ns, pod, name)`` or ``sandbox(ns, pod)``; the kubelet
answers from its pod informer and the engine's labels, or raises ``StreamError`` with the HTTP
status and the message the client should see (404 unknown pod or container, 400 a container that
is not running).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from kubelet.cri import ContainerRuntime


class StreamError(Exception):
    """A request the kubelet cannot serve: answered with ``status`` and ``message`` (text/plain)
    before any upgrade, or on the error channel after it."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ContainerTarget:
    """A running container of a pod."""
    id: str  # the Docker container id
    name: str  # the container's name in the pod spec
    pod_uid: str
    stdin: bool = False  # the spec's ``stdin`` (attach may write only then)
    tty: bool = False  # the spec's ``tty``


@dataclass(frozen=True)
class PodTarget:
    """A pod's sandbox: its network namespace is where port-forward connects to localhost:PORT."""
    namespace: str
    name: str
    uid: str
    sandbox_id: str
    sandbox_pid: int | None  # the sandbox's process on the host (None: not running / unknown)
    pod_ip: str | None


class StreamingContext(Protocol):
    runtime: ContainerRuntime

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any: ...

    async def container(self, namespace: str, pod: str, container: str) -> ContainerTarget: ...

    async def sandbox(self, namespace: str, pod: str) -> PodTarget: ...


__all__ = ["ContainerTarget", "PodTarget", "StreamError", "StreamingContext"]
