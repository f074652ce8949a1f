"""Stopping a watch cache whose etcd watch turns the cancel into a storage failure
(apiserver/cache.py): a gRPC call that is cancelled can come out as "etcd is unavailable"
(asyncio.wait_for, aetcd). The cache must stop all the same, not retry forever; CI once saw a
test session's event loop hang at its close on such a cache."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from apiserver.cache import WatchCache
from apiserver.storage.interface import StorageUnavailableError, WatchEvent


class CancelBecomesFailure:
    """A storage with nothing stored whose watch waits and, when cancelled, raises the failure."""

    def __init__(self) -> None:
        self.watches = 0

    async def list(self, prefix: bytes) -> tuple[list[Any], int]:
        return [], 1

    async def watch(self, prefix: bytes, *, from_revision: int) -> AsyncIterator[WatchEvent]:
        self.watches += 1
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise StorageUnavailableError("etcd is unavailable: CancelledError") from None
        yield WatchEvent("PUT", b"", b"", 0)  # pragma: no cover - never reached


async def test_a_cancel_that_comes_out_as_a_storage_failure_still_stops_the_cache() -> None:
    storage = CancelBecomesFailure()
    cache = WatchCache(storage, b"/registry/x/", retry_seconds=0.01)  # type: ignore[arg-type]
    await cache.start()
    await asyncio.wait_for(cache.ready.wait(), 2)
    await asyncio.sleep(0.05)
    assert cache._task is not None
    cache._task.cancel()
    done, _ = await asyncio.wait({cache._task}, timeout=2)
    assert done, "the cache went on retrying after it was cancelled"
    assert cache._task.cancelled()
    assert storage.watches == 1


async def test_a_real_storage_failure_is_still_retried() -> None:
    class FailsTwice(CancelBecomesFailure):
        failures = 0

        async def watch(self, prefix: bytes, *, from_revision: int) -> AsyncIterator[WatchEvent]:
            if self.failures < 2:
                self.failures += 1
                raise StorageUnavailableError("etcd is unavailable: connection refused")
            async for ev in super().watch(prefix, from_revision=from_revision):
                yield ev  # pragma: no cover

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
