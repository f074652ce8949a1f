"""Access control through the console, in a real browser (tests/console/conftest.py): alice, bound
to a Role that only reads namespace X, sees X's pods, services and events; the all-namespaces
lists show the API server's 403 message in place of data, and nothing of another namespace ever
reaches the page; deleting (or changing) one of X's pods from the YAML view shows the API's 403
message, and the pod stays. The messages shown are compared with what the API says to alice
directly: the console relays her credential and the page shows the API's words."""

from __future__ import annotations

import datetime
from typing import Any

import httpx

from tests.console.conftest import ConsoleCluster, logged_in, screenshot
from tests.console.steps import forbidden_message, go, grant, namespace, shows
from tests.waiting import wait_for

READ = ["get", "list", "watch"]


def pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "minik8s/busybox:1"}]}}


def event(ns: str, name: str, obj: str, reason: str) -> dict[str, Any]:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"name": name, "namespace": ns},
            "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": obj, "namespace": ns},
            "type": "Warning", "reason": reason, "message": f"{reason} for {obj}", "count": 1,
            "source": {"component": "console-test"}, "firstTimestamp": now, "lastTimestamp": now}


def populate(admin: httpx.Client, ns: str, prefix: str) -> None:
    """A pod ``<prefix>-pod``, a Service ``<prefix>-svc`` and an Event ``<prefix>-event`` in ``ns``."""
    assert admin.post(f"/api/v1/namespaces/{ns}/pods", json=pod(f"{prefix}-pod", {"app": prefix})).status_code == 201
    assert admin.post(f"/api/v1/namespaces/{ns}/services", json={
        "metadata": {"name": f"{prefix}-svc"},
        "spec": {"selector": {"app": prefix}, "ports": [{"port": 80}]}}).status_code == 201
    r = admin.post(f"/api/v1/namespaces/{ns}/events", json=event(ns, f"{prefix}-event", f"{prefix}-pod", f"{prefix.upper()}Reason"))
    assert r.status_code == 201, r.text


def test_a_user_allowed_one_namespace_sees_only_it_and_gets_the_apis_403(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        x, y = namespace(admin, "team"), namespace(admin, "other")
        populate(admin, x, "x")
        populate(admin, y, "y")
        grant(admin, x, "alice", "reader", [
            {"apiGroups": [""], "resources": ["pods", "services", "endpoints", "events", "configmaps"], "verbs": READ},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": READ},
            {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": READ}])

    with console_cluster.api.client("alice") as alice:
        wait_for(lambda: alice.get(f"/api/v1/namespaces/{x}/pods").status_code == 200, 15,
                 "the RoleBinding in the authorizer's cache")
        denied = {what: forbidden_message(alice, "GET", f"/api/v1/{what}") for what in ("pods", "services", "events")}
        assert denied["pods"] == ('pods is forbidden: User "alice" cannot list resource "pods" in API group "" '
                                  'at the cluster scope')
        # Asked as a dry run, so nothing could go even if the API allowed it: the same 403 as a delete.
        delete_denied = forbidden_message(alice, "DELETE", f"/api/v1/namespaces/{x}/pods/x-pod", params={"dryRun": "All"})
        assert 'cannot delete resource "pods"' in delete_denied

    def nothing_of_the_other_namespace() -> None:
        content = page.content()
        assert y not in content and "y-pod" not in content and "y-svc" not in content and "YReason" not in content

    logged_in(page, console_cluster, "alice", route=f"pods/{x}")
    assert page.inner_text("#who") == "alice"
    # Each list: X's (X's object shown, nothing of Y's; the login opened X's pods already), then
    # every namespace's (the API's 403 in place of data, and no rows).
    for what, mine, rows, refusal in (
            ("pods", f'[data-pod="{x}/x-pod"]', "[data-pod]", "[data-view=pods] .status-line"),
            ("services", f'[data-service="{x}/x-svc"]', "[data-service]", "[data-error=services]"),
            ("events", f'[data-event="{x}/x-event"][data-reason="XReason"]', "[data-event]", "[data-error=events]")):
        go(page, f"{what}/{x}")
        page.wait_for_selector(mine)
        nothing_of_the_other_namespace()
        go(page, what)
        shows(page, refusal, denied[what], exact=True)
        assert page.query_selector_all(rows) == []
    nothing_of_the_other_namespace()

    # Deleting one of X's pods from its YAML view: a confirm step, then the API's 403, word for word.
    go(page, f"yaml/v1/pods/{x}/x-pod")
    page.wait_for_function("() => document.querySelector('#yaml-text')?.value.includes('name: x-pod')")
    page.get_by_role("button", name="Delete…").click()
    confirm = page.get_by_role("group", name=f"Delete Pod {x}/x-pod?")
    confirm.wait_for()
    assert page.evaluate("document.activeElement.dataset.action") == "cancel-delete"  # the safe choice first
    confirm.get_by_role("button", name="Yes, delete").click()
    page.wait_for_selector('[data-yaml-result][data-outcome="error"]')
    assert page.inner_text("[data-yaml-result]") == delete_denied
    screenshot(page, "rbac-denied")
    # Changing it is refused the same way (an update).
    page.fill("#yaml-text", page.input_value("#yaml-text").replace("app: x", "app: changed"))
    page.get_by_role("button", name="Apply").click()
    shows(page, "[data-yaml-result]", 'cannot update resource "pods"')
    with console_cluster.admin() as admin:
        live = admin.get(f"/api/v1/namespaces/{x}/pods/x-pod")
        assert live.status_code == 200 and live.json()["metadata"]["labels"] == {"app": "x"}
        assert live.json()["metadata"].get("deletionTimestamp") is None
