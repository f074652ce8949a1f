"""pods/ephemeralcontainers: validation (a table of Kubernetes' messages and field paths) and the
subresource over the real API server (GET, strategic/merge/JSON patch, PUT; nothing else changes;
existing ephemeral containers stay; the pod's own update path cannot touch them)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.core import ephemeral
from apiserver.kinds.core.pod import STRATEGY

SMP = {"Content-Type": "application/strategic-merge-patch+json"}
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}


def pod(*ephemerals: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "ns"},
        "spec": {"containers": [{"name": "app", "image": "minik8s/busybox:1"}],
                 "initContainers": [{"name": "setup", "image": "minik8s/busybox:1"}],
                 "volumes": [{"name": "data", "emptyDir": {}}]}}
    if ephemerals:
        obj["spec"]["ephemeralContainers"] = [copy.deepcopy(e) for e in ephemerals]
    STRATEGY.defaults(obj)
    return obj


def debugger(name: str = "debugger", **fields: Any) -> dict[str, Any]:
    """What kubectl debug sends (resources is always there, empty)."""
    return {"name": name, "image": "minik8s/busybox:1", "resources": {}, "terminationMessagePolicy": "File",
            "stdin": True, "tty": True, **fields}


def causes_of(new: dict[str, Any], old: dict[str, Any]) -> list[tuple[str, str, str]]:
    causes = STRATEGY.validate_subresource_update(ephemeral.SUBRESOURCE, new, old)
    return [(c.field, c.reason, c.message) for c in causes]


def test_kubectl_debugs_container_is_valid() -> None:
    old = pod()
    new = ephemeral.merge_update(pod(debugger(targetContainerName="app", command=["sh"])), old)
    STRATEGY.defaults(new)
    assert causes_of(new, old) == []
    assert new["spec"]["ephemeralContainers"][0]["imagePullPolicy"] == "IfNotPresent"  # defaulted like containers


@pytest.mark.parametrize(("fields", "field", "reason", "message"), [
    ({"ports": [{"containerPort": 80}]}, "spec.ephemeralContainers[0].ports", "FieldValueForbidden",
     "Forbidden: cannot be set for an Ephemeral Container"),
    ({"resources": {"limits": {"cpu": "1"}}}, "spec.ephemeralContainers[0].resources", "FieldValueForbidden",
     "Forbidden: cannot be set for an Ephemeral Container"),
    ({"readinessProbe": {"exec": {"command": ["true"]}}}, "spec.ephemeralContainers[0].readinessProbe",
     "FieldValueForbidden", "Forbidden: cannot be set for an Ephemeral Container"),
    ({"lifecycle": {"preStop": {"exec": {"command": ["true"]}}}}, "spec.ephemeralContainers[0].lifecycle",
     "FieldValueForbidden", "Forbidden: cannot be set for an Ephemeral Container"),
    ({"targetContainerName": "nope"}, "spec.ephemeralContainers[0].targetContainerName", "FieldValueNotFound",
     'Not found: "nope"'),
    ({"name": "app"}, "spec.ephemeralContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "app"'),
    ({"name": "setup"}, "spec.ephemeralContainers[0].name", "FieldValueDuplicate", 'Duplicate value: "setup"'),
    ({"name": "Bad_Name"}, "spec.ephemeralContainers[0].name", "FieldValueInvalid", None),
    ({"image": ""}, "spec.ephemeralContainers[0].image", "FieldValueRequired", "Required value"),
    ({"volumeMounts": [{"name": "data", "mountPath": "/d", "subPath": "x"}]},
     "spec.ephemeralContainers[0].volumeMounts[0].subPath", "FieldValueForbidden",
     "Forbidden: cannot be set for an Ephemeral Container"),
    ({"volumeMounts": [{"name": "nope", "mountPath": "/d"}]}, "spec.ephemeralContainers[0].volumeMounts[0].name",
     "FieldValueNotFound", 'Not found: "nope"'),
])
def test_invalid_ephemeral_containers(fields: dict[str, Any], field: str, reason: str, message: str | None) -> None:
    old = pod()
    new = ephemeral.merge_update(pod(debugger(**fields)), old)
    found = [c for c in causes_of(new, old) if c[0] == field]
    assert found, causes_of(new, old)
    assert found[0][1] == reason
    if message is not None:
        assert found[0][2] == message


def test_a_forbidden_field_is_reported_once() -> None:
    old = pod()
    new = ephemeral.merge_update(pod(debugger(readinessProbe={"exec": {}})), old)  # an invalid probe too
    assert [c[0] for c in causes_of(new, old)] == ["spec.ephemeralContainers[0].readinessProbe"]


def test_two_debuggers_need_two_names() -> None:
    old = pod()
    new = ephemeral.merge_update(pod(debugger(), debugger()), old)
    assert ("spec.ephemeralContainers[1].name", "FieldValueDuplicate", 'Duplicate value: "debugger"') \
        in causes_of(new, old)


@pytest.mark.parametrize(("after", "message"), [
    ([], 'Forbidden: existing ephemeral containers "debugger" may not be removed\n'),
    ([debugger(image="other:1")], 'Forbidden: existing ephemeral containers "debugger" may not be changed\n'
                                  "changed: image"),
])
def test_existing_ephemeral_containers_stay(after: list[dict[str, Any]], message: str) -> None:
    old = pod(debugger())
    new = ephemeral.merge_update(pod(*after), old)
    STRATEGY.defaults(new)
    assert causes_of(new, old) == [("spec.ephemeralContainers", "FieldValueForbidden", message)]


def test_adding_keeps_the_others_in_any_order() -> None:
    old = pod(debugger("one"))
    new = ephemeral.merge_update(pod(debugger("two"), debugger("one")), old)
    STRATEGY.defaults(new)
    assert causes_of(new, old) == []


def test_static_pods_take_none() -> None:
    old = pod()
    old["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc"}
    new = ephemeral.merge_update(pod(debugger()), old)
    assert causes_of(new, old) == [("", "FieldValueForbidden", "Forbidden: static pods do not support ephemeral containers")]


def test_merge_takes_only_the_ephemeral_containers() -> None:
    old = pod()
    old["status"] = {"phase": "Running"}
    sent = pod(debugger())
    sent["metadata"]["labels"] = {"sneaky": "yes"}
    sent["spec"]["containers"][0]["image"] = "other:2"
    sent["status"] = {"phase": "Failed"}
    merged = ephemeral.merge_update(sent, old)
    assert merged["spec"]["ephemeralContainers"] == sent["spec"]["ephemeralContainers"]
    assert merged["spec"]["containers"] == old["spec"]["containers"]
    assert merged["status"] == {"phase": "Running"} and "labels" not in merged["metadata"]


def test_the_pods_own_update_cannot_change_them() -> None:
    old = pod(debugger())
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"].append(debugger("two"))
    STRATEGY.defaults(new)
    causes = validate_object(STRATEGY, new, old=old)
    assert [c.field for c in causes] == ["spec"]
    assert "spec.ephemeralContainers" in causes[0].message and "pod updates may not change" in causes[0].message


def test_pods_are_not_created_with_them() -> None:
    causes = validate_object(STRATEGY, pod(debugger()))
    assert [(c.field, c.message) for c in causes] == [("spec.ephemeralContainers", "Forbidden: cannot be set on create")]


# ------------------------------------------------------------------------------ over the API
@pytest.fixture
def created(http: httpx.Client, namespace: str) -> str:
    body = pod()
    del body["spec"]["initContainers"]
    body["metadata"] = {"name": "web"}
    r = http.post(f"/api/v1/namespaces/{namespace}/pods", json=body)
    assert r.status_code == 201, r.text
    return f"/api/v1/namespaces/{namespace}/pods/web"


def test_the_subresource_over_the_api(http: httpx.Client, created: str) -> None:
    url = f"{created}/ephemeralcontainers"
    r = http.get(url)
    assert r.status_code == 200 and r.json()["kind"] == "Pod" and "ephemeralContainers" not in r.json()["spec"]
    # kubectl debug's strategic merge patch; a label in the same patch is ignored
    r = http.patch(url, headers=SMP, json={"metadata": {"labels": {"x": "y"}},
                                           "spec": {"ephemeralContainers": [debugger(targetContainerName="app")]}})
    assert r.status_code == 200, r.text
    got = r.json()
    assert [c["name"] for c in got["spec"]["ephemeralContainers"]] == ["debugger"]
    assert got["spec"]["ephemeralContainers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert "labels" not in got["metadata"]
    # a second one by JSON patch, a third by merge patch (which replaces the list: all three kept)
    r = http.patch(url, headers=JSON_PATCH, json=[{"op": "add", "path": "/spec/ephemeralContainers/-",
                                                   "value": debugger("two")}])
    assert r.status_code == 200, r.text
    listed = r.json()["spec"]["ephemeralContainers"]
    r = http.patch(url, headers=MERGE, json={"spec": {"ephemeralContainers": [*listed, debugger("three")]}})
    assert r.status_code == 200, r.text
    assert [c["name"] for c in r.json()["spec"]["ephemeralContainers"]] == ["debugger", "two", "three"]
    # PUT of the whole pod: only the ephemeral containers count
    current = http.get(created).json()
    current["spec"]["ephemeralContainers"].append(debugger("four"))
    current["spec"]["containers"][0]["image"] = "ignored:1"
    r = http.put(url, json=current)
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["containers"][0]["image"] == "minik8s/busybox:1"
    assert len(r.json()["spec"]["ephemeralContainers"]) == 4
    # removing one is Invalid, as Kubernetes answers
    r = http.patch(url, headers=MERGE, json={"spec": {"ephemeralContainers": []}})
    assert r.status_code == 422, r.text
    status = r.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "Pod"
    assert 'existing ephemeral containers "debugger" may not be removed' in status["message"]
    # a forbidden field (the order as kubectl debug's patch gives it)
    order = [{"name": n} for n in ("debugger", "two", "three", "four", "five")]
    r = http.patch(url, headers=SMP, json={"spec": {"$setElementOrder/ephemeralContainers": order,
                                                    "ephemeralContainers": [
                                                        debugger("five", ports=[{"containerPort": 80}])]}})
    assert r.status_code == 422
    assert r.json()["details"]["causes"][0]["field"] == "spec.ephemeralContainers[4].ports"


def test_the_pods_own_update_path_over_the_api(http: httpx.Client, created: str) -> None:
    r = http.patch(created, headers=SMP, json={"spec": {"ephemeralContainers": [debugger()]}})
    assert r.status_code == 422
    assert "pod updates may not change fields" in r.text
    r = http.post(f"{created}/ephemeralcontainers", json=pod())
    assert r.status_code == 405
    resources = {x["name"]: x for x in http.get("/api/v1").json()["resources"]}
    assert resources["pods/ephemeralcontainers"]["verbs"] == ["get", "patch", "update"]
    assert resources["pods/ephemeralcontainers"]["kind"] == "Pod"
