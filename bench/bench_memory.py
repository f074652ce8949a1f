"""Resident memory of every component idle on an empty cluster, against issue 15's targets.

Data flow: start a private etcd and ``minik8s apiserver`` (``tests/cluster.py``) -> start each other
component on its own free ports, pointed at the apiserver: scheduler, controller-manager, kubelet
(a Docker kubelet with its own pod network when the engine answers, else ``--simulated``),
proxy, dns, ingress, gitops -> wait until each one's health endpoint answers, then ``--settle``
seconds of idling -> read ``process_resident_memory_bytes`` from each one's ``/metrics``
(``machinery.metrics.parse``: the apiserver on its port, the kubelet on its API port, the others on
their health port), or ``VmRSS`` from ``/proc/<pid>/status`` where no ``/metrics`` answers yet; the
source is in every row. The baseline is a bare Python interpreter of the same venv sleeping (what
any Python process costs); etcd is shown for reference. Targets: the apiserver under 150 MiB, every
other component under 60 MiB.

Run: ``.venv/bin/python bench/bench_memory.py [--settle 10]``. Everything it started is stopped by
pid; the pod network and the kubelet's state directory are removed.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.bench_simulated import rss_mib  # noqa: E402
from cli.processes import wait_http  # noqa: E402
from machinery import metrics  # noqa: E402
from tests import dockertest  # noqa: E402
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port  # noqa: E402

MIB = 1048576
TARGETS_MIB = {"apiserver": 150.0}
OTHER_TARGET_MIB = 60.0
IMAGE = "minik8s/busybox:1"


@dataclass(frozen=True)
class Reading:
    component: str
    mib: float
    source: str  # "/metrics" or "/proc VmRSS"
    target_mib: float | None


def resident_mib(pid: int, metrics_url: str | None) -> tuple[float, str]:
    """process_resident_memory_bytes from ``metrics_url`` when it answers, else /proc's VmRSS."""
    if metrics_url:
        try:
            r = httpx.get(metrics_url, timeout=5)
            if r.status_code == 200:
                samples = metrics.parse(r.text)
                if "process_resident_memory_bytes" in samples:
                    return metrics.value(samples, "process_resident_memory_bytes") / MIB, "/metrics"
        except httpx.HTTPError:
            pass
    return rss_mib(pid), "/proc VmRSS"


def docker_usable() -> bool:
    try:
        return subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def components(api_url: str, tmp: Path, *, docker_node: str | None, network: str) -> list[tuple[str, list[str], int]]:
    """(component, its flags, the port of its /healthz and /metrics) for every component but the apiserver."""
    s = "--server"
    ports = {name: free_port() for name in ("scheduler", "controller-manager", "kubelet", "proxy", "dns", "ingress",
                                            "gitops")}
    if docker_node:
        kubelet = ["--node-name", docker_node, "--pod-network-name", network, "--pod-network-subnet",
                   dockertest.free_subnet("172.31.0.0/16"), "--pod-infra-container-image", IMAGE,
                   "--kubelet-port", str(ports["kubelet"]), "--address", "127.0.0.1"]
    else:
        kubelet = ["--simulated", "--node-name", "bench-memory", "--count", "1"]
    return [
        ("scheduler", [s, api_url, "--no-leader-elect", "--healthz-bind-address", "127.0.0.1", "--healthz-port",
                       str(ports["scheduler"])], ports["scheduler"]),
        ("controller-manager", [s, api_url, "--no-leader-elect", "--healthz-bind-address", "127.0.0.1",
                                "--healthz-port", str(ports["controller-manager"])], ports["controller-manager"]),
        ("kubelet", [s, api_url, *kubelet], ports["kubelet"] if docker_node else 0),
        ("proxy", [s, api_url, "--nodeport-addresses", "127.0.0.1", "--health-port", str(ports["proxy"])],
         ports["proxy"]),
        ("dns", [s, api_url, "--bind-address", "127.0.0.1", "--port", str(free_port()), "--no-register",
                 "--health-port", str(ports["dns"])], ports["dns"]),
        ("ingress", [s, api_url, "--bind-address", "127.0.0.1", "--port", str(free_port()), "--publish-address",
                     "127.0.0.1", "--health-port", str(ports["ingress"])], ports["ingress"]),
        ("gitops", [s, api_url, "--cache-dir", str(tmp / "gitops"), "--webhook-bind-address", "127.0.0.1",
                    "--webhook-port", str(ports["gitops"])], ports["gitops"]),
    ]


def bench(settle: float) -> list[Reading]:
    run_id = uuid.uuid4().hex[:8]
    docker_node = f"bench-memory-{run_id}" if docker_usable() else None
    network = f"minik8s-bench-mem-{run_id}"
    tmp = Path(tempfile.mkdtemp(prefix="minik8s-bench-memory-"))
    etcd = Etcd.start()
    started: list[tuple[str, ComponentProcess, int]] = []
    bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    api: ApiServerProcess | None = None
    try:
        api = ApiServerProcess.start(etcd.url, wait_ready=False)
        wait_http(f"{api.url}/readyz", api.proc, api.log, timeout=180)  # a busy machine starts it slowly
        for name, flags, port in components(api.url, tmp, docker_node=docker_node, network=network):
            started.append((name, ComponentProcess.start(name, *flags, log_level="warning"), port))
        for name, proc, port in started:
            if port:
                wait_http(f"http://127.0.0.1:{port}/healthz", proc.proc, proc.log, timeout=90)
            elif proc.proc.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{proc.logs()[-3000:]}")
        time.sleep(settle)
        readings = [Reading("apiserver", *resident_mib(api.proc.pid, f"{api.url}/metrics"), TARGETS_MIB["apiserver"])]
        for name, proc, port in started:
            label = name if name != "kubelet" or docker_node else "kubelet (simulated, 1 node)"
            url = f"http://127.0.0.1:{port}/metrics" if port else None
            readings.append(Reading(label, *resident_mib(proc.proc.pid, url), TARGETS_MIB.get(name, OTHER_TARGET_MIB)))
        readings.append(Reading("baseline: a bare Python interpreter (same venv)", rss_mib(bare.pid), "/proc VmRSS",
                                None))
        assert etcd.proc is not None
        readings.append(Reading("etcd (for reference)", rss_mib(etcd.proc.pid), "/proc VmRSS", None))
        return readings
    finally:
        bare.kill()
        bare.wait()
        for _, proc, _ in reversed(started):
            proc.stop()
        if api is not None:
            api.stop()
        etcd.stop()
        if docker_node:
            subprocess.run(["docker", "network", "rm", network], capture_output=True, timeout=60)
            shutil.rmtree(f"/var/lib/minik8s/kubelet/{docker_node}", ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def measure(argv: list[str] | None = None) -> list[Reading]:
    """The benchmark with these command-line flags (``python -m bench`` calls this)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--settle", type=float, default=10.0, help="seconds of idling before reading (default 10)")
    return bench(p.parse_args(argv).settle)


def main() -> None:
    print("| component | resident MiB | source | target |")
    print("|---|---:|---|---|")
    for r in measure():
        target = f"< {r.target_mib:.0f} MiB" if r.target_mib else "-"
        print(f"| {r.component} | {r.mib:.1f} | {r.source} | {target} |")


if __name__ == "__main__":
    main()
