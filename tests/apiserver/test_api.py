"""The REST API over a real apiserver process on real etcd: verbs, metadata, errors, subresources."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest


def deployment(name: str, *, replicas: int = 2, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    labels = labels or {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}, **spec}}


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def deps(ns: str) -> str:
    return f"/apis/apps/v1/namespaces/{ns}/deployments"


def pods(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods"


def assert_status(r: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert r.status_code == code, r.text
    body = r.json()
    assert body["kind"] == "Status" and body["status"] == "Failure"
    assert body["code"] == code and body["reason"] == reason, body
    return body


# ------------------------------------------------------------------------------ create / get
def test_create_sets_metadata_defaults_and_resource_version(http: httpx.Client, namespace: str) -> None:
    r = http.post(deps(namespace), json=deployment("web"))
    assert r.status_code == 201, r.text
    obj = r.json()
    meta = obj["metadata"]
    assert meta["namespace"] == namespace and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    spec = obj["spec"]
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    container = spec["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    got = http.get(f"{deps(namespace)}/web").json()
    assert got == obj


def test_create_twice_is_already_exists(http: httpx.Client, namespace: str) -> None:
    assert http.post(deps(namespace), json=deployment("dup")).status_code == 201
    body = assert_status(http.post(deps(namespace), json=deployment("dup")), 409, "AlreadyExists")
    assert body["message"] == 'deployments.apps "dup" already exists'
    assert body["details"] == {"name": "dup", "group": "apps", "kind": "deployments"}


def test_get_missing_is_not_found_status(http: httpx.Client, namespace: str) -> None:
    body = assert_status(http.get(f"{pods(namespace)}/nope"), 404, "NotFound")
    assert body["message"] == 'pods "nope" not found'


def test_generate_name(http: httpx.Client, namespace: str) -> None:
    body = pod("x")
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "worker-"
    r = http.post(pods(namespace), json=body)
    assert r.status_code == 201, r.text
    name = r.json()["metadata"]["name"]
    assert name.startswith("worker-") and len(name) == len("worker-") + 5


def test_namespace_must_exist(http: httpx.Client) -> None:
    body = assert_status(http.post(pods("no-such-ns"), json=pod("p")), 404, "NotFound")
    assert body["message"] == 'namespaces "no-such-ns" not found'


def test_system_namespaces_exist(http: httpx.Client) -> None:
    names = {n["metadata"]["name"] for n in http.get("/api/v1/namespaces").json()["items"]}
    assert {"default", "kube-system"} <= names


# ------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("mutate,field", [
    (lambda d: d["spec"].update(replicas=-1), "spec.replicas"),
    (lambda d: d["spec"]["template"]["metadata"].update(labels={"app": "other"}), "spec.template.metadata.labels"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("image"), "spec.template.spec.containers[0].image"),
    (lambda d: d["metadata"].update(name="Bad_Name"), "metadata.name"),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"containerPort": 70000}]),
     "spec.template.spec.containers[0].ports[0].containerPort"),
])
def test_invalid_objects_answer_422_with_causes_and_write_nothing(http: httpx.Client, namespace: str,
                                                                  mutate: Any, field: str) -> None:
    body = deployment("inv")
    mutate(body)
    before = http.get(deps(namespace)).json()["metadata"]["resourceVersion"]
    status = assert_status(http.post(deps(namespace), json=body), 422, "Invalid")
    assert field in [c["field"] for c in status["details"]["causes"]], status
    assert status["message"].startswith('Deployment.apps "')
    listed = http.get(deps(namespace)).json()
    assert listed["items"] == [] and listed["metadata"]["resourceVersion"] == before


def test_wrong_json_type_is_bad_request(http: httpx.Client, namespace: str) -> None:
    body = deployment("typed")
    body["spec"]["replicas"] = "three"
    status = assert_status(http.post(deps(namespace), json=body), 400, "BadRequest")
    assert "spec.replicas" in status["message"]


@pytest.mark.parametrize("mode,code", [("Strict", 400), ("Warn", 201), ("Ignore", 201), ("", 201)])
def test_field_validation_modes(http: httpx.Client, namespace: str, mode: str, code: int) -> None:
    body = deployment(f"fv-{mode.lower() or 'default'}")
    body["spec"]["replicaz"] = 3
    r = http.post(deps(namespace), params={"fieldValidation": mode} if mode else {}, json=body)
    assert r.status_code == code, r.text
    if mode == "Strict":
        assert r.json()["message"] == ('Deployment in version "v1" cannot be handled as a Deployment: '
                                       'strict decoding error: unknown field "spec.replicaz"')
    else:
        assert "replicaz" not in r.json()["spec"]  # unknown fields are never stored
        warned = r.headers.get("warning", "")
        assert ('unknown field \\"spec.replicaz\\"' in warned) == (mode in ("Warn", ""))


def test_dry_run_never_persists(http: httpx.Client, namespace: str) -> None:
    r = http.post(deps(namespace), params={"dryRun": "All"}, json=deployment("dry"))
    assert r.status_code == 201 and r.json()["metadata"]["name"] == "dry"
    assert http.get(f"{deps(namespace)}/dry").status_code == 404
    assert http.post(deps(namespace), json=deployment("dry")).status_code == 201
    r = http.delete(f"{deps(namespace)}/dry", params={"dryRun": "All"})
    assert r.status_code == 200
    assert http.get(f"{deps(namespace)}/dry").status_code == 200


# ------------------------------------------------------------------------------ update / patch
def test_update_with_stale_resource_version_conflicts(http: httpx.Client, namespace: str) -> None:
    obj = http.post(deps(namespace), json=deployment("cas")).json()
    fresh = dict(obj, spec={**obj["spec"], "replicas": 3})
    r = http.put(f"{deps(namespace)}/cas", json=fresh)
    assert r.status_code == 200 and r.json()["metadata"]["generation"] == 2
    stale = dict(obj, spec={**obj["spec"], "replicas": 4})
    body = assert_status(http.put(f"{deps(namespace)}/cas", json=stale), 409, "Conflict")
    assert "the object has been modified" in body["message"]
    assert http.get(f"{deps(namespace)}/cas").json()["spec"]["replicas"] == 3


def test_status_is_written_only_through_the_status_subresource(http: httpx.Client, namespace: str) -> None:
    obj = http.post(deps(namespace), json=deployment("st")).json()
    obj["status"] = {"replicas": 7}
    updated = http.put(f"{deps(namespace)}/st", json=obj).json()
    assert updated.get("status", {}).get("replicas") is None
    updated["status"] = {"replicas": 7, "observedGeneration": 1}
    updated["spec"]["replicas"] = 9
    r = http.put(f"{deps(namespace)}/st/status", json=updated)
    assert r.status_code == 200, r.text
    assert r.json()["status"]["replicas"] == 7 and r.json()["spec"]["replicas"] == 2
    assert r.json()["metadata"]["generation"] == 1


def test_noop_update_keeps_resource_version(http: httpx.Client, namespace: str) -> None:
    obj = http.post(deps(namespace), json=deployment("noop")).json()
    again = http.put(f"{deps(namespace)}/noop", json=obj).json()
    assert again["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


@pytest.mark.parametrize("ctype,patch,check", [
    ("application/merge-patch+json", {"spec": {"replicas": 4}}, lambda o: o["spec"]["replicas"] == 4),
    ("application/json-patch+json", [{"op": "replace", "path": "/spec/replicas", "value": 5}],
     lambda o: o["spec"]["replicas"] == 5),
    ("application/strategic-merge-patch+json",
     {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}},
     lambda o: [c["image"] for c in o["spec"]["template"]["spec"]["containers"]] == ["nginx:2"]),
    ("application/merge-patch+json", {"metadata": {"labels": {"extra": "yes"}}},
     lambda o: o["metadata"]["labels"]["extra"] == "yes"),
])
def test_patch_types(http: httpx.Client, namespace: str, ctype: str, patch: Any, check: Any) -> None:
    http.post(deps(namespace), json=deployment("pt"))
    r = http.patch(f"{deps(namespace)}/pt", content=httpx.Request("X", "http://x", json=patch).content,
                   headers={"content-type": ctype})
    assert r.status_code == 200, r.text
    assert check(r.json()) and check(http.get(f"{deps(namespace)}/pt").json())


def test_patch_errors(http: httpx.Client, namespace: str) -> None:
    http.post(deps(namespace), json=deployment("pe"))
    r = http.patch(f"{deps(namespace)}/pe", content=b'[{"op":"remove","path":"/spec/nope"}]',
                   headers={"content-type": "application/json-patch+json"})
    assert_status(r, 422, "Invalid")
    r = http.patch(f"{deps(namespace)}/pe", content=b"{not json", headers={"content-type": "application/merge-patch+json"})
    assert_status(r, 400, "BadRequest")
    r = http.patch(f"{deps(namespace)}/pe", content=b"{}", headers={"content-type": "text/plain"})
    assert_status(r, 415, "UnsupportedMediaType")
    r = http.patch(f"{deps(namespace)}/pe", content=b'{"spec":{"replicas":-3}}',
                   headers={"content-type": "application/merge-patch+json"})
    assert_status(r, 422, "Invalid")
    assert http.get(f"{deps(namespace)}/pe").json()["spec"]["replicas"] == 2


# ------------------------------------------------------------------------------ scale, binding
def test_scale_subresource(http: httpx.Client, namespace: str) -> None:
    http.post(deps(namespace), json=deployment("sc"))
    scale = http.get(f"{deps(namespace)}/sc/scale").json()
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"] == {"replicas": 2} and scale["status"]["selector"] == "app=sc"
    r = http.patch(f"{deps(namespace)}/sc/scale", content=b'{"spec":{"replicas":5}}',
                   headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200 and r.json()["spec"]["replicas"] == 5
    scale = r.json()
    scale["spec"]["replicas"] = 6
    assert http.put(f"{deps(namespace)}/sc/scale", json=scale).status_code == 200
    assert http.get(f"{deps(namespace)}/sc").json()["spec"]["replicas"] == 6
    assert_status(http.put(f"{deps(namespace)}/sc/scale", json=scale), 409, "Conflict")


def test_binding_sets_node_once(http: httpx.Client, namespace: str) -> None:
    http.post(pods(namespace), json=pod("b"))
    binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
               "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
    assert http.post(f"{pods(namespace)}/b/binding", json=binding).status_code == 201
    got = http.get(f"{pods(namespace)}/b").json()
    assert got["spec"]["nodeName"] == "node-1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
    assert_status(http.post(f"{pods(namespace)}/b/binding", json=binding), 409, "Conflict")


def test_pod_log_answers_clearly_without_a_kubelet(http: httpx.Client, namespace: str) -> None:
    http.post(pods(namespace), json=pod("lg"))
    assert_status(http.get(f"{pods(namespace)}/lg/log"), 400, "BadRequest")


# ------------------------------------------------------------------------------ delete
def test_unscheduled_pod_is_deleted_at_once(http: httpx.Client, namespace: str) -> None:
    http.post(pods(namespace), json=pod("gone"))
    assert http.delete(f"{pods(namespace)}/gone").status_code == 200
    assert http.get(f"{pods(namespace)}/gone").status_code == 404


def test_scheduled_pod_is_deleted_gracefully(http: httpx.Client, namespace: str) -> None:
    http.post(pods(namespace), json=pod("grace", nodeName="node-1", terminationGracePeriodSeconds=20))
    r = http.delete(f"{pods(namespace)}/grace")
    assert r.status_code == 200
    marked = http.get(f"{pods(namespace)}/grace").json()
    assert marked["metadata"]["deletionGracePeriodSeconds"] == 20 and marked["metadata"]["deletionTimestamp"]
    http.delete(f"{pods(namespace)}/grace", params={"gracePeriodSeconds": 0})
    assert http.get(f"{pods(namespace)}/grace").status_code == 404


def test_finalizers_hold_deletion_until_removed(http: httpx.Client, namespace: str) -> None:
    body = deployment("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]
    http.post(deps(namespace), json=body)
    assert http.delete(f"{deps(namespace)}/fin").status_code == 200
    held = http.get(f"{deps(namespace)}/fin").json()
    assert held["metadata"]["deletionTimestamp"]
    r = http.patch(f"{deps(namespace)}/fin", content=b'{"metadata":{"finalizers":null}}',
                   headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert http.get(f"{deps(namespace)}/fin").status_code == 404


def test_delete_preconditions(http: httpx.Client, namespace: str) -> None:
    http.post(deps(namespace), json=deployment("pre"))
    r = http.request("DELETE", f"{deps(namespace)}/pre", json={"preconditions": {"uid": "not-the-uid"}})
    assert_status(r, 409, "Conflict")
    assert http.get(f"{deps(namespace)}/pre").status_code == 200


def test_delete_collection_by_label(http: httpx.Client, namespace: str) -> None:
    for i in range(3):
        http.post(deps(namespace), json=deployment(f"dc{i}", labels={"app": f"dc{i}", "tier": "a" if i < 2 else "b"}))
    r = http.delete(deps(namespace), params={"labelSelector": "tier=a"})
    assert r.status_code == 200
    left = [d["metadata"]["name"] for d in http.get(deps(namespace)).json()["items"]]
    assert left == ["dc2"]


def test_namespace_deletion_removes_its_content(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces", json={"metadata": {"name": "doomed-ns"}})
    http.post(deps("doomed-ns"), json=deployment("d"))
    r = http.delete("/api/v1/namespaces/doomed-ns")
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Terminating"
    late = assert_status(http.post(deps("doomed-ns"), json=deployment("late")), 403, "Forbidden")
    assert late["details"]["causes"][0]["reason"] == "NamespaceTerminating"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and http.get("/api/v1/namespaces/doomed-ns").status_code == 200:
        time.sleep(0.2)
    assert http.get("/api/v1/namespaces/doomed-ns").status_code == 404
    assert http.get(deps("doomed-ns")).json()["items"] == []


# ------------------------------------------------------------------------------ list queries
def test_label_and_field_selectors(http: httpx.Client, namespace: str) -> None:
    http.post(pods(namespace), json=pod("a", nodeName="n1"))
    http.post(pods(namespace), json=pod("b"))
    http.post(pods(namespace), json={**pod("c"), "metadata": {"name": "c", "labels": {"app": "x", "env": "prod"}}})

    def names(**params: str) -> list[str]:
        r = http.get(pods(namespace), params=params)
        assert r.status_code == 200, r.text
        return [p["metadata"]["name"] for p in r.json()["items"]]

    assert names(labelSelector="app=a") == ["a"]
    assert names(labelSelector="app!=a") == ["b", "c"]
    assert names(labelSelector="app in (a,b)") == ["a", "b"]
    assert names(labelSelector="app notin (a,b)") == ["c"]
    assert names(labelSelector="env") == ["c"]
    assert names(labelSelector="!env") == ["a", "b"]
    assert names(fieldSelector="spec.nodeName=n1") == ["a"]
    assert names(fieldSelector="spec.nodeName=") == ["b", "c"]
    assert names(fieldSelector="metadata.name=b") == ["b"]
    assert names(fieldSelector="status.phase=Pending,metadata.name!=a") == ["b", "c"]
    assert_status(http.get(pods(namespace), params={"fieldSelector": "spec.bogus=1"}), 400, "BadRequest")
    assert_status(http.get(pods(namespace), params={"labelSelector": "a in in"}), 400, "BadRequest")


def test_all_namespaces_list(http: httpx.Client, namespace: str) -> None:
    http.post(pods(namespace), json=pod("everywhere"))
    items = http.get("/api/v1/pods").json()["items"]
    assert any(p["metadata"]["name"] == "everywhere" and p["metadata"]["namespace"] == namespace for p in items)


def test_pagination_with_limit_and_continue(http: httpx.Client, namespace: str) -> None:
    for i in range(7):
        http.post(pods(namespace), json=pod(f"p{i}"))
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        r = http.get(pods(namespace), params={"limit": 3, **({"continue": token} if token else {})}).json()
        seen += [p["metadata"]["name"] for p in r["items"]]
        pages += 1
        token = r["metadata"].get("continue", "")
        if not token:
            break
        assert r["metadata"]["remainingItemCount"] == 7 - len(seen)
    assert seen == [f"p{i}" for i in range(7)] and pages == 3
    assert_status(http.get(pods(namespace), params={"continue": "garbage"}), 400, "BadRequest")


def test_pages_with_a_selector_cover_the_matches_and_leave_the_count_unset(http: httpx.Client, namespace: str) -> None:
    """As Kubernetes' etcd3 store: remainingItemCount only for an unselective list (it is exact then)."""
    for i in range(9):
        body = pod(f"s{i}")
        body["metadata"]["labels"] = {"odd": str(i % 2)}
        assert http.post(pods(namespace), json=body).status_code == 201
    seen: list[str] = []
    token = ""
    while True:
        r = http.get(pods(namespace), params={"limit": 2, "labelSelector": "odd=1",
                                              **({"continue": token} if token else {})}).json()
        seen += [p["metadata"]["name"] for p in r["items"]]
        token = r["metadata"].get("continue", "")
        if not token:
            break
        assert "remainingItemCount" not in r["metadata"], r["metadata"]
    assert seen == ["s1", "s3", "s5", "s7"]


