"""The real ``kubectl logs`` through the apiserver's pods/log proxy to the kubelet's HTTP API.

No kubelet agent runs: the test plays its part. It starts ``kubelet.server`` (in a thread with its
own event loop, resolving containers by label, accepting the API server's credential from the
Secret kube-system/minik8s-kubelet-client), registers a Node whose InternalIP is 127.0.0.1
and whose ``status.daemonEndpoints.kubeletEndpoint.Port`` is that server's port, creates Pods
bound to that node and runs their containers itself through the runtime with the pod's labels
(a sandbox on the test network, then ``create_container``), as the kubelet would.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import httpx
import pytest

from kubelet.runtime import ContainerSpec, DockerRuntime, NetworkInfo
from kubelet.credential import fixed_token
from kubelet.server import label_resolver, start_kubelet_server
from tests.e2e.conftest import Kubectl
from tests.dockertest import make_test_network
from tests.kubelet.test_credential import api_server_token
from tests.kubelet.test_runtime import IMAGE, RUN_ID, RUN_LABELS, runtime, wait_exited  # noqa: F401

pytestmark = [pytest.mark.docker, pytest.mark.e2e]


class KubeletServerThread:
    """kubelet.server on 127.0.0.1 in a thread of its own (the tests themselves are blocking)."""

    def __init__(self, rt: DockerRuntime, token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self._runner: Any = None

        async def start() -> None:
            self._runner, self.port = await start_kubelet_server(
                rt, host="127.0.0.1", port=0, run_blocking=asyncio.to_thread, authorize=fixed_token(token),
                resolve=label_resolver(rt, run_blocking=asyncio.to_thread))
            ready.set()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, name="kubelet-server", daemon=True)
        self.thread.start()
        assert ready.wait(10), "the kubelet server did not start"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def network(runtime: DockerRuntime) -> Iterator[NetworkInfo]:  # noqa: F811
    info = make_test_network(runtime, f"minik8s-test-{RUN_ID}-kubectl-logs", RUN_LABELS)
    yield info
    runtime.remove_network(info.name)


@pytest.fixture(scope="module")
def kubelet_server(runtime: DockerRuntime, http_module: httpx.Client) -> Iterator[KubeletServerThread]:  # noqa: F811
    s = KubeletServerThread(runtime, api_server_token(http_module))
    yield s
    s.stop()


def _node(name: str, port: int | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "test"}],
    }
    if port is not None:
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": status}


def _register_node(http: httpx.Client, name: str, port: int | None) -> None:
    body = _node(name, port)
    r = http.post("/api/v1/nodes", json=body)
    assert r.status_code == 201, r.text
    current = r.json()
    current["status"] = body["status"]
    r = http.put(f"/api/v1/nodes/{name}/status", json=current)
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def node(http_module: httpx.Client, kubelet_server: KubeletServerThread) -> Iterator[str]:
    name = f"logs-node-{uuid.uuid4().hex[:8]}"
    _register_node(http_module, name, kubelet_server.port)
    yield name
    http_module.delete(f"/api/v1/nodes/{name}")


@pytest.fixture(scope="module")
def http_module(apiserver: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apiserver.url, timeout=30) as c:
        yield c


@dataclass
class RunningPod:
    name: str
    uid: str
    namespace: str
    sandbox_id: str
    node: str


@pytest.fixture
def make_pod(http: httpx.Client, namespace: str, runtime: DockerRuntime,  # noqa: F811
             network: NetworkInfo, node: str) -> Iterator[Callable[..., RunningPod]]:  # noqa: F811
    made: list[RunningPod] = []

    def make(name: str, containers: list[str], *, node_name: str | None = None, sandbox: bool = True) -> RunningPod:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": [{"name": c, "image": IMAGE} for c in containers]}}
        if node_name != "":
            body["spec"]["nodeName"] = node_name or node  # type: ignore[index]
        r = http.post(f"/api/v1/namespaces/{namespace}/pods", json=body)
        assert r.status_code == 201, r.text
        uid = r.json()["metadata"]["uid"]
        sid = ""
        if sandbox:
            sid = runtime.run_sandbox(pod_uid=uid, pod_name=name, namespace=namespace, node=node,
                                      network=network.name, labels=RUN_LABELS).id
        pod = RunningPod(name=name, uid=uid, namespace=namespace, sandbox_id=sid, node=node)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        for c in runtime.list({"io.minik8s.pod.uid": pod.uid}):
            runtime.remove(c.id, force=True)


def start_container(rt: DockerRuntime, pod: RunningPod, name: str, script: str, *, restart_count: int = 0) -> str:
    cid = rt.create_container(ContainerSpec(
        pod_uid=pod.uid, pod_name=pod.name, namespace=pod.namespace, node=pod.node, name=name, image=IMAGE,
        sandbox_id=pod.sandbox_id, command=["sh", "-c", script], restart_count=restart_count, labels=RUN_LABELS))
    rt.start(cid)
    return cid


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


def test_kubectl_logs_tail_timestamps_since_and_containers(
        kubectl: Kubectl, runtime: DockerRuntime, make_pod: Callable[..., RunningPod],  # noqa: F811
        namespace: str) -> None:
    pod = make_pod("printer", ["main"])
    cid = start_container(runtime, pod, "main", "for i in 1 2 3 4; do echo hello-$i; done")
    wait_exited(runtime, cid)

    assert _lines(kubectl.ok("logs", "-n", namespace, "printer")) == ["hello-1", "hello-2", "hello-3", "hello-4"]
    assert _lines(kubectl.ok("logs", "-n", namespace, "printer", "-c", "main", "--tail=2")) == ["hello-3", "hello-4"]
    assert _lines(kubectl.ok("logs", "-n", namespace, "printer", "--since=1h")) == [
        "hello-1", "hello-2", "hello-3", "hello-4"]
    assert _lines(kubectl.ok("logs", "-n", namespace, "printer", "--limit-bytes=9")) == ["hello-1", "h"]
    stamped = _lines(kubectl.ok("logs", "-n", namespace, "printer", "--timestamps", "--tail=1"))
    assert len(stamped) == 1
    stamp, text = stamped[0].split(" ", 1)
    assert text == "hello-4" and stamp.endswith("Z") and stamp[:2] == "20"

    # Two containers: kubectl picks the first by default; -c picks the other.
    two = make_pod("two", ["alpha", "beta"])
    wait_exited(runtime, start_container(runtime, two, "alpha", "echo from-alpha"))
    wait_exited(runtime, start_container(runtime, two, "beta", "echo from-beta"))
    assert _lines(kubectl.ok("logs", "-n", namespace, "two")) == ["from-alpha"]
    assert _lines(kubectl.ok("logs", "-n", namespace, "two", "-c", "beta")) == ["from-beta"]


def test_kubectl_logs_previous(kubectl: Kubectl, runtime: DockerRuntime,  # noqa: F811
                               make_pod: Callable[..., RunningPod], namespace: str) -> None:
    pod = make_pod("crasher", ["app"])
    wait_exited(runtime, start_container(runtime, pod, "app", "echo attempt-0; exit 3"))
    p = kubectl("logs", "-n", namespace, "crasher", "--previous")
    assert p.returncode != 0
    assert 'previous terminated container "app" in pod "crasher" not found' in p.stderr
    start_container(runtime, pod, "app", "echo attempt-1; sleep 3600", restart_count=1)
    deadline = time.monotonic() + 10
    while "attempt-1" not in (out := kubectl.ok("logs", "-n", namespace, "crasher")):
        assert time.monotonic() < deadline, out
        time.sleep(0.1)
    assert _lines(out) == ["attempt-1"]
    assert _lines(kubectl.ok("logs", "-n", namespace, "crasher", "-p")) == ["attempt-0"]


def test_kubectl_logs_follow(kubectl: Kubectl, runtime: DockerRuntime,  # noqa: F811
                             make_pod: Callable[..., RunningPod], namespace: str) -> None:
    pod = make_pod("ticker", ["main"])
    cid = start_container(runtime, pod, "main",
                          "echo early; while [ ! -f /tmp/go ]; do sleep 0.1; done; "
                          "for i in 1 2 3; do echo late-$i; sleep 0.2; done")
    proc = kubectl.popen("logs", "-n", namespace, "ticker", "-f")
    try:
        assert proc.stdout is not None
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        deadline = time.monotonic() + 20
        while "early\n" not in got:
            assert time.monotonic() < deadline and proc.poll() is None, (got, proc.poll())
            time.sleep(0.05)
        assert not any(line.startswith("late") for line in got)
        # The rest is printed only now, while kubectl is following.
        runtime.exec(cid, ["touch", "/tmp/go"])
        # The stream ends when the container exits, and kubectl with it.
        assert proc.wait(timeout=20) == 0, proc.stderr.read() if proc.stderr else ""
        reader.join(5)
        assert [line.strip() for line in got] == ["early", "late-1", "late-2", "late-3"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_kubectl_logs_errors(kubectl: Kubectl, http: httpx.Client, runtime: DockerRuntime,  # noqa: F811
                             make_pod: Callable[..., RunningPod], namespace: str) -> None:
    # Pending, not scheduled.
    make_pod("unscheduled", ["main"], node_name="", sandbox=False)
    p = kubectl("logs", "-n", namespace, "unscheduled")
    assert p.returncode != 0 and "BadRequest" in p.stderr and "not scheduled" in p.stderr, p.stderr

    # Scheduled, sandbox up, but the container never ran.
    make_pod("creating", ["main"])
    p = kubectl("logs", "-n", namespace, "creating")
    assert p.returncode != 0
    assert 'container "main" in pod "creating" is waiting to start: ContainerCreating' in p.stderr, p.stderr

    # A container name that the pod does not have.
    make_pod("named", ["main", "side"], sandbox=False)
    p = kubectl("logs", "-n", namespace, "named", "-c", "nope")
    assert p.returncode != 0 and "container nope is not valid for pod named" in p.stderr, p.stderr
    # Several containers and none named (kubectl would default; the raw API answers like Kubernetes).
    r = http.get(f"/api/v1/namespaces/{namespace}/pods/named/log")
    assert r.status_code == 400
    assert r.json()["message"] == "a container name must be specified for pod named, choose one of: [main side]"

    # Option validation.
    r = http.get(f"/api/v1/namespaces/{namespace}/pods/named/log", params={"container": "main", "tailLines": "x"})
    assert r.status_code == 400 and "tailLines" in r.json()["message"]

    # A node that publishes no kubelet endpoint.
    bare = f"logs-bare-{uuid.uuid4().hex[:8]}"
    _register_node(http, bare, None)
    # A node whose kubelet does not answer (a port nothing listens on).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    dead = f"logs-dead-{uuid.uuid4().hex[:8]}"
    _register_node(http, dead, dead_port)
    try:
        make_pod("on-bare", ["main"], node_name=bare, sandbox=False)
        p = kubectl("logs", "-n", namespace, "on-bare")
        assert p.returncode != 0 and "ServiceUnavailable" in p.stderr and "kubelet" in p.stderr, p.stderr
        make_pod("on-dead", ["main"], node_name=dead, sandbox=False)
        p = kubectl("logs", "-n", namespace, "on-dead")
        assert p.returncode != 0, p.stderr
        assert f"the kubelet on node {dead} is not reachable" in p.stderr, p.stderr
        r = http.get(f"/api/v1/namespaces/{namespace}/pods/on-dead/log")
        assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
    finally:
        http.delete(f"/api/v1/nodes/{bare}")
        http.delete(f"/api/v1/nodes/{dead}")


def _followers() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("follow-logs-")}


def test_killing_kubectl_logs_f_stops_the_follow_on_the_kubelet(
        kubectl: Kubectl, runtime: DockerRuntime, make_pod: Callable[..., RunningPod],  # noqa: F811
        namespace: str) -> None:
    pod = make_pod("quiet", ["main"])
    start_container(runtime, pod, "main", "echo only-line; sleep 3600")
    before = _followers()
    proc = kubectl.popen("logs", "-n", namespace, "quiet", "-f")
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "only-line\n"
        assert _followers() - before, "the kubelet follows while kubectl reads"
    finally:
        proc.kill()
        proc.wait(5)
    # kubectl is gone: the apiserver drops its kubelet connection and the kubelet stops following
    # although the container prints nothing more.
    deadline = time.monotonic() + 15
    while _followers() - before:
        assert time.monotonic() < deadline, "the kubelet still follows the logs for a client that left"
        time.sleep(0.1)
