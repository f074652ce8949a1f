"""ApiClient against the real apiserver process: verbs, typed errors, watch, retry_on_conflict."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from typing import Any, AsyncIterator, Callable, Coroutine, Iterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from machinery import client as client_module
from machinery import errors
from machinery.client import (
    ApiClient, ApiResource, ConnectionFailedError, is_connection_refused, parse_warnings, resource_for,
    retry_on_conflict,
)
from machinery.kubeconfig import ClientConfig
from machinery.models import ConfigMap, Deployment, Pod
from tests.cluster import ApiServerProcess, free_port


@pytest.fixture
async def client(apiserver: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver.url) as c:
        yield c


def cm(name: str, data: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels},
            "data": data or {}}


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}


def test_resource_for_accepts_every_spelling() -> None:
    deploy = ApiResource("apps/v1", "deployments", True, "Deployment")
    for spelling in (Deployment, "Deployment", "deployments", "deploy", "deployments.apps", ("apps/v1", "deployments")):
        assert resource_for(spelling) == deploy
    assert resource_for("namespaces").namespaced is False
    assert resource_for(("example.com/v1", "widgets")) == ApiResource("example.com/v1", "widgets")
    with pytest.raises(errors.NotFoundError):
        resource_for("gadgets")
    assert ApiClient.path(resource_for(Pod), "ns", "p", "status") == "/api/v1/namespaces/ns/pods/p/status"
    assert ApiClient.path(deploy, None) == "/apis/apps/v1/deployments"


def test_parse_warnings() -> None:
    assert parse_warnings(['299 - "unknown field \\"x\\"", 299 - "second"', '299 - "third"']) == [
        'unknown field "x"', "second", "third"]
    assert parse_warnings([]) == []


async def test_crud_round_trip(client: ApiClient, namespace: str) -> None:
    created = await client.create("configmaps", cm("a", {"k": "v"}, app="x"), namespace=namespace)
    assert created["metadata"]["namespace"] == namespace and created["metadata"]["resourceVersion"]
    got = await client.get(ConfigMap, "a", namespace=namespace)
    assert got["data"] == {"k": "v"}

    await client.create(("v1", "configmaps"), {**cm("b", app="y"), "metadata": {"name": "b", "namespace": namespace,
                                                                               "labels": {"app": "y"}}})
    listed = await client.list("configmaps", namespace=namespace, label_selector="app=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    everywhere = await client.list("configmaps", field_selector=f"metadata.namespace={namespace}")
    assert sorted(i["metadata"]["name"] for i in everywhere["items"]) == ["a", "b"]

    got["data"]["k"] = "v2"
    updated = await client.update("configmaps", got)
    assert updated["data"]["k"] == "v2"
    assert updated["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]

    merged = await client.patch("configmaps", "a", {"data": {"m": "1"}}, namespace=namespace)
    assert merged["data"] == {"k": "v2", "m": "1"}
    jsonp = await client.patch("configmaps", "a", [{"op": "remove", "path": "/data/k"}], namespace=namespace,
                               patch_type="json")
    assert jsonp["data"] == {"m": "1"}
    strategic = await client.patch("configmaps", "a", {"metadata": {"labels": {"extra": "y"}}},
                                   namespace=namespace, patch_type="strategic")
    assert strategic["metadata"]["labels"] == {"app": "x", "extra": "y"}

    await client.delete("configmaps", "a", namespace=namespace)
    with pytest.raises(errors.NotFoundError) as e:
        await client.get("configmaps", "a", namespace=namespace)
    assert e.value.code == 404 and e.value.name == "a"


async def test_default_namespace_comes_from_config(apiserver: ApiServerProcess, namespace: str) -> None:
    async with ApiClient(ClientConfig(server=apiserver.url, namespace=namespace)) as c:
        await c.create("configmaps", cm("defaulted"))
        assert (await c.get("configmaps", "defaulted"))["metadata"]["namespace"] == namespace
        await c.delete("configmaps", "defaulted")


async def test_typed_errors(client: ApiClient, namespace: str) -> None:
    first = await client.create("configmaps", cm("dup"), namespace=namespace)
    with pytest.raises(errors.AlreadyExistsError) as exists:
        await client.create("configmaps", cm("dup"), namespace=namespace)
    assert exists.value.code == 409 and exists.value.reason == "AlreadyExists"

    await client.patch("configmaps", "dup", {"data": {"x": "1"}}, namespace=namespace)
    with pytest.raises(errors.ConflictError):
        await client.update("configmaps", first)  # stale resourceVersion

    with pytest.raises(errors.InvalidError) as invalid:
        await client.create("configmaps", cm("Not_A_Valid_Name"), namespace=namespace)
    assert invalid.value.code == 422
    assert invalid.value.causes and invalid.value.causes[0].field == "metadata.name"

    with pytest.raises(errors.NotFoundError):
        await client.delete("configmaps", "nothing-here", namespace=namespace)
    with pytest.raises(errors.NotFoundError):
        await client.get(("example.com/v1", "widgets"), "w", namespace=namespace)
    with pytest.raises(errors.ConflictError):
        await client.delete("configmaps", "dup", namespace=namespace, preconditions={"uid": "not-its-uid"})


async def test_delete_collection_and_options(client: ApiClient, namespace: str) -> None:
    for n in ("x1", "x2", "y1"):
        await client.create("configmaps", cm(n, group=n[0]), namespace=namespace)
    deleted = await client.delete_collection("configmaps", namespace=namespace, label_selector="group=x")
    assert sorted(i["metadata"]["name"] for i in deleted["items"]) == ["x1", "x2"]
    remaining = await client.list("configmaps", namespace=namespace)
    assert [i["metadata"]["name"] for i in remaining["items"]] == ["y1"]
    await client.delete("configmaps", "y1", namespace=namespace, dry_run=True)
    await client.delete_collection("configmaps", namespace=namespace, dry_run=True)
    uid = (await client.get("configmaps", "y1", namespace=namespace))["metadata"]["uid"]
    await client.delete("configmaps", "y1", namespace=namespace, grace_period_seconds=0,
                        propagation_policy="Background", preconditions={"uid": uid})
    assert (await client.list("configmaps", namespace=namespace))["items"] == []


async def test_warning_headers(apiserver: ApiServerProcess, namespace: str) -> None:
    seen: list[str] = []
    async with ApiClient(apiserver.url, on_warning=seen.append) as c:
        body = cm("warned")
        body["bogusField"] = 1
        await c.create("configmaps", body, namespace=namespace)
        assert c.last_warnings == ['unknown field "bogusField"']
        assert seen == c.last_warnings
        await c.get("configmaps", "warned", namespace=namespace)
        assert c.last_warnings == []


async def test_paging(client: ApiClient, namespace: str) -> None:
    for i in range(5):
        await client.create("configmaps", cm(f"p{i}"), namespace=namespace)
    names: list[str] = []
    token: str | None = None
    while True:
        page = await client.list("configmaps", namespace=namespace, limit=2, continue_=token)
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if not token:
            break
    assert names == [f"p{i}" for i in range(5)]


async def test_watch_from_resource_version(client: ApiClient, namespace: str) -> None:
    created = await client.create("configmaps", cm("w"), namespace=namespace)
    rv = created["metadata"]["resourceVersion"]
    await client.patch("configmaps", "w", {"data": {"a": "1"}}, namespace=namespace)
    await client.create("configmaps", cm("other"), namespace=namespace)
    await client.delete("configmaps", "w", namespace=namespace)

    events: list[tuple[str, str]] = []
    async with client.watch("configmaps", namespace=namespace, resource_version=rv, timeout_seconds=5) as stream:
        async for etype, obj in stream:
            events.append((etype, obj["metadata"]["name"]))
            if len(events) == 3:
                break
    assert events == [("MODIFIED", "w"), ("ADDED", "other"), ("DELETED", "w")]

    # A single object by name, starting from "now" (resourceVersion unset: current state as ADDED).
    async with client.watch("configmaps", namespace=namespace, name="other", timeout_seconds=5) as stream:
        first = await stream.__anext__()
        assert first[0] == "ADDED" and first[1]["metadata"]["name"] == "other"
        await client.patch("configmaps", "other", {"data": {"b": "2"}}, namespace=namespace)
        second = await asyncio.wait_for(stream.__anext__(), 5)
        assert second[0] == "MODIFIED" and second[1]["data"] == {"b": "2"}


async def test_watch_can_ask_for_table_events(client: ApiClient, namespace: str) -> None:
    created = await client.create("configmaps", cm("t"), namespace=namespace)
    await client.patch("configmaps", "t", {"data": {"a": "1"}}, namespace=namespace)
    table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    async with client.watch("configmaps", namespace=namespace, resource_version=created["metadata"]["resourceVersion"],
                            timeout_seconds=5, accept=table_accept) as stream:
        etype, obj = await stream.__anext__()
    assert etype == "MODIFIED"
    assert obj["kind"] == "Table" and obj["rows"][0]["cells"][0] == "t"


async def test_watch_ends_at_timeout(client: ApiClient, namespace: str) -> None:
    started = time.monotonic()
    events = [e async for e in client.watch("configmaps", namespace=namespace, resource_version="0",
                                            timeout_seconds=1)]
    assert events == []
    assert 0.5 < time.monotonic() - started < 10


async def test_watch_bad_resource_version_is_typed(client: ApiClient, namespace: str) -> None:
    with pytest.raises(errors.BadRequestError):
        async for _ in client.watch("configmaps", namespace=namespace, resource_version="abc", timeout_seconds=1):
            pass


async def test_retry_on_conflict_with_concurrent_writers(client: ApiClient, namespace: str) -> None:
    await client.create("configmaps", cm("counter", {"n": "0"}), namespace=namespace)
    conflicts = 0

    async def increment() -> None:
        async def attempt() -> dict[str, Any]:
            nonlocal conflicts
            obj = await client.get("configmaps", "counter", namespace=namespace)
            obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)
            await asyncio.sleep(0)  # let the other writers read the same version
            try:
                return await client.update("configmaps", obj)
            except errors.ConflictError:
                conflicts += 1
                raise

        await retry_on_conflict(attempt, attempts=50, base_delay_s=0.005, max_delay_s=0.05)

    await asyncio.gather(*(increment() for _ in range(8)))
    final = await client.get("configmaps", "counter", namespace=namespace)
    assert final["data"]["n"] == "8"
    assert conflicts > 0  # the writers really did collide


async def test_retry_on_conflict_gives_up_and_passes_other_errors() -> None:
    calls = 0

    async def always_conflicts() -> None:
        nonlocal calls
        calls += 1
        raise errors.ConflictError(message="conflict")

    with pytest.raises(errors.ConflictError):
        await retry_on_conflict(always_conflicts, attempts=3, base_delay_s=0.001)
    assert calls == 3

    async def not_found() -> None:
        raise errors.NotFoundError(message="gone")

    with pytest.raises(errors.NotFoundError):
        await retry_on_conflict(not_found)


async def test_scale_subresource(client: ApiClient, namespace: str) -> None:
    await client.create(Deployment, deployment("web", 2), namespace=namespace)
    scale = await client.get_scale(Deployment, "web", namespace=namespace)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 2
    scale = await client.patch_scale("deployments", "web", 5, namespace=namespace)
    assert scale["spec"]["replicas"] == 5
    assert (await client.get("deployments", "web", namespace=namespace))["spec"]["replicas"] == 5


async def test_bind_and_status(client: ApiClient, namespace: str) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    created = await client.create(Pod, pod, namespace=namespace)
    status = await client.bind("p", "node-1", namespace=namespace, uid=created["metadata"]["uid"])
    assert status["status"] == "Success"
    bound = await client.get(Pod, "p", namespace=namespace)
    assert bound["spec"]["nodeName"] == "node-1"
    with pytest.raises(errors.ConflictError):
        await client.bind("p", "node-2", namespace=namespace)

    bound["status"] = {**(bound.get("status") or {}), "phase": "Running"}
    bound["spec"]["nodeName"] = "ignored-by-status-endpoint"
    written = await client.update_status(Pod, bound)
    assert written["status"]["phase"] == "Running"
    assert written["spec"]["nodeName"] == "node-1"


async def test_typed_model_helpers(client: ApiClient, namespace: str) -> None:
    made = await client.create_model(ConfigMap.model_validate(cm("typed", {"a": "b"}, tier="x")), namespace=namespace)
    assert isinstance(made, ConfigMap) and made.metadata.namespace == namespace
    got = await client.get_model(ConfigMap, "typed", namespace=namespace)
    assert got.data == {"a": "b"}
    got.data = {"a": "c"}
    again = await client.update_model(got)
    assert again.data == {"a": "c"}
    listed = await client.list_models(ConfigMap, namespace=namespace, label_selector="tier=x")
    assert [m.metadata.name for m in listed] == ["typed"]


async def test_raw_request(client: ApiClient) -> None:
    version = await client.request("GET", "/version")
    assert version["major"] == "1"
    assert await client.request("GET", "/healthz") == "ok"
    with pytest.raises(errors.NotFoundError):
        await client.request("GET", "/apis/nothing.example/v1")


async def test_connection_failure_is_typed_and_gets_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    def retries() -> list[str]:
        return [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]

    url = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.DEBUG, logger="machinery.client")
    async with ApiClient(url, get_retries=2) as c:
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError) as e:
            await c.get("configmaps", "x", namespace="default")
        assert time.monotonic() - started >= 0.3  # 0.1 + 0.2 s of backoff
        assert len(retries()) == 2, retries()
        assert isinstance(e.value, errors.ServiceUnavailableError)
        assert isinstance(e.value.__cause__, aiohttp.ClientConnectorError)  # what mkctl reads
        assert is_connection_refused(e.value.__cause__)
        caplog.clear()
        with pytest.raises(ConnectionFailedError):
            await c.create("configmaps", cm("x"), namespace="default")
        assert retries() == []  # writes are never retried (counted, not timed: a busy machine is slow)
        with pytest.raises(ConnectionFailedError):
            async for _ in c.watch("configmaps"):
                pass


class TinyServer:
    """A real HTTP server on 127.0.0.1 whose routes a test adds (to answer what the apiserver never does)."""

    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        # handler_cancellation: a client that hangs up cancels its handler (how the tests see it).
        self._runner = web.AppRunner(self.app, handler_cancellation=True)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def tiny() -> AsyncIterator[TinyServer]:
    server = TinyServer()
    yield server
    await server.stop()


async def test_non_status_error_bodies_are_still_typed(tiny: TinyServer) -> None:
    app = tiny.app

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=503, text="<html>upstream down</html>", content_type="text/html")

    async def slow_down(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "code": 429, "reason": "TooManyRequests",
                                  "message": "slow down", "details": {"retryAfterSeconds": 2}}, status=429)

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/api/v1/namespaces/n/configmaps/x"})

    app.router.add_get("/api/v1/namespaces/n/configmaps/busy", busy)
    app.router.add_get("/api/v1/namespaces/n/configmaps/x", slow_down)
    app.router.add_get("/api/v1/namespaces/n/configmaps/moved", moved)
    url = await tiny.start()
    async with ApiClient(url) as c:
        with pytest.raises(errors.ServiceUnavailableError, match="upstream down"):
            await c.get("configmaps", "busy", namespace="n")
        with pytest.raises(errors.TooManyRequestsError) as e:
            await c.get("configmaps", "x", namespace="n")
        assert e.value.retry_after_seconds == 2
        with pytest.raises(errors.ApiError, match="HTTP 302"):  # redirects are not followed (as kubectl)
            await c.get("configmaps", "moved", namespace="n")


async def test_watch_reads_long_and_split_lines(tiny: TinyServer) -> None:
    """An event far longer than aiohttp's readline() buffer, sent in pieces that split lines anywhere."""
    app = tiny.app
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"k": "x" * 1_000_000}}
    events = [{"type": "ADDED", "object": {"metadata": {"name": "a"}}}, {"type": "MODIFIED", "object": big},
              {"type": "DELETED", "object": {"metadata": {"name": "a"}}}]
    seen: dict[str, str] = {}

    async def watch(request: web.Request) -> web.StreamResponse:
        seen.update(request.query)
        seen["accept"] = request.headers.get("Accept", "")
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        wire = b"".join(orjson.dumps(e) + b"\n" for e in events) + b"\n"
        for i in range(0, len(wire), 7_001):
            await resp.write(wire[i:i + 7_001])
        # The last event without its newline: the end of the stream ends it.
        await resp.write(orjson.dumps({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}))
        await resp.write_eof()
        return resp

    app.router.add_get("/api/v1/namespaces/n/configmaps", watch)
    url = await tiny.start()
    async with ApiClient(url) as c:
        got = [e async for e in c.watch("configmaps", namespace="n", resource_version="5", timeout_seconds=3,
                                        accept="application/json;as=Table;v=v1;g=meta.k8s.io")]
    assert [t for t, _ in got] == ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
    assert got[1][1] == big
    assert seen["watch"] == "1" and seen["resourceVersion"] == "5" and seen["timeoutSeconds"] == "3"
    assert seen["accept"].startswith("application/json;as=Table")


