"""The container runtime interface: what the kubelet asks of a container engine, without one.

Role: after Kubernetes' CRI, the small typed contract between the kubelet and its engine: the
labels every runtime object carries, the errors a runtime raises, the data it answers with
(``ContainerInfo``, ``Sandbox``, ...) and the ``ContainerRuntime`` protocol itself. The Docker
implementation lives in ``kubelet.runtime``, the only module that imports the Docker SDK
(DESIGN pattern 4); everything that only reads or plans (``kubelet.podsync``), probes
(``kubelet.probes``) or serves logs (``kubelet.server``) depends on this module alone, so it
imports no engine and its tests substitute any object that fits the protocol.

Data flow: ``kubelet.agent`` holds one ``ContainerRuntime`` (a ``DockerRuntime`` in production)
-> its ``list`` answers ``ContainerInfo``s, told apart by the labels below (pod uid, container
name, role, restart count) -> ``kubelet.podsync`` plans on them -> the agent calls the
protocol's methods with ``ContainerSpec``s -> failures arrive as ``ContainerRuntimeError``
subclasses. Pure data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterator, Mapping, Protocol, Sequence, runtime_checkable

# Labels on every container and network this runtime creates (dockershim's io.kubernetes.* set,
# in our own namespace so a real kubelet on the same engine is never confused with us).
LABEL_MANAGED = "io.minik8s.managed"
LABEL_ROLE = "io.minik8s.role"  # ROLE_SANDBOX | ROLE_CONTAINER
LABEL_POD_UID = "io.minik8s.pod.uid"
LABEL_POD_NAME = "io.minik8s.pod.name"
LABEL_POD_NAMESPACE = "io.minik8s.pod.namespace"
LABEL_NODE = "io.minik8s.node"
LABEL_CONTAINER_NAME = "io.minik8s.container.name"
LABEL_RESTART_COUNT = "io.minik8s.container.restart-count"
LABEL_SANDBOX_ID = "io.minik8s.sandbox.id"
ROLE_SANDBOX = "sandbox"
ROLE_CONTAINER = "container"


# ---------------------------------------------------------------------------------------------
# Errors: the only exceptions a runtime raises (the Docker one translates every SDK error into these).


class ContainerRuntimeError(Exception):
    """Any failure of the runtime; the more precise ones below subclass it."""


class RuntimeUnavailable(ContainerRuntimeError):
    """The engine cannot be reached (no socket, refused, not answering): the node is NotReady."""


class RuntimeTimeout(ContainerRuntimeError):
    """The engine accepted the request but did not answer in time."""


class ExecTimeout(RuntimeTimeout):
    """An exec (probe) command did not finish within its timeout."""


class ContainerNotFound(ContainerRuntimeError):
    """No container (or network) with that id or name."""


class ImageNotPresent(ContainerRuntimeError):
    """The image is not on the engine (create with a missing image; pull it first)."""


class ImagePullError(ContainerRuntimeError):
    """Pulling an image failed (unknown image, unreachable registry, denied): ErrImagePull."""


class RuntimeConflict(ContainerRuntimeError):
    """The engine refused because of existing state (name in use, network subnet mismatch)."""


class InvalidSpec(ContainerRuntimeError):
    """The engine rejected the parameters (bad memory limit, bad mount, ...)."""


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class RuntimeVersion:
    name: str  # "docker"
    version: str  # engine version, e.g. "20.10.24+dfsg1"
    api_version: str
    os: str
    arch: str
    kernel_version: str


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str
    subnet: str
    gateway: str | None


@dataclass(frozen=True)
class Sandbox:
    id: str
    name: str
    ip: str
    network: str
    pid: int | None = None  # its PID 1 as the host sees it: the handle to the pod's network namespace


@dataclass(frozen=True)
class PodDNS:
    """A sandbox's resolv.conf: Docker writes ``nameserver 127.0.0.11`` (its embedded server,
    which forwards to ``nameservers``) with these search domains and options."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # "ndots:5", ...


@dataclass(frozen=True)
class Mount:
    """A bind mount of a host directory (an emptyDir, a configMap projection)."""

    source: str  # absolute host path, or the name of a volume made by ensure_tmpfs_volume
    target: str  # path in the container
    read_only: bool = False


@dataclass(frozen=True)
class VolumeInfo:
    """An engine volume (an emptyDir of medium Memory: a tmpfs the pod's containers share)."""

    name: str
    labels: Mapping[str, str]


