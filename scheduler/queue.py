"""The scheduling queue: pods ready to try (active) and pods that fit nowhere (unschedulable).

Data flow: pod informer events -> ``add(key)`` (a pending pod of ours; duplicates merge in the
shared ``WorkQueue``) -> the scheduling loop ``get()``s one key at a time and calls ``done`` ->
a pod that fits nowhere goes to ``add_unschedulable`` and waits there, out of the loop's way,
until ``move_all_to_active()`` (called on cluster changes: a node added or made more useful, a
pod deleted or finished, a failed bind's resources given back) or until it has waited
``max_unschedulable_s`` (a slow periodic flush; never a busy loop). Moving a pod honours its
backoff (``initial_backoff_s * 2**attempts``, capped), so a stream of cluster changes retries a
hopeless pod at most once per backoff period, as Kubernetes' backoff queue does.

Metrics (``scheduler.metrics``): every pod that enters a queue is counted by queue and event
(``scheduler_queue_incoming_pods_total``); the queue remembers when each pod first entered and how
many attempts it had, for ``scheduler_pod_scheduling_sli_duration_seconds``; its sizes are read at
scrape time (``pending_sizes``: active, backoff, unschedulable, gated).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from machinery.workqueue import WorkQueue
from scheduler.metrics import incoming


@dataclass
class _Waiting:
    since: float
    attempts: int


class SchedulingQueue:
    def __init__(self, *, initial_backoff_s: float = 1.0, max_backoff_s: float = 10.0,
                 max_unschedulable_s: float = 60.0) -> None:
        self.active: WorkQueue[str] = WorkQueue(name="scheduler", base_delay_s=initial_backoff_s, max_delay_s=max_backoff_s)
        self.unschedulable: dict[str, _Waiting] = {}
        self._attempts: dict[str, int] = {}
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self.max_unschedulable_s = max_unschedulable_s
        self.moves = 0  # how many move_all_to_active calls moved something (for tests and logs)
        self._entered: dict[str, float] = {}  # key -> when it first entered the queue (monotonic)
        self._tries: dict[str, int] = {}  # key -> scheduling attempts so far

    def add(self, key: str) -> None:
        """A pod that may be schedulable now (new, or changed)."""
        was_unschedulable = self.unschedulable.pop(key, None) is not None
        if key not in self._entered:
            self._entered[key] = time.monotonic()
            incoming("active", "PodAdd")
        elif was_unschedulable:
            incoming("active", "PodUpdate")
        self.active.add(key)

    def add_backoff(self, key: str, event: str = "ScheduleAttemptFailure") -> None:
        """Try again after the pod's backoff (a failed bind, an error)."""
        self.unschedulable.pop(key, None)
        self._entered.setdefault(key, time.monotonic())
        self.active.add_rate_limited(key)
        incoming("backoff", event)

    def add_unschedulable(self, key: str) -> None:
        attempts = self._attempts.get(key, 0) + 1
        self._attempts[key] = attempts
        self.unschedulable[key] = _Waiting(time.monotonic(), attempts)
        incoming("unschedulable", "ScheduleAttemptFailure")

    def attempt(self, key: str) -> int:
        """One more scheduling attempt of ``key`` starts; returns how many it has had."""
        tries = self._tries.get(key, 0) + 1
        self._tries[key] = tries
        return tries

    def tries(self, key: str) -> int:
        return self._tries.get(key, 0)

    def since_entered(self, key: str, now: float | None = None) -> float:
        """Seconds since ``key`` first entered the queue (0 if unknown)."""
        entered = self._entered.get(key)
        return 0.0 if entered is None else (time.monotonic() if now is None else now) - entered

    def pending_sizes(self) -> dict[str, int]:
        """For ``scheduler_pending_pods``: ready to try, waiting out a backoff, unschedulable, gated."""
        return {"active": len(self.active), "backoff": self.active.num_waiting(),
                "unschedulable": len(self.unschedulable), "gated": 0}

    def backoff(self, attempts: int) -> float:
        if attempts <= 0:
            return 0.0
        return min(self._initial_backoff_s * 2 ** min(attempts - 1, 30), self._max_backoff_s)

    def remove(self, key: str) -> None:
        """The pod is bound, deleted or no longer ours: stop tracking it."""
        self.unschedulable.pop(key, None)
        self._attempts.pop(key, None)
        self._entered.pop(key, None)
        self._tries.pop(key, None)
        self.active.forget(key)

    def is_unschedulable(self, key: str) -> bool:
        return key in self.unschedulable

    def move_all_to_active(self, event: str = "ClusterChange") -> int:
        """The cluster changed (``event`` says how): every unschedulable pod gets another try (after
        its backoff: it goes to the backoff queue first if that has not passed yet)."""
        if not self.unschedulable:
            return 0
        now = time.monotonic()
        waiting, self.unschedulable = self.unschedulable, {}
        backing_off = 0
        for key, w in waiting.items():
            delay = w.since + self.backoff(w.attempts) - now
            backing_off += delay > 0
            self.active.add_after(key, max(0.0, delay))
        self.moves += 1
        if backing_off:
            incoming("backoff", event, backing_off)
        if len(waiting) > backing_off:
            incoming("active", event, len(waiting) - backing_off)
        return len(waiting)

    def flush_stale(self) -> int:
        """Move pods that waited ``max_unschedulable_s`` without any cluster change to active."""
        now = time.monotonic()
        stale = [k for k, w in self.unschedulable.items() if now - w.since >= self.max_unschedulable_s]
        for key in stale:
            del self.unschedulable[key]
            self.active.add(key)
        if stale:
            incoming("active", "UnschedulableTimeout", len(stale))
        return len(stale)

    async def flush_forever(self, period_s: float = 5.0) -> None:
        while True:
            await asyncio.sleep(min(period_s, self.max_unschedulable_s))
            self.flush_stale()

    async def get(self) -> str:
        return await self.active.get()

    def done(self, key: str) -> None:
        self.active.done(key)


__all__ = ["SchedulingQueue"]
