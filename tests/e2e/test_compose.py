"""Issue 5's acceptance: the user's day with the real docker-compose.yml.

From nothing: build the image, ``up``, wait until every service is healthy; the ``certs`` service
wrote the admin's kubeconfig (the CA and a client certificate, server https://127.0.0.1:PORT) into
the configuration directory, and everything below uses only that file: kubectl, mkctl, the official
client and this module's own HTTP client; a request without credentials gets 401; a 4-replica
Deployment applied with mkctl runs as Docker containers on both nodes; kubectl sees the same
objects and reads a pod's logs; kubectl exec, cp and port-forward reach a pod; scale, image change
and rollback; a killed node's pods come back on the other node (and the node, started again,
cleans up after itself); restarting the apiserver, then etcd, loses nothing acknowledged; the example's Service and Ingress carry HTTP from
the host (Ingress, NodePort) and from a pod (the Service's DNS name) to every replica; GitOps: a commit to a Git repository in the
directory the ``gitops`` service mounts at /repos (owned by another user, as a user's repositories
are) is deployed on the Docker nodes by a GitSync, a later commit changes what runs, and a signed
webhook on the published port syncs at once; ``down -v`` leaves no container (pod containers
included), network or volume.

The stack is this module's own compose project, with its own network, subnet, API port, node
names and volume directory, so it runs beside anything else on the engine. The images are the
local ones from ``scripts/build-images --offline`` (no registry is reachable here), through
``docker-compose.offline.yml``, exactly as the README's offline instructions say. Node failure
timings are shortened through the compose file's environment variables.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from cli.processes import free_port
from machinery.kubeconfig import load_config
from tests.dockertest import IMAGE, free_subnet, unusable
from tests.waiting import wait_for as _wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.offline.yml")
SERVICES = ("etcd", "apiserver", "scheduler", "controller-manager", "gitops", "dns", "proxy", "ingress",
            "console", "node-1", "node-2")
IMAGE_V2 = "minik8s/busybox:e2e-v2"  # the same image under another name: the "new version"
LABEL_NODE = "io.minik8s.node"

# The README's example for machines with no registry, as a user would apply it.
DEPLOYMENT = (ROOT / "examples" / "busybox-web.yaml").read_text()
assert f"image: {IMAGE}" in DEPLOYMENT


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    unusable("neither docker-compose nor docker compose is installed")
    raise AssertionError("unreachable")


# Components restart during these tests: any HTTP or connection error only means "not yet".
wait_for = functools.partial(_wait_for, interval=0.5, retry_on=(httpx.HTTPError, OSError))


class Stack:
    def __init__(self, tmp: Path) -> None:
        self.project = f"mk8se2e{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.prefix = f"{self.project}-"
        self.network = f"{self.project}-net"
        self.tmp = tmp
        self.root_dir = tmp / "kubelet"
        self.root_dir.mkdir()
        self.config_dir = tmp / "config"  # MINIK8S_CONFIG_DIR: where `certs` writes admin.kubeconfig
        self.config_dir.mkdir()
        self.repos = tmp / "repos"  # /repos in the gitops container
        self.repos.mkdir()
        self.webhook_port = free_port()
        self.ingress_port = free_port()
        self.console_port = free_port()
        subnet = ipaddress.IPv4Network(free_subnet("192.168.200.0/21"))
        pods, services = subnet.subnets(prefixlen_diff=1)
        self.env = {
            **os.environ,
            "MINIK8S_API_PORT": str(self.port), "MINIK8S_NETWORK": self.network, "MINIK8S_SUBNET": str(subnet),
            "MINIK8S_POD_IP_RANGE": str(pods), "MINIK8S_SERVICE_CIDR": str(services),
            "MINIK8S_CLUSTER_DNS": str(services.network_address + 10), "MINIK8S_INGRESS_PORT": str(self.ingress_port),
            "MINIK8S_CONSOLE_PORT": str(self.console_port),
            "MINIK8S_PROXY_HEALTH_PORT": str(free_port()),
            "MINIK8S_NODE_PREFIX": self.prefix, "MINIK8S_ROOT_DIR": str(self.root_dir),
            "MINIK8S_GITOPS_REPOS": str(self.repos), "MINIK8S_CONFIG_DIR": str(self.config_dir), "MINIK8S_GITOPS_WEBHOOK_PORT": str(self.webhook_port),
            # A dead node: NotReady after 6 s without a lease renewal, its pods evicted 2 s later.
            "MINIK8S_NODE_LEASE_RENEW_INTERVAL": "1", "MINIK8S_NODE_MONITOR_PERIOD": "1",
            "MINIK8S_NODE_MONITOR_GRACE_PERIOD": "6", "MINIK8S_DEFAULT_TOLERATION_SECONDS": "2",
        }
        self.compose_cmd = [*compose_command(), "-p", self.project,
                            *[a for f in COMPOSE_FILES for a in ("-f", str(ROOT / f))]]
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = self.config_dir / "admin.kubeconfig"  # written by the certs service on `up`
        self.node1, self.node2 = f"{self.prefix}node-1", f"{self.prefix}node-2"

    @functools.cached_property
    def http(self) -> httpx.Client:
        """The admin's client over TLS, from the kubeconfig that `up` wrote (the CA and client certificate)."""
        return httpx.Client(base_url=self.url, timeout=30, verify=load_config(kubeconfig=str(self.kubeconfig)).verify)

    # -- running things
    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([*self.compose_cmd, *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert p.returncode == 0, f"compose {' '.join(args)} -> {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
        return p

    def tool(self, name: str, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        exe = shutil.which(name) or name
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.tmp), "KUBECONFIG": str(self.kubeconfig)}
        p = subprocess.run([exe, *args], env=env, cwd=self.tmp, capture_output=True, text=True, timeout=timeout)
        if check:
            assert p.returncode == 0, f"{name} {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def mkctl(self, *args: str, stdin: str | None = None) -> str:
        exe = str(Path(sys.executable).parent / "mkctl")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.tmp), "KUBECONFIG": str(self.kubeconfig)}
        p = subprocess.run([exe, *args], env=env, cwd=self.tmp, input=stdin, capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 0, f"mkctl {' '.join(args)} -> {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p.stdout

    def kubectl(self, *args: str) -> str:
        return self.tool("kubectl", *args).stdout

    def docker(self, *args: str) -> str:
        p = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, f"docker {' '.join(args)}: {p.stderr}"
        return p.stdout

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def diagnostics(self) -> str:
        p = self.compose("logs", "--no-color", "--tail", "40", check=False, timeout=60)
        return f"--- compose logs:\n{p.stdout[-12000:]}"

    # -- state
    def health(self) -> dict[str, str]:
        out = {}
        for s in SERVICES:
            cid = self.container(s)
            out[s] = self.docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}"
                                 "{{.State.Status}}{{end}}", cid).strip() if cid else "missing"
        return out

    def all_healthy(self) -> bool:
        return all(v == "healthy" for v in self.health().values())

    def pods(self, selector: str = "app=web") -> list[dict[str, Any]]:
        r = self.http.get("/api/v1/namespaces/default/pods", params={"labelSelector": selector})
        r.raise_for_status()
        return list(r.json()["items"])

    def live_pods(self) -> list[dict[str, Any]]:
        return [p for p in self.pods() if not p["metadata"].get("deletionTimestamp")
                and p["status"].get("phase") not in ("Succeeded", "Failed")]

    def ready_pods(self, n: int, image: str = IMAGE, selector: str = "app=web") -> list[dict[str, Any]] | None:
        """Exactly ``n`` live pods, all Ready, all running ``image``, nothing else left terminating."""
        pods = self.pods(selector)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if p["status"].get("phase") == "Running" and p["spec"]["containers"][0]["image"] == image
                 and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])]
        return ready if len(ready) == n == len(pods) else None

    def pod_containers(self, node: str) -> list[dict[str, Any]]:
        """Every container of the node, inspected; one removed between the listing and the
        inspection (a kubelet removes a deleted pod's sandbox a moment after the pod) is left out."""
        ids = self.docker("ps", "-aq", "--filter", f"label={LABEL_NODE}={node}").split()
        found = []
        for cid in ids:
            p = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True, timeout=120)
            if p.returncode == 0:
                found += json.loads(p.stdout)
            elif "No such object" not in p.stderr:
                raise AssertionError(f"docker inspect {cid}: {p.stderr}")
        return found


