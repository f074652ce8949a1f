"""The controller runner shared by the scheduler, controllers, kubelet and gitops.

Data flow: informer handlers call ``Controller.enqueue(key)`` -> the ``WorkQueue`` merges
duplicates -> ``workers`` tasks take one key at a time and await ``reconcile(key)`` -> the outcome
decides what happens to the key:

- ``None`` or ``Result.done()``: ``forget`` (reset backoff), ``done``;
- ``Result.after(s)``: ``forget``, ``add_after(key, s)``, ``done`` (look again later, e.g. to poll
  something no informer watches);
- an exception: logged with the key, ``add_rate_limited`` (exponential backoff), ``done``.

Reconcilers are level-triggered: they read the world from caches by key and converge, so being
called again for a key (or once for many events) is always safe. The queue guarantees one key is
never reconciled by two workers at once, and a failing reconcile never ends its worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from machinery import errors
from machinery.workqueue import QueueShutDown, WorkQueue

K = TypeVar("K", bound=Hashable)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing (``done``) or another look after N seconds."""

    requeue_after: float | None = None

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError("requeue_after must be >= 0")

    @staticmethod
    def done() -> Result:
        return Result()

    @staticmethod
    def after(seconds: float) -> Result:
        return Result(requeue_after=seconds)


Reconcile = Callable[[K], Awaitable[Result | None]]
"""What a controller calls per key; returning None means ``Result.done()``."""


class Controller(Generic[K]):
    """Runs ``workers`` tasks that feed queued keys to ``reconcile``.

    ``run()`` blocks until ``stop()`` (or until it is cancelled); ``stop()`` shuts the queue down,
    lets workers finish the keys already queued (client-go's drain semantics), and waits for them;
    with ``timeout_s`` it cancels whatever is still running after that long.
    """

    def __init__(
        self,
        name: str,
        reconcile: Reconcile[K],
        *,
        workers: int = 1,
        queue: WorkQueue[K] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.name = name
        self._reconcile = reconcile
        self._workers = workers
        self.queue: WorkQueue[K] = queue if queue is not None else WorkQueue(name=name)  # its metrics' label
        self._tasks: list[asyncio.Task[None]] = []
        self._log = log.getChild(name)

    def enqueue(self, key: K) -> None:
        """Ask for ``key`` to be reconciled (merged with any pending request for it)."""
        self.queue.add(key)

    def enqueue_after(self, key: K, delay_s: float) -> None:
        self.queue.add_after(key, delay_s)

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def run(self) -> None:
        """Start the workers and wait until they end (after ``stop()``)."""
        if self._tasks:
            raise RuntimeError(f"controller {self.name} is already running")
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"{self.name}-worker-{i}") for i in range(self._workers)
        ]
        self._log.info("started %d worker(s)", self._workers)
        try:
            # wait(), not gather(): workers cancelled by stop(timeout_s=...) must end run() quietly.
            await asyncio.wait(self._tasks)
        except asyncio.CancelledError:
            # Cancelling run() is a hard stop: nothing may keep reconciling behind our back.
            self.queue.shutdown()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise
        finally:
            self._log.info("stopped")

    async def stop(self, *, timeout_s: float | None = None) -> None:
        """Shut the queue down and wait for the workers; cancel them after ``timeout_s``."""
        self.queue.shutdown()
        tasks = list(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self._process(key)
            finally:
                self.queue.done(key)

    async def _process(self, key: K) -> None:
        try:
            result = await self._reconcile(key)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the worker itself is being stopped
            # A CancelledError from inside reconcile (e.g. an awaited future was cancelled) is
            # just another failure of this key.
            self._failed(key, "reconcile was cancelled")
            return
        except errors.ConflictError as e:
            # Our cache was a write behind (client-go's controllers requeue these quietly): the
            # next attempt, with backoff, reads the newer version.
            self._log.info("reconcile %r: %s; retrying", key, e)
            self.queue.add_rate_limited(key)
            return
        except Exception:
            self._log.exception("reconcile %r failed", key)
            self._failed(key, None)
            return
        self.queue.forget(key)
        if result is not None and result.requeue_after is not None:
            self.queue.add_after(key, result.requeue_after)

    def _failed(self, key: K, reason: str | None) -> None:
        if reason is not None:
            self._log.error("reconcile %r failed: %s", key, reason)
        self.queue.add_rate_limited(key)
        self._log.debug("requeued %r with backoff (%d failures)", key, self.queue.num_requeues(key))
