"""The resource requests' short way (apiserver/front.py): which requests it takes, what it answers.

Pure parts with a toy FastAPI app (route claims, errors, the order of middlewares); then the real
app over the session's etcd: resource requests still work through it, and the routes installed
before the generic ones (discovery, metrics.k8s.io, pods/exec) keep their paths.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from apiserver.app import create_app, status_response
from apiserver.front import ResourceFront, claimed_pattern, earlier_api_routes
from apiserver.registry import Registry
from apiserver.resources import RequestInfo, default_resources
from apiserver.storage.etcd import EtcdStorage
from machinery import errors
from starlette.middleware import Middleware
from tests.cluster import Etcd


# ---------------------------------------------------------------------------- a toy app
def toy_app() -> tuple[FastAPI, list[RequestInfo], list[str]]:
    """Earlier routes (discovery, a group of its own, exec), the generic routes, and a front."""
    app = FastAPI()
    served: list[RequestInfo] = []
    outer: list[str] = []

    @app.get("/apis/{group}/{version}")
    async def discovery(group: str, version: str) -> Response:
        return Response(f"discovery {group}/{version}")

    @app.get("/apis/metrics.k8s.io/v1beta1/nodes")
    async def metrics() -> Response:
        return Response("metrics")

    @app.api_route("/api/v1/namespaces/{namespace}/pods/{name}/exec", methods=["GET", "POST", "PUT"])
    async def exec_(namespace: str, name: str) -> Response:
        return Response("exec")

    async def dispatch(request: Request) -> Response:
        return Response("generic")

    async def serve(request: Request, info: RequestInfo) -> Response:
        served.append(info)
        if info.name == "missing":
            raise errors.NotFoundError(message="not here")
        if info.name == "bug":
            raise RuntimeError("a bug")
        return Response(f"front {info.plural}/{info.name}")

    for prefix in ("/api/{path:path}", "/apis/{path:path}"):
        app.add_api_route(prefix, dispatch, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])

    class Outer:  # stands for the metrics and audit middlewares: they must still see every request
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                outer.append(scope["path"])
            await self.app(scope, receive, send)

    app.add_middleware(Outer)
    app.user_middleware.append(Middleware(ResourceFront, routes=lambda: app.router.routes, endpoint=dispatch,
                                          serve=serve, error_response=status_response))
    return app, served, outer


@pytest.mark.parametrize("path, claimed", [
    ("/apis/apps/v1", True),
    ("/apis/metrics.k8s.io/v1beta1/nodes", True),
    ("/api/v1/namespaces/a/pods/b/exec", True),
    ("/api/v1/namespaces/a/pods/b", False),
    ("/apis/apps/v1/deployments", False),
    ("/apis/apps/v1/namespaces/a/deployments/b/scale", False),
])
def test_earlier_routes_claim_their_paths(path: str, claimed: bool) -> None:
    app, _, _ = toy_app()
    endpoint = next(getattr(r, "endpoint") for r in app.router.routes if getattr(r, "path", "") == "/api/{path:path}")
    pattern = claimed_pattern(earlier_api_routes(app.router.routes, endpoint))
    assert pattern is not None
    assert bool(pattern.match(path)) is claimed


def test_no_earlier_routes_no_pattern() -> None:
    assert claimed_pattern([]) is None


@pytest.mark.parametrize("method, path, status, body", [
    ("GET", "/api/v1/namespaces/a/pods/b", 200, "front pods/b"),
    ("DELETE", "/apis/apps/v1/namespaces/a/deployments/d", 200, "front deployments/d"),
    ("GET", "/apis/apps/v1", 200, "discovery apps/v1"),
    ("GET", "/apis/metrics.k8s.io/v1beta1/nodes", 200, "metrics"),
    ("PUT", "/api/v1/namespaces/a/pods/b/exec", 200, "exec"),
    ("GET", "/api/v1", 200, "generic"),  # not a resource path: FastAPI's generic route, as before
    ("HEAD", "/api/v1/namespaces/a/pods/b", 405, ""),  # not a resource method: FastAPI answers
])
async def test_front_takes_resource_requests_only(method: str, path: str, status: int, body: str) -> None:
    app, served, outer = toy_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        r = await c.request(method, path)
    assert r.status_code == status
    if body:
        assert r.text == body
    assert bool(served) is body.startswith("front")
    assert outer == [path]


async def test_front_answers_errors_as_status(caplog: pytest.LogCaptureFixture) -> None:
    app, _, _ = toy_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://a") as c:
        missing = await c.get("/api/v1/namespaces/a/pods/missing")
        with caplog.at_level(logging.ERROR, logger="apiserver.front"):
            bug = await c.get("/api/v1/namespaces/a/pods/bug")
    assert missing.status_code == 404
    assert missing.json()["reason"] == "NotFound" and missing.json()["message"] == "not here"
    assert bug.status_code == 500
    assert bug.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": "an internal error occurred: RuntimeError", "reason": "InternalError",
                          "code": 500}
    assert "a bug" in caplog.text  # the traceback is logged, not sent


# ---------------------------------------------------------------------------- the real app
@pytest.fixture(scope="module")
async def client(etcd: Etcd) -> AsyncIterator[httpx.AsyncClient]:
    storage = EtcdStorage(etcd.url)
    registry = Registry(storage, default_resources())
    await registry.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(registry)), base_url="http://a") as c:
        yield c
    await registry.stop()
    await storage.close()


async def test_real_app_routes(client: httpx.AsyncClient) -> None:
    ns = f"front-{uuid.uuid4().hex[:8]}"
    r = await client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})
    assert r.status_code == 201, r.text
    cm: dict[str, Any] = {"metadata": {"name": "one"}, "data": {"a": "b"}}
    created = await client.post(f"/api/v1/namespaces/{ns}/configmaps", json=cm)
    assert created.status_code == 201 and created.text.endswith("}\n")
    got = await client.get(f"/api/v1/namespaces/{ns}/configmaps/one")
    assert got.status_code == 200 and got.json()["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert (await client.post(f"/api/v1/namespaces/{ns}/configmaps", json=cm)).json()["reason"] == "AlreadyExists"
    bad = await client.post(f"/api/v1/namespaces/{ns}/configmaps", content=b"{bad", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json()["kind"] == "Status"
    # Routes installed before the generic ones keep their paths.
    assert (await client.get("/apis/apps/v1")).json()["kind"] == "APIResourceList"
    assert (await client.get("/apis/metrics.k8s.io/v1beta1/nodes")).json()["kind"] == "NodeMetricsList"
    # pods/exec is the stream proxy's: a PUT there is its 405, not a write of the pod
    exec_put = await client.put(f"/api/v1/namespaces/{ns}/pods/p/exec", json={})
    assert exec_put.status_code == 405 and exec_put.json()["reason"] == "MethodNotAllowed"
    assert (await client.request("HEAD", f"/api/v1/namespaces/{ns}/configmaps/one")).status_code == 405
    assert (await client.delete(f"/api/v1/namespaces/{ns}")).status_code == 200
