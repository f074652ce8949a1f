"""A Status body is laid out as Kubernetes serializes metav1.Status: clients compare it as text.

The official client's ``utils.create_from_yaml`` reports each failure as ``Error from server
(Conflict): <body>``, and its own end-to-end tests compare that text with Kubernetes' answer.
"""

from __future__ import annotations

import orjson

from machinery.errors import AlreadyExistsError, NotFoundError


def test_status_fields_in_kubernetes_order_with_details_before_code() -> None:
    err = AlreadyExistsError('deployments.apps "triple-nginx" already exists', name="triple-nginx",
                             group="apps", kind="deployments")
    assert orjson.dumps(err.to_status()) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"deployments.apps \\"triple-nginx\\" already exists","reason":"AlreadyExists",'
        b'"details":{"name":"triple-nginx","group":"apps","kind":"deployments"},"code":409}')


def test_core_group_is_omitted_from_details() -> None:
    status = AlreadyExistsError('services "mock-2" already exists', name="mock-2", group="", kind="services").to_status()
    assert status["details"] == {"name": "mock-2", "kind": "services"}
    assert list(status)[-2:] == ["details", "code"]


def test_status_without_details_ends_with_code() -> None:
    status = NotFoundError("the server could not find the requested resource").to_status()
    assert list(status) == ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
    assert status["details"] == {}
