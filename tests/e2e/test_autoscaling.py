"""Autoscaling end to end: a pod burning CPU on a Docker node, `kubectl top`, `kubectl autoscale`.

One cluster for the module: etcd, apiserver, scheduler, a controller-manager with short HPA
timings (sync every 2 s, a 15 s scale-down window) and one Docker kubelet on its own network
(``mk-hpa-*``, a free /24 of the test pool). The Deployment's pods burn a core for a while and
then sleep, so the load ends by itself (no exec needed): the HPA made by `kubectl autoscale`
scales it up while they burn and back to one pod after the window.

Without an engine (or the image of scripts/build-images) the module fails when ``CI`` is set
and skips with the reason otherwise (tests.dockertest.checked_runtime).
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from kubelet.runtime import DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NODE = "hpa-1"
HPA_TIMINGS = ("--horizontal-pod-autoscaler-sync-period", "2s",
               "--horizontal-pod-autoscaler-downscale-stabilization", "15s")
BURN_SECONDS = 45
BURNER = (f"end=$(( $(date +%s) + {BURN_SECONDS} )); while [ $(date +%s) -lt $end ]; do :; done; "
          "exec sleep 100000")


class Cluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        super().__init__(tmp, rt, prefix="mk-hpa", label="hpa", docker_nodes=(NODE,),
                         capacity="cpu=4,memory=8Gi,pods=20", network_lower_half=True, cm_flags=HPA_TIMINGS,
                         controllers="replicaset,deployment,horizontalpodautoscaling,namespace,garbagecollector",
                         kubectl_timeout=60)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with docker_started(lambda rt: Cluster(tmp_path_factory.mktemp("autoscaling"), rt), ready_nodes=(NODE,)) as c:
        yield c


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: burn, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: burn}}}}
  template:
    metadata: {{labels: {{app: burn}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: burner
        image: {image}
        command: ["sh", "-c", "{script}"]
        resources: {{requests: {{cpu: 200m, memory: 16Mi}}}}
"""


def _replicas(c: Cluster, ns: str) -> int:
    return int(c.kubectl("get", "deployment", "burn", "-n", ns, "-o", "jsonpath={.spec.replicas}").stdout or 0)


def _millicores(text: str) -> int:
    return int(text[:-1]) if text.endswith("m") else int(float(text) * 1000)


def test_top_shows_the_burner_and_the_hpa_scales_up_then_down(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    ns = f"hpa-{uuid.uuid4().hex[:6]}"
    c.kubectl("create", "namespace", ns)
    manifest = tmp_path / "burn.yaml"
    manifest.write_text(DEPLOYMENT.format(ns=ns, image=IMAGE, script=BURNER))
    started = time.monotonic()
    c.kubectl("apply", "-f", str(manifest))
    c.wait("the burner Running", lambda: "Running" in c.kubectl(
        "get", "pods", "-n", ns, "-o", "jsonpath={.items[*].status.phase}").stdout, 60)

    # kubectl top pod: the burner's CPU is well above zero (a busy loop is close to a core).
    def top_pod() -> int | None:
        p = c.kubectl("top", "pod", "-n", ns, "--no-headers", check=False)
        rows = [line.split() for line in p.stdout.splitlines() if line.strip()]
        if p.returncode != 0 or not rows:
            return None
        cpu = _millicores(rows[0][1])
        return cpu if cpu > 100 else None

    cpu = c.wait("kubectl top pod shows the burner's CPU", top_pod, 60)
    assert cpu > 100
    node_row = c.kubectl("top", "node", "--no-headers").stdout.split()
    assert node_row[0] == NODE and _millicores(node_row[1]) >= 100, node_row
    assert "burner" in c.kubectl("top", "pod", "-n", ns, "--containers").stdout
    # mkctl top pod reads the same API and prints kubectl's columns.
    mk = subprocess.run([sys.executable, "-m", "cli.mkctl", "--kubeconfig", str(c.kubeconfig), "top", "pod", "-n", ns],
                        capture_output=True, text=True, timeout=60)
    assert mk.returncode == 0 and mk.stdout.split()[:3] == ["NAME", "CPU(cores)", "MEMORY(bytes)"], mk.stdout + mk.stderr
    assert _millicores(mk.stdout.split()[4]) > 100, mk.stdout

    c.kubectl("autoscale", "deployment", "burn", "-n", ns, "--cpu-percent=50", "--min=1", "--max=3")
    hpa = c.http.get(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/burn").json()
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 3
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 50}

    c.wait("the HPA scales the Deployment up to 3", lambda: _replicas(c, ns) == 3, 120 - (time.monotonic() - started))
    up_after = time.monotonic() - started
    row = c.kubectl("get", "hpa", "burn", "-n", ns, "--no-headers").stdout.split()
    assert row[:2] == ["burn", "Deployment/burn"] and row[2] == "cpu:" and row[3].endswith("/50%"), row
    status = c.http.get(f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/burn").json()["status"]
    conditions = {x["type"]: x for x in status["conditions"]}
    assert conditions["ScalingActive"]["reason"] == "ValidMetricFound"
    assert status["lastScaleTime"] and status["desiredReplicas"] == 3

    # The burners stop after BURN_SECONDS; the 15 s window passes; back to minReplicas.
    c.wait("the HPA scales the Deployment back down to 1", lambda: _replicas(c, ns) == 1, BURN_SECONDS + 120)
    down_after = time.monotonic() - started
    events = c.kubectl("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler",
                       "-o", "jsonpath={.items[*].message}").stdout
    assert "New size: 3; reason: cpu resource utilization (percentage of request) above target" in events
    assert "New size: 1; reason: All metrics below target" in events
    v1 = c.http.get(f"/apis/autoscaling/v1/namespaces/{ns}/horizontalpodautoscalers/burn").json()
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 50
    print(f"scaled up after {up_after:.0f} s, down after {down_after:.0f} s (from the Deployment's creation)")
    c.kubectl("delete", "namespace", ns, "--wait=false")
