"""mkctl gitops: pure formatting and decisions first, then the verbs through typer's runner against
the GitOps cluster of tests/gitops/conftest.py (real etcd, apiserver, controllers, a simulated
node, the real ``minik8s gitops`` process) with real Git repositories.

The acceptance line of ``diff``: it agrees with what the next reconcile does. Each diff below is
taken while the GitSync is suspended (so nothing moves under it) and then checked by resuming and
looking at what the reconciler wrote.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli.mkctl import app
from cli.mkctl.gitops import (ANNOTATION_REQUESTED, Unhealthy, request_handled, requested_at, short_revision,
                              status_text, sync_outcome)
from cli.mkctl.gitopsdiff import report_of, strip_server_fields, unified
from gitops.plan import Desired, Entry, ObjKey, Plan
from gitops.crd import SCHEMA
from gitops.reconciler import ANNOTATION_REQUESTED as RECONCILER_ANNOTATION
from gitops.status import Outcome, next_status
from tests.gitops import conftest as gitops_conftest
from tests.gitops.conftest import GitOpsCluster
from tests.gitops.gitrepo import GitRepo
from tests.waiting import wait_for

# The GitOps cluster's fixtures (module scope: one cluster for this module), its namespaces and repos.
cluster, ns, repo = gitops_conftest.cluster, gitops_conftest.ns, gitops_conftest.repo
runner = CliRunner()
SHA = "0123456789abcdef0123456789abcdef01234567"


# ------------------------------------------------------------------------------- pure
def test_the_annotation_is_the_reconcilers() -> None:
    assert ANNOTATION_REQUESTED == RECONCILER_ANNOTATION


def test_the_reconciler_records_the_handled_request_in_the_status() -> None:
    assert "lastHandledRequestedAt" in SCHEMA["properties"]["status"]["properties"]
    current = {"lastHandledRequestedAt": "t0", "fetchedRevision": "r"}
    assert next_status(current, Outcome(1, "now", handled_request="t1"))["lastHandledRequestedAt"] == "t1"
    assert next_status(current, Outcome(1, "now"))["lastHandledRequestedAt"] == "t0"


def test_requested_at_is_rfc3339_nano_and_distinct() -> None:
    assert requested_at(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"
    assert requested_at(1_700_000_000_100_000_000) == "2023-11-14T22:13:20.1Z"
    assert requested_at(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert requested_at() != requested_at()


def test_short_revision() -> None:
    assert short_revision(f"main@sha1:{SHA}") == "main@sha1:0123456"
    assert short_revision(f"sha1:{SHA}") == "sha1:0123456"


def _sync(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "app", "namespace": "ns", "generation": 1},
            "spec": {"url": "https://example.com/r.git", "ref": {"branch": "main"}, "path": "deploy",
                     "interval": "1m"},
            "status": status}


def _cond(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize("status,ok,message", [
    ({"conditions": [_cond("SourceReady", "False", "FetchFailed", "no such ref")]}, False,
     "fetch failed: no such ref"),
    ({"fetchedRevision": f"main@sha1:{SHA}", "lastAppliedRevision": f"main@sha1:{SHA}",
      "conditions": [_cond("SourceReady", "True", "Succeeded")]}, True, "applied revision main@sha1:0123456"),
    ({"fetchedRevision": f"main@sha1:{SHA}", "lastAppliedRevision": "main@sha1:aaaa",
      "conditions": [_cond("SourceReady", "True", "Succeeded"),
                     _cond("Applied", "False", "ValidationFailed", "x.yaml: bad")]}, False,
     "ValidationFailed: x.yaml: bad"),
])
def test_sync_outcome(status: dict[str, Any], ok: bool, message: str) -> None:
    assert sync_outcome(_sync(**status)) == (ok, message)


def test_request_handled() -> None:
    assert request_handled(_sync(lastHandledRequestedAt="t1"), "t1")
    assert not request_handled(_sync(lastHandledRequestedAt="t0"), "t1")
    assert not request_handled(_sync(), "t1")


def test_status_text_shows_everything_a_user_asks_first() -> None:
    obj = _sync(fetchedRevision=f"main@sha1:{SHA}", lastAppliedRevision=f"main@sha1:{SHA}",
                lastAttemptedRevision=f"main@sha1:{SHA}",
                conditions=[_cond("SourceReady", "True", "Succeeded", "fetched"),
                            _cond("Ready", "False", "HealthCheckFailed", "web: not available")],
                errors=[{"file": "a.yaml", "document": 1, "kind": "Deployment", "name": "web", "message": "bad"}],
                drift=["ConfigMap ns/cfg"],
                inventory=[{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "ns", "name": "cfg", "uid": "u"}],
                history=[{"revision": f"main@sha1:{SHA}", "result": "Succeeded", "durationSeconds": 0.5,
                          "writes": 3, "startedAt": "2026-01-01T00:00:00Z", "message": "applied"}])
    text = status_text(obj, now=datetime(2026, 1, 1, 0, 5, tzinfo=timezone.utc),
                       unhealthy=[Unhealthy("Deployment.apps ns/web", "Progressing", "0 of 1 available")])
    for part in ("https://example.com/r.git", "branch main", "deploy", "1m", "Suspended:", "false",
                 f"main@sha1:{SHA}", "SourceReady", "HealthCheckFailed", "5m", "a.yaml", "bad",
                 "ConfigMap ns/cfg", "Inventory: 1 object", "Deployment.apps ns/web", "Progressing",
                 "main@sha1:0123456", "0.50s", "Succeeded"):
        assert part in text, (part, text)
    assert "Errors (1):" in text and "Not healthy (1):" in text and "Last runs:" in text


def _desired(name: str) -> Desired:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns"}}
    return Desired(ObjKey("", "ConfigMap", "ns", name), body, "f.yaml", 0, "h")


def test_report_counts_what_the_reconciler_writes() -> None:
    p = Plan(apply=[(_desired("a"), "create"), (_desired("b"), "changed in Git"), (_desired("c"), "drift")],
             prune=[Entry("v1", "ConfigMap", "ns", "d", "u")])
    r = report_of(p, enforce_only=False, self_heal=True)
    assert (len(r.create), len(r.update), len(r.prune), r.writes) == (1, 2, 1, 4)
    assert r.summary().splitlines()[0] == "create 1 / update 2 / prune 1"
    # On the applied revision with self-heal off the reconciler only reports drift.
    off = report_of(Plan(apply=[(_desired("c"), "drift")]), enforce_only=True, self_heal=False)
    assert off.writes == 0 and "not corrected: ConfigMap ns/c (drift" in off.summary()


def test_diff_text_leaves_server_fields_out() -> None:
    live = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "1"}, "status": {"x": 1},
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "9", "generation": 1,
                         "creationTimestamp": "t", "managedFields": [{"manager": "m"}]}}
    assert strip_server_fields(live) == {"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "1"},
                                         "metadata": {"name": "a", "namespace": "ns"}}
    key = ObjKey("", "ConfigMap", "ns", "a")
    text = unified(live, {**live, "data": {"k": "2"}}, key=key, revision="main@sha1:0123456")
    assert text.startswith("--- live/ConfigMap/ns/a\n+++ main@sha1:0123456/ConfigMap/ns/a\n")
    assert "-  k: \"1\"\n+  k: \"2\"\n" in text and "uid" not in text and "managedFields" not in text
    created = unified(None, live, key=key, revision="r")
    assert created.startswith("--- /dev/null\n+++ r/ConfigMap/ns/a\n") and "+kind: ConfigMap\n" in created


# ------------------------------------------------------------------------------- against a cluster
def configmap(name: str, value: str = "v1") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: {value}\n"


def mk(c: GitOpsCluster, *args: str) -> Result:
    return runner.invoke(app, ["--kubeconfig", str(c.kubeconfig), "gitops", *args])


def cm(c: GitOpsCluster, namespace: str, name: str) -> dict[str, Any] | None:
    r = c.http.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    return dict(r.json()) if r.status_code == 200 else None


def test_status_and_sync_fetch_at_once(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("deploy/settings.yaml", configmap("settings"))
    sha = repo.commit()
    cluster.gitsync(ns, "app", repo, path="deploy", interval="1h", targetNamespace=ns)
    cluster.wait_applied(ns, "app", sha)
    cluster.wait_reason(ns, "app", "Ready", "Succeeded")

    r = mk(cluster, "status", "app", "-n", ns)
    assert r.exit_code == 0, r.output
    for part in (repo.url, "branch main", "deploy", "1h", sha[:7], "SourceReady", "Applied", "Healthy",
                 "Ready", "Inventory: 1 object", "Last runs:", "Succeeded"):
        assert part in r.stdout, (part, r.stdout)

    # With a 1h interval only the request makes the reconciler fetch.
    repo.write("deploy/settings.yaml", configmap("settings", "v2"))
    sha2 = repo.commit("v2")
    started = time.monotonic()
    r = mk(cluster, "sync", "app", "-n", ns, "--timeout", "20s")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith(f"gitsync.gitops.minik8s.io/app synced: applied revision main@sha1:{sha2[:7]}")
    assert time.monotonic() - started < 10
    assert (cm(cluster, ns, "settings") or {})["data"]["key"] == "v2"
    assert cluster.get_sync(ns, "app")["metadata"]["annotations"][ANNOTATION_REQUESTED]

    # Nothing new in Git: the reconcile writes no object, and the sync still returns at once.
    started = time.monotonic()
    r = mk(cluster, "sync", "app", "-n", ns, "--timeout", "20s")
    assert r.exit_code == 0, r.output
    assert f"applied revision main@sha1:{sha2[:7]}" in r.stdout
    assert time.monotonic() - started < 10

    r = mk(cluster, "status", "missing", "-n", ns)
    assert r.exit_code == 1 and "NotFound" in r.output


def test_sync_reports_a_failed_revision(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("a.yaml", configmap("a"))
    sha = repo.commit()
    cluster.gitsync(ns, "app", repo, interval="1h", targetNamespace=ns)
    cluster.wait_applied(ns, "app", sha)
    repo.write("b.yaml", "apiVersion: v1\nkind: Nonsense\nmetadata:\n  name: x\n")
    repo.commit("bad")
    r = mk(cluster, "sync", "app", "-n", ns, "--timeout", "20s")
    assert r.exit_code == 1, r.output
    assert "sync failed: ValidationFailed" in r.output and "b.yaml" in r.output
    r = mk(cluster, "status", "app", "-n", ns)
    assert r.exit_code == 1 and "b.yaml" in r.stdout and "Nonsense" in r.stdout


def test_suspend_stops_applying_and_resume_applies(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("a.yaml", configmap("a"))
    sha = repo.commit()
    cluster.gitsync(ns, "app", repo, interval="1s", targetNamespace=ns)
    cluster.wait_applied(ns, "app", sha)

    r = mk(cluster, "suspend", "app", "-n", ns)
    assert r.exit_code == 0 and r.stdout == "gitsync.gitops.minik8s.io/app suspended\n", r.output
    cluster.wait_reason(ns, "app", "Ready", "Suspended")
    repo.write("a.yaml", configmap("a", "v2"))
    sha2 = repo.commit("v2")
    time.sleep(3)
    assert (cm(cluster, ns, "a") or {})["data"]["key"] == "v1"
    assert cluster.get_sync(ns, "app")["status"]["lastAppliedRevision"].endswith(sha)
    r = mk(cluster, "sync", "app", "-n", ns)
    assert r.exit_code == 1 and "is suspended" in r.output
    r = mk(cluster, "status", "app", "-n", ns)
    assert r.exit_code == 1 and "Suspended:" in r.stdout and "reconciliation is suspended" in r.stdout

    r = mk(cluster, "resume", "app", "-n", ns, "--wait", "--timeout", "20s")
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("gitsync.gitops.minik8s.io/app resumed\n")
    assert f"applied revision main@sha1:{sha2[:7]}" in r.stdout
    assert (cm(cluster, ns, "a") or {})["data"]["key"] == "v2"


def _versions(c: GitOpsCluster, namespace: str) -> dict[str, str]:
    """The resourceVersions of the namespace's ConfigMaps and of the GitSync's spec and metadata
    (its status is the reconciler's: a suspended GitSync still writes status.nextSync)."""
    items = c.http.get(f"/api/v1/namespaces/{namespace}/configmaps").json()["items"]
    out = {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}
    sync = c.get_sync(namespace, "app")
    out["gitsync"] = json.dumps([sync["spec"], sync["metadata"].get("annotations"), sync["metadata"]["generation"]])
    return out


def test_diff_agrees_with_the_next_reconcile(cluster: GitOpsCluster, ns: str, repo: GitRepo,
                                             tmp_path: Path) -> None:
    cache = str(tmp_path / "cache")

    def diff() -> Result:
        return mk(cluster, "diff", "app", "-n", ns, "--cache-dir", cache)

    repo.write("settings.yaml", configmap("settings"))
    repo.write("old.yaml", configmap("old"))
    sha = repo.commit()
    cluster.gitsync(ns, "app", repo, interval="1s", targetNamespace=ns)
    cluster.wait_applied(ns, "app", sha)
    cluster.wait_reason(ns, "app", "Ready", "Succeeded")

    # (1) Right after an applied revision: nothing to write.
    r = diff()
    assert r.exit_code == 0, r.output
    assert "create 0 / update 0 / prune 0" in r.stdout

    # (2) A value changed, an object added, one removed; suspended, so the reconciler waits.
    assert mk(cluster, "suspend", "app", "-n", ns).exit_code == 0
    cluster.wait_reason(ns, "app", "Ready", "Suspended")
    repo.write("settings.yaml", configmap("settings", "v2"))
    repo.write("added.yaml", configmap("added"))
    repo.remove("old.yaml")
    sha2 = repo.commit("change, add, remove")
    before = _versions(cluster, ns)
    r = diff()
    assert r.exit_code == 1, r.output
    out = r.stdout
    assert "create 1 / update 1 / prune 1" in out
    assert f"create: ConfigMap {ns}/added\n" in out
    assert f"update: ConfigMap {ns}/settings (changed in Git)\n" in out
    assert f"prune: ConfigMap {ns}/old\n" in out
    assert "-  key: v1\n+  key: v2\n" in out  # the value, not the server's fields
    assert "+  key: v1\n" in out  # the created object, whole
    assert "managedFields" not in out and "resourceVersion" not in out and "uid:" not in out
    assert _versions(cluster, ns) == before  # GETs only
    # The reconciler's own preview of the suspended GitSync says the same.
    wait_for(lambda: ((cluster.get_sync(ns, "app").get("status") or {}).get("nextSync") or {}).get("summary")
             == "create 1 / update 1 / prune 1", 30, "status.nextSync of the new commit", cluster.diagnostics)

    r = mk(cluster, "resume", "app", "-n", ns)
    assert r.exit_code == 0, r.output
    status = cluster.wait_applied(ns, "app", sha2)
    run = status["history"][0]
    assert run["revision"].endswith(sha2) and run["writes"] == 3, run
    assert "1 created, 1 configured" in run["message"] and "1 pruned" in run["message"], run
    assert (cm(cluster, ns, "settings") or {})["data"]["key"] == "v2"
    assert cm(cluster, ns, "added") is not None
    wait_for(lambda: cm(cluster, ns, "old") is None, 10, "the pruned ConfigMap gone", cluster.diagnostics)
    r = diff()
    assert r.exit_code == 0 and "create 0 / update 0 / prune 0" in r.stdout, r.output

    # (3) Drift: another field manager changes a value Git sets.
    assert mk(cluster, "suspend", "app", "-n", ns).exit_code == 0
    cluster.wait_reason(ns, "app", "Ready", "Suspended")
    p = cluster.http.patch(f"/api/v1/namespaces/{ns}/configmaps/settings", params={"fieldManager": "hand"},
                           json={"data": {"key": "by-hand"}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert p.status_code == 200, p.text
    r = diff()
    assert r.exit_code == 1, r.output
    assert f"update: ConfigMap {ns}/settings (drift)\n" in r.stdout
    assert "create 0 / update 1 / prune 0" in r.stdout
    assert "-  key: by-hand\n+  key: v2\n" in r.stdout
    writes_before = len(cluster.get_sync(ns, "app")["status"]["history"])
    assert mk(cluster, "resume", "app", "-n", ns).exit_code == 0
    wait_for(lambda: (cm(cluster, ns, "settings") or {}).get("data", {}).get("key") == "v2", 10,
             "the drift put back", cluster.diagnostics)
    history = wait_for(lambda: (lambda h: h if len(h) > writes_before else None)(
        cluster.get_sync(ns, "app")["status"]["history"]), 10, "the correction recorded", cluster.diagnostics)
    assert history[0]["result"] == "DriftCorrected" and history[0]["writes"] == 1, history[0]
    r = diff()
    assert r.exit_code == 0 and "create 0 / update 0 / prune 0" in r.stdout, r.output

    # (4) An invalid revision: exit 2, the file named, nothing printed as a change.
    assert mk(cluster, "suspend", "app", "-n", ns).exit_code == 0
    repo.write("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n")
    repo.commit("broken")
    r = diff()
    assert r.exit_code == 2, r.output
    assert "broken.yaml" in r.output and "is invalid" in r.output
    assert "create " not in r.stdout


def test_diff_errors_exit_2(cluster: GitOpsCluster, ns: str, tmp_path: Path) -> None:
    r = mk(cluster, "diff", "nothing", "-n", ns, "--cache-dir", str(tmp_path))
    assert r.exit_code == 2 and "NotFound" in r.output
    r = runner.invoke(app, ["--server", "http://127.0.0.1:1", "gitops", "diff", "x", "--cache-dir", str(tmp_path)])
    assert r.exit_code == 2 and "refused" in r.output
