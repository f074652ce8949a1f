"""``pods/exec``, ``pods/attach``, ``pods/portforward``: the API server's WebSocket relay to the kubelet.

Data flow (Kubernetes' ExecREST / AttachREST / PortForwardREST + UpgradeAwareHandler):

    client --WebSocket (v5.channel.k8s.io, v4..., SPDY/3.1+portforward.k8s.io)-->
      GET /api/v1/namespaces/NS/pods/NAME/exec|attach|portforward?<options>
      -> ``locate``: the pod (watch cache), its container (``nodeproxy.choose_container``), its node
         and the node's kubelet (``nodeproxy.kubelet_location``); any refusal is a ``Status``
         answered as the handshake's HTTP response, as Kubernetes answers before upgrading
      -> aiohttp WebSocket to http://ADDR:PORT/exec/NS/NAME/CONTAINER?<the same query>
         (``/attach/...``, ``/portforward/NS/NAME?...``), offering the client's subprotocols, with
         ``Authorization: Bearer <token>`` (``nodeproxy.kubelet_headers``)
      -> the kubelet refuses: its status and text go back to the client as a ``Status``;
         it accepts: the client is accepted with the subprotocol the kubelet chose, and
         ``relay`` copies every message both ways unchanged (binary and text) until one side
         closes, then closes the other with the same code.

All protocol work (channels, SPDY, Docker) happens in the kubelet. A plain (non-WebSocket) request
to these paths gets Kubernetes' 400 ``Upgrade request required`` once the pod checks pass; an
SPDY upgrade (kubectl's fallback when the WebSocket upgrade was refused) gets the refusal the
WebSocket attempt got moments before, so kubectl prints the real reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import parse_qsl, quote

import aiohttp
import orjson
import yarl
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from starlette.websockets import WebSocketState

from machinery import errors
from machinery.remotecommand import ProtocolError, parse_ports

from . import nodeproxy

if TYPE_CHECKING:
    from .registry import Registry

log = logging.getLogger(__name__)

SUBRESOURCES = ("exec", "attach", "portforward")
CONNECT_TIMEOUT = 5.0
MAX_MESSAGE = 16 * 1024 * 1024
MAX_ERROR_BODY = 16 * 1024
REFUSAL_MEMORY = 30.0  # seconds an SPDY fallback is answered with the WebSocket attempt's refusal
# What kubectl says about a finished pod, per subresource (it checks before connecting; other
# clients get the same words from here).
_COMPLETED = {
    "exec": "cannot exec into a container in a completed pod; current phase is {phase}",
    "attach": "cannot attach to a container in a completed pod; current phase is {phase}",
    "portforward": "unable to forward port because pod is not running. Current status={phase}",
}
# Close codes an endpoint may not send (RFC 6455 7.4.1) -> what is sent instead.
_RESERVED_CLOSE = {1005: 1000, 1006: 1011, 1015: 1011}


@dataclass(frozen=True)
class StreamTarget:
    """Where a stream goes: the node's kubelet and the kubelet's path and query."""
    node: str
    address: str
    port: int
    path: str  # /exec/NS/NAME/CONTAINER, /attach/..., /portforward/NS/NAME
    query: str  # the client's raw query string, forwarded unchanged

    @property
    def url(self) -> yarl.URL:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return yarl.URL(f"http://{host}:{self.port}{self.path}" + (f"?{self.query}" if self.query else ""),
                        encoded=True)


# ------------------------------------------------------------------------------ pure decisions
def check_pod(pod: Mapping[str, Any], subresource: str, query: Sequence[tuple[str, str]]) -> str | None:
    """The container to stream to (None for port-forward), or the ApiError Kubernetes answers."""
    name = str((pod.get("metadata") or {}).get("name", ""))
    params: dict[str, list[str]] = {}
    for k, v in query:
        params.setdefault(k, []).append(v)
    if subresource == "exec" and not [c for c in params.get("command", []) if c != ""]:
        raise errors.BadRequestError(message="you must specify at least 1 command")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise errors.BadRequestError(message=_COMPLETED[subresource].format(phase=phase))
    container = None
    if subresource == "portforward":
        try:
            parse_ports(params.get("ports", []))
        except ProtocolError as e:
            raise errors.BadRequestError(message=str(e)) from None
    else:
        container = nodeproxy.choose_container(pod, (params.get("container") or [""])[-1])
    if not (pod.get("spec") or {}).get("nodeName"):
        raise errors.BadRequestError(message=f"pod {name} does not have a host assigned")
    return container


def kubelet_path(subresource: str, namespace: str, pod: str, container: str | None) -> str:
    parts = [subresource, namespace, pod] + ([container] if container is not None else [])
    return "/" + "/".join(quote(p, safe="") for p in parts)


def close_code(code: int | None) -> int:
    """The close code to pass on (a reserved or missing one becomes what may be sent)."""
    if code is None:
        return 1000
    return _RESERVED_CLOSE.get(code, code) if 1000 <= code < 5000 else 1011


def kubelet_refusal(status: int, text: str, node: str) -> errors.ApiError:
    """The kubelet's pre-upgrade answer as the Status the client sees."""
    text = text.strip()
    try:
        doc = orjson.loads(text) if text.startswith("{") else None
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        text = str(doc["message"])
    message = text or f"the kubelet on node {node} refused the stream (HTTP {status})"
    kinds: dict[int, type[errors.ApiError]] = {400: errors.BadRequestError, 404: errors.NotFoundError,
                                               503: errors.ServiceUnavailableError}
    if status in (401, 403):
        return errors.InternalError(
            message=f"the kubelet on node {node} refused the API server's credential: {message}")
    return kinds.get(status, errors.InternalError)(message=message)


