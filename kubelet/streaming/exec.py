"""exec and attach over WebSocket (placeholder until the streaming work lands)."""

from __future__ import annotations

from aiohttp import web

from .context import StreamingContext


async def handle_exec(request: web.Request, ctx: StreamingContext) -> web.StreamResponse:
    return web.Response(status=501, text="exec is not implemented yet")


async def handle_attach(request: web.Request, ctx: StreamingContext) -> web.StreamResponse:
    return web.Response(status=501, text="attach is not implemented yet")
