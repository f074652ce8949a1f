"""The LoadBalancer address controller: the pure assignment, then the controller against the real apiserver."""

from __future__ import annotations

import ipaddress
from typing import Any

from controller_helpers import eventually, running

from controllers import servicelb
from controllers.servicelbplan import assign, status_update

Obj = dict[str, Any]
POOL = ipaddress.ip_network("127.240.0.0/29")  # hosts .1 - .6


def lb(name: str, *, created: str = "2026-01-01T00:00:00Z", ip: str = "", kind: str = "LoadBalancer", **spec: Any) -> Obj:
    svc: Obj = {"metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
                "spec": {"type": kind, **spec}, "status": {"loadBalancer": {}}}
    if ip:
        svc["status"]["loadBalancer"]["ingress"] = [{"ip": ip, "ipMode": "VIP"}]
    return svc


def test_lowest_free_address_oldest_first() -> None:
    got = assign([lb("b", created="2026-01-02T00:00:00Z"), lb("a")], POOL)
    assert got == {"ns/a": "127.240.0.1", "ns/b": "127.240.0.2"}


def test_status_is_kept_across_restarts_and_holes_are_filled() -> None:
    got = assign([lb("a", ip="127.240.0.3"), lb("b", created="2026-01-02T00:00:00Z")], POOL)
    assert got == {"ns/a": "127.240.0.3", "ns/b": "127.240.0.1"}


def test_an_address_claimed_twice_stays_with_the_older_service() -> None:
    got = assign([lb("new", created="2026-01-03T00:00:00Z", ip="127.240.0.1"), lb("old", ip="127.240.0.1")], POOL)
    assert got == {"ns/old": "127.240.0.1", "ns/new": "127.240.0.2"}


def test_load_balancer_ip_is_honoured_if_in_the_pool_and_free() -> None:
    assert assign([lb("a", loadBalancerIP="127.240.0.5")], POOL) == {"ns/a": "127.240.0.5"}
    assert assign([lb("a", loadBalancerIP="10.0.0.5")], POOL) == {"ns/a": None}
    got = assign([lb("a", ip="127.240.0.5"), lb("b", created="2026-01-02T00:00:00Z", loadBalancerIP="127.240.0.5")], POOL)
    assert got == {"ns/a": "127.240.0.5", "ns/b": None}
    # a changed loadBalancerIP moves the Service
    assert assign([lb("a", ip="127.240.0.1", loadBalancerIP="127.240.0.4")], POOL) == {"ns/a": "127.240.0.4"}


def test_other_classes_are_left_alone_and_other_types_lose_their_address() -> None:
    other = lb("other", ip="127.240.0.1", loadBalancerClass="example.com/lb")
    got = assign([other, lb("a"), lb("c", kind="ClusterIP", ip="127.240.0.2")], POOL)
    assert got == {"ns/a": "127.240.0.2", "ns/c": None}
    body = status_update(lb("c", kind="ClusterIP", ip="127.240.0.2"), None)
    assert body is not None and body["status"]["loadBalancer"] == {}
    assert status_update(lb("a", ip="127.240.0.2"), "127.240.0.2") is None


def test_a_full_pool_leaves_services_waiting() -> None:
    services = [lb(f"s{i}", created=f"2026-01-01T00:00:0{i}Z") for i in range(8)]
    got = assign(services, POOL)
    assert [got[f"ns/s{i}"] for i in range(8)] == [f"127.240.0.{i}" for i in range(1, 7)] + [None, None]


async def test_the_controller_gives_and_takes_addresses(apiserver, namespace: str) -> None:  # type: ignore[no-untyped-def]
    svcs = ("v1", "services")

    def body(name: str, **spec: Any) -> Obj:
        return {"metadata": {"name": name}, "spec": {"type": "LoadBalancer", "ports": [{"port": 80}], **spec}}

    # The session apiserver may hold other tests' LoadBalancer Services, which this controller serves
    # too: so the checks here are about distinct addresses from the pool, not which ones.
    pool = ipaddress.ip_network("127.241.7.0/24")
    async with running(servicelb, apiserver.url, load_balancer_ip_range=str(pool)) as client:
        await client.create(svcs, body("a"), namespace=namespace)
        await client.create(svcs, body("b", loadBalancerClass="example.com/other"), namespace=namespace)
        await client.create(svcs, body("c"), namespace=namespace)

        async def ingress(name: str) -> list[Any]:
            svc = await client.get(svcs, name, namespace=namespace)
            return list(((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or [])

        async def addressed(*names: str) -> bool:
            for name in names:
                got = await ingress(name)
                if len(got) != 1 or got[0]["ipMode"] != "VIP" or ipaddress.ip_address(got[0]["ip"]) not in pool:
                    return False
            return True
        await eventually(lambda: addressed("a", "c"), what="addresses for a and c")
        a_ip, c_ip = (await ingress("a"))[0]["ip"], (await ingress("c"))[0]["ip"]
        assert a_ip != c_ip and await ingress("b") == []
        # A type change gives the address back (status cleared), a new Service gets one.
        await client.patch(svcs, "a", {"spec": {"type": "ClusterIP"}}, namespace=namespace)

        async def a_cleared() -> bool:
            return await ingress("a") == []
        await eventually(a_cleared, what="a's address released")
        await client.create(svcs, body("d"), namespace=namespace)
        await eventually(lambda: addressed("d"), what="an address for d")
        assert (await ingress("d"))[0]["ip"] != c_ip
        assert (await ingress("c"))[0]["ip"] == c_ip  # stable
