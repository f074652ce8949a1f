"""pods/proxy, services/proxy (apiserver/httpproxy.py): the pure decisions as tables; over the
session's real apiserver and etcd, requests through both proxies to a real HTTP server on
127.0.0.1 (a pod whose status.podIP is 127.0.0.1; a Service without selector whose
EndpointSlice points there): methods, query, body, headers, redirects, errors."""

from __future__ import annotations

import asyncio
import gzip
import threading
import uuid
from typing import Any, Coroutine, Iterator, TypeVar

import httpx
import pytest
from aiohttp import web

from apiserver.httpproxy import (Backend, check_address, endpoint_candidates, request_headers, rewrite_location,
                                 service_port_name, split_proxy_path, split_scheme_name_port)
from machinery import errors

T = TypeVar("T")


class BackgroundApp:
    """An aiohttp app served on 127.0.0.1 (a free port) from a thread and event loop of its own."""

    def __init__(self, app: web.Application) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = web.AppRunner(app)
        self.port: int = self.run(self._start())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self) -> int:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        return int(server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        self.run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


# ------------------------------------------------------------------------------ pure decisions
@pytest.mark.parametrize(("raw", "parts"), [
    ("web", ("", "web", "")), ("web:8080", ("", "web", "8080")), ("web:http", ("", "web", "http")),
    ("https:web:443", ("https", "web", "443")), ("http:web:", ("http", "web", "")),
])
def test_split_scheme_name_port(raw: str, parts: tuple[str, str, str]) -> None:
    assert split_scheme_name_port(raw, "pod") == parts


@pytest.mark.parametrize("raw", ["", ":80", "ftp:web:21", "a:b:c:d"])
def test_split_scheme_name_port_refuses(raw: str) -> None:
    with pytest.raises(errors.BadRequestError, match=f'invalid service request "{raw}"'):
        split_scheme_name_port(raw, "service")


@pytest.mark.parametrize(("ip", "ok"), [("10.1.2.3", True), ("127.0.0.1", True), ("fd00::1", True),
                                        ("169.254.169.254", False), ("0.0.0.0", False), ("224.0.0.1", False),
                                        ("fe80::1", False), ("255.255.255.255", False), ("not-an-ip", False)])
def test_check_address(ip: str, ok: bool) -> None:
    if ok:
        assert check_address(ip)
    else:
        with pytest.raises(errors.BadRequestError, match="address not allowed"):
            check_address(ip)


B = Backend("http", "10.0.0.5", 8080)
PREFIX = "/api/v1/namespaces/ns/services/web:80/proxy"


@pytest.mark.parametrize(("location", "expected"), [
    ("/login", f"http://api:6443{PREFIX}/login"),
    ("/dir/", f"http://api:6443{PREFIX}/dir/"),
    ("/", f"http://api:6443{PREFIX}/"),
    ("http://10.0.0.5:8080/a?b=1", f"http://api:6443{PREFIX}/a?b=1"),
    ("http://api:6443/a", f"http://api:6443{PREFIX}/a"),
    (f"{PREFIX}/already", f"http://api:6443{PREFIX}/already"),
    ("http://example.com/a", "http://example.com/a"),  # another host: untouched
    ("relative/path", "relative/path"),  # relative: the client resolves it under the prefix already
])
def test_rewrite_location(location: str, expected: str) -> None:
    assert rewrite_location(location, backend=B, request_scheme="http", request_host="api:6443",
                            prefix=PREFIX) == expected


SVC = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080},
                                                       {"name": "admin", "port": 9000}]}}


@pytest.mark.parametrize(("port", "name"), [("80", "http"), ("9000", "admin"), ("http", "http"), ("", "")])
def test_service_port_name(port: str, name: str) -> None:
    assert service_port_name(SVC, port) == name


def test_service_port_number_unknown() -> None:
    with pytest.raises(errors.ServiceUnavailableError, match='no service port 81 found for service "web"'):
        service_port_name(SVC, "81")


