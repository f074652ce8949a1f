"""The HPA controller against real processes: the session apiserver, a controller-manager running
the replicaset, statefulset and horizontalpodautoscaling controllers with short HPA timings, and a
simulated kubelet whose pods report the usage their annotation says (metrics.k8s.io's simulated
usage). Pods are bound to the simulated node by their template (no scheduler needed).

- a ReplicaSet above target scales up to the default scale-up limit, reports its status,
  conditions and events, and scales back down once the usage drops and the window passes;
- a ``behavior`` policy (1 pod per 60 s) limits the scale-up rate (ScalingLimited ScaleUpLimit);
- a StatefulSet is scaled through its /scale like any other target;
- a target that does not exist: AbleToScale False, FailedGetScale.
"""

from __future__ import annotations

import uuid
from typing import Any, Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess, ComponentProcess
from tests.waiting import wait_for

CPU_ANNOTATION = "simulated.minik8s.io/cpu-usage"
PROCS: list[ComponentProcess] = []


@pytest.fixture(scope="module")
def node(apiserver: ApiServerProcess) -> Iterator[str]:
    name = f"hpa-sim-{uuid.uuid4().hex[:6]}"
    procs = [
        ComponentProcess.start("kubelet", "--simulated", "--server", apiserver.url, "--node-name", name,
                               log_level="warning"),
        ComponentProcess.start("controller-manager", "--server", apiserver.url, "--no-leader-elect",
                               "--healthz-port", "0",
                               "--controllers", "replicaset,statefulset,horizontalpodautoscaling",
                               "--horizontal-pod-autoscaler-sync-period", "1s",
                               "--horizontal-pod-autoscaler-downscale-stabilization", "3s", log_level="warning"),
    ]
    PROCS[:] = procs
    yield name
    for p in procs:
        p.stop()
    httpx.delete(f"{apiserver.url}/api/v1/nodes/{name}")


def template(node: str, app: str, usage: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}, "annotations": {CPU_ANNOTATION: usage}},
            "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox",
                                                       "resources": {"requests": {"cpu": "100m"}}}]}}


def hpa(name: str, kind: str, api_version: str = "apps/v1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name}, "maxReplicas": 6,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                         "type": "Utilization", "averageUtilization": 50}}}], **spec}}


def _replicas(http: httpx.Client, path: str) -> int:
    return int(http.get(path).json()["spec"]["replicas"])


def _hpa_status(http: httpx.Client, namespace: str, name: str) -> dict[str, Any]:
    return dict(http.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}")
                .json().get("status") or {})


def _diagnostics(http: httpx.Client, namespace: str, name: str) -> str:
    pods = http.get(f"/api/v1/namespaces/{namespace}/pods").json()["items"]
    metrics = http.get(f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods").json()
    return (f"HPA status: {_hpa_status(http, namespace, name)}\n"
            f"pods: {[(p['metadata']['name'], (p.get('status') or {}).get('phase'), (p.get('status') or {}).get('conditions')) for p in pods]}\n"
            f"metrics: {metrics}\n" + "\n".join(f"--- {p.name}:\n{p.logs()[-3000:]}" for p in PROCS))


def _conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}


def test_replicaset_scales_up_and_back_down(http: httpx.Client, namespace: str, node: str) -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "web"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template(node, "web", "500m")}}
    assert http.post(f"/apis/apps/v1/namespaces/{namespace}/replicasets", json=rs).status_code == 201
    assert http.post(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
                     json=hpa("web", "ReplicaSet")).status_code == 201
    path = f"/apis/apps/v1/namespaces/{namespace}/replicasets/web"
    # 500m of a 100m request is 500 %: ten times the target, held to max(2 x 1, 4) = 4 in one step.
    wait_for(lambda: _replicas(http, path) == 4, 60, "the HPA scales the ReplicaSet to 4",
             lambda: _diagnostics(http, namespace, "web"))
    status = wait_for(lambda: (s := _hpa_status(http, namespace, "web")).get("desiredReplicas") == 4 and s, 30,
                      "the HPA status shows 4 desired")
    assert status["lastScaleTime"]
    assert status["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 500
    assert _conditions(status)["ScalingActive"] == ("True", "ValidMetricFound")
    events = http.get(f"/api/v1/namespaces/{namespace}/events",
                      params={"fieldSelector": "involvedObject.name=web,involvedObject.kind=HorizontalPodAutoscaler"})
    messages = [e["message"] for e in events.json()["items"]]
    assert "New size: 4; reason: cpu resource utilization (percentage of request) above target" in messages

    # Every pod's usage drops to 10m (2 %): after the 3 s window the HPA goes to minReplicas.
    def quiet() -> bool:
        pods = http.get(f"/api/v1/namespaces/{namespace}/pods", params={"labelSelector": "app=web"}).json()["items"]
        for pod in pods:
            if (pod["metadata"].get("annotations") or {}).get(CPU_ANNOTATION) != "10m":
                http.patch(f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}",
                           json={"metadata": {"annotations": {CPU_ANNOTATION: "10m"}}},
                           headers={"Content-Type": "application/merge-patch+json"})
        return _replicas(http, path) == 1

    wait_for(quiet, 60, "the HPA scales the ReplicaSet back to 1")
    messages = [e["message"] for e in http.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]]
    assert "New size: 1; reason: All metrics below target" in messages


def test_behavior_policy_limits_the_scale_up_rate(http: httpx.Client, namespace: str, node: str) -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "slow"},
          "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "slow"}}, "template": template(node, "slow", "500m")}}
    assert http.post(f"/apis/apps/v1/namespaces/{namespace}/replicasets", json=rs).status_code == 201
    body = hpa("slow", "ReplicaSet", behavior={"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}})
    assert http.post(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers", json=body).status_code == 201
    wait_for(lambda: _conditions(_hpa_status(http, namespace, "slow")).get("ScalingLimited") == ("True", "ScaleUpLimit"),
             60, "the HPA limited by its policy")
    # One pod per 60 s: 1 -> 2, and no further within the period.
    assert _replicas(http, f"/apis/apps/v1/namespaces/{namespace}/replicasets/slow") == 2


def test_statefulset_is_scaled_through_its_scale(http: httpx.Client, namespace: str, node: str) -> None:
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"replicas": 1, "serviceName": "db", "podManagementPolicy": "Parallel",
                    "selector": {"matchLabels": {"app": "db"}}, "template": template(node, "db", "300m")}}
    r = http.post(f"/apis/apps/v1/namespaces/{namespace}/statefulsets", json=sts)
    assert r.status_code == 201, r.text
    assert http.post(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
                     json=hpa("db", "StatefulSet", maxReplicas=3)).status_code == 201
    wait_for(lambda: _replicas(http, f"/apis/apps/v1/namespaces/{namespace}/statefulsets/db") == 3, 60,
             "the HPA scales the StatefulSet to its maxReplicas")


def test_a_missing_target_is_reported(http: httpx.Client, namespace: str, node: str) -> None:
    assert http.post(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
                     json=hpa("ghost", "Deployment")).status_code == 201
    wait_for(lambda: _conditions(_hpa_status(http, namespace, "ghost")).get("AbleToScale") == ("False", "FailedGetScale"),
             30, "AbleToScale False: FailedGetScale")