def status_response(err: errors.ApiError) -> Response:
    return Response(orjson.dumps(err.to_status()) + b"\n", status_code=err.code, media_type="application/json")


# ------------------------------------------------------------------------------ I/O
def _refusal_catcher() -> tuple[type[aiohttp.ClientResponse], list[bytes]]:
    """A response class for one session that keeps a refused handshake's body (the kubelet's
    reason, which ``WSServerHandshakeError`` does not carry), and the list it keeps it in."""
    bodies: list[bytes] = []

    class Catcher(aiohttp.ClientResponse):
        async def start(self, connection: Any) -> "aiohttp.ClientResponse":
            resp = await super().start(connection)
            if self.status != 101:
                try:
                    bodies.append(await self.content.read(MAX_ERROR_BODY))
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
            return resp

    return Catcher, bodies


class StreamProxy:
    def __init__(self, registry: "Registry") -> None:
        self.registry = registry
        # (path, query) -> (when, refusal): kubectl's SPDY fallback gets the WebSocket's refusal
        self._refusals: dict[tuple[str, str], tuple[float, errors.ApiError]] = {}

    def _resource(self, plural: str) -> Any:
        res = self.registry.resources.lookup("", "v1", plural)
        assert res is not None
        return res

    async def locate(self, namespace: str, name: str, subresource: str, query: str) -> StreamTarget:
        pod = (await self.registry.get(self._resource("pods"), namespace, name)).obj
        container = check_pod(pod, subresource, parse_qsl(query, keep_blank_values=True))
        node_name = str(pod["spec"]["nodeName"])
        node = (await self.registry.get(self._resource("nodes"), None, node_name)).obj
        address, port = nodeproxy.kubelet_location(node)
        return StreamTarget(node_name, address, port, kubelet_path(subresource, namespace, name, container), query)

    def remember(self, key: tuple[str, str], err: errors.ApiError) -> None:
        now = time.monotonic()
        self._refusals = {k: v for k, v in self._refusals.items() if now - v[0] < REFUSAL_MEMORY}
        self._refusals[key] = (now, err)

    def recalled(self, key: tuple[str, str]) -> errors.ApiError | None:
        found = self._refusals.get(key)
        return found[1] if found and time.monotonic() - found[0] < REFUSAL_MEMORY else None

    async def serve_websocket(self, ws: WebSocket, namespace: str, name: str, subresource: str) -> None:
        query = ws.scope.get("query_string", b"").decode("latin-1")
        key = (ws.url.path, query)
        try:
            target = await self.locate(namespace, name, subresource, query)
        except errors.ApiError as e:
            self.remember(key, e)
            await _deny(ws, e)
            return
        catcher, refusals = _refusal_catcher()
        session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT, sock_connect=CONNECT_TIMEOUT),
            response_class=catcher)
        try:
            upstream = await self._connect(session, target, list(ws.scope.get("subprotocols") or []), refusals)
        except errors.ApiError as e:
            await session.close()
            self.remember(key, e)
            await _deny(ws, e)
            return
        except BaseException:
            await session.close()
            raise
        try:
            await ws.accept(subprotocol=upstream.protocol)
            await relay(ws, upstream)
        finally:
            await upstream.close()
            await session.close()

    async def _connect(self, session: aiohttp.ClientSession, target: StreamTarget, protocols: list[str],
                       refusals: list[bytes]) -> aiohttp.ClientWebSocketResponse:
        headers = await nodeproxy.kubelet_headers(self.registry)
        try:
            return await session.ws_connect(target.url, protocols=protocols, headers=headers, autoclose=False,
                                            max_msg_size=MAX_MESSAGE, compress=0,
                                            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0))
        except aiohttp.WSServerHandshakeError as e:
            body = refusals[-1] if refusals else b""
            raise kubelet_refusal(e.status, body.decode("utf-8", "replace"), target.node) from None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            log.info("kubelet of node %s at %s:%s unreachable: %s", target.node, target.address, target.port, e)
            raise errors.ServiceUnavailableError(
                message=f"the kubelet on node {target.node} is not reachable") from None

    async def serve_plain(self, request: Request, namespace: str, name: str, subresource: str) -> Response:
        """A request that is not a WebSocket upgrade: the pod checks, then 400 as Kubernetes answers."""
        query = request.scope.get("query_string", b"").decode("latin-1")
        await self.locate(namespace, name, subresource, query)
        if "spdy" in request.headers.get("upgrade", "").lower():
            earlier = self.recalled((request.url.path, query))
            if earlier is not None:
                raise earlier
            raise errors.BadRequestError(
                message="this API server streams exec, attach and port-forward over WebSocket only "
                        "(kubectl 1.30 or newer, v5.channel.k8s.io); the SPDY/3.1 upgrade is not supported")
        raise errors.BadRequestError(message="Upgrade request required")


