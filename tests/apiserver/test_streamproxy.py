"""pods/exec|attach|portforward (apiserver/streamproxy.py) and the kubelet credential, over the
session's real apiserver and etcd with a fake kubelet: an aiohttp app on 127.0.0.1 registered as a
Node, which checks the bearer token of Secret kube-system/minik8s-kubelet-client and echoes.

Proven here: the relay of binary and text messages both ways, the subprotocol the kubelet picks,
close codes passed on in both directions, Kubernetes' refusals before the upgrade (as the
handshake's HTTP Status), 400 "Upgrade request required" to plain requests, the kubelet's own
refusal and absence; the credential Secret exists and pods/log, nodes/proxy and the relay send it."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any, Iterator

import aiohttp
import httpx
import pytest
from aiohttp import web

from apiserver.streamproxy import check_pod, close_code, kubelet_refusal
from machinery import errors, kubeletauth
from machinery.remotecommand import PORTFORWARD_PROTOCOLS, REMOTECOMMAND_PROTOCOLS, SPDY_PORTFORWARD, V4, V5
from tests.apiserver.test_httpproxy import BackgroundApp
from tests.cluster import ApiServerProcess


# ------------------------------------------------------------------------------ pure decisions
def _pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "spec": {"nodeName": "n", "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running", **status}}


@pytest.mark.parametrize(("sub", "pod", "query", "result"), [
    ("exec", _pod(), [("command", "ls"), ("container", "b")], "b"),
    ("attach", _pod(), [("container", "a")], "a"),
    ("portforward", _pod(), [("ports", "80,8080")], None),
    ("exec", _pod(), [("container", "b")], "you must specify at least 1 command"),
    ("exec", _pod(phase="Succeeded"), [("command", "ls"), ("container", "a")],
     "cannot exec into a container in a completed pod; current phase is Succeeded"),
    ("attach", _pod(phase="Failed"), [("container", "a")],
     "cannot attach to a container in a completed pod; current phase is Failed"),
    ("portforward", _pod(phase="Succeeded"), [],
     "unable to forward port because pod is not running. Current status=Succeeded"),
    ("exec", _pod(), [("command", "ls")], "a container name must be specified for pod p, choose one of: [a b]"),
    ("exec", _pod(), [("command", "ls"), ("container", "zz")], "container zz is not valid for pod p"),
    ("portforward", _pod(), [("ports", "http")], 'invalid port "http"'),
    ("exec", {**_pod(), "spec": {"containers": [{"name": "a"}]}}, [("command", "ls")],
     "pod p does not have a host assigned"),
])
def test_check_pod(sub: str, pod: dict[str, Any], query: list[tuple[str, str]], result: str | None) -> None:
    if result in ("a", "b", None):
        assert check_pod(pod, sub, query) == result
    else:
        with pytest.raises(errors.BadRequestError) as e:
            check_pod(pod, sub, query)
        assert e.value.message == result


@pytest.mark.parametrize(("code", "sent"), [(None, 1000), (1000, 1000), (4001, 4001), (1005, 1000), (1006, 1011),
                                            (1011, 1011), (999, 1011)])
def test_close_code(code: int | None, sent: int) -> None:
    assert close_code(code) == sent


def test_kubelet_refusal_keeps_the_kubelet_message() -> None:
    assert kubelet_refusal(400, "container web is not running\n", "n1").message == "container web is not running"
    assert kubelet_refusal(404, '{"kind":"Status","message":"pod not found"}', "n1").code == 404
    refused = kubelet_refusal(403, "wrong token", "n1")
    assert refused.code == 500 and "refused the API server's credential" in refused.message


# ------------------------------------------------------------------------------ the fake kubelet
class FakeKubelet:
    """Checks the bearer token, echoes WebSocket messages, records how clients closed."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.closed: list[int | None] = []

    def authorized(self, request: web.Request) -> bool:
        return kubeletauth.bearer_of(request.headers.get("Authorization")) == self.token

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return web.Response(status=401, text="Unauthorized")
        if request.match_info.get("container") == "stopped":
            return web.Response(status=400, text="container stopped is not running")
        protocols = PORTFORWARD_PROTOCOLS if request.path.startswith("/portforward/") else REMOTECOMMAND_PROTOCOLS
        ws = web.WebSocketResponse(protocols=protocols)
        await ws.prepare(request)
        await ws.send_bytes(b"\x01" + request.raw_path.encode())  # path and query as they came
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY and msg.data == b"\xffbye":
                await ws.close(code=4000)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                await ws.send_str(msg.data)
        self.closed.append(ws.close_code)
        return ws

    async def logs(self, request: web.Request) -> web.Response:
        return web.Response(text="log line\n" if self.authorized(request) else "Unauthorized",
                            status=200 if self.authorized(request) else 401)

    async def summary(self, request: web.Request) -> web.Response:
        if not self.authorized(request):
            return web.Response(status=401, text="Unauthorized")
        return web.json_response({"node": {"nodeName": "fake"}, "pods": []})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/exec/{ns}/{pod}/{container}", self.stream)
        app.router.add_get("/attach/{ns}/{pod}/{container}", self.stream)
        app.router.add_get("/portforward/{ns}/{pod}", self.stream)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        app.router.add_get("/stats/summary", self.summary)
        return app