def test_endpoint_candidates_ready_only_and_by_port_name() -> None:
    slices = [{"ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9001}],
               "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}},
                             {"addresses": ["10.0.0.2"], "conditions": {"ready": False}},
                             {"addresses": ["10.0.0.3"]}]}]
    assert endpoint_candidates("http", slices, None) == [("10.0.0.1", 8080), ("10.0.0.3", 8080)]
    assert endpoint_candidates("admin", slices, None) == [("10.0.0.1", 9001), ("10.0.0.3", 9001)]
    assert endpoint_candidates("other", slices, None) == []
    endpoints = {"subsets": [{"addresses": [{"ip": "10.0.0.9"}], "notReadyAddresses": [{"ip": "10.0.0.8"}],
                              "ports": [{"port": 7000}]}]}
    assert endpoint_candidates("", [], endpoints) == [("10.0.0.9", 7000)]
    assert endpoint_candidates("", slices, endpoints) == []  # slices exist: Endpoints are not read


def test_request_headers_drop_hop_by_hop_and_credentials() -> None:
    got = request_headers([("Connection", "keep-alive, X-Private"), ("X-Private", "1"), ("Keep-Alive", "5"),
                           ("Authorization", "Bearer t"), ("Host", "api"), ("Accept", "text/html"),
                           ("X-Forwarded-For", "1.2.3.4"), ("Upgrade", "h2c")], "127.0.0.1")
    assert got == [("Accept", "text/html"), ("X-Forwarded-For", "1.2.3.4, 127.0.0.1")]


@pytest.mark.parametrize(("raw", "prefix", "path"), [
    ("/api/v1/namespaces/ns/pods/web/proxy", "/api/v1/namespaces/ns/pods/web/proxy", ""),
    ("/api/v1/namespaces/ns/pods/web/proxy/", "/api/v1/namespaces/ns/pods/web/proxy", "/"),
    ("/api/v1/namespaces/ns/pods/web:80/proxy/a/b%20c/", "/api/v1/namespaces/ns/pods/web:80/proxy", "/a/b%20c/"),
])
def test_split_proxy_path(raw: str, prefix: str, path: str) -> None:
    assert split_proxy_path(raw, 7) == (prefix, path)


# ------------------------------------------------------------------------------ over the real apiserver
async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"method": request.method, "path": request.raw_path.split("?")[0],
                              "query": request.query_string, "body": (await request.read()).decode(),
                              "headers": {k.lower(): v for k, v in request.headers.items()}})


def backend_app() -> web.Application:
    app = web.Application()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/landing/")

    async def gzipped(request: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b"squeezed"), headers={"Content-Encoding": "gzip"},
                            content_type="text/plain")

    async def cookies(request: web.Request) -> web.Response:
        resp = web.Response(text="two cookies", status=201)
        resp.headers.add("Set-Cookie", "a=1")
        resp.headers.add("Set-Cookie", "b=2")
        return resp

    app.router.add_get("/redirect", redirect)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/cookies", cookies)
    app.router.add_route("*", "/{tail:.*}", _echo)
    return app


@pytest.fixture(scope="module")
def backend() -> Iterator[BackgroundApp]:
    server = BackgroundApp(backend_app())
    yield server
    server.stop()


def _create(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = http.post(path, json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def make_pod(http: httpx.Client, ns: str, name: str, *, ip: str | None, port: int | None) -> None:
    container: dict[str, Any] = {"name": "web", "image": "busybox"}
    if port:
        container["ports"] = [{"containerPort": port}]
    pod = _create(http, f"/api/v1/namespaces/{ns}/pods", {"apiVersion": "v1", "kind": "Pod",
                                                           "metadata": {"name": name}, "spec": {"containers": [container]}})
    if ip:
        pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        r = http.put(f"/api/v1/namespaces/{ns}/pods/{name}/status", json=pod)
        assert r.status_code == 200, r.text


def make_service(http: httpx.Client, ns: str, name: str, *, port: int) -> None:
    """A Service without selector (ports http:80 -> target, admin:9000) and an EndpointSlice that
    sends http to 127.0.0.1:``port``."""
    _create(http, f"/api/v1/namespaces/{ns}/services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": port}, {"name": "admin", "port": 9000}]}})
    _create(http, f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})


