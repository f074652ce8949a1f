"""Container probes: liveness, readiness and startup, as Kubernetes' prober does them.

Role: the kubelet asks this module three questions about each container of a pod — is it
*ready* (readiness), has it *started* (startup), must it be *restarted* (liveness or startup
failed) — and gets told (``on_change``) when an answer changes, so it re-syncs the pod's status.

Data flow:

    kubelet sync ──> ProbeManager.sync(pod, containers, pod_ip, now)
                        one ProbeState (pure, below) + one asyncio task per (pod uid,
                        container name, kind); a task runs the handler every periodSeconds
                        handler (exec / httpGet / tcpSocket, bounded by timeoutSeconds)
                            ──> ProbeState.record(result) ──> on_change(pod uid)
                            failures ──> on_event(ProbeEvent "Unhealthy", "Liveness probe failed: ...")
    kubelet status ──> readiness() / started() / needs_restart()

``ProbeState`` is the worker of pkg/kubelet/prober/worker.go without the goroutine: the
thresholds (a result only counts after successThreshold/failureThreshold identical runs in a
row), the initial delay (counted from the container's start), the startup gate (liveness and
readiness probe nothing until the startup probe succeeded), the hold after a liveness/startup
failure (no more probing until the container is replaced, i.e. its id changes, which also resets
every counter) and graceful deletion (liveness/startup report Success while the pod terminates).
It takes ``now`` explicitly, so its tests are plain tables.

Initial results follow Kubernetes: readiness Failure (not ready until successThreshold
successes), liveness Success, startup Unknown (so not *started*, yet no restart either).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Callable, Mapping, Sequence

import aiohttp

from kubelet.blocking import RunBlocking
from kubelet.cri import (
    ContainerInfo,
    ContainerRuntime,
    ContainerRuntimeError,
    ExecTimeout,
)

log = logging.getLogger(__name__)

# Kubernetes' User-Agent for probes is kube-probe/<major>.<minor>.
PROBE_USER_AGENT = "kube-probe/1.32"
# Kubernetes reads at most this much of an HTTP probe's body (and of an exec probe's output).
MAX_PROBE_OUTPUT = 10 * 1024


class ProbeKind(str, Enum):
    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"

    @property
    def display(self) -> str:
        """``Liveness``, as event messages spell it."""
        return self.value.capitalize()

    @property
    def field(self) -> str:
        """The container's field for this probe (``livenessProbe``, ...)."""
        return self.value + "Probe"


