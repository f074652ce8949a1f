"""How many simulated nodes one ``minik8s kubelet --simulated`` process holds, and at what cost.

Data flow: start a private etcd and ``minik8s apiserver`` (the test suite's ``Etcd`` and
``ApiServerProcess``) -> start ``minik8s kubelet --simulated --count N`` -> poll the Node list once
a second until all N are Ready (the registration time, from process start) -> read the kubelet's
own "registered N node(s) in X s" line and its RSS from /proc -> watch the Leases for
``--steady`` seconds and report how many were renewed within the last lease duration (40 s),
i.e. whether the apiserver keeps up with N nodes renewing every ``--lease-renew-interval``.

Run: ``.venv/bin/python bench/bench_simulated.py [--count 1000] [--lease-renew-interval 10]
[--steady 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import re
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from machinery.client import ApiClient  # noqa: E402
from machinery.timefmt import parse_time  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd  # noqa: E402


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ready(node: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def bench(count: int, interval: float, steady: float) -> dict[str, float]:
    """Prints the figures and returns them: nodes, ready_s, registered_s, rss_mib, and after the
    steady state fresh (leases renewed within 40 s), oldest_s, median_s, rss_steady_mib."""
    out: dict[str, float] = {"nodes": count}
    etcd = Etcd.start()
    api = ApiServerProcess.start(etcd.url)
    kubelet: ComponentProcess | None = None
    try:
        async with ApiClient(api.url, timeout=120) as client:
            started = time.monotonic()
            kubelet = ComponentProcess.start("kubelet", "--simulated", "--server", api.url, "--node-name", "bench",
                                             "--count", str(count), "--lease-renew-interval", str(interval))
            while True:
                if kubelet.proc.poll() is not None:
                    raise SystemExit(f"kubelet died:\n{kubelet.logs()[-3000:]}")
                nodes = (await client.list("nodes"))["items"]
                if sum(1 for n in nodes if ready(n)) >= count:
                    break
                await asyncio.sleep(1.0)
            all_ready = time.monotonic() - started
            while "registered" not in kubelet.logs():
                await asyncio.sleep(0.2)
            line = next(x for x in kubelet.logs().splitlines() if "registered" in x)
            rss = rss_mib(kubelet.proc.pid)
            took = re.search(r" in ([0-9.]+)s", line)
            out.update(ready_s=all_ready, rss_mib=rss, registered_s=float(took[1]) if took else -1.0)
            print(f"{count} nodes Ready {all_ready:.1f}s after process start; kubelet: {line.split(': ', 1)[-1]}; "
                  f"RSS {rss:.0f} MiB")
            if steady > 0:
                await asyncio.sleep(steady)
                leases = (await client.list(("coordination.k8s.io/v1", "leases"), namespace="kube-node-lease"))["items"]
                now = datetime.now(timezone.utc)
                ages = sorted((now - t).total_seconds() for x in leases
                              if (t := parse_time(x["spec"].get("renewTime"))) is not None)
                fresh = sum(1 for a in ages if a < 40)
                print(f"after {steady:.0f}s steady state (renew every {interval}s): {fresh}/{count} leases renewed "
                      f"within 40s; oldest renewal {ages[-1]:.1f}s ago, median {ages[len(ages) // 2]:.1f}s; "
                      f"RSS {rss_mib(kubelet.proc.pid):.0f} MiB")
                out.update(fresh=fresh, oldest_s=ages[-1], median_s=ages[len(ages) // 2],
                           rss_steady_mib=rss_mib(kubelet.proc.pid))
            print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
                  f"{len(__import__('os').sched_getaffinity(0))} usable cores")
    finally:
        if kubelet is not None:
            kubelet.stop()
        api.stop()
        etcd.stop()
    return out


def measure(argv: list[str] | None = None) -> dict[str, float]:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--lease-renew-interval", type=float, default=10.0)
    p.add_argument("--steady", type=float, default=30.0)
    args = p.parse_args(argv)
    return asyncio.run(bench(args.count, args.lease_renew_interval, args.steady))


def main() -> None:
    measure()


if __name__ == "__main__":
    main()
