"""``pods/proxy``, ``services/proxy`` and ``nodes/proxy``: the API server as an HTTP reverse proxy.

Data flow (Kubernetes' ProxyREST + UpgradeAwareHandler for plain HTTP, every method):

    /api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy[/PATH]?Q
      -> the pod (watch cache): status.podIP, PORT or its first declared container port
    /api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy[/PATH]?Q
      -> the Service port (PORT: its name or number) -> a ready endpoint of the Service's
         EndpointSlices (else its Endpoints) and that port's target port on it
    /api/v1/nodes/[SCHEME:]NAME[:PORT]/proxy[/PATH]?Q
      -> the node's kubelet (with the API server's credential, ``nodeproxy.kubelet_headers``), or
         another PORT on the node's address
      -> ``forward``: the request (method, query, body, end-to-end headers) to SCHEME://HOST:PORT/PATH
         with aiohttp; the answer streamed back unchanged (no decompression), hop-by-hop headers
         dropped, a redirect to the backend itself rewritten to stay under the proxy prefix.

``/proxy`` without a trailing slash answers GET and HEAD with a 301 to ``/proxy/``, as Kubernetes
does. An unreachable backend is a 503 ``error trying to reach service: ...``.
"""

from __future__ import annotations

import ipaddress
import logging
import posixpath
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import yarl
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from machinery import errors

from . import nodeproxy

if TYPE_CHECKING:
    from .registry import Registry

log = logging.getLogger(__name__)

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
CONNECT_TIMEOUT = 5.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
# RFC 7230 6.1 hop-by-hop headers, plus what the proxy sets itself (Host, Content-Length) and the
# client's credential for the API server, which Kubernetes never passes on.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host", "content-length", "authorization"})


@dataclass(frozen=True)
class Backend:
    scheme: str
    host: str
    port: int | None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


# ------------------------------------------------------------------------------ pure decisions
def split_scheme_name_port(raw: str, what: str) -> tuple[str, str, str]:
    """``name``, ``name:port`` or ``scheme:name:port`` (Kubernetes' SplitSchemeNamePort)."""
    parts = raw.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        raise errors.BadRequestError(message=f'invalid {what} request "{raw}"')
    if not name or scheme not in ("", "http", "https"):
        raise errors.BadRequestError(message=f'invalid {what} request "{raw}"')
    return scheme, name, port


