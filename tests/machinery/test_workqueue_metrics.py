"""machinery.workqueue's metrics: client-go's workqueue_* series, read back from the process registry.

A named queue on a fake clock: adds of new keys only, depth (re-adds of keys in process included),
the queue and work durations observed at get and done, retries per ``add_after``, and the
in-progress gauges computed at scrape time; queues of one name share their series; an unnamed
queue records nothing; a ``Controller`` names its queue after itself and a failing reconcile
counts retries.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from machinery.controller import Controller
from machinery.metrics import Sample, exposition, label_values, parse, value
from machinery.workqueue import WORKQUEUE_BUCKETS, WorkQueue

_names = itertools.count()


def scrape() -> dict[str, list[Sample]]:
    return parse(exposition()[0].decode())


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def name() -> str:
    return f"test-queue-{next(_names)}"


def test_buckets_are_component_bases() -> None:
    assert WORKQUEUE_BUCKETS[0] == pytest.approx(1e-6) and WORKQUEUE_BUCKETS[-1] == pytest.approx(1000)
    assert len(WORKQUEUE_BUCKETS) == 10


async def test_a_named_queue_counts_adds_depth_and_durations(name: str) -> None:
    clock = Clock()
    q: WorkQueue[str] = WorkQueue(name=name, clock=clock)
    q.add("a")
    q.add("a")  # already waiting: not an add
    q.add("b")
    s = scrape()
    assert value(s, "workqueue_adds_total", name=name) == 2
    assert value(s, "workqueue_depth", name=name) == 2
    clock.now += 0.5
    assert await q.get() == "a"
    q.add("a")  # re-added while in process: counted, waits for done
    clock.now += 2.0
    s = scrape()
    assert value(s, "workqueue_depth", name=name) == 2  # "b" and the re-added "a"
    assert value(s, "workqueue_unfinished_work_seconds", name=name) == pytest.approx(2.0)
    assert value(s, "workqueue_longest_running_processor_seconds", name=name) == pytest.approx(2.0)
    assert value(s, "workqueue_queue_duration_seconds_count", name=name) == 1
    assert value(s, "workqueue_queue_duration_seconds_sum", name=name) == pytest.approx(0.5)
    q.done("a")
    assert await q.get() == "b"
    clock.now += 1.0
    s = scrape()
    assert value(s, "workqueue_work_duration_seconds_count", name=name) == 1
    assert value(s, "workqueue_work_duration_seconds_sum", name=name) == pytest.approx(2.0)
    assert value(s, "workqueue_unfinished_work_seconds", name=name) == pytest.approx(1.0)
    q.done("b")
    assert await q.get() == "a"
    q.done("a")
    s = scrape()
    assert value(s, "workqueue_adds_total", name=name) == 3
    assert value(s, "workqueue_depth", name=name) == 0
    assert value(s, "workqueue_unfinished_work_seconds", name=name) == 0
    assert value(s, "workqueue_longest_running_processor_seconds", name=name) == 0
    assert value(s, "workqueue_queue_duration_seconds_count", name=name) == 3
    assert value(s, "workqueue_work_duration_seconds_count", name=name) == 3
    # "a" waited 0.5 s, then "b" 2.5 s and the re-added "a" 3 s: the 1 s bucket holds one, 10 s all three.
    assert value(s, "workqueue_queue_duration_seconds_bucket", name=name, le="1.0") == 1
    assert value(s, "workqueue_queue_duration_seconds_bucket", name=name, le="10.0") == 3


async def test_retries_count_every_delayed_add(name: str) -> None:
    q: WorkQueue[str] = WorkQueue(name=name)
    q.add_after("a", 0)  # as client-go's delaying queue: a retry even without a delay
    q.add_rate_limited("b")
    q.add_after("c", 60)
    q.shutdown()
    q.add_after("d", 1)  # after shutdown: nothing
    s = scrape()
    assert value(s, "workqueue_retries_total", name=name) == 3
    assert value(s, "workqueue_adds_total", name=name) == 1  # only "a" was added so far


async def test_queues_of_one_name_share_their_series(name: str) -> None:
    first: WorkQueue[str] = WorkQueue(name=name)
    first.add("a")
    second: WorkQueue[str] = WorkQueue(name=name)  # e.g. the controller again after a leader change
    second.add("a")
    second.add("b")
    s = scrape()
    assert value(s, "workqueue_adds_total", name=name) == 3
    assert value(s, "workqueue_depth", name=name) == 3
    del first
    assert value(scrape(), "workqueue_depth", name=name) == 2  # a queue that is gone holds nothing


async def test_an_unnamed_queue_records_nothing() -> None:
    before = scrape()
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.done("a")
    q.add_after("b", 0)
    after = scrape()
    assert "" not in label_values(after, "workqueue_adds_total", "name")
    assert sum(v for _, v in after.get("workqueue_adds_total", [])) == \
        sum(v for _, v in before.get("workqueue_adds_total", []))


async def test_a_controller_names_its_queue_and_counts_its_retries() -> None:
    name = f"test-controller-{next(_names)}"
    seen: list[str] = []

    async def reconcile(key: str) -> None:
        seen.append(key)
        if len(seen) == 1:
            raise RuntimeError("first attempt fails")

    ctl: Controller[str] = Controller(name, reconcile)
    assert ctl.queue.name == name
    ctl.queue._base_delay_s = 0.001  # a quick retry
    run = asyncio.create_task(ctl.run())
    ctl.enqueue("k")
    for _ in range(200):
        if len(seen) >= 2:
            break
        await asyncio.sleep(0.01)
    await ctl.stop(timeout_s=5)
    await run
    s = scrape()
    assert seen == ["k", "k"]
    assert value(s, "workqueue_adds_total", name=name) == 2
    assert value(s, "workqueue_retries_total", name=name) == 1
    assert value(s, "workqueue_work_duration_seconds_count", name=name) == 2
