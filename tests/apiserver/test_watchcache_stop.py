"""Stopping a watch cache when aetcd's watch stream turns the cancel into a failure
(apiserver/storage/etcd.py): a cancelled watch can come out of aetcd as a connection failure. The
storage must give the caller its CancelledError, not "etcd is unavailable", or a caller that
retries on that (here the watch cache) retries forever instead of stopping; CI once saw a test
session's event loop hang at its close on such a cache.

The aetcd client is replaced by one whose watch waits until cancelled and then fails as gRPC does;
everything above it (EtcdStorage, WatchCache) is the real code. Last, a stop that is itself
cancelled while it waits for the cache to end still ends the cache's watches (CI saw a deleted
CRD's watch stay open)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aetcd.exceptions as etcd_errors

from apiserver.cache import WatchCache
from apiserver.storage.etcd import EtcdStorage
from apiserver.storage.interface import StorageUnavailableError, WatchEvent


async def _cancel_becomes_failure() -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise etcd_errors.ConnectionFailedError("failed to connect to all addresses") from None


class CancelBecomesFailure:
    """An aetcd client with nothing stored: its watch waits and, when cancelled, fails; its get waits
    for ``gate``."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def get(self, key: bytes) -> Any:
        self.calls += 1
        await self.gate

    async def get_prefix(self, prefix: bytes) -> Any:
        return SimpleNamespace(kvs=[], header=SimpleNamespace(revision=1))

    async def watch(self, prefix: bytes, **_: Any) -> Any:
        self.calls += 1

        class Watch:
            def __aiter__(self) -> Any:
                return self

            async def __anext__(self) -> Any:
                await _cancel_becomes_failure()

            async def cancel(self) -> None:
                pass
        return Watch()

    async def close(self) -> None:
        pass


def storage_over(client: CancelBecomesFailure) -> EtcdStorage:
    storage = EtcdStorage("http://127.0.0.1:1")  # one endpoint: a failed read is still sent twice
    storage._clients = [client]  # type: ignore[list-item]
    return storage


async def test_a_call_that_fails_as_it_is_cancelled_is_cancelled_not_retried() -> None:
    client = CancelBecomesFailure()
    task = asyncio.create_task(storage_over(client).get(b"/registry/x/a"))
    while not client.calls:
        await asyncio.sleep(0)
    # The call fails, and in the same turn of the loop its task is cancelled.
    client.gate.set_exception(etcd_errors.ConnectionFailedError("failed to connect to all addresses"))
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    assert done and task.cancelled(), None if task.cancelled() else task.exception()
    assert client.calls == 1


async def test_a_cancel_that_comes_out_as_a_storage_failure_still_stops_the_cache() -> None:
    client = CancelBecomesFailure()
    cache = WatchCache(storage_over(client), b"/registry/x/", retry_seconds=0.01)
    await cache.start()
    await asyncio.wait_for(cache.ready.wait(), 2)
    await asyncio.sleep(0.05)
    assert cache._task is not None
    cache._task.cancel()
    done, _ = await asyncio.wait({cache._task}, timeout=2)
    assert done, "the cache went on retrying after it was cancelled"
    assert cache._task.cancelled()
    assert client.calls == 1


async def test_a_real_storage_failure_is_still_retried() -> None:
    class FailsTwice:
        """A storage with nothing stored whose watch fails twice, then waits."""
        failures = watches = 0

        async def list(self, prefix: bytes) -> tuple[list[Any], int]:
            return [], 1

        async def watch(self, prefix: bytes, *, from_revision: int) -> AsyncIterator[WatchEvent]:
            if self.failures < 2:
                self.failures += 1
                raise StorageUnavailableError("etcd is unavailable: connection refused")
            self.watches += 1
            await asyncio.Event().wait()
            yield WatchEvent("PUT", b"", b"", 0)  # pragma: no cover - never reached

    storage = FailsTwice()
    cache = WatchCache(storage, b"/registry/x/", retry_seconds=0.01)  # type: ignore[arg-type]
    await cache.start()
    for _ in range(200):
        if storage.watches:
            break
        await asyncio.sleep(0.01)
    assert (storage.failures, storage.watches) == (2, 1)  # retried after each failure, then watching
    await cache.stop(timeout=2)
    assert cache._task is not None and cache._task.cancelled()


async def test_a_stop_cancelled_while_it_waits_still_ends_the_watches() -> None:
    class SlowToStop:
        """A storage with nothing stored whose watch takes its time to end when cancelled."""

        async def list(self, prefix: bytes) -> tuple[list[Any], int]:
            return [], 1

        async def watch(self, prefix: bytes, *, from_revision: int) -> AsyncIterator[WatchEvent]:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await asyncio.sleep(1)
                raise
            yield WatchEvent("PUT", b"", b"", 0)  # pragma: no cover - never reached

    cache = WatchCache(SlowToStop(), b"/registry/x/")  # type: ignore[arg-type]
    await cache.start()
    await asyncio.wait_for(cache.ready.wait(), 2)
    watcher = cache.watch(from_revision=None, matches=lambda _obj: True)
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(cache.stop(timeout=5))
    await asyncio.sleep(0.05)
    stopping.cancel()  # as a CRD's cleanup task is cancelled while it uninstalls the resource
    await asyncio.wait({stopping}, timeout=2)
    assert stopping.cancelled()
    assert watcher.closed and await asyncio.wait_for(watcher.queue.get(), 1) is None  # the watch has ended
