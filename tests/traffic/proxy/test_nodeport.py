"""``minik8s proxy`` as a real process: NodePort and LoadBalancer listeners relaying to endpoints.

One cluster per module (real etcd, apiserver and the proxy process); the backends are aiohttp
servers and a UDP echo in this test process, on 127.0.0.1 free ports, each answering its own name.
The Services are selectorless with hand-written EndpointSlices pointing at those backends (the
EndpointSlice strategy accepts loopback addresses, as Kubernetes' does; only core/v1 Endpoints
refuse them) and explicit ``nodePort`` values checked free first. Everything stays on loopback.
"""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import threading
import time
import uuid
from dataclasses import replace
from typing import Any, Iterator

import httpx
import pytest
from aiohttp import web

from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.waiting import wait_for

LB_IP = "127.240.0.77"


def _port_is_free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((address, port))
            except OSError:
                return False
    return True


def free_node_port(taken: set[int] = set()) -> int:  # noqa: B006 - one set per test run on purpose
    while True:
        port = random.randint(30000, 32767)
        if port not in taken and _port_is_free("127.0.0.1", port):
            taken.add(port)
            return port


class Backends:
    """HTTP servers answering their own name and UDP echoes answering ``name:data``, on a loop of
    their own in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._runners: list[web.AppRunner] = []
        self._udp: list[asyncio.DatagramTransport] = []

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def http(self, name: str) -> int:
        async def start() -> int:
            async def hello(_request: web.Request) -> web.Response:
                return web.Response(text=name)
            app = web.Application()
            app.router.add_get("/", hello)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self._runners.append(runner)
            return port
        return int(self._run(start()))

    def udp_echo(self, name: str) -> int:
        class Echo(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(name.encode() + b":" + data, addr)  # type: ignore[attr-defined]

        async def start() -> int:
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
            self._udp.append(transport)
            return int(transport.get_extra_info("sockname")[1])
        return int(self._run(start()))

    def stop(self) -> None:
        async def stop() -> None:
            for r in self._runners:
                await r.cleanup()
            for t in self._udp:
                t.close()
        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class ProxyCluster:
    def __init__(self) -> None:
        self.etcd = Etcd.start()
        self.api = ApiServerProcess.start(self.etcd.url)
        self.health_port = free_port()
        self.proxy = ComponentProcess.start("proxy", "--server", self.api.url, "--node-name", "proxy-node",
                                            "--health-port", str(self.health_port), "--connect-timeout", "0.5",
                                            log_level="debug")
        self.http = httpx.Client(base_url=self.api.url, timeout=30)
        self.backends = Backends()

    def diagnostics(self) -> str:
        return f"--- proxy (exit {self.proxy.proc.poll()}):\n{self.proxy.logs()[-6000:]}"

    def stop(self) -> None:
        self.http.close()
        self.proxy.stop()
        self.backends.stop()
        self.api.stop()
        self.etcd.stop()

    # ------------------------------------------------------------------ objects
    def service(self, ns: str, name: str, *ports: dict[str, Any], type_: str = "NodePort",
                **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                "spec": {"type": type_, "ports": list(ports), **spec}}
        r = self.http.post(f"/api/v1/namespaces/{ns}/services", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def slice(self, ns: str, service: str, port: int, *, protocol: str = "TCP", port_name: str = "") -> str:
        """An EndpointSlice for ``service`` with one endpoint, 127.0.0.1 at a backend's port (one slice
        per backend: a slice has one port list for all its endpoints, and all of them are 127.0.0.1)."""
        name = f"{service}-{uuid.uuid4().hex[:6]}"
        body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                "metadata": {"name": name, "namespace": ns, "labels": {"kubernetes.io/service-name": service}},
                "ports": [{"name": port_name, "port": port, "protocol": protocol}],
                "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}
        r = self.http.post(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices", json=body)
        assert r.status_code == 201, r.text
        return name

    def delete_slice(self, ns: str, name: str) -> None:
        r = self.http.delete(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}")
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def cluster() -> Iterator[ProxyCluster]:
    c = ProxyCluster()
    try:
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{c.health_port}/healthz").status_code == 200, 30,
                 "the proxy's /healthz", c.diagnostics)
        yield c
    finally:
        c.stop()


@pytest.fixture
def ns(cluster: ProxyCluster) -> Iterator[str]:
    name = f"p-{uuid.uuid4().hex[:8]}"
    r = cluster.http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    cluster.http.delete(f"/api/v1/namespaces/{name}")


def get(address: str, port: int) -> str:
    """One request on a new connection (so each is balanced on its own)."""
    with httpx.Client(timeout=2) as c:
        return c.get(f"http://{address}:{port}/", headers={"Connection": "close"}).text


def names(address: str, port: int, n: int) -> list[str]:
    return [get(address, port) for _ in range(n)]


def refused_at_once(address: str, port: int) -> float | None:
    """Seconds until a new connection fails (refused, reset or closed unanswered); None if it is served."""
    start = time.monotonic()
    try:
        with socket.create_connection((address, port), timeout=2) as s:
            s.settimeout(2)
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            if s.recv(1024):
                return None
    except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        pass
    except TimeoutError:
        return None
    return time.monotonic() - start


def test_nodeport_reaches_every_backend_and_follows_endpoint_changes(cluster: ProxyCluster, ns: str) -> None:
    a, b = cluster.backends.http("backend-a"), cluster.backends.http("backend-b")
    node_port = free_node_port()
    cluster.service(ns, "web", {"name": "http", "port": 80, "nodePort": node_port})
    slice_a = cluster.slice(ns, "web", a, port_name="http")
    slice_b = cluster.slice(ns, "web", b, port_name="http")
    wait_for(lambda: set(names("127.0.0.1", node_port, 6)) == {"backend-a", "backend-b"}, 10,
             "both backends through the NodePort", cluster.diagnostics)

    # No endpoint left: a new connection fails at once instead of hanging.
    cluster.delete_slice(ns, slice_a)
    cluster.delete_slice(ns, slice_b)
    took = wait_for(lambda: refused_at_once("127.0.0.1", node_port), 5, "a refused connection", cluster.diagnostics)
    assert took < 0.2, took

    # Back again: served within a second.
    start = time.monotonic()
    cluster.slice(ns, "web", a, port_name="http")
    wait_for(lambda: get("127.0.0.1", node_port) == "backend-a", 5, "backend-a again", cluster.diagnostics,
             interval=0.02, retry_on=(httpx.TransportError,))
    assert time.monotonic() - start < 1.0

    # Deleting the Service closes its listener.
    assert cluster.http.delete(f"/api/v1/namespaces/{ns}/services/web").status_code == 200

    def closed() -> bool:
        try:
            socket.create_connection(("127.0.0.1", node_port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        return False
    wait_for(closed, 5, "the listener closed", cluster.diagnostics)


def test_client_ip_affinity_sticks_to_one_backend(cluster: ProxyCluster, ns: str) -> None:
    a, b = cluster.backends.http("sticky-a"), cluster.backends.http("sticky-b")
    node_port = free_node_port()
    cluster.service(ns, "sticky", {"port": 80, "nodePort": node_port}, sessionAffinity="ClientIP",
                    sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}})
    cluster.slice(ns, "sticky", a)
    cluster.slice(ns, "sticky", b)
    # both endpoints known to the proxy: without affinity, two requests would see both
    wait_for(lambda: f"{ns}/sticky: 2 endpoint(s)" in cluster.proxy.logs(), 5, "two endpoints", cluster.diagnostics)
    seen = set(names("127.0.0.1", node_port, 8))
    assert len(seen) == 1, seen


def test_udp_nodeport_relays_datagrams_and_replies(cluster: ProxyCluster, ns: str) -> None:
    echo = cluster.backends.udp_echo("echo-1")
    node_port = free_node_port()
    cluster.service(ns, "dns", {"name": "dns", "port": 53, "protocol": "UDP", "nodePort": node_port})
    cluster.slice(ns, "dns", echo, protocol="UDP", port_name="dns")

    def ask(payload: bytes) -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.5)
            s.sendto(payload, ("127.0.0.1", node_port))
            try:
                return s.recvfrom(2048)[0]
            except (TimeoutError, ConnectionRefusedError):
                return b""
    assert wait_for(lambda: ask(b"hello"), 10, "a UDP answer", cluster.diagnostics) == b"echo-1:hello"
    # one client socket, several datagrams: one session, all answered
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for i in range(5):
            s.sendto(b"n%d" % i, ("127.0.0.1", node_port))
            assert s.recvfrom(2048)[0] == b"echo-1:n%d" % i


def test_load_balancer_ingress_ip_answers_at_the_service_port(cluster: ProxyCluster, ns: str) -> None:
    a = cluster.backends.http("lb-backend")
    node_port, port = free_node_port(), free_port()
    assert _port_is_free(LB_IP, port)
    cluster.service(ns, "lb", {"port": port, "nodePort": node_port}, type_="LoadBalancer")
    cluster.slice(ns, "lb", a)
    r = cluster.http.patch(f"/api/v1/namespaces/{ns}/services/lb/status",
                           json={"status": {"loadBalancer": {"ingress": [{"ip": LB_IP}]}}},
                           headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert wait_for(lambda: get(LB_IP, port), 10, "the LoadBalancer address", cluster.diagnostics) == "lb-backend"
    assert get("127.0.0.1", node_port) == "lb-backend"  # and its NodePort


def test_port_in_use_is_reported_and_retried(cluster: ProxyCluster, ns: str) -> None:
    a = cluster.backends.http("late")
    node_port = free_node_port()
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", node_port))
    squatter.listen()
    try:
        cluster.service(ns, "late", {"port": 80, "nodePort": node_port})
        cluster.slice(ns, "late", a)

        def event() -> list[dict[str, Any]]:
            items = cluster.http.get(f"/api/v1/namespaces/{ns}/events").json()["items"]
            return [e for e in items if e.get("reason") == "PortNotAvailable"]
        found = wait_for(event, 10, "a PortNotAvailable event", cluster.diagnostics)
        assert found[0]["involvedObject"]["name"] == "late" and found[0]["type"] == "Warning"
        assert str(node_port) in found[0]["message"]
    finally:
        squatter.close()
    # the proxy retries (on the next change, and on its own every few seconds)
    assert wait_for(lambda: get("127.0.0.1", node_port), 10, "the port taken over", cluster.diagnostics) == "late"
    assert cluster.proxy.proc.poll() is None


# ---------------------------------------------------------------------- the relays alone, in process

def _loop_factory(name: str) -> Any:
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop
    return asyncio.new_event_loop


async def _relay(*backend_ports: int) -> tuple[Any, int]:
    from traffic.proxy.listeners import Listener
    from traffic.proxy.userspace import RelaySettings, TcpRelay
    from traffic.servicemap import Endpoint, ServicePort

    port = free_port()
    sp = ServicePort(namespace="t", service="s", port_name="", protocol="TCP", port=80, type="NodePort",
                     node_port=port, endpoints=tuple(Endpoint(ip="127.0.0.1", port=p) for p in backend_ports))
    relay = TcpRelay(Listener("127.0.0.1", port, "TCP"), sp, settings=RelaySettings(connect_timeout=0.5))
    await relay.start()
    return relay, port


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_relay_half_close_server_first_failover_and_reset(loop: str) -> None:
    async def main() -> None:
        async def answer_at_eof(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.read()  # until the client's half-close
            writer.write(b"got %d bytes" % len(data))
            writer.close()

        async def speak_first(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"220 hello\r\n")
            await writer.drain()
            writer.close()

        eof_server = await asyncio.start_server(answer_at_eof, "127.0.0.1", 0)
        first_server = await asyncio.start_server(speak_first, "127.0.0.1", 0)
        dead = free_port()  # nothing listens here: refused, then the next endpoint is tried
        eof_port = eof_server.sockets[0].getsockname()[1]
        first_port = first_server.sockets[0].getsockname()[1]

        relay, port = await _relay(dead, eof_port)
        for _ in range(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x" * 300_000)
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 5) == b"got 300000 bytes"
            writer.close()
        relay.retarget(replace(relay.service_port, endpoints=()))  # the last endpoint left
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        start = time.monotonic()
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(reader.read(), 2)
        assert time.monotonic() - start < 0.2
        writer.close()
        await relay.close()

        relay, port = await _relay(first_port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == b"220 hello\r\n"  # sent before any client byte
        writer.close()
        await relay.close()
        for s in (eof_server, first_server):
            s.close()

    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        runner.run(main())


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_udp_sessions_follow_endpoints_and_expire(loop: str) -> None:
    from traffic.proxy.listeners import Listener
    from traffic.proxy.userspace import RelaySettings, UdpRelay
    from traffic.servicemap import Endpoint, ServicePort

    async def main() -> None:
        lp = asyncio.get_running_loop()

        class Echo(asyncio.DatagramProtocol):
            def __init__(self, name: bytes) -> None:
                self.name = name

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: Any) -> None:
                self.transport.sendto(self.name + b":" + data, addr)  # type: ignore[attr-defined]

        echoes = [(await lp.create_datagram_endpoint(functools.partial(Echo, n), local_addr=("127.0.0.1", 0)))[0]
                  for n in (b"a", b"b")]
        ports = [t.get_extra_info("sockname")[1] for t in echoes]
        port = free_port()
        sp = ServicePort(namespace="t", service="u", port_name="", protocol="UDP", port=53, type="NodePort",
                         node_port=port, endpoints=tuple(Endpoint(ip="127.0.0.1", port=p) for p in ports))
        relay = UdpRelay(Listener("127.0.0.1", port, "UDP"), sp, settings=RelaySettings(udp_idle_timeout=0.3))
        await relay.start()
        answers: asyncio.Queue[bytes] = asyncio.Queue()

        class Client(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: Any) -> None:
                answers.put_nowait(data)

        client, _ = await lp.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", port))
        client.sendto(b"1")
        first = await asyncio.wait_for(answers.get(), 2)
        client.sendto(b"2")
        assert (await asyncio.wait_for(answers.get(), 2))[:1] == first[:1]  # one session, one endpoint
        assert len(relay.sessions) == 1
        # its endpoint leaves: the session goes, the next datagram finds the other endpoint
        relay.retarget(replace(sp, endpoints=tuple(e for e in sp.endpoints
                                                   if e.port != ports[0 if first[:1] == b"a" else 1])))
        assert not relay.sessions
        client.sendto(b"3")
        third = await asyncio.wait_for(answers.get(), 2)
        assert third[:1] != first[:1] and third.endswith(b":3")
        await asyncio.sleep(0.6)
        assert not relay.sessions  # idle past udp_idle_timeout
        client.close()
        await relay.close()
        for t in echoes:
            t.close()

    with asyncio.Runner(loop_factory=_loop_factory(loop)) as runner:
        runner.run(main())
