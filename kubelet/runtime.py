"""The container runtime: the kubelet's only door to Docker (DESIGN pattern 4).

Role: the Docker implementation (``DockerRuntime``) of the small, typed, synchronous interface
``kubelet.cri.ContainerRuntime`` (whose labels, errors and data classes are re-exported here).
This is the only module that imports the Docker SDK (an import-linter contract says so); every
``docker``/``requests`` exception is translated here, in ``_translate``, into the typed errors of
``kubelet.cri``, so the kubelet never catches an SDK exception.

Data flow (what the kubelet does with it):

    ensure_network(pod network name, subnet)        once per kubelet; shared by every kubelet
                                                    on one engine
    run_sandbox(pod uid, name, namespace, node, network) -> Sandbox(id, ip)
        an infra container (busybox ``sleep``) that holds the pod's network (and IPC) namespace
    create_container(ContainerSpec(sandbox_id=...)) -> id; start(id)
        app containers join the sandbox's namespaces (network_mode=container:<sandbox id>), so
        the containers of a pod share ``localhost`` and one pod IP
    list(labels={LABEL_POD_UID: uid}) -> [ContainerInfo]   the observed state (relist, adoption
                                                            after a kubelet restart)
    stop(id, timeout=grace) / kill / remove                 graceful deletion
    logs / follow_logs / exec                               kubectl logs, exec probes
    exec_stream / attach_stream / exec_resize / resize      kubectl exec -i/-t, attach, cp (the
                                                            hijacked connections: kubelet.dockerstdio)
    image_present / pull                                    imagePullPolicy, ErrImagePull

Every object this runtime makes carries ``LABEL_MANAGED`` and the pod's labels, so the kubelet
finds its containers again by labels alone (restart-safety) and tests clean up by label.

The Docker SDK is blocking: an asyncio kubelet calls these methods through
``asyncio.to_thread``. The engine connection is made lazily and re-made after a failure, so a
runtime built while the engine is down starts working when it comes back (``RuntimeUnavailable``
until then).

Every public method is counted and timed by its CRI operation name (``kubelet.metrics.timed_operation``:
kubelet_runtime_operations_total, _duration_seconds, _errors_total), as Kubernetes' instrumented runtime.
"""

from __future__ import annotations

import re
import select
import struct
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Sequence

import docker
import docker.errors
import docker.types
import requests.exceptions
import urllib3.exceptions

# The interface (labels, errors, data, the protocol) lives in kubelet.cri; it is re-exported here
# so that ``kubelet.runtime`` stays the one name for "the runtime" to callers that build one.
from kubelet.cri import (
    LABEL_CONTAINER_NAME,
    LABEL_MANAGED,
    LABEL_NODE,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_POD_UID,
    LABEL_RESTART_COUNT,
    LABEL_ROLE,
    LABEL_SANDBOX_ID,
    ROLE_CONTAINER,
    ROLE_SANDBOX,
    ContainerInfo,
    ContainerNotFound,
    ContainerRuntime,
    ContainerRuntimeError,
    ContainerSpec,
    ExecResult,
    ExecTimeout,
    ImageNotPresent,
    PodDNS,
    ImagePullError,
    InvalidSpec,
    Mount,
    NetworkInfo,
    RuntimeConflict,
    RuntimeTimeout,
    RuntimeUnavailable,
    RuntimeVersion,
    Sandbox,
    VolumeInfo,
)
from kubelet.dockerstdio import HijackedStdio, hijack
from kubelet.metrics import timed_operation

__all__ = [
    "DEFAULT_DOCKER_URL", "DEFAULT_SANDBOX_IMAGE", "DockerRuntime",
    "LABEL_CONTAINER_NAME", "LABEL_MANAGED", "LABEL_NODE", "LABEL_POD_NAME", "LABEL_POD_NAMESPACE",
    "LABEL_POD_UID", "LABEL_RESTART_COUNT", "LABEL_ROLE", "LABEL_SANDBOX_ID", "ROLE_CONTAINER",
    "ROLE_SANDBOX", "ContainerInfo", "ContainerNotFound", "ContainerRuntime", "ContainerRuntimeError",
    "ContainerSpec", "ExecResult", "ExecTimeout", "ImageNotPresent", "ImagePullError", "InvalidSpec",
    "Mount", "NetworkInfo", "RuntimeConflict", "RuntimeTimeout", "RuntimeUnavailable", "RuntimeVersion",
    "Sandbox", "VolumeInfo",
]