def test_pod_proxy_passes_method_path_query_body(http: httpx.Client, namespace: str, backend: BackgroundApp) -> None:
    make_pod(http, namespace, "web", ip="127.0.0.1", port=backend.port)
    base = f"/api/v1/namespaces/{namespace}/pods/web/proxy"
    r = http.get(f"{base}/some/path/?a=1&b=two", headers={"X-Test": "yes", "Authorization": "Bearer secret"})
    assert r.status_code == 200, r.text
    got = r.json()
    assert (got["method"], got["path"], got["query"]) == ("GET", "/some/path/", "a=1&b=two")
    assert got["headers"]["x-test"] == "yes" and "authorization" not in got["headers"]
    assert got["headers"]["x-forwarded-for"] == "127.0.0.1"
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = http.request(method, f"/api/v1/namespaces/{namespace}/pods/web:{backend.port}/proxy/x", content=b"payload")
        assert r.status_code == 200, r.text
        assert (r.json()["method"], r.json()["path"], r.json()["body"]) == (method, "/x", "payload")
    assert http.head(f"{base}/x").status_code == 200
    r = http.get(base + "?q=1")  # the root without its slash: Kubernetes' 301
    assert (r.status_code, r.headers["location"]) == (301, f"{base}/?q=1")
    assert http.get(base + "/").json()["path"] == "/"


def test_pod_proxy_keeps_bytes_headers_and_rewrites_redirects(http: httpx.Client, namespace: str,
                                                              backend: BackgroundApp) -> None:
    make_pod(http, namespace, "web", ip="127.0.0.1", port=backend.port)
    base = f"/api/v1/namespaces/{namespace}/pods/web/proxy"
    with httpx.Client(base_url=str(http.base_url)) as raw:
        r = raw.get(f"{base}/gzip", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip" and r.text == "squeezed"  # passed on compressed
    r = http.get(f"{base}/cookies")
    assert r.status_code == 201 and r.headers.get_list("set-cookie") == ["a=1", "b=2"]
    r = http.get(f"{base}/redirect")
    assert r.status_code == 302
    assert r.headers["location"] == f"{http.base_url}".rstrip("/") + f"{base}/landing/"


def test_pod_proxy_errors(http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, "noip", ip=None, port=80)
    make_pod(http, namespace, "meta", ip="169.254.169.254", port=80)
    make_pod(http, namespace, "down", ip="127.0.0.1", port=1)
    cases = [("nope", 404, 'pods "nope" not found'), ("a:b:c:d", 400, 'invalid pod request "a:b:c:d"'),
             ("noip", 503, 'pod "noip" has no IP address'), ("meta", 400, "address not allowed"),
             ("down", 503, "error trying to reach service"), ("down:99999", 400, "out of range")]
    for name, code, message in cases:
        r = http.get(f"/api/v1/namespaces/{namespace}/pods/{name}/proxy/")
        assert r.status_code == code, (name, r.text)
        assert r.json()["kind"] == "Status" and message in r.json()["message"], (name, r.text)


def test_service_proxy(http: httpx.Client, namespace: str, backend: BackgroundApp) -> None:
    # (Endpoints refuse loopback addresses, as Kubernetes' do: the Endpoints fallback is tested as a table.)
    name = f"svc-{uuid.uuid4().hex[:6]}"
    make_service(http, namespace, name, port=backend.port)
    for ref in (f"{name}:http", f"{name}:80", f"http:{name}:80"):
        r = http.post(f"/api/v1/namespaces/{namespace}/services/{ref}/proxy/api/items?limit=3", content=b"{}")
        assert r.status_code == 200, r.text
        assert (r.json()["method"], r.json()["path"], r.json()["query"]) == ("POST", "/api/items", "limit=3")
    for ref, code, message in ((f"{name}:admin", 503, f'no endpoints available for service "{name}"'),
                               (f"{name}:81", 503, f'no service port 81 found for service "{name}"'),
                               ("missing:80", 404, 'services "missing" not found')):
        r = http.get(f"/api/v1/namespaces/{namespace}/services/{ref}/proxy/")
        assert (r.status_code, r.json()["message"]) == (code, message)


def test_discovery_lists_connect_subresources(http: httpx.Client) -> None:
    resources = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    for name, kind in (("pods/exec", "PodExecOptions"), ("pods/attach", "PodAttachOptions"),
                       ("pods/portforward", "PodPortForwardOptions")):
        assert (resources[name]["kind"], resources[name]["verbs"]) == (kind, ["create", "get"])
    for name, kind in (("pods/proxy", "PodProxyOptions"), ("services/proxy", "ServiceProxyOptions"),
                       ("nodes/proxy", "NodeProxyOptions")):
        assert (resources[name]["kind"], resources[name]["verbs"]) == (kind, ["create", "delete", "get", "patch",
                                                                             "update"])
