"""Pod start latency of the Docker kubelet, next to a bare ``docker run`` on the same engine.

Data flow: start a private etcd and ``minik8s apiserver`` (the test suite's ``Etcd`` and
``ApiServerProcess``) -> start ``minik8s kubelet --node-name bench-docker-<id>`` on the machine's
Docker engine (its own pod network: a free /24 in 172.31.0.0/16) -> wait for the Node Ready ->
watch the pods of the namespace ``bench`` (one watch for the whole run) -> for each pod, the
latency is from just before its create request (a Pod of ``minik8s/busybox:1`` running
``sleep 3600`` with ``spec.nodeName`` set: NO scheduler runs) to the first watch event with
``status.phase=Running``. The baseline is ``docker run -d minik8s/busybox:1 sleep 3600`` through the
docker CLI, from process start until it returns (``run -d`` returns once the container has
started), on the engine's default bridge.

Both sides are measured at each ``--concurrency`` level C (default 1 and N), each from a clean
engine (the previous phase's pods / containers are removed first), after one warm-up pod and one
warm-up ``docker run`` (not counted): N pods / N ``docker run`` processes with at most C in flight
(C = 1: one at a time, create, wait until Running, next; C = N: all N at once).
A pod is two containers (the sandbox holding the network namespace, then the app container) plus
the apiserver round trips (create, the kubelet's watch, its status write, our watch); a second
baseline, measured the same way, is those two containers by hand (``docker run -d`` of a sandbox on
the pod network, then of the app container with ``--network container:<sandbox>``): the floor under
any kubelet that keeps Kubernetes' sandbox.

Run: ``.venv/bin/python bench/bench_pod_start.py [--pods 20] [--concurrency 1 5 20]``. Everything it made is removed at
the end (pods, containers by label, the pod network, the processes it started, by pid).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import math
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_apiserver import machine  # noqa: E402
from machinery import errors  # noqa: E402
from machinery.client import ApiClient  # noqa: E402
from tests import dockertest  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd  # noqa: E402

IMAGE = "minik8s/busybox:1"
NAMESPACE = "bench"
RUN_ID = uuid.uuid4().hex[:8]
NODE = f"bench-docker-{RUN_ID}"
NETWORK = f"minik8s-bench-{RUN_ID}"
DOCKER_LABEL = f"io.minik8s.bench={RUN_ID}"
NODE_LABEL = f"io.minik8s.node={NODE}"


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (with 20 samples, p99 is the slowest one)."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=120).stdout


def free_subnet() -> str:
    """A free /24 in 172.31.0.0/16, a pool no test uses, so the benchmark runs beside the tests."""
    return dockertest.free_subnet("172.31.0.0/16")


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"nodeName": NODE, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "3600"]}]}}


class RunningWatch:
    """One watch on the namespace: the monotonic time each pod was first seen Running."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.running: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        rv = (await self.client.list("pods", namespace=NAMESPACE))["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        try:
            await self._loop(rv)
        except Exception as e:  # a dead watch must fail the waiting pods, not hang them
            for f in self.waiters.values():
                if not f.done():
                    f.set_exception(e)
            raise

    async def _loop(self, rv: str) -> None:
        while True:
            try:
                async for type_, obj in self.client.watch("pods", namespace=NAMESPACE, resource_version=rv,
                                                          allow_watch_bookmarks=True):
                    rv = obj["metadata"].get("resourceVersion") or rv
                    if type_ == "BOOKMARK":
                        continue
                    name = obj["metadata"]["name"]
                    if (obj.get("status") or {}).get("phase") == "Running" and name not in self.running:
                        t = time.monotonic()
                        self.running[name] = t
                        f = self.waiters.get(name)
                        if f is not None and not f.done():
                            f.set_result(t)
            except errors.GoneError:
                rv = (await self.client.list("pods", namespace=NAMESPACE))["metadata"]["resourceVersion"]

    def wait(self, name: str) -> asyncio.Future[float]:
        f: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if name in self.running:
            f.set_result(self.running[name])
        self.waiters[name] = f
        return f

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def start_pod(client: ApiClient, w: RunningWatch, name: str, timeout: float) -> float:
    done = w.wait(name)
    t0 = time.monotonic()
    await client.create("pods", pod(name), namespace=NAMESPACE)
    return await asyncio.wait_for(done, timeout) - t0


