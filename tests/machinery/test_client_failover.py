"""ApiClient with several API server addresses (``--server http://a,http://b``).

Against two real API server processes on one etcd: requests go to the first until it is killed,
then to the second (creates included: a refused connection sent nothing); a watch broken by the
kill raises, and the next watch reconnects to the other address and sees new events. Against
small local servers: an answered request (a 503) is never sent elsewhere, and neither is a write
whose connection was closed after it went out (it may have been applied).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Iterator

import aiohttp
import pytest

from machinery import errors
from machinery.client import ApiClient, ConnectionFailedError, may_fail_over, split_servers
from tests.cluster import ApiServerProcess, Etcd, free_port


@pytest.mark.parametrize(("text", "expected"), [
    ("http://a:8080", ["http://a:8080"]),
    ("https://a:6443/, https://b:6443", ["https://a:6443", "https://b:6443"]),
    ("http://a:1,,http://b:2,", ["http://a:1", "http://b:2"]),
])
def test_split_servers(text: str, expected: list[str]) -> None:
    assert split_servers(text) == expected


def _connector_error() -> aiohttp.ClientConnectorError:
    key: Any = type("Key", (), {"ssl": False, "host": "a", "port": 1})()
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


@pytest.mark.parametrize(("method", "error", "expected"), [
    ("POST", _connector_error(), True),  # refused: nothing was sent
    ("POST", aiohttp.ConnectionTimeoutError(), True),  # no connection in time: nothing was sent
    ("GET", aiohttp.ServerDisconnectedError(), True),  # a read closed before any answer: safe again
    ("POST", aiohttp.ServerDisconnectedError(), False),  # a write that went out: maybe applied
    ("PUT", ConnectionResetError(104, "reset"), False),
    ("GET", aiohttp.ClientPayloadError("cut"), False),  # an answer began: not this rule
])
def test_which_failures_go_to_the_next_address(method: str, error: BaseException, expected: bool) -> None:
    assert may_fail_over(method, error) is expected


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[ApiServerProcess, ApiServerProcess]]:
    etcd = Etcd.start()
    a = ApiServerProcess.start(etcd.url)
    b = ApiServerProcess.start(etcd.url)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()
        etcd.stop()


def _cm(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}}


def test_requests_and_watches_move_to_the_other_server_when_one_is_killed(
        two_servers: tuple[ApiServerProcess, ApiServerProcess]) -> None:
    a, b = two_servers

    async def scenario() -> None:
        async with ApiClient(f"{a.url},{b.url}", timeout=10, get_retries=0) as client:
            await client.create("configmaps", _cm("before"), namespace="default")
            assert client._base == a.url
            watch = client.watch("configmaps", namespace="default", resource_version="0")
            first = await asyncio.wait_for(watch.__anext__(), 10)
            assert first[0] == "ADDED"
            a.proc.kill()
            a.proc.wait(10)
            with pytest.raises(ConnectionFailedError):  # the stream breaks; the informer would watch again
                while True:
                    await asyncio.wait_for(watch.__anext__(), 10)
            await watch.aclose()
            assert client._base == b.url  # the broken watch moved the client on
            client._current = 0  # and even from the dead address, a create is sent once, to b
            created = await client.create("configmaps", _cm("after"), namespace="default")
            assert created["metadata"]["name"] == "after" and client._base == b.url
            client._current = 0
            listed = await client.list("configmaps", namespace="default")
            assert {"before", "after"} <= {i["metadata"]["name"] for i in listed["items"]}
            rv = listed["metadata"]["resourceVersion"]
            client._current = 0
            async with client.watch("configmaps", namespace="default", resource_version=rv) as again:
                await client.patch("configmaps", "after", {"data": {"k": "w"}}, namespace="default")
                etype, obj = await asyncio.wait_for(again.__anext__(), 10)
            assert (etype, obj["metadata"]["name"], obj["data"]) == ("MODIFIED", "after", {"k": "w"})

    asyncio.run(scenario())


async def _serve(handler: Any) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def test_an_answer_or_a_sent_write_is_never_sent_to_the_other_server(
        two_servers: tuple[ApiServerProcess, ApiServerProcess]) -> None:
    _, b = two_servers
    b_alive = b.proc.poll() is None
    assert b_alive

    async def answer_503(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503,"message":"busy"}'
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    async def read_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.05)
        writer.transport.abort()  # a reset after the request arrived: it may have been applied

    async def scenario() -> None:
        busy, busy_url = await _serve(answer_503)
        hangup, hangup_url = await _serve(read_then_hang_up)
        try:
            async with ApiClient(f"{busy_url},{b.url}", timeout=10, get_retries=0) as client:
                with pytest.raises(errors.ServiceUnavailableError) as e:
                    await client.get("configmaps", "before", namespace="default")
                assert not isinstance(e.value, ConnectionFailedError) and client._base == busy_url
            async with ApiClient(f"{hangup_url},{b.url}", timeout=10, get_retries=0) as client:
                with pytest.raises(ConnectionFailedError):
                    await client.create("configmaps", _cm("maybe-applied"), namespace="default")
                async with ApiClient(b.url) as direct:
                    with pytest.raises(errors.NotFoundError):  # b never saw it
                        await direct.get("configmaps", "maybe-applied", namespace="default")
        finally:
            busy.close()
            hangup.close()

    asyncio.run(scenario())


def test_an_unreachable_first_address_costs_one_refused_connect() -> None:
    dead = free_port()  # nothing listens there
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", dead)) != 0

    async def served(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}')
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        server, url = await _serve(served)
        try:
            async with ApiClient(f"http://127.0.0.1:{dead},{url}", timeout=5, get_retries=0) as client:
                assert await client.request("POST", "/api/v1/namespaces/default/configmaps", json={}) == {}
                assert client._base == url
        finally:
            server.close()

    asyncio.run(scenario())


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
