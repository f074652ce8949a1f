"""EndpointSlice (discovery.k8s.io/v1): defaults, validation, the table columns; over the real API too."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.discovery.endpointslice import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def endpoint_slice(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abc12", "namespace": "ns", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["172.28.0.5"], "conditions": {"ready": True, "serving": True,
                                                                       "terminating": False},
                           "nodeName": "node-1", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "ns"}}],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP"}], **fields}


def causes(obj: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c.field, c.reason) for c in validate_object(STRATEGY, obj)}


def test_a_slice_as_the_controller_writes_it_is_valid() -> None:
    assert causes(endpoint_slice()) == set()
    assert causes(endpoint_slice(addressType="FQDN", endpoints=[{"addresses": ["db.example.com"]}])) == set()
    assert causes(endpoint_slice(addressType="IPv6", endpoints=[{"addresses": ["fd00::5"]}])) == set()
    assert causes(endpoint_slice(endpoints=[], ports=[])) == set()


@pytest.mark.parametrize("change,expected", [
    ({"addressType": None}, {("addressType", "FieldValueRequired")}),
    ({"addressType": "IPv5"}, {("addressType", "FieldValueNotSupported")}),
    ({"endpoints": [{"addresses": []}]}, {("endpoints[0].addresses", "FieldValueRequired")}),
    ({"endpoints": [{"addresses": ["fd00::5"]}]}, {("endpoints[0].addresses[0]", "FieldValueInvalid")}),
    ({"endpoints": [{"addresses": ["300.1.1.1"]}]}, {("endpoints[0].addresses[0]", "FieldValueInvalid")}),
    ({"endpoints": [{"addresses": [f"10.0.0.{i}" for i in range(101)]}]},
     {("endpoints[0].addresses", "FieldValueTooMany")}),
    ({"endpoints": [{"addresses": ["10.0.0.1"], "hostname": "Not_A_Label"}]},
     {("endpoints[0].hostname", "FieldValueInvalid")}),
    ({"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": "yes"}}]},
     {("endpoints[0].conditions.ready", "FieldValueInvalid")}),
    ({"ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "http", "port": 81, "protocol": "TCP"}]},
     {("ports[1].name", "FieldValueDuplicate")}),
    ({"ports": [{"name": "http", "port": 0, "protocol": "TCP"}]}, {("ports[0].port", "FieldValueInvalid")}),
    ({"ports": [{"name": "http", "port": 80, "protocol": "HTTP"}]}, {("ports[0].protocol", "FieldValueNotSupported")}),
])
def test_invalid_slices_name_the_field(change: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    obj = endpoint_slice(**change)
    if change.get("addressType", "") is None:
        del obj["addressType"]
    assert causes(obj) == expected


def test_defaults_and_the_immutable_address_type() -> None:
    obj = endpoint_slice(ports=[{"port": 53}])
    STRATEGY.defaults(obj)
    assert obj["ports"] == [{"port": 53, "name": "", "protocol": "TCP"}]
    changed = {**obj, "addressType": "IPv6"}
    assert [(c.field, c.message) for c in STRATEGY.validate_update(changed, obj)] == \
        [("addressType", 'Invalid value: "IPv6": field is immutable')]


def test_table_row() -> None:
    obj = endpoint_slice(endpoints=[{"addresses": [f"10.0.0.{i}"]} for i in range(5)],
                         ports=[{"port": 80}, {"name": "metrics"}])
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    assert [c.name for c in STRATEGY.columns] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert STRATEGY.row(obj, NOW) == ["web-abc12", "IPv4", "80,metrics", "10.0.0.0,10.0.0.1,10.0.0.2 + 2 more...",
                                      "60m"]
    assert STRATEGY.row(endpoint_slice(endpoints=[], ports=[]), NOW)[2:4] == ["<unset>", "<unset>"]


def test_endpoint_slices_over_the_api(http: httpx.Client, namespace: str) -> None:
    url = f"/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
    body = endpoint_slice()
    body["metadata"] = {"name": "web-abc12", "labels": {"kubernetes.io/service-name": "web"}}
    r = http.post(url, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["endpoints"][0]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    r = http.get(url, params={"labelSelector": "kubernetes.io/service-name=web"})
    assert [s["metadata"]["name"] for s in r.json()["items"]] == ["web-abc12"]
    r = http.patch(f"{url}/web-abc12", json={"addressType": "IPv6"},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 422 and "field is immutable" in r.text, r.text
    r = http.post(url, json={**body, "metadata": {"name": "bad"}, "endpoints": [{"addresses": ["nope"]}]})
    assert r.status_code == 422 and "endpoints[0].addresses[0]" in r.text, r.text
    table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "AddressType", "Ports", "Endpoints", "Age"]
    assert table["rows"][0]["cells"][:4] == ["web-abc12", "IPv4", "80", "172.28.0.5"]
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert groups["discovery.k8s.io"]["preferredVersion"]["groupVersion"] == "discovery.k8s.io/v1"
    resources = http.get("/apis/discovery.k8s.io/v1").json()["resources"]
    assert [(x["name"], x["kind"], x["namespaced"]) for x in resources] == [("endpointslices", "EndpointSlice", True)]
    r = http.delete(f"{url}/web-abc12")
    assert r.status_code == 200, r.text
