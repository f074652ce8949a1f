"""The HTTP reverse proxy of ``minik8s ingress`` (aiohttp server in, one pooled aiohttp client out).

Data flow per request: aiohttp's low-level server -> ``IngressProxy.handle`` -> ``RouteTable.match``
(Host header, decoded path) -> no route: 404; a backend without ready endpoints: 503 -> an
endpoint, round robin per backend -> the request is sent to ``http://IP:PORT`` + the raw path and
query through one shared ``ClientSession`` (kept-alive connections pooled per endpoint): same
method and headers (hop-by-hop ones dropped, ``Host`` kept as the client sent it,
``X-Forwarded-For`` appended to, ``X-Forwarded-Host/-Proto/-Port`` and ``X-Real-IP`` set), the
body streamed as it arrives (a chunked body goes out chunked) -> the answer streamed back with its
status and headers (bodies are never decompressed or re-encoded). An endpoint that refuses the
connection is skipped for the next one of the backend; when all fail: 502.

With ``https_port``, a second listener terminates TLS with the certificate SNI picks
(``traffic.ingress.tls``) and proxies the same way (``X-Forwarded-Proto: https``).

WebSocket upgrades (``Upgrade: websocket``) are relayed message by message: the upstream
handshake first (so its status and chosen subprotocol are the client's answer), then text, binary,
ping, pong and close frames both ways until either side closes.

The route table is swapped whole by the controller (``proxy.table = ...``); a request in flight
keeps the backend it was given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import AbstractSet, Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from machinery import wsrelay

from .routes import Backend, RouteTable
from .tls import Certificates

log = logging.getLogger(__name__)

# RFC 9110 7.6.1 plus the non-standard ones proxies drop too.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-connection"})
_WS_HANDSHAKE = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                           "sec-websocket-protocol", "sec-websocket-accept"})
_CONNECT_ERRORS = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_AUTO_ADDED = ("User-Agent", "Accept", "Accept-Encoding")  # what aiohttp's client adds to any request
_AUTO_HEADERS = (*_AUTO_ADDED, "Content-Type")  # ... and Content-Type to one with a body (or POST/PUT/PATCH)
_GET_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SMALL_BODY = 64 * 1024  # bodies up to this size with a Content-Length are read whole, then sent in one write


@dataclass
class ProxySettings:
    bind_address: str = "0.0.0.0"
    port: int = 80
    connect_timeout: float = 5.0  # per endpoint, before the next one is tried
    keepalive_timeout: float = 15.0  # idle pooled upstream connections are closed after this
    max_connections: int = 0  # upstream connections in all (0: no limit)
    https_port: int = 0  # 0: no HTTPS listener


def hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> AbstractSet[str]:
    """The hop-by-hop headers of a message: the fixed ones and those its ``Connection`` names."""
    if "Connection" not in headers:
        return HOP_BY_HOP  # the usual case: no set to build
    named = {t.strip().lower() for v in headers.getall("Connection") for t in v.split(",") if t.strip()}
    return HOP_BY_HOP | named


# Never copied from the client: hop-by-hop, ``Expect`` (answered here) and the ones set below.
_REQUEST_SKIP = HOP_BY_HOP | {"expect", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port", "x-real-ip",
                              "x-forwarded-for"}


def request_headers(headers: CIMultiDictProxy[str], *, remote: str, proto: str, port: int | str,
                    drop: Iterable[str] = ()) -> CIMultiDict[str]:
    """What goes upstream: the client's headers without hop-by-hop ones (``Host`` kept), plus the
    ``X-Forwarded-*`` set (``X-Forwarded-For`` appended to)."""
    skip: AbstractSet[str] = _REQUEST_SKIP
    if drop or "Connection" in headers:
        skip = skip | hop_by_hop(headers) | set(drop)
    # One pass into a list, one multidict built from it (no item replaced after).
    items = [(k, v) for k, v in headers.items() if k.lower() not in skip]
    if "X-Forwarded-For" in headers:
        previous = ", ".join(headers.getall("X-Forwarded-For"))
        items.append(("X-Forwarded-For", f"{previous}, {remote}" if previous and remote else (previous or remote)))
    else:
        items.append(("X-Forwarded-For", remote))
    host = headers.get("Host")
    if host is not None:
        items.append(("X-Forwarded-Host", host))
    elif "X-Forwarded-Host" in headers:  # no Host to say: the client's own ones pass
        items.extend(("X-Forwarded-Host", v) for v in headers.getall("X-Forwarded-Host"))
    items.append(("X-Forwarded-Proto", proto))
    items.append(("X-Forwarded-Port", str(port)))
    items.append(("X-Real-IP", remote))
    return CIMultiDict(items)


def _response_items(headers: CIMultiDictProxy[str]) -> list[tuple[str, str]]:
    skip = hop_by_hop(headers)
    return [(k, v) for k, v in headers.items() if k.lower() not in skip]


def response_headers(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict(_response_items(headers))


def is_websocket(request: web.BaseRequest) -> bool:
    headers = request.headers
    upgrade = headers.get("Upgrade")
    if upgrade is None or upgrade.lower() != "websocket":
        return False
    connection = {t.strip().lower() for v in headers.getall("Connection", []) for t in v.split(",")}
    return "upgrade" in connection


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


class IngressProxy:
    """The proxy server; ``table`` is read for every request and may be replaced at any time."""

    def __init__(self, settings: ProxySettings, *, table: RouteTable | None = None,
                 certificates: Certificates | None = None) -> None:
        self.settings = settings
        self.table = table or RouteTable()
        self.certificates = certificates or Certificates()
        self._next: dict[str, int] = {}
        self._origins: dict[tuple[str, int], str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._ws_session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self.bound_port = 0
        self.bound_https_port = 0

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.settings.max_connections, limit_per_host=0,
                                         keepalive_timeout=self.settings.keepalive_timeout, use_dns_cache=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout)
        # Requests name the auto headers to skip themselves (only those the client did not send:
        # usually none, and aiohttp's cheap path); WebSocket handshakes skip all of them. One pool.
        self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                              cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout)
        self._ws_session = aiohttp.ClientSession(connector=connector, connector_owner=False, auto_decompress=False,
                                                 cookie_jar=aiohttp.DummyCookieJar(), timeout=timeout,
                                                 skip_auto_headers=_AUTO_HEADERS)
        server = web.Server(self.handle, auto_decompress=False, access_log=None)
        self._runner = web.ServerRunner(server)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.bind_address, self.settings.port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses
        self.bound_port = int(addresses[0][1]) if addresses else self.settings.port
        log.info("ingress proxy listening on %s:%d", self.settings.bind_address, self.bound_port)
        if self.settings.https_port:
            tls_site = web.TCPSite(self._runner, self.settings.bind_address, self.settings.https_port,
                                   ssl_context=self.certificates.server_context(), reuse_address=True)
            try:
                await tls_site.start()
            except OSError as e:
                # HTTP still works; only the TLS listener does not.
                log.error("cannot serve HTTPS on %s:%d: %s", self.settings.bind_address, self.settings.https_port, e)
                return
            self.bound_https_port = int(self._runner.addresses[-1][1])
            log.info("ingress proxy serving HTTPS on %s:%d", self.settings.bind_address, self.bound_https_port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._ws_session is not None:
            await self._ws_session.close()
            self._ws_session = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ requests
    def _endpoints(self, backend: Backend) -> tuple[tuple[str, int], ...]:
        """The backend's endpoints, rotated one further for each request (round robin)."""
        eps = backend.endpoints
        key = backend.key
        start = self._next.get(key, 0)
        self._next[key] = start + 1
        if len(eps) == 1:
            return eps
        start %= len(eps)
        return eps[start:] + eps[:start]

    def _origin(self, ip: str, port: int) -> str:
        origin = self._origins.get((ip, port))
        if origin is None:
            if len(self._origins) > 4096:  # endpoints come and go; do not grow for ever
                self._origins.clear()
            origin = self._origins[(ip, port)] = f"http://{ip}:{port}"
        return origin

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        backend = self.table.match(request.host if "Host" in request.headers else "", request.path)
        if backend is None:
            return _text(404, "404 page not found: no Ingress rule matches this host and path")
        if not backend.endpoints:
            what = "no ready endpoints" if backend.found else "no such service port"
            return _text(503, f"503 service unavailable: {what} for {backend.key}")
        remote = request.remote or ""
        client_headers = request.headers
        if "Upgrade" in client_headers and is_websocket(request):
            return await self._websocket(request, backend, remote)
        expect = client_headers.get("Expect")
        if expect is not None and expect.lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert self._session is not None
        headers = request_headers(client_headers, remote=remote, proto=request.scheme, port=self._port(request))
        data: aiohttp.StreamReader | bytes | None = None
        if request.body_exists:
            length = request.content_length
            # Small and sized: read whole, so headers and body go upstream in one write; else streamed.
            data = await request.read() if length is not None and length <= SMALL_BODY else request.content
        raw_path = request.raw_path
        method = request.method
        # aiohttp adds these unless told not to; only those the client did not send need saying.
        skip = [h for h in _AUTO_ADDED if h not in client_headers]
        if "Content-Type" not in client_headers and (data is not None or method not in _GET_METHODS):
            skip.append("Content-Type")
        last: BaseException | None = None
        for ip, port in self._endpoints(backend):
            url = URL(self._origin(ip, port) + raw_path, encoded=True)
            try:
                upstream = await self._session.request(method, url, headers=headers, data=data,
                                                       allow_redirects=False, compress=None,
                                                       skip_auto_headers=skip or None)
            except _CONNECT_ERRORS as e:
                log.debug("endpoint %s:%d of %s refused: %s", ip, port, backend.key, e)
                last = e
                continue
            except aiohttp.ClientError as e:
                log.info("%s %s to %s:%d failed: %s", request.method, request.raw_path, ip, port, e)
                return _text(502, f"502 bad gateway: {backend.key}: {type(e).__name__}")
            async with upstream:
                return await self._relay(request, upstream)
        log.info("no endpoint of %s answers: %s", backend.key, last)
        return _text(502, f"502 bad gateway: no endpoint of {backend.key} accepts connections")

    def _port(self, request: web.BaseRequest) -> int:
        if request.secure:
            return self.bound_https_port or self.settings.https_port
        return self.bound_port or self.settings.port

    @staticmethod
    async def _relay(request: web.BaseRequest, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        length = upstream.content_length
        if (length is not None and length <= SMALL_BODY and request.method != "HEAD"
                and upstream.status not in (204, 304)):
            # Small and sized: one write of headers and body (a third fewer syscalls per request).
            body = await upstream.read()
            # The headers go in as a list: one multidict built, not two.
            return web.Response(status=upstream.status, reason=upstream.reason, body=body,
                                headers=_response_items(upstream.headers))
        out = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        out.headers.extend(response_headers(upstream.headers))
        await out.prepare(request)
        async for chunk in upstream.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out

    # ------------------------------------------------------------------ websockets
    async def _websocket(self, request: web.BaseRequest, backend: Backend, remote: str) -> web.StreamResponse:
        assert self._ws_session is not None
        protocols = [p.strip() for v in request.headers.getall("Sec-WebSocket-Protocol", []) for p in v.split(",")
                     if p.strip()]
        headers = request_headers(request.headers, remote=remote, proto=request.scheme, port=self._port(request),
                                  drop=_WS_HANDSHAKE)
        upstream: aiohttp.ClientWebSocketResponse | None = None
        for ip, port in self._endpoints(backend):
            url = URL(f"http://{ip}:{port}{request.raw_path}", encoded=True)
            try:
                upstream = await self._ws_session.ws_connect(url, headers=headers, protocols=protocols, autoping=False,
                                                          max_msg_size=0, compress=0)
                break
            except _CONNECT_ERRORS:
                continue
            except aiohttp.WSServerHandshakeError as e:
                return _text(e.status if e.status >= 400 else 502, f"websocket handshake refused: {e.message}")
            except aiohttp.ClientError as e:
                return _text(502, f"502 bad gateway: {backend.key}: {type(e).__name__}")
        if upstream is None:
            return _text(502, f"502 bad gateway: no endpoint of {backend.key} accepts connections")
        return await wsrelay.accept_and_join(request, upstream, autoping=False, compress=False)


__all__ = ["HOP_BY_HOP", "IngressProxy", "ProxySettings", "is_websocket", "request_headers", "response_headers"]
