"""What the apiserver costs on top of etcd: create, get, update and apply throughput, apiserver vs raw etcd.

Data flow: start a private etcd and ``minik8s apiserver`` (the test suite's ``Etcd`` and
``ApiServerProcess``) -> build one ConfigMap of about ``--value-size`` bytes of JSON -> for each
concurrency level, time N creates (``POST /api/v1/namespaces/bench/configmaps`` through aiohttp vs
aetcd ``put`` of the same bytes under ``/bench/``), N gets (``GET .../configmaps/{name}`` vs
aetcd ``get``: a consistent read, one etcd range probe then the watch cache), N cached gets (the
same with ``resourceVersion=0``: the watch cache alone, op ``get rv=0``), N updates (a JSON merge patch of one data key, recorded in managedFields, vs a
``put``) and N server-side applies (``application/apply-patch+yaml`` of the whole object with one
key changed, by field manager ``bench`` with ``force`` (the update above owns that key), vs a ``put``) -> print ops/s, latency percentiles and the apiserver/etcd ratio per cell, plus
the machine it ran on.

Both clients run in this one process on asyncio (an aiohttp session with a connection per
worker; one aetcd client, whose gRPC channel multiplexes the concurrent calls). aiohttp, not
httpx: httpx's connection pool itself caps out near 150 requests/s at 64 connections here,
which would measure the client instead of the server. Run: ``python bench/bench_apiserver.py [--concurrency 1 64]
[--requests 500 2000] [--value-size 1024]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aetcd  # noqa: E402
import aiohttp  # noqa: E402
import orjson  # noqa: E402

from apiserver.storage.etcd import parse_endpoint  # noqa: E402
from tests.cluster import ApiServerProcess, Etcd, etcd_binary  # noqa: E402

NAMESPACE = "bench"


@dataclass
class Cell:
    op: str
    concurrency: int
    requests: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


# ---------------------------------------------------------------------------- machine
def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        etcd_version = subprocess.run([etcd_binary(), "--version"], capture_output=True, text=True,
                                      timeout=10).stdout.splitlines()[0]
    except (OSError, RuntimeError, IndexError, subprocess.SubprocessError):
        etcd_version = "unknown"
    return {
        "cpu": cpu,
        "cores": f"{os.cpu_count()} logical ({len(os.sched_getaffinity(0))} usable)",
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "etcd": etcd_version,
    }


# ---------------------------------------------------------------------------- payload
def configmap(name: str, value_size: int) -> bytes:
    """A ConfigMap whose JSON is ``value_size`` bytes long (give or take the name's length)."""
    data = {"payload": ""}
    base = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": "bench"}},
            "data": data}
    pad = max(0, value_size - len(orjson.dumps(base)))
    data["payload"] = "x" * pad
    return orjson.dumps(base)


# ---------------------------------------------------------------------------- the driver
async def timed(op: str, concurrency: int, requests: int, call: Callable[[int], Awaitable[bool]]) -> Cell:
    """Run ``call(i)`` for i in range(requests) with ``concurrency`` workers; measure the wall time."""
    next_index = 0
    latencies: list[float] = []
    errors = 0

    async def worker() -> None:
        nonlocal next_index, errors
        while next_index < requests:
            i = next_index
            next_index += 1
            t0 = time.perf_counter()
            ok = await call(i)
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return Cell(op, concurrency, requests, requests / elapsed,
                statistics.median(latencies) * 1000, latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
                errors)


