"""The console's Git sync view (console/static/views/gitsyncs.js) in a real browser against a real
secured cluster (tests/console/conftest.py's ``console_cluster``) with the real ``minik8s gitops``
(its own client certificate, system:minik8s:gitops) following a local Git repository
(tests/gitops/gitrepo.py) by ``file://`` URL.

What is proved: the page shows what ``kubectl get gs -o yaml`` says (revision, conditions,
inventory with health, field by field); a ``kubectl scale`` of a managed Deployment appears on the
drift timeline live (the page is not reloaded); "Sync now" makes gitops fetch a new commit at once;
suspend and resume from the page change ``spec.suspend``; the "Next sync" card shows the diff
gitops publishes in ``status.nextSync``; a user RBAC lets read but not patch sees
the API server's refusal.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
import yaml

from tests.cluster import ComponentProcess
from tests.console.conftest import ConsoleCluster, logged_in, screenshot
from tests.console.test_console_browser import LOW_CONTRAST, namespace
from tests.gitops.gitrepo import GitRepo
from tests.gitops.test_sync import configmap, deployment, service
from tests.waiting import wait_for

GS = "/apis/gitops.minik8s.io/v1"
NAME = "shop"


class _NoTimestamps(yaml.SafeLoader):
    """kubectl's YAML read as text: timestamps stay the strings the API server wrote."""


_NoTimestamps.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


