"""Two WebSockets joined: every frame of one goes out on the other until either side closes.

Used by the relays that stand between a client and a server: the Ingress controller
(traffic.ingress.proxy) and the web console (console.upstream). ``join(a, b)`` runs one ``pump``
each way and returns when the first of them ends (its source closed; the other side is closed with
the same code). ``accept_and_join(request, upstream)`` is what both relays do once their upstream
socket is open: answer the client's upgrade with the subprotocol the upstream chose, join the two,
and close both whatever happens.
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


async def accept_and_join(request: web.BaseRequest, upstream: aiohttp.ClientWebSocketResponse, *, autoping: bool = True,
                          compress: bool = True) -> web.WebSocketResponse:
    """Accept the client's upgrade (the upstream's subprotocol, no size limit) and relay until one
    side closes; both sockets are closed on return."""
    client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), autoping=autoping,
                                   max_msg_size=0, compress=compress)
    try:
        await client.prepare(request)
        await join(client, upstream)
    finally:
        await upstream.close()
        await client.close()
    return client


__all__ = ["accept_and_join", "join", "pump"]
