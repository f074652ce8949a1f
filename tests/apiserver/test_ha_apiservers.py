"""Two API server processes on one etcd: nothing either keeps in memory makes the other wrong.

- Read-your-writes across servers: a write acknowledged by server A is seen at once by a GET, a
  LIST and a watch "from now" sent to server B (consistent reads: B asks etcd for its revision
  and waits until its watch cache holds that state), and a delete through A is a 404 through B.
- resourceVersion="0" stays a plain cache read (no etcd round trip): it may lag, the others never.
- Services created concurrently through both servers never share a ClusterIP or a NodePort (the
  allocators claim each value with an etcd create-if-absent), even in a range barely larger than
  what is asked for.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess, Etcd

CM = "/api/v1/namespaces/default/configmaps"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ApiServerProcess, ApiServerProcess]]:
    etcd = Etcd.start()
    extra = ("--service-cluster-ip-range", "172.28.250.0/26", "--service-node-port-range", "30000-30063")
    a = ApiServerProcess.start(etcd.url, *extra)
    b = ApiServerProcess.start(etcd.url, *extra)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()
        etcd.stop()


def _cm(name: str, value: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "data": {"v": value}}


def test_a_write_through_one_server_is_read_at_once_through_the_other(servers: tuple[ApiServerProcess, ...]) -> None:
    a, b = servers
    stale: list[str] = []
    with httpx.Client(base_url=a.url, timeout=10) as ca, httpx.Client(base_url=b.url, timeout=10) as cb:
        for i in range(150):
            name = f"ryw-{i}"
            created = ca.post(CM, json=_cm(name, "1"))
            assert created.status_code == 201, created.text
            got = cb.get(f"{CM}/{name}")
            if got.status_code != 200:
                stale.append(f"GET {name}: {got.status_code}")
            listed = cb.get(CM, params={"labelSelector": ""}).json()
            if name not in {item["metadata"]["name"] for item in listed["items"]}:
                stale.append(f"LIST misses {name}")
            updated = ca.put(f"{CM}/{name}", json={**created.json(), "data": {"v": "2"}})
            assert updated.status_code == 200, updated.text
            again = cb.get(f"{CM}/{name}").json()
            if again["data"] != {"v": "2"} or again["metadata"]["resourceVersion"] != updated.json()["metadata"]["resourceVersion"]:
                stale.append(f"GET {name} after the update: {again['data']}")
            if i % 3 == 0:
                assert ca.delete(f"{CM}/{name}").status_code == 200
                gone = cb.get(f"{CM}/{name}")
                if gone.status_code != 404:
                    stale.append(f"GET {name} after the delete: {gone.status_code}")
    assert not stale, stale[:10]


def test_a_watch_from_now_on_the_other_server_starts_after_the_write(servers: tuple[ApiServerProcess, ...]) -> None:
    a, b = servers
    with httpx.Client(base_url=a.url, timeout=10) as ca, httpx.Client(base_url=b.url, timeout=10) as cb:
        for i in range(20):
            name = f"watch-now-{i}"
            assert ca.post(CM, json=_cm(name, "1")).status_code == 201
            with cb.stream("GET", CM, params={"watch": "1", "fieldSelector": f"metadata.name={name}",
                                              "timeoutSeconds": "5"}) as s:
                first = json.loads(next(line for line in s.iter_lines() if line))
            assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == name


def test_resource_version_zero_and_bad_values(servers: tuple[ApiServerProcess, ...]) -> None:
    a, b = servers
    with httpx.Client(base_url=a.url, timeout=10) as ca, httpx.Client(base_url=b.url, timeout=10) as cb:
        created = ca.post(CM, json=_cm("rv-zero", "1")).json()
        rv = created["metadata"]["resourceVersion"]
        # resourceVersion=N: not older than N, whichever server wrote it.
        assert cb.get(f"{CM}/rv-zero", params={"resourceVersion": rv}).status_code == 200
        listed = cb.get(CM, params={"resourceVersion": rv}).json()
        assert "rv-zero" in {item["metadata"]["name"] for item in listed["items"]}
        assert int(listed["metadata"]["resourceVersion"]) >= int(rv)
        # "0" is served from the cache as it is: by now B's cache has it.
        assert cb.get(f"{CM}/rv-zero", params={"resourceVersion": "0"}).status_code == 200
        bad = cb.get(CM, params={"resourceVersion": "abc"})
        assert bad.status_code == 400 and bad.json()["reason"] == "BadRequest", bad.text
        assert 'invalid resource version "abc"' in bad.json()["message"]


def test_services_created_concurrently_through_both_servers_never_share_an_ip_or_port(
        servers: tuple[ApiServerProcess, ...]) -> None:
    a, b = servers
    count = 48  # of 61 usable ClusterIPs and 64 NodePorts: collisions are likely if the allocators race

    async def create_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=a.url, timeout=30) as ca, httpx.AsyncClient(base_url=b.url, timeout=30) as cb:
            async def one(i: int) -> httpx.Response:
                body = {"metadata": {"name": f"svc-{i}"},
                        "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80}]}}
                return await (ca if i % 2 else cb).post("/api/v1/namespaces/default/services", json=body)
            return list(await asyncio.gather(*(one(i) for i in range(count))))

    responses = asyncio.run(create_all())
    assert [r.status_code for r in responses] == [201] * count, [r.text for r in responses if r.status_code != 201][:3]
    ips = [r.json()["spec"]["clusterIP"] for r in responses]
    ports = [r.json()["spec"]["ports"][0]["nodePort"] for r in responses]
    assert len(set(ips)) == count, sorted(ips)
    assert len(set(ports)) == count, sorted(ports)
    # Both servers agree with what was answered.
    with httpx.Client(base_url=b.url, timeout=10) as cb:
        stored = {s["metadata"]["name"]: s["spec"]["clusterIP"]
                  for s in cb.get("/api/v1/namespaces/default/services").json()["items"]}
    assert {f"svc-{i}": ips[i] for i in range(count)}.items() <= stored.items()
