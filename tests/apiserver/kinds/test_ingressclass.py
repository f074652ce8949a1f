"""IngressClass (networking.k8s.io/v1): defaults, validation, the table columns, the default class;
over the real API too."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.networking.ingressclass import STRATEGY, default_class_name, format_parameters

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ingress_class(name: str = "minik8s", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": name},
            "spec": {"controller": "minik8s.io/ingress", **spec}}


def causes(obj: dict[str, Any]) -> set[tuple[str, str]]:
    STRATEGY.defaults(obj)
    return {(c.field, c.reason) for c in validate_object(STRATEGY, obj)}


def test_valid_classes() -> None:
    assert causes(ingress_class()) == set()
    assert causes(ingress_class(parameters={"apiGroup": "k8s.example.com", "kind": "IngressParameters",
                                            "name": "external-lb"})) == set()
    assert causes(ingress_class(parameters={"kind": "ConfigMap", "name": "p", "scope": "Namespace",
                                            "namespace": "kube-system"})) == set()


def test_parameters_scope_defaults_to_cluster() -> None:
    obj = ingress_class(parameters={"kind": "ConfigMap", "name": "p"})
    STRATEGY.defaults(obj)
    assert obj["spec"]["parameters"]["scope"] == "Cluster"
    plain = ingress_class()
    STRATEGY.defaults(plain)
    assert "parameters" not in plain["spec"]


@pytest.mark.parametrize("spec_fields,expected", [
    ({"controller": ""}, {("spec.controller", "FieldValueRequired")}),
    ({"controller": "ingress"}, {("spec.controller", "FieldValueInvalid")}),
    ({"controller": "/ingress"}, {("spec.controller", "FieldValueInvalid")}),
    ({"controller": "acme.io/"}, {("spec.controller", "FieldValueInvalid")}),
    ({"controller": "Acme_IO/ingress"}, {("spec.controller", "FieldValueInvalid")}),
    ({"controller": "acme.io/in gress"}, {("spec.controller", "FieldValueInvalid")}),
    ({"controller": "acme.io/" + "x" * 250}, {("spec.controller", "FieldValueTooLong")}),
    ({"parameters": {"name": "p"}}, {("spec.parameters.kind", "FieldValueRequired")}),
    ({"parameters": {"kind": "K"}}, {("spec.parameters.name", "FieldValueRequired")}),
    ({"parameters": {"kind": "K", "name": "a/b"}}, {("spec.parameters.name", "FieldValueInvalid")}),
    ({"parameters": {"kind": "K", "name": "p", "apiGroup": "Not A Group"}},
     {("spec.parameters.apiGroup", "FieldValueInvalid")}),
    ({"parameters": {"kind": "K", "name": "p", "scope": "Galaxy"}},
     {("spec.parameters.scope", "FieldValueNotSupported")}),
    ({"parameters": {"kind": "K", "name": "p", "scope": "Namespace"}},
     {("spec.parameters.namespace", "FieldValueRequired")}),
    ({"parameters": {"kind": "K", "name": "p", "scope": "Cluster", "namespace": "x"}},
     {("spec.parameters.namespace", "FieldValueForbidden")}),
])
def test_invalid_classes_name_the_field(spec_fields: dict[str, Any], expected: set[tuple[str, str]]) -> None:
    assert causes(ingress_class(**spec_fields)) == expected


def test_no_spec_at_all_is_a_missing_controller() -> None:
    obj = ingress_class()
    del obj["spec"]
    assert causes(obj) == {("spec.controller", "FieldValueRequired")}


def test_the_controller_is_immutable_the_parameters_are_not() -> None:
    old = ingress_class()
    new = copy.deepcopy(old)
    new["spec"]["controller"] = "acme.io/other"
    assert [(c.field, c.message) for c in STRATEGY.validate_update(new, old)] == \
        [("spec.controller", 'Invalid value: "acme.io/other": field is immutable')]
    new = ingress_class(parameters={"kind": "K", "name": "p", "scope": "Cluster"})
    assert STRATEGY.validate_update(new, old) == []


def test_table_row() -> None:
    obj = ingress_class(parameters={"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "lb"})
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Controller", "Parameters", "Age"]
    assert STRATEGY.row(obj, NOW) == ["minik8s", "minik8s.io/ingress", "IngressParameters.k8s.example.com/lb", "60m"]
    assert format_parameters(None) == "<none>"
    assert format_parameters({"kind": "ConfigMap", "name": "p"}) == "ConfigMap/p"


def _marked(name: str, created: str, value: str = "true") -> dict[str, Any]:
    obj = ingress_class(name)
    obj["metadata"].update(creationTimestamp=created,
                           annotations={"ingressclass.kubernetes.io/is-default-class": value})
    return obj


@pytest.mark.parametrize("classes,expected", [
    ([], None),
    ([ingress_class("a")], None),
    ([_marked("a", "2024-01-01T00:00:00Z", "false")], None),
    ([ingress_class("a"), _marked("b", "2024-01-01T00:00:00Z")], "b"),
    ([_marked("old", "2024-01-01T00:00:00Z"), _marked("new", "2024-02-01T00:00:00Z")], "new"),
])
def test_the_default_class(classes: list[dict[str, Any]], expected: str | None) -> None:
    assert default_class_name(classes) == expected


def test_ingress_classes_over_the_api(http: httpx.Client) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    url = "/apis/networking.k8s.io/v1/ingressclasses"
    r = http.post(url, json=ingress_class(name, parameters={"kind": "ConfigMap", "name": "p"}))
    assert r.status_code == 201, r.text
    created = r.json()
    assert "namespace" not in created["metadata"]
    assert created["spec"]["parameters"]["scope"] == "Cluster"
    try:
        r = http.patch(f"{url}/{name}", json={"spec": {"controller": "acme.io/other"}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 422 and "field is immutable" in r.text, r.text
        r = http.post(url, json=ingress_class(f"{name}-bad", controller="nope"))
        assert r.status_code == 422 and "spec.controller" in r.text, r.text
        table = http.get(url, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Controller", "Parameters", "Age"]
        row = next(r["cells"] for r in table["rows"] if r["cells"][0] == name)
        assert row[1:3] == ["minik8s.io/ingress", "ConfigMap/p"]
        resources = {x["name"]: x for x in http.get("/apis/networking.k8s.io/v1").json()["resources"]}
        assert resources["ingressclasses"]["kind"] == "IngressClass"
        assert resources["ingressclasses"]["namespaced"] is False
    finally:
        assert http.delete(f"{url}/{name}").status_code == 200


def test_a_new_ingress_without_a_class_gets_the_default_class() -> None:
    """The DefaultIngressClass admission, through the strategy's create path."""
    from datetime import datetime, timezone

    from apiserver.kinds.base import CreateContext
    from apiserver.kinds.networking.ingress import IngressStrategy

    classes: list[dict[str, Any]] = [{"metadata": {"name": "minik8s", "creationTimestamp": "2026-01-01T00:00:00Z",
                             "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}}},
               {"metadata": {"name": "other", "creationTimestamp": "2026-02-01T00:00:00Z"}}]
    ctx = CreateContext(now=datetime.now(timezone.utc),
                        stored=lambda gr: classes if gr == "ingressclasses.networking.k8s.io" else [])

    def created(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
        obj: dict[str, Any] = {"metadata": {"name": "i", "annotations": annotations or {}}, "spec": spec}
        IngressStrategy().prepare_for_create(obj, ctx)
        return obj["spec"]
    assert created({"rules": []})["ingressClassName"] == "minik8s"
    assert created({"ingressClassName": "other"})["ingressClassName"] == "other"
    assert "ingressClassName" not in created({}, {"kubernetes.io/ingress.class": "nginx"})
    no_default = CreateContext(now=datetime.now(timezone.utc), stored=lambda gr: classes[1:])
    obj: dict[str, Any] = {"metadata": {"name": "i"}, "spec": {}}
    IngressStrategy().prepare_for_create(obj, no_default)
    assert "ingressClassName" not in obj["spec"]