def test_table_response_for_kubectl(http: httpx.Client, namespace: str) -> None:
    http.post(deps(namespace), json=deployment("tbl"))
    r = http.get(deps(namespace), headers={"accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"})
    table = r.json()
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"] if c["priority"] == 0] == \
        ["Name", "Ready", "Up-to-date", "Available", "Age"]
    assert table["rows"][0]["cells"][:4] == ["tbl", "0/2", 0, 0]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"


# ------------------------------------------------------------------------------ discovery, health
def test_discovery_documents(http: httpx.Client) -> None:
    assert http.get("/version").json()["major"] == "1"
    assert http.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in http.get("/apis").json()["groups"]}
    assert {"apps", "networking.k8s.io", "coordination.k8s.io"} <= groups
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["pods"]["shortNames"] == ["po"] and core["pods"]["namespaced"] is True
    assert {"pods/status", "pods/binding", "pods/log", "services", "namespaces", "nodes"} <= set(core)
    apps = {r["name"]: r for r in http.get("/apis/apps/v1").json()["resources"]}
    assert apps["deployments"]["shortNames"] == ["deploy"] and apps["deployments/scale"]["kind"] == "Scale"
    networking = {r["name"]: r for r in http.get("/apis/networking.k8s.io/v1").json()["resources"]}
    assert networking["ingresses"]["shortNames"] == ["ing"]
    assert networking["ingressclasses"]["namespaced"] is False
    index = http.get("/openapi/v3").json()["paths"]
    assert {"api/v1", "apis/apps/v1"} <= set(index)
    doc = http.get(index["apis/apps/v1"]["serverRelativeURL"]).json()
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert_status(http.get("/apis/nope/v1"), 404, "NotFound")
    assert_status(http.get("/api/v1/namespaces/default/widgets"), 404, "NotFound")


