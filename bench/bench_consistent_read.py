"""What consistent reads cost: GET and LIST without resourceVersion vs resourceVersion=0 vs raw etcd.

Data flow: start a private etcd and ``minik8s apiserver`` (the test suite's ``Etcd`` and
``ApiServerProcess``) -> create ``--objects`` ConfigMaps of about ``--value-size`` bytes in namespace
``bench`` -> while a background writer puts a key outside the apiserver's resources every few
milliseconds (so etcd's revision is always ahead of the ConfigMap cache's, as with Leases in a live
cluster: the consistency check must take its "nothing in the range changed" path, never the "the
cache has seen that revision" shortcut) -> for each concurrency level, time N GETs of one object
and N LISTs of the namespace three ways: consistent (no resourceVersion: one etcd range probe, then
the watch cache), ``resourceVersion=0`` (the cache alone) and raw etcd through ``EtcdStorage`` (a
range of the key or the prefix, no decoding) -> print req/s and latency percentiles per cell, a
Markdown table for bench/RESULTS.md, and the machine it ran on.

Run: ``python bench/bench_consistent_read.py [--concurrency 1 32] [--requests 1000 3000] [--objects 100]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from apiserver.storage.etcd import EtcdStorage  # noqa: E402
from bench.bench_apiserver import NAMESPACE, Cell, configmap, machine, timed  # noqa: E402
from cli.processes import wait_http  # noqa: E402
from tests.cluster import ApiServerProcess, Etcd  # noqa: E402

MODES = ("consistent", "rv=0", "etcd")


def _http_reader(http: aiohttp.ClientSession, url: str, params: dict[str, str]) -> Callable[[int], Awaitable[bool]]:
    async def call(_: int) -> bool:
        async with http.get(url, params=params) as r:
            await r.read()
            return r.status == 200
    return call


async def run(args: argparse.Namespace, api_url: str, etcd_url: str) -> list[dict[str, Cell]]:
    store = EtcdStorage(etcd_url)
    base = f"{api_url}/api/v1/namespaces/{NAMESPACE}/configmaps"
    prefix = f"/registry/core/configmaps/{NAMESPACE}/".encode()
    stop = asyncio.Event()

    async def background_writer() -> None:
        i = 0
        while not stop.is_set():
            await store.create(f"/bench-other/{i}".encode(), b"x")
            i += 1
            await asyncio.sleep(args.background_interval)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.post(f"{api_url}/api/v1/namespaces", json={"metadata": {"name": NAMESPACE}}) as r:
            assert r.status in (201, 409), await r.text()
        for i in range(args.objects):
            async with http.post(base, data=configmap(f"cm-{i:05d}", args.value_size),
                                 headers={"Content-Type": "application/json"}) as r:
                assert r.status == 201, await r.text()
        keys = await store.list(prefix)
        one_key = keys[0][0].key
        writer = asyncio.create_task(background_writer())
        await asyncio.sleep(0.2)
        rows: list[dict[str, Cell]] = []
        try:
            for concurrency, requests in zip(args.concurrency, args.requests):
                for op in ("get", "list"):
                    url = f"{base}/cm-00000" if op == "get" else base
                    readers: dict[str, Callable[[int], Awaitable[bool]]] = {
                        "consistent": _http_reader(http, url, {}),
                        "rv=0": _http_reader(http, url, {"resourceVersion": "0"}),
                    }

                    async def raw(_: int, op: str = op) -> bool:
                        if op == "get":
                            await store.get(one_key)
                        else:
                            await store.list(prefix)
                        return True
                    readers["etcd"] = raw
                    n = requests if op == "get" else max(1, requests // 5)
                    row = {}
                    for mode in MODES:
                        row[mode] = await timed(op, concurrency, n, readers[mode])
                    print(_line(row))
                    rows.append(row)
        finally:
            stop.set()
            await writer
            await store.close()
    return rows


def _line(row: dict[str, Cell]) -> str:
    c = row["consistent"]
    parts = [f"  {c.op:<4} c={c.concurrency:<3} n={c.requests:<5}"]
    parts += [f"{m} {row[m].ops_per_s:7.0f}/s (p50 {row[m].p50_ms:5.2f} ms)" for m in MODES]
    return "   ".join(parts)


def table(rows: list[dict[str, Cell]], *, objects: int) -> str:
    out = ["| read | concurrency | requests | consistent req/s | rv=0 req/s | raw etcd req/s | consistent / rv=0 "
           "| consistent p50 / p99 ms | rv=0 p50 / p99 ms | etcd p50 / p99 ms | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        c, z, e = row["consistent"], row["rv=0"], row["etcd"]
        what = "GET one ConfigMap" if c.op == "get" else f"LIST {objects} ConfigMaps"
        out.append(f"| {what} | {c.concurrency} | {c.requests} | {c.ops_per_s:,.0f} | {z.ops_per_s:,.0f} "
                   f"| {e.ops_per_s:,.0f} | {c.ops_per_s / z.ops_per_s:.2f} | {c.p50_ms:.2f} / {c.p99_ms:.2f} "
                   f"| {z.p50_ms:.2f} / {z.p99_ms:.2f} | {e.p50_ms:.2f} / {e.p99_ms:.2f} "
                   f"| {c.errors + z.errors + e.errors} |")
    return "\n".join(out)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 32], help="concurrency levels (default 1 32)")
    p.add_argument("--requests", type=int, nargs="+", default=[1000, 3000],
                   help="GETs per mode at each concurrency level (LISTs: a fifth), in the same order")
    p.add_argument("--objects", type=int, default=100, help="ConfigMaps in the listed namespace (default 100)")
    p.add_argument("--value-size", type=int, default=1024, help="bytes of ConfigMap JSON (default 1024)")
    p.add_argument("--background-interval", type=float, default=0.005,
                   help="seconds between the background writer's etcd puts (default 0.005)")
    args = p.parse_args(argv)
    if len(args.requests) == 1:
        args.requests = args.requests * len(args.concurrency)
    if len(args.requests) != len(args.concurrency):
        p.error("--requests needs one count, or one per --concurrency level")
    return args


def measure(argv: list[str] | None = None) -> list[dict[str, Cell]]:
    """The benchmark with these command-line flags: one row per read and concurrency, each mode's
    cell (``python -m bench`` calls this; ``main`` prints it)."""
    args = parse(argv)
    etcd = Etcd.start()
    api = None
    try:
        api = ApiServerProcess.start(etcd.url, wait_ready=False)
        wait_http(f"{api.url}/readyz", api.proc, api.log, timeout=180)  # a busy machine starts it slowly
        return asyncio.run(run(args, api.url, etcd.url))
    finally:
        if api is not None:
            api.stop()
        etcd.stop()


def main(argv: list[str] | None = None) -> int:
    print(f"minik8s consistent reads benchmark, {dt.datetime.now().astimezone().isoformat(timespec='seconds')}")
    for k, v in machine().items():
        print(f"  {k:<7} {v}")
    started = time.monotonic()
    rows = measure(argv)
    print()
    print(table(rows, objects=parse(argv).objects))
    print(f"\ntotal {time.monotonic() - started:.1f}s")
    return 0 if all(cell.errors == 0 for row in rows for cell in row.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
