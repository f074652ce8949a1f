"""kubelet.probes against real containers: a busybox pod (sandbox + app container made through
kubelet.runtime) on a test pod network of its own, probed by a ProbeManager over exec, httpGet
(busybox httpd) and tcpSocket. Traffic goes only to that network's pod IP.

Everything made here carries ``io.minik8s.test-run=<run id>`` and is removed by label at the end.
Without an engine (or the image) the tests fail when ``CI`` is set, and skip otherwise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import pytest

from kubelet.probes import ProbeEvent, ProbeKind, ProbeManager
from kubelet.runtime import (
    LABEL_POD_UID,
    ContainerInfo,
    ContainerSpec,
    DockerRuntime,
    NetworkInfo,
    Sandbox,
)
from tests.dockertest import IMAGE, docker_runtime, make_test_network

pytestmark = pytest.mark.docker

NETWORK = "minik8s-pods-test-probes"
RUN_ID = uuid.uuid4().hex[:10]
RUN_LABELS = {"io.minik8s.test-run": RUN_ID}


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    yield from docker_runtime(RUN_LABELS)


@pytest.fixture(scope="module")
def network(runtime: DockerRuntime) -> Iterator[NetworkInfo]:
    """The probes' own pod network, on a free /24 of the test pool."""
    runtime.remove_network(NETWORK)  # a leftover of an interrupted run (fails if still in use)
    info = make_test_network(runtime, NETWORK, RUN_LABELS)
    yield info
    for c in runtime.list(RUN_LABELS):
        runtime.remove(c.id, force=True)
    runtime.remove_network(NETWORK)


@dataclass
class Pod:
    uid: str
    sandbox: Sandbox
    spec: dict[str, Any]  # the pod's JSON, for ProbeManager.sync
    containers: dict[str, ContainerInfo]


@pytest.fixture
def make_pod(runtime: DockerRuntime, network: NetworkInfo) -> Iterator[Callable[..., Pod]]:
    """A pod with one running busybox container per entry of ``containers`` ({name: (script,
    container JSON with probes)})."""
    made: list[str] = []

    def make(name: str, containers: dict[str, tuple[str, dict[str, Any]]]) -> Pod:
        uid = str(uuid.uuid4())
        made.append(uid)
        sandbox = runtime.run_sandbox(pod_uid=uid, pod_name=name, namespace="default", node="node-probes",
                                      network=network.name, labels=RUN_LABELS)
        infos: dict[str, ContainerInfo] = {}
        for cname, (script, _) in containers.items():
            cid = runtime.create_container(ContainerSpec(
                pod_uid=uid, pod_name=name, namespace="default", node="node-probes", name=cname, image=IMAGE,
                sandbox_id=sandbox.id, command=["sh", "-c", script], labels=RUN_LABELS))
            runtime.start(cid)
            infos[cname] = runtime.inspect(cid)
        spec = {"metadata": {"uid": uid, "name": name, "namespace": "default"},
                "spec": {"containers": [{"name": cname, "image": IMAGE, **c}
                                        for cname, (_, c) in containers.items()]}}
        return Pod(uid=uid, sandbox=sandbox, spec=spec, containers=infos)

    yield make
    for uid in made:
        for c in runtime.list({LABEL_POD_UID: uid}):
            runtime.remove(c.id, force=True)


@dataclass
class Probes:
    mgr: ProbeManager
    events: list[ProbeEvent]
    changes: list[str]


@pytest.fixture
async def probes(runtime: DockerRuntime) -> AsyncIterator[Probes]:
    events: list[ProbeEvent] = []
    changes: list[str] = []
    mgr = ProbeManager(runtime, run_blocking=asyncio.to_thread, on_change=changes.append, on_event=events.append)
    yield Probes(mgr, events, changes)
    await mgr.close()


