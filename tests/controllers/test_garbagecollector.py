"""The garbage collector: pure decisions first, then the collector in process against the apiserver
(including resources it discovers after it started, and custom resources once CRDs are served)."""

from __future__ import annotations

from controller_helpers import eventually, running
import asyncio
import logging
import uuid
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import pytest

from controllers import garbagecollector, gcgraph
from controllers.garbagecollector import GarbageCollector, GarbageCollectorSettings
from controllers.gcgraph import Delete, DiscoveredResource, Keep, OwnerState, StripOwners
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


# ---------------------------------------------------------------------------------- discovery (pure)
DELETABLE = frozenset({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"})


def res(gv: str, plural: str, kind: str = "", *, namespaced: bool = True,
        verbs: frozenset[str] = DELETABLE) -> DiscoveredResource:
    return DiscoveredResource(gv, plural, kind or plural.capitalize(), namespaced, verbs)


def test_preferred_group_versions_core_first() -> None:
    api = {"kind": "APIVersions", "versions": ["v1"]}
    apis = {"groups": [
        {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
        {"name": "example.com", "versions": [{"groupVersion": "example.com/v2", "version": "v2"},
                                             {"groupVersion": "example.com/v1", "version": "v1"}],
         "preferredVersion": {"groupVersion": "example.com/v2", "version": "v2"}},
        {"name": "nopref.io", "versions": [{"groupVersion": "nopref.io/v1beta1", "version": "v1beta1"}]}]}
    assert gcgraph.preferred_group_versions(api, apis) == ["v1", "apps/v1", "example.com/v2", "nopref.io/v1beta1"]
    assert gcgraph.preferred_group_versions({}, {}) == []


def test_deletable_resources_follow_kubernetes() -> None:
    core = {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "pods", "kind": "Pod", "namespaced": True, "verbs": sorted(DELETABLE)},
        {"name": "pods/status", "kind": "Pod", "namespaced": True, "verbs": ["get", "patch", "update"]},
        {"name": "events", "kind": "Event", "namespaced": True, "verbs": sorted(DELETABLE)},
        {"name": "namespaces", "kind": "Namespace", "namespaced": False, "verbs": sorted(DELETABLE)},
        {"name": "bindings", "kind": "Binding", "namespaced": True, "verbs": ["create"]},
        {"name": "componentstatuses", "kind": "ComponentStatus", "namespaced": False, "verbs": ["get", "list"]}]}
    events = {"groupVersion": "events.k8s.io/v1", "resources": [
        {"name": "events", "kind": "Event", "namespaced": True, "verbs": sorted(DELETABLE)}]}
    found = gcgraph.resources_in(core, "v1") + gcgraph.resources_in(events, "events.k8s.io/v1")
    assert [r.plural for r in found] == ["pods", "events", "namespaces", "bindings", "componentstatuses", "events"]
    assert found[0] == DiscoveredResource("v1", "pods", "Pod", True, DELETABLE)
    # list + watch + delete, minus Kubernetes' ignored resources (both Events); Namespaces stay.
    assert sorted(gcgraph.deletable(found)) == [("v1", "namespaces"), ("v1", "pods")]
    assert sorted(gcgraph.deletable(found, ignored=frozenset())) == [
        ("events.k8s.io/v1", "events"), ("v1", "events"), ("v1", "namespaces"), ("v1", "pods")]


PODS, RS, CR = res("v1", "pods", "Pod"), res("apps/v1", "replicasets", "ReplicaSet"), res("x.io/v1", "widgets")


@pytest.mark.parametrize("current,wanted,failed,synced,add,remove", [
    ([], [PODS, RS], [], [], [PODS, RS], []),                      # first discovery
    ([PODS, RS], [PODS, RS], [], [], [], []),                      # nothing changed
    ([PODS, RS], [PODS, RS, CR], [], [], [CR], []),                # a CRD was created
    ([PODS, RS, CR], [PODS, RS], [], [], [], [CR]),                # ... and deleted
    ([PODS, RS, CR], [PODS, RS], ["x.io/v1"], [CR.gvr], [], []),   # its group failed: keep the synced monitor
    ([PODS, RS, CR], [PODS, RS], ["x.io/v1"], [], [], [CR]),       # ... but not one that never synced
])
def test_plan_monitors(current: list[DiscoveredResource], wanted: list[DiscoveredResource], failed: list[str],
                       synced: list[tuple[str, str]], add: list[DiscoveredResource],
                       remove: list[DiscoveredResource]) -> None:
    plan = gcgraph.plan_monitors({r.gvr: r for r in current}, {r.gvr: r for r in wanted}, failed=failed,
                                 synced=synced)
    assert sorted(plan.add, key=lambda r: r.gvr) == sorted(add, key=lambda r: r.gvr)
    assert sorted(plan.remove) == sorted(r.gvr for r in remove)
    assert plan.changed == bool(add or remove)


def test_kind_index_maps_group_and_kind() -> None:
    v2 = res("x.io/v2", "widgets", "Widget")
    index = gcgraph.kind_index([PODS, RS, v2, res("x.io/v2", "widgetsagain", "Widget")])
    assert index[("", "Pod")] == PODS and index[("apps", "ReplicaSet")] == RS
    assert index[("x.io", "Widget")] == v2  # the first one; any version of the group maps to it
    kept = gcgraph.kind_index([PODS], previous=index, failed=["x.io/v2"])
    assert kept[("x.io", "Widget")] == v2 and ("apps", "ReplicaSet") not in kept
    assert gcgraph.group_of("apps/v1") == "apps" and gcgraph.group_of("v1") == ""


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


# ---------------------------------------------------------------------------------- discovery in process
class FilteredDiscovery:
    """The real discovery, minus ``hidden`` resources and plus ``extra`` ones; counts its calls."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client
        self.hidden: set[tuple[str, str]] = set()
        self.extra: list[DiscoveredResource] = []
        self.calls = 0

    async def __call__(self) -> gcgraph.Discovery:
        self.calls += 1
        found = await garbagecollector.discover_resources(self.client)
        return gcgraph.Discovery(tuple(r for r in found.resources if r.gvr not in self.hidden) + tuple(self.extra),
                                 found.failed)


@asynccontextmanager
async def gc_running(url: str, *, period: float = 0.2, sync_timeout: float = 5.0,
                     hidden: set[tuple[str, str]] | None = None,
                     extra: list[DiscoveredResource] | None = None,
                     ) -> AsyncIterator[tuple[ApiClient, GarbageCollector, FilteredDiscovery, "asyncio.Task[None]"]]:
    """A collector with its own informers, a fast rediscovery and a discovery the test can steer."""
    async with ApiClient(url) as client:
        factory = InformerFactory(client)
        ctx = ControllerContext(client, factory, ControllerManagerSettings(server=url, leader_elect=False))
        discovery = FilteredDiscovery(client)
        discovery.hidden |= hidden or set()
        discovery.extra += extra or []
        gc = GarbageCollector(ctx, discover=discovery, settings=GarbageCollectorSettings(
            workers=4, resync_period_s=period, initial_sync_timeout_s=sync_timeout))
        task = asyncio.create_task(gc.run())
        try:
            yield client, gc, discovery, task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.stop()


CONFIGMAPS = ("v1", "configmaps")


async def make_owned_configmap(client: ApiClient, ns: str, name: str, owner: Obj, *, kind: str,
                               api_version: str) -> Obj:
    return await client.create("configmaps", {
        "apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"},
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [ref(owner, kind, api_version)]}})


async def test_resource_discovered_after_start_is_watched_and_collected(apiserver: Any, namespace: str) -> None:
    async with gc_running(apiserver.url, hidden={CONFIGMAPS}) as (client, gc, discovery, task):
        await eventually(lambda: _true(bool(gc.monitors)), what="first discovery")
        assert CONFIGMAPS not in gc.monitors and ("apps/v1", "replicasets") in gc.monitors
        assert ("v1", "events") not in gc.monitors and ("v1", "namespaces") in gc.monitors
        rs = await make_rs(client, namespace, "owner")
        await make_owned_configmap(client, namespace, "cm", rs, kind="ReplicaSet", api_version="apps/v1")
        await client.delete("replicasets", "owner", namespace=namespace)
        await asyncio.sleep(0.6)  # three rediscoveries: the collector does not see ConfigMaps yet
        assert await exists(client, "configmaps", "cm", namespace)

        discovery.hidden.clear()  # ConfigMaps "appear"
        await eventually(lambda: _true(CONFIGMAPS in gc.monitors), what="configmaps monitored")
        await eventually(lambda: none_exist(client, "configmaps", ["cm"], namespace), what="configmap collected")

        informer = gc.monitors[CONFIGMAPS].informer
        discovery.hidden.add(CONFIGMAPS)  # ... and go away: the monitor stops, the informer is released
        await eventually(lambda: _true(CONFIGMAPS not in gc.monitors), what="configmaps monitor stopped")
        assert informer not in gc.factory
        await client.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "later", "namespace": namespace}})
        await asyncio.sleep(0.3)
        assert informer.get(f"{namespace}/later") is None  # no longer watching
        assert not task.done()


async def test_rediscovery_runs_every_resync_period(apiserver: Any) -> None:
    async with gc_running(apiserver.url, period=0.1) as (_, gc, fast, task):
        await asyncio.sleep(1.0)
        assert fast.calls >= 5 and not task.done()
    async with gc_running(apiserver.url, period=30.0) as (_, gc, slow, task):
        await eventually(lambda: _true(bool(gc.monitors)), what="first discovery")
        await asyncio.sleep(0.5)
        assert slow.calls == 1


async def test_vanished_resource_neither_blocks_nor_crashes(apiserver: Any, namespace: str,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """A resource discovery lists but the server answers 404 for (its CRD just went): its informer
    retries with backoff, collection goes on, and it is stopped when discovery drops it."""
    ghost = DiscoveredResource(f"gone{uuid.uuid4().hex[:6]}.example.com/v1", "ghosts", "Ghost", True,
                               frozenset({"list", "watch", "delete"}))
    caplog.set_level(logging.WARNING, logger="machinery.informer")
    async with gc_running(apiserver.url, extra=[ghost], sync_timeout=0.5) as (client, gc, discovery, task):
        await eventually(lambda: _true(ghost.gvr in gc.monitors), what="ghost monitored")
        informer = gc.monitors[ghost.gvr].informer
        rs = await make_rs(client, namespace, "rs")
        pods = await make_pods(client, namespace, rs, 2)
        await client.delete("replicasets", "rs", namespace=namespace)
        await eventually(lambda: none_exist(client, "pods", pods, namespace), what="collection goes on")
        assert not informer.has_synced and not task.done()
        failures = [r for r in caplog.records if "ghosts" in r.name and "list/watch failed" in r.getMessage()]
        assert 1 <= len(failures) <= 8  # backing off, not spinning

        discovery.extra.clear()
        await eventually(lambda: _true(ghost.gvr not in gc.monitors), what="ghost monitor stopped")
        assert informer not in gc.factory and not task.done()


async def test_owner_of_unknown_kind_is_kept_until_discovery_knows_it(apiserver: Any, namespace: str) -> None:
    """Never delete on a guess: an owner whose kind discovery does not list cannot be verified."""
    async with gc_running(apiserver.url, hidden={("apps/v1", "deployments")}) as (client, gc, discovery, task):
        await eventually(lambda: _true(bool(gc.monitors)), what="first discovery")
        fake_owner = {"metadata": {"name": "d", "uid": str(uuid.uuid4())}}
        rs = await client.create("replicasets", {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "child", "namespace": namespace,
                         "ownerReferences": [ref(fake_owner, "Deployment")]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE}})
        await asyncio.sleep(0.6)
        assert await exists(client, "replicasets", "child", namespace)
        assert rs["metadata"]["uid"] in gc._unresolved
        discovery.hidden.clear()  # Deployments become known: the dangling owner is verified, the child goes
        await eventually(lambda: none_exist(client, "replicasets", ["child"], namespace), what="child collected")


# ---------------------------------------------------------------------------------- custom resources
async def _crds_served(client: ApiClient) -> bool:
    try:
        doc = await client.request("GET", "/apis/apiextensions.k8s.io/v1")
    except errors.ApiError:
        return False
    return any(r.get("name") == "customresourcedefinitions" for r in (doc or {}).get("resources") or [])


async def test_custom_resource_owner_added_after_start(apiserver: Any, namespace: str) -> None:
    """A ConfigMap owned by a custom object whose CRD is created after the collector started."""
    async with gc_running(apiserver.url) as (client, gc, discovery, task):
        assert await _crds_served(client), "the apiserver serves apiextensions.k8s.io/v1 CustomResourceDefinitions"
        await eventually(lambda: _true(bool(gc.monitors)), what="first discovery")
        group = f"gc{uuid.uuid4().hex[:8]}.example.com"
        crd_name = f"widgets.{group}"
        await client.create(("apiextensions.k8s.io/v1", "customresourcedefinitions"), {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": crd_name},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]}})
        widgets = (f"{group}/v1", "widgets")
        try:
            async def served() -> bool:
                try:
                    doc = await client.request("GET", f"/apis/{group}/v1")
                except errors.NotFoundError:
                    return False
                return any(r.get("name") == "widgets" for r in (doc or {}).get("resources") or [])
            await eventually(served, what="widgets served")
            widget = await client.create(widgets, {"apiVersion": f"{group}/v1", "kind": "Widget",
                                                   "metadata": {"name": "w1", "namespace": namespace}})
            await make_owned_configmap(client, namespace, "owned", widget, kind="Widget", api_version=f"{group}/v1")
            await eventually(lambda: _true(widgets in gc.monitors), what="widgets monitored")
            await asyncio.sleep(0.3)
            assert await exists(client, "configmaps", "owned", namespace)  # its owner is there

            await client.delete(widgets, "w1", namespace=namespace)
            await eventually(lambda: none_exist(client, "configmaps", ["owned"], namespace),
                             what="configmap owned by a deleted custom object collected")
        finally:
            await client.delete(("apiextensions.k8s.io/v1", "customresourcedefinitions"), crd_name)
        await eventually(lambda: _true(widgets not in gc.monitors), what="widgets monitor stopped with its CRD")
        assert not task.done()


async def _true(value: bool) -> bool:
    return value
