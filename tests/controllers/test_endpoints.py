"""The endpoints controller: the pure subset computation, then the controller against the apiserver."""

from __future__ import annotations

from controller_helpers import eventually, running
import asyncio
from typing import Any

import pytest

from controllers import endpoints
from machinery import errors
from machinery.client import ApiClient

Obj = dict[str, Any]


def pod(name: str, ip: str | None, *, ready: bool = True, labels: Obj | None = None, ports: list[Obj] | None = None,
        deleting: bool = False, node: str = "n1", phase: str = "Running") -> Obj:
    p: Obj = {"metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "labels": labels or {"app": "web"}},
              "spec": {"nodeName": node, "containers": [{"name": "c", "ports": ports or []}]},
              "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if ip:
        p["status"]["podIP"] = ip
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return p


def service(ports: list[Obj], *, selector: Obj | None = None, cluster_ip: str = "10.96.0.10", **spec: Any) -> Obj:
    return {"metadata": {"name": "web", "namespace": "ns", "labels": {"tier": "front"}},
            "spec": {"selector": selector if selector is not None else {"app": "web"}, "ports": ports,
                     "clusterIP": cluster_ip, **spec}}


def test_ready_and_not_ready_split_sorted() -> None:
    svc = service([{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}])
    pods = [pod("b", "10.244.0.2"), pod("a", "10.244.0.9"), pod("c", "10.244.0.3", ready=False),
            pod("nolabel", "10.244.0.4", labels={"app": "other"}), pod("noip", None),
            pod("gone", "10.244.0.5", deleting=True)]
    subsets = endpoints.desired_subsets(svc, pods)
    assert subsets == [{
        "addresses": [
            {"ip": "10.244.0.2", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "b", "uid": "uid-b"}},
            {"ip": "10.244.0.9", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "a", "uid": "uid-a"}},
        ],
        "notReadyAddresses": [
            {"ip": "10.244.0.3", "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "ns", "name": "c", "uid": "uid-c"}},
        ],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
    }]
    # Deterministic: the order of the pods does not matter.
    assert endpoints.desired_subsets(svc, list(reversed(pods))) == subsets


def test_named_target_port_groups_pods_by_the_ports_they_offer() -> None:
    svc = service([{"name": "http", "port": 80, "targetPort": "web"}, {"name": "metrics", "port": 9090, "targetPort": 9090}])
    p1 = pod("a", "10.244.0.1", ports=[{"name": "web", "containerPort": 8080}])
    p2 = pod("b", "10.244.0.2", ports=[{"name": "web", "containerPort": 8081}])
    p3 = pod("c", "10.244.0.3", ports=[{"name": "other", "containerPort": 1}])  # "web" does not resolve
    subsets = endpoints.desired_subsets(svc, [p1, p2, p3])
    got = {tuple((p["name"], p["port"]) for p in s["ports"]): [a["ip"] for a in s["addresses"]] for s in subsets}
    assert got == {
        (("http", 8080), ("metrics", 9090)): ["10.244.0.1"],
        (("http", 8081), ("metrics", 9090)): ["10.244.0.2"],
        (("metrics", 9090),): ["10.244.0.3"],
    }


@pytest.mark.parametrize("policy,phase,included", [
    ("Always", "Running", True), ("Never", "Succeeded", False), ("Never", "Failed", False),
    ("OnFailure", "Failed", True), ("OnFailure", "Succeeded", False),
])
def test_finished_pods_by_restart_policy(policy: str, phase: str, included: bool) -> None:
    p = pod("a", "10.244.0.1", phase=phase)
    p["spec"]["restartPolicy"] = policy
    assert endpoints.should_pod_be_in_endpoints(p, include_terminating=False) is included


def test_publish_not_ready_and_headless_labels() -> None:
    svc = service([{"port": 80}], publishNotReadyAddresses=True, cluster_ip="None")
    subsets = endpoints.desired_subsets(svc, [pod("a", "10.244.0.1", ready=False)])
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.244.0.1"] and "notReadyAddresses" not in subsets[0]
    body = endpoints.desired_endpoints(svc, [], None)
    assert body is not None and body["metadata"]["labels"] == {"tier": "front", endpoints.HEADLESS_LABEL: ""}
    # Headless without ports: addresses with no ports; a ClusterIP Service without ports: nothing.
    assert endpoints.desired_subsets(service([], cluster_ip="None"), [pod("a", "10.244.0.1")]) == [
        {"addresses": [endpoints.endpoint_address(pod("a", "10.244.0.1"), svc)]}]
    assert endpoints.desired_subsets(service([]), [pod("a", "10.244.0.1")]) == []


def test_unchanged_endpoints_need_no_write() -> None:
    svc = service([{"port": 80, "targetPort": 80, "protocol": "TCP"}])
    pods = [pod("a", "10.244.0.1")]
    body = endpoints.desired_endpoints(svc, pods, None)
    assert body is not None
    body["metadata"]["resourceVersion"] = "5"
    assert endpoints.desired_endpoints(svc, pods, body) is None
    assert endpoints.desired_endpoints(svc, pods + [pod("b", "10.244.0.2")], body) is not None