def fast(handler: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {**handler, "initialDelaySeconds": 0, "periodSeconds": 0.2, "timeoutSeconds": 1,
            "successThreshold": 1, "failureThreshold": 1, **kw}


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


HTTPD = "mkdir -p /www && echo ok > /www/healthz && httpd -f -p 8080 -h /www"


async def test_exec_probe_follows_a_file(runtime: DockerRuntime, make_pod: Callable[..., Pod],
                                         probes: Probes) -> None:
    pod = make_pod("exec", {"app": ("sleep 1000", {
        "readinessProbe": fast({"exec": {"command": ["test", "-f", "/tmp/ok"]}})})})
    cid = pod.containers["app"].id
    probes.mgr.sync(pod.spec, pod.containers, pod.sandbox.ip, time.time())
    await asyncio.sleep(0.6)
    assert probes.mgr.readiness(pod.uid, "app") is False
    assert any(e.message == "Readiness probe failed: " and e.kind is ProbeKind.READINESS for e in probes.events)

    await asyncio.to_thread(runtime.exec, cid, ["touch", "/tmp/ok"])
    await eventually(lambda: probes.mgr.readiness(pod.uid, "app") is True)
    assert pod.uid in probes.changes
    await asyncio.to_thread(runtime.exec, cid, ["rm", "/tmp/ok"])
    await eventually(lambda: probes.mgr.readiness(pod.uid, "app") is False)
    assert probes.mgr.needs_restart(pod.uid, "app") is None  # readiness never restarts


async def test_http_get_probe_against_busybox_httpd(make_pod: Callable[..., Pod], probes: Probes) -> None:
    pod = make_pod("http", {
        "good": (HTTPD, {"ports": [{"name": "http", "containerPort": 8080}],
                         "readinessProbe": fast({"httpGet": {"path": "/healthz", "port": "http"}}),
                         "livenessProbe": fast({"httpGet": {"path": "/healthz", "port": 8080}},
                                               failureThreshold=20)}),
    })
    probes.mgr.sync(pod.spec, pod.containers, pod.sandbox.ip, time.time())
    await eventually(lambda: probes.mgr.readiness(pod.uid, "good") is True)
    probes.events.clear()  # httpd may have refused the very first connections
    await asyncio.sleep(0.5)
    assert probes.mgr.needs_restart(pod.uid, "good") is None and not probes.events

    # The same server, probed on a file it does not have: 404, a failure, a restart request.
    bad = {**pod.spec, "spec": {"containers": [{
        "name": "good", "image": IMAGE, "livenessProbe": fast({"httpGet": {"path": "/missing", "port": 8080}},
                                                              failureThreshold=2)}]}}
    probes.mgr.sync(bad, pod.containers, pod.sandbox.ip, time.time())
    assert probes.mgr.readiness(pod.uid, "good") is None  # that spec has no readiness probe
    await eventually(lambda: probes.mgr.needs_restart(pod.uid, "good") is not None)
    assert probes.mgr.needs_restart(pod.uid, "good") == "Container good failed liveness probe"
    assert [e.message for e in probes.events][:2] == ["Liveness probe failed: HTTP probe failed with statuscode: 404"] * 2


async def test_tcp_socket_probe_open_and_closed_port(make_pod: Callable[..., Pod], probes: Probes) -> None:
    pod = make_pod("tcp", {
        "web": (HTTPD, {"readinessProbe": fast({"tcpSocket": {"port": 8080}}),
                        "livenessProbe": fast({"tcpSocket": {"port": 8081}}, failureThreshold=2)}),
    })
    probes.mgr.sync(pod.spec, pod.containers, pod.sandbox.ip, time.time())
    await eventually(lambda: probes.mgr.readiness(pod.uid, "web") is True
                     and probes.mgr.needs_restart(pod.uid, "web") is not None)
    assert (f"Liveness probe failed: dial tcp {pod.sandbox.ip}:8081: connect: connection refused"
            in {e.message for e in probes.events})


async def test_exec_probe_timeout_is_honoured(make_pod: Callable[..., Pod], probes: Probes) -> None:
    pod = make_pod("slow", {"app": ("sleep 1000", {
        "livenessProbe": fast({"exec": {"command": ["sleep", "5"]}}, timeoutSeconds=1)})})
    t0 = time.monotonic()
    probes.mgr.sync(pod.spec, pod.containers, pod.sandbox.ip, time.time())
    await eventually(lambda: probes.mgr.needs_restart(pod.uid, "app") is not None)
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 5, elapsed
    assert probes.events[0].message == 'Liveness probe failed: command "sleep 5" timed out'
