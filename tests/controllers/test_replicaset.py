"""ReplicaSet controller: the pure plan (counts, victim order, adopt/release, status), expectations,
and the controller against the real apiserver (ownerReferences, no over-creation, scale, status)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from workload_helpers import T0, make_ready, pod, replica_set, ts, until

from controllers import replicaset as rsc
from controllers import replicasetplan as rsp
from controllers.expectations import Expectations
from controllers.manager import ControllerContext, ControllerManagerSettings
from machinery.client import ApiClient
from machinery.informer import Informer
from machinery.sharedinformers import InformerFactory

NOW = T0 + timedelta(seconds=3600)


# ============================================================================ pure plan
@pytest.mark.parametrize(("replicas", "existing", "create", "delete"), [
    (3, 0, 3, 0), (3, 1, 2, 0), (3, 3, 0, 0), (3, 5, 0, 2), (0, 4, 0, 4), (1000, 0, 500, 0)])
def test_plan_counts(replicas: int, existing: int, create: int, delete: int) -> None:
    rs = replica_set(replicas=replicas)
    pods = [pod(f"p{i}", owner=rs, created=i) for i in range(existing)]
    p = rsp.plan(rs, pods, now=NOW)
    assert (p.create, len(p.delete)) == (create, delete)


def test_plan_does_nothing_while_expectations_pending_or_rs_deleting() -> None:
    rs = replica_set(replicas=3)
    assert rsp.plan(rs, [], now=NOW, manage=False).create == 0
    rs["metadata"]["deletionTimestamp"] = ts(5)
    assert rsp.plan(rs, [], now=NOW).create == 0


def test_inactive_pods_are_not_counted() -> None:
    rs = replica_set(replicas=2)
    pods = [pod("a", owner=rs), pod("gone", owner=rs, deleting=True), pod("done", owner=rs, phase="Succeeded"),
            pod("bad", owner=rs, phase="Failed")]
    p = rsp.plan(rs, pods, now=NOW)
    assert p.create == 1 and p.status["replicas"] == 1


def test_deletion_order_follows_kubernetes() -> None:
    rs = replica_set(replicas=0)
    pods = [
        pod("old-ready", owner=rs, node="n1", created=1, ready_at=2),
        pod("new-ready", owner=rs, node="n2", created=5, ready_at=6),
        pod("ready-recently", owner=rs, node="n3", created=1, ready_at=50),
        pod("not-ready", owner=rs, node="n4", ready=False, created=1),
        pod("pending", owner=rs, node="n5", phase="Pending", ready=False, created=1),
        pod("unknown", owner=rs, node="n6", phase="Unknown", ready=False, created=1),
        pod("unscheduled", owner=rs, phase="Pending", ready=False, created=0),
        pod("restarty", owner=rs, node="n7", created=1, ready_at=2, restarts=5),
    ]
    order = [p["metadata"]["name"] for p in rsp.rank_for_deletion(pods)]
    assert order == ["unscheduled", "pending", "unknown", "not-ready", "ready-recently", "new-ready",
                     "restarty", "old-ready"]


def test_deletion_prefers_pods_doubled_up_on_a_node() -> None:
    rs = replica_set(replicas=0)
    pods = [pod("alone", owner=rs, node="n1", created=9, ready_at=9),
            pod("twin-a", owner=rs, node="n2", created=1, ready_at=1),
            pod("twin-b", owner=rs, node="n2", created=1, ready_at=1)]
    assert [p["metadata"]["name"] for p in rsp.rank_for_deletion(pods)][:2] == ["twin-a", "twin-b"]


def test_scale_down_picks_the_first_ranked() -> None:
    rs = replica_set(replicas=2)
    pods = [pod("ready", owner=rs, node="n1"), pod("notready", owner=rs, node="n1", ready=False),
            pod("unsched", owner=rs, phase="Pending", ready=False), pod("ready2", owner=rs, node="n2")]
    p = rsp.plan(rs, pods, now=NOW)
    assert [x["metadata"]["name"] for x in p.delete] == ["unsched", "notready"]


def test_adopts_orphans_and_releases_non_matching() -> None:
    rs = replica_set(replicas=2)
    other = replica_set("other", uid="other-uid")
    orphan = pod("orphan")
    mine_changed = pod("mine-relabelled", owner=rs, labels={"app": "other"})
    theirs = pod("theirs", owner=other)
    deleting_orphan = pod("deleting-orphan", deleting=True)
    unrelated = pod("unrelated", labels={"app": "db"})
    p = rsp.plan(rs, [orphan, mine_changed, theirs, deleting_orphan, unrelated], now=NOW)
    assert [x["metadata"]["name"] for x in p.adopt] == ["orphan"]
    assert [x["metadata"]["name"] for x in p.release] == ["mine-relabelled"]
    assert [x["metadata"]["name"] for x in p.active] == ["orphan"]
    assert p.create == 1


def test_status_counts() -> None:
    rs = replica_set(replicas=4, min_ready=30, generation=7)
    pods = [pod("a", owner=rs, ready_at=0),                      # available (ready an hour)
            pod("b", owner=rs, ready_at=3590),                   # ready 10s < 30s: not available
            pod("c", owner=rs, ready=False),                     # not ready
            pod("d", owner=rs, labels={"app": "web", "x": "y"})]  # extra label: still fully labelled
    st = rsp.plan(rs, pods, now=NOW).status
    assert st == {"replicas": 4, "fullyLabeledReplicas": 4, "readyReplicas": 3, "availableReplicas": 2,
                  "observedGeneration": 7}


def test_status_written_only_when_changed() -> None:
    rs = replica_set(replicas=1)
    pods = [pod("a", owner=rs)]
    st = rsp.plan(rs, pods, now=NOW).status
    assert rsp.status_changed(rs, st)
    rs["status"] = st
    assert not rsp.status_changed(rs, rsp.plan(rs, pods, now=NOW).status)


@pytest.mark.parametrize(("count", "batches"), [(0, []), (1, [1]), (3, [1, 2]), (10, [1, 2, 4, 3]),
                                                 (15, [1, 2, 4, 8])])
def test_slow_start_batches(count: int, batches: list[int]) -> None:
    assert rsp.slow_start_batches(count) == batches


def test_pod_from_template() -> None:
    from controllers.ownerrefs import pod_from_template
    rs = replica_set("web-abc")
    body = pod_from_template(rs["spec"]["template"], rs, api_version="apps/v1", kind="ReplicaSet")
    assert body["metadata"]["generateName"] == "web-abc-"
    assert body["metadata"]["labels"] == {"app": "web"}
    assert body["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                                                    "uid": rs["metadata"]["uid"], "controller": True,
                                                    "blockOwnerDeletion": True}]
    body["spec"]["containers"][0]["image"] = "changed"
    assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"  # a copy


def test_expectations() -> None:
    clock = [0.0]
    e = Expectations(ttl_s=10, clock=lambda: clock[0])
    assert e.satisfied("ns/rs")
    e.expect_creations("ns/rs", 2)
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert not e.satisfied("ns/rs")
    e.creation_observed("ns/rs")
    assert e.satisfied("ns/rs")
    e.expect_deletions("ns/rs", ["ns/a", "ns/b"])
    e.deletion_observed("ns/rs", "ns/a")
    e.deletion_observed("ns/rs", "ns/a")  # the same pod seen deleting, then deleted: counted once
    assert not e.satisfied("ns/rs")
    clock[0] = 11
    assert e.satisfied("ns/rs")  # TTL: a lost event does not block the controller forever


# ============================================================================ against the apiserver
def _rs_body(name: str, replicas: int, *, image: str = "nginx:1") -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


class _Running:
    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.rs_inf = Informer(client, "apps/v1", "replicasets", namespace=namespace)
        self.pod_inf = Informer(client, "v1", "pods", namespace=namespace)
        self.ctrl = rsc.ReplicaSetController(client, self.rs_inf, self.pod_inf,
                                             settings=rsc.ReplicaSetControllerSettings(workers=2))
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, *, run: bool = True) -> None:
        self.tasks = [self.rs_inf.start(), self.pod_inf.start()]
        assert await self.rs_inf.wait_synced(10) and await self.pod_inf.wait_synced(10)
        if run:
            self.tasks.append(asyncio.create_task(self.ctrl.run()))

    async def stop(self) -> None:
        await self.ctrl.controller.stop(timeout_s=2)
        self.rs_inf.stop()
        self.pod_inf.stop()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def test_rs_creates_owned_pods_scales_and_reports_status(apiserver, namespace) -> None:
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        run = _Running(client, namespace)
        await run.start()
        try:
            rs = await client.create("replicasets", _rs_body("web", 5))

            async def pods() -> list[dict]:
                return [p for p in (await client.list("pods", namespace=namespace))["items"]
                        if not p["metadata"].get("deletionTimestamp")]

            async def have(n: int) -> bool:
                return len(await pods()) == n
            await until(lambda: have(5), what="5 pods")
            for p in await pods():
                assert p["metadata"]["generateName"] == "web-" and p["metadata"]["name"].startswith("web-")
                assert p["metadata"]["labels"] == {"app": "web"}
                assert p["metadata"]["ownerReferences"] == [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": rs["metadata"]["uid"],
                    "controller": True, "blockOwnerDeletion": True}]
                await make_ready(client, p)

            async def status_is(want: dict) -> bool:
                st = (await client.get("replicasets", "web")).get("status") or {}
                return all(st.get(k, 0) == v for k, v in want.items())
            await until(lambda: status_is({"replicas": 5, "fullyLabeledReplicas": 5, "readyReplicas": 5,
                                           "availableReplicas": 5, "observedGeneration": 1}), what="status")
            await client.patch_scale("replicasets", "web", 2)
            await until(lambda: have(2), what="scale down to 2")
            await until(lambda: status_is({"replicas": 2, "readyReplicas": 2, "observedGeneration": 2}),
                        what="status after scale down")
            # A pod deleted behind the controller's back is replaced.
            victim = (await pods())[0]
            await client.delete("pods", victim["metadata"]["name"], grace_period_seconds=0)
            await until(lambda: have(2), what="replacement")
            assert victim["metadata"]["name"] not in {p["metadata"]["name"] for p in await pods()}
            events = (await client.list("events", namespace=namespace))["items"]
            reasons = {e["reason"] for e in events}
            assert {"SuccessfulCreate", "SuccessfulDelete"} <= reasons
            assert any(e["message"].startswith("Created pod: web-") for e in events)
        finally:
            await run.stop()


async def test_rs_adopts_orphans_and_releases_relabelled_pods(apiserver, namespace) -> None:
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        orphan = await client.create("pods", {"apiVersion": "v1", "kind": "Pod",
                                              "metadata": {"name": "orphan", "labels": {"app": "db"}},
                                              "spec": {"containers": [{"name": "c", "image": "x"}]}})
        run = _Running(client, namespace)
        await run.start()
        try:
            rs = await client.create("replicasets", _rs_body("db", 2))

            async def owned() -> list[dict]:
                return [p for p in (await client.list("pods", namespace=namespace))["items"]
                        if any(r.get("uid") == rs["metadata"]["uid"] for r in p["metadata"].get("ownerReferences") or [])]

            async def two_owned() -> bool:
                return len(await owned()) == 2
            await until(two_owned, what="adoption + 1 creation")
            assert "orphan" in {p["metadata"]["name"] for p in await owned()}
            ref = (await client.get("pods", "orphan"))["metadata"]["ownerReferences"][0]
            assert ref["controller"] is True and ref["kind"] == "ReplicaSet"
            # Relabel the adopted pod: it is released, and a new one replaces it.
            await client.patch("pods", "orphan", {"metadata": {"labels": {"app": "other"}}})

            async def released() -> bool:
                o = await client.get("pods", "orphan")
                return not o["metadata"].get("ownerReferences") and len(await owned()) == 2
            await until(released, what="release + replacement")
            del orphan
        finally:
            await run.stop()


async def test_expectations_prevent_over_creation(apiserver, namespace) -> None:
    """Two reconciles back to back, before the watch shows the first round's pods: one round only."""
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        run = _Running(client, namespace)
        await run.start(run=False)  # no workers: we call reconcile ourselves
        try:
            await client.create("replicasets", _rs_body("burst", 20))
            key = f"{namespace}/burst"
            await until(lambda: _true_if(run.rs_inf.get(key) is not None), what="rs in cache")
            await asyncio.gather(run.ctrl.reconcile(key), run.ctrl.reconcile(key))
            await run.ctrl.reconcile(key)
            items = (await client.list("pods", namespace=namespace))["items"]
            assert len(items) == 20
            # Once the watch has shown them all, expectations are satisfied and nothing more is made.
            await until(lambda: _true_if(run.ctrl.expectations.satisfied(key)), what="expectations observed")
            await run.ctrl.reconcile(key)
            assert len((await client.list("pods", namespace=namespace))["items"]) == 20
        finally:
            await run.stop()


async def _true_if(value: bool) -> bool:
    return value


async def test_starts_without_waiting_for_other_controllers_informers(apiserver, namespace) -> None:
    """The controller waits for its own caches only: an informer of the same process that never
    syncs (a resource the server does not serve) must not hold it back."""
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        factory = InformerFactory(client)
        factory.informer(("example.com/v1", "neverserved"))  # 404 forever
        ctx = ControllerContext(client, factory, ControllerManagerSettings(server=apiserver.url, leader_elect=False))
        task = asyncio.create_task(rsc.run(ctx))
        try:
            await client.create("replicasets", _rs_body("alone", 2))

            async def two() -> bool:
                return len((await client.list("pods", namespace=namespace))["items"]) == 2
            await until(two, what="2 pods")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.stop()


def test_replica_set_kind_reads_objects_as_they_are() -> None:
    rs = replica_set()
    assert rsc.REPLICA_SET.to_replica_set(rs) is rs
    assert rsc.REPLICA_SET.controller_ref(rs)["kind"] == "ReplicaSet"
    assert rsc.REPLICA_SET.pod_body(rs)["metadata"]["ownerReferences"][0]["apiVersion"] == "apps/v1"
