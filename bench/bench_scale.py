"""Scale: one API server holding 1000 simulated nodes and 30,000 pods, read back by kubectl and an informer.

Data flow: start a private etcd and ``minik8s apiserver`` (``tests/cluster.py``) -> ``--nodes``
simulated nodes in one ``minik8s kubelet --simulated`` process (``bench_scheduler.simulated_nodes``:
Ready, renewing their Leases) -> create ``--pods`` pods spread over ``--namespaces`` namespaces with
``spec.nodeName`` already set (no scheduler: bench_scheduler measures scheduling), ``--concurrency``
aiohttp workers -> the simulated kubelet admits them and writes each one's status (Running) -> an
informer counts the Running pods until all are or ``--timeout`` passes -> then, with everything
held, three timings each (the median is reported):
- the API server's resident memory (``VmRSS`` and its peak ``VmHWM`` from /proc) against the pods'
  own bytes as etcd stores them (the data it holds, measured by the raw range below);
- ``kubectl get pods -A`` (the real kubectl: a chunked list, 500 per page, in Table form, printed
  to /dev/null) against one raw etcd range of every pod key (``EtcdStorage.list``: no decoding);
- a full relist by ``machinery.informer.Informer`` (a fresh one each time: one LIST of every
  pod across namespaces, decoded into its cache) against the same raw range.

Targets (issue 15): the API server holds 1000 nodes and 30,000 pods in at most 2 GiB, ``kubectl get
pods -A`` answers in under 5 s, an informer relists 30,000 pods in under 10 s.

Run from the repository root: ``.venv/bin/python bench/bench_scale.py [--nodes 1000] [--pods 30000]
[--namespaces 10] [--concurrency 32]``. Everything it started is stopped by pid.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402

from apiserver.storage.etcd import EtcdStorage  # noqa: E402
from bench.bench_apiserver import machine  # noqa: E402
from bench.bench_scheduler import pool, simulated_nodes  # noqa: E402
from bench.pyspy import Profiles  # noqa: E402
from machinery.client import ApiClient  # noqa: E402
from machinery import metrics  # noqa: E402
from machinery.informer import Informer  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd  # noqa: E402

MIB = 1048576
POD_PREFIX = b"/registry/core/pods/"
TARGETS = {"rss_mib": 2048.0, "kubectl_s": 5.0, "relist_s": 10.0}
FULL = (1000, 30000)  # nodes, pods: the scale the targets are stated for


@dataclass
class Result:
    nodes: int
    pods: int
    running: int  # pods the simulated kubelet reported Running before the timings
    create_s: float
    running_s: float  # first create -> the last pod seen Running
    rss_mib: float
    peak_mib: float
    etcd_rss_mib: float
    stored_mib: float  # the pods' values as etcd holds them
    raw_range_s: float  # median of the raw etcd range of every pod key
    kubectl_s: float  # median of ``kubectl get pods -A``
    kubectl_lines: int
    relist_s: float  # median of a fresh informer's relist
    relist_items: int

    @property
    def full_scale(self) -> bool:
        return (self.nodes, self.pods) >= FULL


def proc_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def kubectl_binary() -> str:
    found = shutil.which("kubectl") or str(ROOT / ".venv" / "bin" / "kubectl")
    if not Path(found).exists():
        raise SystemExit("no kubectl on PATH or in .venv/bin (scripts/test installs one)")
    return found


def pod(name: str, namespace: str, node: str) -> bytes:
    return orjson.dumps({"apiVersion": "v1", "kind": "Pod",
                         "metadata": {"name": name, "namespace": namespace, "labels": {"app": "scale"}},
                         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "resources": {
                             "requests": {"cpu": "10m", "memory": "16Mi"}}}]}})


async def wait_running(client: ApiClient, want: int, timeout: float) -> tuple[int, float]:
    """(pods Running, seconds until the last one was seen) through one informer on every pod."""
    inf = Informer(client, "v1", "pods")
    task = inf.start()
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    running = 0
    try:
        await inf.wait_synced(timeout)
        while time.monotonic() < deadline:
            running = sum(1 for p in inf.list() if (p.get("status") or {}).get("phase") == "Running")
            if running >= want:
                break
            await asyncio.sleep(1.0)
    finally:
        inf.stop()
        task.cancel()
    return running, time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def write_counts(api_url: str) -> dict[str, float]:
    """The API server's writes so far by "VERB resource" (apiserver_request_total on its /metrics)."""
    async with aiohttp.ClientSession() as http, http.get(f"{api_url}/metrics") as r:
        samples = metrics.parse(await r.text())
    out: dict[str, float] = {}
    for labels, v in samples.get("apiserver_request_total", ()):
        if labels.get("verb") in ("POST", "PUT", "PATCH", "APPLY", "DELETE"):
            what = f"{labels['verb']} {labels.get('resource')}" + (
                f"/{labels['subresource']}" if labels.get("subresource") else "")
            out[what] = out.get(what, 0.0) + v
    return out


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def timings(api: ApiServerProcess, etcd: Etcd, runs: int, *, profile: bool = False) -> dict[str, float]:
    store = EtcdStorage(etcd.url)
    out: dict[str, float] = {}
    raw: list[float] = []
    for _ in range(runs):
        t = time.perf_counter()
        items, _rev = await store.list(POD_PREFIX)
        raw.append(time.perf_counter() - t)
    out["raw_range_s"] = statistics.median(raw)
    out["stored_mib"] = sum(len(kv.value) for kv in items) / MIB
    await store.close()

    kubectl = kubectl_binary()
    took: list[float] = []
    lines = 0
    # Where the time goes: the API server's CPU and kubectl's own (decoding and printing 30,000 rows).
    api_cpu, kubectl_cpu = cpu_seconds(api.proc.pid), children_cpu_seconds()
    writes0, t0 = await write_counts(api.url), time.perf_counter()
    with Profiles({"apiserver": api.proc.pid}, ("apiserver",), out=Path(tempfile.mkdtemp(prefix="bench-scale-")), label="kubectl get pods -A",
                  enabled=profile):
        for _ in range(runs):
            t = time.perf_counter()
            r = subprocess.run([kubectl, "--server", api.url, "get", "pods", "-A"], capture_output=True, text=True,
                               timeout=300)
            took.append(time.perf_counter() - t)
            if r.returncode != 0:
                raise RuntimeError(f"kubectl get pods -A failed: {r.stderr[-2000:]}")
            lines = len(r.stdout.splitlines()) - 1  # the header
    out["kubectl_s"], out["kubectl_lines"] = statistics.median(took), lines
    out["kubectl_api_cpu_s"] = (cpu_seconds(api.proc.pid) - api_cpu) / runs
    out["kubectl_own_cpu_s"] = (children_cpu_seconds() - kubectl_cpu) / runs
    # The nodes' heartbeats go on meanwhile, as in any cluster of this size: what they cost the reads.
    writes1, seconds = await write_counts(api.url), time.perf_counter() - t0
    rates = sorted(((v - writes0.get(k, 0.0)) / seconds, k) for k, v in writes1.items())[::-1]
    out["background_writes_per_s"] = sum(r for r, _ in rates)
    print("writes per second meanwhile: " + ", ".join(f"{k} {r:.0f}" for r, k in rates if r >= 0.5), flush=True)

    relists: list[float] = []
    async with ApiClient(api.url, timeout=300) as client:
        for _ in range(runs):
            inf = Informer(client, "v1", "pods")
            t = time.perf_counter()
            await inf.relist()
            relists.append(time.perf_counter() - t)
            out["relist_items"] = len(inf)
    out["relist_s"] = statistics.median(relists)
    return out


