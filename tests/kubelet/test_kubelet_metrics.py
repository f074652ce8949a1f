"""kubelet.metrics: Kubernetes' kubelet metrics, from the pure tracker to a real kubelet's /metrics.

Pure: the pod start tracker (a fake clock, each step of a pod's start), the running pod/container
counts, the pod worker's operation types, the runtime wrapper. Real: the Docker runtime's own
methods counted (an engine socket that does not exist: the error is counted too), the kubelet API's
``GET /metrics`` behind its token, and a real ``minik8s kubelet --simulated`` process (against the
session's real apiserver) whose /metrics reports a start per pod it runs. The Docker kubelet's numbers after a rollout are
checked by tests/e2e/test_metrics_e2e.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import aiohttp
import pytest

from kubelet import metrics as km
from kubelet.credential import fixed_token
from kubelet.cri import LABEL_POD_UID, LABEL_ROLE, ROLE_CONTAINER, ROLE_SANDBOX, ContainerInfo, RuntimeUnavailable
from kubelet.runtime import DockerRuntime
from kubelet.server import label_resolver, start_kubelet_server
from machinery.client import ApiClient
from machinery.kubeletauth import authorization_header
from machinery.metrics import REGISTRY, Sample, parse, value
from tests.cluster import ApiServerProcess, free_port
from tests.kubelet.test_simulated import eventually, get_or_none, pod, remove_nodes, start_kubelet

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Clock:
    def __init__(self) -> None:
        self.now = T0.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def api_pod(uid: str, *, created: datetime = T0, status: dict[str, Any] | None = None,
            host_network: bool = False) -> dict[str, Any]:
    return {"metadata": {"uid": uid, "name": "p", "namespace": "ns",
                         "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
            "spec": {"hostNetwork": host_network, "containers": [{"name": "c"}]},
            "status": status if status is not None else {"phase": "Pending"}}


def running_status(started: bool = True) -> dict[str, Any]:
    state = {"running": {"startedAt": "2026-01-01T12:00:05Z"}} if started else {"waiting": {"reason": "ContainerCreating"}}
    return {"phase": "Running" if started else "Pending", "startTime": "2026-01-01T12:00:01Z",
            "containerStatuses": [{"name": "c", "state": state}]}


class Counts:
    """Deltas of the pod start histograms' counts since construction."""

    def __init__(self) -> None:
        self.base = self.read()

    @staticmethod
    def read() -> dict[str, float]:
        return {"start": sample("kubelet_pod_start_duration_seconds_count"),
                "start_sum": sample("kubelet_pod_start_duration_seconds_sum"),
                "sli": sum(sample("kubelet_pod_start_sli_duration_seconds_count", first_with_network=f)
                           for f in ("true", "")),
                "sli_sum": sum(sample("kubelet_pod_start_sli_duration_seconds_sum", first_with_network=f)
                               for f in ("true", "")),
                "total_sum": sum(sample("kubelet_pod_start_total_duration_seconds_sum", first_with_network=f)
                                 for f in ("true", ""))}

    def delta(self) -> dict[str, float]:
        now = self.read()
        return {k: round(now[k] - self.base[k], 6) for k in now}


# ---------------------------------------------------------------------------------- the tracker
def test_a_pod_start_is_observed_once_with_the_pull_window_left_out_of_the_sli() -> None:
    clock, counts = Clock(), Counts()
    tracker = km.PodStartTracker(clock)
    clock.advance(2)  # scheduled 2 s after its creation
    tracker.seen(api_pod("u1"))
    tracker.pulling("u1")
    clock.advance(3)
    tracker.pulled("u1")  # 3 s of pulling
    clock.advance(1)
    tracker.writing("u1", {"phase": "Pending"}, running_status())  # first seen -> Running: 4 s
    tracker.writing("u1", {"phase": "Pending"}, running_status())  # a retried write: not a second start
    clock.advance(0.5)
    tracker.observed(api_pod("u1", status=running_status()))  # back through the watch, 6.5 s after creation
    tracker.observed(api_pod("u1", status=running_status()))
    assert counts.delta() == {"start": 1, "start_sum": 4.0, "sli": 1, "sli_sum": 3.5, "total_sum": 6.5}


