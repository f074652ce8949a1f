"""The real ``kubectl proxy`` and ``kubectl get --raw`` through the API server's proxies.

``kubectl proxy --port=0`` serves the API on a free local port (it prints which); through it, the
API itself and a Service's HTTP (``/api/v1/namespaces/NS/services/NAME:PORT/proxy/``, a Service
without selector whose EndpointSlice points at a real HTTP server on 127.0.0.1) and a pod's
(``pods/NAME:PORT/proxy``). ``kubectl get --raw /api/v1/nodes/N/proxy/stats/summary`` reaches a
node's (fake) kubelet, which answers only to the API server's credential; ``kubectl exec`` goes
through the API server's WebSocket relay to a kubelet stand-in that answers as the kubelet does.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from typing import Iterator

import httpx
import pytest
from aiohttp import web

from machinery import kubeletauth
from machinery.remotecommand import ERROR, REMOTECOMMAND_PROTOCOLS, STDOUT, encode, exit_status, status_payload
from tests.apiserver.test_httpproxy import BackgroundApp, backend_app, make_pod, make_service
from tests.apiserver.test_streamproxy import FakeKubelet, register_node
from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def backend() -> Iterator[BackgroundApp]:
    server = BackgroundApp(backend_app())
    yield server
    server.stop()


@pytest.fixture
def proxy(kubectl: Kubectl) -> Iterator[str]:
    """``kubectl proxy --port=0``: the URL it serves on (the process is stopped by its pid after)."""
    p = kubectl.popen("proxy", "--port=0")
    try:
        assert p.stdout is not None
        line = p.stdout.readline()  # "Starting to serve on 127.0.0.1:PORT"
        found = re.search(r"Starting to serve on (\S+)", line)
        assert found, f"kubectl proxy printed {line!r} (exit code {p.poll()})"
        yield f"http://{found.group(1)}"
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def test_kubectl_proxy_serves_the_api_and_a_service(proxy: str, http: httpx.Client, namespace: str,
                                                    backend: BackgroundApp) -> None:
    name = f"web-{uuid.uuid4().hex[:6]}"
    make_service(http, namespace, name, port=backend.port)
    make_pod(http, namespace, "web", ip="127.0.0.1", port=None)
    with httpx.Client(base_url=proxy, timeout=30) as c:
        assert c.get("/api").json()["versions"] == ["v1"]
        assert c.get(f"/api/v1/namespaces/{namespace}/services/{name}").json()["metadata"]["name"] == name
        for port in ("http", "80"):
            r = c.get(f"/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy/hello/?x=1")
            assert r.status_code == 200, r.text
            assert (r.json()["method"], r.json()["path"], r.json()["query"]) == ("GET", "/hello/", "x=1")
        r = c.post(f"/api/v1/namespaces/{namespace}/services/{name}:http/proxy/form", content=b"a=b")
        assert (r.json()["method"], r.json()["body"]) == ("POST", "a=b")
        r = c.get(f"/api/v1/namespaces/{namespace}/pods/web:{backend.port}/proxy/pod-path")
        assert r.status_code == 200 and r.json()["path"] == "/pod-path", r.text
        r = c.get(f"/api/v1/namespaces/{namespace}/services/{name}:admin/proxy/")
        assert r.status_code == 503
        assert r.json()["message"] == f'no endpoints available for service "{name}"'


def test_kubectl_get_raw_node_proxy(kubectl: Kubectl, http: httpx.Client) -> None:
    secret = http.get(f"/api/v1/namespaces/kube-system/secrets/{kubeletauth.SECRET_NAME}").json()
    fake = FakeKubelet(kubeletauth.token_of(secret) or "")
    server = BackgroundApp(fake.app())
    node = f"raw-{uuid.uuid4().hex[:6]}"
    try:
        register_node(http, node, port=server.port)
        out = kubectl.ok("get", "--raw", f"/api/v1/nodes/{node}/proxy/stats/summary")
        assert json.loads(out)["node"]["nodeName"] == "fake"
        p = kubectl("get", "--raw", "/api/v1/nodes/no-such-node/proxy/stats/summary")
        assert p.returncode == 1 and 'nodes "no-such-node" not found' in p.stderr, p.stderr
    finally:
        http.delete(f"/api/v1/nodes/{node}")
        server.stop()


class ExitingKubelet(FakeKubelet):
    """Answers an exec as the kubelet does: the command's output on stdout, then its exit status."""

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request) or request.match_info.get("container") == "stopped":
            return await super().stream(request)
        ws = web.WebSocketResponse(protocols=REMOTECOMMAND_PROTOCOLS)
        await ws.prepare(request)
        protocol = ws.ws_protocol
        command = request.query.getall("command", [])
        await ws.send_bytes(bytes(encode(protocol, STDOUT, (" ".join(command) + "\n").encode())))
        payload = status_payload(protocol, exit_status(3, command))
        if payload is not None:
            await ws.send_bytes(bytes(encode(protocol, ERROR, payload)))
        await ws.close()
        return ws


def test_kubectl_exec_through_the_relay(kubectl: Kubectl, http: httpx.Client, namespace: str) -> None:
    """kubectl 1.32's WebSocket exec (v5.channel.k8s.io) through the API server to a kubelet stand-in:
    the output, the exit code from the status channel, and the refusals as kubectl prints them."""
    secret = http.get(f"/api/v1/namespaces/kube-system/secrets/{kubeletauth.SECRET_NAME}").json()
    server = BackgroundApp(ExitingKubelet(kubeletauth.token_of(secret) or "").app())
    node = f"exec-{uuid.uuid4().hex[:6]}"
    try:
        register_node(http, node, port=server.port)
        pod = http.post(f"/api/v1/namespaces/{namespace}/pods", json={
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"nodeName": node, "containers": [{"name": "main", "image": "busybox"},
                                                      {"name": "stopped", "image": "busybox"}]}}).json()
        pod["status"] = {"phase": "Running"}
        assert http.put(f"/api/v1/namespaces/{namespace}/pods/web/status", json=pod).status_code == 200
        p = kubectl("exec", "-n", namespace, "web", "-c", "main", "--", "echo", "hi")
        assert (p.returncode, p.stdout) == (3, "echo hi\n"), p.stderr
        p = kubectl("exec", "-n", namespace, "nope", "--", "ls")
        assert p.returncode == 1 and 'Error from server (NotFound): pods "nope" not found' in p.stderr, p.stderr
        p = kubectl("exec", "-n", namespace, "web", "-c", "stopped", "--", "ls")
        assert p.returncode == 1 and "container stopped is not running" in p.stderr, p.stderr
    finally:
        http.delete(f"/api/v1/nodes/{node}")
        server.stop()