DEFAULT_DOCKER_URL = "unix:///var/run/docker.sock"
# Any image with a `sleep`: the sandbox runs `sleep` as its only process. Pulled when missing;
# machines without a registry pass a local one (--pod-infra-container-image, MINIK8S_SANDBOX_IMAGE).
DEFAULT_SANDBOX_IMAGE = "busybox:1.36"


# ---------------------------------------------------------------------------------------------
# Docker


class _Translate:
    """Maps SDK/transport exceptions to the errors of kubelet.cri: the one place that knows them.

    ``not_found`` picks the error for a 404 (a missing container, network or image)."""

    def __init__(self, what: str, *, not_found: type[ContainerRuntimeError] = ContainerNotFound,
                 on_failure: Any = None) -> None:
        self.what = what
        self.not_found = not_found
        self.on_failure = on_failure

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, e: BaseException | None, tb: Any) -> None:
        if e is None or isinstance(e, ContainerRuntimeError) or not isinstance(e, Exception):
            return
        err = _translate(self.what, e, not_found=self.not_found)
        if isinstance(err, RuntimeUnavailable) and self.on_failure is not None:
            self.on_failure()
        raise err from e


def _translate(what: str, e: Exception, *, not_found: type[ContainerRuntimeError]) -> ContainerRuntimeError:
    msg = f"{what}: {e}"
    if isinstance(e, (requests.exceptions.ReadTimeout, TimeoutError, urllib3.exceptions.ReadTimeoutError)):
        # TimeoutError: reads straight from the socket (exec, attach) time out this way.
        return RuntimeTimeout(msg)
    if isinstance(e, (requests.exceptions.ConnectionError, ConnectionError, FileNotFoundError)):
        return RuntimeUnavailable(msg)
    if isinstance(e, requests.exceptions.Timeout):
        return RuntimeTimeout(msg)
    if isinstance(e, docker.errors.ImageNotFound):
        return ImageNotPresent(msg)
    if isinstance(e, docker.errors.NotFound):
        explanation = str(getattr(e, "explanation", "") or "")
        if "no such image" in explanation.lower():
            return ImageNotPresent(msg)
        return not_found(msg)
    if isinstance(e, docker.errors.APIError):
        code = e.status_code
        if code == 409:
            return RuntimeConflict(msg)
        if code == 400:
            return InvalidSpec(msg)
        return ContainerRuntimeError(msg)
    if isinstance(e, docker.errors.DockerException):
        # Raised by the client constructor when the version negotiation cannot reach the engine.
        text = str(e)
        if "Error while fetching server API version" in text or "Connection" in text:
            return RuntimeUnavailable(msg)
        return ContainerRuntimeError(msg)
    if isinstance(e, requests.exceptions.RequestException):
        return RuntimeUnavailable(msg)
    return ContainerRuntimeError(msg)


_NAME_SAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def _docker_name(*parts: str) -> str:
    """A container name from pod parts (dockershim's k8s_<container>_<pod>_<ns>_<uid>_<n> shape)."""
    return "_".join(["mk8s", *(_NAME_SAFE.sub("-", p) for p in parts)])


def _parse_time(s: str | None) -> datetime | None:
    """Docker's RFC 3339 nano timestamps; the zero time ("0001-01-01...") means never."""
    if not s or s.startswith("0001-01-01"):
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        return None
    base, frac, tz = m.groups()
    text = base + ("." + (frac + "000000")[:6] if frac else "") + ("+00:00" if tz == "Z" else tz)
    return datetime.fromisoformat(text).astimezone(timezone.utc)


