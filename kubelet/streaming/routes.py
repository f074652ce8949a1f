"""The kubelet's streaming routes (the real kubelet's paths), added to the kubelet's aiohttp app.

    GET|POST /exec/{namespace}/{pod}/{container}   -> exec.handle_exec
    GET|POST /attach/{namespace}/{pod}/{container} -> exec.handle_attach
    GET|POST /portforward/{namespace}/{pod}        -> portforward.handle_portforward

The API server relays the client's WebSocket offer (``Sec-WebSocket-Protocol``) and query string
unchanged; the handlers choose the protocol and answer 400/404 as text before upgrading.
"""

from __future__ import annotations

from aiohttp import web

from . import exec as exec_
from . import portforward
from .context import StreamingContext


def add_routes(app: web.Application, ctx: StreamingContext) -> None:
    async def exec_route(request: web.Request) -> web.StreamResponse:
        return await exec_.handle_exec(request, ctx)

    async def attach_route(request: web.Request) -> web.StreamResponse:
        return await exec_.handle_attach(request, ctx)

    async def portforward_route(request: web.Request) -> web.StreamResponse:
        return await portforward.handle_portforward(request, ctx)

    for method in ("GET", "POST"):
        app.router.add_route(method, "/exec/{namespace}/{pod}/{container}", exec_route)
        app.router.add_route(method, "/attach/{namespace}/{pod}/{container}", attach_route)
        app.router.add_route(method, "/portforward/{namespace}/{pod}", portforward_route)


__all__ = ["add_routes"]
