"""kubelet.probes without Docker: the ProbeState tables (thresholds, initial delay, startup gate,
restart request and its reset), spec parsing, and the ProbeManager's workers against a fake
runtime and servers on loopback."""

from __future__ import annotations

import asyncio
import socket
from datetime import datetime, timezone
from typing import Any, Sequence

import pytest
from aiohttp import web

from kubelet.probes import (
    ExecAction,
    HTTPGetAction,
    ProbeEvent,
    ProbeKind,
    ProbeManager,
    ProbeResult,
    ProbeSpec,
    ProbeState,
    TCPSocketAction,
    resolve_port,
    run_tcp,
)
from kubelet.cri import ContainerInfo, ExecResult, ExecTimeout

S, F, U = ProbeResult.SUCCESS, ProbeResult.FAILURE, ProbeResult.UNKNOWN
L, R, ST = ProbeKind.LIVENESS, ProbeKind.READINESS, ProbeKind.STARTUP
EXEC = ExecAction(("true",))


def state(kind: ProbeKind, **kw: Any) -> ProbeState:
    s = ProbeState(kind, ProbeSpec(handler=EXEC, **kw))
    s.observe(container_id="c1", running=True, started_at=100.0)
    return s


# ---------------------------------------------------------------------------------------------
# Pure tables


@pytest.mark.parametrize("kind, initial", [(L, S), (R, F), (ST, U)])
def test_initial_results(kind: ProbeKind, initial: ProbeResult) -> None:
    assert ProbeState(kind, ProbeSpec(handler=EXEC)).result is initial
    assert state(kind).result is initial


@pytest.mark.parametrize("kind, success_threshold, failure_threshold, runs, expected", [
    # readiness: not ready until successThreshold successes in a row
    (R, 1, 3, [S], [S]),
    (R, 3, 3, [S, S, S], [F, F, S]),
    (R, 3, 3, [S, S, F, S, S, S], [F, F, F, F, F, S]),
    (R, 1, 3, [S, F, F, F], [S, S, S, F]),
    (R, 1, 3, [S, F, F, S, F, F, F], [S, S, S, S, S, S, F]),
    (R, 1, 1, [S, F, S], [S, F, S]),
    (R, 2, 2, [S, S, F, F, S, S], [F, S, S, F, F, S]),
    # Unknown (a prober error) throws the run away: counts neither way
    (R, 1, 2, [F, U, F], [F, F, F]),
    (R, 2, 3, [S, U, S], [F, F, S]),
    # liveness: Success until failureThreshold failures in a row, then held at Failure
    (L, 1, 3, [F, F, F], [S, S, F]),
    (L, 1, 3, [F, F, S, F, F], [S, S, S, S, S]),
    (L, 1, 1, [F], [F]),
    (L, 1, 3, [F, F, F, S, S], [S, S, F, F, F]),  # on hold: a late success does not revive it
    # startup: Unknown until it succeeds or fails failureThreshold times
    (ST, 1, 3, [F, F, S], [U, U, S]),
    (ST, 1, 3, [F, F, F], [U, U, F]),
    (ST, 1, 2, [F, S, F, F], [U, S, S, S]),  # once started it is never probed again
])
def test_thresholds(kind: ProbeKind, success_threshold: int, failure_threshold: int,
                    runs: Sequence[ProbeResult], expected: Sequence[ProbeResult]) -> None:
    s = state(kind, success_threshold=success_threshold, failure_threshold=failure_threshold)
    got = []
    for i, r in enumerate(runs):
        if s.due(200.0 + 10 * i, started=True):
            s.record(r, 200.0 + 10 * i, "boom")
        got.append(s.result)
    assert got == list(expected)


def test_record_reports_changes_only() -> None:
    s = state(R, failure_threshold=2)
    assert s.record(S, 1) is True
    assert s.record(S, 2) is False
    assert s.record(F, 3) is False
    assert s.record(F, 4, "HTTP probe failed with statuscode: 500") is True
    assert s.message == "HTTP probe failed with statuscode: 500"


