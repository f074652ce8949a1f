"""The fault suite, part 3: a Docker kubelet cut off from the API server, then healed.

The Docker kubelet reaches the API server only through a TCP relay (tests.e2e.faults.Relay); a
simulated node stands by. A Deployment's 2 pods run on the Docker node. Then the relay is cut (a
network partition: every connection dropped, new ones refused) for long enough that the node
controller marks the node unreachable and evicts its pods (node grace 4 s, tolerations 3 s), and
their replacements run on the simulated node. Expected, and asserted:

- while cut off, the kubelet keeps its containers running (the same container ids, still running
  at the end of the partition: a kubelet never kills pods because it lost the API server);
- after the heal the kubelet sees its pods deleted and stops their containers: no pod runs twice
  (no container of a pod that is gone or bound elsewhere keeps running), the old pod objects go
  away, and the Deployment has exactly its 2 pods, Running on the simulated node;
- the time from the heal to that state is recorded (docs/faults.md).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.cri import LABEL_NODE, LABEL_POD_UID, LABEL_ROLE
from kubelet.runtime import DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, clean, docker_started, node_ready
from tests.e2e.faults import Relay, record

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

SUFFIX = uuid.uuid4().hex[:5]
DOCKER_NODE, SIM_NODE = f"fp-dock-{SUFFIX}", f"fp-sim-{SUFFIX}"
NODE_TIMINGS = ("--node-monitor-period", "0.5", "--node-monitor-grace-period", "4")


class PartitionCluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.relay = Relay()
        super().__init__(tmp, rt, prefix="mk-fp", label="faults-partition", docker_nodes=(),
                         capacity="cpu=4,memory=8Gi,pods=20", network_lower_half=True, cm_flags=NODE_TIMINGS,
                         api_flags=("--default-not-ready-toleration-seconds", "3",
                                    "--default-unreachable-toleration-seconds", "3"),
                         simulated=[(SIM_NODE,)], ns_prefix="fp-")
        self.relay.target = ("127.0.0.1", self.api.port)
        self.docker_nodes = (DOCKER_NODE,)
        clean(rt, self.docker_nodes)
        self.procs.append(self.docker_kubelet(DOCKER_NODE, server=self.relay.url))

    def stop(self) -> None:
        self.relay.close()
        super().stop()

    def running_containers(self) -> dict[str, str]:
        """container id -> pod uid of the running app containers on the Docker node."""
        return {c.id: c.labels.get(LABEL_POD_UID, "") for c in self.rt.list({LABEL_NODE: DOCKER_NODE})
                if c.state == "running" and c.labels.get(LABEL_ROLE) != "sandbox"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartitionCluster]:
    with docker_started(lambda rt: PartitionCluster(tmp_path_factory.mktemp("partition"), rt),
                        ready_nodes=(DOCKER_NODE, SIM_NODE)) as c:
        yield c


def pods(c: PartitionCluster, ns: str) -> list[dict[str, Any]]:
    return list(c.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"])


def test_kubelet_cut_off_keeps_containers_and_no_pod_runs_twice_after_heal(cluster: PartitionCluster) -> None:
    c = cluster
    ns = c.namespace()
    # Only the Docker node takes the Deployment's pods at first.
    assert c.http.patch(f"/api/v1/nodes/{SIM_NODE}", json={"spec": {"unschedulable": True}},
                        headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "part"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "part"}},
                     "template": {"metadata": {"labels": {"app": "part"}},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [{"name": "app", "image": IMAGE,
                                                           "command": ["sleep", "3600"]}]}}}}
    assert c.http.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=body).status_code == 201

    def running_on(node: str) -> list[dict[str, Any]]:
        return [p for p in pods(c, ns) if p["spec"].get("nodeName") == node
                and (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    c.wait("2 pods Running on the Docker node", lambda: len(running_on(DOCKER_NODE)) == 2, timeout=90)
    first = {p["metadata"]["uid"] for p in running_on(DOCKER_NODE)}
    before = c.running_containers()
    assert set(before.values()) == first
    assert c.http.patch(f"/api/v1/nodes/{SIM_NODE}", json={"spec": {"unschedulable": False}},
                        headers={"Content-Type": "application/merge-patch+json"}).status_code == 200

    c.relay.cut()
    c.wait("the Docker node NotReady", lambda: not node_ready(c, DOCKER_NODE), timeout=30)
    c.wait("replacements Running on the simulated node", lambda: len(running_on(SIM_NODE)) == 2, timeout=60)
    # The old pods are Terminating: their kubelet cannot confirm. Its containers still run.
    assert all(p["metadata"].get("deletionTimestamp") for p in pods(c, ns) if p["metadata"]["uid"] in first)
    assert c.running_containers() == before, "the kubelet stopped containers while cut off"

    c.relay.heal()
    healed = time.monotonic()

    def settled() -> bool:
        live = pods(c, ns)
        uids = {p["metadata"]["uid"] for p in live}
        return not (uids & first) and not c.running_containers() and len(live) == 2 \
            and all(p["spec"].get("nodeName") == SIM_NODE for p in live)
    c.wait("the old pods' containers stopped and their objects gone", settled, timeout=90)
    record("kubelet cut off, pods evicted -> after the heal, old containers stopped and pods gone",
           time.monotonic() - healed)
    c.wait("the Docker node Ready again", lambda: node_ready(c, DOCKER_NODE), timeout=30)
    assert len(running_on(SIM_NODE)) == 2
