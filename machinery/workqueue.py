"""The key work queue every controller uses: client-go's ``workqueue`` semantics on asyncio.

Data flow: informer event handlers call ``add(key)`` (or ``add_after`` / ``add_rate_limited`` for
retries) -> workers ``await get()`` a key, reconcile it, then call ``done(key)`` (and ``forget`` on
success). Three sets give the guarantees controllers rely on:

- ``queue`` (FIFO order) holds keys ready to hand out, each at most once;
- ``dirty`` holds keys that need processing, so adding a key already waiting is a no-op;
- ``processing`` holds keys a worker holds now; re-adding one of those only marks it dirty, and
  ``done`` puts it back on the queue, so no key is ever handed to two workers at once.

Delayed adds (``add_after``) keep one timer per key, at the earliest requested time. Failures are
counted per key for exponential backoff (``base_delay_s * 2**failures``, capped at
``max_delay_s``) until ``forget``.

Shutdown follows client-go: ``shutdown()`` drops later adds and pending delayed adds, but
``get()`` keeps handing out keys already queued and raises ``QueueShutDown`` once the queue is
drained (immediately if it is empty).

The queue must be used from one event loop; it is not thread-safe (nothing here needs threads).

Metrics (client-go's workqueue metrics, component-base's names, label ``name``): a queue made with
a ``name`` (``Controller`` names its queue after itself: ``deployment``, ``endpoints``, ...) counts
on its hot path only plain integers (two bisected bucket counts per key: prometheus_client's own
``Histogram.observe`` costs several times more) -> ``workqueue_adds_total``
(a key that becomes dirty), ``workqueue_retries_total`` (every ``add_after``, as client-go's
delaying queue), ``workqueue_queue_duration_seconds`` (add to ``get``) and
``workqueue_work_duration_seconds`` (``get`` to ``done``); ``workqueue_depth`` (keys waiting to be
handed out, re-adds of keys in process included), ``workqueue_unfinished_work_seconds`` and
``workqueue_longest_running_processor_seconds`` are computed at scrape time from the live queues
(``_QueueCollector``), with no timer. Queues of one name share their series (a controller that is
restarted, e.g. after a leader change, keeps counting). An unnamed queue (tests) records nothing.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from machinery.metricfamilies import Buckets
from machinery.metrics import REGISTRY

K = TypeVar("K", bound=Hashable)

DEFAULT_BASE_DELAY_S = 0.005
DEFAULT_MAX_DELAY_S = 1000.0

# component-base's ExponentialBuckets(10e-7, 10, 10): 1 us .. 1000 s.
WORKQUEUE_BUCKETS = tuple(10.0 ** e for e in range(-6, 4))

_LE = [floatToGoString(b) for b in WORKQUEUE_BUCKETS] + ["+Inf"]


class _NameStats:
    """What the queues of one name count between scrapes (shared by every queue of that name)."""

    __slots__ = ("adds", "retries", "queue_duration", "work_duration", "queues")

    def __init__(self, name: str) -> None:
        self.adds = 0
        self.retries = 0
        self.queue_duration = Buckets(WORKQUEUE_BUCKETS)
        self.work_duration = Buckets(WORKQUEUE_BUCKETS)
        self.queues: weakref.WeakSet[WorkQueue[Any]] = weakref.WeakSet()


_STATS: dict[str, _NameStats] = {}


def _stats(name: str) -> _NameStats:
    stats = _STATS.get(name)
    if stats is None:
        stats = _STATS[name] = _NameStats(name)
    return stats


class _QueueCollector(Collector):
    """The counters and the scrape-time gauges of every named queue."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("workqueue_depth", "Current depth of workqueue", labels=["name"])
        adds = CounterMetricFamily("workqueue_adds", "Total number of adds handled by workqueue", labels=["name"])
        retries = CounterMetricFamily("workqueue_retries", "Total number of retries handled by workqueue",
                                      labels=["name"])
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has done that is in progress and hasn't been observed by work_duration. "
            "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the "
            "rate at which this increases.", labels=["name"])
        longest = GaugeMetricFamily("workqueue_longest_running_processor_seconds",
                                    "How many seconds has the longest running processor for workqueue been running.",
                                    labels=["name"])
        queued = HistogramMetricFamily("workqueue_queue_duration_seconds",
                                       "How long in seconds an item stays in workqueue before being requested.",
                                       labels=["name"])
        worked = HistogramMetricFamily("workqueue_work_duration_seconds",
                                       "How long in seconds processing an item from workqueue takes.", labels=["name"])
        for name, stats in list(_STATS.items()):
            queues = list(stats.queues)
            running = [q.processing_seconds() for q in queues]
            depth.add_metric([name], sum(len(q._dirty) for q in queues))
            adds.add_metric([name], stats.adds)
            retries.add_metric([name], stats.retries)
            unfinished.add_metric([name], sum(sum(r) for r in running))
            longest.add_metric([name], max((max(r) for r in running if r), default=0.0))
            queued.add_metric([name], stats.queue_duration.cumulative(_LE), stats.queue_duration.sum)
            worked.add_metric([name], stats.work_duration.cumulative(_LE), stats.work_duration.sum)
        yield from (depth, adds, retries, queued, worked, unfinished, longest)


