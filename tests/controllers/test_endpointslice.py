"""The EndpointSlice controller: the pure plan, then the controller against the real apiserver."""

from __future__ import annotations

from controller_helpers import eventually, running
import asyncio
from typing import Any

from controllers import endpointslice
from controllers.endpointsliceplan import MANAGED_BY_LABEL, SERVICE_NAME_LABEL, plan
from machinery.client import ApiClient

Obj = dict[str, Any]
SLICES = ("discovery.k8s.io/v1", "endpointslices")


def pod(name: str, ip: str, *, ready: bool = True, deleting: bool = False, port_name: str = "http",
        container_port: int = 8080) -> Obj:
    p: Obj = {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": {"app": "web"}},
              "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [
                  {"name": port_name, "containerPort": container_port}]}]},
              "status": {"phase": "Running", "podIP": ip,
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


SERVICE: Obj = {"metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"tier": "front"}},
                "spec": {"selector": {"app": "web"}, "clusterIP": "172.28.128.10",
                         "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


def test_one_slice_with_conditions_and_owner() -> None:
    p = plan(SERVICE, [pod("b", "172.28.0.3", ready=False), pod("a", "172.28.0.2"),
                       pod("c", "172.28.0.4", deleting=True)], [])
    assert not p.update and not p.delete and len(p.create) == 1
    s = p.create[0]
    assert s["metadata"]["generateName"] == "web-" and s["addressType"] == "IPv4"
    assert s["metadata"]["labels"] == {"tier": "front", SERVICE_NAME_LABEL: "web",
                                       MANAGED_BY_LABEL: "endpointslice-controller.k8s.io"}
    assert s["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                 "uid": "svc-uid", "controller": True, "blockOwnerDeletion": True}]
    assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert [(e["addresses"], e["conditions"]) for e in s["endpoints"]] == [
        (["172.28.0.2"], {"ready": True, "serving": True, "terminating": False}),
        (["172.28.0.3"], {"ready": False, "serving": False, "terminating": False}),
        (["172.28.0.4"], {"ready": False, "serving": True, "terminating": True}),
    ]
    assert s["endpoints"][0]["targetRef"] == {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}


def test_unchanged_slices_need_no_write_and_changes_reuse_the_slice() -> None:
    pods = [pod("a", "172.28.0.2")]
    current = {**plan(SERVICE, pods, []).create[0], "metadata": {
        **plan(SERVICE, pods, []).create[0]["metadata"], "name": "web-x1", "uid": "s1"}}
    assert plan(SERVICE, pods, [current]).empty
    changed = plan(SERVICE, pods + [pod("b", "172.28.0.3")], [current])
    assert not changed.create and not changed.delete
    assert [e["addresses"][0] for e in changed.update[0]["endpoints"]] == ["172.28.0.2", "172.28.0.3"]
    assert changed.update[0]["metadata"]["name"] == "web-x1"


def test_port_sets_split_slices_large_ones_chunk_and_no_endpoint_keeps_a_placeholder() -> None:
    pods = [pod("a", "172.28.0.2"), pod("b", "172.28.0.3", container_port=9090)]
    assert sorted(s["ports"][0]["port"] for s in plan(SERVICE, pods, []).create) == [8080, 9090]
    many = [pod(f"p{i}", f"172.28.{i // 200}.{i % 200 + 1}") for i in range(250)]
    assert [len(s["endpoints"]) for s in plan(SERVICE, many, []).create] == [100, 100, 50]
    empty = plan(SERVICE, [], []).create
    assert len(empty) == 1 and empty[0]["endpoints"] == [] and empty[0]["ports"] == []
    # Extra slices of a shrunk Service are deleted.
    slices = [{**s, "metadata": {**s["metadata"], "name": f"web-{i}"}} for i, s in enumerate(plan(SERVICE, many, []).create)]
    shrunk = plan(SERVICE, many[:10], slices)
    assert len(shrunk.update) == 1 and len(shrunk.delete) == 2


async def make_pod(client: ApiClient, ns: str, name: str, ip: str, *, ready: bool) -> Obj:
    created = await client.create("pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx",
                                                       "ports": [{"name": "http", "containerPort": 8080}]}]}})
    live = await client.get("pods", name, namespace=ns)
    live["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                      "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    await client.update_status("pods", live)
    return created


async def test_slices_follow_pods_and_service(apiserver: Any, namespace: str) -> None:
    async with running(endpointslice, apiserver.url, workers=2) as client:
        await client.create("services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})

        async def slices() -> list[Obj]:
            items = (await client.list(SLICES, namespace=namespace,
                                       label_selector=f"{SERVICE_NAME_LABEL}=web"))["items"]
            return list(items)

        async def endpoints_are(expected: list[tuple[str, bool]]) -> bool:
            found = [(e["addresses"][0], e["conditions"]["ready"]) for s in await slices()
                     for e in s.get("endpoints") or []]
            return sorted(found) == expected

        async def placeholder() -> bool:
            found = await slices()
            return len(found) == 1 and not found[0].get("endpoints")
        await eventually(placeholder, what="the placeholder slice")
        await make_pod(client, namespace, "a", "172.28.1.1", ready=True)
        await make_pod(client, namespace, "b", "172.28.1.2", ready=False)
        await eventually(lambda: endpoints_are([("172.28.1.1", True), ("172.28.1.2", False)]), what="two endpoints")
        [s] = await slices()
        assert s["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        rv = s["metadata"]["resourceVersion"]
        await asyncio.sleep(0.5)
        assert [x["metadata"]["resourceVersion"] for x in await slices()] == [rv]  # nothing changed, nothing written

        # A slice deleted by hand is made again.
        await client.delete(SLICES, s["metadata"]["name"], namespace=namespace)
        await eventually(lambda: endpoints_are([("172.28.1.1", True), ("172.28.1.2", False)]), what="made again")

        await client.delete("pods", "a", namespace=namespace, grace_period_seconds=0)
        await eventually(lambda: endpoints_are([("172.28.1.2", False)]), what="a removed")

        await client.delete("services", "web", namespace=namespace)

        async def gone() -> bool:
            return await slices() == []
        await eventually(gone, what="slices deleted with their Service")
