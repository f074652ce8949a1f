"""Issue 3's acceptance, end to end: real etcd, apiserver, scheduler, controller-manager and simulated
kubelets as separate processes, driven by the real kubectl and mkctl.

The cluster is this module's own (its own etcd and apiserver), with short node timings, so
killing components here never disturbs the other tests. Nodes: ``sim-a-0`` and ``sim-a-1`` (one
kubelet process) and ``sim-b`` (another), 2 CPUs and 4 GiB each.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from cli.mkctl import app as mkctl_app
from machinery.quantity import cpu_millis, to_bytes
from tests.cluster import ComponentProcess
from tests.e2e.dockercluster import LEASE, ProcessCluster, started

pytestmark = pytest.mark.e2e

NODE_TIMINGS = ("--node-monitor-period", "0.5", "--node-monitor-grace-period", "4",
                "--default-toleration-seconds", "3")
CAPACITY = "cpu=2,memory=4Gi,pods=30"


class Cluster(ProcessCluster):
    def __init__(self, tmp: Path) -> None:
        # Pods tolerate a not-ready or unreachable node 3 s (the apiserver's DefaultTolerationSeconds).
        super().__init__(tmp, api_flags=("--default-not-ready-toleration-seconds", "3",
                                         "--default-unreachable-toleration-seconds", "3"),
                         capacity=CAPACITY, ns_prefix="w-")
        self.kubelets = {
            "a": self.kubelet("sim-a", "--count", "2"),
            "b": self.kubelet("sim-b"),
        }
        self.scheduler = self.component("scheduler", *LEASE)
        self.cm = self.controller_manager()

    def controller_manager(self) -> ComponentProcess:
        return ComponentProcess.start("controller-manager", "--server", self.url, *LEASE, *NODE_TIMINGS)

    def components(self) -> list[ComponentProcess]:
        return [self.scheduler, self.cm, *self.kubelets.values()]

    def pods(self, ns: str, selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else {}
        return self.http.get(f"/api/v1/namespaces/{ns}/pods", params=params).json()["items"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with started(lambda: Cluster(tmp_path_factory.mktemp("workloads")), "3 Ready nodes",
                 lambda c: len(ready_nodes(c)) == 3) as c:
        yield c


def ready_nodes(c: Cluster) -> list[str]:
    out = []
    for n in c.http.get("/api/v1/nodes").json()["items"]:
        conds = {x["type"]: x["status"] for x in (n.get("status") or {}).get("conditions") or []}
        if conds.get("Ready") == "True":
            out.append(n["metadata"]["name"])
    return sorted(out)


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conds = {x["type"]: x["status"] for x in (pod.get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "True"


def running(c: Cluster, ns: str, selector: str = "") -> list[dict[str, Any]]:
    return [p for p in c.pods(ns, selector)
            if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def deployment(name: str, *, replicas: int, image: str = "nginx:1.25", surge: int = 2,
               unavailable: int = 1) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "strategy": {"type": "RollingUpdate",
                              "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image,
                                                       "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}})


def apply(c: Cluster, ns: str, manifest: str, tmp_path: Path) -> None:
    f = tmp_path / f"{uuid.uuid4().hex[:6]}.json"
    f.write_text(manifest)
    c.kubectl("apply", "-n", ns, "-f", str(f))


def rollout_status(c: Cluster, ns: str, name: str) -> str:
    p = c.kubectl("rollout", "status", f"deploy/{name}", "-n", ns, "--timeout=90s")
    assert f'deployment "{name}" successfully rolled out' in p.stdout
    return p.stdout


class PodRecorder:
    """Every pod event of one namespace from a resourceVersion on, replayed into states."""

    def __init__(self, c: Cluster, ns: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        listed = c.http.get(f"/api/v1/namespaces/{ns}/pods").json()
        self.initial = {p["metadata"]["uid"]: p for p in listed["items"]}
        rv = listed["metadata"]["resourceVersion"]
        self._stop = threading.Event()
        self._client = httpx.Client(base_url=c.url, timeout=None)
        self._thread = threading.Thread(target=self._run, args=(ns, rv), daemon=True)
        self._thread.start()

    def _run(self, ns: str, rv: str) -> None:
        with self._client.stream("GET", f"/api/v1/namespaces/{ns}/pods",
                                 params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "300"}) as r:
            for line in r.iter_lines():
                if self._stop.is_set():
                    return
                if line:
                    ev = json.loads(line)
                    self.events.append((ev["type"], ev["object"]))

    def stop(self) -> list[tuple[str, dict[str, Any]]]:
        time.sleep(1)  # let the last events arrive
        self._stop.set()
        self._client.close()
        return self.events


def test_deployment_spreads_within_allocatable_and_rolls_out(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    apply(c, ns, deployment("web", replicas=10), tmp_path)
    rollout_status(c, ns, "web")
    pods = running(c, ns, "app=web")
    assert len(pods) == 10 and all(p["status"].get("podIP") for p in pods)
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    assert set(per_node) == {"sim-a-0", "sim-a-1", "sim-b"}, per_node
    assert max(per_node.values()) - min(per_node.values()) <= 2, per_node  # spread, not packed
    # No node is over its allocatable, counting every pod bound to it.
    for node in c.http.get("/api/v1/nodes").json()["items"]:
        bound = [p for p in c.http.get("/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node['metadata']['name']}"}).json()["items"]]
        cpu = sum(cpu_millis(ct.get("resources", {}).get("requests", {}).get("cpu", "0"))
                  for p in bound for ct in p["spec"]["containers"])
        mem = sum(to_bytes(ct.get("resources", {}).get("requests", {}).get("memory", "0"))
                  for p in bound for ct in p["spec"]["containers"])
        alloc = node["status"]["allocatable"]
        assert cpu <= cpu_millis(alloc["cpu"]) and mem <= to_bytes(alloc["memory"])
        assert len(bound) <= int(alloc["pods"])
    out = c.kubectl("get", "deploy", "web", "-n", ns).stdout.split("\n")[1].split()
    assert out[:4] == ["web", "10/10", "10", "10"]


def test_rolling_update_never_exceeds_surge_or_unavailable_and_undo(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    apply(c, ns, deployment("roll", replicas=6, surge=2, unavailable=1), tmp_path)
    rollout_status(c, ns, "roll")
    recorder = PodRecorder(c, ns)
    c.kubectl("set", "image", "deploy/roll", "app=nginx:1.26", "-n", ns)
    rollout_status(c, ns, "roll")
    events = recorder.stop()
    # Replay every event from the state listed just before the change: at every moment at most
    # replicas+maxSurge pods exist and at least replicas-maxUnavailable of them are ready.
    state = dict(recorder.initial)
    assert len(state) == 6 and all(is_ready(p) for p in state.values())
    seen_new = False
    for etype, pod in events:
        uid = pod["metadata"]["uid"]
        if etype == "DELETED":
            state.pop(uid, None)
        else:
            state[uid] = pod
        live = [p for p in state.values() if not p["metadata"].get("deletionTimestamp")]
        ready = [p for p in live if is_ready(p)]
        seen_new = seen_new or any(p["spec"]["containers"][0]["image"] == "nginx:1.26" for p in live)
        assert len(live) <= 6 + 2, f"more than replicas+maxSurge pods: {len(live)}"
        assert len(ready) >= 6 - 1, f"fewer than replicas-maxUnavailable ready pods: {len(ready)}"
    assert seen_new and len(events) > 10
    images = {p["spec"]["containers"][0]["image"] for p in running(c, ns)}
    assert images == {"nginx:1.26"}
    # mkctl rollout undo returns to the previous template.
    undo = CliRunner().invoke(mkctl_app, ["--server", c.url, "-n", ns, "rollout", "undo", "deploy/roll"])
    assert undo.exit_code == 0 and "rolled back" in undo.output, undo.output
    rollout_status(c, ns, "roll")
    assert {p["spec"]["containers"][0]["image"] for p in running(c, ns)} == {"nginx:1.25"}
    rs = c.http.get(f"/apis/apps/v1/namespaces/{ns}/replicasets").json()["items"]
    assert len(rs) == 2  # the old ReplicaSet was reused, not a third one made


def test_scale_to_zero_and_back(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    apply(c, ns, deployment("sz", replicas=3), tmp_path)
    rollout_status(c, ns, "sz")
    c.kubectl("scale", "deploy/sz", "--replicas=0", "-n", ns)
    c.wait("no pods", lambda: not c.pods(ns))
    c.kubectl("scale", "deploy/sz", "--replicas=3", "-n", ns)
    rollout_status(c, ns, "sz")
    assert len(running(c, ns)) == 3


def test_deleting_a_deployment_cascades_and_orphan_keeps_pods(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    apply(c, ns, deployment("gone", replicas=2), tmp_path)
    apply(c, ns, deployment("kept", replicas=2), tmp_path)
    rollout_status(c, ns, "gone")
    rollout_status(c, ns, "kept")
    c.kubectl("delete", "deploy/gone", "-n", ns)
    c.wait("gone's ReplicaSets and pods removed", lambda: not c.pods(ns, "app=gone") and not [
        r for r in c.http.get(f"/apis/apps/v1/namespaces/{ns}/replicasets").json()["items"]
        if r["metadata"]["name"].startswith("gone-")])
    c.kubectl("delete", "deploy/kept", "--cascade=orphan", "-n", ns)
    c.wait("kept deployment gone", lambda: c.http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/kept").status_code == 404)
    time.sleep(2)  # give the garbage collector every chance to (wrongly) act
    assert len(running(c, ns, "app=kept")) == 2
    rs = [r for r in c.http.get(f"/apis/apps/v1/namespaces/{ns}/replicasets").json()["items"]]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")


def test_too_big_pod_waits_with_kubernetes_message_then_lands_on_a_big_node(cluster: Cluster) -> None:
    c = cluster
    ns = c.namespace()
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "big"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": "16"}}}]}}
    assert c.http.post(f"/api/v1/namespaces/{ns}/pods", json=body).status_code == 201

    def unschedulable() -> dict[str, Any] | None:
        pod = c.http.get(f"/api/v1/namespaces/{ns}/pods/big").json()
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond["type"] == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return cond
        return None

    cond = c.wait("PodScheduled=False Unschedulable", unschedulable)
    assert cond["status"] == "False"
    assert cond["message"].startswith("0/3 nodes are available: 3 Insufficient cpu."), cond["message"]

    def failed_scheduling_event() -> bool:
        events = c.http.get(f"/api/v1/namespaces/{ns}/events",
                            params={"fieldSelector": "involvedObject.name=big"}).json()["items"]
        return any(e["reason"] == "FailedScheduling" and e["type"] == "Warning" for e in events)

    c.wait("a FailedScheduling event", failed_scheduling_event, 15)
    big = c.kubelet("sim-big", capacity="cpu=32,memory=64Gi,pods=30")
    try:
        pod = c.wait("the big pod running on sim-big", lambda: next(
            (p for p in running(c, ns) if p["metadata"]["name"] == "big"), None), 60)
        assert pod["spec"]["nodeName"] == "sim-big"
    finally:
        big.stop()
        c.http.delete(f"/api/v1/namespaces/{ns}/pods/big", params={"gracePeriodSeconds": 0})
        c.http.delete("/api/v1/nodes/sim-big")


def test_controller_manager_killed_mid_rollout_converges_without_extra_pods(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    apply(c, ns, deployment("crash", replicas=6), tmp_path)
    rollout_status(c, ns, "crash")
    c.kubectl("set", "image", "deploy/crash", "app=nginx:1.26", "-n", ns)
    time.sleep(0.3)
    c.cm.kill()
    c.cm = c.controller_manager()
    rollout_status(c, ns, "crash")
    time.sleep(2)  # anything extra would show up now
    pods = [p for p in c.pods(ns) if not p["metadata"].get("deletionTimestamp")]
    assert len(pods) == 6 and {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.26"}
    rs = {r["metadata"]["name"]: r["spec"]["replicas"]
          for r in c.http.get(f"/apis/apps/v1/namespaces/{ns}/replicasets").json()["items"]}
    assert sorted(rs.values()) == [0, 6], rs


def test_node_that_stops_heartbeating_goes_not_ready_and_its_pods_move(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    apply(c, ns, deployment("move", replicas=6), tmp_path)
    rollout_status(c, ns, "move")
    on_b = [p for p in running(c, ns) if p["spec"]["nodeName"] == "sim-b"]
    assert on_b, "the scheduler spreads pods, so sim-b has some"
    c.kubelets["b"].kill()
    c.wait("sim-b NotReady", lambda: "sim-b" not in ready_nodes(c), 30)

    def unreachable_taint() -> bool:
        node = c.http.get("/api/v1/nodes/sim-b").json()
        return {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"} in [
            {"key": t["key"], "effect": t["effect"]} for t in node["spec"].get("taints") or []]

    c.wait("the unreachable NoExecute taint on sim-b", unreachable_taint, 15)
    assert "NotReady" in c.kubectl("get", "node", "sim-b").stdout
    c.wait("6 running pods, none on sim-b", lambda: len([
        p for p in running(c, ns) if p["spec"]["nodeName"] != "sim-b"]) == 6, 60)
    # The kubelet comes back: the node is Ready again.
    c.kubelets["b"] = c.kubelet("sim-b")
    c.wait("sim-b Ready again", lambda: "sim-b" in ready_nodes(c), 30)
