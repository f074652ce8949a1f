"""Issue 12's DaemonSet acceptance, end to end, driven by the real kubectl.

This module's own cluster: etcd, apiserver, scheduler and controller-manager processes, two Docker
kubelets (nodes ``ds-1`` and ``ds-2``) on a pod network of their own (``mk-ds-*`` on a free /24 of
the test pool), and simulated kubelets that join later: ``ds-sim`` (eligible) and ``ds-tainted``
(its Node is made first with a NoSchedule taint the DaemonSet does not tolerate).

- one pod on each Docker node, as a running container; a joining node gets one, the tainted
  one does not (status: DESIRED 3);
- ``kubectl set image`` rolls node by node: a watch over the pods records, after every event,
  how many eligible nodes have no ready pod; it never exceeds maxUnavailable (1), and the old
  pods go one at a time, each after the previous node's new pod became ready;
- ``kubectl rollout status|history|undo daemonset/agent`` (ControllerRevisions);
- a node that leaves no longer counts (DESIRED 2) and its pod is removed (PodGC);
- deleting the DaemonSet removes its pods and revisions (garbage collector).

Without an engine (or the image of scripts/build-images) the module fails when ``CI`` is set.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from kubelet.runtime import LABEL_NODE, LABEL_POD_NAMESPACE, LABEL_ROLE, ROLE_CONTAINER, DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started, node_ready

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

DOCKER_NODES = ("ds-1", "ds-2")
NODE_TIMINGS = ("--node-monitor-period", "0.5", "--node-monitor-grace-period", "15",
                "--default-toleration-seconds", "300")
CAPACITY = "cpu=4,memory=8Gi,pods=30"
# The same local image under another name: an image change Docker resolves without a registry.
IMAGE_2 = IMAGE if IMAGE.startswith("docker.io/") else f"docker.io/{IMAGE}"


class Cluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        super().__init__(tmp, rt, prefix="mk-ds", label="daemonset", docker_nodes=DOCKER_NODES, capacity=CAPACITY,
                         kubelet_flags=("--no-service-proxy",),
                         cm_flags=(*NODE_TIMINGS, "--pod-gc-period", "0.5", "--pod-gc-quarantine", "1"),
                         controllers="daemonset,garbagecollector,nodelifecycle,namespace,podgc")

    def pods(self, ns: str) -> list[dict[str, Any]]:
        return list(self.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"])

    def ds(self, ns: str) -> dict[str, Any]:
        return dict(self.http.get(f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent").json())


def is_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def ready_by_node(pods: list[dict[str, Any]]) -> dict[str, list[str]]:
    """node -> images of its ready pods."""
    out: dict[str, list[str]] = {}
    for p in pods:
        if is_ready(p) and p["spec"].get("nodeName"):
            out.setdefault(p["spec"]["nodeName"], []).append(p["spec"]["containers"][0]["image"])
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with docker_started(lambda rt: Cluster(tmp_path_factory.mktemp("daemonset"), rt), ready_nodes=DOCKER_NODES) as c:
        yield c


def manifest(ns: str) -> str:
    return f"""
apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: agent
        image: {IMAGE}
        command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""


