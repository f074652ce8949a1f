"""Acceptance (issue 15): every component of a running cluster serves Prometheus /metrics with
Kubernetes' (and Flux's) metric names, and after a rollout they hold sensible values.

One cluster for the module (tests/e2e/dockercluster.DockerCluster): etcd; the apiserver (its plain
port: the insecure superuser); a scheduler and a controller-manager with their health listeners on
free ports; one Docker kubelet on its own test network (``mk-metrics-*``); and ``minik8s gitops``
following a local Git repository (GitSync gitops-system/default) with its listener on a free port.
No component has a credential, so the component listeners serve /metrics openly (the delegated
authentication of a secured cluster is tests/machinery/test_component_metrics.py's); the kubelet's
API still wants a token, and gets the API server's own (Secret kube-system/minik8s-kubelet-client).

The rollout: ``kubectl create`` of a Deployment of 3 busybox pods (a POST: 201), until 3 are
available. Then each component's /metrics is read and checked, one test per component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from kubelet.runtime import DockerRuntime
from machinery.kubeletauth import SECRET_NAME, SECRET_NAMESPACE, authorization_header, token_of
from machinery.metrics import Sample, parse, value
from tests.cluster import ComponentProcess, free_port
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started
from tests.gitops.gitrepo import GitRepo

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NODE = "metrics-1"
REPLICAS = 3
Samples = dict[str, list[Sample]]

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: {image}
        command: ["sleep", "3600"]
"""


class Cluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.scheduler_port, self.cm_port, self.gitops_port = free_port(), free_port(), free_port()
        super().__init__(tmp, rt, prefix="mk-metrics", label="metrics", docker_nodes=(NODE,),
                         network_lower_half=True, controllers="replicaset,deployment,namespace,garbagecollector",
                         cm_flags=("--healthz-port", str(self.cm_port)),
                         scheduler_flags=("--healthz-port", str(self.scheduler_port)))
        try:
            self.repo = GitRepo.create(tmp, "gitops-repo")
            self.repo.write("app/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-git\n"
                                               "  namespace: gitops-system\ndata:\n  key: v1\n")
            self.sha = self.repo.commit("a ConfigMap")
            self.gitops: ComponentProcess = self.component(
                "gitops", "--repo", self.repo.url, "--path", "app", "--interval", "2s",
                "--cache-dir", str(tmp / "mirrors"), "--webhook-bind-address", "127.0.0.1",
                "--webhook-port", str(self.gitops_port))
            self.procs.append(self.gitops)
        except BaseException:
            self.stop()
            raise

    def scrape(self, url: str, headers: dict[str, str] | None = None) -> Samples:
        r = httpx.get(url, headers=headers, timeout=30)
        assert r.status_code == 200, f"GET {url}: {r.status_code} {r.text[:500]}\n{self.diagnostics()}"
        assert r.headers["content-type"].startswith("text/plain"), r.headers
        return parse(r.text)

    def scrape_until(self, what: str, url: str, holds: Callable[[Samples], bool], *,
                     headers: dict[str, str] | None = None, timeout: float = 30) -> Samples:
        """The first scrape of ``url`` for which ``holds`` is true (counters that come a moment later)."""
        def check() -> Samples | None:
            s = self.scrape(url, headers)
            return s if holds(s) else None
        return dict(self.wait(what, check, timeout))

    def kubelet_url(self) -> str:
        node = self.get(f"/api/v1/nodes/{NODE}") or {}
        port = (((node.get("status") or {}).get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
        assert port, node
        return f"http://127.0.0.1:{port}"

    def kubelet_token(self) -> str:
        token = token_of(self.get(f"/api/v1/namespaces/{SECRET_NAMESPACE}/secrets/{SECRET_NAME}"))
        assert token
        return token


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with docker_started(lambda rt: Cluster(tmp_path_factory.mktemp("metrics"), rt), ready_nodes=(NODE,),
                        timeout=90) as c:
        yield c


@pytest.fixture(scope="module")
def rolled_out(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """The Deployment created (POST) and its 3 pods available."""
    c = cluster
    ns = c.namespace()
    manifest = tmp_path_factory.mktemp("metrics-manifests") / "web.yaml"
    manifest.write_text(DEPLOYMENT.format(ns=ns, replicas=REPLICAS, image=IMAGE))
    c.kubectl("create", "-f", str(manifest))
    c.wait(f"{REPLICAS} replicas available", lambda: ((c.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web") or {})
                                                    .get("status") or {}).get("availableReplicas") == REPLICAS, 120)
    return c


def test_apiserver(rolled_out: Cluster) -> None:
    s = rolled_out.scrape(f"{rolled_out.url}/metrics")
    assert value(s, "apiserver_request_total", verb="POST", resource="deployments", code="201") >= 1, \
        sorted({tuple(sorted(labels.items())) for labels, _ in s.get("apiserver_request_total", [])
                if labels.get("resource") == "deployments"})
    assert value(s, "apiserver_request_total", resource="pods") > 0
    assert value(s, "apiserver_request_duration_seconds_count") > 0
    assert value(s, "etcd_request_duration_seconds_count") > 0
    assert value(s, "process_resident_memory_bytes") > 0


def test_controller_manager(rolled_out: Cluster) -> None:
    s = rolled_out.scrape(f"http://127.0.0.1:{rolled_out.cm_port}/metrics")
    assert value(s, "workqueue_adds_total", name="deployment") >= 1
    assert value(s, "workqueue_adds_total", name="replicaset") >= 1
    assert value(s, "process_resident_memory_bytes") > 0


def test_scheduler(rolled_out: Cluster) -> None:
    s = rolled_out.scrape(f"http://127.0.0.1:{rolled_out.scheduler_port}/metrics")
    assert value(s, "scheduler_schedule_attempts_total", result="scheduled") >= REPLICAS
    assert "scheduler_pending_pods" in s
    assert value(s, "process_resident_memory_bytes") > 0


def test_kubelet(rolled_out: Cluster) -> None:
    c = rolled_out
    url = f"{c.kubelet_url()}/metrics"
    assert httpx.get(url, timeout=30).status_code == 401  # the kubelet's API wants a token
    auth = authorization_header(c.kubelet_token())

    # the SLI counts once the watch brought the Running status back: a moment after the rollout
    s = c.scrape_until("the kubelet's pod start SLI samples", url,
                       lambda t: value(t, "kubelet_pod_start_sli_duration_seconds_count") >= REPLICAS, headers=auth)
    assert value(s, "kubelet_pod_start_duration_seconds_count") >= REPLICAS
    assert 0 < value(s, "kubelet_pod_start_duration_seconds_sum") < REPLICAS * 120
    assert value(s, "kubelet_pod_start_total_duration_seconds_count") >= REPLICAS
    for op in ("run_podsandbox", "create_container", "start_container"):
        assert value(s, "kubelet_runtime_operations_total", operation_type=op) >= REPLICAS, op
        assert value(s, "kubelet_runtime_operations_duration_seconds_count", operation_type=op) >= REPLICAS, op
    assert value(s, "kubelet_pod_worker_duration_seconds_count", operation_type="create") >= REPLICAS
    assert value(s, "process_resident_memory_bytes") > 0
    # housekeeping (every 10 s) counts what runs on the node
    running = c.scrape_until("kubelet_running_pods", url, lambda t: value(t, "kubelet_running_pods") >= REPLICAS,
                             headers=auth)
    assert value(running, "kubelet_running_containers", container_state="running") >= REPLICAS


def test_gitops(rolled_out: Cluster) -> None:
    c = rolled_out
    url = f"http://127.0.0.1:{c.gitops_port}/metrics"
    ref = {"kind": "GitSync", "namespace": "gitops-system", "name": "default"}

    s = c.scrape_until("GitSync gitops-system/default Ready on gitops' /metrics", url,
                       lambda t: value(t, "gotk_reconcile_condition", **ref, type="Ready", status="True") == 1,
                       timeout=60)
    assert value(s, "gotk_reconcile_condition", **ref, type="Ready", status="False") == 0
    assert value(s, "gotk_reconcile_duration_seconds_count", **ref) >= 1
    assert value(s, "gitops_sync_total", **ref, result="Succeeded") >= 1
    assert value(s, "process_resident_memory_bytes") > 0
    assert (c.get("/api/v1/namespaces/gitops-system/configmaps/from-git") or {}).get("data") == {"key": "v1"}


def test_every_listener_keeps_healthz_anonymous(rolled_out: Cluster) -> None:
    c = rolled_out
    for url in (f"http://127.0.0.1:{c.scheduler_port}/healthz", f"http://127.0.0.1:{c.cm_port}/healthz",
                f"http://127.0.0.1:{c.gitops_port}/healthz", f"{c.kubelet_url()}/healthz"):
        r = httpx.get(url, timeout=30)
        assert (r.status_code, r.text) == (200, "ok"), url
