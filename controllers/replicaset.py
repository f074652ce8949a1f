"""The ReplicaSet controller: keep ``spec.replicas`` pods of ``spec.template`` alive per ReplicaSet.

The same code serves ReplicationControllers, as in Kubernetes (pkg/controller/replication is a
thin adapter over this controller): a ``ReplicaKind`` names the watched resource, the kind and
apiVersion put in ownerReferences, the controller and event-source names, and how one object
reads as a ReplicaSet (``to_replica_set``: identity here, the selector and template conversion
in ``controllers.replicationcontroller``). Each kind gets its own controller instance, informer
and queue; pods are watched once (a shared informer) for both.

Data flow (Kubernetes' pkg/controller/replicaset):

    informers (the kind's objects, pods) --handlers--> work queue of "ns/name" keys
        (pod add/delete also lower the owner's expectations)
    reconcile(key):
        owner from the cache, read as a ReplicaSet (kind.to_replica_set); pods of its namespace
        plan(rs, pods, now=..., manage=expectations.satisfied(key)) -> ReplicaSetPlan
            (pure, in controllers.replicasetplan:)
            claim: adopt matching orphans, release owned pods that stopped matching
            active = owned pods not terminal and not being deleted
            create N (capped at burst) / delete the first N of rank_for_deletion(active)
            status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
                    observedGeneration, ReplicaFailure condition
        execute: adopt/release patches -> expectations raised -> creations in slow-start batches
            (1, 2, 4, ...) / deletions -> PUT the owner's /status only if it changed -> events
            SuccessfulCreate / SuccessfulDelete / FailedCreate (on the owner itself)

Expectations make the controller wait, after creating or deleting N pods, until the pod watch has
shown all N (or a TTL passed), so a slow watch never causes a second round of creations.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers import ownerrefs, podcontrol
from controllers.expectations import Expectations
from controllers.ownerrefs import Obj, get_controller_of, is_deleting, key_of, meta, name_of
from controllers.replicasetplan import (
    BURST_REPLICAS,
    ReplicaSetPlan,
    calculate_status,
    is_pod_ready,
    plan,
    rs_selector_matches,
    status_changed,
)
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

RS_RESOURCE = ApiResource("apps/v1", "replicasets", True, "ReplicaSet")
POD_RESOURCE = podcontrol.POD_RESOURCE
STATUS_UPDATE_RETRIES = 1

# ============================================================================ the kinds served
def _as_is(obj: Obj) -> Obj:
    return obj


@dataclass(frozen=True)
class ReplicaKind:
    """What differs between the kinds this controller serves (ReplicaSet, ReplicationController)."""

    resource: ApiResource  # what the controller watches and writes status to
    kind: str  # in ownerReferences, and what pods' controller references are matched against
    name: str  # the controller's name (queue, logs)
    component: str  # the events' source
    # The object read as a ReplicaSet (spec.selector a LabelSelector, spec.template set); a
    # read-only view that may share parts with the cached object, never a copy to change.
    to_replica_set: Callable[[Obj], Obj] = _as_is

    @property
    def api_version(self) -> str:
        return self.resource.api_version

    def controller_ref(self, owner: Obj) -> dict[str, Any]:
        return ownerrefs.controller_ref(owner, api_version=self.api_version, kind=self.kind)

    def controls(self, ref: dict[str, Any] | None) -> bool:
        """Whether a controller reference may point at an object of this kind (Kubernetes compares
        the kind only; the owner's uid is checked against the cache afterwards)."""
        return ref is not None and ref.get("kind") == self.kind

    def pod_body(self, owner: Obj) -> Obj:
        """The pod to create for ``owner`` (its template, a controller reference to it)."""
        template = (self.to_replica_set(owner).get("spec") or {}).get("template") or {}
        return ownerrefs.pod_from_template(template, owner, api_version=self.api_version, kind=self.kind)


REPLICA_SET = ReplicaKind(resource=RS_RESOURCE, kind="ReplicaSet", name="replicaset",
                          component="replicaset-controller")


# ============================================================================ the executor
@dataclass
class ReplicaSetControllerSettings:
    workers: int = 4
    burst_replicas: int = BURST_REPLICAS
    expectations_ttl_s: float = 5 * 60.0


class ReplicaSetController:
    """Wires the informers to a work queue and runs ``reconcile`` (see the module docstring).

    ``rs_informer`` watches the objects of ``kind`` (ReplicaSets unless told otherwise)."""

    def __init__(self, client: ApiClient, rs_informer: Informer, pod_informer: Informer, *,
                 kind: ReplicaKind = REPLICA_SET, recorder: EventRecorder | None = None,
                 settings: ReplicaSetControllerSettings | None = None) -> None:
        self.client = client
        self.kind = kind
        self.rss = rs_informer
        self.pods = pod_informer
        self.settings = settings or ReplicaSetControllerSettings()
        self.recorder = recorder or EventRecorder(client, kind.component)
        self.expectations = Expectations(ttl_s=self.settings.expectations_ttl_s)
        self.pod_writer = podcontrol.PodWriter(client, self.recorder, self.expectations)
        self.controller: Controller[str] = Controller(kind.name, self.reconcile, workers=self.settings.workers)
        self.rss.add_handler(self._rs_added, self._rs_updated, self._rs_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ------------------------------------------------------------------ handlers
    def _rs_added(self, rs: Obj) -> None:
        self.controller.enqueue(key_of(rs))

    def _rs_updated(self, old: Obj, new: Obj) -> None:
        self.controller.enqueue(key_of(new))

    def _rs_deleted(self, rs: Obj) -> None:
        self.expectations.delete(key_of(rs))
        self.controller.enqueue(key_of(rs))

    def _owner_key(self, pod: Obj) -> str | None:
        ref = get_controller_of(pod)
        if ref is None or not self.kind.controls(ref):
            return None
        key = f"{meta(pod).get('namespace')}/{ref.get('name')}"
        rs = self.rss.get(key)
        if rs is None or ownerrefs.uid_of(rs) != ref.get("uid"):
            return None
        return key

    def _enqueue_matching(self, pod: Obj) -> None:
        """An orphan changed: every owner of this kind whose selector matches may want to adopt it."""
        ns = meta(pod).get("namespace")
        for rs in self.rss.list(ns):
            if rs_selector_matches(self.kind.to_replica_set(rs))(pod):
                self.controller.enqueue(key_of(rs))

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.controller.enqueue(key)
        elif get_controller_of(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        labels_changed = meta(old).get("labels") != meta(new).get("labels")
        if is_deleting(new):
            self._pod_deleted(new)
            if labels_changed:
                self._pod_deleted(old)
            return
        old_ref, new_ref = get_controller_of(old), get_controller_of(new)
        if old_ref is not None and (new_ref is None or old_ref.get("uid") != new_ref.get("uid")):
            old_key = self._owner_key(old)
            if old_key is not None:
                self.controller.enqueue(old_key)
        key = self._owner_key(new)
        if key is not None:
            self.controller.enqueue(key)
            owner = self.rss.get(key)
            rs = self.kind.to_replica_set(owner) if owner is not None else {}
            min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
            if min_ready > 0 and not is_pod_ready(old) and is_pod_ready(new):
                # Available only after minReadySeconds: look again then.
                self.controller.enqueue_after(key, float(min_ready) + 0.1)
        elif new_ref is None and (labels_changed or old_ref is not None):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.controller.enqueue(key)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        owner = self.rss.get(key)
        if owner is None:
            self.expectations.delete(key)
            return None
        rs = self.kind.to_replica_set(owner)
        ns, _ = split_key(key)
        now = datetime.now(timezone.utc)
        manage = self.expectations.satisfied(key)
        p = plan(rs, self.pods.list(ns), now=now, manage=manage, burst=self.settings.burst_replicas)
        await self._claim(owner, p)
        active = list(p.active)
        manage_error: str | None = None
        try:
            if p.create:
                await self.pod_writer.create(owner, key, [self.kind.pod_body(owner)] * p.create)
            elif p.delete:
                await self.pod_writer.delete(owner, key, p.delete)
        except errors.ApiError as e:
            manage_error = str(e)
        status = calculate_status(rs, active, now=now, manage_error=manage_error)
        if status_changed(owner, status):
            await self._write_status(owner, status)
        if manage_error is not None:
            raise RuntimeError(f"managing replicas of {self.kind.kind} {key} failed: {manage_error}")
        if p.requeue_after is not None:
            return Result.after(p.requeue_after)
        return None

    async def _claim(self, owner: Obj, p: ReplicaSetPlan) -> None:
        if p.adopt:
            # canAdopt: re-read the owner uncached, so a deleted/recreated one adopts nothing.
            fresh = await self.client.get(self.kind.resource, name_of(owner), namespace=meta(owner).get("namespace"))
            if ownerrefs.uid_of(fresh) != ownerrefs.uid_of(owner) or is_deleting(fresh):
                raise RuntimeError(f"cannot adopt pods for {self.kind.kind} {key_of(owner)}: it changed")
            ref = self.kind.controller_ref(owner)
            for pod in p.adopt:
                try:
                    await podcontrol.adopt(self.client, POD_RESOURCE, pod, ref)
                except errors.NotFoundError:
                    p.active.remove(pod)
        for pod in p.release:
            await podcontrol.release(self.client, POD_RESOURCE, pod, ownerrefs.uid_of(owner))

    async def _write_status(self, owner: Obj, status: dict[str, Any]) -> None:
        """PUT the owner's /status with the cached resourceVersion; on conflict re-read once and retry."""
        body = copy.deepcopy(owner)
        for attempt in range(STATUS_UPDATE_RETRIES + 1):
            body["status"] = status
            try:
                await self.client.update_status(self.kind.resource, body)
                return
            except errors.ConflictError:
                if attempt >= STATUS_UPDATE_RETRIES:
                    raise
                try:
                    body = await self.client.get(self.kind.resource, name_of(owner),
                                                 namespace=meta(owner).get("namespace"))
                except errors.NotFoundError:
                    return  # deleted meanwhile: no status to write
                if ownerrefs.uid_of(body) != ownerrefs.uid_of(owner):
                    return  # replaced by another object of that name: not ours to describe
            except errors.NotFoundError:
                return

    async def run(self) -> None:
        await self.controller.run()


async def run_kind(ctx: ControllerContext, kind: ReplicaKind) -> None:
    """One controller of ``kind`` over the process's shared informers (its own queue)."""
    owners = ctx.informers.informer(kind.resource)
    pods = ctx.informers.informer(POD_RESOURCE)
    ctl = ReplicaSetController(ctx.client, owners, pods, kind=kind, recorder=ctx.recorder(kind.component),
                               settings=ReplicaSetControllerSettings(workers=ctx.settings.workers))
    ctx.informers.start()
    # Only our own caches: another controller's informer (a resource the server may not serve
    # yet) must not hold this one back.
    await owners.wait_synced()
    await pods.wait_synced()
    await ctl.run()


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager: the ReplicaSet controller over the shared informers."""
    await run_kind(ctx, REPLICA_SET)
