"""The GitSync reconciler: keep the cluster equal to a folder of a Git repository.

Data flow, per GitSync key (``namespace/name``) taken from the shared work queue:
  GitSync (informer cache) -> ``spec.parse`` -> fetch when the interval is up, the spec changed,
  a webhook or ``mkctl gitops sync`` asked (``revision.Source``: git mirror, safety checks, build)
  -> a new revision: ``revisionrun.new_revision`` (resolve kinds, dry-run all of it, apply in
  order, prune, or roll back) -> the applied revision: ``enforce.enforce`` (compare with the live
  objects, put back what drifted) and ``enforce.check_health`` (health of the inventory, rollback
  when it is not healthy in time) -> ``preview.next_sync`` (``status.nextSync``: what the next sync
  would change; a suspended GitSync still fetches for it, and applies nothing) ->
  ``status.next_status`` -> one status write if the status changed -> requeue at the next poll
  (sooner while objects are progressing or a retry backs off).
  Every reconcile ends with its metrics (``gitops.metrics``: duration, conditions, result).
  This module holds the orchestration, the informers of managed types and the status write.

Objects the reconciler applied carry its labels; every resource type it manages gets one
informer (one list+watch per type for the whole process), whose events enqueue the owning GitSync.
So a deleted or edited object is seen within the watch latency, and the comparison with Git needs
no request at all: an unchanged revision is reconciled with no write and no read.

In memory only (``memory.Memory``): the applied revision's objects (for drift and rollback), the
fields owned right after each apply (to name drifted fields in Events), retry and drift backoff.
After a restart the applied revision is rebuilt from Git (its SHA is in the status), not re-applied.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.discovery import ResourceInfo, discover
from machinery.events import EventRecorder
from machinery.informer import Informer, Obj
from machinery.sharedinformers import InformerFactory

from . import status as st
from .crd import RESOURCE
from .enforce import check_health, enforce
from .memory import Memory, ReconcilerSettings, now_rfc3339, rv, rv_of
from .metrics import forget_sync, record_sync
from .plan import LABEL_NAME, LABEL_NAMESPACE, ObjKey
from .preview import next_sync
from .resolve import BuiltObject, Resolved, resolve_objects, unknown_kinds
from .revision import Source, SourceError
from .revisionrun import new_revision
from .spec import SpecError, SyncSpec, parse

log = logging.getLogger(__name__)

# `mkctl gitops sync` sets it (Flux: reconcile.fluxcd.io/requestedAt); a new value fetches at once.
ANNOTATION_REQUESTED = "gitops.minik8s.io/requestedAt"
NAMESPACES = ApiResource("v1", "namespaces", False, "Namespace")


class Reconciler:
    def __init__(self, client: ApiClient, informers: InformerFactory, source: Source, *,
                 settings: ReconcilerSettings | None = None, recorder: EventRecorder | None = None) -> None:
        self.client = client
        self.informers = informers
        self.source = source
        self.settings = settings or ReconcilerSettings()
        self.recorder = recorder or EventRecorder(client, "gitops")
        self.syncs = informers.informer(RESOURCE)
        self.controller: Controller[str] = Controller("gitops", self.reconcile, workers=self.settings.workers)
        self.memory: dict[str, Memory] = {}
        self.watched: dict[tuple[str, str], Informer] = {}
        self._resources: list[ResourceInfo] = []
        # Warning Events of a run, recorded when its status is written (they never decide anything).
        self.pending_events: list[tuple[dict[str, Any], str, str, str]] = []
        self.syncs.add_handler(self._on_sync, lambda old, new: self._on_sync(new), self._on_sync)

    # ------------------------------------------------------------------ events in
    def _on_sync(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.controller.enqueue(f"{meta.get('namespace')}/{meta.get('name')}")

    def _on_managed(self, obj: Obj) -> None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        name, namespace = labels.get(LABEL_NAME), labels.get(LABEL_NAMESPACE)
        if name and namespace:
            self.controller.enqueue(f"{namespace}/{name}")

    def trigger(self, namespace: str, name: str) -> None:
        """Fetch this GitSync now (a webhook arrived)."""
        key = f"{namespace}/{name}"
        self.memory.setdefault(key, Memory()).fetch_now = True
        self.controller.enqueue(key)

    async def webhook_secret(self, namespace: str, name: str) -> bytes | None:
        obj = self.syncs.get(f"{namespace}/{name}")
        if obj is None:
            return None
        try:
            secret_name = parse(obj).webhook_secret_name
        except SpecError:
            return None
        if not secret_name:
            return None
        try:
            data = await self.source.secret_data(self.client, namespace, secret_name)
        except SourceError:
            return None
        token = data.get("token")
        return token if token else None

    # ------------------------------------------------------------------ informers of managed types
    async def watch(self, resources: list[ApiResource]) -> None:
        new: list[Informer] = []
        for res in resources:
            k = (res.api_version, res.plural)
            if k in self.watched:
                continue
            inf = self.informers.informer(res)
            inf.add_handler(self._on_managed, lambda old, new: self._on_managed(new), self._on_managed)
            self.watched[k] = inf
            new.append(inf)
        if new:
            self.informers.start()
            for inf in new:
                await inf.wait_synced(timeout=30)

    def live(self, res: ApiResource, key: ObjKey, mem: Memory | None = None) -> Obj | None:
        """The object as the informer has it, or as our own apply answered when that is newer
        (the watch has not brought our write yet: not drift)."""
        inf = self.watched.get((res.api_version, res.plural))
        cached = inf.get(f"{key.namespace}/{key.name}" if key.namespace else key.name) if inf else None
        answered = mem.answers.get(key) if mem is not None else None
        if answered is not None and inf is not None and rv(answered) > rv_of(inf.resource_version):
            return answered
        return cached

    # ------------------------------------------------------------------ discovery
    async def resource_infos(self, *, refresh: bool = False) -> list[ResourceInfo]:
        if refresh or not self._resources:
            self._resources = await discover(self.client, all_versions=True)
        return self._resources

    def forget_discovery(self) -> None:
        """New types are served (a revision's CRDs): read discovery again next time."""
        self._resources = []

    async def resolve(self, objects: list[BuiltObject], spec: SyncSpec, namespace: str, name: str) -> Resolved:
        infos = await self.resource_infos()
        if unknown_kinds(infos, objects):  # a CRD may have been installed since discovery was read
            infos = await self.resource_infos(refresh=True)
        return resolve_objects(infos, objects, spec=spec, namespace=namespace, name=name)

    # ------------------------------------------------------------------ the reconcile
    async def reconcile(self, key: str) -> Result | None:
        started = time.monotonic()  # gotk_reconcile_duration_seconds (gitops.metrics)
        obj = self.syncs.get(key)
        namespace, _, name = key.partition("/")
        if obj is None:
            self.memory.pop(key, None)
            forget_sync(namespace, name)
            return None
        mem = self.memory.setdefault(key, Memory())
        if mem.written is not None and rv(mem.written) > rv(obj):
            # The cache has not brought our last status write yet: that write is the newer truth (its
            # inventory above all: without it the objects just applied would look like drift).
            obj = mem.written
        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        outcome = st.Outcome(generation, now_rfc3339())
        try:
            spec = parse(obj)
        except SpecError as e:
            outcome.source = st.Condition("SourceReady", "False", st.STALLED, str(e))
            await self._write_status(obj, outcome, started=started, mem=mem)
            return None
        now = time.monotonic()
        if generation != mem.generation:
            mem.generation, mem.fetch_now = generation, True
            mem.attempts.clear()
        if spec.suspend:
            # Nothing is applied; Git is still fetched at the interval to show what resuming would do.
            await self._fetch(obj, spec, mem, outcome, now=now)
            outcome.next_sync = await self._preview(obj, spec, mem, outcome, suspended=True)
            await self._write_status(obj, outcome, suspended=True, started=started, mem=mem)
            return Result.after(max(0.05, mem.next_fetch - time.monotonic()))
        requested = str((meta.get("annotations") or {}).get(ANNOTATION_REQUESTED) or "")
        if requested and requested != mem.handled_request:
            mem.handled_request, mem.fetch_now = requested, True
            mem.attempts = {k: a for k, a in mem.attempts.items() if a.permanent}
        if mem.handled_request:
            # Written with this run's status (again after a conflict): the request's fetch and its
            # outcome are in the same status write, so a waiter reads both at once.
            outcome.handled_request = mem.handled_request
        current = obj.get("status") or {}
        await self._fetch(obj, spec, mem, outcome, now=now)
        requeue: list[float] = [max(0.0, mem.next_fetch - time.monotonic())]
        if mem.fetched is not None and mem.applied is None and current.get("lastAppliedRevision"):
            await self._restore(obj, spec, mem, str(current["lastAppliedRevision"]))
        if mem.fetched is not None and (mem.applied is None or mem.fetched.sha != mem.applied.sha):
            retry = await new_revision(self, obj, spec, mem, outcome)
            if retry is not None:
                requeue.append(retry)
        if mem.applied_objects is not None:
            retry = await enforce(self, obj, spec, mem, outcome)
            if retry is not None:
                requeue.append(retry)
            retry = await check_health(self, obj, spec, mem, outcome)
            if retry is not None:
                requeue.append(retry)
        outcome.next_sync = await self._preview(obj, spec, mem, outcome)
        await self._write_status(obj, outcome, started=started, mem=mem)
        return Result.after(max(0.05, min(requeue)))

    async def _fetch(self, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome, *, now: float) -> None:
        """Fetch the ref when the interval is up or a fetch was asked for (the outcome says how it went)."""
        if not (mem.fetch_now or mem.fetched is None or now >= mem.next_fetch):
            return
        mem.fetch_now = False
        mem.next_fetch = now + spec.interval
        current = obj.get("status") or {}
        namespace = str((obj.get("metadata") or {}).get("namespace"))
        try:
            mem.fetched = await self.source.fetch(self.client, namespace, spec)
            outcome.source = st.Condition("SourceReady", "True", st.SUCCEEDED, f"fetched revision {mem.fetched.name}")
            outcome.fetched_revision = mem.fetched.name
        except SourceError as e:
            outcome.source = st.Condition("SourceReady", "False", st.FETCH_FAILED, str(e))
            if (st.condition(current, "SourceReady") or {}).get("message") != str(e):
                await self.recorder.event(dict(obj), "Warning", st.FETCH_FAILED, str(e))

    async def _preview(self, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome, *,
                       suspended: bool = False) -> dict[str, Any] | None:
        """status.nextSync (gitops.preview); None keeps the current one when the server cannot answer."""
        try:
            return await next_sync(self, obj, spec, mem, outcome, suspended=suspended)
        except (errors.ApiError, OSError) as e:
            log.info("gitops %s/%s: no preview of the next sync: %s", (obj.get("metadata") or {}).get("namespace"),
                     (obj.get("metadata") or {}).get("name"), e)
            return None

    async def _restore(self, obj: Obj, spec: SyncSpec, mem: Memory, revision: str) -> None:
        """After a restart: rebuild the applied revision from Git to enforce it (no writes)."""
        sha = revision.rpartition(":")[2]
        meta = obj.get("metadata") or {}
        try:
            rev = await self.source.revision(self.client, str(meta.get("namespace")), spec, sha)
            built = await self.source.build(rev, spec)
        except SourceError as e:
            log.info("gitops %s/%s: cannot rebuild applied revision %s: %s", meta.get("namespace"),
                     meta.get("name"), revision, e)
            return
        if built.failures:
            return
        resolved = await self.resolve(built.objects, spec, str(meta.get("namespace")), str(meta.get("name")))
        if resolved.failures:
            return
        desired, resources = resolved.desired, resolved.resources
        await self.watch(list(resources.values()))
        mem.applied, mem.applied_objects = rev, desired
        mem.resources.update(resources)

    async def _write_status(self, obj: Obj, outcome: st.Outcome, *, started: float, mem: Memory,
                            suspended: bool = False) -> None:
        for event in self.pending_events:
            await self.recorder.event(*event)
        self.pending_events.clear()
        current = obj.get("status") or {}
        new = st.next_status(current, outcome, suspended=suspended)
        record_sync(obj, new, suspended=suspended, seconds=time.monotonic() - started)
        if new == current:
            return
        try:
            mem.written = await self.client.update_status(RESOURCE, {**obj, "status": new})
        except errors.ConflictError:
            self.controller.enqueue_after(f"{(obj.get('metadata') or {}).get('namespace')}/"
                                          f"{(obj.get('metadata') or {}).get('name')}", 0.1)
        except errors.NotFoundError:
            pass
