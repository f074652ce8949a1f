"""StorageClass (storage.k8s.io/v1): defaults, validation, immutable fields, the default class and
the table; over the real API too (a claim created without a class gets the default one)."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.storage.storageclass import STRATEGY, default_class_name

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def storage_class(name: str = "fast", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "minik8s.io/local-path", **fields}


def messages(obj: dict[str, Any]) -> set[tuple[str, str]]:
    STRATEGY.defaults(obj)
    return {(c.field, c.message) for c in validate_object(STRATEGY, obj)}


def test_defaults() -> None:
    obj = storage_class()
    STRATEGY.defaults(obj)
    assert (obj["reclaimPolicy"], obj["volumeBindingMode"]) == ("Delete", "Immediate")
    assert messages(storage_class()) == set()


@pytest.mark.parametrize("fields,expected", [
    ({"provisioner": ""}, {("provisioner", "Required value")}),
    ({"provisioner": "not a name"}, {("provisioner", "Invalid value: \"not a name\": name part must consist of "
                                      "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                                      "alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex "
                                      "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")}),
    ({"reclaimPolicy": "Recycle"}, {("reclaimPolicy", 'Unsupported value: "Recycle": supported values: "Delete", '
                                     '"Retain"')}),
    ({"volumeBindingMode": "Later"}, {("volumeBindingMode", 'Unsupported value: "Later": supported values: '
                                       '"Immediate", "WaitForFirstConsumer"')}),
    ({"parameters": {"": "x"}}, {("parameters", 'Invalid value: "": field can not be empty.')}),
])
def test_validation(fields: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert messages(storage_class(**fields)) == expected


def test_provisioner_parameters_reclaim_policy_and_binding_mode_are_immutable() -> None:
    old = storage_class(parameters={"a": "1"})
    STRATEGY.defaults(old)
    new = copy.deepcopy(old)
    new.update(provisioner="other.io/p", parameters={"a": "2"}, reclaimPolicy="Retain",
               volumeBindingMode="WaitForFirstConsumer")
    assert {(c.field, c.message) for c in STRATEGY.validate_update(new, old)} == {
        ("parameters", "Forbidden: updates to parameters are forbidden."),
        ("provisioner", "Forbidden: updates to provisioner are forbidden."),
        ("reclaimPolicy", "Forbidden: updates to reclaimPolicy are forbidden."),
        ("volumeBindingMode", 'Invalid value: "WaitForFirstConsumer": field is immutable'),
    }
    relabelled = copy.deepcopy(old)
    relabelled["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    relabelled["allowVolumeExpansion"] = True
    assert STRATEGY.validate_update(relabelled, old) == []


def _marked(name: str, created: str, value: str = "true", beta: bool = False) -> dict[str, Any]:
    obj = storage_class(name)
    key = "storageclass.beta.kubernetes.io/is-default-class" if beta else "storageclass.kubernetes.io/is-default-class"
    obj["metadata"].update(creationTimestamp=created, annotations={key: value})
    return obj


@pytest.mark.parametrize("classes,expected", [
    ([], None),
    ([storage_class("a")], None),
    ([_marked("a", "2024-01-01T00:00:00Z", "false")], None),
    ([storage_class("a"), _marked("b", "2024-01-01T00:00:00Z")], "b"),
    ([_marked("b", "2024-01-01T00:00:00Z", beta=True)], "b"),
    ([_marked("old", "2024-01-01T00:00:00Z"), _marked("new", "2024-02-01T00:00:00Z")], "new"),
    ([_marked("zz", "2024-01-01T00:00:00Z"), _marked("aa", "2024-01-01T00:00:00Z")], "aa"),
])
def test_the_default_class(classes: list[dict[str, Any]], expected: str | None) -> None:
    assert default_class_name(classes) == expected


def test_table_row() -> None:
    obj = _marked("local-path", "2024-05-01T11:00:00Z")
    obj.update(volumeBindingMode="WaitForFirstConsumer")
    STRATEGY.defaults(obj)
    assert [c.name for c in STRATEGY.columns] == ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode",
                                                  "AllowVolumeExpansion", "Age"]
    assert STRATEGY.row(obj, NOW) == ["local-path (default)", "minik8s.io/local-path", "Delete",
                                      "WaitForFirstConsumer", False, "60m"]


def test_storage_classes_over_the_api(http: httpx.Client, namespace: str) -> None:
    name = f"sc-{uuid.uuid4().hex[:8]}"
    url = "/apis/storage.k8s.io/v1/storageclasses"
    body = storage_class(name, volumeBindingMode="WaitForFirstConsumer")
    body["metadata"]["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    r = http.post(url, json=body)
    assert r.status_code == 201, r.text
    try:
        assert r.json()["reclaimPolicy"] == "Delete"
        r = http.patch(f"{url}/{name}", json={"provisioner": "other.io/p"},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 422 and "updates to provisioner are forbidden." in r.text, r.text
        r = http.post(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", json={
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        assert r.status_code == 201, r.text
        assert r.json()["spec"]["storageClassName"] == name  # the DefaultStorageClass admission
        resources = {x["name"]: x for x in http.get("/apis/storage.k8s.io/v1").json()["resources"]}
        assert resources["storageclasses"]["shortNames"] == ["sc"]
        assert resources["storageclasses"]["namespaced"] is False
    finally:
        assert http.delete(f"{url}/{name}").status_code == 200