def require_engine_and_images() -> None:
    """An engine that answers and the offline images the stack runs (a missing one fails under CI)."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        unusable("no Docker engine answers")
    for image in (IMAGE, "minik8s/etcd:v3.5.1"):
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            unusable(f"the image {image} is missing (scripts/build-images --offline makes it)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require_engine_and_images()
    s = Stack(tmp_path_factory.mktemp("compose"))
    subprocess.run(["docker", "tag", IMAGE, IMAGE_V2], check=True)
    try:
        yield s
    finally:
        s.compose("down", "-v", "--timeout", "30", check=False)
        for node in (s.node1, s.node2):  # only if a test failed half-way: never leave pods behind
            for c in s.pod_containers(node):
                subprocess.run(["docker", "rm", "-f", c["Id"]], capture_output=True)
        subprocess.run(["docker", "network", "rm", s.network], capture_output=True)
        volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                                  f"label=com.docker.compose.project={s.project}"], capture_output=True, text=True)
        for v in volumes.stdout.split():
            subprocess.run(["docker", "volume", "rm", v], capture_output=True)
        subprocess.run(["docker", "rmi", IMAGE_V2], capture_output=True)
        if "http" in s.__dict__:
            s.http.close()


@pytest.mark.timeout(600)  # the build: one (cached) image build per service, minutes after a source change
def test_build_up_and_everything_healthy(stack: Stack) -> None:
    stack.compose("build", timeout=900)
    stack.compose("up", "-d", timeout=300)
    wait_for(stack.all_healthy, 120, "every service healthy", lambda: f"{stack.health()}\n{stack.diagnostics()}")
    # The one-shot certs service finished and left the admin's kubeconfig, for its owner's eyes only.
    certs = json.loads(stack.docker("inspect", stack.compose("ps", "-a", "-q", "certs").stdout.strip()))[0]
    assert (certs["State"]["Status"], certs["State"]["ExitCode"]) == ("exited", 0)
    info = stack.kubeconfig.stat()
    assert info.st_mode & 0o777 == 0o600 and info.st_uid == stack.config_dir.stat().st_uid
    config = load_config(kubeconfig=str(stack.kubeconfig))
    assert config.server == stack.url and config.ca_data and config.cert_data and config.key_data
    nodes = stack.http.get("/api/v1/nodes").json()["items"]
    ready = {n["metadata"]["name"] for n in nodes
             if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}
    assert ready == {stack.node1, stack.node2}
    # The apiserver is published on loopback only.
    ports = json.loads(stack.docker("inspect", stack.container("apiserver")))[0]["NetworkSettings"]["Ports"]
    assert [b["HostIp"] for b in ports["6443/tcp"]] == ["127.0.0.1"]
    # Over TLS without a credential: 401 as Kubernetes says it; the health endpoints stay anonymous.
    ca = ssl.create_default_context(cadata=config.ca_data.decode())
    r = httpx.get(f"{stack.url}/api/v1/namespaces", verify=ca, timeout=10)
    assert (r.status_code, r.json()["reason"], r.json()["message"]) == (401, "Unauthorized", "Unauthorized"), r.text
    wait_for(lambda: httpx.get(f"{stack.url}/readyz", verify=ca, timeout=10).text == "ok", 30, "anonymous /readyz ok",
             stack.diagnostics)
    # The official client with nothing but KUBECONFIG.
    p = subprocess.run([sys.executable, "-c", "from kubernetes import client, config\nconfig.load_kube_config()\n"
                        "print(' '.join(n.metadata.name for n in client.CoreV1Api().list_node().items))"],
                       env={**os.environ, "KUBECONFIG": str(stack.kubeconfig)}, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0 and set(p.stdout.split()) == {stack.node1, stack.node2}, p.stdout + p.stderr
    # So is the gitops webhook receiver, and gitops installed the GitSync CRD.
    ports = json.loads(stack.docker("inspect", stack.container("gitops")))[0]["NetworkSettings"]["Ports"]
    assert [b["HostIp"] for b in ports["9292/tcp"]] == ["127.0.0.1"]
    assert stack.http.get("/apis/gitops.minik8s.io/v1/gitsyncs").status_code == 200
    # The web console on 127.0.0.1: the README's login (the admin's kubeconfig), then the API through it.
    console = f"http://127.0.0.1:{stack.console_port}"
    with httpx.Client(base_url=console, headers={"Origin": console}, timeout=30) as page:
        assert page.get("/api/v1/nodes").status_code == 401  # nothing without a login
        r = page.post("/console/login", json={"kubeconfig": stack.kubeconfig.read_text()})
        assert r.status_code == 200 and r.json()["username"] == "kubernetes-admin", r.text
        names = {n["metadata"]["name"] for n in page.get("/api/v1/nodes").json()["items"]}
        assert names == {stack.node1, stack.node2}
    ports = json.loads(stack.docker("inspect", stack.container("console")))[0]["NetworkSettings"]["Ports"]
    assert [b["HostIp"] for b in ports["9090/tcp"]] == ["127.0.0.1"]


def test_deployment_runs_on_both_nodes_and_kubectl_sees_it(stack: Stack) -> None:
    manifest = stack.tmp / "web.yaml"
    manifest.write_text(DEPLOYMENT)
    assert "deployment.apps/web created" in stack.mkctl("apply", "-f", str(manifest))
    pods = wait_for(lambda: stack.ready_pods(4), 120, "4 ready pods", stack.diagnostics)
    assert {p["spec"]["nodeName"] for p in pods} == {stack.node1, stack.node2}
    # Each pod is a real Docker container on the engine, labelled with its node, at its pod IP.
    for p in pods:
        containers = [c for c in stack.pod_containers(p["spec"]["nodeName"])
                      if c["Config"]["Labels"].get("io.minik8s.pod.uid") == p["metadata"]["uid"]]
        assert any(c["State"]["Running"] and c["Config"]["Image"] == IMAGE for c in containers), containers
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(stack.env["MINIK8S_SUBNET"])
    # kubectl sees the same objects, and reads a pod's logs through the apiserver and its kubelet.
    names = sorted(p["metadata"]["name"] for p in pods)
    got = json.loads(stack.kubectl("get", "pods", "-l", "app=web", "-o", "json"))
    assert sorted(i["metadata"]["name"] for i in got["items"]) == names
    assert re.search(r"^web\s+4/4\s", stack.kubectl("get", "deployment", "web"), re.M)
    for name in names[:2]:
        assert stack.kubectl("logs", name).splitlines()[0] == f"hello from {name}"
    assert "NAME" in stack.mkctl("get", "pods", "-o", "wide")


def test_exec_cp_and_port_forward_reach_a_compose_pod(stack: Stack) -> None:
    """kubectl exec and port-forward through the apiserver container to a node container's kubelet
    (its credential from the API, the pod's network namespace entered through pid: host)."""
    pods = wait_for(lambda: stack.ready_pods(4), 120, "4 ready pods", stack.diagnostics)
    name = sorted(p["metadata"]["name"] for p in pods)[0]
    p = stack.tool("kubectl", "exec", name, "--", "sh", "-c", "cat /tmp/index.html; exit 3", check=False)
    assert (p.returncode, p.stdout.strip()) == (3, name), p.stderr
    blob = stack.tmp / "blob"
    blob.write_bytes(os.urandom(64 * 1024))
    stack.kubectl("cp", str(blob), f"default/{name}:/tmp/blob")
    stack.kubectl("cp", f"default/{name}:/tmp/blob", str(stack.tmp / "blob.back"))
    assert (stack.tmp / "blob.back").read_bytes() == blob.read_bytes()
    local = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(stack.tmp), "KUBECONFIG": str(stack.kubeconfig)}
    forward = subprocess.Popen([shutil.which("kubectl") or "kubectl", "port-forward", f"pod/{name}", f"{local}:80"],
                               env=env, cwd=stack.tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        assert f"127.0.0.1:{local} -> 80" in line, (line, forward.stderr.read() if forward.poll() is not None else "")
        for _ in range(3):
            assert httpx.get(f"http://127.0.0.1:{local}/index.html", timeout=10).text.strip() == name
    finally:
        forward.terminate()
        forward.wait(10)


def test_every_replica_answers_through_the_ingress_the_nodeport_and_the_service_name(stack: Stack) -> None:
    """The example's Service and Ingress: HTTP from the host's 127.0.0.1 reaches all 4 pods through
    the Ingress controller and through the NodePort; a pod reaches them by the Service's name."""
    names = {p["metadata"]["name"] for p in stack.ready_pods(4) or []}
    assert len(names) == 4
    url = f"http://127.0.0.1:{stack.ingress_port}/"

    def answers(target: str) -> set[str]:
        seen: set[str] = set()
        with httpx.Client(timeout=5) as h:
            for _ in range(40):
                r = h.get(target)
                if r.status_code == 200:
                    seen.add(r.text.strip())
        return seen
    wait_for(lambda: answers(url) == names, 60, "every replica through the Ingress",
             lambda: f"{answers(url)} != {names}\n{stack.diagnostics()}")
    ingress = stack.http.get("/apis/networking.k8s.io/v1/namespaces/default/ingresses/web").json()
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.1"}]
    svc = stack.http.get("/api/v1/namespaces/default/services/web").json()
    assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network(stack.env["MINIK8S_SERVICE_CIDR"])
    node_port = f"http://127.0.0.1:{svc['spec']['ports'][0]['nodePort']}/"
    wait_for(lambda: answers(node_port) == names, 30, "every replica through the NodePort", stack.diagnostics)
    for node in stack.http.get("/api/v1/nodes").json()["items"]:  # and at every node's InternalIP
        ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
        at_node = f"http://{ip}:{svc['spec']['ports'][0]['nodePort']}/"
        wait_for(lambda: answers(at_node) == names, 30, f"every replica through {at_node}", stack.diagnostics)
    # From inside a pod: the cluster DNS name and the ClusterIP (DNAT in the pod's namespace).
    pod = sorted(names)[0]
    cid = next(c["Id"] for node in (stack.node1, stack.node2) for c in stack.pod_containers(node)
               if c["Config"]["Labels"].get("io.minik8s.pod.name") == pod and c["State"]["Running"]
               and c["Config"]["Labels"].get("io.minik8s.role") != "sandbox")

    def from_pod() -> set[str]:
        out = subprocess.run(["docker", "exec", cid, "sh", "-c", "for i in $(seq 30); do timeout 3 wget -qO- "
                              "http://web.default.svc.cluster.local/; done"], capture_output=True, text=True,
                             timeout=120).stdout
        return {line.strip() for line in out.splitlines() if line.strip()}
    wait_for(lambda: from_pod() == names, 30, "every replica by the Service's DNS name from a pod", stack.diagnostics)
    # default/kubernetes reaches the apiserver's TLS port from a pod, by name and through the
    # variables every pod gets (busybox has no TLS client that speaks the apiserver's ciphers: a
    # TCP connection it is; the in-pod official client over TLS is the kubelet's e2e).
    reach = subprocess.run(["docker", "exec", cid, "sh", "-c",
                            "timeout 5 nc kubernetes.default.svc.cluster.local 443 </dev/null && "
                            "timeout 5 nc $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT </dev/null && "
                            "echo $KUBERNETES_SERVICE_PORT"], capture_output=True, text=True, timeout=60)
    assert reach.returncode == 0 and reach.stdout.split() == ["443"], reach.stdout + reach.stderr


def test_scale_image_change_and_rollback(stack: Stack) -> None:
    stack.mkctl("scale", "deployment/web", "--replicas=6")
    wait_for(lambda: stack.ready_pods(6), 120, "6 ready pods", stack.diagnostics)
    manifest = stack.tmp / "web.yaml"
    manifest.write_text(DEPLOYMENT.replace(f"image: {IMAGE}", f"image: {IMAGE_V2}").replace("replicas: 4", "replicas: 6"))
    stack.mkctl("apply", "-f", str(manifest))
    assert "successfully rolled out" in stack.mkctl("rollout", "status", "deployment/web", "--timeout=180s")
    pods = wait_for(lambda: stack.ready_pods(6, IMAGE_V2), 60, "6 pods of the new image", stack.diagnostics)
    for p in pods:
        assert p["status"]["containerStatuses"][0]["image"] == IMAGE_V2
    assert "2" in stack.kubectl("rollout", "history", "deployment/web")
    stack.mkctl("rollout", "undo", "deployment/web")
    assert "successfully rolled out" in stack.kubectl("rollout", "status", "deployment/web", "--timeout=180s")
    wait_for(lambda: stack.ready_pods(6, IMAGE), 60, "6 pods of the old image again", stack.diagnostics)
    stack.mkctl("scale", "deployment/web", "--replicas=4")
    wait_for(lambda: stack.ready_pods(4), 60, "4 pods", stack.diagnostics)


def test_killed_node_pods_come_back_on_the_other_node(stack: Stack) -> None:
    before = stack.ready_pods(4)
    assert before and any(p["spec"]["nodeName"] == stack.node1 for p in before)
    stack.docker("kill", stack.container("node-1"))
    pods = wait_for(lambda: (r := stack.live_pods()) and len(r) == 4 and all(
        p["spec"].get("nodeName") == stack.node2 and p["status"].get("phase") == "Running" for p in r) and r,
        120, "4 running pods, all on node-2", stack.diagnostics)
    assert Counter(p["spec"]["nodeName"] for p in pods) == {stack.node2: 4}
    node1 = stack.http.get(f"/api/v1/nodes/{stack.node1}").json()
    assert {c["type"]: c["status"] for c in node1["status"]["conditions"]}["Ready"] == "Unknown"
    # The node comes back: it deletes the pods that were evicted while it was away, and their containers.
    stack.compose("start", "node-1")
    wait_for(lambda: stack.ready_pods(4), 90, "the evicted pods gone", stack.diagnostics)
    live_uids = {p["metadata"]["uid"] for p in stack.pods()}
    wait_for(lambda: all(c["Config"]["Labels"].get("io.minik8s.pod.uid") in live_uids
                         for c in stack.pod_containers(stack.node1)), 60,
             "node-1's stale containers removed", stack.diagnostics)
    wait_for(stack.all_healthy, 60, "every service healthy again", stack.diagnostics)


def test_apiserver_then_etcd_restart_lose_nothing(stack: Stack) -> None:
    stack.kubectl("create", "configmap", "before-apiserver", "--from-literal=k=1")
    stack.compose("restart", "apiserver", timeout=120)
    wait_for(stack.all_healthy, 120, "healthy after the apiserver restart", stack.diagnostics)
    stack.mkctl("scale", "deployment/web", "--replicas=3")
    wait_for(lambda: stack.ready_pods(3), 90, "3 pods after the apiserver restart", stack.diagnostics)

    stack.kubectl("create", "configmap", "before-etcd", "--from-literal=k=2")
    stack.compose("restart", "etcd", timeout=120)
    wait_for(stack.all_healthy, 120, "healthy after the etcd restart", stack.diagnostics)
    for name in ("before-apiserver", "before-etcd"):
        assert json.loads(stack.kubectl("get", "configmap", name, "-o", "json"))["data"]["k"] in ("1", "2")
    # `up` again runs certs again: it keeps the CA and the admin's certificate (handed-out kubeconfigs stay valid).
    before = stack.kubeconfig.read_bytes()
    stack.compose("up", "-d", timeout=300)
    wrote = f"admin.kubeconfig (server {stack.url})"
    wait_for(lambda: stack.compose("logs", "--no-color", "certs").stdout.count(wrote) >= 2, 60,
             "certs run a second time", stack.diagnostics)
    assert stack.kubeconfig.read_bytes() == before
    # Every component reconnected: the controllers make pods, the scheduler binds, the kubelets run them.
    stack.mkctl("scale", "deployment/web", "--replicas=5")
    pods = wait_for(lambda: stack.ready_pods(5), 120, "5 pods after the etcd restart", stack.diagnostics)
    running = sum(1 for node in (stack.node1, stack.node2) for c in stack.pod_containers(node)
                  if c["State"]["Running"] and c["Config"]["Labels"].get("io.minik8s.role") != "sandbox")
    assert running == len(pods) == 5


def test_statefulset_volume_job_and_metrics_on_the_compose_nodes(stack: Stack) -> None:
    """Issue 12 under compose: the kubelets run in containers, so a local-path volume must be made
    where the host's engine sees it (MINIK8S_ROOT_DIR, mounted at the same path)."""
    manifest = textwrap.dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata: {{name: notes}}
        spec:
          clusterIP: None
          selector: {{app: notes}}
          ports: [{{port: 80}}]
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {{name: notes}}
        spec:
          serviceName: notes
          replicas: 1
          selector: {{matchLabels: {{app: notes}}}}
          template:
            metadata: {{labels: {{app: notes}}}}
            spec:
              containers:
              - name: notes
                image: {IMAGE}
                command: ["sh", "-c", "hostname >> /data/log; cat /data/log; exec sleep 100000"]
                volumeMounts: [{{name: data, mountPath: /data}}]
          volumeClaimTemplates:
          - metadata: {{name: data}}
            spec:
              accessModes: [ReadWriteOnce]
              resources: {{requests: {{storage: 10Mi}}}}
        """)
    stack.mkctl("apply", "-f", "-", stdin=manifest)

    def running(uid_not: str = "") -> dict[str, Any] | None:
        r = stack.http.get("/api/v1/namespaces/default/pods/notes-0")
        pod = r.json() if r.status_code == 200 else None
        if pod and pod["status"].get("phase") == "Running" and pod["metadata"]["uid"] != uid_not \
                and not pod["metadata"].get("deletionTimestamp"):
            return pod
        return None

    first = wait_for(running, 120, "notes-0 running", stack.diagnostics)
    wait_for(lambda: stack.kubectl("logs", "notes-0").split() == ["notes-0"], 30, "the first line")
    claim = stack.http.get("/api/v1/namespaces/default/persistentvolumeclaims/data-notes-0").json()
    assert claim["status"]["phase"] == "Bound"
    pv = stack.http.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}").json()
    path = Path(pv["spec"]["local"]["path"])
    # The volume lives on the host, under the node's directory of MINIK8S_ROOT_DIR.
    assert path.is_relative_to(stack.root_dir / first["spec"]["nodeName"]), path
    assert (path / "log").read_text().split() == ["notes-0"]

    stack.kubectl("delete", "pod", "notes-0")
    wait_for(lambda: running(uid_not=first["metadata"]["uid"]), 120, "notes-0 back", stack.diagnostics)
    wait_for(lambda: stack.kubectl("logs", "notes-0").split() == ["notes-0", "notes-0"], 30,
             "the second pod read the first one's line")

    stack.kubectl("create", "job", "once", f"--image={IMAGE}", "--", "sh", "-c", "echo done")
    stack.tool("kubectl", "wait", "--for=condition=complete", "job/once", "--timeout=120s", timeout=130)
    # metrics.k8s.io: the apiserver scrapes the kubelet in its container.
    top = wait_for(lambda: (p := stack.tool("kubectl", "top", "pod", "notes-0", check=False)).returncode == 0
                   and p.stdout, 60, "kubectl top pod", stack.diagnostics)
    assert "notes-0" in top


def hello(replicas: int, image: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: hello
          labels: {{app: hello}}
        spec:
          replicas: {replicas}
          selector:
            matchLabels: {{app: hello}}
          template:
            metadata:
              labels: {{app: hello}}
            spec:
              containers:
              - name: hello
                image: {image}
                command: ["sh", "-c", "echo ok > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
                ports:
                - containerPort: 80
                readinessProbe:
                  httpGet: {{path: /, port: 80}}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: hello
        spec:
          selector: {{app: hello}}
          ports:
          - port: 80
        """)


