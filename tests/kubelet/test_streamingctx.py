"""kubelet.streamingctx against real busybox containers: which Docker container a pod's container is.

The containers are made the way the kubelet makes them (a sandbox, then ``create_container`` with
the pod's labels and restart count, fixtures of test_runtime); the pod objects live in a dict that
stands for the kubelet's pod informer. Every engine call goes through a real ``BlockingPool``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from kubelet.blocking import BlockingPool
from kubelet.podsync import LABEL_INIT
from kubelet.runtime import DockerRuntime
from kubelet.server import LogsUnavailable
from kubelet.streaming.context import StreamError
from kubelet.streamingctx import KubeletStreamingContext
from tests.kubelet.test_runtime import (RUN_LABELS, Pod, make_pod, network, run, runtime,  # noqa: F401
                                        spec, wait_exited)

pytestmark = pytest.mark.docker

Obj = dict[str, Any]


def pod_object(pod: Pod, *, status: Obj | None = None) -> Obj:
    return {"metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
            "spec": {"initContainers": [{"name": "init"}],
                     "containers": [{"name": "app", "stdin": True, "tty": True}, {"name": "done"},
                                    {"name": "pending"}],
                     "ephemeralContainers": [{"name": "debugger", "targetContainerName": "app"}]},
            "status": status or {}}


class Harness:
    def __init__(self, runtime: DockerRuntime, pool: BlockingPool) -> None:  # noqa: F811
        self.pods: dict[str, Obj] = {}
        self.ctx = KubeletStreamingContext(runtime, pods=self.pods, node_name="node-a", run_blocking=pool)

    def add(self, obj: Obj) -> None:
        meta = obj["metadata"]
        self.pods[f"{meta['namespace']}/{meta['name']}"] = obj


@pytest.fixture
async def h(runtime: DockerRuntime) -> AsyncIterator[Harness]:  # noqa: F811
    pool = BlockingPool(4, name="h5-test-pool")
    yield Harness(runtime, pool)
    pool.shutdown()


@pytest.fixture
def full_pod(runtime: DockerRuntime, make_pod: Callable[..., Pod]) -> dict[str, Any]:  # noqa: F811
    """init (ran), app (restarted once: instance 0 exited, instance 1 running), done (exited),
    debugger (an ephemeral container, running); pending never made."""
    pod = make_pod("full")
    init = dataclasses.replace(spec(pod, "init", command=["true"]), labels={**RUN_LABELS, LABEL_INIT: "true"})
    ids = {"init": runtime.create_container(init),
           "app0": run(runtime, pod, "app", "echo first; exit 1"),
           "done": run(runtime, pod, "done", "exit 0")}
    runtime.start(ids["init"])
    for key in ("init", "app0", "done"):
        wait_exited(runtime, ids[key])
    ids["app1"] = run(runtime, pod, "app", "echo second; sleep 3600", restart_count=1)
    ids["debugger"] = run(runtime, pod, "debugger", "sleep 3600")
    return {"pod": pod, "ids": ids}


async def test_container_is_the_running_current_instance(h: Harness, full_pod: dict[str, Any]) -> None:
    pod, ids = full_pod["pod"], full_pod["ids"]
    h.add(pod_object(pod))
    app = await h.ctx.container(pod.namespace, pod.name, "app")
    assert (app.id, app.name, app.pod_uid, app.stdin, app.tty) == (ids["app1"], "app", pod.uid, True, True)
    debugger = await h.ctx.container(pod.namespace, pod.name, "debugger")  # an ephemeral container
    assert (debugger.id, debugger.stdin, debugger.tty) == (ids["debugger"], False, False)
    assert await h.ctx.resolve_logs(pod.namespace, pod.name, "app") == (ids["app1"], ids["app0"])
    assert await h.ctx.resolve_logs(pod.namespace, pod.name, "init") == (ids["init"], None)


@pytest.mark.parametrize(("container", "status", "code", "message"), [
    ("done", None, 400, 'container "done" in pod "full" is not running'),
    ("init", None, 400, 'container "init" in pod "full" is not running'),
    ("pending", None, 400, 'container "pending" in pod "full" is waiting to start: ContainerCreating'),
    ("pending", {"containerStatuses": [{"name": "pending", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]},
     400, 'container "pending" in pod "full" is waiting to start: ImagePullBackOff'),
    ("nope", None, 404, "container nope is not valid for pod full"),
])
async def test_container_errors(h: Harness, full_pod: dict[str, Any], container: str, status: Obj | None,
                                code: int, message: str) -> None:
    pod = full_pod["pod"]
    h.add(pod_object(pod, status=status))
    with pytest.raises(StreamError) as e:
        await h.ctx.container(pod.namespace, pod.name, container)
    assert (e.value.status, e.value.message) == (code, message)


async def test_unknown_pod_is_404_for_exec_port_forward_and_logs(h: Harness) -> None:
    for call in (h.ctx.container("ns", "ghost", "app"), h.ctx.sandbox("ns", "ghost")):
        with pytest.raises(StreamError) as e:
            await call
        assert (e.value.status, e.value.message) == (404, 'pod "ghost" in namespace "ns" is not running on node node-a')
    with pytest.raises(LogsUnavailable) as le:
        await h.ctx.resolve_logs("ns", "ghost", "app")
    assert le.value.status == 404


async def test_sandbox_is_the_pods_network_namespace(h: Harness, runtime: DockerRuntime,  # noqa: F811
                                                     make_pod: Callable[..., Pod]) -> None:  # noqa: F811
    pod = make_pod("netns")
    h.add(pod_object(pod))
    target = await h.ctx.sandbox(pod.namespace, pod.name)
    assert (target.namespace, target.name, target.uid) == (pod.namespace, pod.name, pod.uid)
    assert target.sandbox_id == pod.sandbox.id and target.pod_ip == pod.sandbox.ip
    assert target.sandbox_pid is not None and target.sandbox_pid == runtime.inspect(pod.sandbox.id).pid
    # The pid is the sandbox's process as this host sees it: its network namespace is the pod's.
    proc = Path(f"/proc/{target.sandbox_pid}")
    assert proc.exists() and (proc / "ns" / "net").exists()
    assert b"sleep" in (proc / "cmdline").read_bytes()

    await asyncio.to_thread(runtime.stop, pod.sandbox.id, timeout=0)
    with pytest.raises(StreamError) as e:
        await h.ctx.sandbox(pod.namespace, pod.name)
    assert (e.value.status, e.value.message) == (400, 'pod "netns" in namespace "default" has no running sandbox')


async def test_run_blocking_is_the_kubelets_pool(h: Harness) -> None:
    name = await h.ctx.run_blocking(lambda: threading.current_thread().name)
    assert name.startswith("h5-test-pool")