@dataclass
class GitSyncSetup:
    cluster: ConsoleCluster
    gitops: ComponentProcess
    repo: GitRepo
    ns: str

    @property
    def route(self) -> str:
        return f"gitsyncs/{self.ns}/{NAME}"

    def kubectl_gs(self) -> dict[str, Any]:
        """``kubectl get gs NAME -o yaml`` as the admin (the real kubectl)."""
        r = self.cluster.api.kubectl("admin", "get", "gs", NAME, "-n", self.ns, "-o", "yaml")
        assert r.returncode == 0, r.stderr
        return dict(yaml.load(r.stdout, Loader=_NoTimestamps))

    def get(self, path: str) -> dict[str, Any]:
        with self.cluster.admin() as admin:
            r = admin.get(path)
            assert r.status_code == 200, r.text
            return dict(r.json())

    def sync(self) -> dict[str, Any]:
        return self.get(f"{GS}/namespaces/{self.ns}/gitsyncs/{NAME}")

    def diagnostics(self) -> str:
        return f"--- gitops (exit {self.gitops.proc.poll()}):\n{self.gitops.logs()[-4000:]}\n--- GitSync:\n" + \
            json.dumps(self.sync().get("status"), indent=1)[-4000:]

    def wait_ready(self, sha: str, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            obj = self.sync()
            st = obj.get("status") or {}
            ready = next((c for c in st.get("conditions") or [] if c["type"] == "Ready"), {})
            return obj if str(st.get("lastAppliedRevision", "")).endswith(sha) and ready.get("status") == "True" else None
        return dict(wait_for(check, timeout, f"GitSync {self.ns}/{NAME} Ready at {sha[:7]}", self.diagnostics))


@pytest.fixture(scope="module")
def setup(console_cluster: ConsoleCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitSyncSetup]:
    tmp = tmp_path_factory.mktemp("gitsync")
    api = console_cluster.api
    # Its own identity (system:minik8s:gitops, bound to cluster-admin as Flux is); no webhook port.
    gitops = api.start_component("gitops", "--cache-dir", str(tmp / "mirrors"), "--webhook-port", "0")
    with api.client("admin") as admin:
        wait_for(lambda: admin.get(f"{GS}/gitsyncs").status_code == 200, 60,
                 "the GitSync CRD installed by minik8s gitops", lambda: gitops.logs()[-3000:])
        ns = namespace(admin)
        repo = GitRepo.create(tmp)
        repo.write("deploy/web.yaml", deployment("web", replicas=2) + "---\n" + service("web"))
        repo.write("deploy/config.yaml", configmap("settings"))
        sha = repo.commit("web, its service and settings")
        body = {"apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync", "metadata": {"name": NAME, "namespace": ns},
                "spec": {"url": repo.url, "ref": {"branch": "main"}, "path": "deploy", "interval": "1h",
                         "targetNamespace": ns}}
        r = admin.post(f"{GS}/namespaces/{ns}/gitsyncs", json=body)
        assert r.status_code == 201, r.text
    s = GitSyncSetup(console_cluster, gitops, repo, ns)
    s.wait_ready(sha, 90)
    yield s


# ------------------------------------------------------------------ what the page shows
SHOWN = """() => {
  const one = (sel) => { const e = document.querySelector(sel); return e ? e.textContent : null; };
  return {
    state: one('[data-view=gitsyncs] h1 [data-field=state]'),
    url: one('[data-section=source] [data-field=url]'),
    path: one('[data-section=source] [data-field=path]'),
    ref: one('[data-section=source] [data-field=ref]'),
    lastAppliedRevision: one('[data-section=source] [data-field=lastAppliedRevision]'),
    fetchedRevision: one('[data-section=source] [data-field=fetchedRevision]'),
    conditions: [...document.querySelectorAll('tr[data-condition]')].map((tr) => ({
      type: tr.dataset.condition,
      status: tr.querySelector('[data-field=status]').textContent,
      reason: tr.querySelector('[data-field=reason]').textContent,
      message: tr.querySelector('[data-field=message]').textContent,
      lastTransitionTime: (tr.querySelector('[data-field=lastTransitionTime] time') || {}).dateTime || null,
    })),
    inventory: [...document.querySelectorAll('li[data-inventory]')].map((li) => ({
      apiVersion: li.dataset.apiVersion, kind: li.dataset.kind, namespace: li.dataset.namespace,
      name: li.dataset.name, uid: li.dataset.uid, health: li.dataset.recordedHealth, live: li.dataset.health,
    })),
  };
}"""


def expected(gs: dict[str, Any]) -> dict[str, Any]:
    """What the page should show of one GitSync, from kubectl's YAML."""
    spec, st = gs["spec"], gs.get("status") or {}
    applied = st.get("lastAppliedRevision")
    fetched = st.get("fetchedRevision")
    return {
        "url": spec["url"], "path": spec.get("path") or ".", "ref": f"branch {spec['ref']['branch']}",
        "lastAppliedRevision": applied, "fetchedRevision": fetched if fetched != applied else None,
        "conditions": [{"type": c["type"], "status": c["status"], "reason": c.get("reason", ""),
                        "message": c.get("message", ""), "lastTransitionTime": c.get("lastTransitionTime")}
                       for c in st.get("conditions") or []],
        "inventory": sorted(({"apiVersion": e["apiVersion"], "kind": e["kind"], "namespace": e.get("namespace", ""),
                              "name": e["name"], "uid": e["uid"], "health": e.get("health", "")}
                             for e in st.get("inventory") or []),
                            key=lambda e: (e["kind"], e["namespace"], e["name"])),
    }


def shown(page: Any) -> dict[str, Any]:
    got = dict(page.evaluate(SHOWN))
    got["inventory"] = sorted(got["inventory"], key=lambda e: (e["kind"], e["namespace"], e["name"]))
    return got


def mismatches(page: Any, gs: dict[str, Any]) -> list[str]:
    got, want = shown(page), expected(gs)
    out = [f"{k}: page {got.get(k)!r} != kubectl {v!r}" for k, v in want.items() if k != "inventory" and got.get(k) != v]
    page_inv = [{k: v for k, v in e.items() if k != "live"} for e in got["inventory"]]
    if page_inv != want["inventory"]:
        out.append(f"inventory: page {page_inv} != kubectl {want['inventory']}")
    return out


def open_detail(page: Any, s: GitSyncSetup, who: str = "admin") -> Any:
    logged_in(page, s.cluster, who, route=s.route)
    page.wait_for_selector('[data-view=gitsyncs] [data-section=inventory]')
    return page


# ------------------------------------------------------------------ tests
def test_the_page_shows_what_kubectl_get_gs_says(page: Any, setup: GitSyncSetup) -> None:
    s = setup
    open_detail(page, s)
    page.wait_for_selector(f'li[data-inventory="Deployment/{s.ns}/web"][data-health=Healthy]', timeout=30000)
    last: list[str] = []

    def agree() -> bool:
        last[:] = mismatches(page, s.kubectl_gs())
        return not last
    wait_for(agree, 30, "the page to agree with kubectl get gs -o yaml", lambda: "\n".join(last))
    gs = s.kubectl_gs()
    got = shown(page)
    # Field by field, after they agree: what was compared, spelled out.
    st = gs["status"]
    assert got["lastAppliedRevision"] == st["lastAppliedRevision"] and got["lastAppliedRevision"].startswith("main@sha1:")
    assert got["fetchedRevision"] is None and st["fetchedRevision"] == st["lastAppliedRevision"]
    assert [c["type"] for c in got["conditions"]] == [c["type"] for c in st["conditions"]] == \
        ["SourceReady", "Applied", "Healthy", "Ready"]
    for mine, theirs in zip(got["conditions"], st["conditions"]):
        assert (mine["status"], mine["reason"], mine["message"], mine["lastTransitionTime"]) == \
            (theirs["status"], theirs["reason"], theirs["message"], theirs["lastTransitionTime"])
    assert {(e["kind"], e["name"]) for e in got["inventory"]} == {
        ("Deployment", "web"), ("Service", "web"), ("ConfigMap", "settings")}
    assert {e["uid"] for e in got["inventory"]} == {e["uid"] for e in st["inventory"]}
    # Health from each object's own live state agrees with what gitops recorded.
    assert all(e["live"] == e["health"] == "Healthy" for e in got["inventory"]), got["inventory"]
    assert got["state"] == "Ready"
    # The tree: the Deployment's pods under it, each with its health.
    pods = {p["metadata"]["name"] for p in s.get(f"/api/v1/namespaces/{s.ns}/pods")["items"]
            if p["metadata"].get("labels", {}).get("app") == "web" and not p["metadata"].get("deletionTimestamp")}
    page.wait_for_function(f"""(n) => document.querySelectorAll(
        'li[data-inventory="Deployment/{s.ns}/web"] li[data-child^="Pod/"][data-health=Healthy]'
      ).length === n""", arg=len(pods), timeout=15000)
    tree_pods = set(page.eval_on_selector_all(f'li[data-inventory="Deployment/{s.ns}/web"] li[data-child^="Pod/"]',
                                              "els => els.map(e => e.dataset.child.split('/')[2])"))
    assert tree_pods == pods
    # The list view's row says the same as kubectl get gs -A's columns.
    page.goto(f"{s.cluster.url}/#/gitsyncs")
    row = page.wait_for_selector(f'tr[data-gitsync="{s.ns}/{NAME}"]')
    assert row.query_selector("[data-field=revision]").inner_text() == st["revision"]
    assert row.query_selector("[data-field=state]").inner_text() == "Ready"
    screenshot(page, "gitsyncs-list")


def test_a_kubectl_scale_shows_as_a_drift_correction_live(page: Any, setup: GitSyncSetup) -> None:
    s = setup
    open_detail(page, s)
    page.wait_for_selector(f'li[data-inventory="Deployment/{s.ns}/web"][data-health=Healthy]', timeout=30000)
    page.wait_for_selector("[data-section=drift] [data-field=no-drift], [data-section=drift] .gs-timeline")
    before = dict(page.eval_on_selector_all("[data-drift]", "els => els.map(e => [e.dataset.drift, e.dataset.count])"))
    page.evaluate("() => { window.__notReloaded = true; }")

    r = s.cluster.api.kubectl("admin", "scale", "deployment/web", "--replicas=5", "-n", s.ns)
    assert r.returncode == 0, r.stderr
    handle = page.wait_for_function("""(before) => {
        for (const e of document.querySelectorAll('[data-drift][data-reason=DriftCorrected]')) {
          const fields = e.querySelector('[data-field=fields]').textContent;
          const object = e.querySelector('[data-field=object]').textContent;
          if (fields.includes('spec.replicas') && object.endsWith('/web')
              && (!(e.dataset.drift in before) || Number(e.dataset.count) > Number(before[e.dataset.drift]))) {
            return e.dataset.drift;
          }
        }
        return false;
    }""", arg=before, timeout=20000)
    event_name = handle.json_value()
    assert page.evaluate("() => window.__notReloaded === true"), "the page was reloaded"
    # The entry is the DriftCorrected Event gitops recorded about this GitSync.
    event = s.get(f"/api/v1/namespaces/{s.ns}/events/{event_name}")
    assert event["reason"] == "DriftCorrected" and event["involvedObject"]["kind"] == "GitSync"
    assert event["involvedObject"]["name"] == NAME and "spec.replicas" in event["message"]
    # Put back to Git's 2 replicas, and the run is in the history the page shows.
    wait_for(lambda: s.get(f"/apis/apps/v1/namespaces/{s.ns}/deployments/web")["spec"]["replicas"] == 2, 15,
             "the Deployment back at Git's 2 replicas", s.diagnostics)
    page.wait_for_selector("[data-section=runs] tr[data-result=DriftCorrected]", timeout=15000)
    page.wait_for_selector(f'li[data-inventory="Deployment/{s.ns}/web"][data-health=Healthy]', timeout=30000)
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, "gitsync")
    page.locator("[data-section=drift]").scroll_into_view_if_needed()
    screenshot(page, "gitsync-drift")


