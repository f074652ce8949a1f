"""The Deployment controller: roll ReplicaSets from one pod template to the next.

Data flow (Kubernetes' pkg/controller/deployment: sync.go, rolling.go, recreate.go, progress.go):

    informers (deployments, replicasets, pods) --handlers--> work queue of "ns/name" keys
    reconcile(key):
        deployment, ReplicaSets and pods of its namespace from the caches
        plan(d, rss, pods, now=...) -> DeploymentPlan   (pure, one step, in controllers.deploymentplan:)
            claim ReplicaSets (adopt orphans matching the selector, release non-matching)
            new RS = the one whose template equals spec.template (pod-template-hash ignored);
                its revision is raised above every old one (a rollback reuses the old RS)
            paused or a scaling event -> proportional scaling of the active ReplicaSets
            Recreate      -> old RSs to 0; once none of their pods is left, new RS to replicas
            RollingUpdate -> create / scale up the new RS within replicas + maxSurge, else scale
                old RSs down as far as replicas - maxUnavailable allows (unhealthy ones first)
            complete -> delete the oldest empty RSs beyond revisionHistoryLimit
            status: counts from the RS statuses, Available and Progressing conditions
                (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
                NewReplicaSetAvailable, ProgressDeadlineExceeded, DeploymentPaused/Resumed)
        execute in order: adopt/release patches -> RS create/update/delete (each with the cached
            resourceVersion, so a decision made on a stale cache fails and is retried) ->
            events (ScalingReplicaSet) -> revision annotation patch -> PUT /status if changed
        requeue after the progress deadline when a rollout is under way

One deliberate tightening over Kubernetes: the pod count used for scaling up is
``max(spec.replicas, status.replicas)`` and the availability used for scaling down is
``min(status.availableReplicas, spec.replicas)`` per ReplicaSet, so the maxSurge and
maxUnavailable bounds hold at every moment even while a ReplicaSet controller lags behind.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from controllers import deploymentutil as du
from controllers import ownerrefs, podcontrol
from controllers.deploymentplan import (
    Action,
    CreateReplicaSet,
    DeleteReplicaSet,
    DeploymentPlan,
    UpdateReplicaSet,
    deployment_selector,
    plan,
)
from controllers.ownerrefs import Obj, get_controller_of, is_deleting, key_of, meta, name_of, uid_of
from controllers.podcontrol import namespace_terminating
from machinery import errors
from machinery.client import ApiClient
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

DEPLOY_RESOURCE = ("apps/v1", "deployments")
RS_RESOURCE = ("apps/v1", "replicasets")
POD_RESOURCE = ("v1", "pods")
CONFLICT_RETRY_S = 1.0


# ============================================================================ the executor
class RetryLater(Exception):
    """The cache was behind the API (e.g. the new ReplicaSet exists already): look again."""


@dataclass
class DeploymentControllerSettings:
    workers: int = 4


class DeploymentController:
    def __init__(self, client: ApiClient, deployments: Informer, replicasets: Informer, pods: Informer, *,
                 recorder: EventRecorder | None = None,
                 settings: DeploymentControllerSettings | None = None) -> None:
        self.client = client
        self.deployments = deployments
        self.rss = replicasets
        self.pods = pods
        self.settings = settings or DeploymentControllerSettings()
        self.recorder = recorder or EventRecorder(client, "deployment-controller")
        self.controller: Controller[str] = Controller("deployment", self.reconcile, workers=self.settings.workers)
        deployments.add_handler(lambda d: self.controller.enqueue(key_of(d)),
                                lambda _o, d: self.controller.enqueue(key_of(d)),
                                lambda d: self.controller.enqueue(key_of(d)))
        replicasets.add_handler(self._rs_changed, lambda old, new: self._rs_updated(old, new), self._rs_changed)
        pods.add_handler(on_delete=self._pod_deleted)

    # ------------------------------------------------------------------ handlers
    def _owner_key(self, rs: Obj) -> str | None:
        ref = get_controller_of(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{meta(rs).get('namespace')}/{ref.get('name')}"
        d = self.deployments.get(key)
        if d is None or uid_of(d) != ref.get("uid"):
            return None
        return key

    def _rs_changed(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.controller.enqueue(key)
        elif get_controller_of(rs) is None:
            for d in self.deployments.list(meta(rs).get("namespace")):
                sel = deployment_selector(d)
                if sel is not None and sel.matches(meta(rs).get("labels") or {}):
                    self.controller.enqueue(key_of(d))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != new_key:
            self.controller.enqueue(old_key)
        self._rs_changed(new)

    def _pod_deleted(self, pod: Obj) -> None:
        """Recreate waits for the old pods to be gone: a pod deletion may unblock it."""
        ref = get_controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rss.get(f"{meta(pod).get('namespace')}/{ref.get('name')}")
        if rs is None:
            return
        key = self._owner_key(rs)
        if key is None:
            return
        d = self.deployments.get(key)
        if d is not None and not du.is_rolling(d):
            self.controller.enqueue(key)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        d = self.deployments.get(key)
        if d is None:
            return None
        try:
            return await self._sync(d)
        except RetryLater as e:
            log.debug("deployment %s: %s", key, e)
            return Result.after(CONFLICT_RETRY_S)
        except errors.ConflictError as e:
            # Our cache is behind a write (often our own): the watch event of the newer version
            # enqueues the key again; the delayed look is only a safety net.
            log.debug("deployment %s: %s; retrying on the next event", key, e)
            return Result.after(CONFLICT_RETRY_S)

    async def _sync(self, d: Obj) -> Result | None:
        ns = meta(d).get("namespace")
        p = plan(d, self.rss.list(ns), self.pods.list(ns), now=datetime.now(timezone.utc))
        await self._claim(d, p)
        for type_, reason, message in p.events:
            await self.recorder.event(d, type_, reason, message)
        for action in p.actions:
            await self._apply(d, action)
            if not isinstance(action, DeleteReplicaSet) and action.event:
                await self.recorder.event(d, "Normal", "ScalingReplicaSet", action.event)
        latest = d
        if p.annotations is not None:
            patch = {"metadata": {"annotations": {**{k: None for k in meta(d).get("annotations") or {}},
                                                  **p.annotations},
                                  "resourceVersion": meta(d).get("resourceVersion")}}
            latest = await self.client.patch(DEPLOY_RESOURCE, name_of(d), patch, namespace=ns)
        if p.status is not None:
            body = copy.deepcopy(latest)
            body["status"] = p.status
            await self.client.update_status(DEPLOY_RESOURCE, body)
        if p.requeue_after is not None:
            return Result.after(p.requeue_after)
        return None

    async def _claim(self, d: Obj, p: DeploymentPlan) -> None:
        if p.adopt:
            fresh = await self.client.get(DEPLOY_RESOURCE, name_of(d), namespace=meta(d).get("namespace"))
            if uid_of(fresh) != uid_of(d) or is_deleting(fresh):
                raise RetryLater(f"cannot adopt ReplicaSets for {key_of(d)}: the Deployment changed")
            ref = ownerrefs.controller_ref(d, api_version="apps/v1", kind="Deployment")
            for rs in p.adopt:
                await podcontrol.adopt(self.client, RS_RESOURCE, rs, ref)
            # The plan was made without these ReplicaSets' ownership: decide again with it.
            raise RetryLater(f"adopted {len(p.adopt)} ReplicaSet(s) for {key_of(d)}")
        for rs in p.release:
            await podcontrol.release(self.client, RS_RESOURCE, rs, uid_of(d))

    async def _apply(self, d: Obj, action: Action) -> None:
        ns = meta(d).get("namespace")
        if isinstance(action, CreateReplicaSet):
            try:
                await self.client.create(RS_RESOURCE, action.body, namespace=ns)
            except errors.AlreadyExistsError:
                await self._already_exists(d, action.body)
            except errors.ApiError as e:
                if namespace_terminating(e):
                    raise RetryLater("the namespace is being deleted") from e
                msg = f'Failed to create new replica set "{name_of(action.body)}": {e}'
                await self.recorder.event(d, "Warning", du.FAILED_RS_CREATE_REASON, msg)
                if du.has_progress_deadline(d):
                    body = copy.deepcopy(d)
                    du.set_condition(body.setdefault("status", {}), du.new_condition(
                        "Progressing", "False", du.FAILED_RS_CREATE_REASON, msg, datetime.now(timezone.utc)))
                    try:
                        await self.client.update_status(DEPLOY_RESOURCE, body)
                    except errors.ApiError:
                        pass
                raise
        elif isinstance(action, UpdateReplicaSet):
            await self.client.update(RS_RESOURCE, action.rs, namespace=ns)
        else:
            try:
                await self.client.delete(RS_RESOURCE, name_of(action.rs), namespace=ns,
                                         preconditions={"uid": uid_of(action.rs)})
            except errors.NotFoundError:
                pass

    async def _already_exists(self, d: Obj, body: Obj) -> None:
        """A ReplicaSet of that name exists: ours and equal (the cache was behind), or a hash
        collision, which bumps status.collisionCount so the next hash differs."""
        ns = meta(d).get("namespace")
        existing = await self.client.get(RS_RESOURCE, name_of(body), namespace=ns)
        ref = get_controller_of(existing)
        same = ref is not None and ref.get("uid") == uid_of(d) and du.equal_ignore_hash(
            (existing.get("spec") or {}).get("template") or {}, (d.get("spec") or {}).get("template") or {})
        if same:
            raise RetryLater(f"replica set {name_of(body)} already exists")
        fresh = copy.deepcopy(d)
        status = fresh.setdefault("status", {})
        status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
        await self.client.update_status(DEPLOY_RESOURCE, fresh)
        raise RetryLater(f"hash collision for {name_of(body)}; collisionCount is now {status['collisionCount']}")

    async def run(self) -> None:
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager: one Deployment controller over the shared informers."""
    dc = DeploymentController(
        ctx.client, ctx.informers.informer(DEPLOY_RESOURCE), ctx.informers.informer(RS_RESOURCE),
        ctx.informers.informer(POD_RESOURCE), recorder=ctx.recorder("deployment-controller"),
        settings=DeploymentControllerSettings(workers=ctx.settings.workers))
    ctx.informers.start()
    # Only its own informers: another controller's (the garbage collector watches custom resources
    # that come and go) must not hold the Deployment controller up.
    for informer in (dc.deployments, dc.rss, dc.pods):
        await informer.wait_synced()
    await dc.run()
