"""Port-forward against real components: a busybox pod (sandbox + ``httpd -f -p 8080``) made through
kubelet.runtime on a test network of its own, the kubelet's streaming routes in a small aiohttp app
that plays the API server for kubectl (the pod's GET, discovery, and ``pods/NAME/portforward``
mapped onto ``routes.add_routes``' handler), the real ``kubectl port-forward`` (SPDY/3.1 tunnelled in
a WebSocket) and the official Python client's ``portforward`` (the channel protocol).

Traffic goes to 127.0.0.1 and, for the pod-IP fallback, to the test network's pod IP only.
Everything made here carries ``io.minik8s.test-run=<run id>`` and is removed at the end.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import shutil
import socket
import time
import urllib.request
import uuid
from dataclasses import dataclass, replace
from typing import Any, AsyncIterator, Callable, Iterator

import aiohttp
import pytest
from aiohttp import web

from kubelet.cri import ContainerRuntime
from kubelet.runtime import ContainerSpec, DockerRuntime, NetworkInfo, Sandbox
from kubelet.streaming import routes
from kubelet.streaming.context import ContainerTarget, PodTarget, StreamError
from machinery import remotecommand as rc
from tests.dockertest import IMAGE, docker_runtime, make_test_network

pytestmark = pytest.mark.docker

NETWORK = "minik8s-pods-test-portforward"
RUN_ID = uuid.uuid4().hex[:10]
RUN_LABELS = {"io.minik8s.test-run": RUN_ID}
NS, POD, NOPID_POD = "default", "pf-web", "pf-nopid"
PAGE = "hello from the pod\n"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    yield from docker_runtime(RUN_LABELS)


@pytest.fixture(scope="module")
def network(runtime: DockerRuntime) -> Iterator[NetworkInfo]:
    runtime.remove_network(NETWORK)  # a leftover of an interrupted run
    info = make_test_network(runtime, NETWORK, RUN_LABELS)
    yield info
    for c in runtime.list(RUN_LABELS):
        runtime.remove(c.id, force=True)
    runtime.remove_network(NETWORK)


@pytest.fixture(scope="module")
def sandbox(runtime: DockerRuntime, network: NetworkInfo) -> Sandbox:
    """The pod: a sandbox and an httpd container in its network namespace, answering on 8080."""
    uid = str(uuid.uuid4())
    sb = runtime.run_sandbox(pod_uid=uid, pod_name=POD, namespace=NS, node="node-pf", network=network.name,
                             labels=RUN_LABELS)
    cid = runtime.create_container(ContainerSpec(
        pod_uid=uid, pod_name=POD, namespace=NS, node="node-pf", name="web", image=IMAGE, sandbox_id=sb.id,
        command=["sh", "-c", f"mkdir -p /www && printf '{PAGE}' > /www/index.html && exec httpd -f -p 8080 -h /www"],
        labels=RUN_LABELS))
    runtime.start(cid)
    deadline = time.monotonic() + 10
    while True:  # httpd listening (through the pod network: the test network's own address)
        try:
            socket.create_connection((sb.ip, 8080), timeout=1).close()
            return sb
        except OSError:
            assert time.monotonic() < deadline, "httpd did not start in the pod"
            time.sleep(0.05)


@dataclass
class Context:
    """The kubelet's side of the streaming contract, for one known pod (and one without a pid)."""
    runtime: ContainerRuntime
    sb: Sandbox
    pool: concurrent.futures.ThreadPoolExecutor

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kw))

    async def container(self, namespace: str, pod: str, container: str) -> ContainerTarget:
        raise StreamError("not used here", 404)

    async def sandbox(self, namespace: str, pod: str) -> PodTarget:
        if namespace != NS or pod not in (POD, NOPID_POD):
            raise StreamError(f'pods "{pod}" not found', 404)
        target = PodTarget(namespace=NS, name=pod, uid="uid-1", sandbox_id=self.sb.id, sandbox_pid=self.sb.pid,
                           pod_ip=self.sb.ip)
        return replace(target, sandbox_pid=None) if pod == NOPID_POD else target


