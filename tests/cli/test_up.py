"""``minik8s up``: starts etcd + the control plane + gitops + simulated nodes, writes a kubeconfig kubectl
can use, gitops applies the repository of ``--gitops-repo``, Ctrl-C leaves nothing running; without a
Docker engine (and without ``--simulated``) it says so and starts nothing. The Docker node is
tests/e2e/test_up_docker.py."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from cli.up import UpSettings, _ready_nodes, default_node_name, settings_problem
from tests.cluster import free_port
from tests.gitops.gitrepo import GitRepo
from tests.waiting import wait_for


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
    port, ingress_port = free_port(), free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    repo = GitRepo.create(tmp_path)
    repo.write("deploy/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git\ndata:\n  k: v1\n")
    repo.commit()
    proc = subprocess.Popen([sys.executable, "-m", "cli.minik8s", "up", "--simulated", "--nodes", "2",
                             "--port", str(port), "--data-dir", str(tmp_path / "mk"),
                             "--gitops-repo", repo.url, "--gitops-path", "deploy",
                             "--ingress-port", str(ingress_port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env, text=True)
    children: list[int] = []
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        out = "".join(lines)
        assert f"http://127.0.0.1:{port}" in out, out
        assert "minik8s-node-0 ... minik8s-node-1: 2 simulated" in out, out
        kubeconfig = tmp_path / "mk" / "kubeconfig"
        assert yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"] == f"http://127.0.0.1:{port}"
        assert (tmp_path / ".kube" / "config").exists()  # written because HOME had none
        env_k = {**env, "KUBECONFIG": str(kubeconfig)}
        r = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True,
                           env=env_k, timeout=60)
        assert r.returncode == 0 and "namespace/default" in r.stdout, r.stderr
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        # etcd, apiserver, scheduler, controller-manager, gitops, kubelet, proxy, ingress (dns runs with a
        # Docker node only: it listens on the pod network).
        assert len(children) == 8
        assert "ingress" in out and f"http://127.0.0.1:{ingress_port}" in out, out
        # The Ingress controller answers (404: no Ingress yet) and made the default IngressClass.
        assert httpx.get(f"http://127.0.0.1:{ingress_port}/", timeout=5).status_code == 404
        assert httpx.get(f"http://127.0.0.1:{port}/apis/networking.k8s.io/v1/ingressclasses/minik8s").status_code == 200
        # up printed its summary only once the nodes were Ready.
        nodes = json.loads(subprocess.run(["kubectl", "get", "nodes", "-o", "json"], capture_output=True, text=True,
                                          env=env_k, timeout=60).stdout)["items"]
        ready = {n["metadata"]["name"] for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
        assert ready == {"minik8s-node-0", "minik8s-node-1"}
        # The whole control plane works: a pod gets scheduled onto a simulated node and runs.
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
        # gitops serves the GitSync CRD, follows --gitops-repo and listens for webhooks on loopback.
        webhook = re.search(r"webhooks: +(http://127\.0\.0\.1:\d+)/hooks/", out)
        assert webhook and httpx.get(f"{webhook[1]}/healthz", timeout=5).status_code == 200, out
        assert httpx.get(f"http://127.0.0.1:{port}/apis/gitops.minik8s.io/v1/gitsyncs").status_code == 200
        cm = wait_for(lambda: (r := httpx.get(f"http://127.0.0.1:{port}/api/v1/namespaces/default/configmaps/"
                                             "from-git")).status_code == 200 and r.json(),
                      60, "the ConfigMap of --gitops-repo", lambda: (tmp_path / "mk" / "logs" / "gitops.log").read_text())
        assert cm["data"] == {"k": "v1"}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(c) for c in children)
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        raise AssertionError("apiserver still answering after Ctrl-C")
    except httpx.HTTPError:
        pass


def test_without_a_docker_engine_up_says_so_and_starts_nothing(tmp_path: Path) -> None:
    data = tmp_path / "mk"
    p = subprocess.run([sys.executable, "-m", "cli.minik8s", "up", "--port", str(free_port()), "--data-dir", str(data),
                        "--runtime-endpoint", f"unix://{tmp_path}/no-docker.sock"],
                       capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout == ""
    assert "runs its node on a Docker engine, and none answers" in p.stderr
    assert "--simulated" in p.stderr
    assert not data.exists()  # checked before etcd started: no data, no logs, no children


@pytest.mark.parametrize(("settings", "problem"), [
    (UpSettings(), None),
    (UpSettings(nodes=0), None),
    (UpSettings(simulated=True, nodes=100), None),
    (UpSettings(nodes=2), "--nodes N > 1 needs --simulated"),
    (UpSettings(simulated=True, nodes=-1), "--nodes must be 0 or more"),
])
def test_settings_problems(settings: UpSettings, problem: str | None) -> None:
    got = settings_problem(settings)
    assert (got is None) if problem is None else (got is not None and got.startswith(problem))


def test_several_docker_nodes_are_refused_before_anything_starts(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "cli.minik8s", "up", "--nodes", "3", "--data-dir", str(tmp_path / "mk")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "needs --simulated" in p.stderr
    assert not (tmp_path / "mk").exists()


def test_the_node_is_named_after_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "Build_Box.Example.ORG")
    assert default_node_name() == "build-box.example.org"
    monkeypatch.setattr("socket.gethostname", lambda: "___")
    assert default_node_name() == "minik8s-node"


def _node(name: str, ready: str, message: str = "") -> dict[str, object]:
    return {"metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": ready, "message": message}]}}


def _lease(name: str, renewed: str) -> dict[str, object]:
    return {"metadata": {"name": name}, "spec": {"renewTime": renewed}}


def test_a_node_counts_only_once_this_run_renewed_its_lease() -> None:
    """A Node left Ready (or NotReady) by an earlier run says nothing about this run's kubelet."""
    nodes = [_node("a", "True"), _node("b", "True"), _node("c", "False", "container runtime is down: boom"),
             _node("old", "False", "stale"), _node("other", "True")]
    leases = [_lease("a", "2026-01-01T10:00:05.000000Z"), _lease("b", "2026-01-01T09:00:00.000000Z"),
              _lease("c", "2026-01-01T10:00:01.500000Z"), _lease("old", "2026-01-01T08:00:00.000000Z"),
              _lease("other", "2026-01-01T10:00:05.000000Z")]

    def answer(request: httpx.Request) -> httpx.Response:
        items = leases if "leases" in request.url.path else nodes
        return httpx.Response(200, json={"items": items})

    started = datetime(2026, 1, 1, 10, 0, 0, tzinfo=timezone.utc).timestamp()
    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://x") as http:
        ready, complaints = _ready_nodes(http, {"a", "b", "c", "old"}, started)
    assert ready == {"a"}
    assert complaints == {"c": "container runtime is down: boom"}