def register_node(http: httpx.Client, name: str, *, port: int) -> None:
    """A Node whose kubelet listens on 127.0.0.1:``port``."""
    r = http.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    obj = r.json()
    obj["status"] = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                     "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}
    assert http.put(f"/api/v1/nodes/{name}/status", json=obj).status_code == 200


def _token(http: httpx.Client) -> str:
    r = http.get(f"/api/v1/namespaces/{kubeletauth.SECRET_NAMESPACE}/secrets/{kubeletauth.SECRET_NAME}")
    assert r.status_code == 200, r.text
    token = kubeletauth.token_of(r.json())
    assert token and len(token) >= 32
    return token


@pytest.fixture(scope="module")
def kubelet(apiserver: ApiServerProcess) -> Iterator[tuple[FakeKubelet, str]]:
    """The fake kubelet and the Node it is registered as."""
    with httpx.Client(base_url=apiserver.url, timeout=30) as http:
        fake = FakeKubelet(_token(http))
        server = BackgroundApp(fake.app())
        node = f"fake-{uuid.uuid4().hex[:6]}"
        register_node(http, node, port=server.port)
        yield fake, node
        http.delete(f"/api/v1/nodes/{node}")
        server.stop()


def make_pod(http: httpx.Client, ns: str, name: str, *, node: str | None, phase: str = "Running",
             containers: tuple[str, ...] = ("main",)) -> None:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
    if node:
        spec["nodeName"] = node
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json={"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                                                          "spec": spec})
    assert r.status_code == 201, r.text
    pod = r.json()
    pod["status"] = {"phase": phase}
    assert http.put(f"/api/v1/namespaces/{ns}/pods/{name}/status", json=pod).status_code == 200


def ws_url(apiserver: ApiServerProcess, path: str) -> str:
    return apiserver.url.replace("http://", "ws://") + path


def test_exec_relays_both_ways_and_passes_client_close(apiserver: ApiServerProcess, http: httpx.Client, namespace: str,
                                                       kubelet: tuple[FakeKubelet, str]) -> None:
    fake, node = kubelet
    make_pod(http, namespace, "web", node=node)
    query = "command=sh&command=-c&command=echo%20hi&stdin=true&stdout=true"

    async def session() -> tuple[str | None, list[Any]]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ws_url(apiserver, f"/api/v1/namespaces/{namespace}/pods/web/exec?{query}"),
                                    protocols=[V5, V4]) as ws:
                got = [(await ws.receive(timeout=10)).data]
                await ws.send_bytes(b"\x00stdin bytes")
                got.append((await ws.receive(timeout=10)).data)
                await ws.send_str("0" + base64.b64encode(b"text").decode())
                got.append((await ws.receive(timeout=10)).data)
                await ws.close(code=4001)
                return ws.protocol, got

    protocol, got = asyncio.run(session())
    assert protocol == V5  # the kubelet's choice among the client's offer
    assert got == [f"\x01/exec/{namespace}/web/main?{query}".encode(), b"\x00stdin bytes",
                   "0" + base64.b64encode(b"text").decode()]
    deadline = asyncio.run(_wait_closed(fake, 4001))
    assert deadline, f"the kubelet saw {fake.closed}"


async def _wait_closed(fake: FakeKubelet, code: int) -> bool:
    for _ in range(50):
        if code in fake.closed:
            return True
        await asyncio.sleep(0.1)
    return False


def test_kubelet_close_reaches_the_client_and_portforward_speaks_spdy(
        apiserver: ApiServerProcess, http: httpx.Client, namespace: str, kubelet: tuple[FakeKubelet, str]) -> None:
    _, node = kubelet
    make_pod(http, namespace, "web", node=node, containers=("a", "b"))

    async def session(path: str, protocols: list[str]) -> tuple[str | None, bytes, int | None]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(ws_url(apiserver, path), protocols=protocols) as ws:
                first = (await ws.receive(timeout=10)).data
                await ws.send_bytes(b"\xffbye")
                end = await ws.receive(timeout=10)
                assert end.type == aiohttp.WSMsgType.CLOSE
                return ws.protocol, first, ws.close_code

    protocol, first, code = asyncio.run(session(f"/api/v1/namespaces/{namespace}/pods/web/portforward?ports=8080",
                                                [SPDY_PORTFORWARD]))
    assert (protocol, first, code) == (SPDY_PORTFORWARD, f"\x01/portforward/{namespace}/web?ports=8080".encode(), 4000)
    protocol, first, code = asyncio.run(session(
        f"/api/v1/namespaces/{namespace}/pods/web/attach?container=b&stdout=1", ["v4.base64.channel.k8s.io"]))
    assert (protocol, first, code) == ("v4.base64.channel.k8s.io",
                                       f"\x01/attach/{namespace}/web/b?container=b&stdout=1".encode(), 4000)