@pytest.mark.parametrize("case", ["adopted", "not-all-started", "never-written", "terminal", "no-uid"])
def test_what_is_not_a_pod_start(case: str) -> None:
    clock, counts = Clock(), Counts()
    tracker = km.PodStartTracker(clock)
    status = running_status()
    if case == "adopted":  # a kubelet restarted: the pod had started before it saw it
        tracker.seen(api_pod("u2", status=running_status()))
        tracker.writing("u2", {"phase": "Pending"}, status)
        tracker.observed(api_pod("u2", status=status))
    elif case == "not-all-started":
        tracker.seen(api_pod("u2"))
        status = {**status, "containerStatuses": [*status["containerStatuses"],
                                                  {"name": "d", "state": {"waiting": {}}}]}
        tracker.writing("u2", {"phase": "Pending"}, {**status, "phase": "Pending"})
        tracker.observed(api_pod("u2", status={**status, "phase": "Pending"}))
    elif case == "never-written":  # the watch shows a running status this kubelet did not write
        tracker.seen(api_pod("u2"))
        tracker.observed(api_pod("u2", status=status))
    elif case == "terminal":
        tracker.seen(api_pod("u2"))
        tracker.observed(api_pod("u2", status={"phase": "Failed"}))
        assert "u2" not in tracker.pods
        tracker.writing("u2", {"phase": "Pending"}, status)
    elif case == "no-uid":
        p = api_pod("")
        tracker.seen(p)
        assert tracker.pods == {}
    assert (counts.delta()["start"], counts.delta()["sli"]) == (0, 0)


def test_first_pod_with_network_and_forget() -> None:
    clock = Clock()
    tracker = km.PodStartTracker(clock)
    before = (sample("kubelet_pod_start_sli_duration_seconds_count", first_with_network="true"),
              sample("kubelet_pod_start_sli_duration_seconds_count", first_with_network=""))
    for uid, host in (("h", True), ("n1", False), ("n2", False)):
        tracker.seen(api_pod(uid, host_network=host))
        tracker.writing(uid, {}, running_status())
        tracker.observed(api_pod(uid, status=running_status()))
    after = (sample("kubelet_pod_start_sli_duration_seconds_count", first_with_network="true"),
             sample("kubelet_pod_start_sli_duration_seconds_count", first_with_network=""))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 2)  # only n1 is the first with a network
    for uid in ("h", "n1", "n2"):
        tracker.forget(uid)
    assert tracker.pods == {}


@pytest.mark.parametrize("pod_, known, want", [
    ({"metadata": {}}, False, "create"),
    ({"metadata": {}}, True, "sync"),
    ({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}}, True, "kill"),
])
def test_sync_operation(pod_: dict[str, Any], known: bool, want: str) -> None:
    assert km.sync_operation(pod_, known=known) == want


def _c(role: str, state: str, uid: str = "u") -> ContainerInfo:
    return ContainerInfo(id=uuid.uuid4().hex, name="x", labels={LABEL_ROLE: role, LABEL_POD_UID: uid}, state=state,
                         exit_code=None, created_at=None, started_at=None, finished_at=None, image="", image_id="")


@pytest.mark.parametrize("containers, pods, states", [
    ([], 0, {}),
    ([_c(ROLE_SANDBOX, "running", "a"), _c(ROLE_CONTAINER, "running", "a"), _c(ROLE_CONTAINER, "exited", "a")],
     1, {"running": 1, "exited": 1}),
    ([_c(ROLE_SANDBOX, "exited", "a"), _c(ROLE_SANDBOX, "running", "b"), _c(ROLE_SANDBOX, "running", "c"),
      _c(ROLE_CONTAINER, "created", "b"), _c(ROLE_CONTAINER, "dead", "c"), _c(ROLE_CONTAINER, "paused", "c")],
     2, {"created": 1, "exited": 1, "unknown": 1}),
])
def test_running_counts(containers: list[ContainerInfo], pods: int, states: dict[str, int]) -> None:
    got_pods, got_states = km.running_counts(containers)
    assert got_pods == pods
    assert got_states == {s: states.get(s, 0) for s in km.CONTAINER_STATES}
    km.set_running(containers)
    assert sample("kubelet_running_pods") == pods
    assert sample("kubelet_running_containers", container_state="running") == states.get("running", 0)


# ---------------------------------------------------------------------------------- the runtime wrapper
def test_timed_operation_counts_calls_and_errors() -> None:
    op = f"test_{uuid.uuid4().hex[:6]}"

    @km.timed_operation(op)
    def call(fail: bool) -> str:
        if fail:
            raise ValueError("no")
        return "ok"

    assert call(False) == "ok"
    with pytest.raises(ValueError):
        call(True)
    assert sample("kubelet_runtime_operations_total", operation_type=op) == 2
    assert sample("kubelet_runtime_operations_errors_total", operation_type=op) == 1
    assert sample("kubelet_runtime_operations_duration_seconds_count", operation_type=op) == 2


