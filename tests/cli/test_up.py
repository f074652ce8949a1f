"""``minik8s up``: starts etcd + the control plane + gitops + simulated nodes over TLS, writes a
kubeconfig (the cluster CA and the admin's client certificate) that kubectl, mkctl and the official
client use unchanged, answers 401 without credentials, gitops applies the repository of
``--gitops-repo``, Ctrl-C leaves nothing running; without a Docker engine (and without
``--simulated``) it says so and starts nothing. The Docker node is tests/e2e/test_up_docker.py."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
import yaml

from cli.up import UpSettings, settings_problem
from cli.upcerts import prepare
from cli.upnodes import default_node_name, ready_nodes
from machinery.kubeconfig import load_config
from machinery.pki import subject_alt_names
from tests.cluster import free_port
from tests.gitops.gitrepo import GitRepo
from tests.waiting import wait_for


# What a user of the official client writes: the kubeconfig of KUBECONFIG, nothing else.
OFFICIAL_CLIENT = """
from kubernetes import client, config
config.load_kube_config()
print(" ".join(n.metadata.name for n in client.CoreV1Api().list_namespace().items))
"""


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
    port, ingress_port, console_port = free_port(), free_port(), free_port()
    env = {**os.environ, "HOME": str(tmp_path)}
    repo = GitRepo.create(tmp_path)
    repo.write("deploy/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git\ndata:\n  k: v1\n")
    repo.commit()
    proc = subprocess.Popen([sys.executable, "-m", "cli.minik8s", "up", "--simulated", "--nodes", "2",
                             "--port", str(port), "--data-dir", str(tmp_path / "mk"),
                             "--gitops-repo", repo.url, "--gitops-path", "deploy",
                             "--ingress-port", str(ingress_port), "--console-port", str(console_port)],
                            stdout=subprocess.PIPE,
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
        assert f"apiserver:    https://127.0.0.1:{port} (TLS" in out, out
        assert "minik8s-node-0 ... minik8s-node-1: 2 simulated" in out, out
        kubeconfig = tmp_path / "mk" / "kubeconfig"
        doc = yaml.safe_load(kubeconfig.read_text())
        assert doc["clusters"][0]["cluster"]["server"] == f"https://127.0.0.1:{port}"
        assert doc["clusters"][0]["cluster"]["certificate-authority-data"]
        assert doc["users"][0]["user"]["client-certificate-data"] and doc["users"][0]["user"]["client-key-data"]
        assert kubeconfig.stat().st_mode & 0o077 == 0  # the admin's key: the user's eyes only
        assert (tmp_path / ".kube" / "config").exists()  # written because HOME had none
        env_k = {**env, "KUBECONFIG": str(kubeconfig)}
        r = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True,
                           env=env_k, timeout=60)
        assert r.returncode == 0 and "namespace/default" in r.stdout, r.stderr
        # mkctl and the official client with the same kubeconfig, over TLS, unchanged.
        r = subprocess.run([sys.executable, "-m", "cli.mkctl", "get", "namespaces", "-o", "name"], capture_output=True,
                           text=True, env=env_k, timeout=60)
        assert r.returncode == 0 and "namespace/default" in r.stdout, r.stdout + r.stderr
        r = subprocess.run([sys.executable, "-c", OFFICIAL_CLIENT], capture_output=True, text=True, env=env_k,
                           timeout=60)
        assert r.returncode == 0 and "default" in r.stdout.split(), r.stdout + r.stderr
        admin = httpx.Client(base_url=f"https://127.0.0.1:{port}", timeout=10,
                             verify=load_config(kubeconfig=str(kubeconfig)).verify)
        # Without credentials (the CA trusted, no certificate): 401, except the health endpoints.
        ca = ssl.create_default_context(cafile=str(tmp_path / "mk" / "pki" / "ca.crt"))
        anonymous = httpx.get(f"https://127.0.0.1:{port}/api/v1/namespaces", verify=ca, timeout=10)
        assert anonymous.status_code == 401, anonymous.text
        assert (anonymous.json()["reason"], anonymous.json()["message"]) == ("Unauthorized", "Unauthorized")
        assert httpx.get(f"https://127.0.0.1:{port}/readyz", verify=ca, timeout=10).status_code == 200
        # Every request lands in the audit log.
        assert (tmp_path / "mk" / "logs" / "audit.log").stat().st_size > 0
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        # etcd, apiserver, scheduler, controller-manager, gitops, kubelet, proxy, ingress, console (dns
        # runs with a Docker node only: it listens on the pod network).
        assert len(children) == 9
        # The web console, and a login with the kubeconfig up wrote (its embedded admin certificate).
        assert f"http://127.0.0.1:{console_port}" in out, out
        console = f"http://127.0.0.1:{console_port}"
        with httpx.Client(base_url=console, headers={"Origin": console}, timeout=10) as page:
            r = page.post("/console/login", json={"kubeconfig": (tmp_path / "mk" / "kubeconfig").read_text()})
            assert r.status_code == 200 and r.json()["username"] == "kubernetes-admin", r.text
            assert len(page.get("/api/v1/nodes").json()["items"]) == 2
        assert "ingress" in out and f"http://127.0.0.1:{ingress_port}" in out, out
        # The Ingress controller answers (404: no Ingress yet) and made the default IngressClass.
        assert httpx.get(f"http://127.0.0.1:{ingress_port}/", timeout=5).status_code == 404
        assert admin.get("/apis/networking.k8s.io/v1/ingressclasses/minik8s").status_code == 200
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
        assert admin.get("/apis/gitops.minik8s.io/v1/gitsyncs").status_code == 200
        cm = wait_for(lambda: (r := admin.get("/api/v1/namespaces/default/configmaps/from-git")).status_code == 200
                      and r.json(),
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
        httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=1, verify=False)
        raise AssertionError("apiserver still answering after Ctrl-C")
    except httpx.HTTPError:
        pass


def test_the_pki_is_made_once_and_every_component_gets_its_own_kubeconfig(tmp_path: Path) -> None:
    """A second ``up`` keeps the CA (kubeconfigs written before stay valid); a new host is added to
    the serving certificate; each component's kubeconfig names its own user."""
    server = "https://127.0.0.1:6443"
    first = prepare(tmp_path, server=server, hosts=["172.28.0.1"], nodes=["n1"], service_cidr="172.28.128.0/17")
    ca = first.pki.ca_cert.read_bytes()
    again = prepare(tmp_path, server=server, hosts=["172.28.0.1", "10.0.0.1"], nodes=["n1"],
                    service_cidr="172.28.128.0/17")
    assert again.pki.ca_cert.read_bytes() == ca
    assert {"127.0.0.1", "172.28.0.1", "172.28.128.1", "10.0.0.1"} <= subject_alt_names(
        again.pki.apiserver_cert.read_bytes())
    for who, args in (("scheduler", again.component_args("scheduler")), ("node-n1", again.kubelet_args("n1")),
                      ("admin", again.kubelet_args(None))):
        assert args == ["--kubeconfig", str(tmp_path / f"{who}.kubeconfig")]
        doc = yaml.safe_load((tmp_path / f"{who}.kubeconfig").read_text())
        assert doc["clusters"][0]["cluster"]["server"] == server
    flags = again.apiserver_args(secure_port=7443, logs=tmp_path / "logs")
    assert flags[:4] == ["--secure-port", "7443", "--insecure-port", "0"]
    assert "--client-ca-file" in flags and "--audit-log-path" in flags and "--encryption-provider-config" in flags


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
        ready, complaints = ready_nodes(http, {"a", "b", "c", "old"}, started)
    assert ready == {"a"}
    assert complaints == {"c": "container runtime is down: boom"}
