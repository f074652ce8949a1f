"""The GitSync reconciler: keep the cluster equal to a folder of a Git repository.

Data flow, per GitSync key (``namespace/name``) taken from the shared work queue:
  GitSync (informer cache) -> ``spec.parse`` -> fetch when the interval is up, the spec changed,
  a webhook or ``mkctl gitops sync`` asked (``revision.Source``: git mirror, safety checks, build)
  -> a new revision: resolve kinds, dry-run all of it, apply in order, prune (``applier``)
  -> the same revision: compare the applied objects with the live ones (``plan``) and put back
  what drifted -> health of the inventory (``health``) -> rollback when the apply failed or the
  objects did not become healthy in time -> ``status.next_status`` -> one status write if the
  status changed -> requeue at the next poll (sooner while objects are progressing or a retry
  backs off).

Objects the reconciler applied carry its labels; every resource type it manages gets one
informer (one list+watch per type for the whole process), whose events enqueue the owning GitSync.
So a deleted or edited object is seen within the watch latency, and the comparison with Git needs
no request at all: an unchanged revision is reconciled with no write and no read.

In memory only: the applied revision's objects (for drift and rollback), the fields owned right
after each apply (to name drifted fields in Events), retry and drift backoff. After a restart
the applied revision is rebuilt from Git (its SHA is in the status), not re-applied.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.discovery import ResourceInfo, UnknownResourceType, discover, for_kind
from machinery.events import EventRecorder
from machinery.informer import Informer, Obj
from machinery.sharedinformers import InformerFactory

from . import status as st
from .applier import Applier
from .crd import RESOURCE
from .health import FAILED, HEALTHY, health
from .plan import (LABEL_NAME, LABEL_NAMESPACE, Desired, Entry, Failure, ObjKey, Plan, failure_of, inventory_after,
                   inventory_of, lost_fields, owned_fields, plan)
from .resolve import BuiltObject, Resolved, resolve_objects, unknown_kinds
from .revision import Revision, Source, SourceError
from .spec import SpecError, SyncSpec, parse

log = logging.getLogger(__name__)

# `mkctl gitops sync` sets it (Flux: reconcile.fluxcd.io/requestedAt); a new value fetches at once.
ANNOTATION_REQUESTED = "gitops.minik8s.io/requestedAt"
NAMESPACES = ApiResource("v1", "namespaces", False, "Namespace")


def _rv_of(value: Any) -> int:
    try:
        return int(str(value or "0"))
    except ValueError:
        return 0


def _rv(obj: Mapping[str, Any]) -> int:
    return _rv_of((obj.get("metadata") or {}).get("resourceVersion"))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ReconcilerSettings:
    workers: int = 4
    retry_base: float = 1.0
    retry_max: float = 300.0
    health_poll: float = 1.0
    drift_backoff_base: float = 1.0
    drift_backoff_max: float = 300.0
    # A correction within this long of the previous one of the same object counts as a fight.
    drift_fight_window: float = 60.0


@dataclass
class Attempt:
    count: int
    retry_at: float
    permanent: bool  # invalid content: not retried until the revision or the spec changes


@dataclass
class Memory:
    generation: int = -1
    fetched: Revision | None = None
    next_fetch: float = 0.0
    fetch_now: bool = False
    handled_request: str = ""
    applied: Revision | None = None
    applied_objects: list[Desired] | None = None
    previous: list[Desired] | None = None  # the revision before the applied one, for a health rollback
    previous_revision: Revision | None = None
    attempts: dict[str, Attempt] = field(default_factory=dict)
    health_deadline: float | None = None
    owned: dict[ObjKey, dict[str, Any]] = field(default_factory=dict)
    answers: dict[ObjKey, dict[str, Any]] = field(default_factory=dict)  # our last apply's answer per object
    fights: dict[ObjKey, tuple[int, float]] = field(default_factory=dict)
    resources: dict[ObjKey, ApiResource] = field(default_factory=dict)
    drift_reported: frozenset[ObjKey] = frozenset()


class ApplyFailed(Exception):
    """An apply run stopped part way; ``results`` holds what it had applied (to roll back)."""

    def __init__(self, failures: list[Failure], *, validation: bool = False) -> None:
        super().__init__("; ".join(str(f) for f in failures))
        self.failures = failures
        self.validation = validation
        self.results: dict[ObjKey, dict[str, Any]] = {}


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
        self._pending_events: list[tuple[dict[str, Any], str, str, str]] = []
        self.syncs.add_handler(self._on_sync, lambda old, new: self._on_sync(new), self._on_sync_deleted)

    # ------------------------------------------------------------------ events in
    def _on_sync(self, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        self.controller.enqueue(f"{meta.get('namespace')}/{meta.get('name')}")

    def _on_sync_deleted(self, obj: Obj) -> None:
        self._on_sync(obj)

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
    async def _watch(self, resources: list[ApiResource]) -> None:
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
        if answered is not None and inf is not None and _rv(answered) > _rv_of(inf.resource_version):
            return answered
        return cached

    # ------------------------------------------------------------------ discovery
    async def _resource_infos(self, *, refresh: bool = False) -> list[ResourceInfo]:
        if refresh or not self._resources:
            self._resources = await discover(self.client, all_versions=True)
        return self._resources

    async def resolve(self, objects: list[BuiltObject], spec: SyncSpec, namespace: str, name: str) -> Resolved:
        infos = await self._resource_infos()
        if unknown_kinds(infos, objects):  # a CRD may have been installed since discovery was read
            infos = await self._resource_infos(refresh=True)
        return resolve_objects(infos, objects, spec=spec, namespace=namespace, name=name)

    # ------------------------------------------------------------------ the reconcile
    async def reconcile(self, key: str) -> Result | None:
        obj = self.syncs.get(key)
        if obj is None:
            self.memory.pop(key, None)
            return None
        namespace, _, name = key.partition("/")
        mem = self.memory.setdefault(key, Memory())
        meta = obj.get("metadata") or {}
        generation = int(meta.get("generation") or 0)
        outcome = st.Outcome(generation, _now())
        try:
            spec = parse(obj)
        except SpecError as e:
            outcome.source = st.Condition("SourceReady", "False", st.STALLED, str(e))
            await self._write_status(obj, outcome)
            return None
        if spec.suspend:
            await self._write_status(obj, outcome, suspended=True)
            return None
        now = time.monotonic()
        if generation != mem.generation:
            mem.generation, mem.fetch_now = generation, True
            mem.attempts.clear()
        requested = str((meta.get("annotations") or {}).get(ANNOTATION_REQUESTED) or "")
        if requested and requested != mem.handled_request:
            mem.handled_request, mem.fetch_now = requested, True
            mem.attempts = {k: a for k, a in mem.attempts.items() if a.permanent}
        if mem.handled_request:
            # Written with this run's status (again after a conflict): the request's fetch and its
            # outcome are in the same status write, so a waiter reads both at once.
            outcome.handled_request = mem.handled_request
        current = obj.get("status") or {}
        if mem.fetch_now or mem.fetched is None or now >= mem.next_fetch:
            mem.fetch_now = False
            mem.next_fetch = now + spec.interval
            try:
                mem.fetched = await self.source.fetch(self.client, namespace, spec)
                outcome.source = st.Condition("SourceReady", "True", st.SUCCEEDED,
                                              f"fetched revision {mem.fetched.name}")
                outcome.fetched_revision = mem.fetched.name
            except SourceError as e:
                outcome.source = st.Condition("SourceReady", "False", st.FETCH_FAILED, str(e))
                if st.condition(current, "SourceReady") is None or \
                        (st.condition(current, "SourceReady") or {}).get("message") != str(e):
                    await self.recorder.event(dict(obj), "Warning", st.FETCH_FAILED, str(e))
        requeue: list[float] = [max(0.0, mem.next_fetch - time.monotonic())]
        if mem.fetched is not None and mem.applied is None and current.get("lastAppliedRevision"):
            await self._restore(obj, spec, mem, str(current["lastAppliedRevision"]))
        if mem.fetched is not None and (mem.applied is None or mem.fetched.sha != mem.applied.sha):
            retry = await self._new_revision(obj, spec, mem, outcome)
            if retry is not None:
                requeue.append(retry)
        if mem.applied_objects is not None:
            retry = await self._enforce(obj, spec, mem, outcome)
            if retry is not None:
                requeue.append(retry)
            retry = await self._check_health(obj, spec, mem, outcome)
            if retry is not None:
                requeue.append(retry)
        await self._write_status(obj, outcome)
        return Result.after(max(0.05, min(requeue)))

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
        await self._watch(list(resources.values()))
        mem.applied, mem.applied_objects = rev, desired
        mem.resources.update(resources)

    async def _new_revision(self, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome) -> float | None:
        assert mem.fetched is not None
        rev = mem.fetched
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        now = time.monotonic()
        attempt = mem.attempts.get(rev.sha)
        if attempt is not None:
            if attempt.permanent:
                return None
            if now < attempt.retry_at:
                return attempt.retry_at - now
        started = time.monotonic()
        outcome.last_attempted_revision = rev.name
        try:
            built = await self.source.build(rev, spec)
        except SourceError as e:
            return self._fail(obj, mem, outcome, st.UNSAFE_CONTENT if e.unsafe else st.VALIDATION_FAILED,
                              str(e), [], started, permanent=True)
        failures = list(built.failures)
        resolved = await self.resolve(built.objects, spec, namespace, name)
        desired, resources, deferred = resolved.desired, resolved.resources, resolved.deferred
        failures += resolved.failures
        inventory = inventory_of(obj.get("status"))
        if not failures and not desired and inventory and spec.prune and not spec.allow_empty:
            return self._fail(obj, mem, outcome, st.PRUNE_BLOCKED,
                              f"revision {rev.name} has no objects under '{spec.path or '.'}': pruning all "
                              f"{len(inventory)} objects is blocked (set spec.allowEmpty to allow it)",
                              [], started, permanent=True)
        if built.missing_path and not inventory and not spec.allow_empty:
            return self._fail(obj, mem, outcome, st.VALIDATION_FAILED, built.missing_path, [], started,
                              permanent=True)
        await self._watch([r for k, r in resources.items() if k not in deferred])
        applier = Applier(self.client)
        if failures or (obj.get("status") or {}).get("lastAppliedRevision") != rev.name:
            # Every object the server knows is dry-run even when others already failed, so the
            # status lists every problem of the revision at once.
            live_namespaces = {k.name for k in resources if k.kind == "Namespace"
                               and self.live(resources[k], k) is not None}
            new_namespaces = {d.key.name for d in desired if d.key.kind == "Namespace"} - live_namespaces
            failures += await applier.dry_run([(d, resources[d.key]) for d in desired if d.key not in deferred],
                                              new_namespaces=new_namespaces, stand_in_namespace=namespace)
            if failures:
                failures.sort(key=lambda f: (f.file, f.document or 0))
                return self._fail(obj, mem, outcome, st.VALIDATION_FAILED,
                                  f"revision {rev.name} is invalid: {len(failures)} error(s), nothing applied; "
                                  f"first: {failures[0]}", failures, started, permanent=True)
        live = {d.key: self.live(resources[d.key], d.key, mem) for d in desired if d.key not in deferred}
        for k in inventory:
            res = mem.resources.get(k) or resources.get(k)
            if res is not None:
                live.setdefault(k, self.live(res, k, mem))
        the_plan = plan(desired, live, inventory, sync_namespace=namespace, sync_name=name, prune=spec.prune,
                        allow_empty=spec.allow_empty)
        before = dict(live)
        try:
            results = await self._apply(the_plan, resources, deferred, applier)
        except ApplyFailed as e:
            await self._rollback(mem, resources, before, applier, results=e.results)
            reason = st.VALIDATION_FAILED if e.validation else st.ROLLED_BACK
            return self._fail(obj, mem, outcome, reason,
                              f"revision {rev.name} failed to apply and was rolled back: {e}"
                              if not e.validation else f"revision {rev.name} is invalid, rolled back: {e}",
                              e.failures, started, permanent=e.validation, writes=applier.writes)
        except (errors.ApiError, OSError) as e:
            await self._rollback(mem, resources, before, applier, results={})
            return self._fail(obj, mem, outcome, st.ROLLED_BACK,
                              f"revision {rev.name} failed to apply and was rolled back: {e}", [], started,
                              permanent=False, writes=applier.writes)
        pruned = []
        for entry in the_plan.prune:
            res = mem.resources.get(entry.key)
            if res is None:
                res = await self._resource_of_entry(entry)
            if res is not None and await applier.delete(entry, res):
                pruned.append(entry)
                mem.answers.pop(entry.key, None)
                mem.owned.pop(entry.key, None)
        for k, r in resources.items():
            mem.resources[k] = r
        entries = []
        for d in desired:
            after = results.get(d.key)
            if after is not None:
                mem.answers[d.key] = after
                entries.append(inventory_after([(d, after)])[0])
                fields = owned_fields(after)
                if fields is not None:
                    mem.owned[d.key] = fields
            elif d.key in inventory:
                entries.append(inventory[d.key])
            else:
                live_now = self.live(resources[d.key], d.key, mem)
                if live_now is not None:
                    entries.append(inventory_after([(d, live_now)])[0])
        created = sum(1 for d, reason in the_plan.apply if reason == "create")
        configured = len(the_plan.apply) - created
        message = (f"applied revision {rev.name}: {created} created, {configured} configured, "
                   f"{the_plan.unchanged} unchanged, {len(pruned)} pruned")
        mem.previous, mem.previous_revision = mem.applied_objects, mem.applied
        mem.applied, mem.applied_objects = rev, desired
        mem.attempts.pop(rev.sha, None)
        mem.health_deadline = time.monotonic() + spec.timeout
        outcome.applied = st.Condition("Applied", "True", st.SUCCEEDED, message)
        outcome.last_applied_revision = rev.name
        outcome.inventory = [e.to_status() for e in sorted(entries, key=lambda e: e.key)]
        outcome.errors = []
        outcome.run = self._run(rev.name, st.SUCCEEDED, started, applier.writes, message)
        await self.recorder.event(dict(obj), "Normal", "ReconciliationSucceeded", message)
        return None

    async def _resource_of_entry(self, entry: Entry) -> ApiResource | None:
        infos = await self._resource_infos()
        try:
            return for_kind(infos, entry.api_version, entry.kind).api_resource
        except UnknownResourceType:
            return None

    async def _apply(self, the_plan: Plan, resources: Mapping[ObjKey, ApiResource], deferred: set[ObjKey],
                     applier: Applier) -> dict[ObjKey, dict[str, Any]]:
        results: dict[ObjKey, dict[str, Any]] = {}
        pending_dry_run = [d for d, _ in the_plan.apply if d.key in deferred]
        checked = not pending_dry_run
        try:
            for d, reason in the_plan.apply:
                res = resources[d.key]
                if not checked and d.key.kind not in ("Namespace", "CustomResourceDefinition"):
                    self._resources = []  # the new CRDs' types are served now
                    await self._watch([resources[k] for k in deferred])
                    failures = await applier.dry_run([(x, resources[x.key]) for x in pending_dry_run],
                                                     new_namespaces=set(), stand_in_namespace="")
                    if failures:
                        raise ApplyFailed(failures, validation=True)
                    checked = True
                try:
                    results[d.key] = await applier.apply_one(d, res)
                except errors.ApiError as e:
                    raise ApplyFailed([failure_of(d, e.message or e.reason)]) from None
                if d.key.kind == "CustomResourceDefinition":
                    await applier.wait_established(res, d.key.name)
        except ApplyFailed as e:
            e.results = results
            raise
        return results

    async def _rollback(self, mem: Memory, resources: Mapping[ObjKey, ApiResource],
                        before: Mapping[ObjKey, Obj | None], applier: Applier, *,
                        results: Mapping[ObjKey, dict[str, Any]]) -> None:
        """Put back what a failed run changed: objects it created are deleted, objects it changed
        get the previous revision's manifest again."""
        previous = {d.key: d for d in mem.applied_objects or []}
        for k, after in sorted(results.items(), key=lambda kv: kv[0], reverse=True):
            res = resources.get(k) or mem.resources.get(k)
            if res is None:
                continue
            try:
                mem.answers.pop(k, None)
                if before.get(k) is None:
                    uid = str((after.get("metadata") or {}).get("uid") or "")
                    await applier.delete(Entry(str(after.get("apiVersion")), k.kind, k.namespace, k.name, uid), res)
                elif k in previous:
                    await applier.apply_one(previous[k], res)
            except errors.ApiError as e:
                log.warning("rollback of %s failed: %s", k, e)

    def _fail(self, obj: Obj, mem: Memory, outcome: st.Outcome, reason: str, message: str,
              failures: list[Failure], started: float, *, permanent: bool, writes: int = 0) -> float | None:
        assert mem.fetched is not None
        rev = mem.fetched
        attempt = mem.attempts.get(rev.sha)
        count = (attempt.count if attempt else 0) + 1
        delay = min(self.settings.retry_base * 2 ** (count - 1), self.settings.retry_max)
        mem.attempts[rev.sha] = Attempt(count, time.monotonic() + delay, permanent)
        outcome.applied = st.Condition("Applied", "False", reason, message)
        outcome.last_attempted_revision = rev.name
        outcome.errors = [f.to_status() for f in failures]
        outcome.run = self._run(rev.name, reason, started, writes, message)
        self._pending_events.append((dict(obj), "Warning", reason, message))
        return None if permanent else delay

    @staticmethod
    def _run(revision: str, result: str, started: float, writes: int, message: str) -> dict[str, Any]:
        return {"revision": revision, "result": result, "startedAt": _now(),
                "durationSeconds": round(time.monotonic() - started, 3), "writes": writes,
                "message": message[:300]}

    async def _enforce(self, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome) -> float | None:
        """The applied revision against the live objects: put back what drifted (or report it)."""
        assert mem.applied_objects is not None and mem.applied is not None
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace")), str(meta.get("name"))
        inventory = inventory_of(outcome.inventory and {"inventory": outcome.inventory} or obj.get("status"))
        live = {d.key: self.live(mem.resources[d.key], d.key, mem) for d in mem.applied_objects if d.key in mem.resources}
        the_plan = plan(mem.applied_objects, live, inventory, sync_namespace=namespace, sync_name=name, prune=False)
        if not the_plan.apply:
            if mem.drift_reported:
                mem.drift_reported = frozenset()
                outcome.drift = []
            return None
        drifted = [d for d, _ in the_plan.apply]
        if not spec.self_heal:
            keys = frozenset(d.key for d in drifted)
            outcome.drift = [str(k) for k in keys]
            if keys != mem.drift_reported:
                mem.drift_reported = keys
                await self.recorder.event(dict(obj), "Warning", st.DRIFT_DETECTED,
                                          "drift from Git (self-heal is off): " + ", ".join(sorted(outcome.drift)))
            return None
        now = time.monotonic()
        applier = Applier(self.client)
        started = time.monotonic()
        waits: list[float] = []
        corrected: list[str] = []
        new_entries = dict(inventory)
        for d, reason in the_plan.apply:
            count, last = mem.fights.get(d.key, (0, 0.0))
            if count and now - last < self.settings.drift_fight_window:
                delay = min(self.settings.drift_backoff_base * 2 ** (count - 1), self.settings.drift_backoff_max)
                if now - last < delay:
                    waits.append(delay - (now - last))
                    continue
            else:
                count = 0
            live_obj = live.get(d.key)
            lost = (["the object was deleted"] if live_obj is None
                    else lost_fields(mem.owned.get(d.key), owned_fields(live_obj)) if d.key in mem.owned else [])
            try:
                after = await applier.apply_one(d, mem.resources[d.key])
            except errors.ApiError as e:
                log.warning("gitops %s: cannot correct %s: %s", namespace + "/" + name, d.key, e)
                waits.append(self.settings.retry_base)
                continue
            mem.fights[d.key] = (count + 1, time.monotonic())
            mem.answers[d.key] = after
            fields = owned_fields(after)
            if fields is not None:
                mem.owned[d.key] = fields
            new_entries[d.key] = inventory_after([(d, after)])[0]
            what = ", ".join(lost) if lost else reason
            corrected.append(f"{d.key}: {what}")
            if reason == "drift" or live_obj is None:
                await self.recorder.event(dict(obj), "Normal", "DriftCorrected", f"{d.key} put back to Git ({what})")
        if applier.writes:
            outcome.inventory = [e.to_status() for e in sorted(new_entries.values(), key=lambda e: e.key)]
            outcome.run = outcome.run or self._run(mem.applied.name, "DriftCorrected", started, applier.writes,
                                                   "; ".join(corrected))
        return min(waits) if waits else None

    async def _check_health(self, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome) -> float | None:
        assert mem.applied_objects is not None
        states = []
        for d in mem.applied_objects:
            res = mem.resources.get(d.key)
            live_obj = self.live(res, d.key, mem) if res is not None else None
            states.append((d.key, *(health(live_obj) if live_obj is not None else ("Progressing", "missing"))))
        self._inventory_health(obj, outcome, {k: state for k, state, _ in states})
        failed = [(k, m) for k, s, m in states if s == FAILED]
        waiting = [(k, m) for k, s, m in states if s not in (HEALTHY, FAILED)]
        if not failed and not waiting:
            outcome.healthy = st.Condition("Healthy", "True", st.SUCCEEDED, f"{len(states)} objects healthy")
            mem.health_deadline = None
            return None
        late = mem.health_deadline is not None and time.monotonic() > mem.health_deadline
        if failed or late:
            k, m = (failed or waiting)[0]
            message = f"{k}: {m}" + (f" (not healthy after {spec.timeout:g}s)" if not failed else "")
            outcome.healthy = st.Condition("Healthy", "False", st.HEALTH_CHECK_FAILED, message)
            if mem.health_deadline is not None and mem.previous is not None and mem.previous_revision is not None:
                return await self._rollback_unhealthy(obj, mem, outcome, message)
            return self.settings.health_poll * 5
        k, m = waiting[0]
        outcome.healthy = st.Condition("Healthy", "Unknown", st.PROGRESSING,
                                       f"{len(waiting)} of {len(states)} objects progressing; {k}: {m}")
        return self.settings.health_poll

    @staticmethod
    def _inventory_health(obj: Obj, outcome: st.Outcome, states: Mapping[ObjKey, str]) -> None:
        """Each inventory entry's health in the status (written only when one changes)."""
        entries = outcome.inventory if outcome.inventory is not None else \
            list((obj.get("status") or {}).get("inventory") or [])
        updated = []
        for raw in entries:
            state = states.get(Entry.from_status(raw).key)
            updated.append({**raw, "health": state} if state is not None else raw)
        if updated != entries:
            outcome.inventory = updated

    async def _rollback_unhealthy(self, obj: Obj, mem: Memory, outcome: st.Outcome, message: str) -> float | None:
        """The applied revision did not become healthy in time: the previous one is applied again
        (objects it pruned come back) and what only the failed revision had is deleted."""
        assert mem.previous is not None and mem.previous_revision is not None
        assert mem.applied is not None and mem.applied_objects is not None
        bad = mem.applied
        applier = Applier(self.client)
        previous = {d.key: d for d in mem.previous}
        entries: list[Entry] = []
        for d in mem.previous:
            res = mem.resources.get(d.key)
            if res is None:
                continue
            try:
                after = await applier.apply_one(d, res)
            except errors.ApiError as e:
                log.warning("rollback of %s failed: %s", d.key, e)
                continue
            mem.answers[d.key] = after
            fields = owned_fields(after)
            if fields is not None:
                mem.owned[d.key] = fields
            entries += inventory_after([(d, after)])
        for d in mem.applied_objects:
            res = mem.resources.get(d.key)
            if d.key in previous or res is None:
                continue
            live_obj = self.live(res, d.key, mem)
            mem.answers.pop(d.key, None)
            if live_obj is not None:
                uid = str((live_obj.get("metadata") or {}).get("uid") or "")
                await applier.delete(Entry(str(d.obj.get("apiVersion")), d.key.kind, d.key.namespace, d.key.name,
                                           uid), res)
        attempt = mem.attempts.get(bad.sha)
        count = (attempt.count if attempt else 0) + 1
        delay = min(self.settings.retry_base * 2 ** (count - 1), self.settings.retry_max)
        mem.attempts[bad.sha] = Attempt(count, time.monotonic() + delay, False)
        mem.applied, mem.applied_objects = mem.previous_revision, mem.previous
        mem.previous, mem.previous_revision = None, None
        mem.health_deadline = None
        text = f"revision {bad.name} was rolled back to {mem.applied.name}: {message}"
        outcome.applied = st.Condition("Applied", "False", st.ROLLED_BACK, text)
        outcome.last_attempted_revision = bad.name
        outcome.last_applied_revision = mem.applied.name
        outcome.inventory = [e.to_status() for e in sorted(entries, key=lambda e: e.key)]
        outcome.run = self._run(bad.name, st.ROLLED_BACK, time.monotonic(), applier.writes, text)
        await self.recorder.event(dict(obj), "Warning", st.ROLLED_BACK, text)
        return delay

    async def _write_status(self, obj: Obj, outcome: st.Outcome, *, suspended: bool = False) -> None:
        for event in self._pending_events:
            await self.recorder.event(*event)
        self._pending_events.clear()
        current = obj.get("status") or {}
        new = st.next_status(current, outcome, suspended=suspended)
        if new == current:
            return
        try:
            await self.client.update_status(RESOURCE, {**obj, "status": new})
        except errors.ConflictError:
            self.controller.enqueue_after(f"{(obj.get('metadata') or {}).get('namespace')}/"
                                          f"{(obj.get('metadata') or {}).get('name')}", 0.1)
        except errors.NotFoundError:
            pass