async def run(args: argparse.Namespace, api_url: str, etcd_url: str) -> list[tuple[Cell, Cell]]:
    host, port = parse_endpoint(etcd_url)
    etcd = aetcd.Client(host=host, port=port, timeout=30)
    max_c = max(args.concurrency)
    rows: list[tuple[Cell, Cell]] = []
    connector = aiohttp.TCPConnector(limit=max_c + 8)
    async with aiohttp.ClientSession(base_url=api_url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:
        async with http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                          "metadata": {"name": NAMESPACE}}) as r:
            assert r.status in (201, 409), await r.text()
        headers = {"Content-Type": "application/json"}
        for conc, n in zip(args.concurrency, args.requests):
            tag = f"c{conc}"
            bodies = [configmap(f"cm-{tag}-{i:06d}", args.value_size) for i in range(n)]
            keys = [f"/bench/configmaps/{NAMESPACE}/cm-{tag}-{i:06d}".encode() for i in range(n)]

            async def api_create(i: int) -> bool:
                async with http.post(f"/api/v1/namespaces/{NAMESPACE}/configmaps", data=bodies[i],
                                     headers=headers) as resp:
                    await resp.read()
                    return resp.status == 201

            async def etcd_put(i: int) -> bool:
                await etcd.put(keys[i], bodies[i])
                return True

            async def api_get(i: int) -> bool:
                async with http.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-{tag}-{i:06d}") as resp:
                    await resp.read()
                    return resp.status == 200

            async def etcd_get(i: int) -> bool:
                return (await etcd.get(keys[i])) is not None

            async def api_cached_get(i: int) -> bool:  # resourceVersion=0: the watch cache as it is
                async with http.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-{tag}-{i:06d}",
                                    params={"resourceVersion": "0"}) as resp:
                    await resp.read()
                    return resp.status == 200

            # Warm up both paths (connections, caches, JIT-free but import-heavy first calls).
            for w in range(min(conc, 32)):
                warm = configmap(f"warm-{tag}-{w}", args.value_size)
                async with http.post(f"/api/v1/namespaces/{NAMESPACE}/configmaps", data=warm, headers=headers) as r:
                    await r.read()
                async with http.get(f"/api/v1/namespaces/{NAMESPACE}/configmaps/warm-{tag}-{w}") as r:
                    await r.read()
                await etcd.put(f"/bench/warm/{tag}-{w}".encode(), warm)
                await etcd.get(f"/bench/warm/{tag}-{w}".encode())

            async def api_update(i: int) -> bool:
                patch = b'{"data":{"n":"' + str(i).encode() + b'"}}'
                async with http.patch(f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-{tag}-{i:06d}", data=patch,
                                      headers={"Content-Type": "application/merge-patch+json"}) as resp:
                    await resp.read()
                    return resp.status == 200

            async def api_apply(i: int) -> bool:
                obj = orjson.loads(bodies[i])
                obj["data"]["n"] = f"applied-{i}"
                async with http.patch(f"/api/v1/namespaces/{NAMESPACE}/configmaps/cm-{tag}-{i:06d}",
                                      data=orjson.dumps(obj), params={"fieldManager": "bench", "force": "true"},
                                      headers={"Content-Type": "application/apply-patch+yaml"}) as resp:
                    await resp.read()
                    return resp.status == 200

            create = (await timed("create", conc, n, api_create), await timed("create", conc, n, etcd_put))
            print(_line(*create), flush=True)
            get = (await timed("get", conc, n, api_get), await timed("get", conc, n, etcd_get))
            print(_line(*get), flush=True)
            cached = (await timed("get rv=0", conc, n, api_cached_get), await timed("get rv=0", conc, n, etcd_get))
            print(_line(*cached), flush=True)
            update = (await timed("update", conc, n, api_update), await timed("update", conc, n, etcd_put))
            print(_line(*update), flush=True)
            apply = (await timed("apply", conc, n, api_apply), await timed("apply", conc, n, etcd_put))
            print(_line(*apply), flush=True)
            rows += [create, get, cached, update, apply]
    await etcd.close()
    return rows


def _line(api: Cell, raw: Cell) -> str:
    return (f"  {api.op:<9} c={api.concurrency:<3} n={api.requests:<5} apiserver {api.ops_per_s:8.0f} ops/s "
            f"(p50 {api.p50_ms:6.2f} ms, p99 {api.p99_ms:7.2f} ms)   etcd {raw.ops_per_s:8.0f} ops/s "
            f"(p50 {raw.p50_ms:6.2f} ms, p99 {raw.p99_ms:7.2f} ms)   ratio {api.ops_per_s / raw.ops_per_s:.3f}")


def table(rows: list[tuple[Cell, Cell]]) -> str:
    out = ["| operation | concurrency | requests | apiserver ops/s | etcd ops/s | ratio apiserver/etcd "
           "| apiserver p50 / p99 ms | etcd p50 / p99 ms | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for api, raw in rows:
        out.append(f"| {api.op} | {api.concurrency} | {api.requests} | {api.ops_per_s:,.0f} | {raw.ops_per_s:,.0f} "
                   f"| {api.ops_per_s / raw.ops_per_s:.3f} | {api.p50_ms:.2f} / {api.p99_ms:.2f} "
                   f"| {raw.p50_ms:.2f} / {raw.p99_ms:.2f} | {api.errors + raw.errors} |")
    return "\n".join(out)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 64], help="concurrency levels (default 1 64)")
    p.add_argument("--requests", type=int, nargs="+", default=[500, 2000],
                   help="requests per operation at each concurrency level, in the same order (default 500 2000)")
    p.add_argument("--value-size", type=int, default=1024, help="bytes of ConfigMap JSON (default 1024)")
    p.add_argument("--apiserver-arg", action="append", default=[], help="extra flag for minik8s apiserver")
    return p


def measure(argv: list[str] | None = None) -> list[tuple[Cell, Cell]]:
    """The benchmark with these command-line flags: (apiserver, raw etcd) per operation and
    concurrency (``python -m bench`` calls this; ``main`` prints it)."""
    p = parser()
    args = p.parse_args(argv)
    if len(args.requests) == 1:
        args.requests = args.requests * len(args.concurrency)
    if len(args.requests) != len(args.concurrency):
        p.error("--requests needs one count, or one per --concurrency level")
    etcd = Etcd.start()
    api = None
    try:
        api = ApiServerProcess.start(etcd.url, *args.apiserver_arg)
        return asyncio.run(run(args, api.url, etcd.url))
    finally:
        if api is not None:
            api.stop()
        etcd.stop()


def main(argv: list[str] | None = None) -> int:
    info = machine()
    print(f"minik8s apiserver vs etcd benchmark, {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    for k, v in info.items():
        print(f"  {k:<7} {v}")
    sample = configmap("cm-c1-000000", parser().parse_args(argv).value_size)
    print(f"  object  ConfigMap, {len(sample)} bytes of JSON; command: {' '.join([Path(sys.executable).name, *sys.argv])}")

    started = time.monotonic()
    rows = measure(argv)
    print()
    print(table(rows))
    print(f"\ntotal {time.monotonic() - started:.1f}s")
    return 0 if all(a.errors == 0 and r.errors == 0 for a, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
