"""The garbage collector: pure decisions first, then the collector in process against the apiserver."""

from __future__ import annotations

from controller_helpers import eventually, running
import asyncio
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from controllers import garbagecollector, gcgraph
from controllers.gcgraph import Delete, Keep, OwnerState, StripOwners
from controllers.manager import ControllerContext, ControllerManagerSettings
from machinery import errors
from machinery.client import ApiClient
from machinery.sharedinformers import InformerFactory

Obj = dict[str, Any]
S, D, W = OwnerState.SOLID, OwnerState.DANGLING, OwnerState.WAITING


def obj(uid: str, owners: list[str] = (), *, finalizers: list[str] = (), deleting: bool = False,  # type: ignore[assignment]
        block: bool = True) -> Obj:
    meta: Obj = {"name": uid, "uid": uid,
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o, "uid": o,
                                      "blockOwnerDeletion": block} for o in owners]}
    if finalizers:
        meta["finalizers"] = list(finalizers)
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": meta}


@pytest.mark.parametrize("owners,states,fins,has_deps,expected", [
    ([], {}, [], False, Keep()),
    (["a"], {"a": S}, [], False, Keep()),
    (["a"], {"a": D}, [], False, Delete("Background")),
    (["a", "b"], {"a": S, "b": D}, [], False, StripOwners(frozenset({"b"}))),
    (["a", "b"], {"a": S, "b": W}, [], False, StripOwners(frozenset({"b"}))),
    (["a"], {"a": W}, [], False, Delete("Background")),
    (["a"], {"a": W}, [], True, Delete("Foreground")),
    (["a"], {"a": D}, ["orphan"], True, Delete("Orphan")),
    (["a"], {"a": D}, ["foregroundDeletion"], True, Delete("Foreground")),
])
def test_decide_dependent(owners: list[str], states: dict[str, OwnerState], fins: list[str], has_deps: bool,
                          expected: object) -> None:
    assert gcgraph.decide_dependent(obj("x", owners, finalizers=fins), states, has_dependents=has_deps) == expected


def test_decide_deleting() -> None:
    owner = obj("o", finalizers=["foregroundDeletion"], deleting=True)
    blocking, loose = obj("p1", ["o"]), obj("p2", ["o"], block=False)
    going = obj("p3", ["o"], deleting=True)
    assert gcgraph.decide_deleting(owner, [blocking, loose, going]) == gcgraph.WaitForDependents(("p1", "p2"), ("p1", "p3"))
    assert gcgraph.decide_deleting(owner, [loose]) == gcgraph.RemoveFinalizer("foregroundDeletion")
    orphaning = obj("o", finalizers=["orphan"], deleting=True)
    assert gcgraph.decide_deleting(orphaning, [blocking, loose]) == gcgraph.Orphan(("p1", "p2"))
    assert gcgraph.decide_deleting(obj("o"), [blocking]) == Keep()


def test_owner_state() -> None:
    assert gcgraph.owner_state(None, "u") == D
    assert gcgraph.owner_state(obj("other"), "u") == D
    assert gcgraph.owner_state(obj("u"), "u") == S
    assert gcgraph.owner_state(obj("u", finalizers=["foregroundDeletion"], deleting=True), "u") == W
    assert gcgraph.owner_state(obj("u", deleting=True), "u") == S


def test_graph_indexes_dependents_and_reports_what_needs_a_look() -> None:
    g: gcgraph.OwnerGraph[str] = gcgraph.OwnerGraph()
    g.observe("p1", "ns/p1", ("rs",))
    g.observe("p2", "ns/p2", ("rs", "other"))
    assert g.dependents("rs") == {"p1", "p2"}
    assert g.observe("p2", "ns/p2", ("rs",)) == {"other"}  # dropped reference: that owner needs a look
    assert g.dependents("other") == set()
    g.observe("rs", "ns/rs", ())
    owners, deps = g.forget("rs")
    assert owners == () and deps == {"p1", "p2"}
    owners, deps = g.forget("p1")
    assert owners == ("rs",) and deps == set() and g.dependents("rs") == {"p2"}


# ---------------------------------------------------------------------------------- in process
def collector(url: str) -> Any:
    return running(garbagecollector, url, workers=4)


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


async def make_rs(client: ApiClient, ns: str, name: str) -> Obj:
    return await client.create("replicasets", {
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})


def ref(owner: Obj, kind: str = "ReplicaSet", api_version: str = "apps/v1") -> Obj:
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


async def make_pods(client: ApiClient, ns: str, owner: Obj, n: int, prefix: str = "p",
                    finalizers: list[str] | None = None) -> list[str]:
    names = []
    for i in range(n):
        meta: Obj = {"name": f"{prefix}{i}", "namespace": ns, "labels": {"app": "web"}, "ownerReferences": [ref(owner)]}
        if finalizers:
            meta["finalizers"] = finalizers
        await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": TEMPLATE["spec"]})
        names.append(meta["name"])
    return names