@pytest.mark.parametrize("initial_delay, period, last_probe, now, wait", [
    (0, 10, None, 100.0, 0.0),  # the first run is at once
    (5, 10, None, 101.0, 4.0),  # counted from the container's start (100)
    (5, 10, None, 105.0, 0.0),
    (5, 10, None, 300.0, 0.0),
    (0, 10, 100.0, 104.0, 6.0),  # then every periodSeconds
    (0, 10, 100.0, 111.0, 0.0),
    (30, 1, 100.0, 110.0, 20.0),  # the initial delay wins over an earlier period
])
def test_initial_delay_and_period(initial_delay: float, period: float, last_probe: float | None,
                                  now: float, wait: float) -> None:
    s = state(L, initial_delay=initial_delay, period=period)
    s.last_probe = last_probe
    assert s.wait_time(now, started=True) == pytest.approx(wait)
    assert s.due(now, started=True) is (wait == 0)


@pytest.mark.parametrize("kind, running, started, on_hold, terminating, startup_result, runs", [
    (L, True, False, False, False, U, False),  # liveness waits for the startup probe
    (R, True, False, False, False, U, False),  # so does readiness
    (L, True, True, False, False, U, True),
    (R, True, True, False, False, U, True),
    (ST, True, False, False, False, U, True),  # the startup probe itself runs
    (ST, True, True, False, False, S, False),  # and stops once it succeeded
    (L, False, True, False, False, U, False),  # nothing runs without a running container
    (L, True, True, True, False, U, False),  # held after a liveness failure
    (L, True, True, False, True, U, False),  # graceful deletion: no liveness probing
    (R, True, True, False, True, U, True),  # but readiness goes on
])
def test_when_a_probe_runs(kind: ProbeKind, running: bool, started: bool, on_hold: bool, terminating: bool,
                           startup_result: ProbeResult, runs: bool) -> None:
    s = ProbeState(kind, ProbeSpec(handler=EXEC))
    s.observe(container_id="c1", running=running, started_at=100.0)
    s.on_hold = on_hold
    if kind is ST:
        s.result = startup_result
    assert (s.wait_time(200.0, started=started, terminating=terminating) is not None) is runs


def test_unsupported_handler_never_runs() -> None:
    s = ProbeState(L, ProbeSpec(handler=None))
    s.observe(container_id="c1", running=True, started_at=0)
    assert s.wait_time(10, started=True) is None


def test_liveness_failure_requests_a_restart_and_a_new_container_resets_it() -> None:
    s = state(L, failure_threshold=2)
    s.record(F, 101)
    s.record(F, 111)
    assert s.result is F and s.on_hold
    # The same container seen again (still running, before the kubelet killed it): still condemned.
    assert s.observe(container_id="c1", running=True, started_at=100.0) is False
    assert s.result is F and not s.due(500, started=True)
    # It stopped and is not listed any more: still condemned (no accidental reprieve).
    s.observe(container_id=None, running=False, started_at=None)
    assert s.result is F
    # The replacement: a fresh start, counters reset (one failure is not enough again).
    assert s.observe(container_id="c2", running=True, started_at=600.0) is True
    assert s.result is S and not s.on_hold and s.run == 0 and s.last_probe is None
    assert s.due(600, started=True)
    s.record(F, 600)
    assert s.result is S
    s.record(F, 610)
    assert s.result is F


def test_readiness_is_lost_when_the_container_stops_and_reset_on_a_new_one() -> None:
    s = state(R)
    s.record(S, 101)
    assert s.result is S
    assert s.observe(container_id="c1", running=False, started_at=100.0) is True
    assert s.result is F
    s.observe(container_id="c2", running=True, started_at=200.0)
    assert s.result is F  # not ready until the new container passes
    s.record(S, 201)
    assert s.result is S


