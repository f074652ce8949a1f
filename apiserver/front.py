"""The resource requests' short way through the app: straight to the handler, past FastAPI's router.

Data flow: every request -> the middlewares around the app (authentication and authorization,
audit, request metrics: all of them still run) -> ``ResourceFront``, the innermost middleware ->
a resource request (``GET|POST|PUT|PATCH|DELETE /api/...`` or ``/apis/...`` naming a resource,
that no route installed before the generic resource routes claims: discovery, metrics.k8s.io,
pods/exec|attach|portforward, the proxies) goes to ``serve(request, info)`` (the handler the
generic routes would reach, ``apiserver/app.py``), its ``ApiError`` becomes the ``Status`` answer
and any other exception a logged 500 ``Status``, exactly as the app's exception handlers answer;
everything else goes on through FastAPI unchanged.

Why: py-spy of the API server under 64 concurrent clients showed FastAPI's router, dependency
solving and exception middlewares taking as much of the event loop as the handler itself (about
45 % of the samples of a GET, see docs/performance.md); the resource handler needs none of them.
Which paths the earlier routes claim is read from the app's own route table (one combined
pattern), so a route added before the generic ones keeps its paths without a change here.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from machinery import errors

from .resources import RequestInfo, parse_path

log = logging.getLogger(__name__)

Serve = Callable[[Request, RequestInfo], Awaitable[Response]]
ErrorResponse = Callable[[errors.ApiError], Response]
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_PREFIXES = ("/api/", "/apis/")
_GROUP_NAME = re.compile(r"\(\?P<[^>]+>")


def claimed_pattern(paths: list[str]) -> re.Pattern[str] | None:
    """One pattern matching any of these route regexes (Starlette's, named groups made plain)."""
    if not paths:
        return None
    return re.compile("|".join(f"(?:{_GROUP_NAME.sub('(?:', p)})" for p in paths))


def earlier_api_routes(routes: list[Any], endpoint: Callable[..., Any]) -> list[str]:
    """The regexes of the routes under /api or /apis that come before ``endpoint``'s routes."""
    out: list[str] = []
    for route in routes:
        if getattr(route, "endpoint", None) is endpoint:
            break
        path = getattr(route, "path", "")
        regex = getattr(route, "path_regex", None)
        if regex is not None and (path == "/api" or path == "/apis" or path.startswith(_PREFIXES)):
            out.append(regex.pattern)
    return out


class ResourceFront:
    """Pure ASGI, the innermost middleware: ``app.user_middleware.append(Middleware(ResourceFront, ...))``.

    ``routes`` gives the app's route table (read again whenever it grows), ``endpoint`` is the
    generic routes' endpoint, ``serve`` the handler, ``error_response`` the ``Status`` answer."""

    def __init__(self, app: ASGIApp, *, routes: Callable[[], list[Any]], endpoint: Callable[..., Any],
                 serve: Serve, error_response: ErrorResponse) -> None:
        self.app, self.routes, self.endpoint = app, routes, endpoint
        self.serve, self.error_response = serve, error_response
        self._seen = -1
        self._claimed: re.Pattern[str] | None = None

    def _info(self, scope: Scope) -> RequestInfo | None:
        """The resource a request names, when it is one this front serves."""
        if scope["type"] != "http" or scope.get("method") not in METHODS or scope.get("root_path"):
            return None
        path: str = scope["path"]
        if not path.startswith(_PREFIXES):
            return None
        routes = self.routes()
        if len(routes) != self._seen:
            self._claimed = claimed_pattern(earlier_api_routes(routes, self.endpoint))
            self._seen = len(routes)
        if self._claimed is not None and self._claimed.match(path):
            return None
        return parse_path(path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        info = self._info(scope)
        if info is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            response = await self.serve(request, info)
        except errors.ApiError as e:
            response = self.error_response(e)
        except Exception as e:  # noqa: BLE001 - a bug answers a Status, never a traceback
            log.exception("unhandled error serving %s %s", scope.get("method"), scope["path"])
            response = self.error_response(errors.InternalError(
                message=f"an internal error occurred: {type(e).__name__}"))
        await response(scope, receive, send)


__all__ = ["METHODS", "ResourceFront", "claimed_pattern", "earlier_api_routes"]
