"""The console's workloads view (console/static/views/workloads.js) in a real browser against a real
cluster (tests/console/conftest.py): a Deployment with its pods, a rolling update drawn as an old and
a new ReplicaSet while it progresses, then only the new one; scale, restart, undo and delete from the
page, checked through the API; a refused action shows the API server's own message; StatefulSets,
DaemonSets and Jobs with their pods."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import httpx

from tests.console.conftest import ConsoleCluster, logged_in, screenshot
from tests.console.steps import forbidden_message, grant, namespace, shows
from tests.waiting import wait_for

MERGE = {"Content-Type": "application/merge-patch+json"}

# The ReplicaSet rows of a workload's card, as the page draws them.
ROWS = """key => [...document.querySelectorAll(`[data-workload="${key}"] .wl-rs[data-role]`)].map(r => ({
    role: r.dataset.role, revision: +r.dataset.revision, image: r.dataset.image, desired: +r.dataset.desired,
    current: +r.dataset.current, ready: +r.dataset.ready, pods: r.querySelectorAll('[data-pod]').length}))"""
HISTORY = """key => [...document.querySelectorAll(`[data-workload="${key}"] table.wl-hist tbody tr`)].map(r => ({
    revision: +r.dataset.revision, image: r.dataset.image, role: r.dataset.role}))"""


def template(name: str, image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "web", "image": image}]}}


def deployment(ns: str, name: str, replicas: int, image: str = "minik8s/busybox:1",
               min_ready: int = 0) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                     "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": template(name, image)}}


def create_deployment(admin: httpx.Client, body: dict[str, Any]) -> str:
    ns = body["metadata"]["namespace"]
    r = admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=body)
    assert r.status_code == 201, r.text
    return f"{ns}/deployment/{body['metadata']['name']}"


def set_image(admin: httpx.Client, ns: str, name: str, image: str) -> None:
    r = admin.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}",
                    json={"spec": {"template": template(name, image)}}, headers=MERGE)
    assert r.status_code == 200, r.text


def rolled_out(page: Any, key: str, image: str, replicas: int, timeout: float = 60) -> None:
    """Waits until the card shows one ReplicaSet, the new one, with every replica ready on ``image``."""
    wait_for(lambda: (lambda rows: len(rows) == 1 and rows[0]["role"] == "new" and rows[0]["image"] == image
                      and rows[0]["ready"] == replicas == rows[0]["pods"])(page.evaluate(ROWS, key)),
             timeout, f"{key} rolled out on {image}", lambda: repr(page.evaluate(ROWS, key)))


def the_deployment(admin: httpx.Client, ns: str, name: str) -> dict[str, Any]:
    r = admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def web_on_the_page(page: Any, console_cluster: ConsoleCluster, admin: httpx.Client, replicas: int) -> tuple[str, str]:
    """Deployment ``web`` with ``replicas`` in a new namespace, and the admin on its workloads page;
    returns (the namespace, the workload's key)."""
    ns = namespace(admin, "wl")
    key = create_deployment(admin, deployment(ns, "web", replicas))
    logged_in(page, console_cluster, "admin", route=f"workloads/{ns}")
    return ns, key


def history_is(page: Any, key: str, rows: list[dict[str, Any]], what: str) -> None:
    """Waits until the card's history table is ``rows`` (revision, image, role), newest first."""
    wait_for(lambda: page.evaluate(HISTORY, key) == rows, 15, what, lambda: repr(page.evaluate(HISTORY, key)))


def history_has(page: Any, key: str, revisions: int, timeout: float) -> None:
    """Waits until the card's history table has ``revisions`` rows."""
    page.wait_for_function(f"key => ({HISTORY})(key).length === {revisions}", arg=key, timeout=timeout)


def result_says(page: Any, key: str, text: str) -> None:
    """Waits until the card's result line (an action's outcome) says ``text``."""
    shows(page, f'[data-workload="{key}"] [data-result]', text, timeout=10000)


def test_a_rolling_update_is_drawn_as_old_and_new_replicasets(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "wl")
        logged_in(page, console_cluster, "admin", route="workloads")
        # minReadySeconds makes each step of the rollout wait a second: the in-between is visible.
        key = create_deployment(admin, deployment(ns, "web", 3, min_ready=1))
        card = page.wait_for_selector(f'[data-workload="{key}"]', timeout=15000)
        assert "web" in card.inner_text()
        rolled_out(page, key, "minik8s/busybox:1", 3)
        pods = page.eval_on_selector_all(f'[data-workload="{key}"] [data-pod]', "els => els.map(e => e.dataset.pod)")
        listed = admin.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
        assert sorted(pods) == sorted(f"{ns}/{p['metadata']['name']}" for p in listed), (pods, listed)

        set_image(admin, ns, "web", "minik8s/busybox:2")
        both: list[dict[str, Any]] | None = None
        seen: list[list[dict[str, Any]]] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = page.evaluate(ROWS, key)
            if not seen or seen[-1] != rows:
                seen.append(rows)
            old = [r for r in rows if r["role"] == "old" and r["current"] > 0]
            new = [r for r in rows if r["role"] == "new" and r["current"] > 0]
            if old and new and both is None:
                both = rows
                screenshot(page, "workloads-rollout")
            if (len(rows) == 1 and rows[0]["role"] == "new" and rows[0]["image"] == "minik8s/busybox:2"
                    and rows[0]["ready"] == 3 and rows[0]["pods"] == 3):
                break
            time.sleep(0.05)
        assert both is not None, f"never an old and a new ReplicaSet with replicas at once: {seen}"
        assert {r["image"] for r in both if r["role"] == "old"} == {"minik8s/busybox:1"}, both
        assert {r["image"] for r in both if r["role"] == "new"} == {"minik8s/busybox:2"}, both
        rolled_out(page, key, "minik8s/busybox:2", 3)
        # The history: both revisions, newest first, with their images; the Progressing condition shown.
        history_is(page, key, [{"revision": 2, "image": "minik8s/busybox:2", "role": "new"},
                               {"revision": 1, "image": "minik8s/busybox:1", "role": "old"}], "the history")
        wait_for(lambda: "NewReplicaSetAvailable" in page.inner_text(
            f'[data-workload="{key}"] [data-condition=Progressing]'), 15, "Progressing: NewReplicaSetAvailable")
        screenshot(page, "workloads")


def test_scaling_from_the_page_changes_spec_replicas(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns, key = web_on_the_page(page, console_cluster, admin, 2)
        replicas = f'[data-workload="{key}"] input[data-action=replicas]'
        page.wait_for_function(f"() => document.querySelector('{replicas}')?.value === '2'", timeout=15000)
        # With the keyboard: the field, a new number, Enter.
        page.focus(replicas)
        page.fill(replicas, "4")
        page.keyboard.press("Enter")
        wait_for(lambda: the_deployment(admin, ns, "web")["spec"]["replicas"] == 4, 15, "spec.replicas 4")
        result_says(page, key, "scaled to 4")
        rolled_out(page, key, "minik8s/busybox:1", 4)
        assert page.input_value(replicas) == "4"


def test_undo_from_the_page_goes_back_to_the_previous_image(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns, key = web_on_the_page(page, console_cluster, admin, 2)
        rolled_out(page, key, "minik8s/busybox:1", 2)
        set_image(admin, ns, "web", "minik8s/busybox:2")
        rolled_out(page, key, "minik8s/busybox:2", 2)
        history_has(page, key, 2, timeout=15000)
        page.click(f'[data-workload="{key}"] button[data-action=undo]')
        wait_for(lambda: the_deployment(admin, ns, "web")["spec"]["template"]["spec"]["containers"][0]["image"]
                 == "minik8s/busybox:1", 15, "the image back to minik8s/busybox:1",
                 lambda: page.inner_text(f'[data-workload="{key}"] [data-result]') )
        result_says(page, key, "rolled back to revision 1")
        rolled_out(page, key, "minik8s/busybox:1", 2)
        # kubectl's rollback reuses revision 1's ReplicaSet, which becomes revision 3.
        history_is(page, key, [{"revision": 3, "image": "minik8s/busybox:1", "role": "new"},
                               {"revision": 2, "image": "minik8s/busybox:2", "role": "old"}],
                   "the history after the undo")
        assert the_deployment(admin, ns, "web")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_restart_from_the_page_sets_the_restarted_at_annotation(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns, key = web_on_the_page(page, console_cluster, admin, 2)
        rolled_out(page, key, "minik8s/busybox:1", 2)
        before = datetime.now(timezone.utc).replace(microsecond=0)
        page.click(f'[data-workload="{key}"] button[data-action=restart]')

        def restarted_at() -> str | None:
            t = the_deployment(admin, ns, "web")["spec"]["template"].get("metadata", {})
            return (t.get("annotations") or {}).get("kubectl.kubernetes.io/restartedAt")
        stamp = wait_for(restarted_at, 15, "the restartedAt annotation")
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert before.timestamp() - 5 <= when.timestamp() <= time.time() + 5, (stamp, before)
        # A new revision rolls the pods over: the history has two.
        history_has(page, key, 2, timeout=30000)


def test_delete_asks_first_then_deletes(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns, key = web_on_the_page(page, console_cluster, admin, 1)
        card = f'[data-workload="{key}"]'
        page.click(f"{card} button[data-action=delete]")
        assert page.is_visible(f"{card} button[data-action=confirm-delete]")
        assert page.evaluate("() => document.activeElement.dataset.action") == "cancel-delete"
        page.keyboard.press("Escape")  # changed their mind: nothing happened
        assert page.is_hidden(f"{card} button[data-action=confirm-delete]")
        assert page.evaluate("() => document.activeElement.dataset.action") == "delete"
        assert admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").status_code == 200
        page.click(f"{card} button[data-action=delete]")
        page.click(f"{card} button[data-action=confirm-delete]")
        wait_for(lambda: admin.get(f"/apis/apps/v1/namespaces/{ns}/deployments/web").status_code == 404, 15,
                 "the Deployment deleted")
        page.wait_for_selector(card, state="detached", timeout=10000)


def test_a_refused_action_shows_the_api_servers_message(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "wl")
        key = create_deployment(admin, deployment(ns, "web", 1))
        # bob may read the namespace's workloads, not change them.
        grant(admin, ns, "bob", "workload-reader", [
            {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"],
             "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}])
    # Every namespace: bob may not list them, and the page says so in the API's words.
    logged_in(page, console_cluster, "bob", route="workloads")
    refused = page.wait_for_selector("[data-kind-section=Deployment] .wl-empty.error", timeout=15000)
    with console_cluster.api.client("bob") as bob:
        assert refused.inner_text() == f"Not allowed: {forbidden_message(bob, 'GET', '/apis/apps/v1/deployments')}"
    assert "choose a namespace" in page.inner_text(".status-line")
    # His namespace: the Deployment is there; scaling it is refused, with the API server's own message.
    page.fill("#wl-namespace", ns)
    page.keyboard.press("Enter")
    card = f'[data-workload="{key}"]'
    page.wait_for_selector(card, timeout=15000)
    page.fill(f"{card} input[data-action=replicas]", "3")
    page.click(f"{card} button[data-action=scale]")
    result = page.wait_for_selector(f"{card} [data-result].error", timeout=10000)
    with console_cluster.api.client("bob") as bob:
        message = forbidden_message(bob, "PATCH", f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale",
                                    json={"spec": {"replicas": 3}}, headers=MERGE)
    assert result.inner_text() == message, (result.inner_text(), message)
    with console_cluster.admin() as admin:
        assert the_deployment(admin, ns, "web")["spec"]["replicas"] == 1


def test_statefulsets_daemonsets_and_jobs_with_their_pods(page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "wl")
        sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns},
               "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                        "template": template("db", "minik8s/busybox:1")}}
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
              "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", "minik8s/busybox:1")}}
        job_template = template("once", "minik8s/busybox:1")
        job_template["spec"]["restartPolicy"] = "Never"
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": ns},
               "spec": {"template": job_template}}
        for plural, group, body in (("statefulsets", "apis/apps/v1", sts), ("daemonsets", "apis/apps/v1", ds),
                                    ("jobs", "apis/batch/v1", job)):
            r = admin.post(f"/{group}/namespaces/{ns}/{plural}", json=body)
            assert r.status_code == 201, r.text
        logged_in(page, console_cluster, "admin", route=f"workloads/{ns}")
        # Every kind at once, each with its pods (the page's watches share one WebSocket).
        for key, pods in ((f"{ns}/statefulset/db", 2), (f"{ns}/daemonset/agent", 2), (f"{ns}/job/once", 1)):
            page.wait_for_function(f"""() => document.querySelectorAll('[data-workload="{key}"] [data-pod]').length
                === {pods}""", timeout=30000)
        assert page.is_visible(f'[data-workload="{ns}/statefulset/db"] input[data-action=replicas]')  # it has /scale
        assert page.query_selector(f'[data-workload="{ns}/daemonset/agent"] input[data-action=replicas]') is None
        assert page.query_selector(f'[data-workload="{ns}/job/once"] button[data-action=restart]') is None
        # "Go to" moves the focus to a kind's section.
        page.click("button[data-jump=Job]")
        assert page.evaluate("() => document.activeElement.closest('[data-kind-section]').dataset.kindSection") == "Job"



def test_undo_of_a_daemonset_goes_back_to_its_previous_controllerrevision(
        page: Any, console_cluster: ConsoleCluster) -> None:
    with console_cluster.admin() as admin:
        ns = namespace(admin, "wl")
        ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
              "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template("agent", "minik8s/busybox:1")}}
        url = f"/apis/apps/v1/namespaces/{ns}/daemonsets/agent"
        r = admin.post(f"/apis/apps/v1/namespaces/{ns}/daemonsets", json=ds)
        assert r.status_code == 201, r.text

        def revisions() -> list[int]:
            listed = admin.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions").json()["items"]
            return sorted(int(c["revision"]) for c in listed)

        wait_for(lambda: revisions() == [1], 30, "the DaemonSet's first ControllerRevision")
        r = admin.patch(url, json={"spec": {"template": template("agent", "minik8s/busybox:2")}}, headers=MERGE)
        assert r.status_code == 200, r.text
        wait_for(lambda: revisions() == [1, 2], 30, "a second ControllerRevision after the image change")
        logged_in(page, console_cluster, "admin", route=f"workloads/{ns}")
        key = f"{ns}/daemonset/agent"
        page.click(f'[data-workload="{key}"] button[data-action=undo]')
        result_says(page, key, "rolled back to revision 1")
        image = admin.get(url).json()["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "minik8s/busybox:1"
        # As kubectl's rollback: revision 1's ControllerRevision is taken up again as the newest.
        wait_for(lambda: revisions() == [2, 3], 30, "revision 1 renumbered 3 by the DaemonSet controller")
