"""apiserver/probes.py: consistent GETs that arrive together share one probe, sent after they all arrived.

A prober stands in for etcd with a gate per call, so the test decides when each probe returns and
sees what was asked and when; then concurrent GETs through two API servers' registries over real
etcd read what the other server just wrote (read-your-writes across servers with shared probes).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import AsyncIterator

import pytest

from apiserver.probes import SharedProbe
from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage import Probe
from apiserver.storage.etcd import EtcdStorage
from tests.cluster import Etcd

PREFIX = b"/registry/core/configmaps/"


class GatedProber:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, bool]] = []
        self.gates: list[asyncio.Future[Probe]] = []

    async def probe(self, key: bytes, *, prefix: bool) -> Probe:
        self.calls.append((key, prefix))
        gate: asyncio.Future[Probe] = asyncio.get_running_loop().create_future()
        self.gates.append(gate)
        return await gate


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_alone_a_get_probes_its_own_key() -> None:
    prober = GatedProber()
    shared = SharedProbe(prober, PREFIX)
    task = asyncio.create_task(shared.probe(PREFIX + b"ns/a"))
    await settle()
    prober.gates[0].set_result(Probe(10, 1, 7))
    assert await task == (Probe(10, 1, 7), PREFIX + b"ns/a", False)
    assert prober.calls == [(PREFIX + b"ns/a", False)]
    # idle again: the next GET probes its own key too
    task = asyncio.create_task(shared.probe(PREFIX + b"ns/b"))
    await settle()
    assert prober.calls[-1] == (PREFIX + b"ns/b", False)
    prober.gates[-1].set_result(Probe(11, 1, 11))
    await task


async def test_gets_arriving_together_share_the_next_probe() -> None:
    prober = GatedProber()
    shared = SharedProbe(prober, PREFIX)
    first = asyncio.create_task(shared.probe(PREFIX + b"ns/a"))
    await settle()
    waiting = [asyncio.create_task(shared.probe(PREFIX + f"ns/{n}".encode())) for n in "bcd"]
    await settle()
    assert len(prober.calls) == 1  # nothing sent for them while the first probe is in flight
    prober.gates[0].set_result(Probe(10, 3, 9))
    await settle()
    assert prober.calls == [(PREFIX + b"ns/a", False), (PREFIX, True)]  # one probe of the whole prefix
    late = asyncio.create_task(shared.probe(PREFIX + b"ns/e"))  # arrived after the shared probe was sent
    await settle()
    prober.gates[1].set_result(Probe(12, 4, 12))
    assert [await t for t in waiting] == [(Probe(12, 4, 12), PREFIX, True)] * 3
    assert (await first)[2] is False
    await settle()
    assert prober.calls[-1] == (PREFIX, True) and len(prober.calls) == 3  # the late one gets the probe after
    assert not late.done()
    prober.gates[2].set_result(Probe(13, 4, 12))
    assert await late == (Probe(13, 4, 12), PREFIX, True)


async def test_a_failed_shared_probe_fails_every_waiter() -> None:
    prober = GatedProber()
    shared = SharedProbe(prober, PREFIX)
    first = asyncio.create_task(shared.probe(PREFIX + b"ns/a"))
    await settle()
    waiting = [asyncio.create_task(shared.probe(PREFIX + b"ns/b")) for _ in range(2)]
    await settle()
    prober.gates[0].set_result(Probe(1, 0, 0))
    await settle()
    prober.gates[1].set_exception(OSError("etcd away"))
    for t in waiting:
        with pytest.raises(OSError):
            await t
    await first
    # and the next GET starts afresh with its own probe
    again = asyncio.create_task(shared.probe(PREFIX + b"ns/c"))
    await settle()
    assert prober.calls[-1] == (PREFIX + b"ns/c", False)
    prober.gates[-1].set_result(Probe(2, 0, 0))
    await again


# ---------------------------------------------------------------------------- two API servers, real etcd
@pytest.fixture(scope="module")
async def registries(etcd: Etcd) -> AsyncIterator[tuple[Registry, Registry]]:
    stores = [EtcdStorage(etcd.url), EtcdStorage(etcd.url)]
    regs = [Registry(s, default_resources()) for s in stores]
    for r in regs:
        await r.start()
    yield regs[0], regs[1]
    for r in regs:
        await r.stop()
    for s in stores:
        await s.close()


async def test_concurrent_gets_read_the_other_servers_writes(registries: tuple[Registry, Registry]) -> None:
    a, b = registries
    ns_res = a.resources.lookup("", "v1", "namespaces")
    cm = a.resources.lookup("", "v1", "configmaps")
    assert ns_res is not None and cm is not None
    ns = f"probes-{uuid.uuid4().hex[:8]}"
    await a.create(ns_res, None, {"metadata": {"name": ns}})
    for round_ in range(5):
        names = [f"cm-{round_}-{i}" for i in range(16)]
        # written through b, read at once through a: 16 GETs at a time share a's probes
        written = await asyncio.gather(*(b.create(cm, ns, {"metadata": {"name": n}, "data": {"r": str(round_)}})
                                         for n in names))
        got = await asyncio.gather(*(a.get(cm, ns, n) for n in names))
        for w, g in zip(written, got):
            assert g.obj["metadata"]["resourceVersion"] == w.obj["metadata"]["resourceVersion"]
