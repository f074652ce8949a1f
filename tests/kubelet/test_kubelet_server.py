"""kubelet.server (the kubelet's HTTP API for logs) against real busybox containers.

The containers are made the way the kubelet makes them (a sandbox, then ``create_container``
with the pod's labels and restart count); the server resolves them by those labels alone
(``label_resolver``). It listens on 127.0.0.1 on a free port; the client is aiohttp. The
runtime/network fixtures (and their clean-up by label) come from test_runtime.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import AsyncIterator, Callable, Iterator

import aiohttp
import pytest

from kubelet.runtime import DockerRuntime, NetworkInfo
from kubelet.credential import fixed_token
from kubelet.server import LogsUnavailable, label_resolver, start_kubelet_server
from machinery.kubeletauth import authorization_header
from tests.kubelet.test_runtime import RUN_ID, RUN_LABELS, Pod, run, runtime, wait_exited  # noqa: F401
from tests.dockertest import make_test_network

pytestmark = pytest.mark.docker

TOKEN = "test-kubelet-token"
AUTH = authorization_header(TOKEN)  # what the API server presents


@pytest.fixture(scope="module")
def network(runtime: DockerRuntime) -> Iterator[NetworkInfo]:  # noqa: F811
    info = make_test_network(runtime, f"minik8s-test-{RUN_ID}-logs", RUN_LABELS)
    yield info
    runtime.remove_network(info.name)


@pytest.fixture
def pods(runtime: DockerRuntime, network: NetworkInfo) -> Iterator[Callable[[str], Pod]]:  # noqa: F811
    made: list[Pod] = []

    def make(name: str) -> Pod:
        uid = str(uuid.uuid4())
        ns = "logs-" + uid[:6]
        sandbox = runtime.run_sandbox(pod_uid=uid, pod_name=name, namespace=ns, node="node-logs",
                                      network=network.name, labels=RUN_LABELS)
        pod = Pod(uid=uid, name=name, namespace=ns, node="node-logs", sandbox=sandbox)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        for c in runtime.list({"io.minik8s.pod.uid": pod.uid}):
            runtime.remove(c.id, force=True)


@pytest.fixture
async def kubelet_url(runtime: DockerRuntime) -> AsyncIterator[str]:  # noqa: F811
    runner, port = await start_kubelet_server(runtime, host="127.0.0.1", port=0, run_blocking=asyncio.to_thread,
                                              authorize=fixed_token(TOKEN),
                                              resolve=label_resolver(runtime, run_blocking=asyncio.to_thread))
    assert port > 0
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def _get(url: str, **params: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20), headers=AUTH) as s:
        async with s.get(url, params=params) as r:
            return r.status, await r.text()


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line]


async def test_healthz(kubelet_url: str) -> None:
    assert await _get(f"{kubelet_url}/healthz") == (200, "ok")


async def test_full_tail_timestamps_limit_and_since(runtime: DockerRuntime, pods: Callable[[str], Pod],  # noqa: F811
                                                    kubelet_url: str) -> None:
    pod = pods("printer")
    cid = run(runtime, pod, "main", "for i in 1 2 3 4 5; do echo line-$i; done; sleep 0.3; echo to-stderr >&2")
    await asyncio.to_thread(wait_exited, runtime, cid)
    url = f"{kubelet_url}/containerLogs/{pod.namespace}/{pod.name}/main"

    status, text = await _get(url)
    assert status == 200
    assert _lines(text) == ["line-1", "line-2", "line-3", "line-4", "line-5", "to-stderr"]

    status, text = await _get(url, tailLines="2")
    assert status == 200 and _lines(text) == ["line-5", "to-stderr"]

    status, text = await _get(url, timestamps="true", tailLines="1")
    assert status == 200
    stamp, line = text.strip().split(" ", 1)
    assert line == "to-stderr"
    assert stamp.endswith("Z") and "T" in stamp
    when = datetime.fromisoformat(stamp[:26] + "+00:00")
    assert abs((datetime.now(timezone.utc) - when).total_seconds()) < 120

    status, text = await _get(url, limitBytes="8")
    assert (status, text) == (200, "line-1\nl")

    # sinceTime in the future: nothing; sinceSeconds covering the run: everything.
    future = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await _get(url, sinceTime=future) == (200, "")
    status, text = await _get(url, sinceSeconds="600")
    assert status == 200 and len(_lines(text)) == 6

    # Bad options: 400 with a message.
    status, text = await _get(url, tailLines="-1")
    assert status == 400 and "tailLines" in text
    status, text = await _get(url, sinceSeconds="5", sinceTime=future)
    assert status == 400 and "at most one" in text


async def test_follow_receives_lines_printed_after_the_request(runtime: DockerRuntime,  # noqa: F811
                                                              pods: Callable[[str], Pod], kubelet_url: str) -> None:
    pod = pods("ticker")
    # Prints "early" at once, then waits for a trigger file before printing more and exiting.
    run(runtime, pod, "main",
        "echo early; while [ ! -f /tmp/go ]; do sleep 0.1; done; for i in 1 2 3; do echo late-$i; sleep 0.2; done")
    url = f"{kubelet_url}/containerLogs/{pod.namespace}/{pod.name}/main"
    got = b""
    t0 = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=AUTH) as s:
        async with s.get(url, params={"follow": "true"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            while b"early" not in got:
                got += await asyncio.wait_for(r.content.readany(), 10)
            # Only now does the container print the rest.
            cid = pod.containers[0]
            await asyncio.to_thread(runtime.exec, cid, ["touch", "/tmp/go"])
            async for chunk in r.content.iter_any():  # ends when the container exits
                got += chunk
    assert _lines(got.decode()) == ["early", "late-1", "late-2", "late-3"]
    assert time.monotonic() - t0 < 20


async def test_follow_stops_when_the_client_goes_away(runtime: DockerRuntime,  # noqa: F811
                                                     pods: Callable[[str], Pod], kubelet_url: str) -> None:
    pod = pods("quiet")
    run(runtime, pod, "main", "echo hello; sleep 3600")
    url = f"{kubelet_url}/containerLogs/{pod.namespace}/{pod.name}/main"
    before = {t.name for t in threading.enumerate() if t.name.startswith("follow-logs-")}
    async with aiohttp.ClientSession(headers=AUTH) as s:
        async with s.get(url, params={"follow": "true"}) as r:
            assert r.status == 200
            assert b"hello" in await asyncio.wait_for(r.content.readany(), 10)
            followers = {t.name for t in threading.enumerate() if t.name.startswith("follow-logs-")} - before
            assert followers, "a follower thread runs while the client reads"
    # The client is gone: the follower thread ends although the container prints nothing more.
    deadline = time.monotonic() + 10
    while {t.name for t in threading.enumerate() if t.name.startswith("follow-logs-")} - before:
        assert time.monotonic() < deadline, "the follower thread outlived its client"
        await asyncio.sleep(0.05)


async def test_previous_returns_the_earlier_container(runtime: DockerRuntime, pods: Callable[[str], Pod],  # noqa: F811
                                                     kubelet_url: str) -> None:
    pod = pods("restarter")
    first = run(runtime, pod, "app", "echo first-run; exit 1")
    await asyncio.to_thread(wait_exited, runtime, first)
    url = f"{kubelet_url}/containerLogs/{pod.namespace}/{pod.name}/app"
    status, text = await _get(url, previous="true")
    assert status == 400 and text.strip() == f'previous terminated container "app" in pod "{pod.name}" not found'

    second = run(runtime, pod, "app", "echo second-run; sleep 3600", restart_count=1)
    assert second != first
    deadline = time.monotonic() + 10
    while True:
        status, text = await _get(url)
        if "second-run" in text or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert (status, _lines(text)) == (200, ["second-run"])
    assert (await _get(url, previous="true")) == (200, "first-run\n")


async def test_unknown_pod_and_container_are_404(runtime: DockerRuntime, pods: Callable[[str], Pod],  # noqa: F811
                                                kubelet_url: str) -> None:
    status, text = await _get(f"{kubelet_url}/containerLogs/nowhere/nobody/main")
    assert status == 404 and "nobody" in text

    pod = pods("partial")  # a sandbox, but the container was never created
    status, text = await _get(f"{kubelet_url}/containerLogs/{pod.namespace}/{pod.name}/main")
    assert status == 400
    assert text.strip() == f'container "main" in pod "{pod.name}" is waiting to start: ContainerCreating'


async def test_resolver_errors_carry_their_status(runtime: DockerRuntime) -> None:  # noqa: F811
    async def resolve(ns: str, pod: str, container: str) -> tuple[str, str | None]:
        raise LogsUnavailable(f"pod {pod!r} does not exist", 404)

    runner, port = await start_kubelet_server(runtime, host="127.0.0.1", port=0, resolve=resolve,
                                              run_blocking=asyncio.to_thread, authorize=fixed_token(TOKEN))
    try:
        assert await _get(f"http://127.0.0.1:{port}/containerLogs/a/b/c") == (404, "pod 'b' does not exist\n")
    finally:
        await runner.cleanup()