async def test_watch_error_event_and_early_close(tiny: TinyServer) -> None:
    app = tiny.app
    closed = asyncio.Event()

    async def watch(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        if request.query.get("resourceVersion") == "1":
            await resp.write(orjson.dumps({"type": "ERROR", "object": {
                "kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}}) + b"\n")
            return resp
        await resp.write(orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": "a"}}}) + b"\n")
        try:
            await asyncio.sleep(30)  # a quiet watch: the client gives up first
        finally:
            closed.set()
        return resp

    app.router.add_get("/api/v1/namespaces/n/configmaps", watch)
    url = await tiny.start()
    async with ApiClient(url) as c:
        with pytest.raises(errors.GoneError):
            async for _ in c.watch("configmaps", namespace="n", resource_version="1"):
                pass
        async with c.watch("configmaps", namespace="n", resource_version="2") as stream:
            assert (await stream.__anext__())[0] == "ADDED"
        await asyncio.wait_for(closed.wait(), 5)  # closing the stream closed its connection


async def test_client_built_outside_a_loop_and_request_timeout(tiny: TinyServer) -> None:
    app = tiny.app

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"major": "1"}, headers={"Warning": '299 - "careful"'})

    app.router.add_get("/slow", slow)
    app.router.add_get("/version", version)
    url = await tiny.start()
    warned: list[str] = []
    # Built in a thread with no event loop (as components and mkctl do before asyncio.run).
    c = await asyncio.to_thread(lambda: ApiClient(url, timeout=0.3, get_retries=0, on_warning=warned.append))
    async with c:
        assert await c.request("GET", "/version") == {"major": "1"}
        assert c.last_warnings == ["careful"] and warned == ["careful"]
        started = time.monotonic()
        with pytest.raises(ConnectionFailedError, match="timed out") as e:
            await c.request("GET", "/slow")
        assert isinstance(e.value.__cause__, TimeoutError)
        assert time.monotonic() - started < 2
    with pytest.raises(RuntimeError):
        await c.request("GET", "/version")


# ---------------------------------------------------------------------------------- stale keep-alive connections
class KeepAliveServer:
    """A raw HTTP/1.1 server in its own threads, so it acts while the client's event loop is busy.

    It answers every request with keep-alive (no ``Connection: close``) and keeps the connection
    for the next one, until ``hang_up_idle()`` closes every connection, the way a server's
    keep-alive timeout does. With ``lose_answers`` it reads each request whole, then closes the
    connection without answering (the request arrived; its answer is lost). ``requests`` holds
    ``(method, target)`` of every request it read whole.
    """

    def __init__(self, *, lose_answers: bool = False) -> None:
        self.lose_answers = lose_answers
        self.requests: list[tuple[str, str]] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, t in self.requests if m == method and t.split("?")[0] == path)

    def hang_up_idle(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _close(conn)

    def close(self) -> None:
        _close(self._listener)
        self.hang_up_idle()
        for t in self._threads:
            t.join(5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = 0
                for h in lines[1:]:
                    name, _, value = h.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                while len(buf) < length:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                buf = buf[length:]
                method, target, _ = lines[0].split(" ", 2)
                self.requests.append((method, target))
                if self.lose_answers:
                    return
                if "watch=1" in target:
                    body = orjson.dumps({"type": "ADDED", "object": {"metadata": {"name": "a"}}}) + b"\n"
                else:
                    body = orjson.dumps({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a"}})
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
        except OSError:
            return
        finally:
            with self._lock:
                self._conns.discard(conn)
            _close(conn)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv; sends the FIN now
    except OSError:
        pass
    sock.close()


@pytest.fixture
def keepalive() -> Iterator[KeepAliveServer]:
    server = KeepAliveServer()
    yield server
    server.close()


Send = Callable[[ApiClient], Coroutine[Any, Any, Any]]
CM_PATH = "/api/v1/namespaces/n/configmaps"
# (label, method, path, send): each verb as components send it; the bodies are one bytes write.
VERBS: list[tuple[str, str, str, Send]] = [
    ("create", "POST", CM_PATH, lambda c: c.create("configmaps", cm("a"), namespace="n")),
    ("patch", "PATCH", f"{CM_PATH}/a", lambda c: c.patch("configmaps", "a", {"data": {"k": "v"}}, namespace="n")),
    ("update", "PUT", f"{CM_PATH}/a", lambda c: c.update("configmaps", {**cm("a"), "metadata": {"name": "a"}},
                                                       namespace="n")),
    ("delete with options", "DELETE", f"{CM_PATH}/a",
     lambda c: c.delete("configmaps", "a", namespace="n", grace_period_seconds=0)),
    ("delete", "DELETE", f"{CM_PATH}/a", lambda c: c.delete("configmaps", "a", namespace="n")),
    ("get", "GET", f"{CM_PATH}/a", lambda c: c.get("configmaps", "a", namespace="n")),
    ("watch", "GET", CM_PATH, lambda c: _first_event(c)),
]


async def _first_event(c: ApiClient) -> Any:
    async with c.watch("configmaps", namespace="n") as stream:
        return await stream.__anext__()


async def on_a_connection_the_server_closed(server: KeepAliveServer, c: ApiClient,
                                            send: Send, *, in_a_task: bool) -> Any:
    """Send a request on a pooled keep-alive connection the server closed while this loop was busy.

    The server's FIN then waits unread, so aiohttp's own check (``transport.is_closing()``) still
    finds the connection alive. Sent from a new task (as ``asyncio.gather`` does: the bench's
    concurrent phase), the request takes the connection, the loop then reads the FIN and closes
    the transport, and only then does aiohttp's body-writing task run: "Cannot write to closing
    transport", nothing sent. Awaited directly, the request is written at once into the dead
    socket and the server's close comes back as ServerDisconnectedError.
    """
    await c.request("GET", "/version")  # leaves one idle keep-alive connection in the pool
    server.hang_up_idle()
    time.sleep(0.2)  # blocking on purpose: the loop is busy while the FIN arrives
    return await (asyncio.create_task(send(c)) if in_a_task else send(c))


@pytest.mark.parametrize("in_a_task", [True, False], ids=["from a new task", "awaited"])
@pytest.mark.parametrize("label,method,path,send", VERBS, ids=[v[0] for v in VERBS])
async def test_every_verb_survives_a_keepalive_connection_the_server_closed(
        keepalive: KeepAliveServer, label: str, method: str, path: str,
        send: Send, in_a_task: bool) -> None:
    """The pooled connection is checked before use (its unread FIN): the request goes out once, on a new one."""
    async with ApiClient(keepalive.url, get_retries=0) as c:
        for _ in range(2):
            assert await on_a_connection_the_server_closed(keepalive, c, send, in_a_task=in_a_task)
    assert keepalive.count(method, path) == 2


@pytest.mark.parametrize("label,method,path,send", [v for v in VERBS if v[0] not in ("get", "watch", "delete")],
                         ids=[v[0] for v in VERBS if v[0] not in ("get", "watch", "delete")])
async def test_a_write_never_sent_is_sent_again(keepalive: KeepAliveServer, monkeypatch: pytest.MonkeyPatch,
                                                label: str, method: str, path: str,
                                                send: Send) -> None:
    """The race the pooled-connection check cannot see (the FIN lands just after it): aiohttp
    refuses to write on the closing transport, and the write, never sent, is sent again."""
    monkeypatch.setattr(client_module, "_socket_dropped", lambda transport: False)
    refused: list[BaseException] = []
    real = client_module._resend_reason

    def spy(method: str, e: BaseException, resent: int) -> str | None:
        refused.append(e)
        return real(method, e, resent)

    monkeypatch.setattr(client_module, "_resend_reason", spy)
    async with ApiClient(keepalive.url, get_retries=0) as c:
        assert await on_a_connection_the_server_closed(keepalive, c, send, in_a_task=True)
    assert keepalive.count(method, path) == 1
    # It was the case this test is about: aiohttp's refusal to write, on the first attempt.
    assert len(refused) == 1 and isinstance(refused[0], aiohttp.ClientOSError)
    assert "Cannot write to closing transport" in str(refused[0].__cause__)


@pytest.mark.parametrize("label,method,path,send", [v for v in VERBS if v[0] in ("get", "watch")],
                         ids=["get", "watch"])
async def test_a_read_the_server_hung_up_on_is_sent_again_at_once(
        keepalive: KeepAliveServer, monkeypatch: pytest.MonkeyPatch, label: str, method: str, path: str,
        send: Send) -> None:
    """Go's errServerClosedIdle: a replayable request whose connection closed before an answer is resent."""
    monkeypatch.setattr(client_module, "_socket_dropped", lambda transport: False)
    async with ApiClient(keepalive.url, get_retries=0) as c:  # no GET backoff retry: this is the resend
        assert await on_a_connection_the_server_closed(keepalive, c, send, in_a_task=False)
    assert keepalive.count(method, path) == 1


@pytest.mark.parametrize("label,method,path,send", VERBS, ids=[v[0] for v in VERBS])
async def test_a_request_sent_whose_answer_is_lost(label: str, method: str, path: str,
                                                   send: Send) -> None:
    """The server read the whole request, then closed without answering: it may have been applied.

    A write is not sent again (aiohttp itself would resend a PUT or a DELETE); a read is, once at
    once (then the GET backoff would follow, here get_retries=0), and the error is typed.
    """
    server = KeepAliveServer(lose_answers=True)
    try:
        async with ApiClient(server.url, get_retries=0) as c:
            with pytest.raises(ConnectionFailedError) as e:
                await send(c)
        assert isinstance(e.value.__cause__, aiohttp.ServerDisconnectedError)
        assert server.count(method, path) == (2 if method == "GET" else 1)
    finally:
        server.close()