@dataclass(frozen=True)
class ContainerSpec:
    """One app or init container of a pod, ready for the engine (Kubernetes semantics:
    ``command`` replaces the image's ENTRYPOINT, ``args`` its CMD)."""

    pod_uid: str
    pod_name: str
    namespace: str
    node: str
    name: str
    image: str
    sandbox_id: str
    command: Sequence[str] | None = None
    args: Sequence[str] | None = None
    pid_mode: str | None = None  # "container:<id>": share that container's PID namespace (an ephemeral target)
    env: Mapping[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    nano_cpus: int | None = None  # resources.limits.cpu * 1e9
    mem_limit: int | None = None  # resources.limits.memory in bytes
    mounts: Sequence[Mount] = ()
    restart_count: int = 0
    stop_signal: str | None = None  # None: the image's STOPSIGNAL (SIGTERM by default)
    stdin: bool = False  # the spec's stdin: the container's stdin stays open for ``kubectl attach -i``
    tty: bool = False  # the spec's tty: a terminal (attach then streams raw bytes, no stderr)
    labels: Mapping[str, str] = field(default_factory=dict)  # extra labels (e.g. init container)


@dataclass(frozen=True)
class ContainerInfo:
    """What the engine knows of one container (app container or sandbox)."""

    id: str
    name: str
    labels: Mapping[str, str]
    state: str  # created | running | paused | restarting | removing | exited | dead
    exit_code: int | None  # None until the container has run and stopped
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    image: str  # the reference it was created from
    image_id: str  # sha256:...
    oom_killed: bool = False
    error: str = ""
    ip: str | None = None  # sandboxes: the pod IP on its network
    pid: int | None = None  # a running container's PID 1 as the host sees it

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def pod_uid(self) -> str | None:
        return self.labels.get(LABEL_POD_UID)

    @property
    def container_name(self) -> str | None:
        return self.labels.get(LABEL_CONTAINER_NAME)

    @property
    def role(self) -> str | None:
        return self.labels.get(LABEL_ROLE)

    @property
    def restart_count(self) -> int:
        try:
            return int(self.labels.get(LABEL_RESTART_COUNT, "0"))
        except ValueError:
            return 0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: bytes  # stdout and stderr, interleaved as written


# Output channels of a StdioStream (the remote-command channel numbers).
STDOUT, STDERR = 1, 2


class StdioStream(Protocol):
    """A live connection to a process's stdio: an interactive exec or an attach (``kubectl exec
    -i``, ``kubectl attach``). Made by the runtime (blocking) and then driven without blocking by
    an event loop: wait until ``fileno()`` is readable, then ``read()``; ``write()`` stdin when
    writable. The engine's framing (Docker's 8-byte headers) stays inside the runtime."""

    @property
    def exec_id(self) -> str | None: ...  # the exec's id (resize, exit code); None for an attach

    @property
    def tty(self) -> bool: ...  # a terminal: output is raw bytes on STDOUT only

    def fileno(self) -> int: ...

    def read(self) -> list[tuple[int, bytes]] | None:
        """The output available now as (STDOUT | STDERR, bytes) chunks (``[]``: nothing yet, wait
        for the descriptor); None once the stream is at its end. Never blocks."""
        ...

    def write(self, data: bytes) -> int:
        """Writes what stdin takes now; returns the bytes taken (0: wait until writable).
        ConnectionError once the other side no longer reads. Never blocks."""
        ...

    def close_write(self) -> None:
        """The end of stdin: the process reads EOF (what ends ``cat`` or ``tar x``)."""
        ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------------------------
# The interface the kubelet depends on


@runtime_checkable
class ContainerRuntime(Protocol):
    def version(self) -> RuntimeVersion: ...
    def ping(self) -> None: ...
    def ensure_network(self, name: str, subnet: str, *, gateway: str | None = None, ip_range: str | None = None,
                       labels: Mapping[str, str] | None = None) -> NetworkInfo: ...
    def remove_network(self, name: str) -> None: ...
    def run_sandbox(self, *, pod_uid: str, pod_name: str, namespace: str, node: str, network: str,
                    ip: str | None = None, attempt: int = 0, dns: PodDNS | None = None,
                    labels: Mapping[str, str] | None = None) -> Sandbox: ...
    def create_container(self, spec: ContainerSpec) -> str: ...
    def start(self, container_id: str) -> None: ...
    def stop(self, container_id: str, *, timeout: float, signal: str | None = None) -> None: ...
    def kill(self, container_id: str, *, signal: str = "SIGKILL") -> None: ...
    def remove(self, container_id: str, *, force: bool = True, missing_ok: bool = True) -> None: ...
    def list(self, labels: Mapping[str, str] | None = None) -> list[ContainerInfo]: ...
    def inspect(self, container_id: str) -> ContainerInfo: ...
    def logs(self, container_id: str, *, tail: int | None = None, since: datetime | float | None = None,
             timestamps: bool = False) -> bytes: ...
    def follow_logs(self, container_id: str, *, tail: int | None = None,
                    since: datetime | float | None = None, timestamps: bool = False) -> Iterator[bytes]: ...
    def exec(self, container_id: str, cmd: Sequence[str], *, timeout: float | None = None) -> ExecResult: ...
    def exec_stream(self, container_id: str, cmd: Sequence[str], *, stdin: bool, stdout: bool, stderr: bool,
                    tty: bool, size: tuple[int, int] | None = None) -> StdioStream: ...
    def exec_resize(self, exec_id: str, *, width: int, height: int) -> None: ...
    def exec_exit_code(self, exec_id: str) -> int | None: ...
    def attach_stream(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> StdioStream: ...
    def resize(self, container_id: str, *, width: int, height: int) -> None: ...
    def image_present(self, image: str) -> bool: ...
    def image_id(self, image: str) -> str | None: ...
    def pull(self, image: str, *, timeout: float | None = None) -> str: ...
    def ensure_tmpfs_volume(self, name: str, *, size_bytes: int | None, labels: Mapping[str, str]) -> None: ...
    def list_volumes(self, labels: Mapping[str, str]) -> Sequence[VolumeInfo]: ...
    def remove_volume(self, name: str) -> None: ...
    def stats(self, container_id: str) -> Mapping[str, object]: ...
