"""``status.nextSync``: what the next sync of a GitSync would change, published by the real
``minik8s gitops`` process (tests/gitops/conftest.py's cluster) for the console and kubectl.

Each test makes the cluster and Git disagree in one way (Git moved on while the GitSync is
suspended, a hand edit with self-heal off, an invalid revision) and reads the status as any
client would, then checks that the preview wrote nothing.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.gitops.conftest import GitOpsCluster
from tests.gitops.gitrepo import GitRepo
from tests.waiting import wait_for


def configmap(name: str, value: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: {value}\n"


def next_sync(cluster: GitOpsCluster, ns: str, name: str, predicate: Any, what: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        preview = (cluster.get_sync(ns, name).get("status") or {}).get("nextSync") or {}
        return preview if predicate(preview) else None
    return dict(wait_for(check, 30, what, lambda: f"{cluster.get_sync(ns, name).get('status')}\n"
                                                  f"{cluster.diagnostics()}"))


def suspend(cluster: GitOpsCluster, ns: str, name: str, on: bool) -> None:
    r = cluster.http.patch(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs/{name}", json={"spec": {"suspend": on}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text


def changes_by_name(preview: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in preview.get("changes") or []}


def data_of(cluster: GitOpsCluster, ns: str, name: str) -> dict[str, Any] | None:
    r = cluster.http.get(f"/api/v1/namespaces/{ns}/configmaps/{name}")
    return dict(r.json().get("data") or {}) if r.status_code == 200 else None


def test_an_applied_revision_in_sync_previews_no_change(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("a.yaml", configmap("a", "one"))
    sha = repo.commit()
    cluster.gitsync(ns, "s", repo, interval="1h", targetNamespace=ns)
    cluster.wait_applied(ns, "s", sha)
    preview = next_sync(cluster, ns, "s", lambda p: str(p.get("revision", "")).endswith(sha), "a preview")
    assert preview["summary"] == "create 0 / update 0 / prune 0"
    assert "changes" not in preview and "blocked" not in preview


def test_a_suspended_gitsync_shows_what_resuming_would_change_and_applies_nothing(
        cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("keep.yaml", configmap("keep", "one"))
    repo.write("gone.yaml", configmap("gone", "one"))
    first = repo.commit()
    cluster.gitsync(ns, "s", repo, interval="1s", targetNamespace=ns)
    cluster.wait_applied(ns, "s", first)
    suspend(cluster, ns, "s", True)

    repo.write("keep.yaml", configmap("keep", "two"))
    repo.remove("gone.yaml")
    repo.write("new.yaml", configmap("new", "three"))
    second = repo.commit()
    preview = next_sync(cluster, ns, "s", lambda p: str(p.get("revision", "")).endswith(second),
                        "a preview of the new commit while suspended")
    assert preview["summary"] == "create 1 / update 1 / prune 1"
    changes = changes_by_name(preview)
    assert {n: c["action"] for n, c in changes.items()} == {"keep": "update", "gone": "prune", "new": "create"}
    # The diff is of the live object against the server's dry-run answer to the apply.
    update = changes["keep"]["diff"]
    assert f"--- live/ConfigMap/{ns}/keep" in update and f"+++ {second[:7]}/ConfigMap/{ns}/keep" in update
    assert "-  k: one" in update and "+  k: two" in update
    assert "resourceVersion" not in update and "managedFields" not in update
    assert "+++ /dev/null" in changes["gone"]["diff"] and "--- /dev/null" in changes["new"]["diff"]
    assert all(c["note"].startswith("suspended") for c in changes.values() if c["action"] != "prune")

    # Nothing was applied: the preview's dry run stored nothing.
    assert data_of(cluster, ns, "keep") == {"k": "one"}
    assert data_of(cluster, ns, "gone") == {"k": "one"} and data_of(cluster, ns, "new") is None
    assert str(cluster.get_sync(ns, "s")["status"]["lastAppliedRevision"]).endswith(first)

    # Resumed: the sync does what the preview said, and the preview goes back to nothing.
    suspend(cluster, ns, "s", False)
    cluster.wait_applied(ns, "s", second)
    wait_for(lambda: data_of(cluster, ns, "gone") is None, 10, "gone pruned")
    assert data_of(cluster, ns, "keep") == {"k": "two"} and data_of(cluster, ns, "new") == {"k": "three"}
    next_sync(cluster, ns, "s", lambda p: p.get("summary") == "create 0 / update 0 / prune 0" and
              str(p.get("revision", "")).endswith(second), "no change left after the resume")


def test_drift_left_alone_by_self_heal_off_is_previewed_with_its_diff(
        cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("a.yaml", configmap("a", "git"))
    sha = repo.commit()
    cluster.gitsync(ns, "s", repo, interval="1h", targetNamespace=ns, selfHeal=False)
    cluster.wait_applied(ns, "s", sha)
    r = cluster.http.patch(f"/api/v1/namespaces/{ns}/configmaps/a?fieldManager=hand", json={"data": {"k": "hand"}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    preview = next_sync(cluster, ns, "s", lambda p: bool(p.get("changes")), "the drift in the preview")
    assert preview["summary"] == "create 0 / update 0 / prune 0 / 1 not corrected"
    change = changes_by_name(preview)["a"]
    assert change["action"] == "update" and change["reason"] == "drift"
    assert "selfHeal is false" in change["note"]
    assert "-  k: hand" in change["diff"] and "+  k: git" in change["diff"]
    assert data_of(cluster, ns, "a") == {"k": "hand"}  # reported, not corrected


def test_an_invalid_revision_is_previewed_as_blocked(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("a.yaml", configmap("a", "one"))
    sha = repo.commit()
    cluster.gitsync(ns, "s", repo, interval="1s", targetNamespace=ns)
    cluster.wait_applied(ns, "s", sha)
    repo.write("bad.yaml", "apiVersion: v1\nkind: NoSuchKind\nmetadata:\n  name: x\n")
    bad = repo.commit()
    preview = next_sync(cluster, ns, "s", lambda p: str(p.get("revision", "")).endswith(bad),
                        "a preview of the invalid revision")
    assert "NoSuchKind" in preview["blocked"] and preview["summary"].startswith("nothing: ")
    assert "changes" not in preview


def test_a_secrets_values_never_reach_the_preview(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    """Whoever may read the GitSync may not read the Secrets it manages: their diff is masked."""
    def secret(value: str) -> str:
        return f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: {value}\n"

    repo.write("secret.yaml", secret("s3cr3t-one"))
    first = repo.commit()
    cluster.gitsync(ns, "s", repo, interval="1s", targetNamespace=ns)
    cluster.wait_applied(ns, "s", first)
    suspend(cluster, ns, "s", True)
    repo.write("secret.yaml", secret("s3cr3t-two"))
    second = repo.commit()
    preview = next_sync(cluster, ns, "s", lambda p: str(p.get("revision", "")).endswith(second),
                        "a preview of the Secret's change")
    diff = changes_by_name(preview)["creds"]["diff"]
    assert "-  password: '*** (before)'" in diff and "+  password: '*** (after)'" in diff
    text = cluster.http.get(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs/s").text
    for value in ("s3cr3t-one", "s3cr3t-two"):
        assert value not in text and base64.b64encode(value.encode()).decode() not in text
