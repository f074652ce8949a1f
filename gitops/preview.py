"""What the next sync of a GitSync would change: ``status.nextSync``, for people who look (the web
console's Git sync view, ``kubectl get gs -o yaml``), Argo CD's diff of an out-of-sync application.

Data flow, at the end of every reconcile (``Reconciler.reconcile``, suspended ones too):
  the revision the next sync acts on (``target``: the fetched one while it is not applied, because
  the GitSync is suspended, the revision waits for a retry or was refused; else the applied one,
  where the next sync only puts drift back) and its objects (the applied revision's from memory,
  another one built and resolved once per SHA) -> ``plan`` against the informers' live objects and
  the inventory (no request) -> per object to write, a unified diff (``gitops.diff``) of the live
  object against the server's answer to a dry-run server-side apply of Git's manifest (what the
  apply would store, defaults included; nothing is written; remembered per object until its
  resourceVersion or manifest changes, so an unchanged object costs no request) -> ``nextSync``:
  the revision, a one-line summary, and per change its action, reason, a note when the next sync
  will not make it (self-heal off, a correction backing off, a refused revision) and the diff.
The status is written only when this changes, like the rest of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from machinery import errors
from machinery.client import ApiResource
from machinery.informer import Obj

from . import status as st
from .diff import unified
from .memory import Memory, rv
from .plan import ANNOTATION_HASH, FIELD_MANAGER, Desired, ObjKey, Plan, inventory_of, plan
from .resolve import Resolved
from .revision import Revision, SourceError
from .revisionrun import resource_of_entry
from .spec import SyncSpec

if TYPE_CHECKING:
    from .reconciler import Reconciler

log = logging.getLogger(__name__)

MAX_CHANGES = 50  # listed one by one; the summary counts all of them
MAX_DIFF = 8000  # characters of one object's diff in the status


@dataclass
class Target:
    revision: Revision
    desired: list[Desired]
    resources: dict[ObjKey, ApiResource]
    enforce_only: bool  # the applied revision: the next sync puts drift back, it does not prune
    blocked: str = ""  # why the next sync will not apply this revision


def summary(the_plan: Plan, *, reported: int) -> str:
    created = sum(1 for _, reason in the_plan.apply if reason == "create")
    text = f"create {created} / update {len(the_plan.apply) - created - reported} / prune {len(the_plan.prune)}"
    return text + (f" / {reported} not corrected" if reported else "")


def capped(text: str) -> str:
    if len(text) <= MAX_DIFF:
        return text
    cut = text.rfind("\n", 0, MAX_DIFF)
    return text[:cut + 1] + f"... ({len(text) - cut - 1} more characters: mkctl gitops diff shows all of it)\n"


def _blocked_by_failure(obj: Obj, outcome: st.Outcome) -> str:
    if outcome.applied is not None:
        return outcome.applied.message
    return str((st.condition(obj.get("status"), "Applied") or {}).get("message") or "the revision was refused")


async def target(rec: Reconciler, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome, *,
                 suspended: bool) -> Target | None:
    rev = mem.fetched or mem.applied
    if rev is None:
        return None
    if mem.applied is not None and mem.applied_objects is not None and rev.sha == mem.applied.sha:
        return Target(rev, mem.applied_objects, mem.resources, enforce_only=True)
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    blocked = ""
    attempt = mem.attempts.get(rev.sha)
    if attempt is not None and attempt.permanent and not suspended:
        blocked = _blocked_by_failure(obj, outcome)
    resolved = await _resolved(rec, spec, mem, rev, namespace, name)
    if isinstance(resolved, str):
        return Target(rev, [], {}, enforce_only=False, blocked=blocked or resolved)
    await rec.watch([r for k, r in resolved.resources.items() if k not in resolved.deferred])
    enforce_only = (obj.get("status") or {}).get("lastAppliedRevision") == rev.name
    return Target(rev, resolved.desired, resolved.resources, enforce_only=enforce_only, blocked=blocked)


async def _resolved(rec: Reconciler, spec: SyncSpec, mem: Memory, rev: Revision, namespace: str,
                    name: str) -> Resolved | str:
    """The revision built and resolved, or why it cannot be: once per SHA and generation (a refused
    revision stays refused until either changes, as the reconciler holds it)."""
    if mem.preview_resolved is not None and mem.preview_resolved[0] == (rev.sha, mem.generation):
        return mem.preview_resolved[1]
    outcome: Resolved | str
    try:
        built = await rec.source.build(rev, spec)
    except SourceError as e:
        outcome = f"revision {rev.name} cannot be built: {e}"
    else:
        resolved = await rec.resolve(built.objects, spec, namespace, name)
        failures = sorted([*built.failures, *resolved.failures], key=lambda f: (f.file, f.document or 0))
        outcome = (f"revision {rev.name} is invalid: {len(failures)} error(s); first: {failures[0]}" if failures
                   else resolved)
    mem.preview_resolved = ((rev.sha, mem.generation), outcome)
    return outcome


async def next_sync(rec: Reconciler, obj: Obj, spec: SyncSpec, mem: Memory, outcome: st.Outcome, *,
                    suspended: bool = False) -> dict[str, Any]:
    """``status.nextSync``; empty when nothing was fetched yet (the status then has none)."""
    t = await target(rec, obj, spec, mem, outcome, suspended=suspended)
    if t is None:
        return {}
    if t.blocked and not t.desired:
        mem.diffs = {}
        return {"revision": t.revision.name, "blocked": t.blocked, "summary": "nothing: " + t.blocked}
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace")), str(meta.get("name"))
    inventory = inventory_of(outcome.inventory and {"inventory": outcome.inventory} or obj.get("status"))
    live: dict[ObjKey, Obj | None] = {d.key: rec.live(t.resources[d.key], d.key, mem)
                                      for d in t.desired if d.key in t.resources}
    prune = spec.prune and not t.enforce_only
    resources = dict(t.resources)
    if prune:
        for k, entry in inventory.items():
            res = resources.get(k) or mem.resources.get(k) or await resource_of_entry(rec, entry)
            if res is not None:
                resources[k] = res
                live.setdefault(k, rec.live(res, k, mem))
    the_plan = plan(t.desired, live, inventory, sync_namespace=namespace, sync_name=name, prune=prune,
                    allow_empty=spec.allow_empty)
    out: dict[str, Any] = {"revision": t.revision.name}
    if t.blocked:
        out["blocked"] = t.blocked
    elif the_plan.prune_blocked:
        out["blocked"] = (f"revision {t.revision.name} has no objects under '{spec.path or '.'}': pruning all "
                          f"{len(inventory)} objects is blocked (set spec.allowEmpty to allow it)")
    changes: list[dict[str, Any]] = []
    diffs: dict[ObjKey, tuple[tuple[int, str, str], str]] = {}
    reported = 0
    for d, reason in the_plan.apply:
        note = _note(spec, mem, t, d.key, suspended=suspended, fight_window=rec.settings.drift_fight_window)
        if t.enforce_only and not spec.self_heal:
            reported += 1
        if len(changes) >= MAX_CHANGES:
            continue
        text = await _diff(rec, mem, diffs, d, resources[d.key], live.get(d.key), t.revision)
        changes.append({**_entry(d.key, str(d.obj.get("apiVersion") or "")), "action":
                        "create" if reason == "create" else "update", "reason": reason,
                        **({"note": note} if note else {}), "diff": text})
    for entry in the_plan.prune:
        if len(changes) >= MAX_CHANGES:
            break
        changes.append({**_entry(entry.key, entry.api_version), "action": "prune", "reason": "no longer in Git",
                        "diff": capped(unified(live.get(entry.key), None, key=entry.key,
                                               revision=st.short(t.revision.name)))})
    mem.diffs = diffs
    out["summary"] = ("nothing: " + out["blocked"]) if "blocked" in out else summary(the_plan, reported=reported)
    if changes:
        out["changes"] = changes
    return out


def _entry(key: ObjKey, api_version: str) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": key.kind, **({"namespace": key.namespace} if key.namespace else {}),
            "name": key.name}


def _note(spec: SyncSpec, mem: Memory, t: Target, key: ObjKey, *, suspended: bool, fight_window: float) -> str:
    if suspended:
        return "suspended: applied when the GitSync is resumed"
    if t.blocked:
        return "not applied: the revision was refused"
    if t.enforce_only and not spec.self_heal:
        return "spec.selfHeal is false: reported, not corrected"
    count, last = mem.fights.get(key, (0, 0.0))
    if t.enforce_only and count and time.monotonic() - last < fight_window:
        return "changed again right after its last correction: put back after a back-off"
    return ""


async def _diff(rec: Reconciler, mem: Memory, diffs: dict[ObjKey, tuple[tuple[int, str, str], str]], d: Desired,
                res: ApiResource, live: Mapping[str, Any] | None, rev: Revision) -> str:
    label = st.short(rev.name)
    if live is None:
        return capped(unified(None, d.obj, key=d.key, revision=label))
    manifest = str(((d.obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_HASH) or "")
    version = (rv(live), manifest, rev.sha)
    known = mem.diffs.get(d.key)
    if known is not None and known[0] == version:
        diffs[d.key] = known
        return known[1]
    try:
        after = await rec.client.patch(res, d.key.name, d.obj, namespace=d.key.namespace or None,
                                       patch_type="apply", dry_run=True, field_manager=FIELD_MANAGER, force=True)
        text = unified(live, after, key=d.key, revision=label) or (
            "(no value differs: the fields this GitSync sets were taken over by another field manager; "
            "the next sync takes them back)\n")
    except errors.ApiError as e:
        text = f"(the API server refused a dry run of it: {e.message or e.reason})\n"
    text = capped(text)
    diffs[d.key] = (version, text)
    return text