class ProbeResult(str, Enum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    UNKNOWN = "Unknown"


INITIAL_RESULT = {
    ProbeKind.LIVENESS: ProbeResult.SUCCESS,
    ProbeKind.READINESS: ProbeResult.FAILURE,
    ProbeKind.STARTUP: ProbeResult.UNKNOWN,
}


# ---------------------------------------------------------------------------------------------
# Probe specs (from the pod's JSON; the apiserver already defaulted the timing fields)


@dataclass(frozen=True)
class ExecAction:
    command: tuple[str, ...]


@dataclass(frozen=True)
class HTTPGetAction:
    port: int | str  # a number, or the name of one of the container's ports
    path: str = "/"
    host: str | None = None  # None: the pod IP
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class TCPSocketAction:
    port: int | str
    host: str | None = None


Handler = ExecAction | HTTPGetAction | TCPSocketAction


@dataclass(frozen=True)
class ProbeSpec:
    handler: Handler | None  # None: a handler this kubelet does not support (grpc)
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_dict(cls, probe: Mapping[str, Any]) -> ProbeSpec:
        handler: Handler | None = None
        if (ex := probe.get("exec")) is not None:
            handler = ExecAction(command=tuple(str(c) for c in (ex.get("command") or ())))
        elif (hg := probe.get("httpGet")) is not None:
            path = str(hg.get("path") or "/")
            handler = HTTPGetAction(
                port=_port(hg.get("port")), path=path if path.startswith("/") else "/" + path,
                host=hg.get("host") or None, scheme=str(hg.get("scheme") or "HTTP").upper(),
                headers=tuple((str(h.get("name", "")), str(h.get("value", "")))
                              for h in (hg.get("httpHeaders") or ())))
        elif (ts := probe.get("tcpSocket")) is not None:
            handler = TCPSocketAction(port=_port(ts.get("port")), host=ts.get("host") or None)

        def num(key: str, default: float) -> float:
            v = probe.get(key)
            return float(v) if v is not None else default

        return cls(handler=handler, initial_delay=num("initialDelaySeconds", 0),
                   period=max(num("periodSeconds", 10), 0.001), timeout=max(num("timeoutSeconds", 1), 0.001),
                   success_threshold=max(int(num("successThreshold", 1)), 1),
                   failure_threshold=max(int(num("failureThreshold", 3)), 1))


def _port(v: Any) -> int | str:
    if isinstance(v, int):
        return v
    s = str(v if v is not None else "")
    return int(s) if s.isdigit() else s


# ---------------------------------------------------------------------------------------------
# The pure state machine (one per pod uid, container name, kind)


class ProbeState:
    """What worker.go keeps between two runs of one probe; every method takes ``now``."""

    def __init__(self, kind: ProbeKind, spec: ProbeSpec) -> None:
        self.kind = kind
        self.spec = spec
        self.container_id: str | None = None
        self.started_at: float | None = None  # the container's start (seconds, the ``now`` clock)
        self.running = False
        self.result = INITIAL_RESULT[kind]
        self.last_result = ProbeResult.UNKNOWN  # the last raw probe outcome
        self.run = 0  # how many times in a row ``last_result`` came back
        self.on_hold = False  # liveness/startup failed: wait for a new container
        self.last_probe: float | None = None
        self.message = ""  # the output of the last failed run

    # -- observations

    def observe(self, *, container_id: str | None, running: bool, started_at: float | None,
                terminating: bool = False) -> bool:
        """The kubelet's view of the container; True when ``result`` changed.

        A new container id starts afresh (worker.go: results reset to the initial value, the
        hold is lifted). A container that is not running is not ready. While the pod is being
        deleted, liveness and startup report Success so nothing restarts it (graceful shutdown)."""
        before = self.result
        if container_id is None:
            # No container (yet, or the kubelet passed only running ones): keep the verdict on the
            # last one, so a condemned container stays condemned until its replacement shows up.
            self.running = False
            if self.kind is ProbeKind.READINESS and self.container_id is not None:
                self.result = ProbeResult.FAILURE
            return self.result is not before
        if container_id != self.container_id:
            self.container_id = container_id
            self.result = INITIAL_RESULT[self.kind]
            self.last_result = ProbeResult.UNKNOWN
            self.run = 0
            self.on_hold = False
            self.last_probe = None
            self.message = ""
        self.running = running
        self.started_at = started_at
        if not self.running and self.kind is ProbeKind.READINESS:
            self.result = ProbeResult.FAILURE
        if terminating and self.kind is not ProbeKind.READINESS and self.running:
            self.result = ProbeResult.SUCCESS
        return self.result is not before

    def wait_time(self, now: float, *, started: bool, terminating: bool = False) -> float | None:
        """Seconds until this probe should run (0: now), or None while it must not run at all
        (no running container, on hold, startup done, gated on startup, pod terminating)."""
        if not self.running or self.container_id is None or self.spec.handler is None or self.on_hold:
            return None
        if terminating and self.kind is not ProbeKind.READINESS:
            return None
        if self.kind is ProbeKind.STARTUP:
            if self.result is ProbeResult.SUCCESS:
                return None
        elif not started:
            return None
        start = self.started_at if self.started_at is not None else now
        due = start + self.spec.initial_delay
        if self.last_probe is not None:
            due = max(due, self.last_probe + self.spec.period)
        return max(0.0, due - now)

    def due(self, now: float, *, started: bool, terminating: bool = False) -> bool:
        return self.wait_time(now, started=started, terminating=terminating) == 0.0

    def record(self, result: ProbeResult, now: float, message: str = "") -> bool:
        """One probe run's outcome; True when the reported ``result`` changed.

        Unknown (a prober error: the run is thrown away) changes nothing but the run time."""
        self.last_probe = now
        if result is ProbeResult.UNKNOWN:
            return False
        if result is ProbeResult.FAILURE:
            self.message = message
        if result is self.last_result:
            self.run += 1
        else:
            self.last_result = result
            self.run = 1
        if (result is ProbeResult.FAILURE and self.run < self.spec.failure_threshold) or \
                (result is ProbeResult.SUCCESS and self.run < self.spec.success_threshold):
            return False
        changed = result is not self.result
        self.result = result
        if self.kind is not ProbeKind.READINESS and result is ProbeResult.FAILURE:
            # The container will be restarted; probing it further is pointless.
            self.on_hold = True
            self.run = 0
        return changed


# ---------------------------------------------------------------------------------------------
# Handlers


@dataclass(frozen=True)
class Outcome:
    result: ProbeResult
    output: str = ""  # the failure's text, Kubernetes' wording
    error: str | None = None  # a prober error (the run is thrown away): "... probe errored: ..."


def resolve_port(port: int | str, container: Mapping[str, Any]) -> int:
    """A probe's port: a number, or a container port's name (ValueError when unknown)."""
    if isinstance(port, int):
        if not 0 < port < 65536:
            raise ValueError(f"invalid port number: {port}")
        return port
    for p in container.get("ports") or ():
        if p.get("name") == port and p.get("containerPort"):
            return int(p["containerPort"])
    raise ValueError(f"couldn't find port: {port} in {container.get('name', '')}")


async def run_exec(runtime: ContainerRuntime, container_id: str, action: ExecAction, timeout: float, *,
                   run_blocking: RunBlocking) -> Outcome:
    """exit 0 is Success; any other code a Failure with the command's output; a timeout a
    Failure ``command "..." timed out`` (Kubernetes with ExecProbeTimeout on). The engine call
    runs through ``run_blocking`` (the kubelet's thread pool)."""
    timed_out = Outcome(ProbeResult.FAILURE, f'command "{" ".join(action.command)}" timed out')
    try:
        res = await asyncio.wait_for(
            run_blocking(runtime.exec, container_id, list(action.command), timeout=timeout), timeout + 2.0)
    except (ExecTimeout, asyncio.TimeoutError):
        return timed_out
    except ContainerRuntimeError as e:
        return Outcome(ProbeResult.UNKNOWN, error=str(e))
    output = res.output[:MAX_PROBE_OUTPUT].decode(errors="replace")
    if res.exit_code == 0:
        return Outcome(ProbeResult.SUCCESS, output)
    return Outcome(ProbeResult.FAILURE, output)


def _dial_error(host: str, port: int, e: BaseException) -> str:
    """Go's net.Dial wording, which probe messages (and users' alerting) carry."""
    if isinstance(e, ConnectionRefusedError):
        why = "connect: connection refused"
    elif isinstance(e, (asyncio.TimeoutError, TimeoutError)):
        why = "i/o timeout"
    elif isinstance(e, OSError) and e.strerror:
        why = "connect: " + e.strerror.lower()
    else:
        why = str(e) or type(e).__name__
    return f"dial tcp {host}:{port}: {why}"


async def run_tcp(host: str, port: int, timeout: float) -> Outcome:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        return Outcome(ProbeResult.FAILURE, _dial_error(host, port, e))
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return Outcome(ProbeResult.SUCCESS)


async def run_http(session: aiohttp.ClientSession, action: HTTPGetAction, *, host: str, port: int,
                   timeout: float) -> Outcome:
    """GET scheme://host:port/path; 200 <= status < 400 is Success (redirects followed, TLS not
    verified, as Kubernetes does)."""
    scheme = "https" if action.scheme == "HTTPS" else "http"
    url_host = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{url_host}:{port}{action.path}"
    headers = {"User-Agent": PROBE_USER_AGENT, "Accept": "*/*"}
    for name, value in action.headers:
        headers[name] = value
    try:
        async with session.get(url, headers=headers, ssl=False, allow_redirects=True, max_redirects=10,
                               timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            body = await resp.content.read(MAX_PROBE_OUTPUT)
            status = resp.status
    except (asyncio.TimeoutError, TimeoutError):
        return Outcome(ProbeResult.FAILURE,
                       f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)')
    except aiohttp.ClientConnectorError as e:
        return Outcome(ProbeResult.FAILURE, f'Get "{url}": {_dial_error(host, port, e.os_error)}')
    except (aiohttp.ClientError, OSError) as e:
        return Outcome(ProbeResult.FAILURE, f'Get "{url}": {e}')
    if 200 <= status < 400:
        return Outcome(ProbeResult.SUCCESS, body.decode(errors="replace"))
    return Outcome(ProbeResult.FAILURE, f"HTTP probe failed with statuscode: {status}")


# ---------------------------------------------------------------------------------------------
# The manager: one task per probe


@dataclass(frozen=True)
class ProbeEvent:
    """An event for the kubelet to record on the pod (reason Unhealthy, type Warning)."""

    pod_uid: str
    container_name: str
    kind: ProbeKind
    message: str  # "Liveness probe failed: HTTP probe failed with statuscode: 500"
    reason: str = "Unhealthy"
    type: str = "Warning"


@dataclass
class _Worker:
    pod_uid: str
    container: dict[str, Any]  # the container's spec
    state: ProbeState
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    pod_ip: str | None = None
    terminating: bool = False


def _timestamp(t: datetime | None) -> float | None:
    return t.timestamp() if t is not None else None


class ProbeManager:
    """Runs the probes of the pods on this node and answers the kubelet's questions.

    ``now`` (in ``sync``) and ``clock`` are wall-clock seconds (``time.time``): container start
    times come from the engine as wall-clock datetimes. ``on_change(pod_uid)`` is called (from
    the event loop) whenever a readiness/startup/liveness result of the pod changes;
    ``on_event(ProbeEvent)`` for every failed run (Kubernetes records one event per failure)."""

    def __init__(self, runtime: ContainerRuntime, *, run_blocking: RunBlocking,
                 on_change: Callable[[str], None] | None = None,
                 on_event: Callable[[ProbeEvent], None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.run_blocking = run_blocking
        self.on_change = on_change
        self.on_event = on_event
        self.clock = clock
        self._workers: dict[tuple[str, str, ProbeKind], _Worker] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- the kubelet's questions

    def readiness(self, pod_uid: str, container_name: str) -> bool | None:
        """None when the container has no readiness probe; else whether it last passed it."""
        w = self._workers.get((pod_uid, container_name, ProbeKind.READINESS))
        if w is None:
            return None
        s = w.state
        return s.running and s.result is ProbeResult.SUCCESS

    def started(self, pod_uid: str, container_name: str) -> bool:
        """True when the container has no startup probe or its startup probe succeeded (the
        caller combines this with the container running)."""
        w = self._workers.get((pod_uid, container_name, ProbeKind.STARTUP))
        return w is None or w.state.result is ProbeResult.SUCCESS

    def needs_restart(self, pod_uid: str, container_name: str, *, container_id: str | None = None) -> str | None:
        """``"Container NAME failed liveness probe"`` (or startup) when the current container
        must be killed; None otherwise. With ``container_id``, only for that container (a
        replacement the manager has not been synced with yet is not condemned)."""
        for kind in (ProbeKind.LIVENESS, ProbeKind.STARTUP):
            w = self._workers.get((pod_uid, container_name, kind))
            if w is None or w.state.result is not ProbeResult.FAILURE:
                continue
            if container_id is not None and w.state.container_id != container_id:
                continue
            return f"Container {container_name} failed {kind.value} probe"
        return None

    def message(self, pod_uid: str, container_name: str, kind: ProbeKind) -> str | None:
        """The last failure's text, Kubernetes' wording (``Liveness probe failed: ...``)."""
        w = self._workers.get((pod_uid, container_name, kind))
        if w is None or not w.state.message:
            return None
        return f"{kind.display} probe failed: {w.state.message}"

    def state(self, pod_uid: str, container_name: str, kind: ProbeKind) -> ProbeState | None:
        w = self._workers.get((pod_uid, container_name, kind))
        return w.state if w is not None else None

    # -- lifecycle

    def sync(self, pod: Mapping[str, Any], containers: Mapping[str, ContainerInfo], pod_ip: str | None,
             now: float) -> None:
        """Brings the pod's probe workers in line with its spec and its current containers
        (``containers``: container name -> its newest ContainerInfo). Must be called from the
        event loop. Results that change here (a new container resets them) do not call
        on_change: the caller reads the answers after this returns."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        terminating = bool(meta.get("deletionTimestamp"))
        wanted: set[tuple[str, str, ProbeKind]] = set()
        for c in (pod.get("spec") or {}).get("containers") or ():
            name = str(c.get("name", ""))
            for kind in ProbeKind:
                probe = c.get(kind.field)
                if not probe:
                    continue
                key = (uid, name, kind)
                wanted.add(key)
                w = self._workers.get(key)
                spec = ProbeSpec.from_dict(probe)
                if w is None or w.state.spec != spec:
                    if w is not None:
                        self._cancel(w)
                    w = _Worker(pod_uid=uid, container=dict(c), state=ProbeState(kind, spec))
                    self._workers[key] = w
                w.container = dict(c)
                w.pod_ip = pod_ip
                w.terminating = terminating
                info = containers.get(name)
                started_at = _timestamp(info.started_at) if info is not None else None
                if info is not None and info.running and started_at is None:
                    started_at = now
                w.state.observe(container_id=info.id if info is not None else None,
                                           running=info is not None and info.running, started_at=started_at,
                                           terminating=terminating)
        for key in [k for k in self._workers if k[0] == uid and k not in wanted]:
            self._cancel(self._workers.pop(key))
        for key in wanted:
            w = self._workers[key]
            if w.state.running and not w.state.on_hold:
                if w.task is None or w.task.done():
                    w.task = asyncio.get_running_loop().create_task(
                        self._loop(key, w), name=f"probe {key[2].value} {key[1]} of {uid}")
                w.wake.set()
            elif w.task is not None:
                self._cancel(w)

    def remove_pod(self, pod_uid: str) -> None:
        """Stops and forgets every probe of the pod."""
        for key in [k for k in self._workers if k[0] == pod_uid]:
            self._cancel(self._workers.pop(key))

    def pods(self) -> set[str]:
        return {k[0] for k in self._workers}

    async def close(self) -> None:
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for key in list(self._workers):
            self._cancel(self._workers.pop(key))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- internals

    @staticmethod
    def _cancel(w: _Worker) -> None:
        if w.task is not None:
            w.task.cancel()
            w.task = None

    def _changed(self, pod_uid: str) -> None:
        if self.on_change is not None:
            try:
                self.on_change(pod_uid)
            except Exception:
                log.exception("probe on_change callback failed for pod %s", pod_uid)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # No keep-alive: every probe is a fresh connection, as Kubernetes' prober does.
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True, limit=0))
        return self._session

    async def _loop(self, key: tuple[str, str, ProbeKind], w: _Worker) -> None:
        uid, name, kind = key
        try:
            while self._workers.get(key) is w:
                s = w.state
                wait = s.wait_time(self.clock(), started=self.started(uid, name), terminating=w.terminating)
                if wait is None:
                    gated = (s.running and not s.on_hold and not w.terminating
                             and kind is not ProbeKind.STARTUP and not self.started(uid, name))
                    if not gated:
                        return  # nothing to probe until sync brings a new container
                    # Waiting for the startup probe: _report wakes us when it succeeds.
                    w.wake.clear()
                    await w.wake.wait()
                    continue
                if wait > 0:
                    w.wake.clear()
                    try:
                        await asyncio.wait_for(w.wake.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
                    continue
                container_id = s.container_id
                outcome = await self._probe(w, kind)
                if self._workers.get(key) is not w or s.container_id != container_id:
                    continue  # replaced while probing: this run's outcome is stale
                self._report(w, kind, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("probe worker %s crashed", key)

    async def _probe(self, w: _Worker, kind: ProbeKind) -> Outcome:
        s = w.state
        h = s.spec.handler
        try:
            if isinstance(h, ExecAction):
                assert s.container_id is not None
                return await run_exec(self.runtime, s.container_id, h, s.spec.timeout,
                                      run_blocking=self.run_blocking)
            if isinstance(h, (HTTPGetAction, TCPSocketAction)):
                port = resolve_port(h.port, w.container)
                host = h.host or w.pod_ip
                if not host:
                    return Outcome(ProbeResult.UNKNOWN, error="the pod has no IP yet")
                if isinstance(h, TCPSocketAction):
                    return await run_tcp(host, port, s.spec.timeout)
                return await run_http(self._http(), h, host=host, port=port, timeout=s.spec.timeout)
            return Outcome(ProbeResult.UNKNOWN, error="missing probe handler")
        except ValueError as e:
            return Outcome(ProbeResult.UNKNOWN, error=str(e))

    def _report(self, w: _Worker, kind: ProbeKind, outcome: Outcome) -> None:
        uid, name = w.pod_uid, str(w.container.get("name", ""))
        s = w.state
        changed = s.record(outcome.result, self.clock(), outcome.output)
        if outcome.error is not None:
            self._event(ProbeEvent(uid, name, kind, f"{kind.display} probe errored: {outcome.error}"))
        elif outcome.result is ProbeResult.FAILURE:
            self._event(ProbeEvent(uid, name, kind, f"{kind.display} probe failed: {outcome.output}"))
        if changed:
            if kind is ProbeKind.STARTUP and s.result is ProbeResult.SUCCESS:
                # Liveness and readiness were waiting for this.
                for other in (ProbeKind.LIVENESS, ProbeKind.READINESS):
                    o = self._workers.get((uid, name, other))
                    if o is not None:
                        o.wake.set()
            self._changed(uid)

    def _event(self, ev: ProbeEvent) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(ev)
        except Exception:
            log.exception("probe on_event callback failed")


__all__: Sequence[str] = [
    "ExecAction", "HTTPGetAction", "TCPSocketAction", "ProbeSpec", "ProbeKind", "ProbeResult", "ProbeState",
    "ProbeEvent", "ProbeManager", "Outcome", "INITIAL_RESULT", "resolve_port", "run_exec", "run_http", "run_tcp",
]