class PodWatch:
    """Follows the namespace's pods; after every event notes the eligible nodes without a ready pod,
    and the order of old-pod deletions and new-pod readiness."""

    def __init__(self, c: Cluster, ns: str, nodes: set[str], new_image: str) -> None:
        self.nodes, self.new_image = nodes, new_image
        self.pods: dict[str, dict[str, Any]] = {p["metadata"]["name"]: p for p in c.pods(ns)}
        self.rv = c.http.get(f"/api/v1/namespaces/{ns}/pods").json()["metadata"]["resourceVersion"]
        self.max_unavailable = 0
        self.steps: list[tuple[str, str]] = []  # ("delete-old" | "new-ready", node)
        self.stop = threading.Event()
        self.client = httpx.Client(base_url=c.url, timeout=None)
        self.thread = threading.Thread(target=self._run, args=(ns,), daemon=True)
        self.thread.start()

    def _run(self, ns: str) -> None:
        params = {"watch": "1", "resourceVersion": self.rv, "timeoutSeconds": "120"}
        with self.client.stream("GET", f"/api/v1/namespaces/{ns}/pods", params=params) as r:
            for line in r.iter_lines():
                if self.stop.is_set():
                    return
                if not line:
                    continue
                event = json.loads(line)
                pod = event["object"]
                name, before = pod["metadata"]["name"], self.pods.get(pod["metadata"]["name"])
                node = pod["spec"].get("nodeName", "")
                if event["type"] == "DELETED":
                    self.pods.pop(name, None)
                else:
                    self.pods[name] = pod
                image = pod["spec"]["containers"][0]["image"]
                if image != self.new_image and pod["metadata"].get("deletionTimestamp") and \
                        not (before or {}).get("metadata", {}).get("deletionTimestamp"):
                    self.steps.append(("delete-old", node))
                if image == self.new_image and is_ready(pod) and not (before and is_ready(before)):
                    self.steps.append(("new-ready", node))
                ready = ready_by_node(list(self.pods.values()))
                self.max_unavailable = max(self.max_unavailable, len(self.nodes - set(ready)))

    def close(self) -> None:
        self.stop.set()
        self.client.close()
        self.thread.join(timeout=5)