class Repo:
    """A Git repository under the directory the gitops service mounts at /repos."""

    def __init__(self, stack: Stack, name: str) -> None:
        self.root = stack.repos / name
        self.url = f"file:///repos/{name}"  # as the gitops container sees it
        gitconfig = stack.tmp / "gitconfig"
        # Our own commits into a repository that another user owns: git asks for safe.directory.
        gitconfig.write_text("[safe]\n\tdirectory = *\n")
        self.env = {"PATH": os.environ.get("PATH", ""), "HOME": str(stack.tmp), "GIT_CONFIG_NOSYSTEM": "1",
                    "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_AUTHOR_NAME": "test",
                    "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_NAME": "test",
                    "GIT_COMMITTER_EMAIL": "test@example.com"}
        self.root.mkdir()
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        p = subprocess.run(["git", *args], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, f"git {' '.join(args)}: {p.stderr}"
        return p.stdout.strip()

    def commit(self, files: dict[str, str]) -> str:
        for path, text in files.items():
            (self.root / path).parent.mkdir(parents=True, exist_ok=True)
            (self.root / path).write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "change")
        return self.git("rev-parse", "HEAD")

    def give_away(self) -> None:
        """Owned by nobody, like a user's repository is owned by the user and not by the container's root."""
        if os.geteuid() == 0:
            for d, dirs, files in os.walk(self.root):
                for n in [d, *(os.path.join(d, f) for f in dirs + files)]:
                    os.lchown(n, 65534, 65534)