def test_sync_now_fetches_a_new_commit_at_once(page: Any, setup: GitSyncSetup) -> None:
    s = setup
    open_detail(page, s)
    page.wait_for_selector("[data-action=sync]:not([disabled])")
    s.repo.write("deploy/config.yaml", configmap("settings", "v2"))
    sha = s.repo.commit("settings v2")
    # The interval is an hour: only the request makes gitops fetch.
    page.click("[data-action=sync]")
    page.wait_for_function("""(sha) => (document.querySelector('[data-section=source] [data-field=lastAppliedRevision]')
        || {}).textContent?.endsWith(sha)""", arg=sha, timeout=30000)
    page.wait_for_function("""() => document.querySelector('[data-field=action-status]').textContent
        .includes('synced: applied revision')""", timeout=30000)
    obj = s.sync()
    assert obj["status"]["lastHandledRequestedAt"] == obj["metadata"]["annotations"]["gitops.minik8s.io/requestedAt"]
    assert s.get(f"/api/v1/namespaces/{s.ns}/configmaps/settings")["data"] == {"key": "v2"}


def test_suspend_and_resume_from_the_page_change_spec_suspend(page: Any, setup: GitSyncSetup) -> None:
    s = setup
    open_detail(page, s)
    page.wait_for_selector("[data-action=suspend]:not([disabled])")
    requested_before = (s.sync()["metadata"].get("annotations") or {}).get("gitops.minik8s.io/requestedAt")

    page.click("[data-action=suspend]")
    wait_for(lambda: s.kubectl_gs()["spec"].get("suspend") is True, 15, "spec.suspend true", s.diagnostics)
    page.wait_for_selector("[data-action=resume]")
    page.wait_for_function("() => document.querySelector('h1 [data-field=state]').textContent === 'Suspended'")
    page.wait_for_selector("tr[data-condition=Ready] [data-field=reason]:text-is('Suspended')", timeout=15000)
    assert page.is_disabled("[data-action=sync]")

    page.click("[data-action=resume]")
    wait_for(lambda: s.kubectl_gs()["spec"].get("suspend") is False, 15, "spec.suspend false", s.diagnostics)
    page.wait_for_selector("[data-action=suspend]")
    # Resume also requests a sync, as mkctl gitops resume does; the page follows it to its outcome.
    page.wait_for_function("""() => document.querySelector('[data-field=action-status]').textContent
        .includes('Resume: synced')""", timeout=30000)
    meta = s.sync()["metadata"]
    assert meta["annotations"]["gitops.minik8s.io/requestedAt"] != requested_before
    page.wait_for_selector("tr[data-condition=Ready] [data-field=reason]:text-is('Succeeded')", timeout=30000)


