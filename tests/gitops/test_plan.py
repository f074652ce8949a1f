"""The pure decisions of the reconciler: plan, status, spec, health (no I/O)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gitops import status as st
from gitops.health import FAILED, HEALTHY, PROGRESSING, health
from gitops.plan import (ANNOTATION_HASH, ANNOTATION_PRUNE, FIELD_MANAGER, LABEL_NAME, LABEL_NAMESPACE, Desired, Entry,
                         change_reason, fields_hash, inventory_after, key_of, lost_fields, manifest_hash, plan,
                         prepare, prunable)
from gitops.spec import SpecError, parse

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "ignored"},
      "data": {"k": "v"}}


def desired(obj: dict[str, Any], *, namespaced: bool = True) -> Desired:
    body = prepare(obj, namespaced=namespaced, sync_namespace="flux", sync_name="app", target_namespace="prod")
    return Desired(key_of(body), body, "a.yaml", 0, manifest_hash(body))


def applied(d: Desired, *, uid: str = "u1", fields: dict[str, Any] | None = None) -> dict[str, Any]:
    live = copy.deepcopy(d.obj)
    live["metadata"].update(uid=uid, resourceVersion="5", managedFields=[
        {"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": "v1",
         "fieldsV1": fields if fields is not None else {"f:data": {"f:k": {}}}}])
    return live


def test_prepare_drops_server_fields_and_decides_the_namespace() -> None:
    obj = {**CM, "status": {"x": 1},
           "metadata": {**CM["metadata"], "uid": "x", "resourceVersion": "9", "creationTimestamp": None}}
    body = prepare(obj, namespaced=True, sync_namespace="flux", sync_name="app", target_namespace="prod")
    meta = body["metadata"]
    assert meta["namespace"] == "prod" and "status" not in body
    assert not {"uid", "resourceVersion", "creationTimestamp"} & set(meta)
    assert meta["labels"] == {LABEL_NAME: "app", LABEL_NAMESPACE: "flux"}
    assert len(meta["annotations"][ANNOTATION_HASH]) == 20
    assert obj["metadata"]["uid"] == "x"  # the input is not changed
    cluster = prepare({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "x"}},
                      namespaced=False, sync_namespace="flux", sync_name="app", target_namespace="prod")
    assert "namespace" not in cluster["metadata"]
    plain = prepare({**CM, "metadata": {"name": "cfg"}}, namespaced=True, sync_namespace="f", sync_name="a",
                    target_namespace=None)
    assert plain["metadata"]["namespace"] == "default"


def test_the_hash_follows_the_manifest_only() -> None:
    a, b = desired(CM), desired(CM)
    assert a.manifest_hash == b.manifest_hash
    changed = desired({**CM, "data": {"k": "w"}})
    assert changed.manifest_hash != a.manifest_hash
    again = prepare(a.obj, namespaced=True, sync_namespace="flux", sync_name="app", target_namespace="prod")
    assert manifest_hash(again) == a.manifest_hash  # preparing twice is stable


@pytest.mark.parametrize("case,expect", [
    ("missing", "create"),
    ("in sync", None),
    ("git changed", "changed in Git"),
    ("fields taken", "drift"),
    ("recreated by someone", "drift"),
    ("no inventory", "drift"),
])
def test_change_reason(case: str, expect: str | None) -> None:
    d = desired(CM)
    live: dict[str, Any] | None = applied(d)
    entry: Entry | None = inventory_after([(d, live)])[0]
    if case == "missing":
        live = None
    elif case == "git changed":
        d = desired({**CM, "data": {"k": "new"}})
    elif case == "fields taken":
        live = applied(d, fields={"f:data": {}})
    elif case == "recreated by someone":
        live = applied(d, uid="u2")
    elif case == "no inventory":
        entry = None
    assert change_reason(d, live, entry) == expect


def test_values_normalized_by_the_server_are_not_drift() -> None:
    d = desired({**CM, "data": {"k": "v", "empty": ""}})
    live = applied(d)
    live["data"] = {"k": "v"}  # a server that dropped the empty value, or defaulted more fields
    live["metadata"]["annotations"]["other"] = "x"  # another manager's annotation
    assert change_reason(d, live, inventory_after([(d, applied(d))])[0]) is None


def test_plan_orders_applies_and_prunes_what_left_git() -> None:
    ns = desired({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}, namespaced=False)
    dep = desired({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}})
    cm = desired(CM)
    gone = desired({**CM, "metadata": {"name": "old"}})
    old_live = applied(gone, uid="u-old")
    inventory = {gone.key: inventory_after([(gone, old_live)])[0]}
    p = plan([dep, cm, ns], {gone.key: old_live}, inventory, sync_namespace="flux", sync_name="app", prune=True)
    assert [d.key.kind for d, _ in p.apply] == ["Namespace", "ConfigMap", "Deployment"]
    assert [e.name for e in p.prune] == ["old"]
    assert p.writes == 4
    no_prune = plan([cm], {gone.key: old_live}, inventory, sync_namespace="flux", sync_name="app", prune=False)
    assert no_prune.prune == []


def test_an_empty_revision_prunes_nothing_unless_allowed() -> None:
    gone = desired(CM)
    live = applied(gone)
    inventory = {gone.key: inventory_after([(gone, live)])[0]}
    blocked = plan([], {gone.key: live}, inventory, sync_namespace="flux", sync_name="app", prune=True)
    assert blocked.prune_blocked and blocked.prune == []
    allowed = plan([], {gone.key: live}, inventory, sync_namespace="flux", sync_name="app", prune=True,
                   allow_empty=True)
    assert [e.name for e in allowed.prune] == ["cfg"]


@pytest.mark.parametrize("change,ok", [
    ({}, True),
    ({"uid": "other"}, False),
    ({"labels": {LABEL_NAME: "someone", LABEL_NAMESPACE: "flux"}}, False),
    ({"annotations": {ANNOTATION_PRUNE: "disabled"}}, False),
    ({"deletionTimestamp": "2026-01-01T00:00:00Z"}, False),
])
def test_prunable_only_what_this_gitsync_applied(change: dict[str, Any], ok: bool) -> None:
    d = desired(CM)
    live = applied(d)
    entry = inventory_after([(d, live)])[0]
    for k, v in change.items():
        if isinstance(v, dict):
            live["metadata"][k] = {**live["metadata"].get(k, {}), **v}
        else:
            live["metadata"][k] = v
    assert prunable(entry, live, sync_namespace="flux", sync_name="app") is ok
    assert prunable(entry, None, sync_namespace="flux", sync_name="app") is False


def test_namespaces_are_never_pruned_by_default() -> None:
    d = desired({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}, namespaced=False)
    live = applied(d)
    entry = inventory_after([(d, live)])[0]
    assert not prunable(entry, live, sync_namespace="flux", sync_name="app")
    assert prunable(entry, live, sync_namespace="flux", sync_name="app", prune_namespaces=True)


def test_lost_fields_names_what_another_manager_took() -> None:
    before = {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
        'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}
    after = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:name": {}}}}}}}
    assert lost_fields(before, after) == ["spec.replicas", "spec.template.spec.containers[name=web].image"]
    assert lost_fields(before, before) == []
    assert fields_hash({"metadata": {}}) == ""


def test_status_keeps_transition_times_and_writes_nothing_new_when_nothing_changed() -> None:
    first = st.next_status({}, st.Outcome(1, "T1", source=st.Condition("SourceReady", "True", st.SUCCEEDED, "ok"),
                                          applied=st.Condition("Applied", "True", st.SUCCEEDED, "applied rev"),
                                          healthy=st.Condition("Healthy", "True", st.SUCCEEDED, "1 healthy"),
                                          last_applied_revision="main@sha1:0123456789abcdef",
                                          run={"revision": "r", "result": "Succeeded"}))
    ready = st.condition(first, "Ready")
    assert ready is not None and ready["status"] == "True" and ready["message"] == "applied rev"
    assert first["revision"] == "0123456" and len(first["history"]) == 1
    again = st.next_status(first, st.Outcome(1, "T2", source=st.Condition("SourceReady", "True", st.SUCCEEDED, "ok")))
    assert again == first  # the same facts later: the same status, so no write
    failed = st.next_status(first, st.Outcome(1, "T3", applied=st.Condition("Applied", "False", st.VALIDATION_FAILED,
                                                                             "bad")))
    applied_c, ready_c = st.condition(failed, "Applied"), st.condition(failed, "Ready")
    assert applied_c and applied_c["lastTransitionTime"] == "T3"
    assert ready_c and ready_c["reason"] == st.VALIDATION_FAILED and ready_c["status"] == "False"
    suspended = st.next_status(first, st.Outcome(1, "T4"), suspended=True)
    assert (st.condition(suspended, "Ready") or {}).get("reason") == st.SUSPENDED


def test_history_keeps_the_last_ten_runs() -> None:
    status: dict[str, Any] = {}
    for i in range(12):
        status = st.next_status(status, st.Outcome(1, f"T{i}", run={"revision": str(i), "result": "Succeeded"}))
    assert [r["revision"] for r in status["history"]] == [str(i) for i in range(11, 1, -1)]


@pytest.mark.parametrize("spec,error", [
    ({"url": ""}, "spec.url: Required value"),
    ({"url": "u", "interval": "soon"}, "spec.interval"),
    ({"url": "u", "interval": "0s"}, "must be more than 0"),
    ({"url": "u", "ref": {"branch": "a", "tag": "b"}}, "exactly one of branch, tag or commit"),
])
def test_spec_errors_name_the_field(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(SpecError, match=error):
        parse({"spec": spec})


def test_spec_defaults() -> None:
    s = parse({"spec": {"url": "file:///r"}})
    assert (s.ref.branch, s.interval, s.timeout, s.prune, s.self_heal, s.allow_empty, s.suspend) == \
        ("main", 15.0, 60.0, True, True, False, False)
    s = parse({"spec": {"url": "u", "ref": {"tag": "v1"}, "interval": "1m30s", "selfHeal": False,
                        "secretRef": {"name": "creds"}, "webhook": {"secretRef": {"name": "hook"}}}})
    assert (s.ref.tag, s.interval, s.self_heal, s.secret_name, s.webhook_secret_name) == \
        ("v1", 90.0, False, "creds", "hook")


@pytest.mark.parametrize("obj,state", [
    ({"kind": "ConfigMap"}, HEALTHY),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}, PROGRESSING),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}}, PROGRESSING),
    ({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}, HEALTHY),
    ({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
                                                          "reason": "ProgressDeadlineExceeded"}]}}, FAILED),
    ({"kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}, HEALTHY),
    ({"kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}},
     PROGRESSING),
    ({"kind": "Pod", "status": {"phase": "Failed"}}, FAILED),
    ({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}}, HEALTHY),
    ({"kind": "CustomResourceDefinition", "status": {"conditions": [{"type": "Established", "status": "True"}]}},
     HEALTHY),
    ({"kind": "StatefulSet", "spec": {"replicas": 3}, "status": {"readyReplicas": 2}}, PROGRESSING),
])
def test_health(obj: dict[str, Any], state: str) -> None:
    assert health(obj)[0] == state


@pytest.mark.parametrize("ref,error", [({"commit": "abc"}, "not a full SHA"), ({"branch": "a..b"}, "not a valid")])
def test_spec_ref_errors(ref: dict[str, str], error: str) -> None:
    with pytest.raises(SpecError, match=f"spec.ref: .*{error}"):
        parse({"spec": {"url": "u", "ref": ref}})
