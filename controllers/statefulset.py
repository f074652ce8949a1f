"""The StatefulSet controller: stable pods ``<set>-0..N-1`` with their own claims, in order.

After Kubernetes' pkg/controller/statefulset (``StatefulSetController`` + ``StatefulPodControl``);
every decision is in ``controllers.statefulsetplan`` (and ``statefulsetpods``), this module only
reads caches and writes through the API.

Data flow:

    informers (statefulsets, pods, persistentvolumeclaims, controllerrevisions)
        --handlers--> work queue of "ns/name" keys (pod add/delete lower the expectations)
    reconcile(key):
        set from the cache; nothing while expected pod creations/deletions are not yet seen
        claim pods: adopt matching orphans named <set>-<n>, release owned pods that stopped matching;
            adopt orphan ControllerRevisions matching the selector
        decide_revision(set, its revisions) -> reuse / renumber / create the update revision
            (history.RevisionWriter), current = status.currentRevision's revision
        plan(set, owned pods, claims, current/update sets and names, now) -> steps of actions
        execute the steps in order (a step's actions in slow-start batches): claims before their pod,
            pod creations and deletions, claim ownerReference updates, identity label fixes;
            events SuccessfulCreate/SuccessfulDelete/FailedCreate/... on the set
        PUT /status when it changed; delete revisions beyond revisionHistoryLimit no pod uses
        -> requeue after minReadySeconds when waiting for availability; an error backs off
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers import history, ownerrefs, podcontrol
from controllers.expectations import Expectations
from controllers.ownerrefs import Obj, get_controller_of, is_deleting, key_of, meta, name_of, uid_of
from controllers.podcontrol import namespace_terminating
from controllers.replicasetplan import rs_selector_matches, slow_start_batches
from controllers.statefulsetplan import (Action, CreateClaims, CreatePod, DeletePod, FixIdentity, StatefulSetPlan,
                                         UpdateClaimRefs, current_revision, decide_revision, plan, status_changed)
from controllers.statefulsetpods import claim_templates, is_member, pod_revision
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

STS_RESOURCE = ApiResource("apps/v1", "statefulsets", True, "StatefulSet")
POD_RESOURCE = ApiResource("v1", "pods", True, "Pod")
PVC_RESOURCE = ApiResource("v1", "persistentvolumeclaims", True, "PersistentVolumeClaim")
REVISION_RESOURCE = ApiResource(*history.CONTROLLER_REVISIONS, True, "ControllerRevision")
COMPONENT = "statefulset-controller"


@dataclass
class StatefulSetControllerSettings:
    workers: int = 4
    expectations_ttl_s: float = 5 * 60.0
    # How long to wait for the claims cache at start (the claim kind may be served late).
    claims_sync_timeout_s: float = 30.0


class StatefulSetController:
    """Wires the informers to a work queue and runs ``reconcile`` (see the module docstring)."""

    def __init__(self, client: ApiClient, *, sets: Informer, pods: Informer, claims: Informer, revisions: Informer,
                 recorder: EventRecorder | None = None, settings: StatefulSetControllerSettings | None = None) -> None:
        self.client = client
        self.sets, self.pods, self.claims, self.revisions = sets, pods, claims, revisions
        self.settings = settings or StatefulSetControllerSettings()
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self.writer = history.RevisionWriter(client)
        self.creations = Expectations(ttl_s=self.settings.expectations_ttl_s)
        self.deletions = Expectations(ttl_s=self.settings.expectations_ttl_s)
        self.controller: Controller[str] = Controller("statefulset", self.reconcile, workers=self.settings.workers)
        self.sets.add_handler(lambda s: self._enqueue(s), lambda _o, s: self._enqueue(s), self._set_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.claims.add_handler(None, lambda _o, c: self._claim_changed(c), self._claim_changed)

    # ------------------------------------------------------------------ handlers
    def _enqueue(self, sts: Obj) -> None:
        self.controller.enqueue(key_of(sts))

    def _set_deleted(self, sts: Obj) -> None:
        self.creations.delete(key_of(sts))
        self.deletions.delete(key_of(sts))
        self._enqueue(sts)

    def _owner_key(self, pod: Obj) -> str | None:
        ref = get_controller_of(pod)
        if ref is None or ref.get("kind") != "StatefulSet":
            return None
        key = f"{meta(pod).get('namespace')}/{ref.get('name')}"
        sts = self.sets.get(key)
        return key if sts is not None and uid_of(sts) == ref.get("uid") else None

    def _enqueue_orphan_owners(self, pod: Obj) -> None:
        for sts in self.sets.list(meta(pod).get("namespace")):
            if is_member(sts, pod) and rs_selector_matches(sts)(pod):
                self._enqueue(sts)

    def _pod_added(self, pod: Obj) -> None:
        if is_deleting(pod):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.creations.creation_observed(key)
            self.controller.enqueue(key)
        elif get_controller_of(pod) is None:
            self._enqueue_orphan_owners(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        if is_deleting(new):
            key = self._owner_key(new)
            if key is not None:
                self.deletions.deletion_observed(key, key_of(new))
        old_key, key = self._owner_key(old), self._owner_key(new)
        if old_key is not None and old_key != key:
            self.controller.enqueue(old_key)
        if key is not None:
            self.controller.enqueue(key)
        elif get_controller_of(new) is None:
            self._enqueue_orphan_owners(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.deletions.deletion_observed(key, key_of(pod))
            self.controller.enqueue(key)

    def _claim_changed(self, claim: Obj) -> None:
        """A claim went away or changed: the sets whose member claims it names take another look."""
        claim_name = name_of(claim)
        for sts in self.sets.list(meta(claim).get("namespace")):
            prefixes = [f"{name_of(t)}-{name_of(sts)}-" for t in claim_templates(sts)]
            if any(claim_name.startswith(p) and claim_name[len(p):].isdigit() for p in prefixes):
                self._enqueue(sts)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        sts = self.sets.get(key)
        if sts is None:
            self.creations.delete(key)
            self.deletions.delete(key)
            return None
        if not (self.creations.satisfied(key) and self.deletions.satisfied(key)):
            return None  # the pod watch will bring the key back
        ns, _ = split_key(key)
        pods = await self._claim_pods(sts, ns)
        revisions = await self._revisions(sts, ns)
        decision = decide_revision(sts, revisions)
        if decision.action == "create":
            update, collisions = await self.writer.create(sts, decision.revision, decision.collision_count)
        elif decision.action == "renumber":
            update, collisions = await self.writer.update_number(decision.revision, decision.number), \
                decision.collision_count
        else:
            update, collisions = decision.revision, decision.collision_count
        current = current_revision(sts, revisions, update)
        claims = {name_of(c): c for c in self.claims.list(ns)}
        now = datetime.now(timezone.utc)
        p = plan(sts, pods, claims, current_set=history.apply_revision(sts, current),
                 update_set=history.apply_revision(sts, update), current=name_of(current), update=name_of(update),
                 collision_count=collisions, now=now)
        failure: BaseException | None = None
        try:
            await self._execute(sts, key, p)
        except errors.ApiError as e:
            failure = e
        if status_changed(sts, p.status):
            await self._write_status(sts, p.status)
        await self._truncate_history(sts, revisions, pods, live={name_of(current), name_of(update)})
        if failure is not None:
            raise failure
        if p.error is not None:
            await self._pod_event(sts, "create", p.error_pod, RuntimeError(p.error))
            raise RuntimeError(f"StatefulSet {key}: {p.error}")
        if p.waiting_for:
            log.debug("StatefulSet %s is waiting for %s", key, p.waiting_for)
        return Result.after(p.requeue_after) if p.requeue_after is not None else None

    async def _claim_pods(self, sts: Obj, ns: str | None) -> list[Obj]:
        """``getPodsForStatefulSet``: ClaimPods with the selector and the member-name filter."""
        selects = rs_selector_matches(sts)
        claimed = ownerrefs.claim(sts, self.pods.list(ns), lambda p: selects(p) and is_member(sts, p))
        owned = list(claimed.owned)
        if claimed.adopt:
            fresh = await self.client.get(STS_RESOURCE, name_of(sts), namespace=ns)
            if uid_of(fresh) != uid_of(sts) or is_deleting(fresh):
                raise RuntimeError(f"cannot adopt pods for StatefulSet {key_of(sts)}: it changed")
            ref = ownerrefs.controller_ref(sts, api_version="apps/v1", kind="StatefulSet")
            for pod in claimed.adopt:
                try:
                    await podcontrol.adopt(self.client, POD_RESOURCE, pod, ref)
                except errors.NotFoundError:
                    owned.remove(pod)
        for pod in claimed.release:
            await podcontrol.release(self.client, POD_RESOURCE, pod, uid_of(sts))
        return owned

    async def _revisions(self, sts: Obj, ns: str | None) -> list[Obj]:
        """``ListRevisions`` + ``AdoptOrphanRevisions``: the set's revisions, orphans whose labels
        match its selector adopted (a set re-created after ``--cascade=orphan`` keeps its history)."""
        cached = self.revisions.list(ns)
        owned = history.owned_revisions(sts, cached)
        selects = rs_selector_matches(sts)
        orphans = [r for r in cached if get_controller_of(r) is None and selects(r)]
        if orphans and not is_deleting(sts):
            ref = ownerrefs.controller_ref(sts, api_version="apps/v1", kind="StatefulSet")
            for rev in orphans:
                try:
                    owned.append(await podcontrol.adopt(self.client, REVISION_RESOURCE, rev, ref))
                except errors.NotFoundError:
                    continue
        return owned

    async def _execute(self, sts: Obj, key: str, p: StatefulSetPlan) -> None:
        creates = [a for step in p.steps for a in step if isinstance(a, CreatePod)]
        deletes = [a.pod for step in p.steps for a in step if isinstance(a, DeletePod)]
        if creates:
            self.creations.expect_creations(key, len(creates))
        if deletes:
            self.deletions.expect_deletions(key, [key_of(pod) for pod in deletes])
        for step in p.steps:
            # Parallel steps go in slow-start batches (1, 2, 4, ...) as Kubernetes' slowStartBatch.
            done = 0
            for size in slow_start_batches(len(step)):
                batch, done = step[done:done + size], done + size
                results = await asyncio.gather(*(self._act(sts, key, a) for a in batch), return_exceptions=True)
                failed = [r for r in results if isinstance(r, BaseException)]
                if failed:
                    self.creations.lower(key, adds=sum(isinstance(a, CreatePod) for a in step[done:]))
                    raise failed[0]

    async def _act(self, sts: Obj, key: str, action: Action) -> None:
        ns = meta(sts).get("namespace")
        if isinstance(action, CreatePod):
            await self._create_pod(sts, key, action)
        elif isinstance(action, CreateClaims):
            await self._create_claims(sts, action.pod_name, action.claims)
        elif isinstance(action, DeletePod):
            await self._delete_pod(sts, key, action.pod)
        elif isinstance(action, UpdateClaimRefs):
            patch = {"metadata": {"uid": uid_of(action.claim),
                                  "resourceVersion": meta(action.claim).get("resourceVersion"),
                                  "ownerReferences": list(action.refs) or None}}
            await self.client.patch(PVC_RESOURCE, name_of(action.claim), patch, namespace=ns)
        elif isinstance(action, FixIdentity):
            patch = {"metadata": {"uid": uid_of(action.pod), "labels": action.labels}}
            await self.client.patch(POD_RESOURCE, name_of(action.pod), patch, namespace=ns)
            await self._pod_event(sts, "update", name_of(action.pod), None)

    async def _create_claims(self, sts: Obj, pod_name: str, claims: tuple[Obj, ...]) -> None:
        """``createPersistentVolumeClaims``: a claim that exists already is fine."""
        for claim in claims:
            try:
                await self.client.create(PVC_RESOURCE, copy.deepcopy(claim), namespace=meta(sts).get("namespace"))
            except errors.AlreadyExistsError:
                continue
            except errors.ApiError as e:
                await self.recorder.event(sts, "Warning", "FailedCreate",
                                          f"create Claim {name_of(claim)} for Pod {pod_name} in StatefulSet "
                                          f"{name_of(sts)} failed error: {e}")
                raise
            await self.recorder.event(sts, "Normal", "SuccessfulCreate",
                                      f"create Claim {name_of(claim)} Pod {pod_name} in StatefulSet "
                                      f"{name_of(sts)} success")

    async def _create_pod(self, sts: Obj, key: str, action: CreatePod) -> None:
        name = name_of(action.pod)
        try:
            await self._create_claims(sts, name, action.claims)
            await self.client.create(POD_RESOURCE, copy.deepcopy(action.pod), namespace=meta(sts).get("namespace"))
        except errors.AlreadyExistsError:
            self.creations.lower(key, adds=1)
            return  # the cache is behind: the next sync sees it
        except errors.ApiError as e:
            self.creations.lower(key, adds=1)
            if not namespace_terminating(e):
                await self._pod_event(sts, "create", name, e)
            raise
        await self._pod_event(sts, "create", name, None)

    async def _delete_pod(self, sts: Obj, key: str, pod: Obj) -> None:
        try:
            await self.client.delete(POD_RESOURCE, name_of(pod), namespace=meta(pod).get("namespace"))
        except errors.NotFoundError:
            self.deletions.deletion_observed(key, key_of(pod))
            return
        except errors.ApiError as e:
            self.deletions.deletion_observed(key, key_of(pod))
            await self._pod_event(sts, "delete", name_of(pod), e)
            raise
        await self._pod_event(sts, "delete", name_of(pod), None)

    async def _pod_event(self, sts: Obj, verb: str, pod_name: str, error: BaseException | None) -> None:
        """``recordPodEvent``: SuccessfulCreate "create Pod web-0 in StatefulSet web successful"."""
        if error is None:
            await self.recorder.event(sts, "Normal", f"Successful{verb.title()}",
                                      f"{verb} Pod {pod_name} in StatefulSet {name_of(sts)} successful")
        else:
            await self.recorder.event(sts, "Warning", f"Failed{verb.title()}",
                                      f"{verb} Pod {pod_name} in StatefulSet {name_of(sts)} failed error: {error}")

    async def _write_status(self, sts: Obj, status: dict[str, Any]) -> None:
        """PUT /status with the cached resourceVersion; a conflict re-reads once and retries."""
        body = copy.deepcopy(sts)
        for attempt in range(2):
            body["status"] = status
            try:
                await self.client.update_status(STS_RESOURCE, body)
                return
            except errors.NotFoundError:
                return
            except errors.ConflictError:
                if attempt:
                    raise
                try:
                    body = await self.client.get(STS_RESOURCE, name_of(sts), namespace=meta(sts).get("namespace"))
                except errors.NotFoundError:
                    return
                if uid_of(body) != uid_of(sts):
                    return

    async def _truncate_history(self, sts: Obj, revisions: list[Obj], pods: list[Obj], *, live: set[str]) -> None:
        limit = (sts.get("spec") or {}).get("revisionHistoryLimit")
        if not isinstance(limit, int):
            return
        for rev in history.revisions_to_truncate(revisions, live=live | {pod_revision(p) for p in pods}, limit=limit):
            await self.writer.delete(rev)

    async def run(self) -> None:
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager: the StatefulSet controller over the shared informers."""
    informers = {name: ctx.informers.informer(res) for name, res in
                 (("sets", STS_RESOURCE), ("pods", POD_RESOURCE), ("claims", PVC_RESOURCE),
                  ("revisions", REVISION_RESOURCE))}
    settings = StatefulSetControllerSettings(workers=ctx.settings.workers)
    ctl = StatefulSetController(ctx.client, **informers, recorder=ctx.recorder(COMPONENT), settings=settings)
    ctx.informers.start()
    for name in ("sets", "pods", "revisions"):
        await informers[name].wait_synced()
    if not await informers["claims"].wait_synced(settings.claims_sync_timeout_s):
        log.warning("the PersistentVolumeClaim cache is not synced yet; StatefulSets start without it")
    await ctl.run()
