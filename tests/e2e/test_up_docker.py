"""``minik8s up`` with its one Docker node, end to end: pods really run as containers, Ctrl-C leaves
nothing behind.

``minik8s up --port P --data-dir TMP/mk --kubeconfig TMP/kc --node-name up-e2e-XXXX`` runs as a
subprocess (a node name of its own, so other tests on this engine are never touched) -> its summary
-> ``mkctl apply`` of a 2-replica Deployment (the local busybox image, ``sleep``) with the written
kubeconfig (over TLS: the cluster CA and the admin's client certificate; kubectl and the official
client read the same file, a request without credentials gets 401, default/kubernetes points pods
at the pod network's gateway) -> both pods Running and their containers in Docker (label io.minik8s.node=NODE) ->
SIGINT, what a terminal's Ctrl-C sends -> ``up`` exits 0; no process it started is alive, no
container of the node is left (running or not), the apiserver's port is closed. A second ``up``
on the same data dir then finds those pods Failed (Kubernetes' graceful node shutdown) and runs
the Deployment's replacements.

Without an engine (or the image of scripts/build-images) the module fails when ``CI`` is set and
skips with the reason otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
import yaml

from cli.up import POD_NETWORK_SUBNET
from kubelet.runtime import LABEL_NODE, LABEL_POD_UID, LABEL_ROLE, ROLE_CONTAINER, DockerRuntime
from tests.cluster import free_port
from tests.dockertest import IMAGE, docker_runtime
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NODE = f"up-e2e-{uuid.uuid4().hex[:8]}"
GATEWAY = str(ipaddress.ip_network(POD_NETWORK_SUBNET).network_address + 1)  # where pods reach the API server

DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "sleepers", "namespace": "default"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "sleepers"}},
        "template": {
            "metadata": {"labels": {"app": "sleepers"}},
            "spec": {
                # sleep as PID 1 ignores SIGTERM: the node shutdown has to kill it after this grace.
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "sleep", "image": IMAGE, "imagePullPolicy": "Never",
                                "command": ["sleep", "3600"]}],
            },
        },
    },
}


@pytest.fixture
def rt() -> Iterator[DockerRuntime]:
    yield from docker_runtime({LABEL_NODE: NODE})


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Linux: /proc/PID/task/TID/children)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = {int(k) for k in (task / "children").read_text().split()}
            except OSError:
                continue
            todo += list(kids - out)
            out |= kids
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Up:
    """The ``minik8s up`` subprocess; its output is read by a thread so every wait has a timeout."""

    def __init__(self, tmp: Path, port: int) -> None:
        self.tmp = tmp
        self.kubeconfig = tmp / "kc"
        self.env = {**os.environ, "HOME": str(tmp)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli.minik8s", "up", "--port", str(port), "--data-dir", str(tmp / "mk"),
             "--kubeconfig", str(self.kubeconfig), "--node-name", NODE, "--ingress-port", str(free_port()),
             "--console-port", str(free_port())],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.env)
        self.lines: list[str] = []
        self._q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line)
        self._q.put(None)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._q.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"minik8s up ended ({self.proc.wait()}) before {text!r}:\n{self.output()}")
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} from minik8s up after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        while True:
            try:
                line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        logs = self.tmp / "mk" / "logs" / "kubelet.log"
        kubelet = logs.read_text(errors="replace")[-3000:] if logs.exists() else "(no kubelet log)"
        return "".join(self.lines) + "\n--- kubelet.log:\n" + kubelet

    def ctrl_c(self, timeout: float = 90) -> float:
        """SIGINT (a terminal's Ctrl-C); asserts exit 0; the seconds it took."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"minik8s up did not stop within {timeout}s after SIGINT:\n{self.output()}")
        assert code == 0, self.output()
        return time.monotonic() - t0

    def mkctl(self, *args: str, stdin: str | None = None) -> str:
        p = subprocess.run([sys.executable, "-m", "cli.mkctl", "--kubeconfig", str(self.kubeconfig), *args],
                           input=stdin, capture_output=True, text=True, env=self.env, timeout=60)
        assert p.returncode == 0, f"mkctl {' '.join(args)}: {p.stdout}{p.stderr}\n{self.output()}"
        return p.stdout

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
        return wait_for(check, timeout, what, self.output, interval=0.3)


def _pods(up: Up) -> list[dict[str, Any]]:
    return list(json.loads(up.mkctl("get", "pods", "-l", "app=sleepers", "-o", "json"))["items"])


def _running(up: Up) -> list[dict[str, Any]] | None:
    """The Deployment's pods once exactly two are Running."""
    running = [p for p in _pods(up) if p["status"].get("phase") == "Running"]
    return running if len(running) == 2 else None


def test_up_runs_pods_as_containers_and_ctrl_c_removes_them(tmp_path: Path, rt: DockerRuntime) -> None:
    port = free_port()
    t0 = time.monotonic()
    up = Up(tmp_path, port)
    children: set[int] = set()
    try:
        up.wait_for_line("Press Ctrl-C", timeout=120)
        ready_s = time.monotonic() - t0
        out = "".join(up.lines)
        assert f"apiserver:    https://127.0.0.1:{port} (TLS" in out, out
        assert f"pods: https://{GATEWAY}:{port} (default/kubernetes)" in out, out
        assert f"node:         {NODE} (Docker" in out, out
        assert "kubelet API:  http://127.0.0.1:" in out and "pod network:  minik8s-pods" in out, out
        assert f"kubeconfig:   {up.kubeconfig}" in out, out
        children = _descendants(up.proc.pid)
        assert len(children) >= 6, children  # etcd, apiserver, scheduler, controller-manager, gitops, kubelet

        # The node is Ready the moment the summary is printed.
        node = json.loads(up.mkctl("get", "node", NODE, "-o", "json"))
        assert [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"] == ["True"]
        # The same kubeconfig for kubectl and the official client; nothing without a credential.
        env = {**up.env, "KUBECONFIG": str(up.kubeconfig)}
        p = subprocess.run(["kubectl", "get", "node", NODE, "-o", "name"], capture_output=True, text=True, env=env,
                           timeout=60)
        assert p.stdout.strip() == f"node/{NODE}", p.stderr
        p = subprocess.run([sys.executable, "-c", "from kubernetes import client, config\nconfig.load_kube_config()\n"
                            "print(client.CoreV1Api().read_node(" + repr(NODE) + ").metadata.name)"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert p.stdout.strip() == NODE, p.stderr
        ca = ssl.create_default_context(cafile=str(tmp_path / "mk" / "pki" / "ca.crt"))
        r = httpx.get(f"https://127.0.0.1:{port}/api/v1/nodes", verify=ca, timeout=10)
        assert r.status_code == 401, r.text
        # Pods reach the API server through default/kubernetes at the pod network's gateway.
        endpoints = yaml.safe_load(up.mkctl("get", "endpoints", "kubernetes", "-o", "yaml"))
        assert endpoints["subsets"][0]["addresses"][0]["ip"] == GATEWAY
        assert endpoints["subsets"][0]["ports"][0]["port"] == port

        up.mkctl("apply", "-f", "-", stdin=json.dumps(DEPLOYMENT))

        pods = up.wait("2 Running pods", lambda: _running(up), timeout=90)
        assert {p["spec"]["nodeName"] for p in pods} == {NODE}

        def containers() -> bool:
            running = {c.labels.get(LABEL_POD_UID) for c in rt.list({LABEL_NODE: NODE, LABEL_ROLE: ROLE_CONTAINER})
                       if c.running}
            return running == {p["metadata"]["uid"] for p in pods}

        up.wait("a running container per pod in Docker", containers, timeout=30)
        children |= _descendants(up.proc.pid)
    finally:
        stop_s = up.ctrl_c()
    print(f"\nminik8s up: summary (node Ready) after {ready_s:.1f}s; stopped {stop_s:.1f}s after SIGINT")
    left = [c for c in children if _alive(c)]
    assert not left, f"processes left running: {left}\n{up.output()}"
    leftover = rt.list({LABEL_NODE: NODE})
    assert not leftover, f"containers left: {[(c.name, c.state) for c in leftover]}\n{up.output()}"
    assert not _port_open(port), "the apiserver's port is still open"


def test_pods_stopped_by_ctrl_c_stay_failed_and_are_replaced(tmp_path: Path, rt: DockerRuntime) -> None:
    port = free_port()
    up = Up(tmp_path, port)
    try:
        up.wait_for_line("Press Ctrl-C", timeout=120)
        up.mkctl("apply", "-f", "-", stdin=json.dumps(DEPLOYMENT))
        first = up.wait("2 Running pods", lambda: _running(up), timeout=90)
    finally:
        up.ctrl_c()
    old = {p["metadata"]["name"] for p in first}

    up = Up(tmp_path, port)
    try:
        up.wait_for_line("Press Ctrl-C", timeout=120)

        def settled() -> tuple[dict[str, str], set[str]] | None:
            pods = _pods(up)
            phases = {p["metadata"]["name"]: str(p["status"].get("phase")) for p in pods}
            running_new = {n for n, ph in phases.items() if n not in old and ph == "Running"}
            if any(phases.get(n) not in ("Failed", None) for n in old) or len(running_new) == 2:
                return {n: phases.get(n, "gone") for n in old}, running_new
            return None

        old_phases, new_running = up.wait("the replacements Running (or an old pod coming back)", settled,
                                          timeout=90)
        assert set(old_phases.values()) <= {"Failed", "gone"}, old_phases
        assert len(new_running) == 2
    finally:
        up.ctrl_c()
    assert not rt.list({LABEL_NODE: NODE})
