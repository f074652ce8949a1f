"""mkctl rollout: kubectl's status wording and rollback patch as pure functions, then the verbs for real."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from cli.mkctl import app
from cli.mkctl.rollout import history_rows, status_message, undo_patch
from cli.mkctl.session import CliError

runner = CliRunner()


def deploy(*, generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "generation": generation, "uid": "d-uid"},
            "spec": {"replicas": 3, "template": template("nginx:2")},
            "status": {"observedGeneration": observed, **status}}


def template(image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": image}]}}


def rs(revision: int, image: str, *, cause: str | None = None) -> dict[str, Any]:
    t = template(image)
    t["metadata"]["labels"]["pod-template-hash"] = f"h{revision}"
    ann = {"deployment.kubernetes.io/revision": str(revision)}
    if cause:
        ann["kubernetes.io/change-cause"] = cause
    return {"metadata": {"name": f"web-h{revision}", "annotations": ann,
                         "ownerReferences": [{"uid": "d-uid", "controller": True, "kind": "Deployment", "name": "web"}]},
            "spec": {"template": t}}


@pytest.mark.parametrize("d,message,done", [
    (deploy(generation=3, observed=2), "Waiting for deployment spec update to be observed...", False),
    (deploy(updatedReplicas=1, replicas=1),
     'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...', False),
    (deploy(updatedReplicas=3, replicas=4, availableReplicas=3),
     'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...', False),
    (deploy(updatedReplicas=3, replicas=3, availableReplicas=2),
     'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...', False),
    (deploy(updatedReplicas=3, replicas=3, availableReplicas=3), 'deployment "web" successfully rolled out', True),
])
def test_status_message(d: dict[str, Any], message: str, done: bool) -> None:
    assert status_message(d) == (message, done)


def test_status_progress_deadline_is_an_error() -> None:
    d = deploy(conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}])
    with pytest.raises(CliError, match='deployment "web" exceeded its progress deadline'):
        status_message(d)


def test_history_and_undo_patch() -> None:
    sets = [rs(1, "nginx:1", cause="first"), rs(2, "nginx:2")]
    assert history_rows(sets) == [(1, "first"), (2, "<none>")]
    patch, rev = undo_patch(deploy(), sets, 0)
    assert rev == 1 and patch is not None
    assert patch[0] == {"op": "replace", "path": "/spec/template", "value": template("nginx:1")}
    assert patch[1] == {"op": "add", "path": "/metadata/annotations", "value": {"kubernetes.io/change-cause": "first"}}
    assert undo_patch(deploy(), sets, 2) == (None, 2)  # already at revision 2
    with pytest.raises(CliError, match="unable to find specified revision 7"):
        undo_patch(deploy(), sets, 7)


def test_rollout_verbs_against_the_apiserver(apiserver, http: httpx.Client, namespace: str) -> None:  # type: ignore[no-untyped-def]
    base = f"/apis/apps/v1/namespaces/{namespace}"
    d = http.post(f"{base}/deployments", json={
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": template("nginx:2")}}).json()
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"], "controller": True}
    for r in (rs(1, "nginx:1"), rs(2, "nginx:2")):
        body = copy.deepcopy(r)
        body["metadata"]["ownerReferences"] = [owner]
        body["spec"].update(replicas=0, selector={"matchLabels": body["spec"]["template"]["metadata"]["labels"]})
        assert http.post(f"{base}/replicasets", json=body).status_code == 201

    def mk(*args: str) -> Any:
        return runner.invoke(app, ["--server", apiserver.url, "-n", namespace, *args])

    out = mk("rollout", "history", "deploy/web")
    assert out.exit_code == 0 and "REVISION  CHANGE-CAUSE\n1         <none>\n2         <none>" in out.output
    out = mk("rollout", "undo", "deployment/web")
    assert out.exit_code == 0 and out.output.strip() == "deployment.apps/web rolled back", out.output
    got = http.get(f"{base}/deployments/web").json()
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"
    assert "pod-template-hash" not in got["spec"]["template"]["metadata"]["labels"]
    out = mk("rollout", "undo", "deploy/web", "--to-revision", "1")
    assert "skipped rollback (current template already matches revision 1)" in out.output
    assert mk("rollout", "pause", "deploy/web").output.strip() == "deployment.apps/web paused"
    assert http.get(f"{base}/deployments/web").json()["spec"]["paused"] is True
    out = mk("rollout", "undo", "deploy/web")
    assert out.exit_code == 1 and "cannot rollback a paused deployment" in out.output
    assert mk("rollout", "resume", "deploy/web").exit_code == 0
    assert "paused" not in http.get(f"{base}/deployments/web").json()["spec"]
    # No controller runs here: status reports the spec update as not yet observed, and times out.
    out = mk("rollout", "status", "deploy/web", "--timeout", "1")
    assert out.exit_code == 1 and "Waiting for deployment spec update to be observed..." in out.output
    assert "timed out waiting for the condition" in out.output
    out = mk("rollout", "status", "deploy/web", "--timeout=1500ms")  # kubectl's duration syntax
    assert out.exit_code == 1 and "timed out waiting for the condition" in out.output
    out = mk("rollout", "status", "deploy/web", "--timeout=soon")
    assert out.exit_code == 1 and 'invalid duration "soon"' in out.output


# ------------------------------------------------------------------ DaemonSets and StatefulSets
from cli.mkctl.rollout import (daemonset_status_message, revision_rows, revision_undo_patch,  # noqa: E402
                               statefulset_status_message)


def ds_status(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "agent", "generation": 2},
            "spec": {"updateStrategy": {"type": "RollingUpdate"}}, "status": {"observedGeneration": 2, **status}}


@pytest.mark.parametrize("obj,message,done", [
    ({**ds_status(), "metadata": {"name": "agent", "generation": 3}},
     "Waiting for daemon set spec update to be observed...", False),
    (ds_status(desiredNumberScheduled=3, updatedNumberScheduled=1),
     'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...', False),
    (ds_status(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=2),
     'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...', False),
    (ds_status(desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3),
     'daemon set "agent" successfully rolled out', True),
])
def test_daemonset_status_message(obj: dict[str, Any], message: str, done: bool) -> None:
    assert daemonset_status_message(obj) == (message, done)


def test_daemonset_status_needs_rolling_update() -> None:
    with pytest.raises(CliError, match="only available for RollingUpdate"):
        daemonset_status_message({**ds_status(), "spec": {"updateStrategy": {"type": "OnDelete"}}})


def sts(replicas: int = 3, rolling: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    strategy: dict[str, Any] = {"type": "RollingUpdate"}
    if rolling is not None:
        strategy["rollingUpdate"] = rolling
    return {"metadata": {"name": "web", "generation": 1}, "spec": {"replicas": replicas, "updateStrategy": strategy},
            "status": {"observedGeneration": 1, **status}}


@pytest.mark.parametrize("obj,message,done", [
    ({**sts(), "status": {}}, "Waiting for statefulset spec update to be observed...", False),
    (sts(readyReplicas=1), "Waiting for 2 pods to be ready...", False),
    (sts(rolling={"partition": 1}, readyReplicas=3, updatedReplicas=1),
     "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...", False),
    (sts(rolling={"partition": 0}, readyReplicas=3, updatedReplicas=3),
     "partitioned roll out complete: 3 new pods have been updated...", True),
    (sts(readyReplicas=3, updatedReplicas=1, currentRevision="web-a", updateRevision="web-b"),
     "waiting for statefulset rolling update to complete 1 pods at revision web-b...", False),
    (sts(readyReplicas=3, currentReplicas=3, currentRevision="web-b", updateRevision="web-b"),
     "statefulset rolling update complete 3 pods at revision web-b...", True),
])
def test_statefulset_status_message(obj: dict[str, Any], message: str, done: bool) -> None:
    assert statefulset_status_message(obj) == (message, done)


def revision(number: int, image: str, *, uid: str = "ds-uid", cause: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"agent-{number}", "labels": {"app": "agent"},
                            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                                                 "uid": uid, "controller": True}]}
    if cause:
        meta["annotations"] = {"kubernetes.io/change-cause": cause}
    t = template(image)
    t["metadata"]["labels"] = {"app": "agent"}
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": meta,
            "data": {"spec": {"template": {**t, "$patch": "replace"}}}, "revision": number}


def test_revision_history_and_undo_patch() -> None:
    revs = [revision(2, "busybox:2"), revision(1, "busybox:1", cause="first")]
    assert revision_rows(revs) == [(1, "first"), (2, "<none>")]
    current = {"spec": {"template": revision(2, "busybox:2")["data"]["spec"]["template"]}}
    current["spec"]["template"] = {k: v for k, v in current["spec"]["template"].items() if k != "$patch"}
    patch, rev = revision_undo_patch(current, revs, 0)
    assert rev == 1 and patch == revs[1]["data"] and patch["spec"]["template"]["$patch"] == "replace"
    assert revision_undo_patch(current, revs, 2) == (None, 2)
    with pytest.raises(CliError, match="unable to find specified revision 5 in history"):
        revision_undo_patch(current, revs, 5)
    with pytest.raises(CliError, match="no last revision to roll back to"):
        revision_undo_patch(current, revs[:1], 0)


@pytest.mark.parametrize("kind,short,extra,observed", [
    ("DaemonSet", "ds", {}, "Waiting for daemon set spec update to be observed..."),
    ("StatefulSet", "sts", {"serviceName": "agent", "replicas": 0}, "Waiting for statefulset spec update to be observed..."),
])
def test_revision_rollout_verbs_against_the_apiserver(apiserver, http: httpx.Client, namespace: str,  # type: ignore[no-untyped-def]
                                                      kind: str, short: str, extra: dict[str, Any], observed: str) -> None:
    base = f"/apis/apps/v1/namespaces/{namespace}"
    plural, full = f"{kind.lower()}s", f"{kind.lower()}.apps/agent"
    t = template("busybox:1")
    t["metadata"]["labels"] = {"app": "agent"}
    d = http.post(f"{base}/{plural}", json={
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": t, **extra}}).json()
    stored = [d["spec"]["template"]]  # the revisions hold the stored (defaulted) templates, as the controller's do
    d = http.patch(f"{base}/{plural}/agent", json=[{"op": "replace", "path": "/spec/template/spec/containers/0/image",
                                                     "value": "busybox:2"}],
                   headers={"Content-Type": "application/json-patch+json"}).json()
    stored.append(d["spec"]["template"])
    for number, uid in ((1, d["metadata"]["uid"]), (2, d["metadata"]["uid"]), (3, "someone-else")):
        r = revision(number, "unused", uid=uid)
        r["metadata"]["ownerReferences"][0]["kind"] = kind
        r["data"] = {"spec": {"template": {**stored[min(number, 2) - 1], "$patch": "replace"}}}
        r["metadata"]["name"] += "-" + uid[:4]
        assert http.post(f"{base}/controllerrevisions", json=r).status_code == 201, r

    def mk(*args: str) -> Any:
        return runner.invoke(app, ["--server", apiserver.url, "-n", namespace, *args])

    out = mk("rollout", "history", f"{short}/agent")
    assert out.exit_code == 0, out.output
    assert out.output == f"{full} \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n"
    out = mk("rollout", "history", f"{kind.lower()}/agent", "--revision", "1")
    assert out.exit_code == 0 and "with revision #1" in out.output and "busybox:1" in out.output, out.output
    out = mk("rollout", "undo", f"{short}/agent")
    assert out.exit_code == 0 and out.output.strip() == f"{full} rolled back", out.output
    got = http.get(f"{base}/{plural}/agent").json()
    assert got["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1"
    assert "$patch" not in got["spec"]["template"]
    out = mk("rollout", "undo", f"{short}/agent", "--to-revision", "1")
    assert "skipped rollback (current template already matches revision 1)" in out.output
    # No controller runs here: the spec update is never observed.
    out = mk("rollout", "status", f"{short}/agent", "--timeout", "1")
    assert out.exit_code == 1 and observed in out.output, out.output
    out = mk("rollout", "restart", f"{short}/agent")
    assert out.exit_code == 0 and out.output.strip() == f"{full} restarted", out.output
    annotations = http.get(f"{base}/{plural}/agent").json()["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in annotations