def test_truncation_over_capacity() -> None:
    svc = service([{"port": 80}])
    pods = [pod(f"p{i}", f"10.244.{i // 250}.{i % 250}", ready=i % 2 == 0) for i in range(1100)]
    body = endpoints.desired_endpoints(svc, pods, None)
    assert body is not None
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in body["subsets"])
    assert total == 1000 and len(body["subsets"][0]["addresses"]) == 550
    assert body["metadata"]["annotations"] == {endpoints.OVER_CAPACITY_ANNOTATION: "truncated"}


# ---------------------------------------------------------------------------------- in process
def running_controller(url: str) -> Any:
    return running(endpoints, url, workers=2)


async def make_pod(client: ApiClient, ns: str, name: str, ip: str, *, ready: bool) -> Obj:
    created = await client.create("pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"app": "web"}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx",
                                                       "ports": [{"name": "http", "containerPort": 8080}]}]}})
    return await set_status(client, created, ip=ip, ready=ready)


async def set_status(client: ApiClient, p: Obj, *, ip: str, ready: bool) -> Obj:
    live = await client.get("pods", p["metadata"]["name"], namespace=p["metadata"]["namespace"])
    live["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                      "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    return await client.update_status("pods", live)


async def test_endpoints_follow_pods_and_service(apiserver: Any, namespace: str) -> None:
    async with running_controller(apiserver.url) as client:
        await client.create("services", {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        a = await make_pod(client, namespace, "a", "10.244.1.1", ready=True)
        await make_pod(client, namespace, "b", "10.244.1.2", ready=False)
        # A Service without a selector: its (user's) Endpoints are left alone.
        await client.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "manual", "namespace": namespace},
                                         "spec": {"ports": [{"port": 80}]}})
        await client.create("endpoints", {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "manual", "namespace": namespace},
                                          "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 80}]}]})

        async def ep() -> Obj | None:
            try:
                return await client.get("endpoints", "web", namespace=namespace)
            except errors.NotFoundError:
                return None

        def ips(e: Obj | None, field: str) -> list[str]:
            return [x["ip"] for s in (e or {}).get("subsets") or [] for x in s.get(field) or []]

        async def split(ready: list[str], not_ready: list[str]) -> bool:
            e = await ep()
            return ips(e, "addresses") == ready and ips(e, "notReadyAddresses") == not_ready

        await eventually(lambda: split(["10.244.1.1"], ["10.244.1.2"]), what="ready/not-ready split")
        e = await ep()
        assert e is not None
        assert e["metadata"]["labels"] == {"tier": "front"} and not e["metadata"].get("ownerReferences")
        assert e["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert e["subsets"][0]["addresses"][0]["targetRef"] == {"kind": "Pod", "namespace": namespace, "name": "a",
                                                               "uid": a["metadata"]["uid"]}

        # Nothing changed -> nothing written, even when the controller looks again.
        rv = e["metadata"]["resourceVersion"]
        live_a = await client.get("pods", "a", namespace=namespace)
        live_a["metadata"].setdefault("annotations", {})["touched"] = "yes"  # a pod change that does not matter
        await client.update("pods", live_a)
        await asyncio.sleep(0.5)
        e2 = await ep()
        assert e2 is not None and e2["metadata"]["resourceVersion"] == rv

        # b becomes ready; then a is deleted.
        await set_status(client, await client.get("pods", "b", namespace=namespace), ip="10.244.1.2", ready=True)
        await eventually(lambda: split(["10.244.1.1", "10.244.1.2"], []), what="b ready")
        await client.delete("pods", "a", namespace=namespace, grace_period_seconds=0)
        await eventually(lambda: split(["10.244.1.2"], []), what="a removed")

        manual = await client.get("endpoints", "manual", namespace=namespace)
        assert ips(manual, "addresses") == ["192.0.2.1"]

        # The Service goes -> its Endpoints go.
        await client.delete("services", "web", namespace=namespace)

        async def gone() -> bool:
            return await ep() is None
        await eventually(gone, what="endpoints deleted")


# ---------------------------------------------------------------------------------- Endpoints made by hand
def hand_made(ns: str, name: str, ip: str, *, annotations: Obj | None = None) -> Obj:
    meta: Obj = {"name": name, "namespace": ns}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]}


async def get_or_none(client: ApiClient, resource: str, name: str, ns: str) -> Obj | None:
    try:
        return await client.get(resource, name, namespace=ns)
    except errors.NotFoundError:
        return None


