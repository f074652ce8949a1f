"""The scheduler in this process against a real apiserver (and etcd) with Node objects we create."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any, AsyncIterator

import pytest

from machinery.client import ApiClient
from machinery.quantity import cpu_millis
from scheduler.server import SchedulerSettings, build
from tests.cluster import ApiServerProcess
from tests.scheduler.helpers import eventually, make_node, pod_body


@pytest.fixture
async def client(private_apiserver: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(private_apiserver.url) as c:
        yield c
        for n in (await c.list("nodes"))["items"]:
            await c.delete("nodes", n["metadata"]["name"])


@pytest.fixture
async def ns(client: ApiClient) -> str:
    name = f"s-{uuid.uuid4().hex[:8]}"
    await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


@pytest.fixture
async def scheduler(client: ApiClient) -> AsyncIterator[Any]:
    settings = SchedulerSettings(server=client.server, leader_elect=False, identity="test-scheduler", seed=1,
                                 initial_backoff_s=0.1, max_backoff_s=0.5)
    sched, factory, _ = build(settings, client)
    factory.start()
    task = asyncio.create_task(sched.run())
    yield sched
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await factory.stop()


async def _bound(client: ApiClient, ns: str, count: int) -> list[dict[str, Any]] | None:
    pods = (await client.list("pods", namespace=ns))["items"]
    done = [p for p in pods if p["spec"].get("nodeName")]
    return done if len(done) == count else None


async def test_binds_ten_pods_spread_and_within_allocatable(client: ApiClient, ns: str, scheduler: Any) -> None:
    for i in range(3):
        await make_node(client, f"node-{i}", cpu="2", memory="4Gi")
    await asyncio.gather(*(client.create("pods", pod_body(f"web-{i}", cpu="500m"), namespace=ns) for i in range(10)))
    pods = await eventually(lambda: _bound(client, ns, 10), what="10 pods bound")
    per_node = Counter(p["spec"]["nodeName"] for p in pods)
    assert set(per_node) == {"node-0", "node-1", "node-2"}
    assert max(per_node.values()) - min(per_node.values()) <= 1, per_node  # 4/3/3
    for node, n in per_node.items():
        used = sum(cpu_millis(p["spec"]["containers"][0]["resources"]["requests"]["cpu"])
                   for p in pods if p["spec"]["nodeName"] == node)
        assert used <= 2000, (node, used)

    async def scheduled_events() -> list[dict[str, Any]] | None:
        evs = [e for e in (await client.list("events", namespace=ns))["items"] if e["reason"] == "Scheduled"]
        return evs if len(evs) == 10 else None
    events = await eventually(scheduled_events, what="10 Scheduled events")
    by_pod = {e["involvedObject"]["name"]: e for e in events}
    p0 = next(p for p in pods if p["metadata"]["name"] == "web-0")
    assert by_pod["web-0"]["message"] == f"Successfully assigned {ns}/web-0 to {p0['spec']['nodeName']}"
    assert by_pod["web-0"]["type"] == "Normal"
    assert by_pod["web-0"]["reportingComponent"] == "default-scheduler"
    assert by_pod["web-0"]["reportingInstance"] == "test-scheduler"


async def test_fills_nodes_exactly_and_never_over(client: ApiClient, ns: str, scheduler: Any) -> None:
    # 2 nodes x 2 cpu, 6 pods of 1 cpu: 4 bind, 2 stay pending with Insufficient cpu.
    for i in range(2):
        await make_node(client, f"full-{i}", cpu="2", memory="4Gi")
    await asyncio.gather(*(client.create("pods", pod_body(f"p-{i}", cpu="1"), namespace=ns) for i in range(6)))
    pods = await eventually(lambda: _bound(client, ns, 4), what="4 pods bound")
    assert Counter(p["spec"]["nodeName"] for p in pods) == {"full-0": 2, "full-1": 2}

    async def pending_reported() -> list[dict[str, Any]] | None:
        items = (await client.list("pods", namespace=ns))["items"]
        rep = [p for p in items if any(c.get("reason") == "Unschedulable"
                                       for c in (p.get("status") or {}).get("conditions") or [])]
        return rep if len(rep) == 2 else None
    await eventually(pending_reported, what="2 Unschedulable pods")
    assert await _bound(client, ns, 4)


async def test_too_big_pod_reports_then_schedules_on_new_node(client: ApiClient, ns: str, scheduler: Any) -> None:
    for i in range(3):
        await make_node(client, f"small-{i}", cpu="2", memory="4Gi")
    await make_node(client, "tainted", cpu="64", memory="256Gi",
                    taints=[{"key": "example.com/dedicated", "value": "db", "effect": "NoSchedule"}])
    await client.create("pods", pod_body("big", cpu="8", memory="1Gi"), namespace=ns)
    want = ("0/4 nodes are available: 1 node(s) had untolerated taint {example.com/dedicated: db}, "
            "3 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not helpful for "
            "scheduling, 3 No preemption victims found for incoming pod.")

    async def condition() -> dict[str, Any] | None:
        pod = await client.get("pods", "big", namespace=ns)
        return next((c for c in (pod.get("status") or {}).get("conditions") or []
                     if c["type"] == "PodScheduled"), None)
    cond = await eventually(condition, what="PodScheduled condition")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"] == want

    async def failed_event() -> dict[str, Any] | None:
        evs = (await client.list("events", namespace=ns))["items"]
        return next((e for e in evs if e["reason"] == "FailedScheduling"), None)
    ev = await eventually(failed_event, what="FailedScheduling event")
    assert ev["type"] == "Warning" and ev["message"] == want
    assert ev["involvedObject"]["name"] == "big" and ev["reportingComponent"] == "default-scheduler"

    # Not a busy loop: with nothing changing, the pod is not retried (the event count stays put).
    await asyncio.sleep(1.0)
    assert scheduler.queue.is_unschedulable(f"{ns}/big")
    evs = [e for e in (await client.list("events", namespace=ns))["items"] if e["reason"] == "FailedScheduling"]
    assert len(evs) == 1 and evs[0].get("count", 1) <= 2

    await make_node(client, "big-node", cpu="16", memory="32Gi")

    async def bound() -> str | None:
        return (await client.get("pods", "big", namespace=ns))["spec"].get("nodeName")
    assert await eventually(bound, what="big pod bound", timeout=15) == "big-node"


async def test_other_schedulers_pods_and_node_selector(client: ApiClient, ns: str, scheduler: Any) -> None:
    await make_node(client, "plain", cpu="4", memory="8Gi")
    await make_node(client, "ssd", cpu="4", memory="8Gi", labels={"disk": "ssd"})
    await client.create("pods", pod_body("theirs", scheduler_name="other-scheduler"), namespace=ns)
    sel = pod_body("wants-ssd")
    sel["spec"]["nodeSelector"] = {"disk": "ssd"}
    await client.create("pods", sel, namespace=ns)

    async def bound() -> str | None:
        return (await client.get("pods", "wants-ssd", namespace=ns))["spec"].get("nodeName")
    assert await eventually(bound, what="wants-ssd bound") == "ssd"
    await asyncio.sleep(0.3)
    assert not (await client.get("pods", "theirs", namespace=ns))["spec"].get("nodeName")
