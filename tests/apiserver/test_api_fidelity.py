"""What clients found missing or different from Kubernetes in the API (issue 9's list of defects).

Each test names the defect it guards: trailing-slash discovery, the status of freshly created
objects, DefaultTolerationSeconds, the default/kubernetes Service, ephemeral containers on create,
IPv6 on an IPv4-only cluster, NotFound details, the namespace-terminating error naming its object.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


@pytest.mark.parametrize("path", ["/api/", "/apis/", "/api/v1/", "/apis/apps/v1/", "/apis/apps/"])
def test_discovery_answers_with_a_trailing_slash(http: httpx.Client, path: str) -> None:
    with_slash, without = http.get(path), http.get(path.rstrip("/"))
    assert with_slash.status_code == 200, with_slash.text
    assert with_slash.json() == without.json()


def test_created_objects_carry_the_status_kubernetes_returns(http: httpx.Client, namespace: str) -> None:
    labels = {"app": "s"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    created = {
        "services": http.post(f"/api/v1/namespaces/{namespace}/services", json={
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"selector": labels, "ports": [{"port": 80}]}}),
        "deployments": http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json={
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": labels}, "template": template}}),
        "replicasets": http.post(f"/apis/apps/v1/namespaces/{namespace}/replicasets", json={
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
            "spec": {"selector": {"matchLabels": labels}, "template": template}}),
    }
    for r in created.values():
        assert r.status_code == 201, r.text
    assert created["services"].json()["status"] == {"loadBalancer": {}}
    assert created["deployments"].json()["status"] == {}
    assert created["replicasets"].json()["status"] == {"replicas": 0}
    # A status a client sends with the create is dropped, as the /status-only rule says.
    r = http.post(f"/api/v1/namespaces/{namespace}/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "t"},
        "spec": {"ports": [{"port": 80}]}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}})
    assert r.json()["status"] == {"loadBalancer": {}}


def test_pods_get_the_default_not_ready_and_unreachable_tolerations(http: httpx.Client, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/pods"
    plain = http.post(url, json=pod("plain")).json()
    assert plain["spec"]["tolerations"] == [
        {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    ]
    own = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}
    mine = http.post(url, json=pod("mine", tolerations=[own])).json()
    assert mine["spec"]["tolerations"] == [
        own, {"key": NOT_READY, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
    everything = http.post(url, json=pod("all", tolerations=[{"operator": "Exists"}])).json()
    assert everything["spec"]["tolerations"] == [{"operator": "Exists"}]


def test_the_default_kubernetes_service_exists_and_comes_back(http: httpx.Client) -> None:
    svc = http.get("/api/v1/namespaces/default/services/kubernetes").json()
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    assert svc["spec"]["clusterIP"] == "172.28.128.1" and "selector" not in svc["spec"]
    assert svc["spec"]["ports"][0]["name"] == "https" and svc["spec"]["ports"][0]["port"] == 443
    # The apiserver reconciles it every 10 s, as Kubernetes' does.
    assert http.delete("/api/v1/namespaces/default/services/kubernetes").status_code == 200
    deadline = time.monotonic() + 25
    while http.get("/api/v1/namespaces/default/services/kubernetes").status_code == 404:
        assert time.monotonic() < deadline, "default/kubernetes was not recreated"
        time.sleep(0.5)


def test_ephemeral_containers_are_forbidden_on_create(http: httpx.Client, namespace: str) -> None:
    r = http.post(f"/api/v1/namespaces/{namespace}/pods", json=pod(
        "debugged", ephemeralContainers=[{"name": "debugger", "image": "busybox"}]))
    assert r.status_code == 422, r.text
    causes = r.json()["details"]["causes"]
    assert {"reason": "FieldValueForbidden", "message": "Forbidden: cannot be set on create",
            "field": "spec.ephemeralContainers"} in causes


@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"ipFamilies": ["IPv6"]}, "spec.ipFamilies[0]", 'Invalid value: "IPv6": not configured on this cluster'),
    ({"ipFamilyPolicy": "RequireDualStack"}, "spec.ipFamilyPolicy",
     'Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services'),
])
def test_ipv6_services_are_rejected_on_an_ipv4_cluster(http: httpx.Client, namespace: str, spec: dict[str, Any],
                                                       field: str, message: str) -> None:
    r = http.post(f"/api/v1/namespaces/{namespace}/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "v6"},
        "spec": {"ports": [{"port": 80}], **spec}})
    assert r.status_code == 422, r.text
    assert {"reason": "FieldValueInvalid", "message": message, "field": field} in r.json()["details"]["causes"]
    assert http.get(f"/api/v1/namespaces/{namespace}/services/v6").status_code == 404
    ok = http.post(f"/api/v1/namespaces/{namespace}/services", json={
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "v4"},
        "spec": {"ports": [{"port": 80}], "ipFamilyPolicy": "PreferDualStack"}}).json()
    assert ok["spec"]["ipFamilies"] == ["IPv4"] and ok["spec"]["ipFamilyPolicy"] == "PreferDualStack"


@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/default/pods/nope/ephemeralcontainers",  # what kubectl debug asks for
    "/apis/nope/v1/things",
    "/api/v1/namespaces/default/widgets",
])
def test_every_not_found_carries_details(http: httpx.Client, path: str) -> None:
    r = http.get(path)
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    assert isinstance(r.json()["details"], dict)


def test_namespace_terminating_error_names_the_object(http: httpx.Client) -> None:
    ns = f"t-term-{int(time.time() * 1000) % 10**8}"
    assert http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                 "metadata": {"name": ns}}).status_code == 201
    # A finalizer keeps the namespace Terminating while the namespace controller empties it.
    http.post(f"/api/v1/namespaces/{ns}/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    http.delete(f"/api/v1/namespaces/{ns}")
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}})
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["message"] == (f'configmaps "late" is forbidden: unable to create new content in namespace {ns} '
                               "because it is being terminated")
    assert body["details"]["name"] == "late" and body["details"]["kind"] == "configmaps"
    http.patch(f"/api/v1/namespaces/{ns}/configmaps/held", json={"metadata": {"finalizers": None}},
               headers={"Content-Type": "application/merge-patch+json"})


PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
PARTIAL = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"


def test_metadata_only_answers_for_metadata_clients(http: httpx.Client, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/configmaps"
    http.post(url, json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "labels": {"a": "b"}},
                         "data": {"secret": "x"}})
    listed = http.get(url, headers={"Accept": PARTIAL_LIST}).json()
    assert listed["kind"] == "PartialObjectMetadataList" and listed["apiVersion"] == "meta.k8s.io/v1"
    assert listed["metadata"]["resourceVersion"]
    item = listed["items"][0]
    assert item["kind"] == "PartialObjectMetadata" and item["metadata"]["labels"] == {"a": "b"}
    assert "data" not in item
    one = http.get(f"{url}/m", headers={"Accept": PARTIAL}).json()
    assert one["kind"] == "PartialObjectMetadata" and set(one) == {"kind", "apiVersion", "metadata"}
    with http.stream("GET", url, params={"watch": "1", "timeoutSeconds": "1"}, headers={"Accept": PARTIAL}) as r:
        first = next(r.iter_lines())
    assert '"kind":"PartialObjectMetadata"' in first and '"data"' not in first
    r = http.get(url, headers={"Accept": "application/json;as=Foo;v=v1;g=meta.k8s.io"})
    assert r.status_code == 406 and r.json()["reason"] == "NotAcceptable"


def test_json_answers_end_with_a_newline(http: httpx.Client, namespace: str) -> None:
    """As Go's json.Encoder writes them: clients that compare bodies as text depend on it."""
    assert http.get(f"/api/v1/namespaces/{namespace}").content.endswith(b"}\n")
    assert http.get(f"/api/v1/namespaces/{namespace}/configmaps").content.endswith(b"]}\n")
    assert http.get(f"/api/v1/namespaces/{namespace}/configmaps/nope").content.endswith(b"}\n")