REGISTRY.register(_QueueCollector())


class QueueShutDown(Exception):
    """Raised by ``WorkQueue.get`` once the queue is shut down and drained."""


class WorkQueue(Generic[K]):
    """A de-duplicating FIFO of keys with delayed and rate-limited (backoff) re-adds."""

    def __init__(
        self,
        *,
        name: str = "",
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if base_delay_s < 0 or max_delay_s < base_delay_s:
            raise ValueError("need 0 <= base_delay_s <= max_delay_s")
        self.name = name
        self._clock = clock
        # Metrics (None for an unnamed queue): when each key was added, when its processing began.
        self._stats: _NameStats | None = None
        self._added_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        if name:
            self._stats = _stats(name)
            self._stats.queues.add(self)
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._failures: dict[K, int] = {}
        # key -> (loop time it becomes ready, the timer that adds it)
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    # ---------------------------------------------------------------- adding

    def add(self, key: K) -> None:
        """Mark ``key`` as needing work; no-op if already waiting or after shutdown."""
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if self._stats is not None:
            self._stats.adds += 1
            self._added_at[key] = self._clock()
        if key in self._processing:
            # ``done`` re-queues it; handing it out now would give one key to two workers.
            return
        self._queue.append(key)
        self._wake_one_getter()

    def add_after(self, key: K, delay_s: float) -> None:
        """Add ``key`` after ``delay_s`` seconds; an earlier pending add of the same key wins."""
        if self._shutting_down:
            return
        if self._stats is not None:
            self._stats.retries += 1
        if delay_s <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready_at = loop.time() + delay_s
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= ready_at:
                return
            pending[1].cancel()
        handle = loop.call_at(ready_at, self._fire_waiting, key)
        self._waiting[key] = (ready_at, handle)

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after its backoff delay, and count one more failure for it."""
        self.add_after(key, self.next_backoff(key))

    def next_backoff(self, key: K) -> float:
        """Consume one failure of ``key`` and return the delay it earns (client-go's
        ItemExponentialFailureRateLimiter.When)."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Past ~2**64 the float would overflow before the cap applies.
        if failures > 64:
            return self._max_delay_s
        return min(self._base_delay_s * (2**failures), self._max_delay_s)

    def forget(self, key: K) -> None:
        """Reset the backoff of ``key`` (call it after a successful reconcile)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        """How many rate-limited re-adds ``key`` has had since the last ``forget``."""
        return self._failures.get(key, 0)

    # ---------------------------------------------------------------- handing out

    async def get(self) -> K:
        """Wait for the next key and mark it processing; the caller must call ``done(key)``.

        Raises ``QueueShutDown`` after ``shutdown()`` once no queued key is left.
        """
        while not self._queue:
            if self._shutting_down:
                raise QueueShutDown()
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # If we were woken for a key and then cancelled, pass the wake-up on.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one_getter()
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if self._stats is not None:
            now = self._clock()
            added = self._added_at.pop(key, None)
            if added is not None:
                self._stats.queue_duration.observe(now - added)
            self._started_at[key] = now
        return key

    def done(self, key: K) -> None:
        """Finish processing ``key``; if it was re-added meanwhile, queue it again."""
        self._processing.discard(key)
        if self._stats is not None:
            started = self._started_at.pop(key, None)
            if started is not None:
                self._stats.work_duration.observe(self._clock() - started)
        if key in self._dirty:
            self._queue.append(key)
            self._wake_one_getter()

    # ---------------------------------------------------------------- lifecycle and state

    def shutdown(self) -> None:
        """Stop accepting keys and drop pending delayed adds; waiting getters then drain or stop."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        """Keys ready to hand out (not those processing or waiting on a delay)."""
        return len(self._queue)

    def len(self) -> int:
        """Same as ``len(queue)``, named like client-go's ``Len()``."""
        return len(self._queue)

    def is_processing(self, key: K) -> bool:
        return key in self._processing

    def num_waiting(self) -> int:
        """Keys scheduled by ``add_after`` / ``add_rate_limited`` that are not yet added."""
        return len(self._waiting)

    def processing_seconds(self) -> list[float]:
        """How long each key in process has been so far (a named queue; scrape time only)."""
        now = self._clock()
        return [now - started for started in list(self._started_at.values())]

    # ---------------------------------------------------------------- internals

    def _fire_waiting(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def _wake_one_getter(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
