"""A new revision's run: validate all of it, apply it in order, prune, or put everything back.

Data flow (``new_revision``, called by the reconciler when the fetched SHA is not the applied
one): the revision's build (``Source.build``) and resolution -> one ``Failure`` per problem, all of
them, after a server-side dry run of every object the server can check (``Applier.dry_run``) ->
nothing applied if any failed (``ValidationFailed``, not retried until the revision or the spec
changes) -> ``plan`` against the live objects -> ``apply_plan`` (Namespaces and CRDs first, the
objects of the revision's own CRDs dry-run once those are Established) -> on any failure
``roll_back`` (created objects deleted, changed ones given the previous manifest; retried with
backoff from 1 s) -> prune -> the new inventory, history entry and ``ReconciliationSucceeded``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Mapping

from machinery import errors
from machinery.client import ApiResource
from machinery.discovery import UnknownResourceType, for_kind
from machinery.informer import Obj

from . import status as st
from .applier import Applier
from .memory import Attempt, Memory, backoff, now_rfc3339
from .plan import Entry, Failure, ObjKey, Plan, failure_of, inventory_after, inventory_of, owned_fields, plan
from .revision import SourceError
from .spec import SyncSpec

if TYPE_CHECKING:
    from .reconciler import Reconciler

log = logging.getLogger(__name__)


class ApplyFailed(Exception):
    """An apply run stopped part way; ``results`` holds what it had applied (to roll back)."""

    def __init__(self, failures: list[Failure], *, validation: bool = False) -> None:
        super().__init__("; ".join(str(f) for f in failures))
        self.failures = failures
        self.validation = validation
        self.results: dict[ObjKey, dict[str, Any]] = {}


async def new_revision(rec: Reconciler, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome) -> float | None:
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
        built = await rec.source.build(rev, spec)
    except SourceError as e:
        return fail(rec, obj, mem, outcome, st.UNSAFE_CONTENT if e.unsafe else st.VALIDATION_FAILED,
                    str(e), [], started, permanent=True)
    failures = list(built.failures)
    resolved = await rec.resolve(built.objects, spec, namespace, name)
    desired, resources, deferred = resolved.desired, resolved.resources, resolved.deferred
    failures += resolved.failures
    inventory = inventory_of(obj.get("status"))
    if not failures and not desired and inventory and spec.prune and not spec.allow_empty:
        return fail(rec, obj, mem, outcome, st.PRUNE_BLOCKED,
                    f"revision {rev.name} has no objects under '{spec.path or '.'}': pruning all "
                    f"{len(inventory)} objects is blocked (set spec.allowEmpty to allow it)",
                    [], started, permanent=True)
    if built.missing_path and not inventory and not spec.allow_empty:
        return fail(rec, obj, mem, outcome, st.VALIDATION_FAILED, built.missing_path, [], started,
                    permanent=True)
    await rec.watch([r for k, r in resources.items() if k not in deferred])
    applier = Applier(rec.client)
    if failures or (obj.get("status") or {}).get("lastAppliedRevision") != rev.name:
        # Every object the server knows is dry-run even when others already failed, so the
        # status lists every problem of the revision at once.
        live_namespaces = {k.name for k in resources if k.kind == "Namespace"
                           and rec.live(resources[k], k) is not None}
        new_namespaces = {d.key.name for d in desired if d.key.kind == "Namespace"} - live_namespaces
        failures += await applier.dry_run([(d, resources[d.key]) for d in desired if d.key not in deferred],
                                          new_namespaces=new_namespaces, stand_in_namespace=namespace)
        if failures:
            failures.sort(key=lambda f: (f.file, f.document or 0))
            return fail(rec, obj, mem, outcome, st.VALIDATION_FAILED,
                        f"revision {rev.name} is invalid: {len(failures)} error(s), nothing applied; "
                        f"first: {failures[0]}", failures, started, permanent=True)
    live = {d.key: rec.live(resources[d.key], d.key, mem) for d in desired if d.key not in deferred}
    for k in inventory:
        res = mem.resources.get(k) or resources.get(k)
        if res is not None:
            live.setdefault(k, rec.live(res, k, mem))
    the_plan = plan(desired, live, inventory, sync_namespace=namespace, sync_name=name, prune=spec.prune,
                    allow_empty=spec.allow_empty)
    before = dict(live)
    try:
        results = await apply_plan(rec, the_plan, resources, deferred, applier)
    except ApplyFailed as e:
        await roll_back(rec, mem, resources, before, applier, results=e.results)
        reason = st.VALIDATION_FAILED if e.validation else st.ROLLED_BACK
        return fail(rec, obj, mem, outcome, reason,
                    f"revision {rev.name} failed to apply and was rolled back: {e}"
                    if not e.validation else f"revision {rev.name} is invalid, rolled back: {e}",
                    e.failures, started, permanent=e.validation, writes=applier.writes)
    except (errors.ApiError, OSError) as e:
        await roll_back(rec, mem, resources, before, applier, results={})
        return fail(rec, obj, mem, outcome, st.ROLLED_BACK,
                    f"revision {rev.name} failed to apply and was rolled back: {e}", [], started,
                    permanent=False, writes=applier.writes)
    pruned = []
    for entry in the_plan.prune:
        res = mem.resources.get(entry.key)
        if res is None:
            res = await resource_of_entry(rec, entry)
        if res is not None and await applier.delete(entry, res):
            pruned.append(entry)
            mem.answers.pop(entry.key, None)
            mem.owned.pop(entry.key, None)
    mem.resources.update(resources)
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
            live_now = rec.live(resources[d.key], d.key, mem)
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
    outcome.run = run_entry(rev.name, st.SUCCEEDED, started, applier.writes, message)
    await rec.recorder.event(dict(obj), "Normal", "ReconciliationSucceeded", message)
    return None


async def resource_of_entry(rec: Reconciler, entry: Entry) -> ApiResource | None:
    infos = await rec.resource_infos()
    try:
        return for_kind(infos, entry.api_version, entry.kind).api_resource
    except UnknownResourceType:
        return None


async def apply_plan(rec: Reconciler, the_plan: Plan, resources: Mapping[ObjKey, ApiResource], deferred: set[ObjKey],
                     applier: Applier) -> dict[ObjKey, dict[str, Any]]:
    results: dict[ObjKey, dict[str, Any]] = {}
    pending_dry_run = [d for d, _ in the_plan.apply if d.key in deferred]
    checked = not pending_dry_run
    try:
        for d, reason in the_plan.apply:
            res = resources[d.key]
            if not checked and d.key.kind not in ("Namespace", "CustomResourceDefinition"):
                rec.forget_discovery()  # the new CRDs' types are served now
                await rec.watch([resources[k] for k in deferred])
                failures = await applier.dry_run([(x, resources[x.key]) for x in pending_dry_run],
                                                 new_namespaces=set(), stand_in_namespace="")
                if failures:
                    raise ApplyFailed(failures, validation=True)
                checked = True
            try:
                results[d.key] = await applier.apply_one(d, res)
                if d.key.kind == "CustomResourceDefinition":
                    await applier.wait_established(res, d.key.name)
            except errors.ApiError as e:
                raise ApplyFailed([failure_of(d, e.message or e.reason)]) from None
    except ApplyFailed as e:
        e.results = results
        raise
    except errors.ApiError as e:
        # The deferred dry run could not be made (the server is failing): what was applied so far
        # is rolled back all the same.
        failed = ApplyFailed([Failure("", None, "", "", e.message or e.reason)])
        failed.results = results
        raise failed from None
    return results


async def roll_back(rec: Reconciler, mem: Memory, resources: Mapping[ObjKey, ApiResource],
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


def fail(rec: Reconciler, obj: Obj, mem: Memory, outcome: st.Outcome, reason: str, message: str,
         failures: list[Failure], started: float, *, permanent: bool, writes: int = 0) -> float | None:
    assert mem.fetched is not None
    rev = mem.fetched
    attempt = mem.attempts.get(rev.sha)
    count = (attempt.count if attempt else 0) + 1
    delay = backoff(count, base=rec.settings.retry_base, maximum=rec.settings.retry_max)
    mem.attempts[rev.sha] = Attempt(count, time.monotonic() + delay, permanent)
    outcome.applied = st.Condition("Applied", "False", reason, message)
    outcome.last_attempted_revision = rev.name
    outcome.errors = [f.to_status() for f in failures]
    outcome.run = run_entry(rev.name, reason, started, writes, message)
    rec.pending_events.append((dict(obj), "Warning", reason, message))
    return None if permanent else delay


def run_entry(revision: str, result: str, started: float, writes: int, message: str) -> dict[str, Any]:
    return {"revision": revision, "result": result, "startedAt": now_rfc3339(),
            "durationSeconds": round(time.monotonic() - started, 3), "writes": writes,
            "message": message[:300]}
