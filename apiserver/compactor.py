"""Periodic etcd compaction, so history does not grow without bound.

Every ``interval`` seconds: find the newest revision that is at least ``retention`` seconds old
(from the revision samples the watch caches record as events arrive), compact etcd there, and
tell every cache that history at or below it is gone, so a watch from an older
resourceVersion answers 410 Expired, as it would against Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

from .cache import WatchCache
from .storage import Storage, StorageError

log = logging.getLogger(__name__)


class Compactor:
    def __init__(self, storage: Storage, caches: Iterable[WatchCache] | Mapping[str, WatchCache], *,
                 interval: float = 60.0, retention: float = 300.0) -> None:
        # A mapping is read at every compaction: the registry adds and removes caches as CRDs come and go.
        self._storage = storage
        self._caches = caches
        self.interval = interval
        self.retention = retention
        self.compacted = 0
        self._samples: list[tuple[float, int]] = []

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.compact_once()
            except StorageError as e:
                log.warning("compaction skipped: %s", e)

    async def compact_once(self, *, now: float | None = None) -> int:
        """Compact to the newest revision older than the retention window; returns it (0: none)."""
        now = time.monotonic() if now is None else now
        self._samples.append((now, await self._storage.current_revision()))
        cutoff = now - self.retention
        old = [rev for t, rev in self._samples if t <= cutoff]
        # Keep the newest expired sample (first, so the list stays in time order) and the young ones.
        self._samples = ([(cutoff, old[-1])] if old else []) + [(t, r) for t, r in self._samples if t > cutoff]
        target = old[-1] if old else 0
        if target <= self.compacted:
            return 0
        await self._storage.compact(target)
        self.compacted = target
        caches = self._caches.values() if isinstance(self._caches, Mapping) else self._caches
        for c in list(caches):
            c.compacted(target)
        log.info("compacted etcd at revision %d", target)
        return target
