"""Optimistic concurrency under real contention: one winner per resourceVersion, nothing lost with retries."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

N = 50


def counter(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"count": "0"}}


async def test_each_resource_version_admits_exactly_one_writer(apiserver, namespace: str) -> None:  # type: ignore[no-untyped-def]
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=30,
                                 limits=httpx.Limits(max_connections=N)) as c:
        await c.post(base, json=counter("race"))
        snapshot = (await c.get(f"{base}/race")).json()

        async def write(i: int) -> int:
            body = {**snapshot, "data": {"count": str(i + 1)}}  # every write really changes the object
            return (await c.put(f"{base}/race", json=body)).status_code

        codes = Counter(await asyncio.gather(*(write(i) for i in range(N))))
        assert codes == {200: 1, 409: N - 1}

        # Now all of them keep reading and retrying: every increment lands exactly once.
        rv_winners: Counter[str] = Counter()

        async def increment() -> int:
            attempts = 0
            while True:
                attempts += 1
                cur = (await c.get(f"{base}/race")).json()
                rv = cur["metadata"]["resourceVersion"]
                cur["data"] = {"count": str(int(cur["data"]["count"]) + 1)}
                r = await c.put(f"{base}/race", json=cur)
                if r.status_code == 200:
                    rv_winners[rv] += 1
                    return attempts
                assert r.status_code == 409 and r.json()["reason"] == "Conflict", r.text

        start = int((await c.get(f"{base}/race")).json()["data"]["count"])
        attempts = await asyncio.gather(*(increment() for _ in range(N)))
        final = (await c.get(f"{base}/race")).json()
        assert int(final["data"]["count"]) == start + N
        assert all(v == 1 for v in rv_winners.values()) and len(rv_winners) == N
        assert sum(attempts) > N  # there really was contention


async def test_concurrent_creates_of_one_name(apiserver, namespace: str) -> None:  # type: ignore[no-untyped-def]
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=30,
                                 limits=httpx.Limits(max_connections=N)) as c:
        responses = await asyncio.gather(*(c.post(base, json=counter("once")) for _ in range(N)))
        codes = Counter(r.status_code for r in responses)
        assert codes == {201: 1, 409: N - 1}
        assert {r.json()["reason"] for r in responses if r.status_code == 409} == {"AlreadyExists"}


async def test_concurrent_patches_without_preconditions_all_apply(apiserver, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """A patch carries no resourceVersion: the server retries its own compare-and-swap, so none is lost."""
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    async with httpx.AsyncClient(base_url=apiserver.url, timeout=30,
                                 limits=httpx.Limits(max_connections=20)) as c:
        await c.post(base, json=counter("merge"))
        patches = [c.patch(f"{base}/merge", content=f'{{"data":{{"k{i}":"v"}}}}'.encode(),
                           headers={"content-type": "application/merge-patch+json"}) for i in range(20)]
        assert {r.status_code for r in await asyncio.gather(*patches)} == {200}
        data = (await c.get(f"{base}/merge")).json()["data"]
        assert {f"k{i}" for i in range(20)} <= set(data)