def test_daemonset_follows_nodes_rolls_node_by_node_and_rolls_back(cluster: Cluster) -> None:
    c = cluster
    ns = f"ds-{uuid.uuid4().hex[:8]}"
    c.kubectl_out("create", "namespace", ns)
    c.kubectl_out("apply", "-f", "-", stdin=manifest(ns))

    # One pod on each Docker node, each a running container of that node.
    c.wait("a ready agent pod on each Docker node",
           lambda: sorted(ready_by_node(c.pods(ns))) == list(DOCKER_NODES), 90)
    containers = [x for x in c.rt.list({LABEL_POD_NAMESPACE: ns, LABEL_ROLE: ROLE_CONTAINER}) if x.running]
    assert sorted(x.labels[LABEL_NODE] for x in containers) == list(DOCKER_NODES)
    pods = c.pods(ns)
    assert len(pods) == 2
    for p in pods:
        labels = p["metadata"]["labels"]
        assert labels["pod-template-generation"] == "1" and labels["controller-revision-hash"]
        terms = p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == [p["spec"]["nodeName"]]
        assert {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"} \
            in p["spec"]["tolerations"]

    # A tainted node joins (its Node made first, with the taint), then an eligible one.
    assert c.http.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ds-tainted"},
                                              "spec": {"taints": [{"key": "dedicated", "value": "db",
                                                                   "effect": "NoSchedule"}]}}).status_code == 201
    c.simulated("ds-tainted")
    c.simulated("ds-sim")
    c.wait("a ready agent pod on ds-sim",
           lambda: sorted(ready_by_node(c.pods(ns))) == sorted([*DOCKER_NODES, "ds-sim"]), 60)
    c.wait("status: 3 desired, 3 available", lambda: (c.ds(ns).get("status") or {}).get("numberAvailable") == 3)
    time.sleep(1)  # the tainted node has been Ready a while: still no pod there
    assert node_ready(c, "ds-tainted")
    assert all(p["spec"].get("nodeName") != "ds-tainted" for p in c.pods(ns))
    status = c.ds(ns)["status"]
    assert (status["desiredNumberScheduled"], status["currentNumberScheduled"], status["numberReady"],
            status["updatedNumberScheduled"], status["numberMisscheduled"]) == (3, 3, 3, 3, 0)
    table = c.kubectl_out("get", "ds", "agent", "-n", ns)
    assert table.split("\n")[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE",
                                            "NODE", "SELECTOR", "AGE"]
    assert table.split("\n")[1].split()[:7] == ["agent", "3", "3", "3", "3", "3", "<none>"]
    assert "successfully rolled out" in c.kubectl_out("rollout", "status", "daemonset/agent", "-n", ns, "--timeout=60s")
    described = c.kubectl_out("describe", "daemonset", "agent", "-n", ns)
    assert "Desired Number of Nodes Scheduled: 3" in described, described
    revisions = c.kubectl_out("get", "controllerrevisions", "-n", ns).splitlines()
    assert revisions[0].split() == ["NAME", "CONTROLLER", "REVISION", "AGE"]
    assert revisions[1].split()[1:3] == ["daemonset.apps/agent", "1"], revisions

    # An image change rolls node by node (maxUnavailable 1).
    eligible = {*DOCKER_NODES, "ds-sim"}
    watch = PodWatch(c, ns, eligible, IMAGE_2)
    try:
        c.kubectl_out("set", "image", "daemonset/agent", f"agent={IMAGE_2}", "-n", ns)
        out = c.kubectl_out("rollout", "status", "daemonset/agent", "-n", ns, "--timeout=120s")
        assert 'daemon set "agent" successfully rolled out' in out
        c.wait("every node runs the new image",
               lambda: ready_by_node(c.pods(ns)) == {n: [IMAGE_2] for n in eligible}, 30)
    finally:
        watch.close()
    assert watch.max_unavailable == 1, watch.steps
    kinds = [k for k, _ in watch.steps]
    assert kinds == ["delete-old", "new-ready"] * 3, watch.steps
    assert {n for k, n in watch.steps if k == "delete-old"} == eligible
    for i in range(0, 6, 2):
        assert watch.steps[i][1] == watch.steps[i + 1][1], watch.steps  # each node's new pod before the next node

    # History and rollback through ControllerRevisions.
    revisions = c.http.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions").json()["items"]
    assert sorted(r["revision"] for r in revisions) == [1, 2]
    history = c.kubectl_out("rollout", "history", "daemonset/agent", "-n", ns)
    assert [line.split()[0] for line in history.strip().splitlines()[1:]] == ["REVISION", "1", "2"], history
    detail = c.kubectl_out("rollout", "history", "daemonset/agent", "-n", ns, "--revision=1")
    assert IMAGE in detail and IMAGE_2 not in detail, detail
    assert "rolled back" in c.kubectl_out("rollout", "undo", "daemonset/agent", "-n", ns)
    c.kubectl_out("rollout", "status", "daemonset/agent", "-n", ns, "--timeout=120s")
    c.wait("every node back on the first image",
           lambda: ready_by_node(c.pods(ns)) == {n: [IMAGE] for n in eligible}, 60)
    revisions = c.http.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions").json()["items"]
    assert sorted(r["revision"] for r in revisions) == [2, 3]  # revision 1 came back as 3
    assert c.ds(ns)["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE

    # A node that leaves no longer counts, and its pod goes (the pod garbage collector's part, as in Kubernetes).
    c.sims.pop("ds-sim").stop()
    assert c.http.delete("/api/v1/nodes/ds-sim").status_code == 200
    c.wait("status: 2 desired", lambda: (c.ds(ns).get("status") or {}).get("desiredNumberScheduled") == 2)
    c.wait("the pod of the deleted node removed",
           lambda: sorted(p["spec"].get("nodeName") for p in c.pods(ns)) == list(DOCKER_NODES), 30)

    # Deleting the DaemonSet takes its pods and revisions with it (garbage collector).
    c.kubectl_out("delete", "daemonset", "agent", "-n", ns)
    c.wait("pods and revisions gone", lambda: not c.pods(ns) and not c.http.get(
        f"/apis/apps/v1/namespaces/{ns}/controllerrevisions").json()["items"], 30)
    assert not [x for x in c.rt.list({LABEL_POD_NAMESPACE: ns, LABEL_ROLE: ROLE_CONTAINER}) if x.running]
