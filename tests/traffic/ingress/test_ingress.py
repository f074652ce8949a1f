"""``minik8s ingress`` as a process against a real etcd + apiserver, with real HTTP backends.

The backends are small aiohttp servers of this test on 127.0.0.1 (in a thread of their own) that
answer with their own name and echo method, path, headers and body, and echo WebSocket messages.
They sit behind selectorless Services with hand-written EndpointSlices that point at 127.0.0.1
(this apiserver's EndpointSlice validation accepts any IPv4 address, loopback included; the real
Kubernetes rejects loopback endpoints, but every test here must stay on loopback).

One cluster and one ingress process per module; each test works in its own namespace with its own
host names, and removes the Ingresses that would route other tests' requests (default backends).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import httpx
import pytest
from aiohttp import web

from machinery.client import ApiClient
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.waiting import wait_for
from traffic.ingress.controller import ensure_class

ING = "/apis/networking.k8s.io/v1"


class Backends:
    """aiohttp echo servers on 127.0.0.1, served by one event loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runners: dict[str, web.ServerRunner] = {}
        self.ports: dict[str, int] = {}

    def start(self, name: str) -> int:
        self.ports[name] = asyncio.run_coroutine_threadsafe(self._start(name), self.loop).result(10)
        return self.ports[name]

    def stop_one(self, name: str) -> None:
        asyncio.run_coroutine_threadsafe(self.runners.pop(name).cleanup(), self.loop).result(10)

    async def _start(self, name: str) -> int:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                ws = web.WebSocketResponse(protocols=("echo",))
                await ws.prepare(request)
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await ws.send_str(f"{name}:{msg.data}")
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await ws.send_bytes(msg.data[::-1])
                return ws
            body = await request.read()
            return web.json_response({
                "name": name, "method": request.method, "path": request.raw_path,
                "headers": {k: ", ".join(request.headers.getall(k)) for k in set(request.headers.keys())},
                "body_len": len(body), "body_sha": hashlib.sha256(body).hexdigest()})

        runner = web.ServerRunner(web.Server(handle))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners[name] = runner
        return int(runner.addresses[0][1])

    def stop(self) -> None:
        for name in list(self.runners):
            self.stop_one(name)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class IngressCluster:
    def __init__(self) -> None:
        self.etcd = Etcd.start()
        self.api = ApiServerProcess.start(self.etcd.url)
        self.backends = Backends()
        self.port, self.https_port, self.health_port = free_port(), free_port(), free_port()
        self.ingress = ComponentProcess.start(
            "ingress", "--server", self.api.url, "--bind-address", "127.0.0.1", "--port", str(self.port),
            "--https-port", str(self.https_port),
            "--health-port", str(self.health_port), "--publish-address", "127.0.0.1", log_level="debug")
        self.http = httpx.Client(base_url=self.api.url, timeout=30, trust_env=False)
        self.proxy = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10, trust_env=False)
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{self.health_port}/healthz", trust_env=False).status_code == 200,
                 30, "the ingress controller's /healthz", self.diagnostics)

    def diagnostics(self) -> str:
        return f"--- ingress (exit {self.ingress.proc.poll()}):\n{self.ingress.logs()[-6000:]}"

    def stop(self) -> None:
        self.http.close()
        self.proxy.close()
        self.ingress.stop()
        self.backends.stop()
        self.api.stop()
        self.etcd.stop()

    # ------------------------------------------------------------------ objects
    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = self.http.post(path, json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def service(self, ns: str, name: str, *backends: str, ready: bool = True, port_name: str = "http") -> None:
        """A selectorless Service (port 80) and one EndpointSlice per backend (their ports differ)."""
        self.post(f"/api/v1/namespaces/{ns}/services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"name": port_name, "port": 80, "targetPort": 8080}]}})
        for b in backends:
            port = self.backends.ports.get(b) or self.backends.start(b)
            self.endpoint_slice(ns, name, f"{name}-{b}", [("127.0.0.1", port, ready)], port_name=port_name)

    def endpoint_slice(self, ns: str, service: str, name: str, endpoints: list[tuple[str, int, bool]],
                       port_name: str = "http") -> None:
        ports = {p for _, p, _ in endpoints}
        assert len(ports) <= 1
        self.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", {
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": ports.pop() if ports else 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ok}} for ip, _, ok in endpoints]})

    def ingress_object(self, ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.post(f"{ING}/namespaces/{ns}/ingresses",
                         {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
                          "spec": spec})

    def get(self, host: str, path: str = "/", **kw: Any) -> httpx.Response:
        return self.proxy.get(path, headers={"Host": host, **kw.pop("headers", {})}, **kw)

    def wait_name(self, host: str, path: str, name: str | None, *, status: int = 200, timeout: float = 10) -> float:
        """Seconds until ``host`` + ``path`` answers ``status`` (from backend ``name``)."""
        start = time.monotonic()

        def check() -> bool:
            r = self.get(host, path)
            return r.status_code == status and (name is None or r.json()["name"] == name)
        wait_for(check, timeout, f"{host}{path} -> {name} ({status})", self.diagnostics, interval=0.05)
        return time.monotonic() - start


def rule(host: str | None, *paths: tuple[str, str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"http": {"paths": [
        {"path": p, "pathType": t, "backend": {"service": {"name": s, "port": {"number": 80}}}} for p, t, s in paths]}}
    if host:
        out["host"] = host
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator[IngressCluster]:
    c = IngressCluster()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def ns(cluster: IngressCluster) -> Iterator[str]:
    name = f"i-{uuid.uuid4().hex[:8]}"
    cluster.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield name


# ---------------------------------------------------------------------------------- the class
def test_the_ingress_class_is_created_default_and_left_alone(cluster: IngressCluster) -> None:
    found = cluster.http.get(f"{ING}/ingressclasses/minik8s").json()
    assert found["spec"]["controller"] == "minik8s.io/ingress"
    assert found["metadata"]["annotations"]["ingressclass.kubernetes.io/is-default-class"] == "true"
    r = cluster.http.patch(f"{ING}/ingressclasses/minik8s", json={"metadata": {"labels": {"mine": "yes"}}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text

    async def again() -> bool:
        async with ApiClient(cluster.api.url) as client:
            return await ensure_class(client, name="minik8s")
    assert asyncio.run(again()) is False
    assert cluster.http.get(f"{ING}/ingressclasses/minik8s").json()["metadata"]["labels"] == {"mine": "yes"}


# ---------------------------------------------------------------------------------- routing
def test_two_hosts_two_paths_changes_without_restart_and_status(cluster: IngressCluster, ns: str) -> None:
    one, two = f"one.{ns}.test", f"two.{ns}.test"
    cluster.service(ns, "beta", "beta")
    cluster.service(ns, "gamma", "gamma")
    cluster.ingress_object(ns, "web", {"ingressClassName": "minik8s", "rules": [
        rule(one, ("/api", "Prefix", "beta"), ("/", "Prefix", "gamma")),
        rule(two, ("/api", "Exact", "gamma"), ("/", "Prefix", "beta"))]})
    cluster.wait_name(one, "/api/x", "beta")
    for host, path, name in [(one, "/api", "beta"), (one, "/api/v1?q=1", "beta"), (one, "/apix", "gamma"),
                             (one, "/", "gamma"), (two, "/api", "gamma"), (two, "/api/v1", "beta"),
                             (two, "/", "beta"), (two.upper() + ":80", "/api", "gamma")]:
        r = cluster.get(host, path)
        assert r.status_code == 200 and r.json()["name"] == name, (host, path, r.text)
    assert cluster.get(one, "/api/v1?q=1&r=%2F").json()["path"] == "/api/v1?q=1&r=%2F"
    r = cluster.get(f"nobody.{ns}.test", "/api")
    assert r.status_code == 404, r.text

    # status.loadBalancer, written through /status
    def status() -> Any:
        ing = cluster.http.get(f"{ING}/namespaces/{ns}/ingresses/web").json()
        return ing["status"]["loadBalancer"].get("ingress")
    assert wait_for(status, 10, "status.loadBalancer", cluster.diagnostics) == [{"ip": "127.0.0.1"}]

    # change the routing: one.test/api now goes to gamma, within about a second
    r = cluster.http.patch(f"{ING}/namespaces/{ns}/ingresses/web", json={"spec": {"rules": [
        rule(one, ("/api", "Prefix", "gamma"), ("/", "Prefix", "beta"))]}},
        headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    took = cluster.wait_name(one, "/api", "gamma", timeout=5)
    assert took < 1.5, took
    assert cluster.get(two, "/").status_code == 404
    assert cluster.ingress.proc.poll() is None


def test_an_ingress_without_class_is_served_by_the_default_class(cluster: IngressCluster, ns: str) -> None:
    host = f"plain.{ns}.test"
    cluster.service(ns, "beta", "beta")
    created = cluster.ingress_object(ns, "plain", {"rules": [rule(host, ("/", "Prefix", "beta"))]})
    cluster.wait_name(host, "/", "beta")
    # The DefaultIngressClass admission filled in the class the controller marked default.
    assert created["spec"].get("ingressClassName") == "minik8s"
    other = f"other.{ns}.test"
    cluster.ingress_object(ns, "other", {"ingressClassName": "nginx", "rules": [rule(other, ("/", "Prefix", "beta"))]})
    cluster.post(f"{ING}/namespaces/{ns}/ingresses", {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "legacy", "annotations": {"kubernetes.io/ingress.class": "minik8s"}},
        "spec": {"rules": [rule(other, ("/legacy", "Prefix", "beta"))]}})
    cluster.wait_name(other, "/legacy", "beta")
    assert cluster.get(other, "/").status_code == 404  # the nginx class is not ours


def test_default_backend(cluster: IngressCluster, ns: str) -> None:
    cluster.service(ns, "gamma", "gamma")
    cluster.ingress_object(ns, "fallback", {"defaultBackend": {"service": {"name": "gamma", "port": {"number": 80}}}})
    try:
        cluster.wait_name(f"whatever.{ns}.test", "/any/path", "gamma")
    finally:
        cluster.http.delete(f"{ING}/namespaces/{ns}/ingresses/fallback")
    cluster.wait_name(f"whatever.{ns}.test", "/", None, status=404)


# ---------------------------------------------------------------------------------- endpoints
def test_round_robin_no_endpoints_and_refused_endpoints(cluster: IngressCluster, ns: str) -> None:
    rr, empty, dead = f"rr.{ns}.test", f"empty.{ns}.test", f"dead.{ns}.test"
    cluster.service(ns, "alpha", "alpha-1", "alpha-2")
    cluster.service(ns, "notready", "beta", ready=False)
    cluster.service(ns, "half", "beta")
    cluster.service(ns, "gone")
    closed = free_port()
    cluster.endpoint_slice(ns, "half", "half-dead", [("127.0.0.1", closed, True)])
    cluster.endpoint_slice(ns, "gone", "gone-dead", [("127.0.0.1", closed, True)])
    cluster.ingress_object(ns, "eps", {"rules": [
        rule(rr, ("/", "Prefix", "alpha")), rule(empty, ("/", "Prefix", "notready"), ("/none", "Prefix", "missing")),
        rule(dead, ("/half", "Prefix", "half"), ("/gone", "Prefix", "gone"))]})
    cluster.wait_name(rr, "/", None)
    names = [cluster.get(rr).json()["name"] for _ in range(6)]
    assert set(names) == {"alpha-1", "alpha-2"} and names.count("alpha-1") == 3, names
    for path in ("/", "/none"):
        r = cluster.get(empty, path)
        assert r.status_code == 503 and r.text.startswith("503"), r.text
    for _ in range(4):  # the refused endpoint is skipped for the one that answers
        r = cluster.get(dead, "/half")
        assert r.status_code == 200 and r.json()["name"] == "beta"
    r = cluster.get(dead, "/gone")
    assert r.status_code == 502, r.text
    # an endpoint turning ready is used without a restart
    cluster.endpoint_slice(ns, "notready", "notready-now", [("127.0.0.1", cluster.backends.ports["gamma"]
                                                             if "gamma" in cluster.backends.ports
                                                             else cluster.backends.start("gamma"), True)])
    cluster.wait_name(empty, "/", "gamma", timeout=5)


# ---------------------------------------------------------------------------------- what is forwarded
def test_headers_and_bodies_are_forwarded(cluster: IngressCluster, ns: str) -> None:
    host = f"echo.{ns}.test"
    cluster.service(ns, "beta", "beta")
    cluster.ingress_object(ns, "echo", {"rules": [rule(host, ("/", "Prefix", "beta"))]})
    cluster.wait_name(host, "/", "beta")
    r = cluster.get(host, "/h", headers={"X-Forwarded-For": "203.0.113.7", "X-Custom": "kept",
                                         "Connection": "keep-alive, X-Drop", "X-Drop": "hop"})
    seen = {k.lower(): v for k, v in r.json()["headers"].items()}
    assert seen["host"] == host
    assert seen["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert seen["x-forwarded-host"] == host and seen["x-forwarded-proto"] == "http"
    assert seen["x-real-ip"] == "127.0.0.1" and seen["x-custom"] == "kept"
    assert "x-drop" not in seen
    assert r.headers["content-type"].startswith("application/json")

    payload = bytes(range(256)) * 4096  # 1 MiB, sent chunked

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 65536):
            yield payload[i:i + 65536]
    r = cluster.proxy.post("/upload?x=1", content=chunks(), headers={"Host": host})
    echo = r.json()
    assert r.status_code == 200 and echo["method"] == "POST" and echo["path"] == "/upload?x=1"
    assert echo["body_len"] == len(payload) and echo["body_sha"] == hashlib.sha256(payload).hexdigest()
    assert echo["headers"].get("Transfer-Encoding") == "chunked"
    r = cluster.proxy.put("/sized", content=b"abc", headers={"Host": host})
    assert r.json()["method"] == "PUT" and r.json()["body_len"] == 3
    assert r.json()["headers"].get("Content-Length") == "3"
    r = cluster.proxy.head("/", headers={"Host": host})
    assert r.status_code == 200 and r.content == b""


def test_websocket_through_the_ingress(cluster: IngressCluster, ns: str) -> None:
    host = f"ws.{ns}.test"
    cluster.service(ns, "beta", "beta")
    cluster.ingress_object(ns, "ws", {"rules": [rule(host, ("/ws", "Prefix", "beta"))]})
    cluster.wait_name(host, "/ws", "beta")

    async def talk() -> tuple[str, str | None, bytes]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"http://127.0.0.1:{cluster.port}/ws/chat", headers={"Host": host},
                                    protocols=("echo",)) as ws:
                await ws.send_str("hello")
                text = await ws.receive_str(timeout=5)
                await ws.send_bytes(b"\x01\x02\x03")
                data = await ws.receive_bytes(timeout=5)
                return text, ws.protocol, data
    assert asyncio.run(talk()) == ("beta:hello", "echo", b"\x03\x02\x01")


# ---------------------------------------------------------------------------------- TLS
def test_tls_from_a_secret_chosen_by_sni(cluster: IngressCluster, ns: str, tmp_path: Path) -> None:
    """Needs the ``openssl`` command (Debian's ``openssl``, on every machine this runs on) for the certificate."""
    host = f"secure.{ns}.test"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(tmp_path / "tls.key"),
                    "-out", str(tmp_path / "tls.crt")], check=True, capture_output=True)
    cluster.post(f"/api/v1/namespaces/{ns}/secrets", {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert"}, "type": "kubernetes.io/tls",
        "data": {k: base64.b64encode((tmp_path / k).read_bytes()).decode() for k in ("tls.crt", "tls.key")}})
    cluster.service(ns, "beta", "beta")
    cluster.ingress_object(ns, "secure", {"tls": [{"hosts": [host], "secretName": "cert"}],
                                          "rules": [rule(host, ("/", "Prefix", "beta"))]})
    cluster.wait_name(host, "/", "beta")
    trust = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
    with httpx.Client(base_url=f"https://127.0.0.1:{cluster.https_port}", verify=trust, trust_env=False,
                      timeout=10) as client:
        def secure_get(name: str) -> httpx.Response:
            return client.get("/tls", headers={"Host": name}, extensions={"sni_hostname": name})
        r = wait_for(lambda: secure_get(host), 10, "the certificate served", cluster.diagnostics,
                     retry_on=(httpx.TransportError,))
        assert r.status_code == 200 and r.json()["name"] == "beta"
        seen = {k.lower(): v for k, v in r.json()["headers"].items()}
        assert seen["x-forwarded-proto"] == "https" and seen["x-forwarded-port"] == str(cluster.https_port)
    other = f"unknown.{ns}.test"
    with httpx.Client(verify=trust, trust_env=False, timeout=10) as fresh:  # a new connection, a new handshake
        with pytest.raises(httpx.ConnectError):  # no certificate for that name: the handshake fails
            fresh.get(f"https://127.0.0.1:{cluster.https_port}/", headers={"Host": other},
                      extensions={"sni_hostname": other})