def _image_ref(image: str) -> tuple[str, str]:
    """(repository, tag-or-digest) for a pull; an untagged reference means ``latest``."""
    if "@" in image:
        repo, digest = image.split("@", 1)
        return repo, digest
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = image.rsplit(":", 1)
        return repo, tag
    return image, "latest"


def _api_at_least(version: str | None, wanted: tuple[int, int]) -> bool:
    try:
        major, minor = (int(x) for x in str(version).split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= wanted


def _read_multiplexed(sock: Any, deadline: float | None) -> bytes:
    """Reads a non-TTY attach/exec stream (8-byte frame headers: stream, 0, 0, 0, size) to its
    end, stdout and stderr interleaved. ExecTimeout at ``deadline`` (the SDK's own reader
    blocks in poll() with no timeout, so probes with timeoutSeconds could hang forever)."""
    raw = bytearray()
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            raise ExecTimeout("exec deadline passed")
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            continue
        chunk = sock.read(65536) if hasattr(sock, "read") else sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    out = bytearray()
    i = 0
    while i + 8 <= len(raw):
        size = struct.unpack(">I", raw[i + 4:i + 8])[0]
        out += raw[i + 8:i + 8 + size]
        i += 8 + size
    return bytes(out)


class DockerRuntime:
    """``ContainerRuntime`` on a Docker engine (API >= 1.41, i.e. engine 20.10 and later)."""

    def __init__(self, base_url: str = DEFAULT_DOCKER_URL, *, timeout: float = 30.0,
                 sandbox_image: str = DEFAULT_SANDBOX_IMAGE) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.sandbox_image = sandbox_image
        self._client: docker.APIClient | None = None
        self._api_version: str | None = None
        self._lock = threading.Lock()

    # -- connection

    def _api(self) -> docker.APIClient:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                with _Translate("connect to the Docker engine at " + self.base_url):
                    # types-docker says int; the SDK hands the timeout to requests, which takes float seconds.
                    c = docker.APIClient(base_url=self.base_url, version="auto",
                                         timeout=self.timeout)  # type: ignore[arg-type]
                self._api_version = c.api_version
                self._client = c
            return self._client

    def _reset(self) -> None:
        """After RuntimeUnavailable: negotiate again on the next call (the engine may have been
        replaced by another version)."""
        with self._lock:
            c, self._client = self._client, None
        if c is not None:
            c.close()

    def _tr(self, what: str, *, not_found: type[ContainerRuntimeError] = ContainerNotFound) -> _Translate:
        return _Translate(what, not_found=not_found, on_failure=self._reset)

    def _short_client(self, timeout: float | None) -> docker.APIClient:
        """A client with its own HTTP timeout, for calls bounded by a caller's deadline (exec
        probes, pulls); it reuses the negotiated API version, so making it costs no request."""
        self._api()
        with self._tr("connect to the Docker engine at " + self.base_url):
            # types-docker says int; requests takes float seconds, and None (no timeout) as well.
            return docker.APIClient(base_url=self.base_url, version=self._api_version,
                                    timeout=timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self._reset()

    # -- engine

    @timed_operation("status")
    def ping(self) -> None:
        with self._tr("ping"):
            self._api().ping()

    @timed_operation("version")
    def version(self) -> RuntimeVersion:
        with self._tr("version"):
            v = self._api().version()
        return RuntimeVersion(name="docker", version=str(v.get("Version", "")),
                              api_version=str(v.get("ApiVersion", "")), os=str(v.get("Os", "")),
                              arch=str(v.get("Arch", "")), kernel_version=str(v.get("KernelVersion", "")))

    # -- networks

    def _network_info(self, raw: Mapping[str, Any]) -> NetworkInfo:
        configs = (raw.get("IPAM") or {}).get("Config") or [{}]
        return NetworkInfo(id=raw["Id"], name=raw["Name"], subnet=str(configs[0].get("Subnet", "")),
                           gateway=configs[0].get("Gateway"))

    def _find_network(self, name: str) -> NetworkInfo | None:
        with self._tr(f"list networks {name}"):
            found = [n for n in self._api().networks(names=[name]) if n.get("Name") == name]
        if not found:
            return None
        with self._tr(f"inspect network {name}"):
            return self._network_info(self._api().inspect_network(found[0]["Id"]))

    @timed_operation("ensure_network")
    def ensure_network(self, name: str, subnet: str, *, gateway: str | None = None, ip_range: str | None = None,
                       labels: Mapping[str, str] | None = None) -> NetworkInfo:
        """The bridge network ``name`` with exactly ``subnet``; made if missing, shared if present.
        With ``ip_range`` the engine gives containers addresses from that part of the subnet only
        (the pod network keeps its upper half for ClusterIPs).

        Several kubelets on one engine call this at once: a loser of the creation race sees the
        winner's network on its second look. An existing network with another subnet is a
        RuntimeConflict (never silently reuse the wrong address range)."""
        last: ContainerRuntimeError | None = None
        for _ in range(3):
            existing = self._find_network(name)
            if existing is not None:
                if existing.subnet != subnet:
                    raise RuntimeConflict(f"network {name} exists with subnet {existing.subnet}, not {subnet}")
                return existing
            pool: dict[str, Any] = {"subnet": subnet}
            if gateway:
                pool["gateway"] = gateway
            if ip_range:
                pool["iprange"] = ip_range
            try:
                with self._tr(f"create network {name} ({subnet})"):
                    api = self._api()
                    api.create_network(
                        name, driver="bridge", check_duplicate=True,
                        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(**pool)]),
                        labels={LABEL_MANAGED: "true", **(labels or {})})
            except RuntimeUnavailable:
                raise
            except ContainerRuntimeError as e:
                # Lost a race (duplicate name) or the subnet is taken: look again, then give up.
                last = e
                continue
        existing = self._find_network(name)
        if existing is not None and existing.subnet == subnet:
            return existing
        raise RuntimeConflict(f"cannot make network {name} with subnet {subnet}: {last}")

    @timed_operation("remove_network")
    def remove_network(self, name: str) -> None:
        """Removes the network; a missing one is fine."""
        try:
            with self._tr(f"remove network {name}"):
                self._api().remove_network(name)
        except ContainerNotFound:
            pass

    # -- sandboxes and containers

    @timed_operation("run_podsandbox")
    def run_sandbox(self, *, pod_uid: str, pod_name: str, namespace: str, node: str, network: str,
                    ip: str | None = None, attempt: int = 0, dns: PodDNS | None = None,
                    labels: Mapping[str, str] | None = None) -> Sandbox:
        """Creates and starts the pod's infra container on ``network`` (at ``ip`` when given, else
        the engine's IPAM picks one in the subnet) and returns its id and the pod IP."""
        name = _docker_name("POD", pod_name, namespace, pod_uid, str(attempt))
        if not self.image_present(self.sandbox_image):
            self.pull(self.sandbox_image)
        all_labels = {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_SANDBOX, LABEL_POD_UID: pod_uid,
                      LABEL_POD_NAME: pod_name, LABEL_POD_NAMESPACE: namespace, LABEL_NODE: node,
                      **(labels or {})}
        with self._tr(f"create sandbox {name}"):
            api = self._api()
            dns_args: dict[str, Any] = {}
            if dns is not None:
                dns_args = {"dns": list(dns.nameservers) or None, "dns_search": list(dns.searches) or None,
                            "dns_opt": list(dns.options) or None}
            host_config = api.create_host_config(network_mode=network, ipc_mode="shareable", **dns_args)
            endpoint = api.create_endpoint_config(ipv4_address=ip) if ip else api.create_endpoint_config()
            created = api.create_container(
                self.sandbox_image, command=["sleep", "2147483647"], name=name, hostname=pod_name[:63],
                labels=all_labels, host_config=host_config,
                # sleep as PID 1 ignores SIGTERM; a sandbox holds no state, so stop means kill.
                stop_signal="SIGKILL",
                # types-docker types the argument as one EndpointConfig; the SDK (docker/types/
                # networks.py, NetworkingConfig) takes {network name: EndpointConfig}, as sent here.
                networking_config=api.create_networking_config(
                    {network: endpoint}))  # type: ignore[arg-type]
        sid = created["Id"]
        try:
            with self._tr(f"start sandbox {name}"):
                self._api().start(sid)
            with self._tr(f"inspect sandbox {name}"):
                raw = self._api().inspect_container(sid)
        except ContainerRuntimeError:
            self.remove(sid)
            raise
        pod_ip = ((raw.get("NetworkSettings") or {}).get("Networks") or {}).get(network, {}).get("IPAddress")
        if not pod_ip:
            self.remove(sid)
            raise ContainerRuntimeError(f"sandbox {name} got no IP on network {network}")
        pid = int((raw.get("State") or {}).get("Pid") or 0) or None
        return Sandbox(id=sid, name=name, ip=pod_ip, network=network, pid=pid)

    @timed_operation("create_container")
    def create_container(self, spec: ContainerSpec) -> str:
        """Creates (does not start) an app container in the sandbox's namespaces; returns its id."""
        name = _docker_name(spec.name, spec.pod_name, spec.namespace, spec.pod_uid, str(spec.restart_count))
        labels = {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_CONTAINER, LABEL_POD_UID: spec.pod_uid,
                  LABEL_POD_NAME: spec.pod_name, LABEL_POD_NAMESPACE: spec.namespace, LABEL_NODE: spec.node,
                  LABEL_CONTAINER_NAME: spec.name, LABEL_RESTART_COUNT: str(spec.restart_count),
                  LABEL_SANDBOX_ID: spec.sandbox_id, **spec.labels}
        with self._tr(f"create container {name}", not_found=ContainerNotFound):
            api = self._api()
            host_config = api.create_host_config(
                network_mode=f"container:{spec.sandbox_id}", ipc_mode=f"container:{spec.sandbox_id}",
                pid_mode=spec.pid_mode,
                binds=[f"{m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts] or None,
                nano_cpus=spec.nano_cpus, mem_limit=spec.mem_limit)
            created = api.create_container(
                spec.image, name=name, labels=labels, host_config=host_config,
                entrypoint=list(spec.command) if spec.command is not None else None,
                command=list(spec.args) if spec.args is not None else None,
                environment=[f"{k}={v}" for k, v in spec.env.items()] or None,
                working_dir=spec.working_dir or None, stop_signal=spec.stop_signal,
                stdin_open=spec.stdin, tty=spec.tty)
        return str(created["Id"])

    @timed_operation("start_container")
    def start(self, container_id: str) -> None:
        with self._tr(f"start container {container_id[:12]}"):
            self._api().start(container_id)

    @timed_operation("stop_container")
    def stop(self, container_id: str, *, timeout: float, signal: str | None = None) -> None:
        """Sends the stop signal (``signal``, else the container's own: the image's STOPSIGNAL or
        SIGTERM), waits up to ``timeout`` seconds, then SIGKILL. A stopped container is fine."""
        grace = max(0, int(round(timeout)))
        if signal is None:
            with self._tr(f"stop container {container_id[:12]}"):
                # The engine does signal, wait, kill itself; the HTTP timeout must outlast it.
                self._api().stop(container_id, timeout=grace)
            return
        try:
            with self._tr(f"signal container {container_id[:12]}"):
                self._api().kill(container_id, signal=signal)
        except ContainerRuntimeError as e:
            if "is not running" in str(e):
                return
            raise
        # Poll rather than the wait endpoint: its read timeout surfaces as a connection error.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                if not self.inspect(container_id).running:
                    return
            except ContainerNotFound:
                return
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
        self.kill(container_id, signal="SIGKILL")

    @timed_operation("kill_container")
    def kill(self, container_id: str, *, signal: str = "SIGKILL") -> None:
        """Signals the container; one that is not running is fine."""
        try:
            with self._tr(f"kill container {container_id[:12]}"):
                self._api().kill(container_id, signal=signal)
        except ContainerRuntimeError as e:
            if isinstance(e, (RuntimeUnavailable, ContainerNotFound)) or "is not running" not in str(e):
                raise

    @timed_operation("remove_container")
    def remove(self, container_id: str, *, force: bool = True, missing_ok: bool = True) -> None:
        try:
            with self._tr(f"remove container {container_id[:12]}"):
                self._api().remove_container(container_id, force=force, v=True)
        except ContainerNotFound:
            if not missing_ok:
                raise
        except ContainerRuntimeError as e:
            # Two removers at once: the engine says the removal is already in progress.
            if not (missing_ok and "already in progress" in str(e)):
                raise

    def _info(self, raw: Mapping[str, Any]) -> ContainerInfo:
        state = raw.get("State") or {}
        config = raw.get("Config") or {}
        status = str(state.get("Status", ""))
        finished = _parse_time(state.get("FinishedAt"))
        networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
        return ContainerInfo(
            id=str(raw["Id"]), name=str(raw.get("Name", "")).lstrip("/"), labels=dict(config.get("Labels") or {}),
            state=status,
            exit_code=int(state["ExitCode"]) if status in ("exited", "dead") and finished is not None else None,
            created_at=_parse_time(raw.get("Created")), started_at=_parse_time(state.get("StartedAt")),
            finished_at=finished, image=str(config.get("Image", "")), image_id=str(raw.get("Image", "")),
            oom_killed=bool(state.get("OOMKilled")), error=str(state.get("Error") or ""), ip=ip,
            pid=int(state.get("Pid") or 0) or None)

    @timed_operation("container_status")
    def inspect(self, container_id: str) -> ContainerInfo:
        with self._tr(f"inspect container {container_id[:12]}"):
            return self._info(self._api().inspect_container(container_id))

    @timed_operation("list_containers")
    def list(self, labels: Mapping[str, str] | None = None) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of ``labels``, inspected (one request
        per container: the list endpoint has no exit codes nor times)."""
        filters = {"label": [f"{k}={v}" for k, v in (labels or {}).items()] or [LABEL_MANAGED]}
        with self._tr("list containers"):
            summaries = self._api().containers(all=True, filters=filters)
        out: list[ContainerInfo] = []
        for s in summaries:
            try:
                out.append(self.inspect(s["Id"]))
            except ContainerNotFound:
                continue  # removed between list and inspect
        return out

    @timed_operation("container_stats")
    def stats(self, container_id: str) -> Mapping[str, Any]:
        """One sample of the engine's resource statistics of a container (the raw stats JSON:
        cumulative CPU nanoseconds, memory usage and the cgroup's memory.stat); ``kubelet.stats``
        reads it. ``one_shot``: no second sample to fill ``precpu_stats`` (the rate is ours)."""
        with self._tr(f"stats of container {container_id[:12]}"):
            return dict(self._api().stats(container_id, decode=False, stream=False, one_shot=True))

    # -- volumes (emptyDir medium Memory)

    @timed_operation("create_volume")
    def ensure_tmpfs_volume(self, name: str, *, size_bytes: int | None, labels: Mapping[str, str]) -> None:
        """A local-driver volume backed by a tmpfs (``o=size=...`` when given); an existing one is kept."""
        opts = {"type": "tmpfs", "device": "tmpfs", **({"o": f"size={size_bytes}"} if size_bytes else {})}
        with self._tr(f"create volume {name}"):
            self._api().create_volume(name, driver="local", driver_opts=opts,
                                      labels={LABEL_MANAGED: "true", **labels})

    @timed_operation("list_volumes")
    def list_volumes(self, labels: Mapping[str, str]) -> Sequence[VolumeInfo]:
        filters = {"label": [f"{k}={v}" for k, v in labels.items()] or [LABEL_MANAGED]}
        with self._tr("list volumes"):
            found = self._api().volumes(filters=filters).get("Volumes") or []
        return [VolumeInfo(name=str(v["Name"]), labels=dict(v.get("Labels") or {})) for v in found]

    @timed_operation("remove_volume")
    def remove_volume(self, name: str) -> None:
        """Removes the volume; a missing one is fine, one still in use is a RuntimeConflict."""
        try:
            with self._tr(f"remove volume {name}"):
                self._api().remove_volume(name)
        except ContainerNotFound:
            pass

    # -- logs and exec

    @staticmethod
    def _log_args(tail: int | None, since: datetime | float | None, timestamps: bool) -> dict[str, Any]:
        args: dict[str, Any] = {"stdout": True, "stderr": True, "timestamps": timestamps,
                                "tail": "all" if tail is None else max(0, int(tail))}
        if since is not None:
            args["since"] = since
        return args

    @timed_operation("container_logs")
    def logs(self, container_id: str, *, tail: int | None = None, since: datetime | float | None = None,
             timestamps: bool = False) -> bytes:
        """What the container wrote so far (stdout and stderr, interleaved)."""
        with self._tr(f"logs of container {container_id[:12]}"):
            out = self._api().logs(container_id, stream=False, follow=False,
                                   **self._log_args(tail, since, timestamps))
        return bytes(out)

    @timed_operation("follow_container_logs")
    def follow_logs(self, container_id: str, *, tail: int | None = None,
                    since: datetime | float | None = None, timestamps: bool = False) -> Iterator[bytes]:
        """Chunks of output as the container writes them; ends when the container stops.
        Close the iterator to stop following (it closes the engine connection)."""
        with self._tr(f"follow logs of container {container_id[:12]}"):
            # A follow has no overall deadline: a client with no read timeout.
            client = self._short_client(None)
            stream = client.logs(container_id, stream=True, follow=True, **self._log_args(tail, since, timestamps))

        def chunks() -> Iterator[bytes]:
            try:
                with self._tr(f"follow logs of container {container_id[:12]}"):
                    for chunk in stream:
                        yield bytes(chunk)
            finally:
                try:
                    stream.close()
                finally:
                    client.close()

        return chunks()

    @timed_operation("exec_sync")
    def exec(self, container_id: str, cmd: Sequence[str], *, timeout: float | None = None) -> ExecResult:
        """Runs ``cmd`` in the container and returns its exit code and output (exec probes).
        ExecTimeout when it runs longer than ``timeout`` seconds (the process is left to finish,
        as Docker has no way to stop an exec)."""
        with self._tr(f"exec in container {container_id[:12]}"):
            created = self._api().exec_create(container_id, list(cmd), stdout=True, stderr=True)
        exec_id = created["Id"]
        deadline = None if timeout is None else time.monotonic() + timeout
        # A client of its own: the exec's connection is hijacked (a raw stream) and closed after.
        client = self._short_client(self.timeout)
        try:
            with self._tr(f"exec in container {container_id[:12]}"):
                sock = client.exec_start(exec_id, socket=True)
                try:
                    output = _read_multiplexed(sock, deadline)
                finally:
                    sock.close()
        except ExecTimeout as e:
            raise ExecTimeout(f"exec {list(cmd)} in {container_id[:12]} exceeded {timeout}s") from e
        finally:
            client.close()
        with self._tr(f"inspect exec in container {container_id[:12]}"):
            info = self._api().exec_inspect(exec_id)
        code = info.get("ExitCode")
        return ExecResult(exit_code=int(code) if code is not None else -1, output=output)

    # -- interactive exec and attach (kubectl exec -i / -t, attach, cp): kubelet.streaming drives them

    @timed_operation("exec")
    def exec_stream(self, container_id: str, cmd: Sequence[str], *, stdin: bool, stdout: bool, stderr: bool,
                    tty: bool, size: tuple[int, int] | None = None) -> HijackedStdio:
        """Starts ``cmd`` in the container with the requested stdio and returns its connection
        (non-TTY output multiplexed per stream; TTY output raw, sized (width, height) ``size`` at
        once: API 1.41 cannot size an exec before its start). A command that cannot start still
        starts an exec: the engine writes its error to stdout and reports exit code 126/127."""
        what = f"exec in container {container_id[:12]}"
        with self._tr(what):
            created = self._api().exec_create(container_id, list(cmd), stdin=stdin, stdout=stdout, stderr=stderr,
                                              tty=tty)
        exec_id = str(created["Id"])
        width, height = size if tty and size else (0, 0)
        body: dict[str, object] = {"Detach": False, "Tty": tty}
        if width and height and _api_at_least(self._api_version, (1, 42)):
            body["ConsoleSize"] = [height, width]  # the engine sizes the terminal before the start
        sock, pending = hijack(self.base_url, f"/v{self._api_version}/exec/{exec_id}/start",
                               body=body, what=what, timeout=self.timeout)
        stream = HijackedStdio(sock, pending, tty=tty, exec_id=exec_id)
        for attempt in range(5 if width and height and "ConsoleSize" not in body else 0):
            try:
                self.exec_resize(exec_id, width=width, height=height)
                break
            except RuntimeConflict:  # the process is not running yet
                time.sleep(0.01 * (attempt + 1))
            except ContainerRuntimeError:
                break  # a size is a nicety: the relay's resizes still come
        return stream

    @timed_operation("exec_resize")
    def exec_resize(self, exec_id: str, *, width: int, height: int) -> None:
        with self._tr(f"resize exec {exec_id[:12]}"):
            self._api().exec_resize(exec_id, height=height, width=width)

    @timed_operation("exec_status")
    def exec_exit_code(self, exec_id: str) -> int | None:
        """The exec's exit code; None while it runs."""
        with self._tr(f"inspect exec {exec_id[:12]}"):
            info = self._api().exec_inspect(exec_id)
        code = info.get("ExitCode")
        return None if info.get("Running") or code is None else int(code)

    @timed_operation("attach")
    def attach_stream(self, container_id: str, *, stdin: bool, stdout: bool, stderr: bool) -> HijackedStdio:
        """The container's stdio from now on (no earlier output); framed as the container was
        created (raw with a TTY). Closing it leaves the container running."""
        what = f"attach to container {container_id[:12]}"
        with self._tr(what):
            raw = self._api().inspect_container(container_id)
        tty = bool((raw.get("Config") or {}).get("Tty"))
        flags = "&".join(f"{k}={int(v)}" for k, v in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)))
        sock, pending = hijack(self.base_url, f"/v{self._api_version}/containers/{raw['Id']}/attach?stream=1&{flags}",
                               body=None, what=what, timeout=self.timeout)
        return HijackedStdio(sock, pending, tty=tty, exec_id=None)

    @timed_operation("resize_container")
    def resize(self, container_id: str, *, width: int, height: int) -> None:
        """The TTY size of a container made with ``tty``."""
        with self._tr(f"resize container {container_id[:12]}"):
            self._api().resize(container_id, height=height, width=width)

    # -- images

    @timed_operation("image_status")
    def image_id(self, image: str) -> str | None:
        try:
            with self._tr(f"inspect image {image}", not_found=ImageNotPresent):
                return str(self._api().inspect_image(image)["Id"])
        except ImageNotPresent:
            return None

    def image_present(self, image: str) -> bool:
        return self.image_id(image) is not None

    @timed_operation("pull_image")
    def pull(self, image: str, *, timeout: float | None = None) -> str:
        """Pulls ``image`` (``latest`` when untagged) and returns its id; ImagePullError on any
        failure other than the engine being unreachable."""
        repo, tag = _image_ref(image)
        client = self._short_client(timeout) if timeout is not None else self._api()
        try:
            with self._tr(f"pull {image}", not_found=ImagePullError):
                for event in client.pull(repo, tag=tag, stream=True, decode=True):
                    if isinstance(event, dict) and event.get("error"):
                        raise ImagePullError(f"pull {image}: {event['error']}")
        except (RuntimeUnavailable, ImagePullError):
            raise
        except ContainerRuntimeError as e:
            raise ImagePullError(str(e)) from e
        finally:
            if client is not self._client:
                client.close()
        found = self.image_id(image)
        if found is None:
            raise ImagePullError(f"pull {image}: the engine reported success but has no such image")
        return found
