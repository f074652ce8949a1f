"""How a Job's pods count, and whether the Job has finished, as pure functions over wire dicts.

Role: the accounting half of ``controllers.jobplan`` (after Kubernetes' pkg/controller/job
``trackJobStatusAndRemoveFinalizers``, ``matchPodFailurePolicy``, ``pastBackoffLimitOnFailure``,
``matchSuccessPolicy``). Data flow: the Job's status + its pods -> ``account`` (uids of finished
pods into ``uncountedTerminatedPods`` until their ``batch.kubernetes.io/job-tracking`` finalizer
is gone, then into the counters; Indexed: completedIndexes) -> ``count_new_failures`` (the pod
failure policy's FailJob / FailIndex / Ignore / Count, backoffLimitPerIndex's failedIndexes) ->
``limits_exceeded`` (failed indexes, backoffLimit, activeDeadlineSeconds) / ``success_reason``
(completions, or an Indexed Job's successPolicy) -> (reason, message) for the conditions.

Nothing here reads a clock, does I/O or mutates its arguments (``Accounts`` is built fresh).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.jobpods import (
    completion_index, has_tracking_finalizer, index_failures, is_failed, match_failure_policy, parse_indexes, phase,
    restarts,
)
from controllers.ownerrefs import Obj, is_deleting, uid_of
from machinery.timefmt import parse_time

FINISHED = ("Complete", "Failed")


def int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) else default


def condition_true(job: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or [] if isinstance(c, dict))


def is_finished(job: Obj) -> bool:
    return any(condition_true(job, kind) for kind in FINISHED)


@dataclass
class Accounts:
    """The counting of one sync (see the module docstring)."""

    succeeded: int
    failed: int
    uncounted_succeeded: list[str]
    uncounted_failed: list[str]
    completed: set[int]
    failed_indexes: set[int] = field(default_factory=set)  # backoffLimitPerIndex: indexes given up
    new_failed: list[Obj] = field(default_factory=list)
    remove_finalizer: list[Obj] = field(default_factory=list)


def account(job: Obj, pods: list[Obj], *, indexed: bool, completions: int, now: datetime) -> Accounts:
    status = job.get("status") or {}
    uncounted = status.get("uncountedTerminatedPods") or {}
    acc = Accounts(succeeded=int(status.get("succeeded") or 0), failed=int(status.get("failed") or 0),
                    uncounted_succeeded=list(uncounted.get("succeeded") or []),
                    uncounted_failed=list(uncounted.get("failed") or []),
                    completed=parse_indexes(status.get("completedIndexes"), limit=completions) if indexed else set(),
                    failed_indexes=parse_indexes(status.get("failedIndexes"), limit=completions) if indexed else set())
    by_uid = {uid_of(p): p for p in pods}
    # Uids whose pod has lost the finalizer (or is gone) are counted now.
    for attr, counter in (("uncounted_succeeded", "succeeded"), ("uncounted_failed", "failed")):
        keep = []
        for uid in getattr(acc, attr):
            pod = by_uid.get(uid)
            if pod is None or not has_tracking_finalizer(pod):
                setattr(acc, counter, getattr(acc, counter) + 1)
            else:
                keep.append(uid)
        setattr(acc, attr, keep)
    suspended = bool((job.get("spec") or {}).get("suspend"))
    failing = condition_true(job, "FailureTarget")
    for pod in pods:
        if not has_tracking_finalizer(pod):
            continue
        uid = uid_of(pod)
        if uid in acc.uncounted_succeeded or uid in acc.uncounted_failed:
            acc.remove_finalizer.append(pod)
            continue
        if phase(pod) == "Succeeded":
            if indexed:
                index = completion_index(pod)
                if index is not None and index < completions:
                    acc.completed.add(index)
            else:
                acc.uncounted_succeeded.append(uid)
            acc.remove_finalizer.append(pod)
        elif suspended and is_deleting(pod) and phase(pod) != "Failed":
            acc.remove_finalizer.append(pod)  # deleted because the Job was suspended: no failure
        elif is_failed(pod, job, now=now) or (failing and is_deleting(pod)):
            acc.new_failed.append(pod)
            acc.remove_finalizer.append(pod)
    if indexed:
        acc.succeeded = len(acc.completed)
    return acc


def count_new_failures(job: Obj, acc: Accounts) -> tuple[str, str] | None:
    """Newly failed pods go into uncounted failed unless a podFailurePolicy rule ignores them;
    returns (reason, message) when a FailJob rule matched."""
    reason: tuple[str, str] | None = None
    spec = job.get("spec") or {}
    has_policy = spec.get("podFailurePolicy") is not None
    per_index = spec.get("backoffLimitPerIndex")
    for pod in acc.new_failed:
        match = match_failure_policy(job, pod) if has_policy and phase(pod) == "Failed" else None
        action = match[0] if match else "Count"
        if action == "Ignore":
            continue
        acc.uncounted_failed.append(uid_of(pod))
        index = completion_index(pod)
        if isinstance(per_index, int) and index is not None and index < int_or(spec.get("completions"), 0) and (
                action == "FailIndex" or index_failures(pod) + 1 > per_index):
            acc.failed_indexes.add(index)
        if action == "FailJob" and reason is None and match is not None:
            reason = ("PodFailurePolicy", match[1])
    return reason


def limits_exceeded(job: Obj, acc: Accounts, active: list[Obj], *, now: datetime) -> tuple[str, str] | None:
    """backoffLimit (restarts too under restartPolicy OnFailure), then activeDeadlineSeconds."""
    spec = job.get("spec") or {}
    if spec.get("backoffLimitPerIndex") is not None and acc.failed_indexes:
        most = spec.get("maxFailedIndexes")
        if isinstance(most, int) and len(acc.failed_indexes) > most:
            return "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes"
        if len(acc.completed | acc.failed_indexes) >= int_or(spec.get("completions"), 0):
            return "FailedIndexes", "Job has failed indexes"
    limit = int_or(spec.get("backoffLimit"), 6)
    failed = acc.failed + len(acc.uncounted_failed)
    on_failure = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") == "OnFailure"
    restart_total = sum(restarts(p) for p in active) if on_failure else 0
    if failed > limit or (on_failure and (restart_total > 0 if limit == 0 else restart_total >= limit)):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    deadline = spec.get("activeDeadlineSeconds")
    start = parse_time((job.get("status") or {}).get("startTime"))
    if deadline is not None and start is not None and not spec.get("suspend") and \
            (now - start).total_seconds() >= int(deadline):
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    return None


COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")


def success_policy(job: Obj, acc: Accounts) -> tuple[str, str] | None:
    """``matchSuccessPolicy``: the first rule the completed indexes satisfy."""
    spec = job.get("spec") or {}
    total = int_or(spec.get("completions"), 0)
    for i, rule in enumerate((spec.get("successPolicy") or {}).get("rules") or []):
        count = rule.get("succeededCount")
        if rule.get("succeededIndexes") is None:
            matched = isinstance(count, int) and len(acc.completed) >= count
        else:
            wanted = parse_indexes(rule.get("succeededIndexes"), limit=total)
            done = len(acc.completed & wanted)
            matched = done >= count if isinstance(count, int) else done == len(wanted)
        if matched:
            return "SuccessPolicy", f"Matched rules at index {i}"
    return None


def success_reason(job: Obj, acc: Accounts, active: list[Obj], *, indexed: bool) -> tuple[str, str] | None:
    """(reason, message) when the Job has succeeded: completions reached, or (Indexed) a successPolicy rule."""
    spec = job.get("spec") or {}
    completions = spec.get("completions")
    if indexed:
        if completions is not None and len(acc.completed) >= int(completions):
            return COMPLETIONS_REACHED
        return success_policy(job, acc) if spec.get("successPolicy") else None
    total = acc.succeeded + len(acc.uncounted_succeeded)
    if completions is None:
        return COMPLETIONS_REACHED if total > 0 and not active else None
    return COMPLETIONS_REACHED if total >= int(completions) else None
