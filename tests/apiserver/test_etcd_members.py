"""Three etcd members as one cluster, and EtcdStorage / the API server given all three addresses.

Real etcd processes (the local binary, as tests/cluster.py) on free loopback ports. Killing the
member the storage talks to (SIGKILL, mid-way through a write loop) loses no acknowledged write:
reads, writes and the watch move to the next member (a write may fail with a clear storage error
while the cluster elects a new leader; those are the only ones allowed to be missing). Through
the API server (``--etcd-servers a,b,c``) the same holds for HTTP creates answered 201.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from apiserver.storage import StorageUnavailableError
from apiserver.storage.etcd import EtcdStorage, never_sent, parse_endpoints
from cli.processes import etcd_command, free_port, stop, wait_http
from tests.cluster import ApiServerProcess


@dataclass
class Member:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class EtcdCluster:
    members: list[Member]
    root: Path

    @property
    def endpoints(self) -> str:
        return ",".join(m.url for m in self.members)

    @classmethod
    def start(cls, size: int = 3) -> "EtcdCluster":
        root = Path(tempfile.mkdtemp(prefix="minik8s-etcd-cluster-"))
        peers = {f"m{i}": free_port() for i in range(1, size + 1)}
        initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in peers.items())
        members = []
        for name, peer_port in peers.items():
            url = f"http://127.0.0.1:{free_port()}"
            argv = etcd_command(data_dir=root / name, client_url=url, peer_port=peer_port, name=name)
            argv[argv.index("--initial-cluster") + 1] = initial
            argv += ["--initial-cluster-state", "new", "--initial-cluster-token", root.name]
            log = root / f"{name}.log"
            members.append(Member(name, url, subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT), log))
        cluster = cls(members, root)
        for m in members:  # healthy only once the members elected a leader together
            wait_http(f"{m.url}/health", m.proc, m.log)
        return cluster

    def stop(self) -> None:
        for m in self.members:
            stop(m.proc)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[EtcdCluster]:
    c = EtcdCluster.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize(("text", "expected"), [
    ("http://a:2379", [("a", 2379)]),
    ("http://a:1,b:2, http://c", [("a", 1), ("b", 2), ("c", 2379)]),
])
def test_parse_endpoints(text: str, expected: list[tuple[str, int]]) -> None:
    assert parse_endpoints(text) == expected


def test_never_sent_only_for_failures_to_connect() -> None:
    import aetcd.exceptions as etcd_errors  # noqa: PLC0415 - the storage module's own error types
    assert never_sent(etcd_errors.ConnectionFailedError("failed to connect to all addresses; last error: ..."))
    assert not never_sent(etcd_errors.ConnectionFailedError("Socket closed"))
    assert not never_sent(etcd_errors.ConnectionTimeoutError("Deadline Exceeded"))


def test_storage_survives_the_member_it_talks_to_being_killed(cluster: EtcdCluster) -> None:
    async def scenario() -> None:
        store = EtcdStorage(cluster.endpoints, timeout=3)
        seen: list[bytes] = []
        acked: list[bytes] = []
        start = await store.current_revision()

        async def watch_all() -> None:
            rev = start + 1
            while True:  # what the watch cache does: resume from the last revision
                try:
                    async for ev in store.watch(b"/ha/", from_revision=rev):
                        seen.append(ev.key)
                        rev = ev.revision + 1
                except StorageUnavailableError:
                    await asyncio.sleep(0.1)

        watcher = asyncio.create_task(watch_all())
        try:
            for i in range(120):
                if i == 40:
                    victim = cluster.members[0]  # the storage's current endpoint
                    victim.proc.kill()
                    victim.proc.wait(10)
                key = f"/ha/k{i:03d}".encode()
                try:
                    await store.create(key, b"v")
                    acked.append(key)
                except StorageUnavailableError:
                    await asyncio.sleep(0.2)  # a leader election; never more than a few of these
            assert len(acked) >= 100, f"only {len(acked)} of 120 writes acknowledged"
            items, _ = await store.list(b"/ha/")
            assert set(acked) <= {kv.key for kv in items}
            assert (await store.get(acked[-1])).value == b"v"
            deadline = time.monotonic() + 15
            while not set(acked) <= set(seen) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert set(acked) <= set(seen), "the watch missed acknowledged writes after the failover"
        finally:
            watcher.cancel()
            await store.close()

    asyncio.run(scenario())


def test_apiserver_with_three_members_loses_no_acknowledged_create() -> None:
    c = EtcdCluster.start()
    server = ApiServerProcess.start(c.endpoints)
    try:
        acked: list[str] = []
        with httpx.Client(base_url=server.url, timeout=15) as http:
            for i in range(90):
                if i == 30:
                    c.members[0].proc.kill()
                    c.members[0].proc.wait(10)
                r = http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": f"cm-{i}"}})
                if r.status_code == 201:
                    acked.append(f"cm-{i}")
                else:  # only a clear Status while the cluster elects a leader
                    assert r.status_code in (503, 504) and r.json()["kind"] == "Status", r.text
            assert len(acked) >= 80, f"only {len(acked)} of 90 creates answered 201"
            listed = http.get("/api/v1/namespaces/default/configmaps").json()
            assert set(acked) <= {item["metadata"]["name"] for item in listed["items"]}
            assert http.get("/readyz").status_code == 200
    finally:
        server.stop()
        c.stop()


async def test_health_moves_to_an_endpoint_that_answers(etcd: object) -> None:
    """/readyz's check: the current endpoint (one that never existed, as etcd-2 of the ha profile in a
    plain `docker compose up`) does not answer, another does: healthy, and that one becomes current."""
    live = getattr(etcd, "url")
    silent = socket.create_server(("127.0.0.1", 0))  # connects (the kernel's backlog), never answers
    store = EtcdStorage(f"http://127.0.0.1:{silent.getsockname()[1]},{live}", timeout=2)
    try:
        assert await store.healthy(timeout=1.0)
        assert await store.current_revision() > 0  # served by the live endpoint without a failover
        dead_only = EtcdStorage(f"http://127.0.0.1:{free_port()}", timeout=2)
        try:
            assert not await dead_only.healthy(timeout=0.5)
        finally:
            await dead_only.close()
    finally:
        await store.close()
        silent.close()


async def test_a_read_that_timed_out_is_sent_once_more_even_with_one_endpoint() -> None:
    """A busy etcd that misses the timeout once does not fail a read (a GET answered 503 in CI);
    a write that may have been applied is not sent again, and the error names what happened."""
    store = EtcdStorage(f"http://127.0.0.1:{free_port()}", timeout=1)
    calls: list[object] = []

    async def slow_once(client: object) -> str:
        calls.append(client)
        if len(calls) == 1:
            raise asyncio.TimeoutError()
        return "read"
    try:
        assert await store._attempt(slow_once, read=True) == "read"
        assert len(calls) == 2
        calls.clear()
        with pytest.raises(StorageUnavailableError, match="^etcd is unavailable: TimeoutError$"):
            await store._attempt(slow_once, read=False)
        assert len(calls) == 1
    finally:
        await store.close()
