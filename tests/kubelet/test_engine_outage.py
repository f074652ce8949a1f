"""Acceptance: stopping the Docker engine turns the node NotReady; starting it again brings it back.

The shared engine other tests use is never touched: this test starts a PRIVATE ``dockerd`` of its
own (own socket, data root, exec root and therefore its own containerd, no iptables rules, and
as its default bridge an interface this test creates), runs a ``minik8s kubelet`` process
against it (its pod network is a free /24 in 172.30.0.0/16 created on that private engine), and stops / starts only that daemon, by the pid of
the process this test started. Clean-up: the kubelet, the private daemon's network, the daemon
(and its containerd), the temp directory, the Node and its Lease.

Without ``dockerd`` or root the test fails when ``CI`` is set, and skips with the reason otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess, ComponentProcess
from tests.dockertest import free_subnet, unusable

pytestmark = pytest.mark.docker

RUN_ID = uuid.uuid4().hex[:8]


class PrivateDockerd:
    """A second Docker engine beside the main one, started (and only ever stopped) by this test."""

    def __init__(self, root: Path, bridge: str) -> None:
        self.root = root
        self.bridge = bridge
        self.sock = root / "docker.sock"
        self.url = f"unix://{self.sock}"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.containerd_pids: set[int] = set()

    def argv(self) -> list[str]:
        # Never ``--bridge none``: a daemon started so deletes the interface docker0, which is the
        # MAIN engine's default bridge (its ``docker run`` then fails). It gets a bridge of its own.
        r = self.root
        return ["dockerd", "--host", self.url, "--data-root", str(r / "data"), "--exec-root", str(r / "exec"),
                "--pidfile", str(r / "docker.pid"), "--bridge", self.bridge, "--iptables=false", "--ip-masq=false",
                "--ip6tables=false"]

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "-H", self.url, *args], capture_output=True, text=True, timeout=30,
                              check=check)

    def answers(self) -> bool:
        try:
            return self.docker("version", "-f", "{{.Server.Version}}", check=False).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def start(self, timeout: float = 60) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.proc = subprocess.Popen(self.argv(), stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.proc.poll() is not None:
                raise RuntimeError(f"private dockerd exited with {self.proc.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"private dockerd did not answer within {timeout}s:\n{self.tail()}")
            time.sleep(0.2)
        pidfile = self.root / "exec" / "containerd" / "containerd.pid"
        try:
            self.containerd_pids.add(int(pidfile.read_text().strip()))
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to the daemon this test started; SIGKILL (and its containerd) if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def reap_containerd(self) -> None:
        """The daemon stops its own containerd; kill one left behind (its pid is from our exec root)."""
        for pid in self.containerd_pids:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(self.root) in cmdline:
                os.kill(pid, signal.SIGKILL)

    def tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"


@pytest.fixture
def private_dockerd() -> Iterator[PrivateDockerd]:
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        unusable("dockerd / docker are not installed")
    if os.geteuid() != 0:
        unusable("a private dockerd needs root")
    # Short path: containerd's unix sockets live under the exec root (108-byte limit).
    root = Path(tempfile.mkdtemp(prefix=f"mk8s-eng-{RUN_ID}-", dir="/tmp"))
    bridge = f"mk8sb-{RUN_ID}"  # at most 15 characters
    d = PrivateDockerd(root, bridge)
    try:
        subnet = ipaddress.IPv4Network(free_subnet())
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True, capture_output=True)
        subprocess.run(["ip", "addr", "add", f"{subnet.network_address + 1}/{subnet.prefixlen}", "dev", bridge],
                       check=True, capture_output=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True, capture_output=True)
        d.start()
        yield d
    finally:
        try:
            # Networks made on the private engine: removed through it, so no bridge is left behind.
            if d.proc is None or d.proc.poll() is not None:
                d.start()
            ids = d.docker("network", "ls", "-q", "--filter", "type=custom", check=False).stdout.split()
            if ids:
                d.docker("network", "rm", *ids, check=False)
        except Exception:  # still stop what we started and remove the directory
            pass
        d.stop()
        d.reap_containerd()
        for m in reversed(subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True,
                                         text=True).stdout.splitlines()):
            if m.startswith(str(root)):
                subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _ready(node: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})


def _wait_ready(http: httpx.Client, name: str, want: str, kubelet: ComponentProcess, timeout: float = 45) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        assert kubelet.proc.poll() is None, f"kubelet exited:\n{kubelet.logs()[-3000:]}"
        r = http.get(f"/api/v1/nodes/{name}")
        if r.status_code == 200:
            last = _ready(r.json())
            if last.get("status") == want:
                return last
        time.sleep(0.25)
    raise AssertionError(f"node {name} not Ready={want} after {timeout}s (last {last}):\n{kubelet.logs()[-3000:]}")


@pytest.fixture
def node_cleanup(http: httpx.Client) -> Iterator[Callable[[str], None]]:
    names: list[str] = []
    yield names.append
    for n in names:
        http.delete(f"/api/v1/nodes/{n}")
        http.delete(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{n}")


def test_engine_stop_turns_node_not_ready_and_start_brings_it_back(
        apiserver: ApiServerProcess, http: httpx.Client, private_dockerd: PrivateDockerd,
        node_cleanup: Callable[[str], None]) -> None:
    name = f"engine-outage-{RUN_ID}"
    net = f"minik8s-outage-{RUN_ID}"
    subnet = free_subnet()
    node_cleanup(name)
    had_docker0 = _link_exists("docker0")
    kubelet = ComponentProcess.start("kubelet", "--server", apiserver.url, "--node-name", name,
                                     "--runtime-endpoint", private_dockerd.url, "--pod-network-name", net,
                                     "--pod-network-subnet", subnet, "--lease-renew-interval", "2")
    try:
        up = _wait_ready(http, name, "True", kubelet)
        assert up.get("reason") == "KubeletReady", up
        # The pod network exists on the private engine, with the explicit subnet.
        out = private_dockerd.docker("network", "inspect", net, "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}}")
        assert out.stdout.strip() == subnet
        node = http.get(f"/api/v1/nodes/{name}").json()
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("docker://")

        t0 = time.monotonic()
        private_dockerd.stop()
        down = _wait_ready(http, name, "False", kubelet)
        print(f"\nengine stopped -> Ready=False after {time.monotonic() - t0:.1f}s: {down.get('message')}")
        assert down.get("reason") == "KubeletNotReady", down
        assert down.get("message"), down
        assert kubelet.proc.poll() is None, "the kubelet must survive the engine going away"
        # The Lease keeps being renewed while the engine is down (the kubelet itself is alive).
        lease = http.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}").json()
        renewed = lease["spec"]["renewTime"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lease = http.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}").json()
            if lease["spec"]["renewTime"] != renewed:
                break
            time.sleep(0.25)
        assert lease["spec"]["renewTime"] != renewed, "lease not renewed while the engine was down"

        t0 = time.monotonic()
        private_dockerd.start()
        back = _wait_ready(http, name, "True", kubelet)
        print(f"engine started -> Ready=True after {time.monotonic() - t0:.1f}s")
        assert back.get("reason") == "KubeletReady", back
        assert back["lastTransitionTime"] >= down["lastTransitionTime"]
        # The main engine's default bridge is untouched by the private daemon.
        if had_docker0:
            assert _link_exists("docker0"), "the private dockerd removed the main engine's docker0"
    finally:
        kubelet.stop()
