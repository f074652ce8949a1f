"""metrics.k8s.io/v1beta1: quantities as metrics-server writes them, the kubelet summary read,
synthetic usage of simulated nodes; over the real apiserver: discovery, list/get of pods and
nodes, selectors, NotFound."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from apiserver.metricsapi import format_cpu, format_memory, parse_summary, synthetic_usage
from cli.mkctl import app as mkctl
from cli.mkctl.autoscale import hpa_manifest
from tests.cluster import ApiServerProcess


@pytest.mark.parametrize(("nanocores", "text"), [
    (0, "0"), (1_000_000_000, "1"), (250_000_000, "250m"), (12_345, "12345n"), (5_000, "5u"), (1_500_000_000, "1500m"),
])
def test_cpu_quantities(nanocores: int, text: str) -> None:
    assert format_cpu(nanocores) == text


@pytest.mark.parametrize(("value", "text"), [(0, "0"), (1024, "1Ki"), (3 << 20, "3Mi"), (1000, "1000"), (1536, "1536")])
def test_memory_quantities(value: int, text: str) -> None:
    assert format_memory(value) == text


def test_parse_summary() -> None:
    doc = {"node": {"nodeName": "n", "cpu": {"time": "2024-05-01T12:00:00Z", "usageNanoCores": 10},
                    "memory": {"workingSetBytes": 2048}},
           "pods": [{"podRef": {"name": "web", "namespace": "ns"}, "cpu": {"time": "2024-05-01T12:00:00Z"},
                     "containers": [{"name": "b", "cpu": {"usageNanoCores": 3}, "memory": {"workingSetBytes": 5}},
                                    {"name": "a", "cpu": {"usageNanoCores": 7}, "memory": {"workingSetBytes": 6}},
                                    {"name": "no-rate-yet", "memory": {"workingSetBytes": 6}}]}]}
    scrape = parse_summary(doc)
    assert scrape.node == (10, 2048)
    assert scrape.pods[("ns", "web")].containers == (("a", 7, 6), ("b", 3, 5))


def test_synthetic_usage_from_annotation_or_requests() -> None:
    def pod(name: str, annotations: dict[str, str], phase: str = "Running") -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "ns", "annotations": annotations},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m", "memory": "1Mi"}}}]},
                "status": {"phase": phase}}

    scrape = synthetic_usage([pod("a", {"simulated.minik8s.io/cpu-usage": "250m"}), pod("b", {}),
                              pod("c", {}, phase="Pending")], now="2024-05-01T12:00:00Z")
    assert scrape.pods[("ns", "a")].containers == (("c", 250_000_000, 1 << 20),)
    assert scrape.pods[("ns", "b")].containers == (("c", 100_000_000, 1 << 20),)
    assert ("ns", "c") not in scrape.pods
    assert scrape.node == (350_000_000, 2 << 20)


def test_metrics_api_over_http_and_mkctl(apiserver: ApiServerProcess, http: httpx.Client, namespace: str) -> None:
    node = f"sim-{uuid.uuid4().hex[:6]}"
    r = http.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {
        "name": node, "labels": {"minik8s.io/simulated": "true", "zone": "z1"}}})
    assert r.status_code == 201, r.text
    node_obj = r.json()
    node_obj["status"] = {"allocatable": {"cpu": "4", "memory": "1Gi"}, "capacity": {"cpu": "4", "memory": "1Gi"}}
    assert http.put(f"/api/v1/nodes/{node}/status", json=node_obj).status_code == 200
    try:
        for name, labels, usage in (("web-1", {"app": "web"}, "300m"), ("db-1", {"app": "db"}, "20m")):
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {
                "name": name, "labels": labels, "annotations": {"simulated.minik8s.io/cpu-usage": usage}},
                "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox",
                                                            "resources": {"requests": {"memory": "64Mi"}}}]}}
            r = http.post(f"/api/v1/namespaces/{namespace}/pods", json=body)
            assert r.status_code == 201, r.text
            pod = r.json()
            pod["status"] = {"phase": "Running"}
            r = http.put(f"/api/v1/namespaces/{namespace}/pods/{name}/status", json=pod)
            assert r.status_code == 200, r.text

        groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
        assert groups["metrics.k8s.io"]["preferredVersion"]["groupVersion"] == "metrics.k8s.io/v1beta1"
        resources = http.get("/apis/metrics.k8s.io/v1beta1").json()["resources"]
        assert {(x["name"], x["kind"], x["namespaced"]) for x in resources} == {
            ("nodes", "NodeMetrics", False), ("pods", "PodMetrics", True)}

        base = f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods"
        listed = http.get(base).json()
        assert listed["kind"] == "PodMetricsList"
        assert {i["metadata"]["name"]: i["containers"][0]["usage"] for i in listed["items"]} == {
            "web-1": {"cpu": "300m", "memory": "64Mi"}, "db-1": {"cpu": "20m", "memory": "64Mi"}}
        web = http.get(base, params={"labelSelector": "app=web"}).json()["items"]
        assert [i["metadata"]["name"] for i in web] == ["web-1"]
        one = http.get(f"{base}/web-1").json()
        assert one["kind"] == "PodMetrics" and one["window"] and one["timestamp"]
        assert one["metadata"]["labels"] == {"app": "web"}
        missing = http.get(f"{base}/nope")
        assert missing.status_code == 404
        assert missing.json()["message"] == f'podmetrics.metrics.k8s.io "{namespace}/nope" not found'
        everywhere = http.get("/apis/metrics.k8s.io/v1beta1/pods").json()["items"]
        assert {"web-1", "db-1"} <= {i["metadata"]["name"] for i in everywhere}

        got = http.get(f"/apis/metrics.k8s.io/v1beta1/nodes/{node}").json()
        assert got["kind"] == "NodeMetrics" and got["usage"] == {"cpu": "320m", "memory": "128Mi"}
        nodes = http.get("/apis/metrics.k8s.io/v1beta1/nodes", params={"labelSelector": "zone=z1"}).json()
        assert [n["metadata"]["name"] for n in nodes["items"]] == [node]
        assert http.get("/apis/metrics.k8s.io/v1beta1/nodes/nope").status_code == 404
        bad = http.get(base, params={"labelSelector": "a in (b"})
        assert bad.status_code == 400, bad.text

        # mkctl top and autoscale, kubectl's shapes.
        runner = CliRunner()

        def mk(*args: str) -> str:
            result = runner.invoke(mkctl, ["--server", apiserver.url, *args])
            assert result.exit_code == 0, result.output
            return result.output

        assert mk("top", "pod", "-n", namespace, "--sort-by", "cpu").splitlines() == [
            "NAME    CPU(cores)   MEMORY(bytes)   ", "web-1   300m         64Mi            ",
            "db-1    20m          64Mi            "]
        assert "db-1   app    20m" in mk("top", "pod", "db-1", "-n", namespace, "--containers")
        assert mk("top", "node", node, "--no-headers").split() == [node, "320m", "8%", "128Mi", "12%"]
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
            "selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}
        assert http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment).status_code == 201
        assert mk("autoscale", "deployment/web", "-n", namespace, "--max", "4", "--cpu-percent", "60").strip() == \
            "horizontalpodautoscaler.autoscaling/web autoscaled"
        hpa = http.get(f"/apis/autoscaling/v1/namespaces/{namespace}/horizontalpodautoscalers/web").json()
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"], hpa["spec"]["targetCPUUtilizationPercentage"]) \
            == (1, 4, 60)
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
        bad_bounds = runner.invoke(mkctl, ["--server", apiserver.url, "autoscale", "deployment", "web", "-n",
                                           namespace, "--min", "3", "--max", "2"])
        assert bad_bounds.exit_code == 1
        assert "--max=MAXPODS must be larger or equal to --min=MINPODS, max: 2, min: 3" in bad_bounds.output
    finally:
        http.delete(f"/api/v1/nodes/{node}")


def test_autoscale_manifest_without_cpu_percent_leaves_the_metric_to_the_server() -> None:
    manifest = hpa_manifest(name="h", namespace="ns", target_api_version="apps/v1", target_kind="StatefulSet",
                            target_name="db", minimum=-1, maximum=3, cpu_percent=-1)
    assert manifest["spec"] == {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db"},
                                "maxReplicas": 3}
