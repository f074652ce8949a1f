"""The web console in a real browser against a real cluster (tests/console/conftest.py): the login,
the nodes view following a Deployment's pods live (each within a second of its creation), scaling
from nothing but the API's watch, and the page surviving an API server it cannot reach."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx

from tests.console.conftest import ConsoleCluster, logged_in, screenshot


def deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "minik8s/busybox:1"}]}}}}


def namespace(admin: httpx.Client) -> str:
    ns = f"ui-{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    return ns


def test_a_login_is_refused_without_a_credential_the_api_server_accepts(page: Any, console_cluster: ConsoleCluster) -> None:
    page.goto(console_cluster.url)
    page.fill("#login-token", "nobody-knows-this-token")
    page.click("form.login button[type=submit]")
    alert = page.wait_for_selector("form.login [role=alert]:not(:empty)")
    assert alert.inner_text().startswith("the API server refused this credential")
    assert page.is_hidden("#nav")
    screenshot(page, "login")


def test_a_deployments_pods_appear_on_the_nodes_view_within_a_second(page: Any, console_cluster: ConsoleCluster) -> None:
    logged_in(page, console_cluster, "admin", route="nodes")
    page.wait_for_selector('[data-node="sim-1"]')
    page.wait_for_selector('[data-node="sim-2"]')
    with console_cluster.admin() as admin:
        ns = namespace(admin)
        rv = admin.get(f"/api/v1/namespaces/{ns}/pods").json()["metadata"]["resourceVersion"]
        created: dict[str, float] = {}  # pod -> when the API's own watch saw it ADDED

        def follow() -> None:
            with console_cluster.admin() as watcher, watcher.stream(
                    "GET", f"/api/v1/namespaces/{ns}/pods",
                    params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "20"}) as r:
                import json
                for line in r.iter_lines():
                    if line:
                        ev = json.loads(line)
                        if ev["type"] == "ADDED":
                            created.setdefault(f"{ns}/{ev['object']['metadata']['name']}", time.monotonic())
                        if len(created) == 4:
                            return
        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.3)
        assert admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, "web", 4)).status_code == 201
        shown: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while len(shown) < 4 and time.monotonic() < deadline:
            for pod in page.eval_on_selector_all(f'[data-pod^="{ns}/"]', "els => els.map(e => e.dataset.pod)"):
                shown.setdefault(pod, time.monotonic())
            time.sleep(0.02)
        t.join(10)
        assert set(shown) == set(created) and len(shown) == 4, (shown, created)
        late = {p: round(shown[p] - created[p], 3) for p in shown if shown[p] - created[p] > 1.0}
        assert not late, f"pods shown more than a second after their creation: {late}"
        # Bound by the scheduler: every block ends up in a node's card, none in the unscheduled lane.
        page.wait_for_function(f"""() => [...document.querySelectorAll('[data-pod^="{ns}/"]')]
            .every(b => b.closest('[data-node]').dataset.node.startsWith('sim-'))""", timeout=15000)
        screenshot(page, "nodes")
        # Scaled down through the API: the blocks go as the pods do, with no reload.
        r = admin.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale", json={"spec": {"replicas": 1}},
                        headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        page.wait_for_function(f"""() => document.querySelectorAll('[data-pod^="{ns}/"]').length === 1""",
                               timeout=15000)


def test_the_overview_counts_nodes_and_pods(page: Any, console_cluster: ConsoleCluster) -> None:
    logged_in(page, console_cluster, "admin", route="overview")
    heading = page.wait_for_selector("#ov-nodes")
    page.wait_for_function("() => document.querySelector('#ov-nodes').textContent.includes('2 of 2 Ready')")
    assert "Nodes: 2 of 2 Ready" in heading.inner_text()
    page.wait_for_selector("dd[data-phase=Running]")
    screenshot(page, "overview")
