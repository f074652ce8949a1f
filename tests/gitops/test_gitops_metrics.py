"""gitops.metrics: Flux's gotk_* metrics and the sync counter, pure and from the real gitops process.

Pure: which result a status counts as, and the series one GitSync gets and loses (in this
process's registry). Real: the ``minik8s gitops`` process of tests/gitops/conftest.py serves
``/metrics`` on its webhook port (open: that cluster has no credentials); a GitSync that applies,
one whose revision is invalid and one suspended show there with their conditions, durations and
results, and a deleted GitSync's series go away.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gitops import metrics as gm
from gitops.crd import KIND
from machinery.metrics import REGISTRY, Sample, parse, value
from tests.gitops.conftest import GitOpsCluster
from tests.gitops.gitrepo import GitRepo
from tests.waiting import wait_for


def status(ready: str, reason: str) -> dict[str, Any]:
    return {"conditions": [{"type": "SourceReady", "status": "True", "reason": "Succeeded"},
                           {"type": "Ready", "status": ready, "reason": reason}]}


@pytest.mark.parametrize("st, want", [
    (status("True", "Succeeded"), "Succeeded"),
    (status("False", "ApplyFailed"), "ApplyFailed"),
    (status("Unknown", "Progressing"), "Progressing"),
    (status("False", "a reason nobody defined"), "Unknown"),
    ({}, "Unknown"),
])
def test_sync_result(st: dict[str, Any], want: str) -> None:
    assert gm.sync_result(st) == want


def test_a_gitsync_series_and_their_removal() -> None:
    obj = {"metadata": {"name": "unit", "namespace": "unit-ns"}}
    ref = {"kind": KIND, "name": "unit", "namespace": "unit-ns"}
    gm.record_sync(obj, status("False", "FetchFailed"), suspended=False, seconds=0.25)
    gm.record_sync(obj, status("True", "Succeeded"), suspended=True, seconds=0.5)

    def get(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {**ref, **labels})

    assert get("gotk_reconcile_duration_seconds_count") == 2
    assert get("gotk_reconcile_duration_seconds_sum") == 0.75
    assert [get("gotk_reconcile_condition", type="Ready", status=s) for s in gm.STATUSES] == [1, 0, 0, 0]
    assert get("gotk_reconcile_condition", type="SourceReady", status="True") == 1
    assert get("gotk_reconcile_condition", type="Applied", status="True") is None  # no such condition yet
    assert get("gotk_suspend_status") == 1
    assert (get("gitops_sync_total", result="FetchFailed"), get("gitops_sync_total", result="Succeeded")) == (1, 1)
    gm.forget_sync("unit-ns", "unit")
    gm.forget_sync("unit-ns", "unit")  # twice: nothing left to remove, no error
    assert all(get(n, **extra) is None for n, extra in (
        ("gotk_reconcile_duration_seconds_count", {}), ("gotk_suspend_status", {}),
        ("gotk_reconcile_condition", {"type": "Ready", "status": "True"}),
        ("gitops_sync_total", {"result": "Succeeded"})))


# ---------------------------------------------------------------------------------- the real process
def scrape(cluster: GitOpsCluster) -> dict[str, list[Sample]]:
    r = httpx.get(f"http://127.0.0.1:{cluster.webhook_port}/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def condition_is(cluster: GitOpsCluster, ns: str, name: str, type_: str, want: str) -> bool:
    samples = scrape(cluster)
    ref = {"kind": KIND, "namespace": ns, "name": name, "type": type_}
    return all(value(samples, "gotk_reconcile_condition", **ref, status=s) == (1 if s == want else 0)
               for s in gm.STATUSES) and value(samples, "gotk_reconcile_condition", **ref, status=want) == 1


def test_the_gitops_process_serves_its_syncs(cluster: GitOpsCluster, ns: str, repo: GitRepo) -> None:
    repo.write("ok/config.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: v1\n")
    repo.write("bad/config.yaml", "apiVersion: v1\nkind: Nonsense\nmetadata:\n  name: x\n")
    sha = repo.commit("one good folder, one bad")
    cluster.gitsync(ns, "good", repo, path="ok", interval="1s", targetNamespace=ns)
    cluster.gitsync(ns, "bad", repo, path="bad", interval="1s", targetNamespace=ns)
    cluster.gitsync(ns, "paused", repo, path="ok", interval="1s", targetNamespace=ns, suspend=True)
    cluster.wait_applied(ns, "good", sha)
    cluster.wait_reason(ns, "good", "Ready", "Succeeded")
    cluster.wait_reason(ns, "bad", "Applied", "ValidationFailed")

    wait_for(lambda: condition_is(cluster, ns, "good", "Ready", "True"), 15, "good's Ready True on /metrics",
             cluster.diagnostics)
    wait_for(lambda: condition_is(cluster, ns, "bad", "Ready", "False"), 15, "bad's Ready False on /metrics",
             cluster.diagnostics)
    samples = scrape(cluster)
    ref = {"kind": KIND, "namespace": ns}
    assert value(samples, "gotk_reconcile_condition", **ref, name="good", type="Applied", status="True") == 1
    assert value(samples, "gotk_reconcile_condition", **ref, name="bad", type="Applied", status="False") == 1
    for name in ("good", "bad", "paused"):
        assert value(samples, "gotk_reconcile_duration_seconds_count", **ref, name=name) >= 1, name
        assert value(samples, "gotk_reconcile_duration_seconds_sum", **ref, name=name) > 0, name
    assert value(samples, "gitops_sync_total", **ref, name="good", result="Succeeded") >= 1
    assert value(samples, "gitops_sync_total", **ref, name="bad", result="ValidationFailed") >= 1
    assert value(samples, "gitops_sync_total", **ref, name="paused", result="Suspended") >= 1
    assert [value(samples, "gotk_suspend_status", **ref, name=n) for n in ("good", "paused")] == [0, 1]
    assert value(samples, "process_resident_memory_bytes") > 0
    # the webhook port's other routes are as they were
    assert httpx.get(f"http://127.0.0.1:{cluster.webhook_port}/healthz", timeout=10).text == "ok"

    # A deleted GitSync's series go.
    assert cluster.http.delete(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs/bad").status_code == 200
    wait_for(lambda: not [s for s in scrape(cluster).get("gotk_reconcile_condition", [])
                          if s[0].get("namespace") == ns and s[0].get("name") == "bad"], 15,
             "bad's series gone from /metrics", cluster.diagnostics)