def test_health_endpoints(http: httpx.Client) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert http.get(path).text == "ok"


def test_method_not_allowed_and_bad_bodies(http: httpx.Client, namespace: str) -> None:
    assert_status(http.post(deps(namespace), content=b"{oops", headers={"content-type": "application/json"}),
                  400, "BadRequest")
    assert_status(http.post(deps(namespace), json=[1, 2]), 400, "BadRequest")
    assert_status(http.post(deps(namespace), json={**deployment("k"), "kind": "Pod"}), 400, "BadRequest")
    assert_status(http.put(deps(namespace), json=deployment("k")), 405, "MethodNotAllowed")
    body = deployment("other")
    assert_status(http.put(f"{deps(namespace)}/k", json=body), 400, "BadRequest")


def test_service_gets_a_cluster_ip_that_survives_updates(http: httpx.Client, namespace: str) -> None:
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}
    created = http.post(f"/api/v1/namespaces/{namespace}/services", json=svc).json()
    ip = created["spec"]["clusterIP"]
    assert created["spec"]["clusterIPs"] == [ip] and created["spec"]["ports"][0]["targetPort"] == 80
    svc["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    svc["spec"]["ports"] = [{"port": 81}]
    r = http.put(f"/api/v1/namespaces/{namespace}/services/web", json=svc)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["clusterIP"] == ip
    dup = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web2"},
           "spec": {"clusterIP": ip, "ports": [{"port": 80}]}}
    assert_status(http.post(f"/api/v1/namespaces/{namespace}/services", json=dup), 422, "Invalid")