def pod_json(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NS, "uid": "uid-1", "resourceVersion": "1"},
            "spec": {"containers": [{"name": "web", "image": IMAGE, "ports": [{"containerPort": 8080}]}]},
            "status": {"phase": "Running"}}


UPGRADES: list[tuple[str, str]] = []  # (method, offered subprotocols) of every portforward request


@web.middleware
async def record_upgrades(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.endswith("/portforward"):
        UPGRADES.append((request.method, request.headers.get("Sec-WebSocket-Protocol", "")))
    return await handler(request)  # type: ignore[no-any-return]


def fake_apiserver(ctx: Context) -> web.Application:
    """Just enough API server for ``kubectl port-forward pod/NAME``: discovery, the pod, and the
    portforward subresource served by the kubelet's own handler."""
    app = web.Application(middlewares=[record_upgrades])
    routes.add_routes(app, ctx)  # type: ignore[arg-type]  # Context fits the StreamingContext protocol
    handler = next(r.handler for r in app.router.routes()
                   if r.method == "GET" and r.resource is not None
                   and r.resource.canonical == "/portforward/{namespace}/{pod}")

    async def api(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})

    async def apis(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def api_v1(_: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
             "verbs": ["get", "list"]},
            {"name": "pods/portforward", "singularName": "", "namespaced": True, "kind": "PodPortForwardOptions",
             "verbs": ["create", "get"]}]})

    async def get_pod(request: web.Request) -> web.Response:
        name = request.match_info["pod"]
        if name not in (POD, NOPID_POD):
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                      "message": f'pods "{name}" not found', "code": 404}, status=404)
        return web.json_response(pod_json(name))

    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", api_v1)
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{pod}", get_pod)
    app.router.add_route("GET", "/api/v1/namespaces/{namespace}/pods/{pod}/portforward", handler)
    app.router.add_route("POST", "/api/v1/namespaces/{namespace}/pods/{pod}/portforward", handler)
    return app


@pytest.fixture(scope="module")
async def server(runtime: DockerRuntime, sandbox: Sandbox) -> AsyncIterator[str]:
    pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="test-kubelet")
    runner = web.AppRunner(fake_apiserver(Context(runtime, sandbox, pool)))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
    pool.shutdown(wait=False)


@dataclass
class Forward:
    proc: asyncio.subprocess.Process
    local_port: int
    stderr: list[str]

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.terminate()
        await asyncio.wait_for(self.proc.wait(), 10)
        assert self.proc.stderr is not None
        self.stderr.append((await self.proc.stderr.read()).decode())
        return "".join(self.stderr)


