"""``minik8s up``: starts etcd + apiserver, writes a kubeconfig kubectl can use, Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from tests.cluster import free_port


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_up_runs_a_cluster_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "cli.minik8s", "up", "--port", str(port),
                             "--data-dir", str(tmp_path / "mk")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}" in out, out
        kubeconfig = tmp_path / "mk" / "kubeconfig"
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        assert (tmp_path / ".kube" / "config").exists()  # written because HOME had none
        r = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True,
                           env={**env, "KUBECONFIG": str(kubeconfig)}, timeout=60)
        assert r.returncode == 0 and "namespace/default" in r.stdout, r.stderr
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        assert len(children) == 5  # etcd, apiserver, scheduler, controller-manager, kubelet
        # The whole control plane works: a pod gets scheduled onto the simulated node and runs.
        env_k = {**env, "KUBECONFIG": str(kubeconfig)}
        r = subprocess.run(["kubectl", "run", "hello", "--image=busybox"], capture_output=True, text=True,
                           env=env_k, timeout=60)
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 60
        phase = ""
        while time.monotonic() < deadline and phase != "Running":
            phase = subprocess.run(["kubectl", "get", "pod", "hello", "-o", "jsonpath={.status.phase}"],
                                   capture_output=True, text=True, env=env_k, timeout=60).stdout
            time.sleep(0.5)
        assert phase == "Running"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(c) for c in children)
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        raise AssertionError("apiserver still answering after Ctrl-C")
    except httpx.HTTPError:
        pass
