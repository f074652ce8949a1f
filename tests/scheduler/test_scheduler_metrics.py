"""The scheduler's metrics through its real cycle, with in-memory informers and a recording client.

Each test builds a ``Scheduler`` over fake informers (dicts), feeds nodes and pods through its
informer handlers, runs ``schedule_one`` and the bind tasks it spawns, and reads the process-wide
registry (as ``GET /metrics`` would) before and after: the counts must equal what was scheduled.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import pytest

from machinery import errors
from prometheus_client import CollectorRegistry

from machinery.metrics import exposition, parse, value
from scheduler.metrics import PendingPodsCollector, attempts_label, exponential_buckets
from scheduler.scheduler import CycleSettings, Scheduler
from tests.scheduler.helpers import pod_body

Obj = dict[str, Any]
PROFILE = "metrics-test-scheduler"


class FakeInformer:
    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.handlers: list[tuple[Callable[..., None], ...]] = []

    def add_handler(self, *fns: Callable[..., None]) -> None:
        self.handlers.append(fns)

    def get(self, key: str) -> Obj | None:
        return self.objects.get(key)

    def list(self) -> list[Obj]:
        return list(self.objects.values())

    def __len__(self) -> int:
        return len(self.objects)

    async def wait_synced(self) -> None:
        return None

    def put(self, obj: Obj) -> None:
        meta = obj["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}" if meta.get("namespace") else meta["name"]
        old = self.objects.get(key)
        self.objects[key] = obj
        for fns in self.handlers:
            if old is None:
                fns[0](obj)
            elif len(fns) > 1:
                fns[1](old, obj)


class FakeFactory:
    def __init__(self) -> None:
        self.informers: dict[tuple[str, str], FakeInformer] = {}

    def informer(self, resource: tuple[str, str]) -> FakeInformer:
        return self.informers.setdefault(resource, FakeInformer())


class FakeClient:
    def __init__(self) -> None:
        self.binds: list[tuple[str, str]] = []
        self.fail: set[str] = set()

    async def bind(self, name: str, node: str, *, namespace: str | None = None, uid: str | None = None) -> Obj:
        if name in self.fail:
            raise errors.ConflictError(message="injected")
        self.binds.append((name, node))
        return {}

    async def patch(self, *args: Any, **kwargs: Any) -> Obj:
        return {}


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def event(self, ref: Obj, type_: str, reason: str, message: str) -> None:
        self.events.append((ref["metadata"]["name"], reason))


def node(name: str, cpu: str = "2") -> Obj:
    res = {"cpu": cpu, "memory": "4Gi", "pods": "110"}
    return {"metadata": {"name": name}, "spec": {},
            "status": {"allocatable": res, "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str = "500m") -> Obj:
    body = pod_body(name, cpu=cpu, scheduler_name=PROFILE)
    body["metadata"]["namespace"] = "m"
    body["metadata"]["uid"] = f"uid-{name}"
    return body


def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
    body, _ = exposition()
    return parse(body.decode())


def gauges(sched: Scheduler) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The scrape-time gauges of this scheduler alone (the process-wide ones sum every live scheduler)."""
    registry = CollectorRegistry()
    collector = PendingPodsCollector()
    collector.track(sched.queue, sched.cache)
    registry.register(collector)
    body, _ = exposition(registry=registry)
    return parse(body.decode())


@pytest.fixture
def setup() -> tuple[Scheduler, FakeFactory, FakeClient, FakeRecorder]:
    factory, client, recorder = FakeFactory(), FakeClient(), FakeRecorder()
    sched = Scheduler(client, factory, CycleSettings(scheduler_name=PROFILE, seed=1),  # type: ignore[arg-type]
                      recorder=recorder)  # type: ignore[arg-type]
    return sched, factory, client, recorder


async def drain(sched: Scheduler) -> None:
    while sched._tasks:
        await asyncio.gather(*list(sched._tasks), return_exceptions=True)


async def cycle(sched: Scheduler) -> None:
    """What ``run()`` does, until the active queue is empty."""
    while len(sched.queue.active):
        key = await sched.queue.get()
        sched.schedule_one(key)
        sched.queue.done(key)
        await drain(sched)


@pytest.mark.parametrize("attempts, label", [(1, "1"), (2, "2"), (14, "14"), (15, "15+"), (40, "15+")])
def test_attempts_label(attempts: int, label: str) -> None:
    assert attempts_label(attempts) == label


def test_exponential_buckets_match_kube_scheduler() -> None:
    assert exponential_buckets(0.001, 2, 15)[-1] == pytest.approx(16.384)
    assert exponential_buckets(0.01, 2, 20)[:3] == pytest.approx((0.01, 0.02, 0.04))
    assert len(exponential_buckets(0.0001, 2, 12)) == 12


