"""Issue 4's acceptance, end to end: pods become Docker containers on two real kubelets.

This module's own cluster: etcd, apiserver, scheduler and controller-manager processes, and two
``minik8s kubelet`` processes (nodes ``dk-1`` and ``dk-2``, each with its own ``--kubelet-port``)
sharing this machine's Docker engine and the pod network ``minik8s-pods`` (172.28.0.0/16). It is
driven by the real ``kubectl``. Every test works in its own namespace; every container the
kubelets make carries the node label, and the fixture removes them by that label (before, in
case an earlier run was killed, and after).

Without an engine (or the image of scripts/build-images) the module fails when ``CI`` is set
and skips with the reason otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import queue
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from kubelet.runtime import (
    LABEL_NODE, LABEL_POD_NAMESPACE, LABEL_POD_UID, LABEL_ROLE, ROLE_CONTAINER, ContainerInfo, DockerRuntime,
)
from machinery.kubeconfig import write_kubeconfig
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.dockertest import IMAGE, checked_runtime
from tests.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NODES = ("dk-1", "dk-2")
POD_NET = ipaddress.IPv4Network("172.28.0.0/16")
LEASE = ("--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2")
# A kubelet restart must not look like a dead node: a generous grace period, no evictions.
NODE_TIMINGS = ("--node-monitor-period", "0.5", "--node-monitor-grace-period", "15",
                "--default-toleration-seconds", "300")
CAPACITY = "cpu=2,memory=4Gi,pods=20"


def _clean(rt: DockerRuntime) -> None:
    for node in NODES:
        for c in rt.list({LABEL_NODE: node}):
            try:
                rt.remove(c.id, force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass


class Cluster:
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.rt = rt
        self.etcd = Etcd.start()
        self.procs: list[ComponentProcess] = []
        try:
            self.api = ApiServerProcess.start(self.etcd.url)
            self.url = self.api.url
            self.kubeconfig = tmp / "kubeconfig"
            write_kubeconfig(self.kubeconfig, server=self.url)
            self.home = tmp
            self.data = tmp / "kubelets"
            self.http = httpx.Client(base_url=self.url, timeout=30)
            self.ports = {n: free_port() for n in NODES}
            self.kubelets = {n: self.kubelet(n) for n in NODES}
            self.scheduler = ComponentProcess.start("scheduler", "--server", self.url, *LEASE)
            self.cm = ComponentProcess.start("controller-manager", "--server", self.url, *LEASE, *NODE_TIMINGS)
            self.procs += [self.scheduler, self.cm]
        except BaseException:
            self.stop()
            raise

    def kubelet(self, node: str) -> ComponentProcess:
        p = ComponentProcess.start("kubelet", "--server", self.url, "--node-name", node, "--capacity", CAPACITY,
                                   "--lease-renew-interval", "0.5", "--kubelet-port", str(self.ports[node]),
                                   "--sync-interval", "0.5")
        self.procs.append(p)
        return p

    def restart_kubelet(self, node: str) -> ComponentProcess:
        self.kubelets[node] = self.kubelet(node)
        return self.kubelets[node]

    # -- helpers
    def kubectl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(["kubectl", *args], capture_output=True, text=True, env=self.kubectl_env(), timeout=timeout)
        if check:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}\n{p.stderr}\n{self.diagnostics()}"
        return p

    def kubectl_env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}

    def diagnostics(self) -> str:
        parts = []
        for proc in self.procs[-6:]:
            parts.append(f"--- {proc.name} {' '.join(proc.args[-12:])} (exit {proc.proc.poll()}):\n"
                         f"{proc.logs()[-3000:]}")
        return "\n".join(parts)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_for(check, timeout, what, self.diagnostics)

    def namespace(self) -> str:
        name = f"dk-{uuid.uuid4().hex[:8]}"
        assert self.http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        return name

    def pod(self, ns: str, name: str) -> dict[str, Any] | None:
        r = self.http.get(f"/api/v1/namespaces/{ns}/pods/{name}")
        return dict(r.json()) if r.status_code == 200 else None

    def pods(self, ns: str) -> list[dict[str, Any]]:
        return list(self.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"])

    def create_pod(self, ns: str, name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
                "spec": {"containers": containers, **spec}}
        r = self.http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def running(self, ns: str, name: str, *, ready: bool | None = True, timeout: float = 30) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            p = self.pod(ns, name)
            if not p or (p.get("status") or {}).get("phase") != "Running":
                return None
            if ready is not None and is_ready(p) != ready:
                return None
            return p

        return dict(self.wait(f"pod {ns}/{name} Running (ready={ready})", check, timeout))

    def events(self, ns: str, name: str) -> list[dict[str, Any]]:
        items = self.http.get(f"/api/v1/namespaces/{ns}/events",
                              params={"fieldSelector": f"involvedObject.name={name}"}).json()["items"]
        return list(items)

    def containers(self, ns: str) -> list[ContainerInfo]:
        """The running app containers of a namespace, from the engine."""
        return [c for c in self.rt.list({LABEL_POD_NAMESPACE: ns, LABEL_ROLE: ROLE_CONTAINER}) if c.running]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if hasattr(self, "http"):
            self.http.close()
        if hasattr(self, "api"):
            self.api.stop()
        self.etcd.stop()


def is_ready(pod: dict[str, Any]) -> bool:
    conds = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "True"


def cstatus(pod: dict[str, Any] | None) -> dict[str, Any]:
    return dict((((pod or {}).get("status") or {}).get("containerStatuses") or [{}])[0])


def container_id(pod: dict[str, Any]) -> str:
    return str(cstatus(pod).get("containerID", "")).removeprefix("docker://")


def node_ready(c: Cluster, node: str) -> bool:
    r = c.http.get(f"/api/v1/nodes/{node}")
    if r.status_code != 200:
        return False
    conds = {x["type"]: x["status"] for x in (r.json().get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "True"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    rt = checked_runtime()
    _clean(rt)
    c = Cluster(tmp_path_factory.mktemp("docker-kubelet"), rt)
    try:
        c.wait("both Docker nodes Ready", lambda: all(node_ready(c, n) for n in NODES), 60)
        yield c
    finally:
        c.stop()
        _clean(rt)
        rt.close()


@pytest.fixture
def ns(cluster: Cluster) -> Iterator[str]:
    name = cluster.namespace()
    yield name
    cluster.http.delete(f"/api/v1/namespaces/{name}")


def sleeper(name: str = "app", script: str = "while true; do sleep 1; done") -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": ["sh", "-c", script]}


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        command: ["sh", "-c", "mkdir -p /www && echo hello-from-$HOSTNAME > /www/index.html && exec httpd -f -p 8080 -h /www"]
        ports:
        - containerPort: 8080
"""


