"""Scheduler throughput: pods scheduled per second (binds included) on 100 and on 1000 nodes.

Data flow, for each node count: start a private etcd and ``minik8s apiserver`` (``tests/cluster.py``)
-> N simulated nodes: ``minik8s kubelet --simulated --count N`` (Ready, allocatable
cpu=32/memory=128Gi/pods=110, so 10,000 small pods fit on 100 nodes; the kubelet renews their
leases and moves bound pods to Running, as it would in a cluster), or with ``--nodes-from api``
bare Node objects with no kubelet -> start ``minik8s scheduler
--no-leader-elect`` as a real process and wait for it to be ready (it binds a probe pod) -> open a
watch on the namespace's pods -> create ``--pods`` pods (100m cpu, 64Mi each) with ``--concurrency``
aiohttp workers -> the rate is pods / (last pod seen bound through the watch - first create). The
scheduler's Scheduled events are on, as in production, so the apiserver also absorbs one Event
create per bind. Also printed: how fast the creates alone went (the upper bound any scheduler
could reach here), the scheduler process's CPU seconds, when the last pod's ``Scheduled`` Event was
seen (a watch on the namespace's Events), the scheduler's own figures read from its ``/metrics``
(attempts by result, pod scheduling SLI p50/p99, mean Filter and Score time per pod), the ratio
rate(1000)/rate(100) and the machine.

Run from the repository root: ``.venv/bin/python bench/bench_scheduler.py [--nodes 100 1000]
[--pods 10000] [--concurrency 32] [--nodes-from kubelet|api]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from typing import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from bench.bench_apiserver import machine  # noqa: E402
from machinery import errors  # noqa: E402
from machinery.client import ApiClient  # noqa: E402
from machinery.metrics import Sample, parse, value  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port  # noqa: E402

NAMESPACE = "bench"
ALLOCATABLE = {"cpu": "32", "memory": "128Gi", "pods": "110"}


@dataclass
class Result:
    nodes: int
    pods: int
    seconds: float
    create_seconds: float
    scheduler_cpu_s: float
    events_seconds: float = 0.0  # first create -> the last Scheduled Event seen
    scheduled_attempts: float = 0.0  # from the scheduler's /metrics, the probe pod included
    other_attempts: float = 0.0  # unschedulable + error
    sli_p50_s: float = 0.0  # scheduler_pod_scheduling_sli_duration_seconds, bucket upper bounds
    sli_p99_s: float = 0.0
    filter_ms: float = 0.0  # mean Filter and Score extension point time per pod
    score_ms: float = 0.0

    @property
    def rate(self) -> float:
        return self.pods / self.seconds


def pod(name: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench"}},
                         "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {
                             "requests": {"cpu": "100m", "memory": "64Mi"}}}]}})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def pool(n: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> None:
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            await call(i)
    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def make_nodes(http: aiohttp.ClientSession, count: int, concurrency: int) -> None:
    headers = {"Content-Type": "application/json"}

    async def one(i: int) -> None:
        name = f"node-{i:04d}"
        body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
        async with http.post("/api/v1/nodes", data=orjson.dumps(body), headers=headers) as r:
            assert r.status == 201, await r.text()
            node = orjson.loads(await r.read())
        node["status"] = {"capacity": ALLOCATABLE, "allocatable": ALLOCATABLE,
                          "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}
        async with http.put(f"/api/v1/nodes/{name}/status", data=orjson.dumps(node), headers=headers) as r:
            assert r.status == 200, await r.text()
    await pool(count, concurrency, one)


async def simulated_nodes(client: ApiClient, api_url: str, count: int) -> ComponentProcess:
    capacity = ",".join(f"{k}={v}" for k, v in ALLOCATABLE.items())
    kubelet = ComponentProcess.start("kubelet", "--simulated", "--server", api_url, "--node-name", "node",
                                     "--count", str(count), "--capacity", capacity, log_level="warning")
    deadline = time.monotonic() + 300
    while True:
        nodes = (await client.list("nodes"))["items"]
        ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in (n.get("status") or {}).get("conditions") or [])]
        if len(ready) >= count:
            return kubelet
        if kubelet.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"simulated kubelet: {len(ready)}/{count} nodes Ready\n{kubelet.logs()[-2000:]}")
        await asyncio.sleep(0.5)


async def wait_bound(client: ApiClient, names: set[str], rv: str, timeout: float) -> float:
    """Watch pods from ``rv`` until every name in ``names`` is seen bound; the time of the last one."""
    left = set(names)
    last = time.perf_counter()
    deadline = time.monotonic() + timeout
    while left:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(left)} pods still unbound after {timeout}s")
        try:
            async with client.watch("pods", namespace=NAMESPACE, resource_version=rv, timeout_seconds=600) as stream:
                async for _etype, obj in stream:
                    rv = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    if name in left and (obj.get("spec") or {}).get("nodeName"):
                        left.discard(name)
                        last = time.perf_counter()
                        if not left:
                            break
        except errors.GoneError:
            # Fell behind the compacted history: the rest is read from a list (times are then late).
            listed = await client.list("pods", namespace=NAMESPACE)
            rv = listed["metadata"]["resourceVersion"]
            for obj in listed["items"]:
                if obj["metadata"]["name"] in left and obj["spec"].get("nodeName"):
                    left.discard(obj["metadata"]["name"])
                    last = time.perf_counter()
        except errors.ServiceUnavailableError as e:
            print(f"  (watch: {e}; retrying)", flush=True)
            await asyncio.sleep(0.5)
    return last


async def wait_events(client: ApiClient, names: set[str], rv: str, timeout: float) -> float:
    """Watch Events from ``rv`` until each pod in ``names`` has its Scheduled Event; the time of the last."""
    left = set(names)
    last = time.perf_counter()
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        try:
            async with client.watch("events", namespace=NAMESPACE, resource_version=rv, timeout_seconds=600) as stream:
                async for _etype, obj in stream:
                    rv = obj["metadata"]["resourceVersion"]
                    if obj.get("reason") == "Scheduled" and (obj.get("involvedObject") or {}).get("name") in left:
                        left.discard(obj["involvedObject"]["name"])
                        last = time.perf_counter()
                        if not left:
                            break
        except (errors.GoneError, errors.ServiceUnavailableError):
            rv = (await client.list("events", namespace=NAMESPACE, limit=1))["metadata"]["resourceVersion"]
    return last


def quantile(samples: dict[str, list[Sample]], name: str, q: float) -> float:
    """The upper bound of the histogram bucket holding quantile ``q`` (0 when empty)."""
    buckets = sorted((float(labels["le"]), n) for labels, n in samples.get(name + "_bucket", ()))
    total = buckets[-1][1] if buckets else 0
    return next((le for le, n in buckets if total and n >= q * total), 0.0)


async def scrape(port: int, r: Result) -> None:
    """The scheduler's own figures, from its /metrics (open: the benchmark's cluster has no credentials)."""
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        m = parse(await resp.text())
    r.scheduled_attempts = value(m, "scheduler_schedule_attempts_total", result="scheduled")
    r.other_attempts = value(m, "scheduler_schedule_attempts_total") - r.scheduled_attempts
    sli = "scheduler_pod_scheduling_sli_duration_seconds"
    r.sli_p50_s, r.sli_p99_s = quantile(m, sli, 0.5), quantile(m, sli, 0.99)
    point = "scheduler_framework_extension_point_duration_seconds"
    for attr, ext in (("filter_ms", "Filter"), ("score_ms", "Score")):
        n = value(m, point + "_count", extension_point=ext)
        setattr(r, attr, 1000 * value(m, point + "_sum", extension_point=ext) / n if n else 0.0)


async def one_run(nodes: int, pods: int, concurrency: int, timeout: float, nodes_from: str) -> Result:
    etcd = Etcd.start()
    try:
        api = ApiServerProcess.start(etcd.url)
    except BaseException:
        etcd.stop()
        raise
    sched: ComponentProcess | None = None
    kubelet: ComponentProcess | None = None
    try:
        connector = aiohttp.TCPConnector(limit=concurrency + 4)
        async with aiohttp.ClientSession(base_url=api.url, connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=120)) as http, \
                ApiClient(api.url, timeout=120) as client:
            await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                               "metadata": {"name": NAMESPACE}})
            t0 = time.perf_counter()
            if nodes_from == "kubelet":
                kubelet = await simulated_nodes(client, api.url, nodes)
            else:
                await make_nodes(http, nodes, concurrency)
            print(f"  {nodes} nodes ({nodes_from}) Ready in {time.perf_counter() - t0:.1f}s", flush=True)
            port = free_port()
            sched = ComponentProcess.start("scheduler", "--server", api.url, "--no-leader-elect",
                                           "--healthz-port", str(port), log_level="warning")
            # Ready = it has synced and binds: one probe pod, not counted.
            rv = (await client.list("pods", namespace=NAMESPACE))["metadata"]["resourceVersion"]
            await client.create("pods", orjson.loads(pod("probe")), namespace=NAMESPACE)
            await wait_bound(client, {"probe"}, rv, 60)
            cpu0 = cpu_seconds(sched.proc.pid)
            rv = (await client.list("pods", namespace=NAMESPACE, limit=1))["metadata"]["resourceVersion"]
            names = {f"pod-{i:05d}" for i in range(pods)}
            watcher = asyncio.create_task(wait_bound(client, names, rv, timeout))
            events = asyncio.create_task(wait_events(client, names, rv, timeout))
            headers = {"Content-Type": "application/json"}

            async def create(i: int) -> None:
                async with http.post(f"/api/v1/namespaces/{NAMESPACE}/pods", data=pod(f"pod-{i:05d}"),
                                     headers=headers) as r:
                    assert r.status == 201, await r.text()
            started = time.perf_counter()
            await pool(pods, concurrency, create)
            created = time.perf_counter() - started
            print(f"  {pods} pods created in {created:.1f}s ({pods / created:.0f}/s)", flush=True)
            last = await watcher
            cpu = cpu_seconds(sched.proc.pid) - cpu0
            result = Result(nodes, pods, last - started, created, cpu, events_seconds=await events - started)
            await scrape(port, result)
            return result
    finally:
        if sched is not None:
            if sched.proc.poll() is not None:
                print(sched.logs()[-3000:])
            sched.stop()
        if kubelet is not None:
            kubelet.stop()
        api.stop()
        etcd.stop()


async def amain(args: argparse.Namespace) -> list[Result]:
    m = machine()
    print("machine: " + "; ".join(f"{k} {v}" for k, v in m.items()), flush=True)
    results: list[Result] = []
    for n in args.nodes:
        print(f"{n} nodes, {args.pods} pods:", flush=True)
        r = await one_run(n, args.pods, args.concurrency, args.timeout, args.nodes_from)
        results.append(r)
        print(f"  scheduled {r.pods} pods in {r.seconds:.1f}s: {r.rate:.1f} pods/s "
              f"(creates alone {r.pods / r.create_seconds:.1f}/s; scheduler CPU {r.scheduler_cpu_s:.1f}s, "
              f"{r.scheduler_cpu_s / r.pods * 1000:.2f} ms/pod)", flush=True)
        print(f"  last Scheduled Event at {r.events_seconds:.1f}s; /metrics: {r.scheduled_attempts:.0f} scheduled, "
              f"{r.other_attempts:.0f} other attempts, SLI p50 <= {r.sli_p50_s:.2f}s p99 <= {r.sli_p99_s:.2f}s, "
              f"Filter {r.filter_ms:.3f} ms, Score {r.score_ms:.3f} ms per pod", flush=True)
    print()
    print("| nodes | pods | seconds | pods scheduled/s | creates/s | scheduler CPU s | scheduler CPU ms/pod |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r.nodes} | {r.pods} | {r.seconds:.1f} | {r.rate:.1f} | {r.pods / r.create_seconds:.1f} | "
              f"{r.scheduler_cpu_s:.1f} | {r.scheduler_cpu_s / r.pods * 1000:.2f} |")
    if len(results) >= 2:
        print(f"\nratio rate({results[-1].nodes})/rate({results[0].nodes}) = {results[-1].rate / results[0].rate:.3f}")
    return results


def measure(argv: list[str] | None = None) -> list[Result]:
    """The benchmark with these command-line flags, one result per node count (``python -m bench``)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[100, 1000])
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--nodes-from", choices=["kubelet", "api"], default="kubelet",
                   help="simulated kubelet nodes (default) or bare Node objects")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent creates (default 32)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the pods to bind")
    return asyncio.run(amain(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    measure(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