def _port(raw: str, what: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise errors.BadRequestError(message=f'invalid port "{raw}" in the {what} proxy request') from None
    if not 0 < port < 65536:
        raise errors.BadRequestError(message=f"port {port} out of range 1-65535")
    return port


def check_address(ip: str) -> str:
    """Refuses the addresses the API server must never be sent to (unspecified, multicast,
    link-local such as a cloud's metadata service, broadcast), as Kubernetes' "address not allowed"."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise errors.BadRequestError(message="address not allowed") from None
    if addr.is_unspecified or addr.is_multicast or addr.is_link_local or str(addr) == "255.255.255.255":
        raise errors.BadRequestError(message="address not allowed")
    return str(addr)


def pod_backend(pod: Mapping[str, Any], scheme: str, port: str) -> Backend:
    name = str((pod.get("metadata") or {}).get("name", ""))
    if not port:
        for c in (pod.get("spec") or {}).get("containers") or []:
            declared = [p for p in c.get("ports") or [] if isinstance(p, dict) and p.get("containerPort")]
            if declared:
                port = str(declared[0]["containerPort"])
                break
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.ServiceUnavailableError(message=f'pod "{name}" has no IP address (status.podIP) yet')
    return Backend(scheme or "http", check_address(str(ip)), _port(port, "pod") if port else None)


def service_port_name(svc: Mapping[str, Any], port: str) -> str:
    """The Service port a request names (by name, or by number), as its name ("" when unnamed)."""
    name = str((svc.get("metadata") or {}).get("name", ""))
    if port.isdigit():
        for p in (svc.get("spec") or {}).get("ports") or []:
            if p.get("port") == int(port):
                return str(p.get("name") or "")
        raise errors.ServiceUnavailableError(message=f'no service port {port} found for service "{name}"')
    return port


def endpoint_candidates(port_name: str, slices: Iterable[Mapping[str, Any]],
                        endpoints: Mapping[str, Any] | None) -> list[tuple[str, int]]:
    """The ready (address, port) pairs serving the Service port ``port_name``: from the
    EndpointSlices when the Service has any, else from its Endpoints."""
    out: list[tuple[str, int]] = []
    slices = list(slices)
    for s in slices:
        numbers = [p.get("port") for p in s.get("ports") or [] if str(p.get("name") or "") == port_name]
        if not numbers or not isinstance(numbers[0], int):
            continue
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready") is False:
                continue  # nil means ready (EndpointConditions)
            out.extend((str(a), numbers[0]) for a in (ep.get("addresses") or [])[:1])
    if slices or not endpoints:
        return out
    for subset in endpoints.get("subsets") or []:
        numbers = [p.get("port") for p in subset.get("ports") or [] if str(p.get("name") or "") == port_name]
        if numbers and isinstance(numbers[0], int):
            out.extend((str(a.get("ip")), numbers[0]) for a in subset.get("addresses") or [] if a.get("ip"))
    return out


def rewrite_location(location: str, *, backend: Backend, request_scheme: str, request_host: str, prefix: str) -> str:
    """A redirect from the backend, kept under the proxy prefix when it points at the backend
    itself (Kubernetes' proxy Transport.rewriteURL); other hosts and relative paths pass."""
    try:
        url = urlsplit(location)
    except ValueError:
        return location
    different_host = bool(url.netloc) and url.netloc not in (backend.netloc, request_host)
    if different_host or not url.path.startswith("/"):
        return location
    path = url.path
    if not path.startswith(prefix):
        path = posixpath.join(prefix, path.lstrip("/")) if path != "/" else prefix + "/"
    return urlunsplit((request_scheme, request_host, path, url.query, url.fragment))


def request_headers(headers: Iterable[tuple[str, str]], client: str | None) -> list[tuple[str, str]]:
    """The end-to-end headers to send on, with ``X-Forwarded-For`` (as Go's ReverseProxy)."""
    pairs = list(headers)
    named = {token.strip().lower() for k, v in pairs if k.lower() == "connection" for token in v.split(",")}
    out = [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in named]
    if client:
        prior = [v for k, v in out if k.lower() == "x-forwarded-for"]
        out = [(k, v) for k, v in out if k.lower() != "x-forwarded-for"]
        out.append(("X-Forwarded-For", ", ".join([*prior, client])))
    return out


def split_proxy_path(raw_path: str, segments_before: int) -> tuple[str, str]:
    """(the proxy prefix ``.../proxy``, the backend path) of a raw request path."""
    parts = raw_path.split("/")
    prefix = "/".join(parts[:segments_before + 1])
    rest = "/".join(parts[segments_before + 1:])
    return prefix, ("/" + rest) if rest or raw_path.endswith("/proxy/") else ""


# ------------------------------------------------------------------------------ I/O
class HttpProxy:
    def __init__(self, registry: "Registry") -> None:
        self.registry = registry

    def _resource(self, group: str, plural: str) -> Any:
        res = self.registry.resources.lookup(group, "v1", plural)
        assert res is not None
        return res

    async def pod(self, namespace: str, raw: str) -> tuple[Backend, dict[str, str]]:
        scheme, name, port = split_scheme_name_port(raw, "pod")
        pod = (await self.registry.get(self._resource("", "pods"), namespace, name)).obj
        return pod_backend(pod, scheme, port), {}

    async def service(self, namespace: str, raw: str) -> tuple[Backend, dict[str, str]]:
        scheme, name, port = split_scheme_name_port(raw, "service")
        svc = (await self.registry.get(self._resource("", "services"), namespace, name)).obj
        port_name = service_port_name(svc, port)
        slices = await self.registry.list(self._resource("discovery.k8s.io", "endpointslices"), namespace,
                                          label_selector=f"{SERVICE_NAME_LABEL}={name}")
        endpoints = None
        if not slices.items:
            try:
                endpoints = (await self.registry.get(self._resource("", "endpoints"), namespace, name)).obj
            except errors.NotFoundError:
                pass
        candidates = endpoint_candidates(port_name, [e.obj for e in slices.items], endpoints)
        random.shuffle(candidates)
        for ip, number in candidates:
            try:
                return Backend(scheme or "http", check_address(ip), number), {}
            except errors.BadRequestError:
                log.info("service %s/%s: endpoint address %s not allowed, skipped", namespace, name, ip)
        raise errors.ServiceUnavailableError(message=f'no endpoints available for service "{name}"')

    async def node(self, raw: str) -> tuple[Backend, dict[str, str]]:
        scheme, name, port = split_scheme_name_port(raw, "node")
        node = (await self.registry.get(self._resource("", "nodes"), None, name)).obj
        address, kubelet_port = nodeproxy.kubelet_location(node)
        if not port or _port(port, "node") == kubelet_port:
            return Backend("http", address, kubelet_port), await nodeproxy.kubelet_headers(self.registry)
        return Backend(scheme or "http", address, _port(port, "node")), {}


async def forward(request: Request, backend: Backend, path: str, *, prefix: str,
                  extra_headers: Mapping[str, str]) -> Response:
    """Sends the request on to the backend and streams its answer back."""
    query = request.scope.get("query_string", b"").decode("latin-1")
    if not path:
        if request.method in ("GET", "HEAD"):
            return Response(status_code=301, headers={"Location": prefix + "/" + (f"?{query}" if query else "")})
        path = "/"
    url = yarl.URL(f"{backend.scheme}://{backend.netloc}{path}" + (f"?{query}" if query else ""), encoded=True)
    headers = request_headers(request.headers.items(), request.client.host if request.client else None)
    headers += list(extra_headers.items())
    body = await request.body()
    session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(
        total=None, connect=CONNECT_TIMEOUT, sock_connect=CONNECT_TIMEOUT))
    try:
        resp = await session.request(request.method, url, headers=headers, data=body or None,
                                     allow_redirects=False, ssl=False)
    except (aiohttp.ClientError, TimeoutError, OSError) as e:
        await session.close()
        raise errors.ServiceUnavailableError(message=f"error trying to reach service: {e or type(e).__name__}")
    except BaseException:
        await session.close()
        raise
    out_headers: list[tuple[bytes, bytes]] = []
    for k, v in resp.headers.items():
        if k.lower() in HOP_BY_HOP - {"content-length"}:
            continue
        if k.lower() == "location":
            v = rewrite_location(v, backend=backend, request_scheme=request.url.scheme,
                                 request_host=request.headers.get("host", ""), prefix=prefix)
        out_headers.append((k.lower().encode("latin-1"), v.encode("latin-1")))

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as e:
            log.info("proxied answer from %s ended early: %s", backend.netloc, e)
        finally:
            resp.close()
            await session.close()

    if request.method == "HEAD":
        resp.close()
        await session.close()
        answer: Response = Response(status_code=resp.status)
    else:
        answer = StreamingResponse(stream(), status_code=resp.status)
    answer.raw_headers = out_headers
    return answer


def install(app: FastAPI, registry: "Registry") -> HttpProxy:
    """The proxy routes (before the generic resource routes), with and without a path."""
    proxy = HttpProxy(registry)

    async def pods(request: Request, namespace: str, name: str) -> Response:
        backend, extra = await proxy.pod(namespace, name)
        return await _serve(request, backend, extra, segments=7)

    async def services(request: Request, namespace: str, name: str) -> Response:
        backend, extra = await proxy.service(namespace, name)
        return await _serve(request, backend, extra, segments=7)

    async def nodes(request: Request, name: str) -> Response:
        backend, extra = await proxy.node(name)
        return await _serve(request, backend, extra, segments=5)

    for base, handler in (("/api/v1/namespaces/{namespace}/pods/{name}/proxy", pods),
                          ("/api/v1/namespaces/{namespace}/services/{name}/proxy", services),
                          ("/api/v1/nodes/{name}/proxy", nodes)):
        for path in (base, base + "/{rest:path}"):
            app.add_api_route(path, handler, methods=METHODS, include_in_schema=False)
    return proxy


async def _serve(request: Request, backend: Backend, extra: Mapping[str, str], *, segments: int) -> Response:
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    prefix, path = split_proxy_path(raw_path.decode("latin-1").split("?", 1)[0], segments)
    return await forward(request, backend, path, prefix=prefix, extra_headers=extra)


__all__ = ["Backend", "HttpProxy", "check_address", "endpoint_candidates", "forward", "install", "pod_backend",
           "request_headers", "rewrite_location", "service_port_name", "split_proxy_path", "split_scheme_name_port"]
