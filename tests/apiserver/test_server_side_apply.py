"""Server-side apply and managedFields over the real API: what kubectl, controllers and operators rely on."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import yaml

APPLY = "application/apply-patch+yaml"


def deployment(name: str, *, replicas: int | None = 2, labels: dict[str, str] | None = None,
               image: str = "nginx:1.25", env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    labels = labels or {"app": name}
    container: dict[str, Any] = {"name": "web", "image": image}
    if env is not None:
        container["env"] = env
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels}, "spec": spec}


def apply(http: httpx.Client, ns: str, obj: dict[str, Any], *, manager: str = "tester", force: bool = False,
          as_yaml: bool = True, **params: str) -> httpx.Response:
    url = f"/apis/apps/v1/namespaces/{ns}/deployments/{obj['metadata']['name']}"
    body = yaml.safe_dump(obj) if as_yaml else json.dumps(obj)
    query = {"fieldManager": manager, **({"force": "true"} if force else {}), **params}
    return http.patch(url, content=body, params=query, headers={"Content-Type": APPLY})


def managers(obj: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(m["manager"], m["operation"], m.get("subresource", "")): m["fieldsV1"]
            for m in obj["metadata"].get("managedFields") or []}


def test_apply_creates_then_is_a_noop(http: httpx.Client, namespace: str) -> None:
    r = apply(http, namespace, deployment("web"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["spec"]["replicas"] == 2 and created["spec"]["strategy"]["type"] == "RollingUpdate"
    owned = managers(created)[("tester", "Apply", "")]
    assert owned["f:spec"]["f:replicas"] == {} and "f:strategy" not in owned["f:spec"]  # defaults are nobody's
    again = apply(http, namespace, deployment("web"), as_yaml=False)
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_every_write_records_its_manager(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    created = http.post(url, json=deployment("rec"), params={"fieldManager": "kubectl-create"}).json()
    assert list(managers(created)) == [("kubectl-create", "Update", "")]
    entry = created["metadata"]["managedFields"][0]
    assert entry["apiVersion"] == "apps/v1" and entry["fieldsType"] == "FieldsV1" and entry["time"]
    patched = http.patch(f"{url}/rec", json={"spec": {"replicas": 5}},
                         headers={"Content-Type": "application/merge-patch+json", "User-Agent": "my-tool/1.0 (x)"}).json()
    mine = managers(patched)[("my-tool", "Update", "")]
    assert mine == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in managers(patched)[("kubectl-create", "Update", "")]["f:spec"]
    status = dict(patched, status={"replicas": 1})
    after = http.put(f"{url}/rec/status", json=status, params={"fieldManager": "controller"}).json()
    assert managers(after)[("controller", "Update", "status")] == {"f:status": {"f:replicas": {}}}
    scaled = http.patch(f"{url}/rec/scale", json={"spec": {"replicas": 3}}, params={"fieldManager": "scaler"},
                        headers={"Content-Type": "application/merge-patch+json"})
    assert scaled.status_code == 200, scaled.text
    parent = http.get(f"{url}/rec").json()
    assert managers(parent)[("scaler", "Update", "scale")] == {"f:spec": {"f:replicas": {}}}


def test_conflict_names_fields_and_managers_then_force_takes_them(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments/clash"
    assert apply(http, namespace, deployment("clash", replicas=2)).status_code == 201
    http.patch(f"{url}/scale", json={"spec": {"replicas": 7}}, headers={
        "Content-Type": "application/merge-patch+json", "User-Agent": "kubectl/v1.32.4 (linux/amd64)"})
    r = apply(http, namespace, deployment("clash", replicas=3))
    assert r.status_code == 409, r.text
    status = r.json()
    assert status["reason"] == "Conflict"
    assert status["message"] == ('Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
                                 "using apps/v1: .spec.replicas")
    assert status["details"]["causes"] == [{"reason": "FieldManagerConflict", "field": ".spec.replicas",
                                            "message": 'conflict with "kubectl" with subresource "scale" using apps/v1'}]
    assert http.get(url).json()["spec"]["replicas"] == 7  # nothing written
    forced = apply(http, namespace, deployment("clash", replicas=3), force=True)
    assert forced.status_code == 200 and forced.json()["spec"]["replicas"] == 3
    assert ("kubectl", "Update", "scale") not in managers(forced.json())  # it lost its only field


def test_equal_values_are_shared_and_removed_fields_are_pruned(http: httpx.Client, namespace: str) -> None:
    first = deployment("share", labels={"app": "share", "tier": "web"}, env=[{"name": "A", "value": "1"},
                                                                             {"name": "B", "value": "2"}])
    assert apply(http, namespace, first, manager="alice").status_code == 201
    # Bob applies the same replicas: no conflict, both own it.
    bob = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "share"}, "spec": {"replicas": 2}}
    r = apply(http, namespace, bob, manager="bob")
    assert r.status_code == 200, r.text
    assert managers(r.json())[("bob", "Apply", "")] == {"f:spec": {"f:replicas": {}}}
    # Alice drops the tier label, env B and replicas: the label and B go, replicas stays (Bob owns it).
    second = deployment("share", replicas=None, env=[{"name": "A", "value": "1"}])
    r = apply(http, namespace, second, manager="alice")
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["metadata"]["labels"] == {"app": "share"}
    assert obj["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert obj["spec"]["replicas"] == 2


def test_apply_rejects_what_kubernetes_rejects(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/apps/v1/namespaces/{namespace}/deployments/bad"
    r = http.patch(url, content=yaml.safe_dump(deployment("bad")), headers={"Content-Type": APPLY})
    assert r.status_code == 422 and "fieldManager: Required value: is required for apply patch" in r.json()["message"]
    r = http.patch(url, content="{oops", params={"fieldManager": "t"}, headers={"Content-Type": APPLY})
    assert r.status_code == 400, r.text
    wrong = dict(deployment("bad"), apiVersion="apps/v1beta1")
    assert apply(http, namespace, wrong).status_code == 400
    r = http.patch(url, json={"spec": {"replicas": 1}}, params={"fieldManager": "t", "force": "true"},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "force: Forbidden: may not be specified for non-apply patch" in r.json()["message"]
    strict = dict(deployment("bad"), spec={**deployment("bad")["spec"], "bogus": 1})
    r = apply(http, namespace, strict, fieldValidation="Strict")
    assert r.status_code == 400 and 'unknown field "spec.bogus"' in r.json()["message"]
    assert http.get(url).status_code == 404


def test_client_side_apply_moves_to_server_side_without_conflicts(http: httpx.Client, namespace: str) -> None:
    """kubectl's documented upgrade: objects kubectl applied client-side can be applied server-side by kubectl."""
    manifest = deployment("moving", replicas=2)
    annotated = json.loads(json.dumps(manifest))
    annotated["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(manifest, sort_keys=True)}
    r = http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=annotated,
                  params={"fieldManager": "kubectl-client-side-apply"})
    assert r.status_code == 201, r.text
    changed = deployment("moving", replicas=4)
    r = apply(http, namespace, changed, manager="kubectl")
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["spec"]["replicas"] == 4
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 4  # kept in step for a later client-side apply
    assert ("kubectl", "Apply", "") in managers(obj)