def test_the_next_sync_card_shows_the_diff_gitops_publishes(page: Any, setup: GitSyncSetup) -> None:
    """Suspended, a kubectl scale is not put back: the "Next sync" card shows what resuming would
    change, with the diff gitops published in status.nextSync (kubectl sees the same)."""
    s = setup
    open_detail(page, s)
    page.wait_for_selector("[data-section=next] [data-field=next-summary]", timeout=30000)
    assert "create 0 / update 0 / prune 0" in page.text_content("[data-section=next] [data-field=next-summary]")
    patch = ["patch", "gs", NAME, "-n", s.ns, "--type=merge", "-p"]
    r = s.cluster.api.kubectl("admin", *patch, '{"spec":{"suspend":true}}')
    assert r.returncode == 0, r.stderr
    try:
        r = s.cluster.api.kubectl("admin", "scale", "deployment/web", "--replicas=4", "-n", s.ns)
        assert r.returncode == 0, r.stderr
        page.wait_for_function("""() => (document.querySelector('[data-section=next] [data-field=next-summary]')
            || {}).textContent === 'create 0 / update 1 / prune 0'""", timeout=20000)
        change = page.locator(f'[data-section=next] details[data-change="update Deployment {s.ns}/web"]')
        assert "suspended" in change.locator("summary").text_content()
        change.locator("summary").click()
        diff = change.locator("pre.gs-diff")
        diff.wait_for()
        lines = diff.locator("span.diff-del").all_text_contents()
        assert any("replicas: 4" in line for line in lines) and \
            any("replicas: 2" in line for line in diff.locator("span.diff-add").all_text_contents())
        # What the page draws is what any client reads.
        published = s.kubectl_gs()["status"]["nextSync"]
        assert published["summary"] == "create 0 / update 1 / prune 0"
        assert [c["name"] for c in published["changes"]] == ["web"]
        assert published["changes"][0]["diff"].strip() == diff.text_content().strip()
        # Opened diffs stay open while the status streams in.
        page.wait_for_timeout(1500)
        assert change.get_attribute("open") is not None
        assert s.get(f"/apis/apps/v1/namespaces/{s.ns}/deployments/web")["spec"]["replicas"] == 4
        change.scroll_into_view_if_needed()
        screenshot(page, "gitsync-next")
        assert page.evaluate(LOW_CONTRAST) == []  # the diff's colours, the notes, the badges
    finally:
        r = s.cluster.api.kubectl("admin", *patch, '{"spec":{"suspend":false}}')
        assert r.returncode == 0, r.stderr
    wait_for(lambda: s.get(f"/apis/apps/v1/namespaces/{s.ns}/deployments/web")["spec"]["replicas"] == 2, 30,
             "the Deployment back at Git's 2 replicas after the resume", s.diagnostics)
    page.wait_for_function("""() => (document.querySelector('[data-section=next] [data-field=next-summary]')
        || {}).textContent === 'create 0 / update 0 / prune 0'""", timeout=20000)


