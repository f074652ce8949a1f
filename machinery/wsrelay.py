"""Two WebSockets joined: every frame of one goes out on the other until either side closes.

Used by the relays that stand between a client and a server: the Ingress controller
(traffic.ingress.proxy) and the web console (console.upstream). ``join(a, b)`` runs one ``pump``
each way and returns when the first of them ends (its source closed; the other side is closed with
the same code); the caller closes both sockets afterwards.
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

Socket = aiohttp.ClientWebSocketResponse | web.WebSocketResponse


async def pump(src: Socket, dst: Socket) -> None:
    """Messages from ``src`` to ``dst`` until ``src`` closes; then close ``dst`` with its code."""
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.PING:
            await dst.ping(msg.data)
        elif msg.type == aiohttp.WSMsgType.PONG:
            await dst.pong(msg.data)
    await dst.close(code=src.close_code or aiohttp.WSCloseCode.OK)


async def join(a: Socket, b: Socket) -> None:
    """Frames both ways until one side closes."""
    pumps = [asyncio.create_task(pump(a, b)), asyncio.create_task(pump(b, a))]
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in pumps:
            t.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)


__all__ = ["join", "pump"]