def test_terminating_pod_reports_liveness_and_startup_success() -> None:
    for kind in (L, ST):
        s = state(kind, failure_threshold=1)
        s.record(F, 101)
        assert s.result is F
        s.observe(container_id="c1", running=True, started_at=100.0, terminating=True)
        assert s.result is S


def test_spec_from_pod_json() -> None:
    spec = ProbeSpec.from_dict({"httpGet": {"path": "healthz", "port": "http", "httpHeaders": [
        {"name": "X-A", "value": "1"}]}, "initialDelaySeconds": 3, "periodSeconds": 2, "timeoutSeconds": 4,
        "successThreshold": 1, "failureThreshold": 5})
    assert spec == ProbeSpec(handler=HTTPGetAction(port="http", path="/healthz", headers=(("X-A", "1"),)),
                             initial_delay=3, period=2, timeout=4, success_threshold=1, failure_threshold=5)
    assert ProbeSpec.from_dict({"tcpSocket": {"port": "8080"}}).handler == TCPSocketAction(port=8080)
    assert ProbeSpec.from_dict({"exec": {"command": ["cat", "/tmp/x"]}}) == ProbeSpec(
        handler=ExecAction(("cat", "/tmp/x")))
    assert ProbeSpec.from_dict({"grpc": {"port": 9000}}).handler is None
    container = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}
    assert resolve_port("http", container) == 8080 and resolve_port(81, container) == 81
    with pytest.raises(ValueError, match="couldn't find port"):
        resolve_port("metrics", container)


# ---------------------------------------------------------------------------------------------
# The manager's workers, with a fake runtime and loopback servers


class FakeRuntime:
    """Only ``exec``: answers from ``self.code`` (or sleeps past the timeout)."""

    def __init__(self) -> None:
        self.code = 0
        self.output = b""
        self.sleep = 0.0
        self.calls: list[tuple[str, list[str]]] = []

    def exec(self, container_id: str, cmd: Sequence[str], *, timeout: float | None = None) -> ExecResult:
        self.calls.append((container_id, list(cmd)))
        if self.sleep and timeout is not None and self.sleep > timeout:
            import time
            time.sleep(timeout)
            raise ExecTimeout("too slow")
        return ExecResult(exit_code=self.code, output=self.output)


def info(cid: str, *, running: bool = True) -> ContainerInfo:
    now = datetime.now(timezone.utc)
    return ContainerInfo(id=cid, name=cid, labels={}, state="running" if running else "exited",
                         exit_code=None if running else 1, created_at=now, started_at=now,
                         finished_at=None if running else now, image="x", image_id="sha256:x")


def pod(uid: str, containers: list[dict[str, Any]], *, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"uid": uid, "name": "p", "namespace": "default"}
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": meta, "spec": {"containers": containers}}