async def test_counts_match_what_was_scheduled(setup: Any) -> None:
    sched, factory, client, recorder = setup
    pods, nodes = factory.informer(("v1", "pods")), factory.informer(("v1", "nodes"))
    for i in range(2):
        nodes.put(node(f"n{i}", cpu="2"))
    before = scrape()
    for i in range(6):  # 2 nodes x 2 cpu, 1 cpu each: 4 fit, 2 are unschedulable
        pods.put(pod(f"p{i}", cpu="1"))
    assert value(gauges(sched), "scheduler_pending_pods", queue="active") == 6
    assert value(scrape(), "scheduler_pending_pods", queue="active") >= 6  # on the process-wide registry too
    await cycle(sched)
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)
    assert len(client.binds) == 4 and sched.bound == 4
    assert [r for _, r in recorder.events].count("Scheduled") == 4
    assert delta("scheduler_schedule_attempts_total", result="scheduled", profile=PROFILE) == 4
    assert delta("scheduler_schedule_attempts_total", result="unschedulable", profile=PROFILE) == 2
    assert delta("scheduler_schedule_attempts_total", result="error", profile=PROFILE) == 0
    assert delta("scheduler_scheduling_attempt_duration_seconds_count", result="scheduled", profile=PROFILE) == 4
    assert delta("scheduler_scheduling_attempt_duration_seconds_count", result="unschedulable", profile=PROFILE) == 2
    assert delta("scheduler_scheduling_algorithm_duration_seconds_count") >= 6
    assert delta("scheduler_pod_scheduling_sli_duration_seconds_count", attempts="1") == 4
    assert delta("scheduler_pod_scheduling_attempts_count") == 4
    assert delta("scheduler_pod_scheduling_attempts_sum") == 4
    assert delta("scheduler_queue_incoming_pods_total", queue="active", event="PodAdd") == 6
    assert delta("scheduler_queue_incoming_pods_total", queue="unschedulable", event="ScheduleAttemptFailure") == 2
    assert delta("scheduler_framework_extension_point_duration_seconds_count", extension_point="Bind",
                 status="Success", profile=PROFILE) == 4
    assert delta("scheduler_framework_extension_point_duration_seconds_count", extension_point="Filter",
                 status="Unschedulable", profile=PROFILE) == 2
    # The gauges are read at scrape time: nothing waits in active, 2 wait as unschedulable.
    assert sched.queue.pending_sizes() == {"active": 0, "backoff": 0, "unschedulable": 2, "gated": 0}
    mine = gauges(sched)
    for q, want in (("active", 0), ("backoff", 0), ("unschedulable", 2), ("gated", 0)):
        assert value(mine, "scheduler_pending_pods", queue=q) == want, q
    assert value(mine, "scheduler_scheduler_cache_size", type="nodes") == 2
    assert value(mine, "scheduler_scheduler_cache_size", type="pods") == 4

    # A new node: the two waiting pods move (their backoff not yet over: to the backoff queue), then fit.
    nodes.put(node("big", cpu="8"))
    moved = scrape()
    assert value(moved, "scheduler_queue_incoming_pods_total", queue="backoff", event="NodeAdd") - value(
        after, "scheduler_queue_incoming_pods_total", queue="backoff", event="NodeAdd") == 2
    assert value(gauges(sched), "scheduler_pending_pods", queue="backoff") == 2
    sched.queue.active._waiting, waiting = {}, sched.queue.active._waiting
    for key, (_, handle) in waiting.items():  # end the backoff now
        handle.cancel()
        sched.queue.active.add(key)
    await cycle(sched)
    final = scrape()
    assert len(client.binds) == 6
    assert value(final, "scheduler_pod_scheduling_sli_duration_seconds_count", attempts="2") - value(
        before, "scheduler_pod_scheduling_sli_duration_seconds_count", attempts="2") == 2
    assert value(final, "scheduler_schedule_attempts_total", result="scheduled", profile=PROFILE) - value(
        before, "scheduler_schedule_attempts_total", result="scheduled", profile=PROFILE) == 6


async def test_failed_bind_counts_an_error_and_backs_off(setup: Any) -> None:
    sched, factory, client, recorder = setup
    factory.informer(("v1", "nodes")).put(node("n0"))
    client.fail.add("bad")
    before = scrape()
    factory.informer(("v1", "pods")).put(pod("bad"))
    await cycle(sched)
    after = scrape()
    assert client.binds == [] and recorder.events == []
    assert value(after, "scheduler_schedule_attempts_total", result="error", profile=PROFILE) - value(
        before, "scheduler_schedule_attempts_total", result="error", profile=PROFILE) == 1
    assert value(after, "scheduler_framework_extension_point_duration_seconds_count", extension_point="Bind",
                 status="Error", profile=PROFILE) - value(
        before, "scheduler_framework_extension_point_duration_seconds_count", extension_point="Bind",
        status="Error", profile=PROFILE) == 1
    assert value(after, "scheduler_queue_incoming_pods_total", queue="backoff", event="ScheduleAttemptFailure") - \
        value(before, "scheduler_queue_incoming_pods_total", queue="backoff", event="ScheduleAttemptFailure") == 1
    assert sched.queue.pending_sizes()["backoff"] == 1
    assert not sched.cache.is_placed("m/bad")  # the assumption was forgotten