UPGRADE = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
           "Sec-WebSocket-Key": base64.b64encode(b"0123456789abcdef").decode(), "Sec-WebSocket-Protocol": V5}


def test_refusals_before_the_upgrade_are_statuses(apiserver: ApiServerProcess, http: httpx.Client, namespace: str,
                                                  kubelet: tuple[FakeKubelet, str]) -> None:
    _, node = kubelet
    make_pod(http, namespace, "web", node=node, containers=("main", "stopped"))
    make_pod(http, namespace, "done", node=node, phase="Succeeded")
    make_pod(http, namespace, "pending", node=None, phase="Pending")
    make_pod(http, namespace, "lost", node="no-such-node")
    base = f"/api/v1/namespaces/{namespace}/pods"
    cases = [
        (f"{base}/nope/exec?command=ls", 404, "NotFound", 'pods "nope" not found'),
        (f"{base}/web/exec?container=main", 400, "BadRequest", "you must specify at least 1 command"),
        (f"{base}/web/exec?command=ls", 400, "BadRequest",
         "a container name must be specified for pod web, choose one of: [main stopped]"),
        (f"{base}/done/exec?command=ls", 400, "BadRequest",
         "cannot exec into a container in a completed pod; current phase is Succeeded"),
        (f"{base}/pending/attach", 400, "BadRequest", "pod pending does not have a host assigned"),
        (f"{base}/lost/portforward?ports=80", 404, "NotFound", 'nodes "no-such-node" not found'),
        (f"{base}/web/exec?command=ls&container=stopped", 400, "BadRequest", "container stopped is not running"),
    ]
    for path, code, reason, message in cases:
        r = http.get(path, headers=UPGRADE)
        assert r.status_code == code, (path, r.text)
        assert (r.json()["kind"], r.json()["reason"], r.json()["message"]) == ("Status", reason, message), path
    # a plain request: the checks, then Kubernetes' answer to a request that is no upgrade
    for method in ("GET", "POST"):
        r = http.request(method, f"{base}/web/exec?command=ls&container=main")
        assert (r.status_code, r.json()["message"]) == (400, "Upgrade request required")
    assert http.get(f"{base}/nope/portforward").status_code == 404
    for method in ("PUT", "PATCH", "DELETE"):  # never the generic routes (a write to the pod)
        r = http.request(method, f"{base}/web/exec", json={"apiVersion": "v1", "kind": "Pod"})
        assert (r.status_code, r.json()["reason"]) == (405, "MethodNotAllowed")
    # kubectl's SPDY fallback after a refused WebSocket gets that refusal again
    spdy = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
    r = http.post(f"{base}/web/exec?command=ls&container=stopped", headers=spdy)
    assert (r.status_code, r.json()["message"]) == (400, "container stopped is not running")
    r = http.post(f"{base}/web/exec?command=ls&container=main", headers=spdy)
    assert r.status_code == 400 and "SPDY/3.1 upgrade is not supported" in r.json()["message"]


def test_unreachable_kubelet_is_503(http: httpx.Client, namespace: str) -> None:
    node = f"gone-{uuid.uuid4().hex[:6]}"
    register_node(http, node, port=1)  # nothing listens there
    try:
        make_pod(http, namespace, "web", node=node)
        r = http.get(f"/api/v1/namespaces/{namespace}/pods/web/exec?command=ls", headers=UPGRADE)
        assert (r.status_code, r.json()["message"]) == (503, f"the kubelet on node {node} is not reachable")
    finally:
        http.delete(f"/api/v1/nodes/{node}")


def test_credential_secret_and_its_use(http: httpx.Client, namespace: str, kubelet: tuple[FakeKubelet, str]) -> None:
    fake, node = kubelet
    secret = http.get(f"/api/v1/namespaces/kube-system/secrets/{kubeletauth.SECRET_NAME}").json()
    assert kubeletauth.token_of(secret) == fake.token
    make_pod(http, namespace, "web", node=node)
    r = http.get(f"/api/v1/namespaces/{namespace}/pods/web/log")
    assert (r.status_code, r.text) == (200, "log line\n")  # the fake kubelet answers 401 without the token
    r = http.get(f"/api/v1/nodes/{node}/proxy/stats/summary")
    assert r.status_code == 200 and r.json()["node"]["nodeName"] == "fake", r.text
    r = http.get(f"/api/v1/nodes/{node}/proxy/unknown")
    assert r.status_code == 404  # the kubelet's own answer, passed on
