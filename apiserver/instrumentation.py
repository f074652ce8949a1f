"""The API server's request metrics: a pure ASGI middleware inside the app, and ``GET /metrics``.

Data flow per HTTP request or WebSocket: the request's ``Attributes`` (set in ``scope["state"]`` by
the secure or insecure port's middleware; computed here for in-process callers of ``.app``) ->
``apiserver.metrics.request_labels`` (None: not counted) -> its bound children -> the app, with
``send`` watched for the status code (a WebSocket's: 101 once accepted, its denial's status, 403
when closed before accepting) and, for GET and LIST, the body size -> on return (a watch or a
stream when it ends) one duration observation and one count with the code; an exception that leaves
the app counts as a 500. Long-running requests (watch, exec/attach/port-forward/proxy/log) move
``apiserver_longrunning_requests`` while they last; every other request moves the in-flight
watermark. Sits inside the authentication middleware, as Kubernetes' instrumentation sits in its
handlers: requests refused with 401 or 403 there are not counted, as in Kubernetes.

A metric bug never breaks a request: anything the instrumentation raises is logged and the request
is served uncounted.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from machinery.metrics import exposition
from machinery.userinfo import INSECURE_SUPERUSER

from . import metricsapi
from .audit import long_running
from .auth.attributes import Attributes, request_attributes
from .metrics import (CACHES, INFLIGHT, MUTATING, READ_ONLY, KnownResource, RequestChildren, RegistryLike,
                      request_children, request_labels)
from .resources import ResourceTable

log = logging.getLogger(__name__)

# Subresources served by handlers rather than declared by a strategy (bounded: a fixed set).
HANDLED_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy", "binding", "eviction", "token"})
_METRICS_API = {(metricsapi.GROUP, metricsapi.VERSION, "pods"), (metricsapi.GROUP, metricsapi.VERSION, "nodes")}


def known_resources(table: ResourceTable) -> KnownResource:
    """Whether (group, version, resource, subresource) is something this server serves (label bound)."""
    def known(group: str, version: str, resource: str, subresource: str) -> bool:
        res = table.lookup(group, version, resource)
        if res is None:
            return not subresource and (group, version, resource) in _METRICS_API
        return not subresource or subresource in HANDLED_SUBRESOURCES or subresource in res.subresources
    return known


def _header(scope: Scope, name: bytes) -> str:
    for k, v in scope.get("headers") or ():
        if k.lower() == name:
            return str(v.decode("latin-1"))
    return ""


class Instrumentation:
    """Pure ASGI: ``app.add_middleware(Instrumentation, known=known_resources(table))``."""

    def __init__(self, app: ASGIApp, *, known: KnownResource) -> None:
        self.app, self.known = app, known
        self._failed = False

    def _children(self, scope: Scope, method: str) -> tuple[RequestChildren | None, bool]:
        """(the request's children or None when not counted, whether it is long-running)."""
        state = scope.get("state") or {}
        attributes: Attributes | None = state.get("attributes")
        query = (scope.get("query_string") or b"").decode("latin-1")
        if attributes is None:  # in process: nothing in front of the app computed them
            attributes = request_attributes(INSECURE_SUPERUSER, method, scope.get("path") or "/",
                                            dict(parse_qsl(query, keep_blank_values=True)))
        labels = request_labels(attributes, method=method, query=query,
                                content_type=_header(scope, b"content-type") if method == "PATCH" else "",
                                known=self.known)
        return (request_children(labels) if labels is not None else None), long_running(attributes)

    def _broken(self) -> None:
        if not self._failed:  # once: a bug here would otherwise log on every request
            self._failed = True
            log.exception("request metrics failed; requests are served uncounted")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method = "GET" if kind == "websocket" else str(scope.get("method") or "GET")
        try:
            children, longrun = self._children(scope, method)
        except Exception:  # noqa: BLE001 - a metric bug must not break the API
            self._broken()
            await self.app(scope, receive, send)
            return
        flight = "" if longrun else (READ_ONLY if method in ("GET", "HEAD") else MUTATING)
        if flight:
            INFLIGHT.begin(flight, start)
        elif children is not None:
            children.longrunning.inc()
        if children is None:
            try:
                await self.app(scope, receive, send)
            finally:
                if flight:
                    INFLIGHT.end(flight)
            return
        status = 0
        size = 0
        sized = children.sizes is not None

        async def watched(message: Message) -> None:
            nonlocal status, size
            t = message["type"]
            if t == "http.response.start" or t == "websocket.http.response.start":
                status = message["status"]
            elif t == "http.response.body":
                if sized:
                    size += len(message.get("body") or b"")
            elif t == "websocket.accept":
                status = 101
            elif t == "websocket.close" and not status:
                status = 403  # closed before accepting: the server answers the handshake with a 403
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except BaseException:
            if not status:
                status = 500
            raise
        finally:
            self._record(children, start, status, size, flight)

    def _record(self, children: RequestChildren, start: float, status: int, size: int, flight: str) -> None:
        try:
            if flight:
                INFLIGHT.end(flight)
            else:
                children.longrunning.dec()
            children.duration.observe(time.perf_counter() - start)
            children.total(status).inc()
            if children.sizes is not None:
                children.sizes.observe(size)
        except Exception:  # noqa: BLE001 - a metric bug must not break the API
            self._broken()


def install(app: FastAPI, table: ResourceTable, registry: RegistryLike) -> None:
    """Instrument ``app`` and serve ``GET /metrics`` (a non-resource URL: RBAC's ``get`` on
    ``/metrics``, granted by ``system:monitoring``); the registry's watch caches are read at scrape time."""
    CACHES.track(registry)
    app.add_middleware(Instrumentation, known=known_resources(table))

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        body, content_type = exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)


__all__ = ["HANDLED_SUBRESOURCES", "Instrumentation", "install", "known_resources"]
