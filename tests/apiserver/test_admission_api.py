"""LimitRanger and ResourceQuota admission over the real API (a real apiserver on real etcd).

No quota controller runs here: each test writes the quota's ``status`` itself (as the controller
would), so what is checked is the admission alone: refusals with Kubernetes' messages, the
charge written to ``status.used``, the compare-and-swap that lets one of many parallel creates
take the last slot, dry runs charging nothing, LimitRange defaults and bounds.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.cluster import ApiServerProcess


def pod(name: str, *, resources: dict[str, Any] | None = None, phase: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if resources is not None:
        container["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container]}}


def make_quota(http: httpx.Client, namespace: str, name: str, hard: dict[str, str],
               used: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    url = f"/api/v1/namespaces/{namespace}/resourcequotas"
    r = http.post(url, json={"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": name},
                             "spec": {"hard": hard, **spec}})
    assert r.status_code == 201, r.text
    quota = r.json()
    assert "status" not in quota  # the controller (or this test) writes it
    quota["status"] = {"hard": hard, "used": used if used is not None else {k: "0" for k in hard}}
    r = http.put(f"{url}/{name}/status", json=quota)
    assert r.status_code == 200, r.text
    return dict(r.json())


def used(http: httpx.Client, namespace: str, name: str) -> dict[str, str]:
    r = http.get(f"/api/v1/namespaces/{namespace}/resourcequotas/{name}")
    return dict(r.json()["status"]["used"])


def create_pod(http: httpx.Client, namespace: str, body: dict[str, Any], **params: str) -> httpx.Response:
    return http.post(f"/api/v1/namespaces/{namespace}/pods", json=body, params=params)


def test_pod_count_quota_refuses_the_third_and_charges_used(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "q", {"pods": "2"})
    for name in ("p1", "p2"):
        assert create_pod(http, namespace, pod(name)).status_code == 201
    assert used(http, namespace, "q") == {"pods": "2"}
    # A name in use is refused by the quota check first, and charges nothing.
    assert create_pod(http, namespace, pod("p1")).status_code == 403
    r = create_pod(http, namespace, pod("p3"))
    assert r.status_code == 403, r.text
    status = r.json()
    assert status["reason"] == "Forbidden"
    assert status["message"] == ('pods "p3" is forbidden: exceeded quota: q, requested: pods=1, '
                                 'used: pods=2, limited: pods=2')
    assert status["details"] == {"name": "p3", "kind": "pods"}
    # Other kinds are not limited by a pod quota.
    r = http.post(f"/api/v1/namespaces/{namespace}/configmaps",
                  json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert r.status_code == 201, r.text


def test_quota_status_decides(http: httpx.Client, namespace: str) -> None:
    """As in Kubernetes, admission enforces ``status.hard``: a quota the controller has not seen
    yet limits nothing, one whose usage is unknown for a resource refuses what would consume it."""
    url = f"/api/v1/namespaces/{namespace}/resourcequotas"
    r = http.post(url, json={"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "fresh"},
                             "spec": {"hard": {"pods": "1", "configmaps": "1"}}})
    assert r.status_code == 201, r.text
    assert create_pod(http, namespace, pod("early")).status_code == 201
    quota = r.json()
    quota["status"] = {"hard": {"pods": "1", "configmaps": "1"}, "used": {"configmaps": "0"}}
    assert http.put(f"{url}/fresh/status", json=quota).status_code == 200
    r = create_pod(http, namespace, pod("p"))
    assert r.status_code == 403
    assert r.json()["message"] == 'pods "p" is forbidden: status unknown for quota: fresh, resources: pods'


def test_dry_run_charges_nothing(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "q", {"pods": "1"})
    assert create_pod(http, namespace, pod("p1"), dryRun="All").status_code == 201
    assert used(http, namespace, "q") == {"pods": "0"}
    assert create_pod(http, namespace, pod("p1")).status_code == 201
    r = create_pod(http, namespace, pod("p2"), dryRun="All")
    assert r.status_code == 403 and "exceeded quota: q" in r.json()["message"]


def test_a_create_of_a_name_in_use_charges_nothing(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "q", {"pods": "3"})
    assert create_pod(http, namespace, pod("same")).status_code == 201
    assert create_pod(http, namespace, pod("same")).status_code == 409
    assert used(http, namespace, "q") == {"pods": "1"}


def test_count_quota_for_any_resource(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "objects", {"count/configmaps": "1", "secrets": "0", "services.nodeports": "1"})
    cms = f"/api/v1/namespaces/{namespace}/configmaps"
    assert http.post(cms, json={"metadata": {"name": "a"}}).status_code == 201
    r = http.post(cms, json={"metadata": {"name": "b"}})
    assert r.status_code == 403
    assert r.json()["message"] == ('configmaps "b" is forbidden: exceeded quota: objects, requested: '
                                   'count/configmaps=1, used: count/configmaps=1, limited: count/configmaps=1')
    r = http.post(f"/api/v1/namespaces/{namespace}/secrets", json={"metadata": {"name": "s"}})
    assert r.status_code == 403 and "requested: secrets=1, used: secrets=0, limited: secrets=0" in r.text
    svc = {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}
    r = http.post(f"/api/v1/namespaces/{namespace}/services", json=svc)
    assert r.status_code == 403, r.text
    assert "requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1" in r.text


def test_compute_quota_messages(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "compute", {"requests.cpu": "1", "limits.memory": "1Gi"})
    r = create_pod(http, namespace, pod("bare"))
    assert r.status_code == 403
    assert r.json()["message"] == ('pods "bare" is forbidden: failed quota: compute: must specify '
                                   'limits.memory for: app; requests.cpu for: app')
    sized = {"requests": {"cpu": "600m"}, "limits": {"memory": "512Mi"}}
    assert create_pod(http, namespace, pod("one", resources=sized)).status_code == 201
    assert used(http, namespace, "compute") == {"requests.cpu": "600m", "limits.memory": "512Mi"}
    r = create_pod(http, namespace, pod("two", resources=sized))
    assert r.status_code == 403
    assert r.json()["message"] == ('pods "two" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, '
                                   'used: requests.cpu=600m, limited: requests.cpu=1')
    small = {"requests": {"cpu": "400m"}, "limits": {"memory": "512Mi"}}
    assert create_pod(http, namespace, pod("three", resources=small)).status_code == 201
    assert used(http, namespace, "compute") == {"requests.cpu": "1", "limits.memory": "1Gi"}


def test_scoped_quota_counts_only_matching_pods(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "best-effort", {"pods": "1"}, scopes=["BestEffort"])
    assert create_pod(http, namespace, pod("be1")).status_code == 201
    assert create_pod(http, namespace, pod("be2")).status_code == 403
    sized = {"requests": {"cpu": "100m"}}
    assert create_pod(http, namespace, pod("burstable", resources=sized)).status_code == 201


def test_parallel_creates_for_the_last_slot_exactly_one_wins(apiserver: ApiServerProcess, http: httpx.Client,
                                                             namespace: str) -> None:
    make_quota(http, namespace, "q", {"pods": "3"}, used={"pods": "2"})

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=apiserver.url, timeout=30) as client:
            answers = await asyncio.gather(*(
                client.post(f"/api/v1/namespaces/{namespace}/pods", json=pod(f"racer-{i}")) for i in range(8)))
        return [a.status_code for a in answers]

    codes = asyncio.run(race())
    assert sorted(codes) == [201] + [403] * 7, codes
    assert used(http, namespace, "q") == {"pods": "3"}


def test_limit_range_defaults_and_bounds(http: httpx.Client, namespace: str) -> None:
    r = http.post(f"/api/v1/namespaces/{namespace}/limitranges", json={
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                             "defaultRequest": {"cpu": "250m", "memory": "64Mi"},
                             "max": {"cpu": "1"}, "min": {"cpu": "100m"}}]}})
    assert r.status_code == 201, r.text
    r = create_pod(http, namespace, pod("defaulted"))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m", "memory": "64Mi"}}
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == \
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"
    assert created["status"]["qosClass"] == "Burstable"
    r = create_pod(http, namespace, pod("greedy", resources={"limits": {"cpu": "2"}}))
    assert r.status_code == 403
    assert r.json()["message"] == 'pods "greedy" is forbidden: maximum cpu usage per Container is 1, but limit is 2.'
    r = create_pod(http, namespace, pod("both", resources={"limits": {"cpu": "2"}, "requests": {"cpu": "50m"}}))
    assert r.status_code == 403
    assert r.json()["message"] == ('pods "both" is forbidden: [minimum cpu usage per Container is 100m, but request '
                                   'is 50m., maximum cpu usage per Container is 1, but limit is 2.]')
    r = create_pod(http, namespace, pod("tiny", resources={"requests": {"cpu": "50m"}}))
    assert r.status_code == 403
    assert r.json()["message"] == 'pods "tiny" is forbidden: minimum cpu usage per Container is 100m, but request is 50m.'


def test_invalid_quota_and_limit_range_are_422(http: httpx.Client, namespace: str) -> None:
    r = http.post(f"/api/v1/namespaces/{namespace}/resourcequotas", json={
        "metadata": {"name": "bad"}, "spec": {"hard": {"pods": "1.5", "foo": "1", "cpu": "-1"}}})
    assert r.status_code == 422, r.text
    fields = {(c["field"], c["message"]) for c in r.json()["details"]["causes"]}
    assert ("spec.hard[pods]", 'Invalid value: "1.5": must be an integer') in fields
    assert ("spec.hard[foo]", 'Invalid value: "foo": must be a standard resource for quota') in fields
    assert ("spec.hard[cpu]", 'Invalid value: "-1": must be greater than or equal to 0') in fields
    r = http.post(f"/api/v1/namespaces/{namespace}/limitranges", json={
        "metadata": {"name": "bad"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "2"}, "max": {"cpu": "1"}}]}})
    assert r.status_code == 422, r.text
    # the default request is defaulted from the default limit first, so both are reported
    assert r.json()["details"]["causes"] == [
        {"reason": "FieldValueInvalid", "field": "spec.limits[0].defaultRequest[cpu]",
         "message": 'Invalid value: "2": default request value 2 is greater than max value 1'},
        {"reason": "FieldValueInvalid", "field": "spec.limits[0].default[cpu]",
         "message": 'Invalid value: "2": default value 2 is greater than max value 1'}]


def test_service_type_change_is_charged(http: httpx.Client, namespace: str) -> None:
    make_quota(http, namespace, "ports", {"services.nodeports": "1", "services.loadbalancers": "0"})
    url = f"/api/v1/namespaces/{namespace}/services"
    svc = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}
    assert http.post(url, json=svc).status_code == 201
    r = http.patch(f"{url}/web", json={"spec": {"type": "NodePort"}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 403, r.text
    assert r.json()["message"] == ('services "web" is forbidden: exceeded quota: ports, requested: '
                                   'services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1')
    r = http.patch(f"{url}/web", json={"spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}]}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert used(http, namespace, "ports") == {"services.loadbalancers": "0", "services.nodeports": "1"}
    # an update that adds nothing is not charged again
    r = http.patch(f"{url}/web", json={"metadata": {"labels": {"x": "y"}}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert used(http, namespace, "ports")["services.nodeports"] == "1"


def test_limit_range_max_and_min_become_defaults(http: httpx.Client, namespace: str) -> None:
    """The docs' cpu-constraints example: max 800m, min 200m; a pod that states nothing gets 800m."""
    r = http.post(f"/api/v1/namespaces/{namespace}/limitranges", json={
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "cpu-min-max"},
        "spec": {"limits": [{"type": "Container", "max": {"cpu": "800m"}, "min": {"cpu": "200m"}}]}})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["limits"][0] == {"type": "Container", "max": {"cpu": "800m"}, "min": {"cpu": "200m"},
                                             "default": {"cpu": "800m"}, "defaultRequest": {"cpu": "800m"}}
    r = create_pod(http, namespace, pod("plain"))
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "800m"}, "requests": {"cpu": "800m"}}
