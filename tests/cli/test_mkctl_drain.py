"""mkctl drain's pure parts: kubectl's pod filters and its duration text (the verbs run end to end in
tests/e2e/test_disruption.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cli.mkctl.drain import (DAEMON_SET_FATAL, DAEMON_SET_WARNING, LOCAL_STORAGE_FATAL, LOCAL_STORAGE_WARNING,
                             UNMANAGED_FATAL, UNMANAGED_WARNING, DrainOptions, Verdict, go_duration, pod_filter)

Obj = dict[str, Any]
RS = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": True}
DS = {**RS, "kind": "DaemonSet", "name": "ds"}


def pod(*, owner: Obj | None = RS, phase: str = "Running", empty_dir: bool = False, mirror: bool = False,
        deleted: str | None = None) -> Obj:
    meta: Obj = {"name": "p", "namespace": "ns"}
    if owner:
        meta["ownerReferences"] = [owner]
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": "x"}
    if deleted:
        meta["deletionTimestamp"] = deleted
    volumes = [{"name": "scratch", "emptyDir": {}}] if empty_dir else []
    return {"metadata": meta, "spec": {"volumes": volumes}, "status": {"phase": phase}}


@pytest.mark.parametrize("p,opts,ds_error,verdict", [
    (pod(), DrainOptions(), None, Verdict(True)),
    (pod(owner=None), DrainOptions(), None, Verdict(False, "Error", UNMANAGED_FATAL)),
    (pod(owner=None), DrainOptions(force=True), None, Verdict(True, "Warning", UNMANAGED_WARNING)),
    (pod(owner=None, phase="Succeeded"), DrainOptions(), None, Verdict(True)),  # finished pods always go
    (pod(owner=DS), DrainOptions(), "", Verdict(False, "Error", DAEMON_SET_FATAL)),
    (pod(owner=DS), DrainOptions(ignore_daemonsets=True), "", Verdict(False, "Warning", DAEMON_SET_WARNING)),
    (pod(owner=DS), DrainOptions(force=True), 'daemonsets.apps "ds" not found',
     Verdict(True, "Warning", 'daemonsets.apps "ds" not found')),
    (pod(owner=DS), DrainOptions(), 'daemonsets.apps "ds" not found',
     Verdict(False, "Error", 'daemonsets.apps "ds" not found')),
    (pod(mirror=True), DrainOptions(), None, Verdict(False, "Skip")),
    (pod(empty_dir=True), DrainOptions(), None, Verdict(False, "Error", LOCAL_STORAGE_FATAL)),
    (pod(empty_dir=True), DrainOptions(delete_emptydir_data=True), None, Verdict(True, "Warning", LOCAL_STORAGE_WARNING)),
    (pod(deleted="2026-01-01T00:00:00Z"), DrainOptions(skip_wait_for_delete_timeout=10), None, Verdict(False, "Skip")),
    (pod(deleted="2026-01-01T00:00:00Z"), DrainOptions(), None, Verdict(True)),
])
def test_kubectl_filters(p: Obj, opts: DrainOptions, ds_error: str | None, verdict: Verdict) -> None:
    now = 1767225600.0 + 60  # a minute after 2026-01-01T00:00:00Z
    assert pod_filter(p, opts, daemon_set_error=ds_error, now=now) == verdict


@pytest.mark.parametrize("seconds,text", [(0, "0s"), (0.5, "500ms"), (7, "7s"), (90, "1m30s"), (3600, "1h0m0s")])
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
