"""Secret: stringData folded into data, type rules, immutability, the table row; over the real API too."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.core.secret import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, **fields}


def causes(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    STRATEGY.defaults(obj)
    return [(c.field, c.reason) for c in validate_object(STRATEGY, obj, old=old)]


def test_string_data_is_encoded_into_data_and_never_kept() -> None:
    obj = secret(data={"a": b64("old"), "keep": b64("k")}, stringData={"a": "new", "b": "two"})
    STRATEGY.defaults(obj)
    assert obj["data"] == {"a": b64("new"), "keep": b64("k"), "b": b64("two")}
    assert "stringData" not in obj
    assert obj["type"] == "Opaque"


@pytest.mark.parametrize(("obj", "expected"), [
    (secret(data={"bad key!": b64("x")}), ("data[bad key!]", "FieldValueInvalid")),
    (secret(data={"k": "not base64!!"}), ("data[k]", "FieldValueInvalid")),
    (secret(type="kubernetes.io/tls", data={"tls.crt": b64("c")}), ("data[tls.key]", "FieldValueRequired")),
    (secret(type="kubernetes.io/basic-auth", data={}), ("data[username]", "FieldValueRequired")),
    (secret(type="kubernetes.io/ssh-auth", data={}), ("data[ssh-privatekey]", "FieldValueRequired")),
    (secret(type="kubernetes.io/dockerconfigjson", data={".dockerconfigjson": b64("{nope")}),
     ("data[.dockerconfigjson]", "FieldValueInvalid")),
    (secret(type="kubernetes.io/service-account-token", data={}),
     ("metadata.annotations[kubernetes.io/service-account.name]", "FieldValueRequired")),
    (secret(data={"big": b64("x" * (1024 * 1024 + 1))}), ("data", "FieldValueTooLong")),
])
def test_invalid_secrets(obj: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in causes(obj)


def test_well_formed_typed_secrets_are_valid() -> None:
    assert causes(secret(type="kubernetes.io/tls", data={"tls.crt": b64("c"), "tls.key": b64("k")})) == []
    assert causes(secret(type="kubernetes.io/basic-auth", stringData={"password": "p"})) == []
    assert causes(secret(type="kubernetes.io/dockerconfigjson",
                         stringData={".dockerconfigjson": '{"auths": {}}'})) == []


def test_type_is_immutable_and_immutable_freezes_data() -> None:
    old = secret(data={"a": b64("1")})
    STRATEGY.defaults(old)
    assert ("type", "FieldValueInvalid") in causes(secret(type="kubernetes.io/tls", data={"tls.crt": "", "tls.key": ""}),
                                                   old=old)
    frozen = secret(data={"a": b64("1")}, immutable=True)
    STRATEGY.defaults(frozen)
    assert ("data", "FieldValueForbidden") in causes(secret(data={"a": b64("2")}, immutable=True), old=frozen)
    assert ("immutable", "FieldValueForbidden") in causes(secret(data={"a": b64("1")}), old=frozen)
    assert causes(secret(data={"a": b64("1")}, immutable=True), old=frozen) == []


def test_table_row_is_name_type_data_age() -> None:
    obj = secret(type="kubernetes.io/tls", data={"tls.crt": "", "tls.key": ""})
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:59:00Z"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Type", "Data", "Age"]
    assert STRATEGY.row(obj, NOW) == ["s", "kubernetes.io/tls", 2, "60s"]


def test_secrets_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/api/v1/namespaces/{namespace}/secrets"
    r = http.post(url, json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                             "stringData": {"password": "s3cr3t"}})
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["data"] == {"password": b64("s3cr3t")} and stored["type"] == "Opaque"
    assert "stringData" not in http.get(f"{url}/db").json()
    # A merge patch with stringData updates data the same way.
    r = http.patch(f"{url}/db", json={"stringData": {"user": "admin"}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"password": b64("s3cr3t"), "user": b64("admin")}
    r = http.patch(f"{url}/db", json={"type": "kubernetes.io/tls"},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "type" in {c["field"] for c in r.json()["details"]["causes"]}, r.text
    assert http.get(url, params={"fieldSelector": "type=Opaque"}).json()["items"][0]["metadata"]["name"] == "db"
    r = http.post(url, json={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tls"},
                             "type": "kubernetes.io/tls", "data": {}})
    assert r.status_code == 422, r.text
    assert {c["field"] for c in r.json()["details"]["causes"]} == {"data[tls.crt]", "data[tls.key]"}
    assert http.get(f"{url}/tls").status_code == 404
