"""Controller expectations: do not act on a key again until the effects of the last action are seen.

Data flow (client-go's ``UIDTrackingControllerExpectations``): a controller about to create N pods
calls ``expect_creations(key, N)``; about to delete pods ``expect_deletions(key, pod_keys)`` ->
informer handlers report what the watch shows (``creation_observed(key)`` on a pod add,
``deletion_observed(key, pod_key)`` on a pod delete or on a deletionTimestamp appearing) ->
``satisfied(key)`` is true once every expected add/delete was seen, or after ``ttl_s`` (a watch
event can be lost, e.g. across a relist; then the controller re-lists from its cache anyway), or
when nothing was ever expected. The reconcile only creates/deletes when ``satisfied``, so a slow
watch never causes a second round of creations (over-creation).

Pure bookkeeping with an injectable clock; no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Kubernetes' ExpectationsTimeout.
DEFAULT_TTL_S = 5 * 60.0


@dataclass
class _Record:
    add: int
    delete: int
    timestamp: float
    deleting: set[str] = field(default_factory=set)


class Expectations:
    """Pending creations/deletions per controller key (``namespace/name``)."""

    def __init__(self, *, ttl_s: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._records: dict[str, _Record] = {}

    # ------------------------------------------------------------------ raising
    def expect_creations(self, key: str, count: int) -> None:
        """Replace any record of ``key`` with ``count`` pending creations."""
        self._records[key] = _Record(add=count, delete=0, timestamp=self._clock())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        """Replace any record of ``key`` with pending deletions of exactly these pods."""
        keys = set(pod_keys)
        self._records[key] = _Record(add=0, delete=len(keys), timestamp=self._clock(), deleting=keys)

    # ------------------------------------------------------------------ lowering
    def creation_observed(self, key: str) -> None:
        rec = self._records.get(key)
        if rec is not None:
            rec.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        """Count the deletion of ``pod_key`` once (a pod seen deleting and then deleted counts once)."""
        rec = self._records.get(key)
        if rec is not None and pod_key in rec.deleting:
            rec.deleting.discard(pod_key)
            rec.delete -= 1

    def lower(self, key: str, *, adds: int = 0) -> None:
        """Forget ``adds`` creations that were never attempted or failed (nothing will be observed)."""
        rec = self._records.get(key)
        if rec is not None:
            rec.add -= adds

    def delete(self, key: str) -> None:
        """Drop the record (the controller object is gone)."""
        self._records.pop(key, None)

    # ------------------------------------------------------------------ reading
    def satisfied(self, key: str) -> bool:
        rec = self._records.get(key)
        if rec is None:
            return True
        if rec.add <= 0 and rec.delete <= 0:
            return True
        return self._clock() - rec.timestamp > self._ttl_s

    def pending(self, key: str) -> tuple[int, int]:
        """``(adds, deletes)`` still expected for ``key`` (``(0, 0)`` if none)."""
        rec = self._records.get(key)
        return (max(rec.add, 0), max(rec.delete, 0)) if rec is not None else (0, 0)