async def _deny(ws: WebSocket, err: errors.ApiError) -> None:
    """Refuse the handshake with the Status as its HTTP response (as Kubernetes does)."""
    try:
        refusal = status_response(err)
        refusal.headers["Connection"] = "close"  # the server drops the connection after a refused upgrade
        await ws.send_denial_response(refusal)
    except RuntimeError:  # the server cannot send a response to a handshake: a plain refusal (403)
        await ws.close(code=1008, reason=err.message[:120])


async def relay(client: WebSocket, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Copies messages both ways until one side closes; closes the other with its code."""
    async def client_to_kubelet() -> int:
        while True:
            msg = await client.receive()
            if msg["type"] == "websocket.disconnect":
                return int(msg.get("code") or 1000)
            if msg.get("bytes") is not None:
                await upstream.send_bytes(msg["bytes"])
            elif msg.get("text") is not None:
                await upstream.send_str(msg["text"])

    async def kubelet_to_client() -> int:
        while True:
            msg = await upstream.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                await client.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await client.send_text(msg.data)
            elif msg.type == aiohttp.WSMsgType.ERROR:
                return 1011
            elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return upstream.close_code if upstream.close_code is not None else 1000

    up = asyncio.create_task(client_to_kubelet(), name="stream-client-to-kubelet")
    down = asyncio.create_task(kubelet_to_client(), name="stream-kubelet-to-client")
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in (up, down):
            t.cancel()
        results = await asyncio.gather(up, down, return_exceptions=True)
    if down in done:
        code = results[1] if isinstance(results[1], int) else 1011
        try:
            await client.close(code=close_code(code))
        except RuntimeError:
            pass  # the client is gone already
    else:
        code = results[0] if isinstance(results[0], int) else 1011
        await upstream.close(code=close_code(code))


def install(app: FastAPI, registry: "Registry") -> StreamProxy:
    """The WebSocket and plain routes of the three subresources (before the generic resource routes)."""
    proxy = StreamProxy(registry)
    for sub in SUBRESOURCES:
        path = f"/api/v1/namespaces/{{namespace}}/pods/{{name}}/{sub}"
        websocket_route, plain_route = _routes(proxy, sub)
        app.add_api_websocket_route(path, websocket_route)
        # every method: PUT, PATCH, DELETE must not reach the generic routes (which would write the pod)
        app.add_api_route(path, plain_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
                          include_in_schema=False)
    return proxy


def _routes(proxy: StreamProxy, sub: str) -> tuple[Any, Any]:
    async def websocket_route(websocket: WebSocket, namespace: str, name: str) -> None:
        try:
            await proxy.serve_websocket(websocket, namespace, name, sub)
        except Exception:  # noqa: BLE001 - a refusal, never a traceback to the client
            log.exception("pods/%s of %s/%s failed", sub, namespace, name)
            if websocket.client_state == WebSocketState.CONNECTING:
                await _deny(websocket, errors.InternalError(message=f"pods/{sub} failed"))

    async def plain_route(request: Request, namespace: str, name: str) -> Response:
        if request.method not in ("GET", "POST"):
            raise errors.MethodNotAllowedError(
                message="the server does not allow this method on the requested resource")
        return await proxy.serve_plain(request, namespace, name, sub)

    return websocket_route, plain_route


__all__ = ["StreamProxy", "StreamTarget", "check_pod", "close_code", "install", "kubelet_path", "kubelet_refusal",
           "relay"]