def test_rbac_decides_what_a_user_may_do(page: Any, setup: GitSyncSetup) -> None:
    """alice may read GitSyncs and Events of the namespace, not patch them: the page shows the
    API server's own refusal and nothing changes."""
    s = setup
    role = f"gitsync-reader-{uuid.uuid4().hex[:4]}"
    with s.cluster.admin() as admin:
        r = admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{s.ns}/roles", json={
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": role, "namespace": s.ns},
            "rules": [{"apiGroups": ["gitops.minik8s.io"], "resources": ["gitsyncs"], "verbs": ["get", "list", "watch"]},
                      {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]})
        assert r.status_code == 201, r.text
        r = admin.post(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{s.ns}/rolebindings", json={
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": s.ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]})
        assert r.status_code == 201, r.text
    open_detail(page, s, "alice")
    page.wait_for_selector("[data-action=suspend]:not([disabled])")
    page.click("[data-action=suspend]")
    status = page.wait_for_selector("[data-field=action-status].error")
    text = status.inner_text()
    assert "Suspend failed:" in text and "alice" in text and "patch" in text, text
    assert not s.sync()["spec"].get("suspend")
    # Her view of the objects: their collections are forbidden to her, and the tree says so.
    page.wait_for_selector(f'li[data-inventory="Deployment/{s.ns}/web"][data-health=Unknown]')
