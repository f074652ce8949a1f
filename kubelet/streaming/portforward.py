"""port-forward over WebSocket (placeholder until the streaming work lands)."""

from __future__ import annotations

from aiohttp import web

from .context import StreamingContext


async def handle_portforward(request: web.Request, ctx: StreamingContext) -> web.StreamResponse:
    return web.Response(status=501, text="port-forward is not implemented yet")