def fast(handler: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {**handler, "periodSeconds": 0.05, "timeoutSeconds": 0.5, "successThreshold": 1,
            "failureThreshold": kw.pop("failureThreshold", 1), **kw}


async def eventually(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


class Harness:
    def __init__(self) -> None:
        self.runtime = FakeRuntime()
        self.changes: list[str] = []
        self.events: list[ProbeEvent] = []
        self.mgr = ProbeManager(self.runtime, run_blocking=asyncio.to_thread,  # type: ignore[arg-type]
                                on_change=self.changes.append,
                                on_event=self.events.append)


@pytest.fixture
async def h() -> Any:
    harness = Harness()
    yield harness
    await harness.mgr.close()


async def test_manager_exec_readiness_and_liveness(h: Harness) -> None:
    import time
    c = {"name": "app", "readinessProbe": fast({"exec": {"command": ["check"]}}),
         "livenessProbe": fast({"exec": {"command": ["alive"]}}, failureThreshold=2)}
    p = pod("u1", [c])
    assert h.mgr.readiness("u1", "app") is None  # unknown pod
    h.mgr.sync(p, {"app": info("c1")}, "127.0.0.1", time.time())
    assert h.mgr.readiness("u1", "app") is False and h.mgr.started("u1", "app")
    await eventually(lambda: h.mgr.readiness("u1", "app") is True)
    assert "u1" in h.changes and h.mgr.needs_restart("u1", "app") is None

    h.runtime.code, h.runtime.output = 1, b"not healthy\n"
    await eventually(lambda: h.mgr.needs_restart("u1", "app") is not None)
    assert h.mgr.needs_restart("u1", "app") == "Container app failed liveness probe"
    assert h.mgr.needs_restart("u1", "app", container_id="c2") is None
    assert h.mgr.readiness("u1", "app") is False
    msgs = {e.message for e in h.events}
    assert "Liveness probe failed: not healthy\n" in msgs and "Readiness probe failed: not healthy\n" in msgs
    assert all(e.reason == "Unhealthy" and e.type == "Warning" for e in h.events)
    assert h.mgr.message("u1", "app", L) == "Liveness probe failed: not healthy\n"

    # The kubelet restarts the container: a fresh verdict for the new id.
    h.runtime.code = 0
    h.mgr.sync(p, {"app": info("c2")}, "127.0.0.1", time.time())
    assert h.mgr.needs_restart("u1", "app") is None
    await eventually(lambda: h.mgr.readiness("u1", "app") is True)
    assert any(cid == "c2" for cid, _ in h.runtime.calls)

    h.mgr.remove_pod("u1")
    assert h.mgr.readiness("u1", "app") is None and "u1" not in h.mgr.pods()


async def test_manager_startup_gates_liveness_and_readiness(h: Harness) -> None:
    import time
    h.runtime.code = 1
    c = {"name": "slow", "startupProbe": fast({"exec": {"command": ["started"]}}, failureThreshold=1000),
         "livenessProbe": fast({"exec": {"command": ["alive"]}}),
         "readinessProbe": fast({"exec": {"command": ["ready"]}})}
    h.mgr.sync(pod("u2", [c]), {"slow": info("c1")}, "127.0.0.1", time.time())
    await asyncio.sleep(0.3)
    assert {tuple(cmd) for _, cmd in h.runtime.calls} == {("started",)}
    assert not h.mgr.started("u2", "slow") and h.mgr.readiness("u2", "slow") is False
    assert h.mgr.needs_restart("u2", "slow") is None
    h.runtime.code = 0
    await eventually(lambda: h.mgr.started("u2", "slow") and h.mgr.readiness("u2", "slow") is True)
    n = len([1 for _, cmd in h.runtime.calls if cmd == ["started"]])
    await asyncio.sleep(0.2)
    assert len([1 for _, cmd in h.runtime.calls if cmd == ["started"]]) == n  # never again
    assert any(cmd == ["alive"] for _, cmd in h.runtime.calls)


async def test_manager_startup_failure_requests_restart(h: Harness) -> None:
    import time
    h.runtime.code = 1
    c = {"name": "never", "startupProbe": fast({"exec": {"command": ["started"]}}, failureThreshold=3)}
    h.mgr.sync(pod("u3", [c]), {"never": info("c1")}, "127.0.0.1", time.time())
    await eventually(lambda: h.mgr.needs_restart("u3", "never") is not None)
    assert h.mgr.needs_restart("u3", "never") == "Container never failed startup probe"
    assert len(h.runtime.calls) == 3


async def test_manager_exec_timeout_and_deleting_pod(h: Harness) -> None:
    import time
    h.runtime.sleep = 2
    c = {"name": "app", "livenessProbe": fast({"exec": {"command": ["sleep", "2"]}}, timeoutSeconds=0.2)}
    h.mgr.sync(pod("u4", [c]), {"app": info("c1")}, "127.0.0.1", time.time())
    await eventually(lambda: h.mgr.needs_restart("u4", "app") is not None)
    assert h.events[0].message == 'Liveness probe failed: command "sleep 2" timed out'
    # Graceful deletion: liveness reports Success, nothing to restart.
    h.mgr.sync(pod("u4", [c], deleting=True), {"app": info("c1")}, "127.0.0.1", time.time())
    assert h.mgr.needs_restart("u4", "app") is None


async def test_manager_initial_delay(h: Harness) -> None:
    import time
    c = {"name": "app", "readinessProbe": fast({"exec": {"command": ["x"]}}, initialDelaySeconds=0.4)}
    t0 = time.monotonic()
    h.mgr.sync(pod("u5", [c]), {"app": info("c1")}, "127.0.0.1", time.time())
    await eventually(lambda: h.mgr.readiness("u5", "app") is True)
    assert time.monotonic() - t0 >= 0.35


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_and_tcp_handlers_on_loopback(h: Harness) -> None:
    import time
    seen: list[dict[str, str]] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(text="ok")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/broken", broken)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    closed = free_port()
    try:
        containers: list[dict[str, Any]] = [
            {"name": "ok", "ports": [{"name": "web", "containerPort": port}],
             "readinessProbe": fast({"httpGet": {"path": "/ok", "port": "web",
                                                 "httpHeaders": [{"name": "X-Probe", "value": "yes"}]}})},
            {"name": "redirect", "readinessProbe": fast({"httpGet": {"path": "/moved", "port": port}})},
            {"name": "broken", "livenessProbe": fast({"httpGet": {"path": "/broken", "port": port}})},
            {"name": "refused", "livenessProbe": fast({"httpGet": {"path": "/", "port": closed}})},
            {"name": "tcp-open", "readinessProbe": fast({"tcpSocket": {"port": port}})},
            {"name": "tcp-closed", "livenessProbe": fast({"tcpSocket": {"port": closed}})},
            {"name": "bad-port", "readinessProbe": fast({"httpGet": {"port": "nope"}})},
        ]
        h.mgr.sync(pod("u6", containers), {c["name"]: info("c-" + c["name"]) for c in containers},
                   "127.0.0.1", time.time())
        await eventually(lambda: all([
            h.mgr.readiness("u6", "ok"), h.mgr.readiness("u6", "redirect"), h.mgr.readiness("u6", "tcp-open"),
            h.mgr.needs_restart("u6", "broken"), h.mgr.needs_restart("u6", "refused"),
            h.mgr.needs_restart("u6", "tcp-closed")]))
        assert seen[0]["X-Probe"] == "yes" and seen[0]["User-Agent"].startswith("kube-probe/")
        assert h.mgr.readiness("u6", "bad-port") is False
        msgs = {e.message for e in h.events}
        assert "Liveness probe failed: HTTP probe failed with statuscode: 500" in msgs
        assert (f'Liveness probe failed: Get "http://127.0.0.1:{closed}/": '
                f"dial tcp 127.0.0.1:{closed}: connect: connection refused") in msgs
        assert f"Liveness probe failed: dial tcp 127.0.0.1:{closed}: connect: connection refused" in msgs
        assert "Readiness probe errored: couldn't find port: nope in bad-port" in msgs
    finally:
        await runner.cleanup()


async def test_tcp_timeout_is_honoured() -> None:
    # A listening socket whose backlog is full leaves further connects hanging (SYNs dropped).
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            f = socket.socket()
            f.setblocking(False)
            try:
                f.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(f)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        out = await run_tcp("127.0.0.1", port, 0.3)
        elapsed = loop.time() - t0
        if out.result is ProbeResult.SUCCESS:
            pytest.skip("the kernel accepted past the backlog")
        assert out.output == f"dial tcp 127.0.0.1:{port}: i/o timeout" and elapsed < 1.5
    finally:
        for f in fillers:
            f.close()
        srv.close()
