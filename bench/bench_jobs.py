"""What the Job controller costs over creating the same pods by hand, on simulated nodes.

Data flow: a private etcd, ``minik8s apiserver``, scheduler, controller-manager and one
``minik8s kubelet --simulated --count N`` process (the test suite's process helpers) -> the
baseline: the bench itself creates K bare pods (restartPolicy Never, the simulated kubelet's
``simulated.minik8s.io/exit-after: 0s`` so each finishes as soon as it runs, 32 creates in
flight) and times until every one is Succeeded -> the same K pods as one Job (completions K,
parallelism K: the controller creates them all) -> again with parallelism K/10 (the controller
keeps K/10 running and creates the next as each one finishes). Each Job is timed from its
create until its ``Complete`` condition; the ratio is Job time / baseline time.

Run: ``.venv/bin/python bench/bench_jobs.py [--nodes 100] [--completions 500]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from machinery.client import ApiClient  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd  # noqa: E402

JOBS = ("batch/v1", "jobs")
EXIT_NOW = {"simulated.minik8s.io/exit-after": "0s"}


def pod_spec() -> dict[str, Any]:
    return {"restartPolicy": "Never",
            "containers": [{"name": "work", "image": "busybox", "resources": {"requests": {"cpu": "10m"}}}]}


async def succeeded(client: ApiClient, ns: str, selector: str) -> int:
    pods = (await client.list("pods", namespace=ns, label_selector=selector))["items"]
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")


async def baseline(client: ApiClient, ns: str, count: int) -> float:
    started = time.monotonic()
    gate = asyncio.Semaphore(32)

    async def create(i: int) -> None:
        async with gate:
            await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": f"bare-{i}", "labels": {"bench": "bare"}, "annotations": EXIT_NOW}, "spec": pod_spec()},
                namespace=ns)

    await asyncio.gather(*(create(i) for i in range(count)))
    while await succeeded(client, ns, "bench=bare") < count:
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def job(client: ApiClient, ns: str, name: str, count: int, parallelism: int) -> float:
    started = time.monotonic()
    await client.create(JOBS, {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "completions": count, "parallelism": parallelism, "backoffLimit": 0,
        "template": {"metadata": {"annotations": EXIT_NOW}, "spec": pod_spec()}}}, namespace=ns)
    while True:
        status = (await client.get(JOBS, name, namespace=ns)).get("status") or {}
        if any(c.get("type") == "Complete" and c.get("status") == "True" for c in status.get("conditions") or []):
            return time.monotonic() - started
        if any(c.get("type") == "Failed" and c.get("status") == "True" for c in status.get("conditions") or []):
            raise SystemExit(f"job {name} failed: {status}")
        await asyncio.sleep(0.2)


async def bench(nodes: int, count: int) -> dict[str, float]:
    """Prints the figures and returns them: completions, baseline_s, and per Job (wide, narrow) its
    seconds until Complete and its parallelism."""
    out: dict[str, float] = {"nodes": nodes, "completions": count}
    etcd = Etcd.start()
    api = ApiServerProcess.start(etcd.url)
    procs: list[ComponentProcess] = []
    try:
        procs.append(ComponentProcess.start("kubelet", "--simulated", "--server", api.url, "--node-name", "bench",
                                            "--count", str(nodes), "--capacity", "cpu=64,memory=256Gi,pods=500",
                                            log_level="warning"))
        procs.append(ComponentProcess.start("scheduler", "--server", api.url, "--no-leader-elect",
                                            log_level="warning"))
        procs.append(ComponentProcess.start("controller-manager", "--server", api.url, "--no-leader-elect",
                                            log_level="warning"))
        async with ApiClient(api.url, timeout=120) as client:
            while len((await client.list("nodes"))["items"]) < nodes:
                await asyncio.sleep(0.5)
            await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
            await asyncio.sleep(2)  # the namespace's default ServiceAccount; the controllers' first lists
            base = await baseline(client, "bench", count)
            out["baseline_s"] = base
            print(f"baseline: {count} bare pods created by the client -> all Succeeded in {base:.1f}s "
                  f"({count / base:.0f} pods/s)")
            for name, parallelism in (("wide", count), ("narrow", max(1, count // 10))):
                took = await job(client, "bench", name, count, parallelism)
                out[f"{name}_s"], out[f"{name}_parallelism"] = took, parallelism
                print(f"Job completions={count} parallelism={parallelism}: Complete in {took:.1f}s "
                      f"({count / took:.0f} pods/s) = {took / base:.2f} x baseline")
        print(f"nodes: {nodes} simulated; machine: {platform.machine()}, {platform.python_implementation()} "
              f"{platform.python_version()}, {len(os.sched_getaffinity(0))} usable cores")
    finally:
        for p in procs:
            p.stop()
        api.stop()
        etcd.stop()
    return out


def measure(argv: list[str] | None = None) -> dict[str, float]:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=100)
    p.add_argument("--completions", type=int, default=500)
    args = p.parse_args(argv)
    return asyncio.run(bench(args.nodes, args.completions))


def main() -> None:
    measure()


if __name__ == "__main__":
    main()
