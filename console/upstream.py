"""The console's relay to the API server: one request of the page, sent on as the logged-in user.

Data flow: a request of the page under ``/api``, ``/apis``, ``/version`` or ``/openapi`` with the
user's ``Identity`` -> ``forward_headers`` keeps what the API server reads (Accept, Content-Type,
...) and drops what belongs to the console (its cookie, any Authorization the page might send)
-> the user's credential is added (``Authorization: Bearer``, or the client certificate in the
TLS context) ->
- plain HTTP (``relay``): the API server's answer is streamed back chunk by chunk as it comes,
  so a watch reaches the page event by event, with its status and headers (Warning, Content-Type);
- a WebSocket upgrade (``relay_websocket``: exec, attach, port-forward): the upstream handshake
  first, offering the page's subprotocols (plus the bearer-token subprotocol Kubernetes reads),
  then the page's handshake answered with the subprotocol the API server chose, then frames both
  ways until either side closes. An upstream refusal (401, 403, 404) is answered as HTTP with the
  API server's Status, so the page can show its message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import aiohttp
from aiohttp import web

from console.sessions import Identity
from machinery import wsrelay

log = logging.getLogger(__name__)

# Request headers the API server reads; everything else stays between the browser and the console.
REQUEST_HEADERS = ("accept", "content-type", "accept-encoding", "user-agent", "x-stream-protocol-version")
# Answer headers passed back (hop-by-hop and length headers are the console's own).
RESPONSE_HEADERS = ("content-type", "warning", "audit-id", "cache-control", "content-encoding",
                    "x-kubernetes-pf-flowschema-uid", "retry-after", "x-stream-protocol-version")
BEARER_PROTOCOL = "base64url.bearer.authorization.k8s.io."


def forward_headers(request_headers: Any, identity: Identity) -> dict[str, str]:
    out = {k: v for k, v in request_headers.items() if k.lower() in REQUEST_HEADERS}
    out.update(identity.headers)
    return out


def bearer_subprotocol(token: str) -> str:
    """Kubernetes' WebSocket credential: the token in a subprotocol (browsers cannot set headers)."""
    return BEARER_PROTOCOL + base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


async def relay(request: web.Request, http: aiohttp.ClientSession, base_url: str, identity: Identity) -> web.StreamResponse:
    body = await request.read() if request.can_read_body else None
    try:
        upstream = await http.request(request.method, base_url + request.path_qs, data=body,
                                      headers=forward_headers(request.headers, identity), ssl=identity.ssl,
                                      timeout=aiohttp.ClientTimeout(total=None, sock_connect=10), auto_decompress=False)
    except (aiohttp.ClientError, OSError) as e:
        return unavailable(f"the API server at {base_url} cannot be reached: {e}")
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name in RESPONSE_HEADERS:
            for value in upstream.headers.getall(name, ()):
                response.headers.add(name, value)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (aiohttp.ClientError, ConnectionResetError, asyncio.TimeoutError) as e:
            # The API server went away mid-stream (a restart): the page's watch resumes on its own.
            log.info("stream %s ended: %s", request.path, e)
            return response
        await response.write_eof()
    return response


def unavailable(message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": "ServiceUnavailable", "code": 503}, status=503)


async def relay_websocket(request: web.Request, http: aiohttp.ClientSession, base_url: str,
                          identity: Identity) -> web.StreamResponse:
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    offered = [p for p in offered if not p.startswith(BEARER_PROTOCOL)]
    protocols = list(offered)
    if identity.token:
        protocols.append(bearer_subprotocol(identity.token))
    url = base_url.replace("http", "ws", 1) + request.path_qs
    try:
        upstream = await http.ws_connect(url, protocols=protocols, ssl=identity.ssl, max_msg_size=0,
                                         headers={k: v for k, v in identity.headers.items() if k != "Authorization"},
                                         autoping=True, timeout=aiohttp.ClientWSTimeout(ws_close=5))
    except aiohttp.WSServerHandshakeError as e:
        # The API server refused the upgrade: tell the page why, as the API's own Status.
        return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": e.message or f"the API server refused the connection ({e.status})",
                                  "code": e.status}, status=e.status or 502)
    except (aiohttp.ClientError, OSError) as e:
        return unavailable(f"the API server at {base_url} cannot be reached: {e}")
    return await wsrelay.accept_and_join(request, upstream)