def test_gitops_deploys_commits_on_the_docker_nodes(stack: Stack) -> None:
    repo = Repo(stack, "shop")
    sha1 = repo.commit({"deploy/hello.yaml": hello(2, IMAGE)})
    repo.give_away()
    base = "/apis/gitops.minik8s.io/v1/namespaces/default/gitsyncs"
    secret = b"e2e-hook-token"
    r = stack.http.post("/api/v1/namespaces/default/secrets", json={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-hook"},
        "stringData": {"token": secret.decode()}})
    assert r.status_code == 201, r.text
    # A generous health timeout: a slow machine must not look like an unhealthy revision (rolled back).
    r = stack.http.post(base, json={
        "apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync", "metadata": {"name": "shop"},
        "spec": {"url": repo.url, "ref": {"branch": "main"}, "path": "deploy", "interval": "2s", "timeout": "5m",
                 "webhook": {"secretRef": {"name": "shop-hook"}}}})
    assert r.status_code == 201, r.text

    def applied(sha: str) -> dict[str, Any] | None:
        status = stack.http.get(f"{base}/shop").json().get("status") or {}
        return status if str(status.get("lastAppliedRevision", "")).endswith(sha) else None

    def gitops_diagnostics() -> str:
        return f"GitSync: {stack.http.get(f'{base}/shop').text}\n{stack.diagnostics()}"

    wait_for(lambda: applied(sha1), 90, f"revision {sha1[:7]} applied", gitops_diagnostics)
    pods = wait_for(lambda: stack.ready_pods(2, selector="app=hello"), 120, "2 ready hello pods", gitops_diagnostics)
    # Real containers on the compose nodes.
    for p in pods:
        node = p["spec"]["nodeName"]
        assert node in (stack.node1, stack.node2)
        assert any(c["State"]["Running"] and c["Config"]["Labels"].get("io.minik8s.pod.uid") == p["metadata"]["uid"]
                   for c in stack.pod_containers(node))
    assert stack.http.get("/api/v1/namespaces/default/services/hello").status_code == 200

    # The next commit (found by polling): one more replica and a new image, rolled out.
    sha2 = repo.commit({"deploy/hello.yaml": hello(3, IMAGE_V2)})
    wait_for(lambda: applied(sha2), 60, f"revision {sha2[:7]} applied", gitops_diagnostics)
    pods = wait_for(lambda: stack.ready_pods(3, IMAGE_V2, selector="app=hello"), 180,
                    "3 ready hello pods of the new image", gitops_diagnostics)
    assert {p["spec"]["nodeName"] for p in pods} <= {stack.node1, stack.node2}

    # A push webhook on the published port syncs at once: polling is now hourly.
    r = stack.http.patch(f"{base}/shop", json={"spec": {"interval": "1h"}},
                         headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    generation = r.json()["metadata"]["generation"]
    wait_for(lambda: (stack.http.get(f"{base}/shop").json().get("status") or {}).get("observedGeneration") == generation,
             60, "the hourly interval observed", gitops_diagnostics)
    sha3 = repo.commit({"deploy/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n"
                                                "data:\n  greeting: hi\n"})
    body = b'{"ref": "refs/heads/main"}'
    hook = f"http://127.0.0.1:{stack.webhook_port}/hooks/default/shop"
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    bad = hmac.new(b"wrong", body, hashlib.sha256).hexdigest()
    assert httpx.post(hook, content=body, headers={**headers, "X-Hub-Signature-256": f"sha256={bad}"}).status_code == 401
    good = hmac.new(secret, body, hashlib.sha256).hexdigest()
    started = time.monotonic()
    r = httpx.post(hook, content=body, headers={**headers, "X-Hub-Signature-256": f"sha256={good}"})
    assert r.status_code == 202, r.text
    wait_for(lambda: applied(sha3), 60, f"revision {sha3[:7]} applied after the webhook", gitops_diagnostics)
    assert stack.http.get("/api/v1/namespaces/default/configmaps/hello").json()["data"] == {"greeting": "hi"}
    print(f"webhook to applied: {time.monotonic() - started:.1f}s")

    # A commit that removes the Deployment and the Service prunes them, which leaves the nodes as
    # the next test expects them; then the GitSync goes (it leaves the ConfigMap).
    repo.git("rm", "-q", "deploy/hello.yaml")
    sha4 = repo.commit({})
    r = httpx.post(hook, content=body, headers={**headers, "X-Hub-Signature-256": f"sha256={good}"})
    assert r.status_code == 202, r.text
    wait_for(lambda: applied(sha4), 60, f"revision {sha4[:7]} applied", gitops_diagnostics)
    # Terminating is enough (httpd ignores SIGTERM: its grace period runs), as for the web pods below.
    wait_for(lambda: stack.http.get("/apis/apps/v1/namespaces/default/deployments/hello").status_code == 404
             and all(p["metadata"].get("deletionTimestamp") for p in stack.pods("app=hello")),
             120, "the hello Deployment and its pods pruned", gitops_diagnostics)
    assert stack.http.get("/api/v1/namespaces/default/services/hello").status_code == 404
    assert stack.http.delete(f"{base}/shop").status_code == 200


def test_down_v_leaves_nothing(stack: Stack) -> None:
    # Some pods are still terminating when `down` comes (httpd ignores SIGTERM: their 30 s grace
    # period runs), some run: the nodes' graceful shutdown must take both within its own 15 s.
    stack.mkctl("scale", "deployment/web", "--replicas=2")
    wait_for(lambda: any(p["metadata"].get("deletionTimestamp") for p in stack.pods()), 30, "pods terminating")
    stack.compose("down", "-v", timeout=180)
    left = stack.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={stack.project}").split()
    assert left == []
    for node in (stack.node1, stack.node2):
        assert stack.pod_containers(node) == [], f"pod containers of {node} left"
    assert subprocess.run(["docker", "network", "inspect", stack.network], capture_output=True).returncode != 0
    volumes = stack.docker("volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={stack.project}")
    assert volumes.split() == []
