"""Issue 12's disruption part, end to end: PodDisruptionBudgets, the eviction API, ``kubectl drain``
(and ``mkctl``'s), and the pod garbage collector, over real processes.

The cluster is this module's own: etcd, apiserver, scheduler, controller-manager (the pod GC
shortened: a pass every 0.5 s, a 3 s quarantine, 3 terminated pods kept) and simulated kubelets
``sim-a-0``, ``sim-a-1`` and ``sim-b`` (tests/e2e/test_workloads.py's cluster).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from cli.mkctl import app as mkctl_app
from tests.cluster import ROOT, ComponentProcess
from tests.e2e.dockercluster import LEASE, started
from tests.e2e.test_workloads import NODE_TIMINGS, Cluster, is_ready, ready_nodes

pytestmark = pytest.mark.e2e

PODGC = ("--pod-gc-period", "0.5", "--pod-gc-quarantine", "3", "--terminated-pod-gc-threshold", "3")
QUARANTINE = 3.0
RETRY_LINE = ('(will retry after 5s): Cannot evict pod as it would violate the pod\'s disruption budget.')


class DisruptionCluster(Cluster):
    def controller_manager(self) -> ComponentProcess:
        return ComponentProcess.start("controller-manager", "--server", self.url, *LEASE, *NODE_TIMINGS, *PODGC)

    def mkctl(self, *args: str) -> Any:
        return CliRunner().invoke(mkctl_app, ["--kubeconfig", str(self.kubeconfig), *args])

    def apply(self, ns: str, obj: dict[str, Any]) -> None:
        f = self.home / f"{uuid.uuid4().hex[:6]}.json"
        f.write_text(json.dumps(obj))
        self.kubectl("apply", "-n", ns, "-f", str(f))

    def pdb_status(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.http.get(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}").json()
                    .get("status") or {})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DisruptionCluster]:
    with started(lambda: DisruptionCluster(tmp_path_factory.mktemp("disruption")), "3 Ready nodes",
                 lambda c: len(ready_nodes(c)) == 3) as c:
        yield c


def deployment(name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "app", "image": "nginx:1.25"}]}}}}


def pdb(name: str, app: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": app}}, **spec}}


def ready_pods(c: Cluster, ns: str, app: str) -> list[dict[str, Any]]:
    return [p for p in c.pods(ns, f"app={app}") if is_ready(p)]


def two_pods_on(c: DisruptionCluster, ns: str, app: str, node: str, others: list[str]) -> None:
    """A Deployment of 2 whose pods both run on ``node`` (the other nodes cordoned meanwhile)."""
    c.kubectl("cordon", *others)
    try:
        c.apply(ns, deployment(app, 2))
        c.wait(f"2 ready {app} pods on {node}", lambda: len([p for p in ready_pods(c, ns, app)
                                                             if p["spec"]["nodeName"] == node]) == 2, 60)
    finally:
        c.kubectl("uncordon", *others)


def held_drain(c: DisruptionCluster, ns: str, app: str, node: str, others: list[str],
               argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a drain of ``node`` (2 pods of ``app`` and a budget allowing 1) while every other node is
    cordoned: the first eviction goes through, its replacement cannot become Ready anywhere, so the
    budget must hold the second pod (the drain keeps retrying); once a node is uncordoned the
    replacement runs, and the drain finishes."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(c.home), "KUBECONFIG": str(c.kubeconfig),
           "PYTHONPATH": str(ROOT)}
    c.kubectl("cordon", *others)
    try:
        drain = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
        try:
            c.wait("one pod evicted", lambda: len([p for p in c.pods(ns, f"app={app}") if p["spec"].get("nodeName") == node
                                                   and not p["metadata"].get("deletionTimestamp")]) == 1, 30)
            time.sleep(6)  # longer than the 5 s between retries
            assert drain.poll() is None, drain.communicate()
            held = [p for p in c.pods(ns, f"app={app}") if p["spec"].get("nodeName") == node]
            assert len(held) == 1 and is_ready(held[0])  # the budget kept it
            assert c.pdb_status(ns, f"{app}-pdb")["disruptionsAllowed"] == 0
        except BaseException:
            drain.kill()
            raise
    finally:
        c.kubectl("uncordon", *others)
    out, err = drain.communicate(timeout=90)
    return subprocess.CompletedProcess(argv, drain.returncode, out, err)


def test_drain_and_daemon_sets(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    c.apply(ns, {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
                 "spec": {"selector": {"matchLabels": {"app": "agent"}},
                          "template": {"metadata": {"labels": {"app": "agent"}},
                                       "spec": {"containers": [{"name": "a", "image": "nginx:1.25"}]}}}})
    c.wait("an agent pod on sim-b", lambda: [p for p in c.pods(ns, "app=agent") if p["spec"].get("nodeName") == "sim-b"
                                            and is_ready(p)], 60)
    agent = next(p["metadata"]["name"] for p in c.pods(ns, "app=agent") if p["spec"].get("nodeName") == "sim-b")
    kubectl = c.kubectl("drain", "sim-b", check=False)
    mine = c.mkctl("drain", "sim-b")
    assert kubectl.returncode == 1 and mine.exit_code == 1
    assert f"cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {ns}/{agent}" in mine.stderr
    assert mine.stderr == kubectl.stderr, (mine.stderr, kubectl.stderr)
    r = c.mkctl("drain", "sim-b", "--ignore-daemonsets")
    assert r.exit_code == 0, r.output
    assert r.stdout == "node/sim-b already cordoned\nnode/sim-b drained\n"
    assert r.stderr == f"Warning: ignoring DaemonSet-managed Pods: {ns}/{agent}\n"
    k = c.kubectl("drain", "sim-b", "--ignore-daemonsets")
    assert (k.stdout, k.stderr) == (r.stdout, r.stderr)
    assert c.http.get(f"/api/v1/namespaces/{ns}/pods/{agent}").status_code == 200  # DaemonSet pods stay
    c.kubectl("uncordon", "sim-b")
    c.kubectl("delete", "daemonset", "agent", "-n", ns)
    c.wait("agent pods gone", lambda: not c.pods(ns, "app=agent"), 60)


def test_drain_dry_runs_change_nothing(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    two_pods_on(c, ns, "dry", "sim-b", ["sim-a-0", "sim-a-1"])
    for mode in ("client", "server"):
        kubectl = c.kubectl("drain", "sim-b", f"--dry-run={mode}")
        mine = c.mkctl("drain", "sim-b", f"--dry-run={mode}")
        assert mine.exit_code == 0, mine.output
        assert sorted(mine.stdout.splitlines()) == sorted(kubectl.stdout.splitlines()), (mine.stdout, kubectl.stdout)
        assert mine.stdout.splitlines()[0] == kubectl.stdout.splitlines()[0] == f"node/sim-b cordoned ({mode} dry run)" \
            .replace("(client dry run)", "(dry run)")
        assert f"node/sim-b drained{' (dry run)' if mode == 'client' else ' (server dry run)'}" in mine.stdout
    assert not c.http.get("/api/v1/nodes/sim-b").json()["spec"].get("unschedulable")
    assert len(ready_pods(c, ns, "dry")) == 2 and not any(
        p["metadata"].get("deletionTimestamp") for p in c.pods(ns, "app=dry"))
    c.kubectl("delete", "deployment", "dry", "-n", ns)
    c.wait("dry pods gone", lambda: not c.pods(ns, "app=dry"), 60)


def test_kubectl_drain_waits_for_the_budget(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    two_pods_on(c, ns, "web", "sim-a-0", ["sim-a-1", "sim-b"])
    c.apply(ns, pdb("web-pdb", "web", minAvailable=1))
    c.wait("PDB status of 2 healthy pods", lambda: {k: c.pdb_status(ns, "web-pdb").get(k) for k in (
        "currentHealthy", "desiredHealthy", "expectedPods", "disruptionsAllowed", "observedGeneration")}
        == {"currentHealthy": 2, "desiredHealthy": 1, "expectedPods": 2, "disruptionsAllowed": 1,
            "observedGeneration": 1}, 30)
    got = c.kubectl("get", "pdb", "-n", ns).stdout.splitlines()
    assert got[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert got[1].split()[:4] == ["web-pdb", "1", "N/A", "1"]

    p = held_drain(c, ns, "web", "sim-a-0", ["sim-a-1", "sim-b"],
                   ["kubectl", "drain", "sim-a-0", "--ignore-daemonsets", "--timeout=90s"])
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "node/sim-a-0 cordoned" in p.stdout
    assert p.stdout.count("evicting pod ") >= 3, p.stdout  # both, and the refused one again
    assert RETRY_LINE in p.stderr, p.stderr  # the budget refused the second eviction
    assert p.stdout.rstrip().endswith("node/sim-a-0 drained"), p.stdout
    # The drain ends when the last evicted pod is gone; its replacement becomes Ready after that.
    c.wait("2 ready web pods off sim-a-0", lambda: len(pods := ready_pods(c, ns, "web")) == 2
           and all(x["spec"]["nodeName"] != "sim-a-0" for x in pods), 60)
    assert c.http.get("/api/v1/nodes/sim-a-0").json()["spec"]["unschedulable"] is True
    c.kubectl("uncordon", "sim-a-0")
    assert not c.http.get("/api/v1/nodes/sim-a-0").json()["spec"].get("unschedulable")


def test_eviction_refused_below_min_available(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    c.apply(ns, deployment("solo", 1))
    c.wait("1 ready solo pod", lambda: len(ready_pods(c, ns, "solo")) == 1, 60)
    # kubectl's typed create (a protobuf body).
    p = c.kubectl("create", "pdb", "solo-pdb", "-n", ns, "--selector=app=solo", "--max-unavailable=0")
    assert p.stdout == "poddisruptionbudget.policy/solo-pdb created\n"
    c.wait("PDB observed", lambda: c.pdb_status(ns, "solo-pdb").get("observedGeneration") == 1
           and c.pdb_status(ns, "solo-pdb").get("expectedPods") == 1, 30)
    state = c.pdb_status(ns, "solo-pdb")
    assert (state["currentHealthy"], state["desiredHealthy"], state["disruptionsAllowed"]) == (1, 1, 0)
    assert {x["type"]: (x["status"], x["reason"]) for x in state["conditions"]} == {
        "DisruptionAllowed": ("False", "InsufficientPods")}
    name = ready_pods(c, ns, "solo")[0]["metadata"]["name"]
    r = c.http.post(f"/api/v1/namespaces/{ns}/pods/{name}/eviction",
                    json={"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}})
    assert r.status_code == 429
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                        "reason": "TooManyRequests",
                        "details": {"causes": [{"reason": "DisruptionBudget", "message":
                                                "The disruption budget solo-pdb needs 1 healthy pods and has 1 currently"}]},
                        "code": 429}
    node = ready_pods(c, ns, "solo")[0]["spec"]["nodeName"]
    p = c.kubectl("drain", node, "--timeout=7s", check=False, timeout=60)
    assert p.returncode != 0
    assert f'error when evicting pods/"{name}" -n "{ns}" {RETRY_LINE}' in p.stderr, p.stderr
    assert "global timeout reached: 7s" in p.stderr
    c.kubectl("uncordon", node)
    assert len(ready_pods(c, ns, "solo")) == 1  # never evicted
    # A budget that never allows a disruption would hold up the later tests' drains.
    c.kubectl("delete", "pdb", "solo-pdb", "-n", ns)
    c.kubectl("delete", "deployment", "solo", "-n", ns)


def test_mkctl_cordon_uncordon_and_drain(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    r = c.mkctl("cordon", "sim-b")
    assert r.exit_code == 0 and r.stdout == "node/sim-b cordoned\n", r.output
    assert c.mkctl("cordon", "sim-b").stdout == "node/sim-b already cordoned\n"
    assert c.mkctl("uncordon", "sim-b").stdout == "node/sim-b uncordoned\n"
    two_pods_on(c, ns, "api", "sim-a-1", ["sim-a-0", "sim-b"])
    # A pod without a controller: refused as kubectl refuses it, unless --force.
    bare = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bare"},
            "spec": {"nodeName": "sim-a-1", "containers": [{"name": "c", "image": "nginx:1.25"}]}}
    c.apply(ns, bare)
    kubectl = c.kubectl("drain", "sim-a-1", check=False)
    mine = c.mkctl("drain", "sim-a-1")
    assert mine.exit_code == 1 and kubectl.returncode == 1
    assert mine.stderr == kubectl.stderr, (mine.stderr, kubectl.stderr)
    assert f"cannot delete cannot delete Pods that declare no controller (use --force to override): {ns}/bare" \
        in mine.stderr
    c.apply(ns, pdb("api-pdb", "api", minAvailable=1))
    c.wait("api PDB allows 1", lambda: c.pdb_status(ns, "api-pdb").get("disruptionsAllowed") == 1, 30)
    r = held_drain(c, ns, "api", "sim-a-1", ["sim-a-0", "sim-b"],
                   [sys.executable, "-m", "cli.mkctl", "drain", "sim-a-1", "--force", "--timeout=90s"])
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "node/sim-a-1 already cordoned" in r.stdout  # kubectl's own drain above cordoned it
    assert f"Warning: deleting Pods that declare no controller: {ns}/bare" in r.stderr
    assert f"evicting pod {ns}/bare" in r.stdout and "pod/bare evicted" in r.stdout
    assert RETRY_LINE in r.stderr, r.stderr
    assert r.stdout.endswith("node/sim-a-1 drained\n"), r.stdout
    assert len(ready_pods(c, ns, "api")) == 2
    c.mkctl("uncordon", "sim-a-1")
    listed = c.mkctl("get", "pdb", "-n", ns).stdout.splitlines()
    assert listed[0].split() == ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE", "ALLOWED", "DISRUPTIONS", "AGE"]
    assert listed[1].split()[:3] == ["api-pdb", "1", "N/A"]


def _orphan(c: Cluster, ns: str, name: str, node: str) -> None:
    r = c.http.post(f"/api/v1/namespaces/{ns}/pods", json={
        "metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x"}]}})
    assert r.status_code == 201, r.text


def test_podgc_removes_pods_of_missing_nodes(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    _orphan(c, ns, "lost", "ghost-node")
    _orphan(c, ns, "stuck", "ghost-node")
    c.kubectl("delete", "pod", "stuck", "-n", ns, "--wait=false")
    deleting = c.http.get(f"/api/v1/namespaces/{ns}/pods/stuck").json()
    assert deleting["metadata"]["deletionTimestamp"]  # Terminating: no kubelet will ever finish it
    started = time.monotonic()
    c.wait("orphaned pods gone", lambda: not c.pods(ns), 20)
    took = time.monotonic() - started
    assert QUARANTINE - 1 <= took <= QUARANTINE + 6, took


def test_podgc_trims_terminated_pods_beyond_the_threshold(cluster: DisruptionCluster) -> None:
    c = cluster
    ns = c.namespace()
    for i in range(5):
        # Never scheduled (no scheduler has this name), then finished: only PodGC removes them.
        r = c.http.post(f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": f"done-{i}"},
            "spec": {"schedulerName": "nobody", "containers": [{"name": "c", "image": "x"}]}})
        assert r.status_code == 201, r.text
        live = r.json()
        live["status"]["phase"] = "Succeeded"
        assert c.http.put(f"/api/v1/namespaces/{ns}/pods/done-{i}/status", json=live).status_code == 200
        time.sleep(1.05)  # distinct creation seconds: oldest first is observable
    c.wait("3 terminated pods kept", lambda: len(c.pods(ns)) == 3, 20)
    time.sleep(1.5)  # and no more are removed
    assert sorted(p["metadata"]["name"] for p in c.pods(ns)) == ["done-2", "done-3", "done-4"]