def test_the_docker_runtime_counts_its_operations(tmp_path: Any) -> None:
    """Real DockerRuntime methods against an engine socket that does not exist: counted, errors too."""
    rt = DockerRuntime(f"unix://{tmp_path}/no-engine.sock", timeout=2)
    before = {k: sample(f"kubelet_runtime_operations_{k}", operation_type="status") for k in ("total", "errors_total")}
    with pytest.raises(RuntimeUnavailable):
        rt.ping()
    with pytest.raises(RuntimeUnavailable):
        rt.list({LABEL_POD_UID: "x"})
    assert sample("kubelet_runtime_operations_total", operation_type="status") == before["total"] + 1
    assert sample("kubelet_runtime_operations_errors_total", operation_type="status") == before["errors_total"] + 1
    assert sample("kubelet_runtime_operations_errors_total", operation_type="list_containers") >= 1
    rt.close()


# ---------------------------------------------------------------------------------- GET /metrics
TOKEN = "metrics-test-token"


@pytest.fixture
async def kubelet_api(tmp_path: Any) -> AsyncIterator[str]:
    rt = DockerRuntime(f"unix://{tmp_path}/no-engine.sock")  # /metrics never asks the engine
    runner, port = await start_kubelet_server(rt, host="127.0.0.1", port=0, run_blocking=asyncio.to_thread,
                                              authorize=fixed_token(TOKEN),
                                              resolve=label_resolver(rt, run_blocking=asyncio.to_thread))
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.mark.parametrize("headers, status", [({}, 401), (authorization_header("wrong"), 403),
                                             (authorization_header(TOKEN), 200)])
async def test_metrics_route_is_authorized(kubelet_api: str, headers: dict[str, str], status: int) -> None:
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(f"{kubelet_api}/metrics") as r:
            assert r.status == status
            text = await r.text()
    if status == 200:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        samples = parse(text)
        assert "kubelet_pod_start_duration_seconds_count" in samples
        assert "kubelet_runtime_operations_duration_seconds_bucket" in samples
        assert value(samples, "process_resident_memory_bytes") > 0


async def test_metrics_route_speaks_openmetrics(kubelet_api: str) -> None:
    async with aiohttp.ClientSession(headers=authorization_header(TOKEN)) as s:
        async with s.get(f"{kubelet_api}/metrics", headers={"Accept": "application/openmetrics-text"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("application/openmetrics-text")
            assert (await r.text()).rstrip().endswith("# EOF")


# ---------------------------------------------------------------------------------- a simulated kubelet
@pytest.fixture
async def client(apiserver: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver.url, timeout=60) as c:
        yield c


async def test_a_simulated_kubelet_reports_each_pod_start(apiserver: ApiServerProcess, client: ApiClient,
                                                          namespace: str) -> None:
    """``minik8s kubelet --simulated --healthz-port P``: its /metrics counts one start per pod it runs."""
    node, port = f"simmetrics{uuid.uuid4().hex[:6]}", free_port()
    proc = start_kubelet(apiserver.url, node, "--healthz-port", str(port), "--lease-renew-interval", "0.5")
    url = f"http://127.0.0.1:{port}"

    async def scrape() -> dict[str, list[Sample]] | None:
        try:
            async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
                return parse(await r.text()) if r.status == 200 else None
        except aiohttp.ClientError:
            return None

    try:
        await eventually(scrape, what="the simulated kubelet's /metrics", timeout=60, proc=proc)
        await eventually(lambda: get_or_none(client, "nodes", node), what="its node", timeout=60, proc=proc)
        started = time.time()
        for i in range(3):
            await client.create("pods", pod(f"p{i}", node), namespace=namespace)

        async def recorded() -> dict[str, list[Sample]] | None:
            got = await scrape()
            return got if got and value(got, "kubelet_pod_start_sli_duration_seconds_count") >= 3 and \
                value(got, "kubelet_pod_start_duration_seconds_count") >= 3 else None

        samples = await eventually(recorded, what="three pod starts and SLIs on /metrics", timeout=60, proc=proc)
        elapsed = time.time() - started
        assert value(samples, "kubelet_pod_start_duration_seconds_count") == 3
        assert value(samples, "kubelet_pod_start_sli_duration_seconds_count") == 3
        assert value(samples, "kubelet_pod_start_sli_duration_seconds_count", first_with_network="true") == 1
        # creationTimestamp has whole seconds: the SLI may be up to 1 s longer than the wait
        assert 0 <= value(samples, "kubelet_pod_start_sli_duration_seconds_sum") <= 3 * (elapsed + 1.0)
        assert 0 <= value(samples, "kubelet_pod_start_duration_seconds_sum") <= 3 * elapsed
        assert value(samples, "process_resident_memory_bytes") > 0
        async with aiohttp.ClientSession() as s, s.get(f"{url}/healthz") as r:
            assert (r.status, await r.text()) == (200, "ok")
    finally:
        proc.stop()
        await remove_nodes(client, [node])