async def start_forward(server: str, tmp_path: Any, pod: str, remote: int) -> Forward:
    """``kubectl port-forward pod/POD :REMOTE`` (kubectl picks the free local port), once it forwards."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("")
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--server", server, "-n", NS, "port-forward", f"pod/{pod}", f":{remote}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    m = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
    assert m, f"kubectl said {line!r}; stderr: {(await proc.stderr.read()).decode() if proc.stderr else ''}"
    assert int(m.group(2)) == remote
    return Forward(proc, int(m.group(1)), [])


def http_get(port: int, timeout: float = 10) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as resp:
        return resp.read().decode()


async def test_kubectl_port_forward_reaches_the_pod_and_serves_20_concurrent_requests(server: str,
                                                                                      tmp_path: Any) -> None:
    UPGRADES.clear()
    fwd = await start_forward(server, tmp_path, POD, 8080)
    try:
        assert await asyncio.to_thread(http_get, fwd.local_port) == PAGE
        # kubectl 1.32 tunnels SPDY in a WebSocket (a fallback to plain SPDY would be a POST)
        assert UPGRADES == [("GET", "SPDY/3.1+portforward.k8s.io")]
        # a connection the pod waits on (no request sent) and one closed at once stall nobody
        idle = socket.create_connection(("127.0.0.1", fwd.local_port))
        socket.create_connection(("127.0.0.1", fwd.local_port)).close()
        start = time.monotonic()
        pages = await asyncio.gather(*(asyncio.to_thread(http_get, fwd.local_port) for _ in range(20)))
        elapsed = time.monotonic() - start
        assert pages == [PAGE] * 20
        assert elapsed < 10, f"20 concurrent requests took {elapsed:.1f}s"
        idle.sendall(b"GET / HTTP/1.0\r\n\r\n")  # the waiting one still works
        idle.settimeout(10)
        assert (await asyncio.to_thread(idle.makefile("rb").read)).decode().endswith(PAGE)
        idle.close()
        assert await asyncio.to_thread(http_get, fwd.local_port) == PAGE  # still forwarding after them
    finally:
        err = await fwd.stop()
    assert "lost connection" not in err, err


async def test_kubectl_port_forward_to_a_port_nobody_listens_on(server: str, tmp_path: Any,
                                                                sandbox: Sandbox) -> None:
    """kubectl 1.32 prints the kubelet's error and then ends the forward itself ("lost connection to
    pod": client-go's handleConnection closes the connection after an error); a new forward works."""
    fwd = await start_forward(server, tmp_path, POD, 9)
    try:
        with pytest.raises(OSError):
            await asyncio.to_thread(http_get, fwd.local_port, 5)
        await asyncio.wait_for(fwd.proc.wait(), 10)
    finally:
        err = (await fwd.stop()).replace('\\"', '"')  # klog quotes the message: \" inside
    assert (f"an error occurred forwarding {fwd.local_port} -> 9: error forwarding port 9 to pod {sandbox.id}, "
            f'uid : failed to execute portforward in network namespace "/proc/{sandbox.pid}/ns/net": '
            f'failed to connect to localhost:9 inside namespace "{sandbox.id}", '
            "IPv4: dial tcp4 127.0.0.1:9: connect: connection refused") in err, err
    assert "lost connection to pod" in err
    again = await start_forward(server, tmp_path, POD, 8080)
    try:
        assert await asyncio.to_thread(http_get, again.local_port) == PAGE
    finally:
        await again.stop()


def python_client_get(server: str, pod: str) -> tuple[str, str | None]:
    from kubernetes import client
    from kubernetes.stream import portforward

    cfg = client.Configuration()
    cfg.host = server
    api = client.CoreV1Api(client.ApiClient(cfg))
    pf = portforward(api.connect_get_namespaced_pod_portforward, pod, NS, ports="8080")
    sock = pf.socket(8080)
    sock.settimeout(10)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    return data.decode(), pf.error(8080)


async def test_python_client_portforward_uses_the_channel_protocol(server: str) -> None:
    answer, error = await asyncio.to_thread(python_client_get, server, POD)
    assert answer.startswith("HTTP/1.") and answer.endswith(PAGE), answer
    assert error is None


async def channel_get(server: str, pod: str, port: int, protocol: str = rc.V4) -> tuple[bytes, bytes]:
    """A raw channel-protocol client: (data channel bytes, error channel bytes) after the prefixes."""
    data, errors = b"", b""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server}/api/v1/namespaces/{NS}/pods/{pod}/portforward?ports={port}",
                                   protocols=(protocol,)) as ws:
            assert ws.protocol == protocol
            prefixes = [rc.decode(protocol, (await ws.receive(timeout=10)).data) for _ in range(2)]
            assert prefixes == [(0, port.to_bytes(2, "little")), (1, port.to_bytes(2, "little"))]
            request = rc.encode(protocol, 0, b"GET / HTTP/1.0\r\n\r\n")
            await (ws.send_str(request) if isinstance(request, str) else ws.send_bytes(request))
            async for msg in ws:
                assert msg.type == (aiohttp.WSMsgType.TEXT if rc.is_base64(protocol) else aiohttp.WSMsgType.BINARY)
                channel, payload = rc.decode(protocol, msg.data)
                if channel == 0:
                    data += payload
                else:
                    errors += payload
    return data, errors


@pytest.mark.parametrize("protocol", [rc.PORTFORWARD, rc.V4_BASE64, rc.V1_BASE64])
async def test_channel_protocol_variants(server: str, protocol: str) -> None:
    data, errors = await channel_get(server, POD, 8080, protocol)
    assert data.decode().endswith(PAGE) and errors == b""


async def test_channel_protocol_falls_back_to_the_pod_ip_without_a_sandbox_pid(server: str) -> None:
    data, errors = await channel_get(server, NOPID_POD, 8080)
    assert data.decode().endswith(PAGE) and errors == b""