def test_deployment_runs_as_containers_on_both_nodes(cluster: Cluster, ns: str) -> None:
    p = subprocess.run(["kubectl", "apply", "-f", "-"], input=DEPLOYMENT.format(ns=ns, image=IMAGE),
                       capture_output=True, text=True, env=cluster.kubectl_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    cluster.kubectl("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s", timeout=70)

    pods = [x for x in cluster.pods(ns) if (x.get("status") or {}).get("phase") == "Running"]
    assert len(pods) == 3, pods
    assert all(is_ready(x) for x in pods)
    running = cluster.containers(ns)
    assert len(running) == 3, running
    assert {c.labels[LABEL_NODE] for c in running} == set(NODES)
    assert {c.pod_uid for c in running} == {x["metadata"]["uid"] for x in pods}
    ips = [str(x["status"]["podIP"]) for x in pods]
    assert all(ipaddress.IPv4Address(ip) in POD_NET for ip in ips), ips
    assert len(set(ips)) == 3
    assert {x["spec"]["nodeName"] for x in pods} == set(NODES)
    for x in pods:
        node = cluster.http.get(f"/api/v1/nodes/{x['spec']['nodeName']}").json()
        assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == cluster.ports[x["spec"]["nodeName"]]
    # The pod network is reachable from this host: one pod answers HTTP.
    with httpx.Client(trust_env=False, timeout=3) as h:
        body = cluster.wait("an HTTP answer from a pod IP", lambda: _get(h, f"http://{ips[0]}:8080/"), 15)
    assert body.startswith("hello-from-"), body


def _get(h: httpx.Client, url: str) -> str | None:
    try:
        r = h.get(url)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None


def test_liveness_restarts_and_readiness_gates(cluster: Cluster, ns: str) -> None:
    # Liveness: /www/healthz disappears 3 s after each start, the probe then fails.
    live = cluster.create_pod(ns, "live", [{
        **sleeper("web", "mkdir -p /www; echo ok > /www/healthz; (sleep 3; rm /www/healthz) & "
                         "exec httpd -f -p 8080 -h /www"),
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 1,
                          "failureThreshold": 1, "timeoutSeconds": 1}}], terminationGracePeriodSeconds=1)
    # Readiness: an exec probe that fails until /tmp/ready exists.
    cluster.create_pod(ns, "ready", [{
        **sleeper("app"),
        "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]}, "periodSeconds": 1}}],
        terminationGracePeriodSeconds=1)

    not_ready = cluster.running(ns, "ready", ready=False)
    st = cstatus(not_ready)
    assert st["ready"] is False and st["started"] is True and st["restartCount"] == 0

    restarted = cluster.wait("the liveness restart", lambda: (cstatus(cluster.pod(ns, "live")).get("restartCount")
                                                               or 0) >= 1, 30)
    assert restarted
    reasons = {(e["reason"], e["type"]) for e in cluster.events(ns, "live")}
    cluster.wait("Unhealthy and Killing events", lambda: {("Unhealthy", "Warning"), ("Killing", "Normal")} <= {
        (e["reason"], e["type"]) for e in cluster.events(ns, "live")}, 10)
    killing = [e["message"] for e in cluster.events(ns, "live") if e["reason"] == "Killing"]
    assert any("failed liveness probe, will be restarted" in m for m in killing), (killing, reasons)
    assert live["metadata"]["uid"] == cluster.pod(ns, "live")["metadata"]["uid"]  # type: ignore[index]

    # The readiness pod failed its probe many times by now and was never restarted.
    cluster.wait("readiness failure events", lambda: any(
        e["reason"] == "Unhealthy" and "Readiness probe failed" in e["message"] for e in cluster.events(ns, "ready")),
        10)
    pod = cluster.pod(ns, "ready")
    assert pod is not None and not is_ready(pod) and cstatus(pod)["restartCount"] == 0
    assert pod["status"]["phase"] == "Running"
    res = cluster.rt.exec(container_id(pod), ["touch", "/tmp/ready"], timeout=5)
    assert res.exit_code == 0
    ready = cluster.running(ns, "ready", ready=True, timeout=15)
    assert cstatus(ready)["ready"] is True and cstatus(ready)["restartCount"] == 0
    assert container_id(ready) == container_id(pod)


def test_kubectl_logs_and_follow(cluster: Cluster, ns: str) -> None:
    cluster.create_pod(ns, "talker", [sleeper("app", "echo first-line; echo second-line; while true; do "
                                                     "if [ -f /tmp/go ]; then echo late-line; rm /tmp/go; fi; "
                                                     "sleep 0.2; done")], terminationGracePeriodSeconds=1)
    pod = cluster.running(ns, "talker")
    out = cluster.wait("kubectl logs", lambda: (lambda p: p.stdout if p.returncode == 0 and "second-line" in p.stdout
                                                else None)(cluster.kubectl("logs", "talker", "-n", ns, check=False)),
                       15)
    assert out.splitlines()[:2] == ["first-line", "second-line"]

    follower = subprocess.Popen(["kubectl", "logs", "-f", "talker", "-n", ns], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=cluster.kubectl_env())
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for x in follower.stdout or []:
            lines.put(x)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        seen: list[str] = []
        deadline = time.monotonic() + 15
        while "second-line" not in [s.strip() for s in seen]:  # the stream is open
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        assert cluster.rt.exec(container_id(pod), ["touch", "/tmp/go"], timeout=5).exit_code == 0
        while "late-line" not in [s.strip() for s in seen]:
            seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(10)


def test_delete_respects_grace_period(cluster: Cluster, ns: str) -> None:
    pod = cluster.create_pod(ns, "stubborn", [sleeper("app", "trap '' TERM; while true; do sleep 1; done")],
                             terminationGracePeriodSeconds=3)
    cluster.running(ns, "stubborn")
    uid = pod["metadata"]["uid"]
    assert [c for c in cluster.rt.list({LABEL_POD_UID: uid}) if c.running]
    t0 = time.monotonic()
    cluster.kubectl("delete", "pod", "stubborn", "-n", ns, timeout=30)
    took = time.monotonic() - t0
    assert 2.5 <= took <= 8, took
    assert cluster.pod(ns, "stubborn") is None
    cluster.wait("the pod's containers removed", lambda: not cluster.rt.list({LABEL_POD_UID: uid}), 5)


def test_missing_image_reports_pull_errors(cluster: Cluster, ns: str) -> None:
    cluster.create_pod(ns, "fine", [sleeper()], terminationGracePeriodSeconds=1)
    cluster.create_pod(ns, "broken", [{"name": "app", "image": "minik8s/does-not-exist:1"}],
                       terminationGracePeriodSeconds=1)
    cluster.wait("ErrImagePull/ImagePullBackOff in kubectl get", lambda: any(
        r in cluster.kubectl("get", "pod", "broken", "-n", ns, check=False).stdout
        for r in ("ErrImagePull", "ImagePullBackOff")), 30)
    cluster.wait("the pull failure in kubectl describe", lambda: "Failed to pull image" in cluster.kubectl(
        "describe", "pod", "broken", "-n", ns, check=False).stdout, 15)
    describe = cluster.kubectl("describe", "pod", "broken", "-n", ns).stdout
    # Its logs: the kubelet's "waiting to start" answer, with the waiting reason.
    logs = cluster.kubectl("logs", "broken", "-n", ns, check=False)
    assert logs.returncode != 0
    assert 'container "app" in pod "broken" is waiting to start: ' in logs.stderr, logs.stderr
    assert "ImagePull" in logs.stderr, logs.stderr
    assert "Warning" in describe and "Failed" in describe
    fine = cluster.running(ns, "fine")
    assert cstatus(fine)["restartCount"] == 0
    broken = cluster.pod(ns, "broken")
    assert broken is not None and broken["status"]["phase"] == "Pending"


def test_kubelet_crash_and_restart_keeps_containers(cluster: Cluster, ns: str) -> None:
    node = NODES[0]
    for name in ("a", "b"):
        cluster.create_pod(ns, name, [sleeper()], nodeName=node, terminationGracePeriodSeconds=1)
    before = {name: cluster.running(ns, name) for name in ("a", "b")}
    ids = {name: container_id(p) for name, p in before.items()}
    counts = {name: cstatus(p)["restartCount"] for name, p in before.items()}

    cluster.kubelets[node].kill()  # SIGKILL
    assert {c.id for c in cluster.containers(ns)} >= set(ids.values())
    restarted_at = time.time()
    cluster.restart_kubelet(node)

    def renewed() -> bool:
        r = cluster.http.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{node}")
        if r.status_code != 200:
            return False
        stamp = str(r.json()["spec"].get("renewTime") or "")
        from datetime import datetime

        return bool(stamp) and datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() > restarted_at
    cluster.wait("the new kubelet renewing its lease", renewed, 20)
    # The new kubelet is fully at work: a new pod on the node starts ...
    cluster.create_pod(ns, "c", [sleeper()], nodeName=node, terminationGracePeriodSeconds=1)
    cluster.running(ns, "c")
    # ... and the old ones were adopted as they are.
    for name in ("a", "b"):
        p = cluster.running(ns, name, timeout=5)
        assert container_id(p) == ids[name]
        assert cstatus(p)["restartCount"] == counts[name]
    running = {c.id for c in cluster.containers(ns)}
    assert set(ids.values()) <= running
    assert len(running) == 3
