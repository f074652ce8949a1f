"""The DaemonSet controller: one pod of each DaemonSet on every node that should run it.

Data flow (Kubernetes' pkg/controller/daemon):

    informers (DaemonSets, pods, Nodes, ControllerRevisions) --handlers--> queue of "ns/name"
        (pod add/delete also lower the DaemonSet's expectations; a Node change enqueues every
         DaemonSet; a revision change enqueues its owner)
    reconcile(key):
        the DaemonSet, its namespace's pods and revisions, every Node (caches)
        plan_history (pure, controllers.daemonsetplan) -> create the current revision (an
            AlreadyExists with other data bumps status.collisionCount and retries), renumber a
            reused one, delete its duplicates -> the revision hash
        plan(ds, pods, nodes, hash, manage=expectations satisfied) -> DaemonSetPlan
        execute: adopt/release -> deletions -> creations of pods pinned to their node by node
            affinity (the default scheduler binds them) in slow-start batches -> events
            SuccessfulCreate/SuccessfulDelete/FailedCreate -> PUT /status if it changed
        history_to_delete -> delete revisions beyond revisionHistoryLimit

Expectations make a sync wait until the watch has shown the pods it created or deleted.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers import history, ownerrefs, podcontrol
from controllers.daemonsetplan import DaemonSetPlan, HistoryPlan, daemon_pod, history_to_delete, plan, plan_history
from controllers.expectations import Expectations
from controllers.ownerrefs import Obj, get_controller_of, is_deleting, key_of, meta, name_of
from controllers.podcontrol import namespace_terminating
from controllers.replicasetplan import rs_selector_matches
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

DS_RESOURCE = ApiResource("apps/v1", "daemonsets", True, "DaemonSet")
CR_RESOURCE = ApiResource("apps/v1", "controllerrevisions", True, "ControllerRevision")
NODE_RESOURCE = ApiResource("v1", "nodes", False, "Node")
POD_RESOURCE = podcontrol.POD_RESOURCE
COMPONENT = "daemonset-controller"


@dataclass
class DaemonSetControllerSettings:
    workers: int = 2
    expectations_ttl_s: float = 5 * 60.0


class DaemonSetController:
    def __init__(self, client: ApiClient, *, daemonsets: Informer, pods: Informer, nodes: Informer,
                 revisions: Informer, recorder: EventRecorder | None = None,
                 settings: DaemonSetControllerSettings | None = None) -> None:
        self.client = client
        self.dss, self.pods, self.nodes, self.revisions = daemonsets, pods, nodes, revisions
        self.settings = settings or DaemonSetControllerSettings()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self.expectations = Expectations(ttl_s=self.settings.expectations_ttl_s)
        self.pod_writer = podcontrol.PodWriter(client, self.recorder, self.expectations)
        self.writer = history.RevisionWriter(client)
        self.controller: Controller[str] = Controller("daemonset", self.reconcile, workers=self.settings.workers)
        self.dss.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._ds_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_changed, self._node_updated, self._node_changed)
        self.revisions.add_handler(self._revision_changed, lambda old, new: self._revision_changed(new),
                                   self._revision_changed)

    # ------------------------------------------------------------------ handlers
    def _enqueue(self, ds: Obj) -> None:
        self.controller.enqueue(key_of(ds))

    def _ds_deleted(self, ds: Obj) -> None:
        self.expectations.delete(key_of(ds))
        self._enqueue(ds)

    def _owner_key(self, obj: Obj) -> str | None:
        ref = get_controller_of(obj)
        if ref is None or ref.get("kind") != "DaemonSet":
            return None
        key = f"{meta(obj).get('namespace')}/{ref.get('name')}"
        ds = self.dss.get(key)
        return key if ds is not None and ownerrefs.uid_of(ds) == ref.get("uid") else None

    def _enqueue_matching(self, pod: Obj) -> None:
        for ds in self.dss.list(meta(pod).get("namespace")):
            if rs_selector_matches(ds)(pod):
                self._enqueue(ds)

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.controller.enqueue(key)
        elif get_controller_of(pod) is None and not is_deleting(pod):
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        for obj in (old, new):
            key = self._owner_key(obj)
            if key is not None:
                self.controller.enqueue(key)
        if get_controller_of(new) is None and meta(old).get("labels") != meta(new).get("labels"):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.controller.enqueue(key)

    def _node_changed(self, node: Obj) -> None:
        for ds in self.dss.list():
            self._enqueue(ds)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        # shouldIgnoreNodeUpdate: heartbeats (condition times) change nothing; labels, the spec
        # (taints) and a condition's status may change where daemons run.
        def conditions(node: Obj) -> dict[str, Any]:
            return {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
        if meta(old).get("labels") != meta(new).get("labels") or old.get("spec") != new.get("spec") or \
                conditions(old) != conditions(new):
            self._node_changed(new)

    def _revision_changed(self, revision: Obj) -> None:
        key = self._owner_key(revision)
        if key is not None:
            self.controller.enqueue(key)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        ds = self.dss.get(key)
        if ds is None:
            self.expectations.delete(key)
            return None
        ns, _ = split_key(key)
        hp = plan_history(ds, self.revisions.list(ns))
        if not is_deleting(ds):
            try:
                await self._write_history(ds, hp)
            except errors.ApiError as e:
                if namespace_terminating(e):
                    return None  # the namespace is going away with everything in it
                raise
        hash_ = hp.hash_
        now = datetime.now(timezone.utc)
        pods = self.pods.list(ns)
        p = plan(ds, pods, self.nodes.list(), hash_=hash_, now=now, manage=self.expectations.satisfied(key))
        error: str | None = None
        try:
            await self._claim(ds, p)
            if p.delete:
                await self.pod_writer.delete(ds, key, p.delete)
            if p.create_on:
                await self.pod_writer.create(ds, key, [daemon_pod(ds, n, hash_=hash_) for n in p.create_on])
        except errors.ApiError as e:
            error = str(e)
        if p.status != (ds.get("status") or {}):
            await self._write_status(ds, p.status)
        if not is_deleting(ds) and not error:
            for rev in history_to_delete(ds, hp.old, [x for x in pods if self._owner_key(x) == key]):
                await self.writer.delete(rev)
        if error is not None:
            raise RuntimeError(f"syncing DaemonSet {key} failed: {error}")
        return Result.after(p.requeue_after) if p.requeue_after is not None else None

    async def _write_history(self, ds: Obj, hp: HistoryPlan) -> None:
        if hp.create is not None:
            try:
                await self.client.create(CR_RESOURCE, hp.create, namespace=meta(ds).get("namespace"))
            except errors.AlreadyExistsError:
                existing = await self.client.get(CR_RESOURCE, name_of(hp.create), namespace=meta(ds).get("namespace"))
                if not history.matches_owner(ds, existing):
                    await self._bump_collision_count(ds)
                    raise RuntimeError(f"hash collision on ControllerRevision {name_of(hp.create)}: "
                                       "collisionCount raised, retrying")
        elif hp.current is not None and hp.renumber_to is not None:
            await self.writer.update_number(hp.current, hp.renumber_to)
        for dup in hp.duplicates:
            await self.writer.delete(dup)

    async def _bump_collision_count(self, ds: Obj) -> None:
        fresh = await self.client.get(DS_RESOURCE, name_of(ds), namespace=meta(ds).get("namespace"))
        if (fresh.get("status") or {}).get("collisionCount") != (ds.get("status") or {}).get("collisionCount"):
            return  # ours was stale: the next sync sees the new count
        fresh.setdefault("status", {})["collisionCount"] = int(fresh["status"].get("collisionCount") or 0) + 1
        await self.client.update_status(DS_RESOURCE, fresh)

    async def _claim(self, ds: Obj, p: DaemonSetPlan) -> None:
        if p.adopt:
            fresh = await self.client.get(DS_RESOURCE, name_of(ds), namespace=meta(ds).get("namespace"))
            if ownerrefs.uid_of(fresh) != ownerrefs.uid_of(ds) or is_deleting(fresh):
                raise RuntimeError(f"cannot adopt pods for DaemonSet {key_of(ds)}: it changed")
            ref = ownerrefs.controller_ref(ds, api_version="apps/v1", kind="DaemonSet")
            for pod in p.adopt:
                try:
                    await podcontrol.adopt(self.client, POD_RESOURCE, pod, ref)
                except errors.NotFoundError:
                    pass
        for pod in p.release:
            await podcontrol.release(self.client, POD_RESOURCE, pod, ownerrefs.uid_of(ds))

    async def _write_status(self, ds: Obj, status: dict[str, Any]) -> None:
        body = copy.deepcopy(ds)
        body["status"] = status
        try:
            await self.client.update_status(DS_RESOURCE, body)
        except errors.NotFoundError:
            return
        # A Conflict propagates: the runner requeues and the next sync sees the fresh object.

    async def run(self) -> None:
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager: the DaemonSet controller over the shared informers."""
    dss, pods = ctx.informers.informer(DS_RESOURCE), ctx.informers.informer(POD_RESOURCE)
    nodes, revisions = ctx.informers.informer(NODE_RESOURCE), ctx.informers.informer(CR_RESOURCE)
    ctl = DaemonSetController(ctx.client, daemonsets=dss, pods=pods, nodes=nodes, revisions=revisions,
                              recorder=ctx.recorder(COMPONENT),
                              settings=DaemonSetControllerSettings(workers=ctx.settings.workers))
    ctx.informers.start()
    for informer in (dss, pods, nodes, revisions):
        await informer.wait_synced()
    await ctl.run()
