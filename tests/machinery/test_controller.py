"""Controller runner: outcomes of reconcile drive forget / requeue-after / backoff; workers survive."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

import pytest

from machinery.controller import Controller, Result
from machinery.workqueue import WorkQueue


async def _until(cond: Callable[[], bool], timeout: float = 1.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


def _start(ctrl: Controller[str]) -> asyncio.Task[None]:
    return asyncio.create_task(ctrl.run())


@pytest.mark.parametrize(
    ("result", "requeue_after"),
    [(Result(), None), (Result.done(), None), (Result.after(2.5), 2.5), (Result(requeue_after=0), 0)],
)
def test_result_constructors(result: Result, requeue_after: float | None) -> None:
    assert result.requeue_after == requeue_after


def test_result_is_frozen_and_rejects_negative() -> None:
    with pytest.raises(AttributeError):
        Result.done().requeue_after = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        Result.after(-1)


def test_controller_rejects_zero_workers() -> None:
    async def reconcile(key: str) -> None:
        return None

    with pytest.raises(ValueError):
        Controller("c", reconcile, workers=0)


@pytest.mark.parametrize("outcome", [None, Result.done()])
async def test_success_forgets_backoff(outcome: Result | None) -> None:
    seen: list[str] = []

    async def reconcile(key: str) -> Result | None:
        seen.append(key)
        return outcome

    queue: WorkQueue[str] = WorkQueue()
    queue.next_backoff("a")  # an earlier failure
    ctrl = Controller("ok", reconcile, queue=queue)
    task = _start(ctrl)
    ctrl.enqueue("a")
    await _until(lambda: seen == ["a"] and not queue.is_processing("a"))
    assert queue.num_requeues("a") == 0
    await asyncio.sleep(0.02)
    assert seen == ["a"]  # not run again
    await ctrl.stop()
    await task


async def test_failure_is_retried_with_growing_delay_then_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.get_running_loop()
    calls: list[float] = []
    requeues: list[int] = []
    queue: WorkQueue[str] = WorkQueue(base_delay_s=0.02, max_delay_s=1.0)

    async def reconcile(key: str) -> None:
        calls.append(loop.time())
        requeues.append(queue.num_requeues(key))
        if len(calls) <= 2:
            raise RuntimeError("apiserver unavailable")

    ctrl = Controller("flaky", reconcile, queue=queue)
    task = _start(ctrl)
    with caplog.at_level(logging.ERROR, logger="machinery.controller"):
        ctrl.enqueue("ns/web")
        await _until(lambda: len(calls) == 3 and not queue.is_processing("ns/web"))
    assert requeues == [0, 1, 2]
    first_gap, second_gap = calls[1] - calls[0], calls[2] - calls[1]
    assert first_gap >= 0.018  # base delay
    assert second_gap >= 0.038  # doubled
    assert queue.num_requeues("ns/web") == 0  # success forgot the failures
    failures = [r for r in caplog.records if "ns/web" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)  # logged with key and traceback
    await ctrl.stop()
    await task


async def test_requeue_after_reruns_after_about_the_delay() -> None:
    loop = asyncio.get_running_loop()
    calls: list[float] = []

    async def reconcile(key: str) -> Result:
        calls.append(loop.time())
        return Result.after(0.05) if len(calls) == 1 else Result.done()

    queue: WorkQueue[str] = WorkQueue()
    queue.next_backoff("k")
    ctrl = Controller("poller", reconcile, queue=queue)
    task = _start(ctrl)
    ctrl.enqueue("k")
    await _until(lambda: len(calls) == 2)
    assert 0.045 <= calls[1] - calls[0] < 0.5
    assert queue.num_requeues("k") == 0  # a requeue-after is not a failure
    await ctrl.stop()
    await task


async def test_worker_survives_every_kind_of_failure() -> None:
    outcomes: dict[str, list[str]] = defaultdict(list)

    async def reconcile(key: str) -> None:
        outcomes[key].append("run")
        if len(outcomes[key]) == 1:
            if key == "raise":
                raise KeyError(key)
            if key == "cancelled":
                fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                fut.cancel()
                await fut  # a CancelledError that is not the worker being stopped

    ctrl = Controller("sturdy", reconcile, workers=1, queue=WorkQueue(base_delay_s=0.001, max_delay_s=0.01))
    task = _start(ctrl)
    for key in ("raise", "cancelled", "fine"):
        ctrl.enqueue(key)
    await _until(lambda: all(len(outcomes[k]) == 2 for k in ("raise", "cancelled")) and "fine" in outcomes)
    assert len(outcomes["fine"]) == 1
    assert ctrl.running
    await ctrl.stop()
    await task


async def test_one_key_is_never_reconciled_by_two_workers_at_once() -> None:
    loop = asyncio.get_running_loop()
    keys = [f"k{i}" for i in range(5)]
    active: dict[str, int] = defaultdict(int)
    overlap: list[str] = []
    started_at: dict[str, float] = {}
    last_added: dict[str, float] = {}
    max_parallel = 0

    async def reconcile(key: str) -> None:
        nonlocal max_parallel
        active[key] += 1
        if active[key] > 1:
            overlap.append(key)
        max_parallel = max(max_parallel, sum(active.values()))
        started_at[key] = loop.time()
        await asyncio.sleep(0.002)
        active[key] -= 1

    ctrl = Controller("parallel", reconcile, workers=4)
    task = _start(ctrl)
    for round_ in range(30):
        for key in keys[: 1 + round_ % len(keys)]:
            ctrl.enqueue(key)
            last_added[key] = loop.time()
        await asyncio.sleep(0.001)
    await _until(lambda: all(started_at.get(k, -1) >= last_added[k] for k in keys) and not any(active.values()))
    assert overlap == []
    assert max_parallel > 1  # the workers really did run in parallel
    await ctrl.stop()
    await task


async def test_stop_drains_queued_keys_and_ends_run() -> None:
    seen: list[str] = []
    gate = asyncio.Event()

    async def reconcile(key: str) -> None:
        await gate.wait()
        seen.append(key)

    ctrl = Controller("drain", reconcile, workers=2)
    task = _start(ctrl)
    for key in "abcd":
        ctrl.enqueue(key)
    await asyncio.sleep(0.01)
    stopping = asyncio.create_task(ctrl.stop())
    await asyncio.sleep(0.01)
    assert not stopping.done()  # waits for the running reconciles
    ctrl.enqueue("late")  # refused after stop
    gate.set()
    await asyncio.wait_for(stopping, 1.0)
    await asyncio.wait_for(task, 1.0)
    assert sorted(seen) == ["a", "b", "c", "d"]
    assert not ctrl.running


async def test_stop_with_timeout_cancels_stuck_reconcile() -> None:
    started = asyncio.Event()

    async def reconcile(key: str) -> None:
        started.set()
        await asyncio.sleep(3600)

    ctrl = Controller("stuck", reconcile)
    task = _start(ctrl)
    ctrl.enqueue("a")
    await asyncio.wait_for(started.wait(), 1.0)
    await asyncio.wait_for(ctrl.stop(timeout_s=0.02), 1.0)
    await asyncio.wait_for(task, 1.0)
    assert not ctrl.running


async def test_cancelling_run_stops_workers() -> None:
    started = asyncio.Event()

    async def reconcile(key: str) -> None:
        started.set()
        await asyncio.sleep(3600)

    ctrl = Controller("cancel", reconcile, workers=2)
    task = _start(ctrl)
    ctrl.enqueue("a")
    await asyncio.wait_for(started.wait(), 1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not ctrl.running
    assert ctrl.queue.shutting_down


async def test_stop_before_run_and_double_run() -> None:
    async def reconcile(key: str) -> None:
        return None

    ctrl = Controller("idle", reconcile)
    await ctrl.stop()  # nothing started: returns at once
    await asyncio.wait_for(ctrl.run(), 1.0)  # a stopped queue ends the workers at once
    with pytest.raises(RuntimeError):
        await ctrl.run()