async def managed_service_is_served(client: ApiClient, ns: str, name: str, ip: str) -> None:
    """A Service with a selector and one ready pod; returns once the controller wrote its Endpoints.

    Proof that the controller has processed what came before (its queue is worked in order)."""
    await client.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
                                     "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}})
    created = await client.create("pods", {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-pod", "namespace": ns, "labels": {"app": name}},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c", "image": "nginx"}]}})
    await set_status(client, created, ip=ip, ready=True)

    async def served() -> bool:
        e = await get_or_none(client, "endpoints", name, ns)
        return bool(e and [a["ip"] for s in e.get("subsets") or [] for a in s.get("addresses") or []] == [ip])
    await eventually(served, what=f"endpoints of {name}")


async def test_endpoints_made_before_their_selectorless_service_are_left_alone(apiserver: Any, namespace: str) -> None:
    async with running_controller(apiserver.url) as client:
        made = await client.create("endpoints", hand_made(namespace, "db", "192.0.2.10"))
        await asyncio.sleep(0.3)
        await client.create("services", {"apiVersion": "v1", "kind": "Service",
                                         "metadata": {"name": "db", "namespace": namespace},
                                         "spec": {"ports": [{"name": "pg", "port": 5432}]}})
        # The user changes both; the Endpoints stay exactly as the user wrote them.
        live = await client.get("services", "db", namespace=namespace)
        live["metadata"]["labels"] = {"tier": "data"}
        await client.update("services", live)
        edited = await client.get("endpoints", "db", namespace=namespace)
        edited["subsets"][0]["addresses"].append({"ip": "192.0.2.11"})
        edited = await client.update("endpoints", edited)
        # An ExternalName Service (even with a selector) gets no Endpoints either.
        await client.create("services", {"apiVersion": "v1", "kind": "Service",
                                         "metadata": {"name": "alias", "namespace": namespace},
                                         "spec": {"type": "ExternalName", "externalName": "db.example.com",
                                                  "selector": {"app": "witness"}}})
        await managed_service_is_served(client, namespace, "witness", "10.244.3.1")

        e = await client.get("endpoints", "db", namespace=namespace)
        assert e["metadata"]["uid"] == made["metadata"]["uid"]
        assert e["metadata"]["resourceVersion"] == edited["metadata"]["resourceVersion"]
        assert [a["ip"] for a in e["subsets"][0]["addresses"]] == ["192.0.2.10", "192.0.2.11"]
        assert not e["metadata"].get("labels")  # not even the Service's labels: not the controller's
        assert await get_or_none(client, "endpoints", "alias", namespace) is None

        # As in Kubernetes, deleting the Service deletes the Endpoints of its name, made by hand or not.
        await client.delete("services", "db", namespace=namespace)

        async def gone() -> bool:
            return await get_or_none(client, "endpoints", "db", namespace) is None
        await eventually(gone, what="the Service's Endpoints deleted with it")


async def test_selectorless_service_with_hand_made_endpoints_is_never_touched(apiserver: Any, namespace: str) -> None:
    async with running_controller(apiserver.url) as client:
        await client.create("services", {"apiVersion": "v1", "kind": "Service",
                                         "metadata": {"name": "ext", "namespace": namespace, "labels": {"a": "b"}},
                                         "spec": {"ports": [{"name": "pg", "port": 5432}]}})
        made = await client.create("endpoints", hand_made(namespace, "ext", "192.0.2.20"))
        # A pod labelled like anything: a Service without a selector selects nothing.
        await make_pod(client, namespace, "p", "10.244.4.1", ready=True)
        await managed_service_is_served(client, namespace, "witness", "10.244.4.2")
        e = await client.get("endpoints", "ext", namespace=namespace)
        assert e["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]
        assert e["subsets"] == made["subsets"]


async def test_leftovers_at_start_and_a_deleted_managed_endpoints_made_again(apiserver: Any, namespace: str) -> None:
    """Before the controller starts: an orphan (its Service went meanwhile) and a leader-election record."""
    async with ApiClient(apiserver.url) as client:
        await client.create("endpoints", hand_made(namespace, "orphan", "192.0.2.30"))
        lock = await client.create("endpoints", hand_made(
            namespace, "lock", "192.0.2.31", annotations={"control-plane.alpha.kubernetes.io/leader": '{"holderIdentity":"x"}'}))
    async with running_controller(apiserver.url) as client:
        await managed_service_is_served(client, namespace, "web", "10.244.5.1")

        async def orphan_gone() -> bool:
            return await get_or_none(client, "endpoints", "orphan", namespace) is None
        await eventually(orphan_gone, what="the leftover Endpoints deleted at start")
        kept = await client.get("endpoints", "lock", namespace=namespace)
        assert kept["metadata"]["resourceVersion"] == lock["metadata"]["resourceVersion"]

        # Someone deletes the Endpoints of a Service with a selector: the controller makes them again.
        first = await client.get("endpoints", "web", namespace=namespace)
        await client.delete("endpoints", "web", namespace=namespace)

        async def made_again() -> bool:
            e = await get_or_none(client, "endpoints", "web", namespace)
            return bool(e and e["metadata"]["uid"] != first["metadata"]["uid"] and e.get("subsets"))
        await eventually(made_again, what="the deleted Endpoints made again")