@pytest.mark.parametrize("field_manager", ["x" * 129])
def test_field_manager_is_checked(http: httpx.Client, namespace: str, field_manager: str) -> None:
    r = http.post(f"/apis/apps/v1/namespaces/{namespace}/deployments", json=deployment("fm"),
                  params={"fieldManager": field_manager})
    assert r.status_code == 422 and "fieldManager" in r.json()["message"]


def test_custom_resources_track_fields_too(http: httpx.Client, namespace: str) -> None:
    group = f"ssa{namespace.replace('-', '')}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gadgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                      "x-kubernetes-list-map-keys": ["name"],
                                      "items": {"type": "object", "required": ["name"], "properties": {
                                          "name": {"type": "string"}, "port": {"type": "integer"}}}}}}}}}}]}}
    assert http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd).status_code == 201
    try:
        url = f"/apis/{group}/v1/namespaces/{namespace}/gadgets/g"
        import time
        deadline = time.monotonic() + 10
        while http.get(f"/apis/{group}/v1").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)

        def apply_cr(manager: str, ports: list[dict[str, Any]]) -> httpx.Response:
            body = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"ports": ports}}
            return http.patch(url, content=yaml.safe_dump(body), params={"fieldManager": manager},
                              headers={"Content-Type": APPLY})
        assert apply_cr("a", [{"name": "http", "port": 80}]).status_code == 201
        r = apply_cr("b", [{"name": "https", "port": 443}])  # a list-map: the items merge by name
        assert r.status_code == 200, r.text
        assert r.json()["spec"]["ports"] == [{"name": "http", "port": 80}, {"name": "https", "port": 443}]
        r = apply_cr("b", [{"name": "http", "port": 8080}])
        assert r.status_code == 409 and r.json()["details"]["causes"][0]["field"] == '.spec.ports[name="http"].port'
    finally:
        http.delete(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.{group}")
