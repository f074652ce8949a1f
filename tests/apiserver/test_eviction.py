"""The ``pods/eviction`` subresource over the real apiserver: Kubernetes' answers, status writes, dry runs.

No disruption controller runs here: each test writes the PDB's status itself (as the controller
would) to put the budget in the state it needs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from apiserver.eviction import decremented, delete_options, matching_pdbs, spends_no_budget

Obj = dict[str, Any]


def pod(name: str, *, phase: str = "Running", ready: bool = True, labels: dict[str, str] | None = None) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels if labels is not None else {"app": "web"}},
            "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pdb(name: str, *, selector: Obj | None = None, **spec: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": name},
            "spec": {"selector": selector if selector is not None else {"matchLabels": {"app": "web"}}, **spec}}


def eviction(name: str, **extra: Any) -> Obj:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name}, **extra}


def make_pod(http: httpx.Client, ns: str, body: Obj) -> Obj:
    status = body.pop("status")
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    created["status"] = {**created["status"], **status}
    r = http.put(f"/api/v1/namespaces/{ns}/pods/{body['metadata']['name']}/status", json=created)
    assert r.status_code == 200, r.text
    return dict(r.json())


def make_pdb(http: httpx.Client, ns: str, body: Obj, **state: Any) -> Obj:
    r = http.post(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    created["status"] = {**created["status"], "observedGeneration": 1, **state}
    r = http.put(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{body['metadata']['name']}/status",
                 json=created)
    assert r.status_code == 200, r.text
    return dict(r.json())


def evict(http: httpx.Client, ns: str, name: str, **kw: Any) -> httpx.Response:
    return http.post(f"/api/v1/namespaces/{ns}/pods/{name}/eviction", json=eviction(name, **kw))


def get(http: httpx.Client, path: str) -> httpx.Response:
    return http.get(path)


# ------------------------------------------------------------------------------ pure decisions
@pytest.mark.parametrize("selector,labels,matches", [
    ({"matchLabels": {"app": "web"}}, {"app": "web"}, True),
    ({"matchLabels": {"app": "web"}}, {"app": "db"}, False),
    ({}, {"anything": "x"}, True),  # policy/v1: an empty selector selects every pod of the namespace
    (None, {"app": "web"}, False),  # no selector: none
])
def test_which_budgets_cover_a_pod(selector: Obj | None, labels: dict[str, str], matches: bool) -> None:
    budget = {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"selector": selector}}
    p = {"metadata": {"name": "p", "namespace": "ns", "labels": labels}}
    assert (matching_pdbs(p, [budget]) == [budget]) is matches
    assert matching_pdbs({"metadata": {**p["metadata"], "namespace": "other"}}, [budget]) == []


@pytest.mark.parametrize("ready,policy,current,desired,free", [
    (True, None, 3, 2, False),
    (False, "AlwaysAllow", 0, 2, True),
    (False, None, 2, 2, True),  # the budget is met without it
    (False, "IfHealthyBudget", 1, 2, False),
    (False, None, 0, 0, False),
])
def test_unhealthy_pods_spend_no_budget_when_allowed(ready: bool, policy: str | None, current: int, desired: int,
                                                     free: bool) -> None:
    budget = {"spec": {"unhealthyPodEvictionPolicy": policy} if policy else {},
              "status": {"currentHealthy": current, "desiredHealthy": desired}}
    assert spends_no_budget(pod("p", ready=ready), budget) is free


def test_decrement_spends_one_disruption_and_notes_the_pod() -> None:
    budget = {"metadata": {"name": "b", "generation": 1},
              "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "currentHealthy": 2, "desiredHealthy": 1}}
    new = decremented(budget, "p", now="2026-01-01T00:00:00Z", dry_run=False)
    assert new["status"]["disruptionsAllowed"] == 0
    assert new["status"]["disruptedPods"] == {"p": "2026-01-01T00:00:00Z"}
    assert new["status"]["conditions"][0]["reason"] == "InsufficientPods"
    assert "disruptedPods" not in decremented(budget, "p", now="x", dry_run=True)["status"]
    assert budget["status"]["disruptionsAllowed"] == 1  # the input is never changed


def test_dry_run_comes_from_the_query_or_the_body() -> None:
    assert delete_options(eviction("p"), query_dry_run=True)["dryRun"] == ["All"]
    assert delete_options(eviction("p", deleteOptions={"dryRun": ["All"]}), query_dry_run=False)["dryRun"] == ["All"]
    assert delete_options(eviction("p"), query_dry_run=False)["dryRun"] == []


# ------------------------------------------------------------------------------ over the API
def test_discovery_lists_pods_eviction_as_kubectl_drain_looks_for_it(http: httpx.Client) -> None:
    resources = http.get("/api/v1").json()["resources"]
    entry = next(r for r in resources if r["name"] == "pods/eviction")
    assert entry == {"name": "pods/eviction", "singularName": "", "namespaced": True, "kind": "Eviction",
                     "verbs": ["create"], "group": "policy", "version": "v1"}


def test_no_budget_the_pod_is_deleted_with_a_disruption_target(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("free", labels={"app": "other"}))
    r = evict(http, namespace, "free")
    assert r.status_code == 201, r.text
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
    left = http.get(f"/api/v1/namespaces/{namespace}/pods/free").json()
    assert left["metadata"]["deletionTimestamp"]  # a pod on a node is deleted gracefully
    target = next(c for c in left["status"]["conditions"] if c["type"] == "DisruptionTarget")
    assert (target["status"], target["reason"], target["message"]) == (
        "True", "EvictionByEvictionAPI", "Eviction API: evicting")


def test_budget_exhausted_answers_kubernetes_429(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("web-1"))
    make_pdb(http, namespace, pdb("web-pdb", minAvailable=1), disruptionsAllowed=0, currentHealthy=1,
             desiredHealthy=1, expectedPods=1)
    r = evict(http, namespace, "web-1")
    assert r.status_code == 429
    assert r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Cannot evict pod as it would violate the pod's disruption budget.",
        "reason": "TooManyRequests",
        "details": {"causes": [{"reason": "DisruptionBudget",
                                "message": "The disruption budget web-pdb needs 1 healthy pods and has 1 currently"}]},
        "code": 429}
    assert not http.get(f"/api/v1/namespaces/{namespace}/pods/web-1").json()["metadata"].get("deletionTimestamp")


def test_an_unobserved_budget_answers_429_retry_after_10(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("web-1"))
    budget = make_pdb(http, namespace, pdb("web-pdb", minAvailable=1), disruptionsAllowed=5)
    budget["spec"]["minAvailable"] = 0  # a new generation the controller has not seen yet
    assert http.put(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web-pdb", json=budget).status_code == 200
    r = evict(http, namespace, "web-1")
    assert r.status_code == 429 and r.headers["Retry-After"] == "10"
    assert r.json()["details"] == {"causes": [{"reason": "DisruptionBudget", "message":
                                               "The disruption budget web-pdb is still being processed by the server."}],
                                   "retryAfterSeconds": 10}


def test_allowed_eviction_spends_the_budget_in_the_status(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("web-1"))
    make_pod(http, namespace, pod("web-2"))
    make_pdb(http, namespace, pdb("web-pdb", maxUnavailable=1), disruptionsAllowed=1, currentHealthy=2,
             desiredHealthy=1, expectedPods=2)
    r = evict(http, namespace, "web-1")
    assert r.status_code == 201, r.text
    state = http.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web-pdb").json()["status"]
    assert state["disruptionsAllowed"] == 0 and list(state["disruptedPods"]) == ["web-1"]
    assert {c["type"]: c["reason"] for c in state["conditions"]} == {"DisruptionAllowed": "InsufficientPods"}
    assert evict(http, namespace, "web-2").status_code == 429  # the budget is spent


def test_dry_run_changes_nothing(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("web-1"))
    make_pdb(http, namespace, pdb("web-pdb", minAvailable=0), disruptionsAllowed=1, currentHealthy=1, expectedPods=1)
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/web-1/eviction", params={"dryRun": "All"},
                  json=eviction("web-1"))
    assert r.status_code == 201, r.text
    assert not http.get(f"/api/v1/namespaces/{namespace}/pods/web-1").json()["metadata"].get("deletionTimestamp")
    state = http.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web-pdb").json()["status"]
    assert state["disruptionsAllowed"] == 1 and "disruptedPods" not in state


def test_terminal_and_pending_pods_ignore_the_budget(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("done", phase="Succeeded", ready=False))
    make_pod(http, namespace, pod("waiting", phase="Pending", ready=False))
    make_pdb(http, namespace, pdb("web-pdb", minAvailable=5), disruptionsAllowed=0)
    assert evict(http, namespace, "done").status_code == 201
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/done").status_code == 404  # terminal: gone at once
    assert evict(http, namespace, "waiting").status_code == 201


def test_two_budgets_are_a_500(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("web-1"))
    make_pdb(http, namespace, pdb("a", minAvailable=0), disruptionsAllowed=1)
    make_pdb(http, namespace, pdb("b", selector={}, minAvailable=0), disruptionsAllowed=1)
    r = evict(http, namespace, "web-1")
    assert r.status_code == 500
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                                   "does not support.", "code": 500}


def test_bad_evictions_are_client_errors(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, pod("web-1"))
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/web-1/eviction", json=eviction("other"))
    assert r.status_code == 400 and r.json()["message"] == "name in URL does not match name in Eviction object"
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/web-1/eviction",
                  json={**eviction("web-1"), "kind": "Pod"})
    assert r.status_code == 400
    assert evict(http, namespace, "missing").status_code == 404
    assert http.get(f"/api/v1/namespaces/{namespace}/pods/web-1/eviction").status_code == 405
    # policy/v1beta1 bodies are accepted too.
    r = http.post(f"/api/v1/namespaces/{namespace}/pods/web-1/eviction",
                  json={**eviction("web-1"), "apiVersion": "policy/v1beta1"})
    assert r.status_code == 201, r.text


async def test_concurrent_evictions_spend_the_budget_once(apiserver: Any, http: httpx.Client, namespace: str) -> None:
    for i in range(4):
        make_pod(http, namespace, pod(f"web-{i}"))
    make_pdb(http, namespace, pdb("web-pdb", minAvailable=3), disruptionsAllowed=1, currentHealthy=4,
             desiredHealthy=3, expectedPods=4)
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=30) as client:
        answers = await asyncio.gather(*(client.post(f"/api/v1/namespaces/{namespace}/pods/web-{i}/eviction",
                                                     json=eviction(f"web-{i}")) for i in range(4)))
    assert sorted(r.status_code for r in answers) == [201, 429, 429, 429]
    state = http.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/web-pdb").json()["status"]
    assert state["disruptionsAllowed"] == 0 and len(state["disruptedPods"]) == 1
