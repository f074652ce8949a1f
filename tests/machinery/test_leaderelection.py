"""Leader election: the pure decision table, then two real candidates racing on one Lease."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from machinery.client import ApiClient
from machinery.leaderelection import LeaderElectionSettings, LeaderElector, decide

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def lease(holder: str, renewed: datetime, duration: int = 15, transitions: int = 0) -> dict[str, Any]:
    return {"metadata": {"name": "l", "resourceVersion": "7"},
            "spec": {"holderIdentity": holder, "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                     "leaseDurationSeconds": duration, "leaseTransitions": transitions}}


@pytest.mark.parametrize("current,now,wins,transitions", [
    (None, T0, True, 0),                                       # nobody holds it
    (lease("me", T0), T0 + timedelta(seconds=5), True, 0),     # renewing my own
    (lease("other", T0), T0 + timedelta(seconds=5), False, None),   # held and fresh
    (lease("other", T0), T0 + timedelta(seconds=15), True, 1),      # expired exactly at the duration
    (lease("", T0), T0, True, 0),                              # released
])
def test_decide(current: dict[str, Any] | None, now: datetime, wins: bool, transitions: int | None) -> None:
    body = decide(current, identity="me", now=now, lease_duration=15)
    assert (body is not None) == wins
    if body is not None:
        assert body["spec"]["holderIdentity"] == "me" and body["spec"]["leaseTransitions"] == transitions
        if current is not None:
            assert body["metadata"]["resourceVersion"] == "7"  # the write is a compare-and-swap


async def test_two_candidates_one_leader_and_handover(apiserver, namespace: str) -> None:  # type: ignore[no-untyped-def]
    async with ApiClient(apiserver.url) as client:
        leading: list[str] = []

        def make(identity: str) -> LeaderElector:
            return LeaderElector(client, LeaderElectionSettings(
                lease_name="test-lock", namespace=namespace, identity=identity,
                lease_duration=1.0, renew_deadline=0.7, retry_period=0.1))

        async def lead(identity: str) -> None:
            leading.append(identity)
            await asyncio.Event().wait()

        a, b = make("a"), make("b")
        ta = asyncio.create_task(a.run(lambda: lead("a")))
        await asyncio.sleep(0.5)
        tb = asyncio.create_task(b.run(lambda: lead("b")))
        await asyncio.sleep(1.5)
        assert leading == ["a"] and a.is_leader and not b.is_leader
        ta.cancel()  # the leader dies without releasing; b takes over once the lease expires
        await asyncio.sleep(2.0)
        assert leading == ["a", "b"] and b.is_leader
        got = await client.get(("coordination.k8s.io/v1", "leases"), "test-lock", namespace=namespace)
        assert got["spec"]["holderIdentity"] == "b" and got["spec"]["leaseTransitions"] == 1
        tb.cancel()
        await asyncio.gather(ta, tb, return_exceptions=True)
