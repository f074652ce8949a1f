"""apply_defaults fills exactly the v1 defaults Kubernetes fills, and never trips over garbage."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from apiserver.kinds.common.podtemplate import default_pull_policy, image_tag
from tests.apiserver.kindtools import apply_defaults


def _pod(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}], **spec}}


@pytest.mark.parametrize(
    ("image", "tag", "policy"),
    [
        ("nginx", "latest", "Always"),
        ("nginx:latest", "latest", "Always"),
        ("nginx:1.25", "1.25", "IfNotPresent"),
        ("docker.io/library/nginx", "latest", "Always"),
        ("localhost:5000/app", "latest", "Always"),
        ("localhost:5000/app:v1", "v1", "IfNotPresent"),
        ("nginx@sha256:" + "a" * 64, "", "IfNotPresent"),
        ("nginx:1.25@sha256:" + "a" * 64, "1.25", "IfNotPresent"),
        ("Nginx", "", "IfNotPresent"),  # unparsable reference: Kubernetes ignores the error
        ("", "", "IfNotPresent"),
    ],
)
def test_pull_policy_follows_the_tag(image: str, tag: str, policy: str) -> None:
    assert image_tag(image) == tag
    assert default_pull_policy(image) == policy


def test_pod_defaults() -> None:
    pod = _pod()
    pod["spec"]["containers"][0].update(
        ports=[{"containerPort": 80}],
        livenessProbe={"httpGet": {"port": 80}},
        readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 5},
        resources={"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}},
        env=[{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
    )
    apply_defaults("Pod", pod)
    spec = pod["spec"]
    assert {k: spec[k] for k in ("restartPolicy", "terminationGracePeriodSeconds", "dnsPolicy", "schedulerName",
                                 "securityContext", "enableServiceLinks")} == {
        "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
        "schedulerName": "default-scheduler", "securityContext": {}, "enableServiceLinks": True}
    container = spec["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert container["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert container["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                          "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert container["readinessProbe"]["periodSeconds"] == 5
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "1Gi"}
    assert container["env"][0]["valueFrom"]["fieldRef"]["apiVersion"] == "v1"
    assert "status" not in pod  # phase and qosClass belong to the registry, not to defaulting


def test_pod_defaults_keep_explicit_values() -> None:
    pod = _pod(restartPolicy="Never", terminationGracePeriodSeconds=0, dnsPolicy="Default", enableServiceLinks=False)
    pod["spec"]["containers"][0]["imagePullPolicy"] = "Never"
    apply_defaults("Pod", pod)
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 0
    assert pod["spec"]["dnsPolicy"] == "Default"
    assert pod["spec"]["enableServiceLinks"] is False
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"


def test_pod_volumes_and_host_network() -> None:
    pod = _pod(hostNetwork=True, volumes=[{"name": "a"}, {"name": "b", "configMap": {"name": "cm"}},
                                          {"name": "c", "hostPath": {"path": "/x"}}])
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 8080}]
    apply_defaults("Pod", pod)
    volumes = pod["spec"]["volumes"]
    assert volumes[0] == {"name": "a", "emptyDir": {}}
    assert volumes[1]["configMap"]["defaultMode"] == 420
    assert volumes[2]["hostPath"]["type"] == ""
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == 8080


def test_pod_without_spec_gets_spec_defaults() -> None:
    pod: dict[str, Any] = {"metadata": {"name": "p"}}
    apply_defaults("Pod", pod)
    assert pod["spec"]["restartPolicy"] == "Always"


def test_deployment_defaults() -> None:
    deployment = {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "1"}}}]}}}}
    apply_defaults("Deployment", deployment)
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Always"
    assert pod_spec["containers"][0]["imagePullPolicy"] == "Always"
    # Pod-only defaults (SetDefaults_Pod) never touch templates, as in Kubernetes.
    assert "enableServiceLinks" not in pod_spec
    assert "requests" not in pod_spec["containers"][0]["resources"]


def test_deployment_recreate_gets_no_rolling_update() -> None:
    deployment = {"spec": {"replicas": 0, "strategy": {"type": "Recreate"}}}
    apply_defaults("Deployment", deployment)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["replicas"] == 0


def test_replica_set_defaults() -> None:
    rs = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x:1"}]}}}}
    apply_defaults("ReplicaSet", rs)
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"
    assert "revisionHistoryLimit" not in rs["spec"]


def test_service_defaults() -> None:
    service = {"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "UDP"}],
                        "selector": {"app": "a"}}}
    apply_defaults("Service", service)
    spec = service["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80},
                             {"port": 443, "targetPort": "https", "protocol": "UDP"}]
    # IP families are the allocator's (on create, from the cluster's families), not defaults.
    assert "ipFamilies" not in spec and "ipFamilyPolicy" not in spec
    assert spec["internalTrafficPolicy"] == "Cluster"
    assert "clusterIP" not in spec
    assert "externalTrafficPolicy" not in spec


def test_service_external_defaults() -> None:
    service = {"spec": {"type": "LoadBalancer", "ports": [{"port": 80}], "sessionAffinity": "ClientIP"}}
    apply_defaults("Service", service)
    spec = service["spec"]
    assert spec["externalTrafficPolicy"] == "Cluster"
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert spec["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_external_name_service_gets_no_ip_families() -> None:
    service = {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    apply_defaults("Service", service)
    assert "ipFamilies" not in service["spec"]
    assert "internalTrafficPolicy" not in service["spec"]


def test_namespace_defaults() -> None:
    namespace: dict[str, Any] = {"metadata": {"name": "team"}}
    apply_defaults("Namespace", namespace)
    assert namespace["spec"] == {"finalizers": ["kubernetes"]}
    assert namespace["status"] == {"phase": "Active"}
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}


def test_namespace_being_deleted_keeps_finalizers_removed() -> None:
    namespace = {"metadata": {"name": "team", "deletionTimestamp": "2024-01-01T00:00:00Z"},
                 "spec": {}, "status": {"phase": "Terminating"}}
    apply_defaults("Namespace", namespace)
    assert namespace["spec"] == {}
    assert namespace["status"]["phase"] == "Terminating"


def test_node_allocatable_defaults_to_capacity() -> None:
    node = {"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "4", "memory": "8Gi"}}}
    apply_defaults("Node", node)
    assert node["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}


def test_endpoints_port_protocol() -> None:
    endpoints = {"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}
    apply_defaults("Endpoints", endpoints)
    assert endpoints["subsets"][0]["ports"][0]["protocol"] == "TCP"


@pytest.mark.parametrize("kind", ["ConfigMap", "Event", "Ingress", "Lease", "Widget"])
def test_kinds_without_defaults_are_untouched(kind: str) -> None:
    obj = {"metadata": {"name": "x"}, "spec": {"rules": [{"http": {"paths": [{"path": "/"}]}}]}, "data": {"a": "b"}}
    before = copy.deepcopy(obj)
    apply_defaults(kind, obj)
    assert obj == before


@pytest.mark.parametrize("kind", ["Pod", "Deployment", "ReplicaSet", "Service", "Namespace", "Node", "Endpoints"])
@pytest.mark.parametrize(
    "garbage",
    [{"spec": []}, {"spec": "x"}, {"spec": {"containers": "x", "template": [], "ports": 3, "strategy": 1}},
     {"spec": {"containers": [1, None, {"ports": [1]}], "template": {"spec": 7}}},
     {"metadata": [], "status": 5, "subsets": [1, {"ports": "x"}]}],
)
def test_garbage_never_raises(kind: str, garbage: dict[str, Any]) -> None:
    apply_defaults(kind, garbage)
