"""A GitSync's status, built from what a reconcile found (pure).

Data flow: the reconciler's ``Outcome`` of one run (revisions, errors, the new inventory, health,
drift) and the status it read -> ``next_status`` -> the new status dict. The reconciler writes it
only when it differs from the current one, so a reconcile that changed nothing writes nothing:
conditions keep their ``lastTransitionTime`` unless their status flips, and a run enters the
history only when it wrote something or failed.

Conditions, after Flux's: ``SourceReady`` (the fetch), ``Applied`` (the last attempted revision),
``Healthy`` (the inventory's objects), and ``Ready`` (all three; ``kubectl get gs`` shows it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

# The reasons a condition may carry: a fixed list, so users and tools can match on them.
SUCCEEDED = "Succeeded"
FETCH_FAILED = "FetchFailed"
VALIDATION_FAILED = "ValidationFailed"
APPLY_FAILED = "ApplyFailed"
ROLLED_BACK = "RolledBack"
PRUNE_BLOCKED = "PruneBlocked"
UNSAFE_CONTENT = "UnsafeContent"
HEALTH_CHECK_FAILED = "HealthCheckFailed"
PROGRESSING = "Progressing"
STALLED = "Stalled"
SUSPENDED = "Suspended"
DRIFT_DETECTED = "DriftDetected"
REASONS = (SUCCEEDED, FETCH_FAILED, VALIDATION_FAILED, APPLY_FAILED, ROLLED_BACK, PRUNE_BLOCKED, UNSAFE_CONTENT,
           HEALTH_CHECK_FAILED, PROGRESSING, STALLED, SUSPENDED, DRIFT_DETECTED)

CONDITION_TYPES = ("SourceReady", "Applied", "Healthy", "Ready")
HISTORY = 10
MAX_ERRORS = 50


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def set_condition(conditions: Sequence[Mapping[str, Any]], new: Condition, *, now: str,
                  generation: int) -> list[dict[str, Any]]:
    """The conditions with ``new`` in place; ``lastTransitionTime`` moves only when status flips."""
    out: list[dict[str, Any]] = []
    found = False
    for c in conditions:
        if c.get("type") != new.type:
            out.append(dict(c))
            continue
        found = True
        transition = c.get("lastTransitionTime") if c.get("status") == new.status else now
        out.append({"type": new.type, "status": new.status, "reason": new.reason, "message": new.message,
                    "lastTransitionTime": transition or now, "observedGeneration": generation})
    if not found:
        out.append({"type": new.type, "status": new.status, "reason": new.reason, "message": new.message,
                    "lastTransitionTime": now, "observedGeneration": generation})
    return sorted(out, key=lambda c: CONDITION_TYPES.index(c["type"]) if c["type"] in CONDITION_TYPES else 99)


def condition(status: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def short(revision: str) -> str:
    """``main@sha1:0123456789ab...`` or a bare SHA -> ``0123456``."""
    sha = revision.rpartition(":")[2] or revision
    return sha[:7]


def revision_string(ref_name: str, sha: str) -> str:
    """Flux's revision format: ``main@sha1:<sha>``."""
    return f"{ref_name}@sha1:{sha}"


@dataclass
class Outcome:
    """What one reconcile established; ``None`` fields keep their current status value."""

    generation: int
    now: str
    source: Condition | None = None
    applied: Condition | None = None
    healthy: Condition | None = None
    fetched_revision: str | None = None
    last_applied_revision: str | None = None
    last_attempted_revision: str | None = None
    inventory: list[dict[str, Any]] | None = None
    errors: list[dict[str, Any]] | None = None
    drift: list[str] | None = None
    run: dict[str, Any] | None = None
    # The requestedAt annotation this run acted on (Flux's lastHandledReconcileAt): the one signal
    # that `mkctl gitops sync --wait` can wait for, since an unchanged revision writes nothing else.
    handled_request: str | None = None
    extra_history: list[dict[str, Any]] = field(default_factory=list)
    # status.nextSync (gitops.preview): what the next sync would change; {} removes it.
    next_sync: dict[str, Any] | None = None


def _ready(conditions: Sequence[Mapping[str, Any]], suspended: bool) -> Condition:
    if suspended:
        return Condition("Ready", "False", SUSPENDED, "reconciliation is suspended")
    by_type = {c.get("type"): c for c in conditions}
    for t in ("SourceReady", "Applied", "Healthy"):
        c = by_type.get(t)
        if c is None:
            return Condition("Ready", "Unknown", PROGRESSING, "reconciliation in progress")
        if c.get("status") != "True":
            return Condition("Ready", str(c.get("status")), str(c.get("reason")), str(c.get("message")))
    applied = by_type["Applied"]
    return Condition("Ready", "True", SUCCEEDED, str(applied.get("message")))


def next_status(current: Mapping[str, Any] | None, outcome: Outcome, *, suspended: bool = False) -> dict[str, Any]:
    status = dict(current or {})
    conditions: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or []]
    for c in (outcome.source, outcome.applied, outcome.healthy):
        if c is not None:
            conditions = set_condition(conditions, c, now=outcome.now, generation=outcome.generation)
    conditions = set_condition(conditions, _ready(conditions, suspended), now=outcome.now,
                               generation=outcome.generation)
    status["conditions"] = conditions
    status["observedGeneration"] = outcome.generation
    for key, value in (("fetchedRevision", outcome.fetched_revision),
                       ("lastAppliedRevision", outcome.last_applied_revision),
                       ("lastAttemptedRevision", outcome.last_attempted_revision)):
        if value is not None:
            status[key] = value
    if outcome.handled_request is not None:
        status["lastHandledRequestedAt"] = outcome.handled_request
    if status.get("lastAppliedRevision"):
        status["revision"] = short(str(status["lastAppliedRevision"]))
    if outcome.inventory is not None:
        status["inventory"] = outcome.inventory
    if outcome.errors is not None:
        if outcome.errors:
            status["errors"] = outcome.errors[:MAX_ERRORS]
        else:
            status.pop("errors", None)
    if outcome.drift is not None:
        if outcome.drift:
            status["drift"] = sorted(outcome.drift)
        else:
            status.pop("drift", None)
    if outcome.next_sync is not None:
        if outcome.next_sync:
            status["nextSync"] = outcome.next_sync
        else:
            status.pop("nextSync", None)
    runs = [*outcome.extra_history, *([outcome.run] if outcome.run else [])]
    if runs:
        status["history"] = [*runs[::-1], *(status.get("history") or [])][:HISTORY]
    return status
