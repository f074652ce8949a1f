"""The fault suite, part 1: SIGKILL of each component in the middle of a rollout.

One cluster for the module (real etcd, apiserver, scheduler, controller-manager, two simulated
kubelets and the GitOps reconciler, each its own process). Each test rolls a Deployment of 4
replicas (maxSurge 1, maxUnavailable 0, minReadySeconds 1: the rollout takes several seconds)
from image v1 to v2, SIGKILLs one component once the rollout is under way, starts it again at
once (what a supervisor such as docker-compose's restart policy does), and expects:

- the cluster converges: every replica runs v2 and is ready, the Deployment reports it;
- no pod is ever bound to two nodes, and never more than replicas + maxSurge pods are alive
  (replayed from a watch of the namespace that reconnects across the kill);
- the time from the kill to convergence is recorded (``faults.record``; docs/faults.md).

For the GitOps reconciler the rollout comes from a Git commit: it is killed once it has applied
the new revision, and after its restart it must report that revision applied.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from tests.cluster import ApiServerProcess, ComponentProcess, free_port
from tests.e2e.dockercluster import LEASE, ProcessCluster
from tests.e2e.faults import EventRecorder, record, rollout_violations
from tests.gitops.gitrepo import GitRepo

pytestmark = pytest.mark.e2e

REPLICAS, SURGE = 4, 1
V1, V2 = "registry.local/app:v1", "registry.local/app:v2"


class FaultCluster(ProcessCluster):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, ns_prefix="fault-")
        self.tmp = tmp
        self.webhook_port = free_port()
        self.procs_by_name: dict[str, ComponentProcess] = {}
        for name in ("scheduler", "controller-manager", "kubelet", "gitops"):
            self.procs_by_name[name] = self.start(name)
        self.procs_by_name["kubelet-b"] = self.kubelet("fault-b")
        self.wait("two Ready nodes", lambda: len(self.ready_nodes()) == 2)
        self.wait("the GitSync CRD", lambda: self.http.get("/apis/gitops.minik8s.io/v1/gitsyncs").status_code == 200)

    def start(self, name: str) -> ComponentProcess:
        if name == "kubelet":
            return self.kubelet("fault-a")
        if name == "gitops":
            return self.component("gitops", "--cache-dir", str(self.tmp / "mirrors"), "--webhook-bind-address",
                                  "127.0.0.1", "--webhook-port", str(self.webhook_port))
        return self.component(name, *LEASE)

    def components(self) -> list[ComponentProcess]:
        return list(self.procs_by_name.values())

    def ready_nodes(self) -> list[str]:
        out = []
        for n in self.http.get("/api/v1/nodes").json()["items"]:
            conds = {c["type"]: c["status"] for c in (n.get("status") or {}).get("conditions") or []}
            if conds.get("Ready") == "True":
                out.append(n["metadata"]["name"])
        return out

    def kill_and_restart(self, name: str) -> None:
        """SIGKILL ``name`` and start it again at once (the API server on the same port)."""
        if name == "apiserver":
            self.api.proc.kill()
            self.api.proc.wait(10)
            self.api = ApiServerProcess.start(self.etcd.url, port=self.api.port)
            return
        self.procs_by_name[name].kill()
        self.procs_by_name[name] = self.start(name)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    c = FaultCluster(tmp_path_factory.mktemp("faults"))
    try:
        yield c
    finally:
        c.stop()


def deployment(ns: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
            "spec": {"replicas": REPLICAS, "minReadySeconds": 1, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": SURGE, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def converged(c: FaultCluster, ns: str, image: str) -> bool:
    r = c.http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web")
    if r.status_code != 200:
        return False
    d = r.json()
    st = d.get("status") or {}
    if st.get("observedGeneration", 0) < d["metadata"]["generation"]:
        return False
    if any(st.get(k) != REPLICAS for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")):
        return False
    pods = [p for p in c.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
            if not p["metadata"].get("deletionTimestamp")]
    return len(pods) == REPLICAS and all(p["spec"]["containers"][0]["image"] == image for p in pods)


def rolling(c: FaultCluster, ns: str) -> bool:
    st = (c.http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").json().get("status") or {})
    return 1 <= st.get("updatedReplicas", 0) < REPLICAS


@pytest.mark.parametrize("component", ["apiserver", "scheduler", "controller-manager", "kubelet"])
def test_sigkill_mid_rollout_converges(cluster: FaultCluster, component: str) -> None:
    c = cluster
    ns = c.namespace()
    assert c.http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, V1)).status_code == 201
    c.wait("v1 rolled out", lambda: converged(c, ns, V1), timeout=90)
    recorder = EventRecorder(c.url, f"/api/v1/namespaces/{ns}/pods")
    r = c.http.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                     content=f'{{"spec":{{"template":{{"spec":{{"containers":[{{"name":"app","image":"{V2}"}}]}}}}}}}}',
                     headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    c.wait("the rollout under way", lambda: rolling(c, ns), timeout=30)
    started = time.monotonic()
    c.kill_and_restart(component)
    c.wait(f"convergence after SIGKILL of the {component}", lambda: converged(c, ns, V2), timeout=120)
    record(f"SIGKILL {component} mid-rollout -> converged", time.monotonic() - started)
    problems, most = rollout_violations(recorder.initial, recorder.stop(), replicas=REPLICAS, max_surge=SURGE)
    assert problems == [], problems
    assert most >= REPLICAS
    c.http.delete(f"/api/v1/namespaces/{ns}")


def test_sigkill_gitops_mid_rollout_converges(cluster: FaultCluster, tmp_path: Path) -> None:
    c = cluster
    ns = c.namespace()
    repo = GitRepo.create(tmp_path)

    def commit(image: str) -> str:
        repo.write("app/web.yaml", yaml.safe_dump(deployment(ns, image)))
        return repo.commit(f"web {image}")

    first = commit(V1)
    body = {"apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync", "metadata": {"name": "web", "namespace": ns},
            "spec": {"url": repo.url, "ref": {"branch": "main"}, "path": "app", "interval": "1s"}}
    assert c.http.post(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs", json=body).status_code == 201

    def applied(sha: str) -> bool:
        st = c.http.get(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs/web").json().get("status") or {}
        return str(st.get("lastAppliedRevision", "")).endswith(sha)

    c.wait("revision 1 applied and rolled out", lambda: applied(first) and converged(c, ns, V1), timeout=90)
    recorder = EventRecorder(c.url, f"/api/v1/namespaces/{ns}/pods")
    second = commit(V2)
    c.wait("revision 2 applied, the rollout under way", lambda: rolling(c, ns), timeout=60)
    started = time.monotonic()
    c.kill_and_restart("gitops")
    c.wait("convergence after SIGKILL of gitops", lambda: converged(c, ns, V2) and applied(second), timeout=120)
    record("SIGKILL gitops mid-rollout -> converged, revision reported", time.monotonic() - started)
    problems, _ = rollout_violations(recorder.initial, recorder.stop(), replicas=REPLICAS, max_surge=SURGE)
    assert problems == [], problems
    c.http.delete(f"/api/v1/namespaces/{ns}")


def test_two_component_kills_in_one_rollout(cluster: FaultCluster) -> None:
    """The scheduler and the controller-manager killed together: both restart, nothing is lost."""
    c = cluster
    ns = c.namespace()
    assert c.http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, V1)).status_code == 201
    c.wait("v1 rolled out", lambda: converged(c, ns, V1), timeout=90)
    recorder = EventRecorder(c.url, f"/api/v1/namespaces/{ns}/pods")
    r = c.http.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web",
                     json={"spec": {"template": {"metadata": {"annotations": {"rev": uuid.uuid4().hex}},
                                                 "spec": {"containers": [{"name": "app", "image": V2}]}}}},
                     headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text
    c.wait("the rollout under way", lambda: rolling(c, ns), timeout=30)
    started = time.monotonic()
    c.kill_and_restart("scheduler")
    c.kill_and_restart("controller-manager")
    c.wait("convergence", lambda: converged(c, ns, V2), timeout=120)
    record("SIGKILL scheduler + controller-manager mid-rollout -> converged", time.monotonic() - started)
    problems, _ = rollout_violations(recorder.initial, recorder.stop(), replicas=REPLICAS, max_surge=SURGE)
    assert problems == [], problems