async def test_channel_protocol_reports_a_port_nobody_listens_on(server: str, sandbox: Sandbox) -> None:
    data, errors = await channel_get(server, POD, 9)
    assert data == b""
    assert errors.decode().startswith(f"error forwarding port 9 to pod {sandbox.id}, uid : "), errors
    assert "connection refused" in errors.decode()


@pytest.mark.parametrize(("path", "headers", "status", "text"), [
    (f"/api/v1/namespaces/{NS}/pods/{POD}/portforward?ports=8080", {}, 400, "Upgrade request required"),
    (f"/api/v1/namespaces/{NS}/pods/nope/portforward?ports=8080", "ws", 404, 'pods "nope" not found'),
    (f"/api/v1/namespaces/{NS}/pods/{POD}/portforward", "ws", 400, 'query parameter "ports" is required'),
    (f"/api/v1/namespaces/{NS}/pods/{POD}/portforward?ports=x", "ws", 400, 'invalid port "x"'),
    (f"/api/v1/namespaces/{NS}/pods/{POD}/portforward?ports=8080", {"Sec-WebSocket-Protocol": "nope.k8s.io"},
     400, "requested protocol(s) are not supported"),
])
async def test_bad_requests_are_answered_before_upgrading(server: str, path: str, headers: Any, status: int,
                                                          text: str) -> None:
    ws_headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    if headers == "ws":
        headers = {**ws_headers, "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}
    elif headers:
        headers = {**ws_headers, **headers}
    async with aiohttp.ClientSession() as http:
        async with http.get(server + path, headers=headers) as resp:
            assert resp.status == status
            assert text in await resp.text()


async def test_raw_spdy_client_pairs_without_request_ids_rejects_bad_streams_and_honours_goaway(
        server: str) -> None:
    """The paths kubectl 1.32 does not take: streams without ``requestid`` (paired as error N, data
    N+2, as the kubelet does for old clients), a stream without a port (RST_STREAM CANCEL), a PING,
    and the client's GOAWAY (the server closes the WebSocket once no connection is left)."""
    from kubelet.streaming import spdy

    deflate, reader = spdy.HeaderCompressor(), spdy.FrameReader()
    frames: list[spdy.Frame] = []

    async def until(ws: aiohttp.ClientWebSocketResponse, done: Callable[[], bool]) -> None:
        while not done():
            msg = await ws.receive(timeout=10)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            frames.extend(reader.feed(msg.data))

    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(f"{server}/api/v1/namespaces/{NS}/pods/{POD}/portforward",
                                   protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
            assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
            await ws.send_bytes(spdy.encode_syn_stream(deflate, 1, {"streamtype": ["error"]}))  # no port
            await ws.send_bytes(spdy.encode_syn_stream(deflate, 3, {"streamtype": ["error"], "port": ["8080"]}))
            await ws.send_bytes(spdy.encode_data(3, b"", fin=True))
            syn = spdy.encode_syn_stream(deflate, 5, {"streamtype": ["data"], "port": ["8080"]})
            request = spdy.encode_data(5, b"GET / HTTP/1.0\r\n\r\n", fin=True)
            await ws.send_bytes(syn[:7])  # a frame across messages, and two frames in one
            await ws.send_bytes(syn[7:] + request + spdy.encode_ping(7))
            await until(ws, lambda: spdy.DataFrame(5, b"", True) in frames and spdy.DataFrame(3, b"", True) in frames)
            assert frames[0] == spdy.RstStreamFrame(1, spdy.CANCEL)
            assert spdy.SynReplyFrame(3, {}) in frames and spdy.SynReplyFrame(5, {}) in frames
            assert spdy.PingFrame(7) in frames
            body = b"".join(f.data for f in frames if isinstance(f, spdy.DataFrame) and f.stream_id == 5)
            assert body.decode().endswith(PAGE)
            assert not any(isinstance(f, spdy.DataFrame) and f.stream_id == 3 and f.data for f in frames)

            await ws.send_bytes(spdy.encode_goaway(5))
            msg = await ws.receive(timeout=10)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), msg