def test_dry_run_in_delete_options_body(http: httpx.Client, namespace: str) -> None:
    http.post(deps(namespace), json=deployment("drybody"))
    r = http.request("DELETE", f"{deps(namespace)}/drybody",
                     json={"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]})
    assert r.status_code == 200
    assert http.get(f"{deps(namespace)}/drybody").status_code == 200


def test_unknown_field_with_any_characters_is_warned_not_a_500(http: httpx.Client, namespace: str) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "uni"}, "data": {"a": "b"},
            "unknown€": 1, "bell\x07\nline": 2}
    r = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json=body)
    assert r.status_code == 201, r.text
    assert "unknown\\u20ac" in r.headers["warning"] and "bell\\x07\\nline" in r.headers["warning"]


def test_dry_run_update_answers_the_result_at_the_current_version(http: httpx.Client, namespace: str) -> None:
    obj = http.post(deps(namespace), json=deployment("dryupd")).json()
    r = http.patch(f"{deps(namespace)}/dryupd", params={"dryRun": "All"}, content=b'{"spec":{"replicas":7}}',
                   headers={"content-type": "application/merge-patch+json"})
    assert r.status_code == 200
    assert r.json()["spec"]["replicas"] == 7 and r.json()["metadata"]["generation"] == 2
    assert r.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert http.get(f"{deps(namespace)}/dryupd").json() == obj
