"""Keeping an applied revision true: drift put back (or reported), health watched, rollback.

Data flow, on every reconcile of a GitSync whose revision is applied: ``enforce`` compares the
applied objects with the informers' live ones through ``plan`` (no request) -> each drifted or
deleted object is applied again (``DriftCorrected`` naming the fields another manager took), unless
it was corrected a moment ago (a fight: 1 s, 2 s, ... up to 5 minutes) or self-heal is off (then
``status.drift`` and one ``DriftDetected`` Event) -> ``check_health`` reads each inventory object's
health from the caches (``gitops.health``) into the ``Healthy`` condition and the inventory ->
objects still not healthy after ``spec.timeout``: ``rollback_unhealthy`` applies the previous
revision again and retries the new one with backoff.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Mapping

from machinery import errors
from machinery.informer import Obj

from . import status as st
from .applier import Applier
from .health import FAILED, HEALTHY, health
from .memory import Attempt, Memory, backoff
from .plan import Entry, ObjKey, inventory_after, inventory_of, lost_fields, owned_fields, plan
from .revisionrun import run_entry
from .spec import SyncSpec

if TYPE_CHECKING:
    from .reconciler import Reconciler

log = logging.getLogger(__name__)


async def enforce(rec: Reconciler, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome) -> float | None:
    """The applied revision against the live objects: put back what drifted (or report it)."""
    assert mem.applied_objects is not None and mem.applied is not None
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    inventory = inventory_of(outcome.inventory and {"inventory": outcome.inventory} or obj.get("status"))
    live = {d.key: rec.live(mem.resources[d.key], d.key, mem) for d in mem.applied_objects if d.key in mem.resources}
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
            await rec.recorder.event(dict(obj), "Warning", st.DRIFT_DETECTED,
                                     "drift from Git (self-heal is off): " + ", ".join(sorted(outcome.drift)))
        return None
    now = time.monotonic()
    applier = Applier(rec.client)
    started = time.monotonic()
    waits: list[float] = []
    corrected: list[str] = []
    new_entries = dict(inventory)
    for d, reason in the_plan.apply:
        count, last = mem.fights.get(d.key, (0, 0.0))
        if count and now - last < rec.settings.drift_fight_window:
            delay = backoff(count, base=rec.settings.drift_backoff_base,
                            maximum=rec.settings.drift_backoff_max)
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
            waits.append(rec.settings.retry_base)
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
            await rec.recorder.event(dict(obj), "Normal", "DriftCorrected", f"{d.key} put back to Git ({what})")
    if applier.writes:
        outcome.inventory = [e.to_status() for e in sorted(new_entries.values(), key=lambda e: e.key)]
        outcome.run = outcome.run or run_entry(mem.applied.name, "DriftCorrected", started, applier.writes,
                                               "; ".join(corrected))
    return min(waits) if waits else None


async def check_health(rec: Reconciler, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome) -> float | None:
    assert mem.applied_objects is not None
    states = []
    for d in mem.applied_objects:
        res = mem.resources.get(d.key)
        live_obj = rec.live(res, d.key, mem) if res is not None else None
        states.append((d.key, *(health(live_obj) if live_obj is not None else ("Progressing", "missing"))))
    inventory_health(obj, outcome, {k: state for k, state, _ in states})
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
            return await rollback_unhealthy(rec, obj, mem, outcome, message)
        return rec.settings.health_poll * 5
    k, m = waiting[0]
    outcome.healthy = st.Condition("Healthy", "Unknown", st.PROGRESSING,
                                   f"{len(waiting)} of {len(states)} objects progressing; {k}: {m}")
    return rec.settings.health_poll


def inventory_health(obj: Obj, outcome: st.Outcome, states: Mapping[ObjKey, str]) -> None:
    """Each inventory entry's health in the status (written only when one changes)."""
    entries = outcome.inventory if outcome.inventory is not None else \
        list((obj.get("status") or {}).get("inventory") or [])
    updated = []
    for raw in entries:
        state = states.get(Entry.from_status(raw).key)
        updated.append({**raw, "health": state} if state is not None else raw)
    if updated != entries:
        outcome.inventory = updated


async def rollback_unhealthy(rec: Reconciler, obj: Obj, mem: Memory, outcome: st.Outcome, message: str) -> float | None:
    """The applied revision did not become healthy in time: the previous one is applied again
    (objects it pruned come back) and what only the failed revision had is deleted."""
    assert mem.previous is not None and mem.previous_revision is not None
    assert mem.applied is not None and mem.applied_objects is not None
    bad = mem.applied
    applier = Applier(rec.client)
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
        live_obj = rec.live(res, d.key, mem)
        mem.answers.pop(d.key, None)
        if live_obj is not None:
            uid = str((live_obj.get("metadata") or {}).get("uid") or "")
            await applier.delete(Entry(str(d.obj.get("apiVersion")), d.key.kind, d.key.namespace, d.key.name,
                                       uid), res)
    attempt = mem.attempts.get(bad.sha)
    count = (attempt.count if attempt else 0) + 1
    delay = backoff(count, base=rec.settings.retry_base, maximum=rec.settings.retry_max)
    mem.attempts[bad.sha] = Attempt(count, time.monotonic() + delay, False)
    mem.applied, mem.applied_objects = mem.previous_revision, mem.previous
    mem.previous, mem.previous_revision = None, None
    mem.health_deadline = None
    text = f"revision {bad.name} was rolled back to {mem.applied.name}: {message}"
    outcome.applied = st.Condition("Applied", "False", st.ROLLED_BACK, text)
    outcome.last_attempted_revision = bad.name
    outcome.last_applied_revision = mem.applied.name
    outcome.inventory = [e.to_status() for e in sorted(entries, key=lambda e: e.key)]
    outcome.run = run_entry(bad.name, st.ROLLED_BACK, time.monotonic(), applier.writes, text)
    await rec.recorder.event(dict(obj), "Warning", st.ROLLED_BACK, text)
    return delay