async def bench(args: argparse.Namespace) -> Result:
    etcd = Etcd.start()
    try:
        api = ApiServerProcess.start(etcd.url)
    except BaseException:
        etcd.stop()
        raise
    kubelet: ComponentProcess | None = None
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
        async with aiohttp.ClientSession(base_url=api.url, connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=120)) as http, \
                ApiClient(api.url, timeout=300) as client:
            t0 = time.perf_counter()
            kubelet = await simulated_nodes(client, api.url, args.nodes)
            print(f"{args.nodes} simulated nodes Ready in {time.perf_counter() - t0:.1f}s", flush=True)
            namespaces = [f"scale-{i:02d}" for i in range(args.namespaces)]
            for ns in namespaces:
                await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            nodes = sorted(n["metadata"]["name"] for n in (await client.list("nodes"))["items"])
            headers = {"Content-Type": "application/json"}

            async def create(i: int) -> None:
                ns = namespaces[i % len(namespaces)]
                async with http.post(f"/api/v1/namespaces/{ns}/pods", headers=headers,
                                     data=pod(f"pod-{i:05d}", ns, nodes[i % len(nodes)])) as r:
                    assert r.status == 201, await r.text()
            started = time.perf_counter()
            await pool(args.pods, args.concurrency, create)
            created = time.perf_counter() - started
            print(f"{args.pods} pods created in {created:.1f}s ({args.pods / created:.0f}/s)", flush=True)
            running, _ = await wait_running(client, args.pods, args.timeout)
            running_s = time.perf_counter() - started
            print(f"{running}/{args.pods} pods Running {running_s:.1f}s after the first create", flush=True)
        t = await timings(api, etcd, args.runs, profile=args.profile)
        rss, peak = proc_mib(api.proc.pid, "VmRSS"), proc_mib(api.proc.pid, "VmHWM")
        etcd_rss = proc_mib(etcd.proc.pid, "VmRSS")
        r = Result(args.nodes, args.pods, running, created, running_s, rss, peak, etcd_rss, t["stored_mib"],
                   t["raw_range_s"], t["kubectl_s"], int(t["kubectl_lines"]), t["relist_s"], int(t["relist_items"]))
        print(f"apiserver RSS {rss:.0f} MiB (peak {peak:.0f}); etcd RSS {etcd_rss:.0f} MiB; the pods' bytes in etcd "
              f"{r.stored_mib:.1f} MiB", flush=True)
        print(f"raw etcd range of every pod key: {r.raw_range_s:.2f}s; kubectl get pods -A: {r.kubectl_s:.2f}s "
              f"({r.kubectl_lines} rows); informer relist: {r.relist_s:.2f}s ({r.relist_items} pods)", flush=True)
        print(f"kubectl get pods -A, CPU per run: API server {t['kubectl_api_cpu_s']:.2f}s, kubectl itself "
              f"{t['kubectl_own_cpu_s']:.2f}s", flush=True)
        print("machine: " + "; ".join(f"{k} {v}" for k, v in machine().items()), flush=True)
        return r
    finally:
        if kubelet is not None:
            kubelet.stop()
        api.stop()
        etcd.stop()


def measure(argv: list[str] | None = None) -> Result:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--nodes", type=int, default=FULL[0])
    p.add_argument("--pods", type=int, default=FULL[1])
    p.add_argument("--namespaces", type=int, default=10)
    p.add_argument("--concurrency", type=int, default=32, help="concurrent creates (default 32)")
    p.add_argument("--runs", type=int, default=3, help="timings of each read; the median is reported")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the pods to be Running")
    p.add_argument("--profile", action="store_true", help="py-spy the API server while kubectl reads (bench.pyspy)")
    return asyncio.run(bench(p.parse_args(argv)))


def main(argv: list[str] | None = None) -> int:
    measure(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