async def at_most(concurrency: int, calls: list[Callable[[], Awaitable[float]]]) -> list[float]:
    """Runs the calls with at most ``concurrency`` in flight; their results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Callable[[], Awaitable[float]]) -> float:
        async with gate:
            return await call()
    return list(await asyncio.gather(*(one(c) for c in calls)))


async def pods_phase(client: ApiClient, w: RunningWatch, prefix: str, n: int, concurrency: int) -> list[float]:
    timeout = 60 if concurrency == 1 else 120
    return await at_most(concurrency, [functools.partial(start_pod, client, w, f"{prefix}-{i}", timeout)
                                       for i in range(n)])


async def docker_run(*flags: str) -> str:
    """``docker run -d`` of the benchmark's container (labelled, ``sleep 3600``) with ``flags``; its id."""
    p = await asyncio.create_subprocess_exec("docker", "run", "-d", "--label", DOCKER_LABEL, *flags, IMAGE,
                                             "sleep", "3600", stdout=asyncio.subprocess.PIPE,
                                             stderr=asyncio.subprocess.PIPE)
    out, err = await p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"docker run failed: {err.decode()}")
    return out.decode().strip()


async def docker_run_once() -> float:
    t0 = time.monotonic()
    await docker_run()
    return time.monotonic() - t0


async def pair_once() -> float:
    """A pod's two containers by hand: ``docker run -d`` of a sandbox on the pod network, then of the
    app container in its network namespace (the floor under any kubelet that keeps Kubernetes' sandbox)."""
    t0 = time.monotonic()
    sandbox = await docker_run("--network", NETWORK)
    await docker_run("--network", f"container:{sandbox}")
    return time.monotonic() - t0


async def docker_phase(n: int, concurrency: int,
                       once: Callable[[], Awaitable[float]] = docker_run_once) -> list[float]:
    """``once`` (one ``docker run``, or a sandbox and its container) n times, at most ``concurrency`` at a time."""
    return await at_most(concurrency, [once] * n)


def remove_docker_containers() -> None:
    ids = docker("ps", "-aq", "--filter", f"label={DOCKER_LABEL}").split()
    if ids:
        docker("rm", "-f", *ids, check=False)


