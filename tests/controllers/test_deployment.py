"""Deployment + ReplicaSet controllers in process (through the controller-manager's run_controllers)
against the real apiserver: first rollout, status as `kubectl rollout status` reads it, a rolling
update proven within maxSurge/maxUnavailable by a pod watcher, rollback reusing the old
ReplicaSet, Recreate, and scale to 0 and back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from workload_helpers import make_ready, until

from controllers import deploymentutil as du
from controllers.manager import ControllerContext, ControllerManagerSettings, run_controllers
from machinery import errors
from machinery.client import ApiClient
from machinery.sharedinformers import InformerFactory

Obj = dict[str, Any]


def _deployment(name: str, replicas: int, image: str, *, strategy: Obj | None = None) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": strategy or {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


class Cluster:
    """The two controllers plus a stand-in kubelet that marks new pods ready after ``delay``."""

    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client = client
        self.ns = namespace
        self.delay = 0.0
        self.hold = False  # when True, new pods stay unready
        self._todo: asyncio.Queue[str] = asyncio.Queue()
        self.informers = InformerFactory(client)
        settings = ControllerManagerSettings(server=client.server, controllers=("replicaset", "deployment"),
                                             leader_elect=False, workers=4)
        self.ctx = ControllerContext(client, self.informers, settings)
        pods = self.informers.informer(("v1", "pods"))
        pods.add_handler(on_add=lambda p: self._todo.put_nowait(p["metadata"]["name"])
                         if p["metadata"].get("namespace") == namespace else None)
        self.tasks: list[asyncio.Task[None]] = []

    async def _kubelet(self) -> None:
        while True:
            name = await self._todo.get()
            while self.hold:
                await asyncio.sleep(0.05)
            await asyncio.sleep(self.delay)
            for _ in range(5):
                try:
                    p = await self.client.get("pods", name, namespace=self.ns)
                    if not p["metadata"].get("deletionTimestamp"):
                        await make_ready(self.client, p)
                    break
                except errors.NotFoundError:
                    break
                except errors.ConflictError:
                    continue

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Cluster]:
        self.tasks = [asyncio.create_task(run_controllers(self.ctx)), asyncio.create_task(self._kubelet())]
        try:
            yield self
        finally:
            for t in self.tasks:
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.informers.stop()

    async def pods(self, app: str) -> list[Obj]:
        items = (await self.client.list("pods", namespace=self.ns, label_selector=f"app={app}"))["items"]
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    async def rss(self, app: str) -> list[Obj]:
        return (await self.client.list("replicasets", namespace=self.ns, label_selector=f"app={app}"))["items"]

    async def rolled_out(self, name: str) -> bool:
        """`kubectl rollout status`'s test of a Deployment, on the API's view."""
        d = await self.client.get("deployments", name, namespace=self.ns)
        st = d.get("status") or {}
        want = d["spec"]["replicas"]
        return (st.get("observedGeneration", 0) >= d["metadata"]["generation"]
                and st.get("updatedReplicas", 0) == want
                and st.get("replicas", 0) == st.get("updatedReplicas", 0)
                and st.get("availableReplicas", 0) == st.get("updatedReplicas", 0))


class PodRecorder:
    """Watches every pod event of one app and checks the rolling-update bounds after each."""

    def __init__(self, client: ApiClient, namespace: str, app: str, *, max_pods: int, min_available: int) -> None:
        self.client, self.ns, self.app = client, namespace, app
        self.max_pods, self.min_available = max_pods, min_available
        self.live: dict[str, bool] = {}  # name -> ready, pods not being deleted
        self.events = 0
        self.peak = 0
        self.trough = 10**9
        self.violations: list[str] = []
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listed = await self.client.list("pods", namespace=self.ns, label_selector=f"app={self.app}")
        for p in listed["items"]:
            self._apply("ADDED", p, check=False)
        self._apply("LISTED", None)
        rv = listed["metadata"]["resourceVersion"]
        self.task = asyncio.create_task(self._run(rv))

    async def _run(self, rv: str) -> None:
        async with self.client.watch("pods", namespace=self.ns, label_selector=f"app={self.app}",
                                     resource_version=rv, timeout_seconds=120) as stream:
            async for etype, p in stream:
                self._apply(etype, p)

    def _apply(self, etype: str, p: Obj | None, *, check: bool = True) -> None:
        name = p["metadata"]["name"] if p is not None else ""
        if p is None:
            pass
        elif etype == "DELETED" or p["metadata"].get("deletionTimestamp"):
            self.live.pop(name, None)
        else:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (p.get("status") or {}).get("conditions") or [])
            self.live[name] = ready
        if not check:
            return
        self.events += 1
        count, available = len(self.live), sum(self.live.values())
        self.peak, self.trough = max(self.peak, count), min(self.trough, available)
        if count > self.max_pods:
            self.violations.append(f"{count} pods > {self.max_pods} after {etype} {name}")
        if available < self.min_available:
            self.violations.append(f"{available} available < {self.min_available} after {etype} {name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


async def test_deployment_rollout_rolling_update_rollback_and_scale(apiserver, namespace) -> None:
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        cluster = Cluster(client, namespace)
        async with cluster.running():
            d = await client.create("deployments", _deployment("web", 10, "nginx:1"))

            # ---- first rollout: one RS named by the template hash, 10 owned pods, status complete
            await until(lambda: cluster.rolled_out("web"), timeout=30, what="first rollout")
            rss = await cluster.rss("web")
            assert len(rss) == 1
            rs = rss[0]
            h = du.compute_hash(d["spec"]["template"])
            assert rs["metadata"]["name"] == f"web-{h}"
            assert rs["metadata"]["labels"]["pod-template-hash"] == h
            assert rs["metadata"]["annotations"][du.REVISION] == "1"
            assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment",
                                                          "name": "web", "uid": d["metadata"]["uid"],
                                                          "controller": True, "blockOwnerDeletion": True}]
            pods = await cluster.pods("web")
            assert len(pods) == 10
            for p in pods:
                assert p["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
                assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
            d = await client.get("deployments", "web")
            st = d["status"]
            assert {k: st.get(k) for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} \
                == {"replicas": 10, "updatedReplicas": 10, "readyReplicas": 10, "availableReplicas": 10}
            assert st["observedGeneration"] == d["metadata"]["generation"]
            assert du.get_condition(st, "Available")["status"] == "True"
            prog = du.get_condition(st, "Progressing")
            assert prog["status"] == "True" and prog["reason"] == "NewReplicaSetAvailable"
            assert d["metadata"]["annotations"][du.REVISION] == "1"

            # ---- rolling update: every pod event within maxSurge (3) and maxUnavailable (2)
            recorder = PodRecorder(client, namespace, "web", max_pods=13, min_available=8)
            await recorder.start()
            cluster.delay = 0.15
            try:
                await client.patch("deployments", "web",
                                   {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}},
                                   patch_type="strategic")
                await until(lambda: cluster.rolled_out("web"), timeout=45, what="rolling update")
            finally:
                await recorder.stop()
            assert recorder.violations == []
            assert recorder.peak > 10 and recorder.trough < 10  # it did surge and did use unavailability
            assert recorder.events >= 30  # 10 creations + 10 readiness updates + 10 deletions, at least
            rss = {r["metadata"]["name"]: r for r in await cluster.rss("web")}
            assert len(rss) == 2
            new_name = next(n for n, r in rss.items() if r["spec"]["replicas"] == 10)
            assert rss[f"web-{h}"]["spec"]["replicas"] == 0
            assert rss[new_name]["metadata"]["annotations"][du.REVISION] == "2"
            images = {p["spec"]["containers"][0]["image"] for p in await cluster.pods("web")}
            assert images == {"nginx:2"}
            events = (await client.list("events", namespace=namespace,
                                        field_selector="involvedObject.kind=Deployment"))["items"]
            msgs = {e["message"] for e in events if e["reason"] == "ScalingReplicaSet"}
            assert f"Scaled up replica set {new_name} to 3" in msgs
            assert any(m.startswith(f"Scaled down replica set web-{h} to ") for m in msgs)

            # ---- rollback (`kubectl rollout undo` patches the template back): the old RS is reused
            cluster.delay = 0.0
            await client.patch("deployments", "web",
                               {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}},
                               patch_type="strategic")
            await until(lambda: cluster.rolled_out("web"), timeout=30, what="rollback")
            rss = {r["metadata"]["name"]: r for r in await cluster.rss("web")}
            assert set(rss) == {f"web-{h}", new_name}
            first = rss[f"web-{h}"]
            assert first["spec"]["replicas"] == 10
            assert first["metadata"]["annotations"][du.REVISION] == "3"
            assert first["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
            d = await client.get("deployments", "web")
            assert d["metadata"]["annotations"][du.REVISION] == "3"

            # ---- scale to 0 and back
            await client.patch_scale("deployments", "web", 0)
            await until(lambda: cluster.rolled_out("web"), timeout=20, what="scale to 0")

            async def no_pods() -> bool:
                return not await cluster.pods("web")
            await until(no_pods, what="pods gone")
            await client.patch_scale("deployments", "web", 4)
            await until(lambda: cluster.rolled_out("web"), timeout=20, what="scale back")
            assert len(await cluster.pods("web")) == 4
            assert len(await cluster.rss("web")) == 2


async def test_recreate_waits_for_old_pods(apiserver, namespace) -> None:
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        cluster = Cluster(client, namespace)
        async with cluster.running():
            await client.create("deployments", _deployment("rec", 3, "nginx:1", strategy={"type": "Recreate"}))
            await until(lambda: cluster.rolled_out("rec"), timeout=20, what="first rollout")
            recorder = PodRecorder(client, namespace, "rec", max_pods=10**6, min_available=0)
            seen_mixed: list[set[str]] = []

            async def images_now() -> bool:
                imgs = {p["spec"]["containers"][0]["image"] for p in await cluster.pods("rec")}
                seen_mixed.append(imgs)
                return imgs == {"nginx:2"} and await cluster.rolled_out("rec")
            await recorder.start()
            await client.patch("deployments", "rec",
                               {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}},
                               patch_type="strategic")
            await until(images_now, timeout=20, what="recreate")
            await recorder.stop()
            assert all(len(s) <= 1 for s in seen_mixed)  # never old and new pods at once
            assert recorder.trough == 0  # Recreate goes through zero pods
            assert len(await cluster.pods("rec")) == 3


async def test_progress_deadline_exceeded_and_pause(apiserver, namespace) -> None:
    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        cluster = Cluster(client, namespace)
        async with cluster.running():
            body = _deployment("slow", 2, "nginx:1")
            body["spec"]["progressDeadlineSeconds"] = 2
            await client.create("deployments", body)
            await until(lambda: cluster.rolled_out("slow"), timeout=20, what="first rollout")
            cluster.hold = True  # new pods never become ready
            await client.patch("deployments", "slow",
                               {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "bad"}]}}}},
                               patch_type="strategic")

            async def timed_out() -> bool:
                d = await client.get("deployments", "slow")
                c = du.get_condition(d.get("status") or {}, "Progressing")
                return c is not None and c["reason"] == "ProgressDeadlineExceeded" and c["status"] == "False"
            await until(timed_out, timeout=15, what="ProgressDeadlineExceeded")
            # Pause: no more rollout progress; the Progressing condition says so once the timeout is gone.
            await client.patch("deployments", "slow", {"spec": {"paused": True}})

            async def observed() -> bool:
                d = await client.get("deployments", "slow")
                return (d.get("status") or {}).get("observedGeneration") == d["metadata"]["generation"]
            await until(observed, what="paused observed")
            cluster.hold = False


async def test_starts_without_waiting_for_other_controllers_informers(apiserver: Any, namespace: str) -> None:
    """Its own caches only: an informer of the process that never syncs (the garbage collector's
    for a custom resource whose CRD just went) must not hold the Deployment controller back."""
    from controllers import deployment as dc

    async with ApiClient(apiserver.url) as client:
        client.namespace = namespace
        factory = InformerFactory(client)
        factory.informer(("example.com/v1", "neverserved"))  # 404 forever
        ctx = ControllerContext(client, factory, ControllerManagerSettings(server=apiserver.url, leader_elect=False))
        task = asyncio.create_task(dc.run(ctx))
        try:
            await client.create("deployments", _deployment("alone", 2, "nginx:1.25"), namespace=namespace)

            async def has_replica_set() -> bool:
                return len((await client.list("replicasets", namespace=namespace))["items"]) == 1
            await until(has_replica_set, what="a ReplicaSet")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await factory.stop()
