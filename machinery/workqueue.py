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
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

DEFAULT_BASE_DELAY_S = 0.005
DEFAULT_MAX_DELAY_S = 1000.0


class QueueShutDown(Exception):
    """Raised by ``WorkQueue.get`` once the queue is shut down and drained."""


class WorkQueue(Generic[K]):
    """A de-duplicating FIFO of keys with delayed and rate-limited (backoff) re-adds."""

    def __init__(
        self,
        *,
        base_delay_s: float = DEFAULT_BASE_DELAY_S,
        max_delay_s: float = DEFAULT_MAX_DELAY_S,
    ) -> None:
        if base_delay_s < 0 or max_delay_s < base_delay_s:
            raise ValueError("need 0 <= base_delay_s <= max_delay_s")
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
        if key in self._processing:
            # ``done`` re-queues it; handing it out now would give one key to two workers.
            return
        self._queue.append(key)
        self._wake_one_getter()

    def add_after(self, key: K, delay_s: float) -> None:
        """Add ``key`` after ``delay_s`` seconds; an earlier pending add of the same key wins."""
        if self._shutting_down:
            return
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
        return key

    def done(self, key: K) -> None:
        """Finish processing ``key``; if it was re-added meanwhile, queue it again."""
        self._processing.discard(key)
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