async def clear_pods(client: ApiClient, timeout: float = 90) -> None:
    """Deletes the namespace's pods and waits until the kubelet removed their containers."""
    await client.delete_collection("pods", namespace=NAMESPACE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = (await client.list("pods", namespace=NAMESPACE))["items"]
        ids = await asyncio.to_thread(docker, "ps", "-aq", "--filter", f"label={NODE_LABEL}")
        if not left and not ids.split():
            return
        await asyncio.sleep(0.5)
    print(f"warning: pods/containers still there after {timeout}s; forcing", file=sys.stderr)
    for p in (await client.list("pods", namespace=NAMESPACE))["items"]:
        await client.delete("pods", p["metadata"]["name"], namespace=NAMESPACE, grace_period_seconds=0)
    leftover = docker("ps", "-aq", "--filter", f"label={NODE_LABEL}").split()
    if leftover:
        docker("rm", "-f", *leftover, check=False)


def line(label: str, xs: list[float]) -> str:
    return (f"{label:<34} p50 {pct(xs, 50) * 1000:7.0f} ms   p99 {pct(xs, 99) * 1000:7.0f} ms   "
            f"mean {sum(xs) / len(xs) * 1000:7.0f} ms")


Phases = dict[int, tuple[list[float], list[float], list[float]]]


async def bench(n: int, concurrency: list[int]) -> Phases:
    """Prints and returns, per concurrency level, (pod start seconds, ``docker run`` seconds, seconds
    for a sandbox and an app container by hand)."""
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        raise SystemExit(f"{IMAGE} is missing: run scripts/docker-up and scripts/build-images")
    print("machine:", machine())
    etcd = Etcd.start()
    api = ApiServerProcess.start(etcd.url)
    kubelet: ComponentProcess | None = None
    results: Phases = {}
    try:
        async with ApiClient(api.url, timeout=60) as client:
            await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": NAMESPACE}})
            subnet = free_subnet()
            kubelet = ComponentProcess.start("kubelet", "--server", api.url, "--node-name", NODE,
                                             "--pod-network-name", NETWORK, "--pod-network-subnet", subnet,
                                             "--pod-infra-container-image", IMAGE, log_level="warning")
            deadline = time.monotonic() + 60
            while True:
                if kubelet.proc.poll() is not None:
                    raise SystemExit(f"kubelet died:\n{kubelet.logs()[-3000:]}")
                try:
                    node = await client.get("nodes", NODE)
                    if any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in (node.get("status") or {}).get("conditions") or []):
                        break
                except errors.NotFoundError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"node not Ready after 60s:\n{kubelet.logs()[-3000:]}")
                await asyncio.sleep(0.2)
            print(f"kubelet Ready: node {NODE}, pod network {NETWORK} {subnet}; {n} pods per phase, no scheduler")
            w = RunningWatch(client)
            await w.start()
            # Warm-up (not counted): the first pod and the first docker run of the session.
            await start_pod(client, w, "warmup", 60)
            await clear_pods(client)
            await docker_run_once()
            remove_docker_containers()

            for c in concurrency:
                pods = await pods_phase(client, w, f"c{c}", n, c)
                print(line(f"minik8s pod, {c} at a time", pods), flush=True)
                await clear_pods(client)
                runs = await docker_phase(n, c)
                print(line(f"docker run -d, {c} at a time", runs), flush=True)
                remove_docker_containers()
                pairs = await docker_phase(n, c, pair_once)
                print(line(f"sandbox + container by hand, {c}", pairs), flush=True)
                remove_docker_containers()
                results[c] = (pods, runs, pairs)
            await w.stop()
            await clear_pods(client)
    finally:
        if kubelet is not None:
            kubelet.stop()
        remove_docker_containers()
        ids = docker("ps", "-aq", "--filter", f"label={NODE_LABEL}", check=False).split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        docker("network", "rm", NETWORK, check=False)
        shutil.rmtree(f"/var/lib/minik8s/kubelet/{NODE}", ignore_errors=True)
        api.stop()
        etcd.stop()

    print()
    print("| at a time | minik8s pod p50 | p99 | docker run p50 | p99 | ratio p50 | ratio p99 | two containers p50 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c, (p, d, two) in results.items():
        print(f"| {c} | {pct(p, 50) * 1000:.0f} ms | {pct(p, 99) * 1000:.0f} ms | {pct(d, 50) * 1000:.0f} ms | "
              f"{pct(d, 99) * 1000:.0f} ms | {pct(p, 50) / pct(d, 50):.2f} | {pct(p, 99) / pct(d, 99):.2f} | "
              f"{pct(two, 50) * 1000:.0f} ms |")
    return results


def measure(argv: list[str] | None = None) -> Phases:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--pods", type=int, default=20, help="pods (and docker runs) per phase")
    ap.add_argument("--concurrency", type=int, nargs="+",
                    help="pods (and docker runs) in flight at once, one phase per level (default: 1 and --pods)")
    args = ap.parse_args(argv)
    return asyncio.run(bench(args.pods, args.concurrency or [1, args.pods]))


def main() -> None:
    measure()


if __name__ == "__main__":
    main()
