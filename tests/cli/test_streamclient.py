"""machinery.streamclient against an in-test API server that speaks the channel protocols.

``FakeStreamServer`` is an aiohttp server in its own thread (so that both async tests and mkctl's
own ``asyncio.run`` under typer's runner can use it): a few pods and workloads with the discovery
documents mkctl reads, and WebSocket ``pods/NAME/exec|attach|portforward`` that encode and decode
with ``machinery.remotecommand`` (the kubelet's shapes: exit Status, v5 CLOSE, resize JSON,
port-forward port prefixes). test_mkctl_exec.py drives mkctl through it too.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from machinery import errors, remotecommand as rc
from machinery.kubeconfig import ClientConfig
from machinery.streamclient import (Outcome, RemoteIO, StreamDialer, bytes_source, forward_connection, outcome_of,
                                    remote_command_params, run_remote_command)

TOKEN = "s3cret"


def pod(name: str, *, containers: tuple[str, ...] = ("main",), phase: str = "Running", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None, ready: bool = True, ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": labels or {}, "annotations": annotations or {},
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "containers": [{"name": c, "image": "x", "ports": ports or []} for c in containers]},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


class FakeStreamServer:
    """An API server with pods, a Deployment and a Service, and the streaming subresources."""

    def __init__(self, *, protocols: tuple[str, ...] = rc.REMOTECOMMAND_PROTOCOLS) -> None:
        self.protocols = protocols
        self.pods = {p["metadata"]["name"]: p for p in [
            pod("web"), pod("waiting"), pod("multi", containers=("a", "b")), pod("done", phase="Succeeded"),
            pod("annotated", containers=("a", "b"), annotations={"kubectl.kubernetes.io/default-container": "b"}),
            pod("app-old", labels={"app": "web"}, ready=False),
            pod("app-best", labels={"app": "web"}, ports=[{"name": "http", "containerPort": 8080}]),
        ]}
        self.objects: dict[str, dict[str, Any]] = {
            "/apis/apps/v1/namespaces/default/deployments/web": {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}}},
            "/api/v1/namespaces/default/services/web": {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
                "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        }
        self.requests: list[tuple[str, list[tuple[str, str]], str | None]] = []  # (path, query, protocol)
        self.resizes: list[bytes] = []
        self.received: list[bytes] = []  # stdin of `tar -x`
        self.tar_out = b""  # stdout of `tar c`
        self.dirs = {"/tmp"}
        self.discoveries = 0  # GET /api/v1
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.started.wait(10)

    # -- lifecycle
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/api/v1", self.core)
        app.router.add_get("/apis", self.groups)
        app.router.add_get("/apis/apps/v1", self.apps)
        app.router.add_get("/api/v1/namespaces/default/pods", self.list_pods)
        app.router.add_get("/api/v1/namespaces/default/pods/{name}", self.get_pod)
        app.router.add_get("/api/v1/namespaces/default/pods/{name}/{sub}", self.stream)
        app.router.add_get("/{path:.*}", self.get_object)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        self.started.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def config(self) -> ClientConfig:
        return ClientConfig(server=self.url, token=TOKEN)

    # -- REST
    @staticmethod
    def not_found(what: str, name: str) -> web.Response:
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                  "code": 404, "message": f'{what} "{name}" not found',
                                  "details": {"name": name, "kind": what}}, status=404)

    async def core(self, _: web.Request) -> web.Response:
        self.discoveries += 1
        return web.json_response({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
             "verbs": ["get", "list"]},
            {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions", "verbs": ["get"]},
            {"name": "services", "singularName": "service", "namespaced": True, "kind": "Service",
             "shortNames": ["svc"], "verbs": ["get"]},
            {"name": "configmaps", "singularName": "configmap", "namespaced": True, "kind": "ConfigMap",
             "shortNames": ["cm"], "verbs": ["get"]}]})

    async def groups(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "groups": [
            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]})

    async def apps(self, _: web.Request) -> web.Response:
        return web.json_response({"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
             "shortNames": ["deploy"], "verbs": ["get"]}]})

    async def list_pods(self, request: web.Request) -> web.Response:
        key, _, value = request.query.get("labelSelector", "").partition("=")
        items = [p for p in self.pods.values() if not key or p["metadata"]["labels"].get(key) == value]
        return web.json_response({"kind": "PodList", "metadata": {"resourceVersion": "7"}, "items": items})

    async def get_pod(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.json_response(self.pods[name]) if name in self.pods else self.not_found("pods", name)

    async def get_object(self, request: web.Request) -> web.Response:
        obj = self.objects.get(request.path)
        if obj is None:
            return self.not_found(request.path.rsplit("/", 2)[-2], request.path.rsplit("/", 1)[-1])
        return web.json_response(obj)

    # -- streaming
    async def stream(self, request: web.Request) -> web.StreamResponse:
        name, sub = request.match_info["name"], request.match_info["sub"]
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"kind": "Status", "status": "Failure", "reason": "Unauthorized", "code": 401,
                                      "message": "Unauthorized"}, status=401)
        if name not in self.pods:
            return self.not_found("pods", name)
        if name == "waiting":
            return web.json_response({"kind": "Status", "status": "Failure", "reason": "BadRequest", "code": 400,
                                      "message": 'container "main" in pod "waiting" is waiting to start: '
                                                 'ContainerCreating'}, status=400)
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        supported = rc.PORTFORWARD_PROTOCOLS if sub == "portforward" else self.protocols
        protocol = rc.choose_protocol(offered, supported)
        self.requests.append((request.path, list(request.query.items()), protocol))
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else ())
        await ws.prepare(request)
        if sub == "portforward":
            await self.portforward(ws, protocol, rc.parse_ports(request.query.getall("ports", [])))
        else:
            await self.remote_command(ws, protocol, request.query.getall("command", []))
        await ws.close()
        return ws

    async def remote_command(self, ws: web.WebSocketResponse, protocol: str | None, command: list[str]) -> None:
        async def send(channel: int, payload: bytes) -> None:
            message = rc.encode(protocol, channel, payload)
            await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))

        async def stdin_until_close(echo: bool) -> bytes:
            got = b""
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break
                channel, payload = rc.decode(protocol, msg.data)
                if channel == rc.CLOSE and payload == bytes([rc.STDIN]):
                    break
                if channel == rc.STDIN:
                    got += payload
                    if echo:
                        await send(rc.STDOUT, payload)
                elif channel == rc.RESIZE:
                    self.resizes.append(msg.data)
                    if len(self.resizes) == 2:
                        break
            return got

        code = 0
        if command[:1] == ["echo"]:
            await send(rc.STDOUT, (" ".join(command[1:]) + "\n").encode())
        elif command[:2] == ["sh", "-c"] and command[2].startswith("exit "):
            await send(rc.STDERR, b"oops\n")
            code = int(command[2].split()[1])
        elif command == ["cat"]:
            await stdin_until_close(echo=True)
        elif command == ["resize"]:
            await stdin_until_close(echo=False)
        elif command[:2] == ["test", "-d"]:
            code = 0 if command[2] in self.dirs else 1
        elif command[:1] == ["tar"] and "-xmf" in command:
            self.received.append(await stdin_until_close(echo=False))
        elif command[:2] == ["tar", "cf"]:
            await send(rc.STDOUT, self.tar_out)
            if not self.tar_out:
                await send(rc.STDERR, f"tar: {command[3]}: No such file or directory\n".encode())
                code = 1
        elif command == ["fail"]:
            payload = rc.status_payload(protocol, rc.error_status("container not running"))
            if payload:
                await send(rc.ERROR, payload)
            return
        elif command == ["die"]:
            await send(rc.STDOUT, b"partial")
            assert ws._req is not None and ws._req.transport is not None
            ws._req.transport.abort()  # the connection lost, no close frame, no status
            return
        elif not command:  # attach
            await send(rc.STDOUT, b"attached\n")
        payload = rc.status_payload(protocol, rc.exit_status(code, command))
        if payload:
            await send(rc.ERROR, payload)

    async def portforward(self, ws: web.WebSocketResponse, protocol: str | None, ports: list[int]) -> None:
        data_ch, error_ch = rc.portforward_channels(0)
        for ch in (data_ch, error_ch):
            await ws.send_bytes(bytes([ch]) + rc.port_prefix(ports[0]))
        if ports[0] == 9999:
            await ws.send_bytes(bytes([error_ch]) + b"connection refused to localhost:9999")
            return
        async for msg in ws:
            if msg.type != WSMsgType.BINARY:
                break
            channel, payload = rc.decode(protocol, msg.data)
            if channel == data_ch:
                await ws.send_bytes(bytes([data_ch]) + payload.upper())
                if payload.endswith(b"\n"):
                    return  # a line is one request: the answer, then the connection ends


@pytest.fixture(scope="module")
def fake() -> Any:
    server = FakeStreamServer()
    yield server
    server.stop()


async def run(config: ClientConfig, command: list[str], remote: RemoteIO, *, sub: str = "exec",
              stdin: bool = False) -> tuple[Outcome, str | None]:
    async with StreamDialer(config) as dialer:
        ws, protocol = await dialer.dial(f"/api/v1/namespaces/default/pods/web/{sub}", remote_command_params(
            command=command, container="main", stdin=stdin, stdout=True, stderr=True, tty=False),
            (rc.V5, rc.V4))
        return await run_remote_command(ws, protocol, remote), protocol


class Sink:
    def __init__(self) -> None:
        self.data = b""

    def __call__(self, data: bytes) -> None:
        self.data += data


async def test_exec_stdout_and_success(fake: FakeStreamServer) -> None:
    out = Sink()
    outcome, protocol = await run(fake.config, ["echo", "hi"], RemoteIO(stdout=out))
    assert (outcome, protocol, out.data) == (Outcome(0), rc.V5, b"hi\n")
    path, query, _ = fake.requests[-1]
    assert query == [("command", "echo"), ("command", "hi"), ("container", "main"), ("stdout", "true"),
                     ("stderr", "true")]


async def test_exit_code_and_stderr(fake: FakeStreamServer) -> None:
    err = Sink()
    outcome, _ = await run(fake.config, ["sh", "-c", "exit 3"], RemoteIO(stderr=err))
    assert outcome == Outcome(3, "command terminated with exit code 3")
    assert err.data == b"oops\n"


async def test_stdin_ends_with_the_v5_close_message(fake: FakeStreamServer) -> None:
    out = Sink()
    outcome, _ = await run(fake.config, ["cat"], RemoteIO(stdin=bytes_source(b"x" * 200_000, chunk=65536), stdout=out),
                           stdin=True)
    assert outcome == Outcome(0) and out.data == b"x" * 200_000


async def test_resize_messages(fake: FakeStreamServer) -> None:
    async def sizes() -> Any:
        yield rc.TerminalSize(81, 25)
        yield rc.TerminalSize(80, 24)
    fake.resizes.clear()
    outcome, _ = await run(fake.config, ["resize"], RemoteIO(resize=sizes()))
    assert outcome == Outcome(0)
    assert [m[0] for m in fake.resizes] == [rc.RESIZE, rc.RESIZE]
    assert [json.loads(m[1:]) for m in fake.resizes] == [{"Width": 81, "Height": 25}, {"Width": 80, "Height": 24}]


async def test_lost_connection_is_an_error(fake: FakeStreamServer) -> None:
    out = Sink()
    outcome, _ = await run(fake.config, ["die"], RemoteIO(stdout=out))
    assert out.data == b"partial"
    assert outcome.code == 1 and outcome.message.startswith("error reading from error stream")


async def test_v4_server_and_status_without_exit_code() -> None:
    server = FakeStreamServer(protocols=(rc.V4,))
    try:
        out = Sink()
        outcome, protocol = await run(server.config, ["echo", "v4"], RemoteIO(stdout=out))
        assert (outcome, protocol, out.data) == (Outcome(0), rc.V4, b"v4\n")
        outcome, _ = await run(server.config, ["fail"], RemoteIO())
        assert outcome == Outcome(1, "container not running")
    finally:
        server.stop()


async def test_refused_upgrade_is_the_servers_status(fake: FakeStreamServer) -> None:
    async with StreamDialer(fake.config) as dialer:
        with pytest.raises(errors.NotFoundError, match='pods "nope" not found'):
            await dialer.dial("/api/v1/namespaces/default/pods/nope/exec", [("command", "ls")], (rc.V5,))
    async with StreamDialer(ClientConfig(server=fake.url, token="wrong")) as dialer:
        with pytest.raises(errors.ApiError) as caught:
            await dialer.dial("/api/v1/namespaces/default/pods/web/exec", [("command", "ls")], (rc.V5,))
        assert caught.value.code == 401


async def forward_once(fake: FakeStreamServer, port: int, data: bytes) -> tuple[bytes, str | None]:
    result: dict[str, str | None] = {}
    async with StreamDialer(fake.config) as dialer:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            result["error"] = await forward_connection(dialer, "/api/v1/namespaces/default/pods/web/portforward", port,
                                                       reader, writer)
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
            writer.write(data)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            for _ in range(100):
                if "error" in result:
                    break
                await asyncio.sleep(0.02)
        finally:
            server.close()
    return answer, result.get("error")


async def test_portforward_strips_the_port_prefixes(fake: FakeStreamServer) -> None:
    answers = await asyncio.gather(*(forward_once(fake, 8080, f"hello {i}\n".encode()) for i in range(5)))
    assert answers == [(f"HELLO {i}\n".encode(), None) for i in range(5)]
    _, query, protocol = fake.requests[-1]
    assert query == [("ports", "8080")] and protocol == rc.V4


async def test_portforward_error_channel(fake: FakeStreamServer) -> None:
    assert await forward_once(fake, 9999, b"x\n") == (b"", "connection refused to localhost:9999")


@pytest.mark.parametrize("protocol,payload,expected", [
    (rc.V5, None, Outcome(0)),
    (rc.V5, b'{"metadata":{},"status":"Success"}', Outcome(0)),
    (rc.V4, json.dumps(rc.exit_status(7, ["x"])).encode(), Outcome(7, "command terminated with exit code 7")),
    (rc.V5, json.dumps(rc.error_status("no such container")).encode(), Outcome(1, "no such container")),
    (rc.V5, b"not json", Outcome(1, "error stream protocol error: invalid status b'not json'")),
    (rc.V1, b"some failure", Outcome(1, "some failure")),
])
def test_outcome_of(protocol: str, payload: bytes | None, expected: Outcome) -> None:
    assert outcome_of(protocol, payload) == expected


@pytest.mark.parametrize("kw,expected", [
    ({"command": ["ls", "-l"], "container": "c", "stdin": True, "stdout": True, "stderr": False, "tty": True},
     [("command", "ls"), ("command", "-l"), ("container", "c"), ("stdin", "true"), ("stdout", "true"), ("tty", "true")]),
    ({"container": None, "stdin": False, "stdout": True, "stderr": True, "tty": False},
     [("stdout", "true"), ("stderr", "true")]),
])
def test_remote_command_params(kw: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert remote_command_params(**kw) == expected