async def exists(client: ApiClient, resource: str, name: str, ns: str) -> bool:
    try:
        await client.get(resource, name, namespace=ns)
        return True
    except errors.NotFoundError:
        return False


async def none_exist(client: ApiClient, resource: str, names: list[str], ns: str) -> bool:
    return not any([await exists(client, resource, n, ns) for n in names])


async def test_background_deletes_dependents(apiserver: Any, namespace: str) -> None:
    async with collector(apiserver.url) as client:
        rs = await make_rs(client, namespace, "rs")
        pods = await make_pods(client, namespace, rs, 3)
        other = await make_rs(client, namespace, "keep")
        kept = await make_pods(client, namespace, other, 1, prefix="k")
        await client.delete("replicasets", "rs", namespace=namespace)
        await eventually(lambda: none_exist(client, "pods", pods, namespace), what="pods collected")
        assert await exists(client, "pods", kept[0], namespace)


async def test_foreground_owner_waits_for_blocking_dependents(apiserver: Any, namespace: str) -> None:
    async with collector(apiserver.url) as client:
        rs = await make_rs(client, namespace, "rs")
        pods = await make_pods(client, namespace, rs, 2)
        held = await make_pods(client, namespace, rs, 1, prefix="held", finalizers=["example.com/hold"])
        answer = await client.delete("replicasets", "rs", namespace=namespace, propagation_policy="Foreground")
        assert answer["metadata"].get("deletionTimestamp") and "foregroundDeletion" in answer["metadata"]["finalizers"]
        await eventually(lambda: none_exist(client, "pods", pods, namespace), what="plain pods collected")

        async def held_deleting() -> bool:
            p = await client.get("pods", held[0], namespace=namespace)
            return bool(p["metadata"].get("deletionTimestamp"))
        await eventually(held_deleting, what="held pod deleted")
        await asyncio.sleep(0.3)
        live = await client.get("replicasets", "rs", namespace=namespace)  # still waiting for the held pod
        assert live["metadata"]["deletionTimestamp"] and live["metadata"]["finalizers"] == ["foregroundDeletion"]

        await client.patch("pods", held[0], {"metadata": {"finalizers": None}}, namespace=namespace)
        await eventually(lambda: none_exist(client, "replicasets", ["rs"], namespace), what="owner gone")


async def test_foreground_cascades_through_levels(apiserver: Any, namespace: str) -> None:
    async with collector(apiserver.url) as client:
        dep = await client.create("deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": namespace},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})
        rs = await client.create("replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "d-1", "namespace": namespace, "ownerReferences": [ref(dep, "Deployment")]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})
        pods = await make_pods(client, namespace, rs, 2)
        await client.delete("deployments", "d", namespace=namespace, propagation_policy="Foreground")
        await eventually(lambda: none_exist(client, "deployments", ["d"], namespace), what="deployment gone")
        assert await none_exist(client, "pods", pods, namespace)
        assert await none_exist(client, "replicasets", ["d-1"], namespace)


async def test_orphan_keeps_dependents_and_strips_references(apiserver: Any, namespace: str) -> None:
    async with collector(apiserver.url) as client:
        rs = await make_rs(client, namespace, "rs")
        pods = await make_pods(client, namespace, rs, 2)
        answer = await client.delete("replicasets", "rs", namespace=namespace, propagation_policy="Orphan")
        assert "orphan" in answer["metadata"]["finalizers"]
        await eventually(lambda: none_exist(client, "replicasets", ["rs"], namespace), what="owner gone")
        for name in pods:
            p = await client.get("pods", name, namespace=namespace)
            assert not p["metadata"].get("ownerReferences") and not p["metadata"].get("deletionTimestamp")


async def test_dependents_of_owners_deleted_while_down_are_collected_at_start(apiserver: Any, namespace: str) -> None:
    async with ApiClient(apiserver.url) as client:
        rs = await make_rs(client, namespace, "rs")
        orphaned = await make_pods(client, namespace, rs, 2)
        await client.delete("replicasets", "rs", namespace=namespace)  # no collector running
        # Same name, another uid: the old owner is still gone.
        await make_rs(client, namespace, "rs")
        solid = await make_rs(client, namespace, "solid")
        kept = await make_pods(client, namespace, solid, 1, prefix="k")
        await asyncio.sleep(0.2)
        assert not await none_exist(client, "pods", orphaned, namespace)
    async with collector(apiserver.url) as client:
        await eventually(lambda: none_exist(client, "pods", orphaned, namespace), what="dangling dependents collected")
        await asyncio.sleep(0.3)
        assert await exists(client, "pods", kept[0], namespace)
