"""Two real ``minik8s scheduler`` processes: only the Lease holder binds; killing it hands over."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator

import pytest

from machinery import errors
from machinery.client import ApiClient
from tests.cluster import ApiServerProcess, ComponentProcess
from tests.scheduler.helpers import eventually, make_node, pod_body

LEASE = 2.0
RENEW = 1.5
RETRY = 0.2


@pytest.fixture
async def client(private_apiserver: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(private_apiserver.url) as c:
        yield c


async def _holder(client: ApiClient) -> str | None:
    try:
        lease = await client.get(("coordination.k8s.io/v1", "leases"), "kube-scheduler", namespace="kube-system")
    except errors.NotFoundError:
        return None
    return (lease.get("spec") or {}).get("holderIdentity") or None


async def _all_bound(client: ApiClient, ns: str, count: int) -> list[dict[str, Any]] | None:
    pods = (await client.list("pods", namespace=ns))["items"]
    done = [p for p in pods if p["spec"].get("nodeName")]
    return done if len(done) == count else None


async def _scheduled_by(client: ApiClient, ns: str, count: int) -> set[str] | None:
    evs = [e for e in (await client.list("events", namespace=ns))["items"] if e["reason"] == "Scheduled"]
    return {e["reportingInstance"] for e in evs} if len(evs) == count else None


async def test_only_leader_binds_and_takeover(client: ApiClient, private_apiserver: ApiServerProcess) -> None:
    ns = f"s-{uuid.uuid4().hex[:8]}"
    await client.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for i in range(2):
        await make_node(client, f"pn-{i}", cpu="8", memory="16Gi")
    common = ("--server", private_apiserver.url, "--lease-duration", str(LEASE), "--renew-deadline", str(RENEW),
              "--retry-period", str(RETRY))
    procs = {name: ComponentProcess.start("scheduler", *common, "--identity", name) for name in ("sched-a", "sched-b")}
    try:
        leader = await eventually(lambda: _holder(client), what="a lease holder")
        assert leader in procs
        other = next(n for n in procs if n != leader)
        await asyncio.gather(*(client.create("pods", pod_body(f"a-{i}"), namespace=ns) for i in range(6)))
        await eventually(lambda: _all_bound(client, ns, 6), what="6 pods bound")
        assert await eventually(lambda: _scheduled_by(client, ns, 6), what="6 Scheduled events") == {leader}
        assert await _holder(client) == leader

        procs[leader].kill()
        killed = time.monotonic()

        async def new_holder() -> str | None:
            h = await _holder(client)
            return h if h and h != leader else None
        assert await eventually(new_holder, interval=0.05, what="takeover") == other
        took = time.monotonic() - killed
        # The lease expires LEASE s after the last renewal; the other replica retries every RETRY s.
        assert took <= LEASE + RETRY + 0.5, took

        await asyncio.gather(*(client.create("pods", pod_body(f"b-{i}"), namespace=ns) for i in range(4)))
        await eventually(lambda: _all_bound(client, ns, 10), what="10 pods bound")
        await eventually(lambda: _scheduled_by(client, ns, 10), what="10 Scheduled events")
        evs = [e for e in (await client.list("events", namespace=ns))["items"] if e["reason"] == "Scheduled"]
        by_pod = {e["involvedObject"]["name"]: e["reportingInstance"] for e in evs}
        assert {by_pod.get(f"b-{i}") for i in range(4)} == {other}, by_pod
        assert {by_pod.get(f"a-{i}") for i in range(6)} == {leader}
        assert procs[other].proc.poll() is None, procs[other].logs()
    finally:
        for p in procs.values():
            p.kill()
        for n in (await client.list("nodes"))["items"]:
            await client.delete("nodes", n["metadata"]["name"])
