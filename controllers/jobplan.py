"""The Job controller's decisions for one sync, as a pure function over wire dicts.

After Kubernetes' pkg/controller/job ``syncJob``, ``trackJobStatusAndRemoveFinalizers`` and
``manageJob``; the counting and the finish rules are in ``controllers.jobaccount``, the pod
facts in ``controllers.jobpods``. Data flow:

    the Job + the pods of its namespace (informer caches) + now + settings
      -> claim (adopt matching orphans, release owned pods that stopped matching)
      -> accounting with the ``batch.kubernetes.io/job-tracking`` finalizer: a finished pod that
         still carries it goes into ``status.uncountedTerminatedPods`` (Indexed: its index into
         ``completedIndexes``), the executor writes that status, THEN removes the finalizer; a
         uid in uncounted whose pod lost the finalizer (or is gone) moves to succeeded/failed.
         So every pod is counted exactly once, even if it is deleted right after it finishes.
      -> podFailurePolicy (FailJob / FailIndex / Ignore / Count) for newly failed pods;
         backoffLimitPerIndex (failedIndexes, maxFailedIndexes; per-index backoff and the
         job-index-failure-count annotation); backoffLimit (and, for restartPolicy OnFailure,
         container restarts); activeDeadlineSeconds; successPolicy (Indexed)
      -> FailureTarget / SuccessCriteriaMet first, then Failed / Complete (and completionTime)
         once no pod is active or terminating and nothing is left uncounted
      -> suspend (delete active pods, Suspended condition, startTime reset) / resume
      -> otherwise create or delete pods toward parallelism (Indexed: the lowest missing
         indexes), new pods only after the exponential backoff of recent failures
      -> JobPlan (pods to create / delete / un-finalize, the new status, events, requeue)

Nothing here reads a clock, does I/O or mutates its arguments.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers import ownerrefs
from controllers.jobaccount import (
    Accounts, account, condition_true, count_new_failures, int_or, is_finished, limits_exceeded, success_reason,
)
from controllers.jobpods import (
    backoff_remaining, completion_index, finished_time, format_indexes, has_tracking_finalizer, index_failures,
    is_active, is_failed, is_ready, is_terminating, only_replace_failed, phase, pod_for_job,
)
from controllers.ownerrefs import Obj, meta, uid_of
from machinery.selectors import SelectorError, label_selector_from_dict
from machinery.timefmt import parse_time

BURST = 500
Event = tuple[str, str, str]  # (type, reason, message)


@dataclass(frozen=True)
class JobPlanSettings:
    backoff_base_s: float = 10.0  # DefaultJobPodFailureBackOff
    backoff_max_s: float = 360.0  # MaxJobPodFailureBackOff
    burst: int = BURST


@dataclass
class JobPlan:
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)
    create: list[Obj] = field(default_factory=list)  # pod bodies
    delete: list[Obj] = field(default_factory=list)
    remove_finalizer: list[Obj] = field(default_factory=list)  # only after ``status`` is stored
    status: Obj = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(conditions: list[Obj], kind: str, status: str, *, reason: str, message: str, now: datetime) -> bool:
    """Add or change a condition (lastProbeTime and lastTransitionTime now); False if already so."""
    for c in conditions:
        if c.get("type") == kind:
            if c.get("status") == status and c.get("reason") == reason and c.get("message") == message:
                return False
            c.update(status=status, reason=reason, message=message, lastProbeTime=stamp(now),
                     lastTransitionTime=stamp(now))
            return True
    conditions.append({"type": kind, "status": status, "lastProbeTime": stamp(now), "lastTransitionTime": stamp(now),
                       "reason": reason, "message": message})
    return True


def _matcher(job: Obj) -> Any:
    try:
        selector = label_selector_from_dict((job.get("spec") or {}).get("selector"))
    except SelectorError:
        return lambda _pod: False
    return lambda pod: selector.matches((meta(pod).get("labels") or {}))


def _deletion_order(pods: list[Obj]) -> list[Obj]:
    """Which active pods go first: unscheduled, not ready, then the newest."""
    def key(pod: Obj) -> tuple[bool, bool, float]:
        created = parse_time(meta(pod).get("creationTimestamp"))
        return bool((pod.get("spec") or {}).get("nodeName")), is_ready(pod), -(created.timestamp() if created else 0.0)
    return sorted(pods, key=key)


def _index_retries(job: Obj, owned: list[Obj], pending: list[int], *, now: datetime, settings: JobPlanSettings
                   ) -> tuple[list[tuple[int, int]], float | None]:
    """backoffLimitPerIndex: ([(index, failures so far)] whose own backoff is over, seconds until the next one)."""
    failed: dict[int, list[Obj]] = {}
    for pod in owned:
        index = completion_index(pod)
        if index is not None and is_failed(pod, job, now=now):
            failed.setdefault(index, []).append(pod)
    ready: list[tuple[int, int]] = []
    wait: float | None = None
    for index in pending:
        pods = failed.get(index, [])
        times = [t for t in (finished_time(p) for p in pods) if t is not None]
        left = backoff_remaining(times, [], now=now, base_s=settings.backoff_base_s, max_s=settings.backoff_max_s)
        if left > 0:
            wait = left if wait is None else min(wait, left)
        else:
            ready.append((index, max((index_failures(p) + 1 for p in pods), default=0)))
    return ready, wait


def _creations(job: Obj, acc: Accounts, active: list[Obj], terminating: list[Obj], *, indexed: bool,
               settings: JobPlanSettings, owned: list[Obj] | None = None, now: datetime | None = None
               ) -> tuple[list[Obj], list[Obj], float | None]:
    """(pod bodies to create, active pods to delete, seconds until a per-index backoff ends) toward parallelism."""
    spec = job.get("spec") or {}
    parallelism = max(0, int_or(spec.get("parallelism"), 1))
    completions = spec.get("completions")
    busy = len(terminating) if only_replace_failed(job) else 0
    if indexed:
        total = int(completions or 0)
        by_index: dict[int, list[Obj]] = {}
        extra: list[Obj] = []
        for pod in active:
            index = completion_index(pod)
            if index is None or index >= total or index in acc.completed or index in acc.failed_indexes:
                extra.append(pod)
            else:
                by_index.setdefault(index, []).append(pod)
        for pods in by_index.values():
            extra += _deletion_order(pods)[:-1]  # one pod per index
        running = len(active) - len(extra)
        pending = [i for i in range(total) if i not in acc.completed and i not in acc.failed_indexes
                   and i not in by_index]
        room = max(0, parallelism - running - busy)
        if running > parallelism:
            keep = sorted((p for pods in by_index.values() for p in pods if p not in extra),
                          key=lambda p: completion_index(p) or 0)
            extra += keep[parallelism:]
        if spec.get("backoffLimitPerIndex") is not None and now is not None:
            ready, wait = _index_retries(job, owned or [], pending, now=now, settings=settings)
            return ([pod_for_job(job, index=i, failures=n) for i, n in ready[:min(room, settings.burst)]],
                    extra, wait)
        return [pod_for_job(job, index=i) for i in pending[:min(room, settings.burst)]], extra, None
    succeeded = acc.succeeded + len(acc.uncounted_succeeded)
    if completions is None:
        want = 0 if succeeded > 0 else parallelism
    else:
        want = min(parallelism, max(0, int(completions) - succeeded))
    if len(active) > want:
        return [], _deletion_order(active)[:len(active) - want], None
    count = min(want - len(active) - busy, settings.burst)
    return [pod_for_job(job, index=None) for _ in range(max(0, count))], [], None


def plan(job: Obj, pods: list[Obj], *, now: datetime, manage: bool = True,
         settings: JobPlanSettings = JobPlanSettings()) -> JobPlan:
    """One sync of ``job`` given every pod of its namespace (see the module docstring)."""
    out = JobPlan()
    spec = job.get("spec") or {}
    status: Obj = copy.deepcopy(job.get("status") or {})
    conditions: list[Obj] = status.setdefault("conditions", [])
    if spec.get("completionMode") == "Indexed" and spec.get("backoffLimitPerIndex") is not None:
        status.setdefault("failedIndexes", "")
    claim = ownerrefs.claim(job, pods, _matcher(job)) if not is_finished(job) else ownerrefs.Claim(
        owned=[p for p in pods if (ownerrefs.get_controller_of(p) or {}).get("uid") == uid_of(job)])
    out.adopt, out.release = claim.adopt, claim.release
    owned = claim.owned
    indexed = spec.get("completionMode") == "Indexed"
    completions = int(spec.get("completions") or 0)
    acc = account(job, owned, indexed=indexed, completions=completions, now=now)
    active = [p for p in owned if is_active(p)]
    terminating = [p for p in owned if is_terminating(p)]
    if is_finished(job):
        out.remove_finalizer = [p for p in owned if has_tracking_finalizer(p)]
        count_new_failures(job, acc)
        out.status = _status(status, acc, active=[], ready=0, terminating=len(terminating), indexed=indexed)
        return out
    policy_failure = count_new_failures(job, acc)
    target = next((c for c in conditions if c.get("type") == "FailureTarget" and c.get("status") == "True"), None)
    failure: tuple[str, str] | None
    if target is not None:
        failure = (str(target.get("reason") or ""), str(target.get("message") or ""))
    elif condition_true(job, "SuccessCriteriaMet"):
        failure = None
    else:
        failure = policy_failure or limits_exceeded(job, acc, active, now=now)
    met = next((c for c in conditions if c.get("type") == "SuccessCriteriaMet" and c.get("status") == "True"), None)
    success: tuple[str, str] | None = None
    if failure is None:
        success = (str(met.get("reason") or ""), str(met.get("message") or "")) if met is not None else \
            success_reason(job, acc, active, indexed=indexed)
    out.remove_finalizer = acc.remove_finalizer
    if failure is not None or success is not None:
        # Finishing: no new pods, the active ones go; the terminal condition once all are gone.
        out.delete = list(active)
        if failure is not None:
            set_condition(conditions, "FailureTarget", "True", reason=str(failure[0]), message=str(failure[1]), now=now)
        elif success is not None:
            set_condition(conditions, "SuccessCriteriaMet", "True", reason=success[0], message=success[1], now=now)
        done = not active and not terminating and not acc.uncounted_succeeded and not acc.uncounted_failed
        if done and failure is not None:
            set_condition(conditions, "Failed", "True", reason=str(failure[0]), message=str(failure[1]), now=now)
            out.events.append(("Warning", str(failure[0]), str(failure[1])))
        elif done and success is not None:
            set_condition(conditions, "Complete", "True", reason=success[0], message=success[1], now=now)
            status["completionTime"] = stamp(now)
            out.events.append(("Normal", "Completed", "Job completed"))
        out.status = _status(status, acc, active=[], ready=0, terminating=len(terminating) + len(active),
                             indexed=indexed)
        return out
    if spec.get("suspend"):
        out.delete = list(active)
        if set_condition(conditions, "Suspended", "True", reason="JobSuspended", message="Job suspended", now=now):
            out.events.append(("Normal", "Suspended", "Job suspended"))
        status.pop("startTime", None)
        out.status = _status(status, acc, active=[], ready=0, terminating=len(terminating) + len(active),
                             indexed=indexed)
        return out
    if condition_true(job, "Suspended"):
        set_condition(conditions, "Suspended", "False", reason="JobResumed", message="Job resumed", now=now)
        out.events.append(("Normal", "Resumed", "Job resumed"))
        status["startTime"] = stamp(now)
    status.setdefault("startTime", stamp(now))
    deadline = spec.get("activeDeadlineSeconds")
    start = parse_time(status.get("startTime"))
    if deadline is not None and start is not None:
        out.requeue_after = max(0.0, int(deadline) - (now - start).total_seconds()) + 0.05
    if only_replace_failed(job):
        ends = [t for t in (parse_time(meta(p).get("deletionTimestamp")) for p in terminating) if t is not None and t > now]
        if ends:
            wait_end = (min(ends) - now).total_seconds() + 0.05
            out.requeue_after = wait_end if out.requeue_after is None else min(out.requeue_after, wait_end)
    create, delete, index_wait = _creations(job, acc, active, terminating, indexed=indexed, settings=settings,
                                            owned=owned, now=now)
    if index_wait is not None:
        out.requeue_after = index_wait if out.requeue_after is None else min(out.requeue_after, index_wait)
    if create and spec.get("backoffLimitPerIndex") is None:
        failed_times = [t for t in (finished_time(p) for p in owned if is_failed(p, job, now=now)) if t is not None]
        succeeded_times = [t for t in (finished_time(p) for p in owned if phase(p) == "Succeeded") if t is not None]
        wait = backoff_remaining(failed_times, succeeded_times, now=now, base_s=settings.backoff_base_s,
                                 max_s=settings.backoff_max_s)
        if wait > 0:
            create = []
            out.requeue_after = wait if out.requeue_after is None else min(out.requeue_after, wait)
    if not manage:
        create, delete = [], []
    out.create, out.delete = create, delete
    kept = [p for p in active if p not in delete]
    out.status = _status(status, acc, active=kept, ready=sum(1 for p in kept if is_ready(p)),
                         terminating=len(terminating) + len(delete), indexed=indexed, created=len(create))
    return out


def _status(status: Obj, acc: Accounts, *, active: list[Obj], ready: int, terminating: int, indexed: bool,
            created: int = 0) -> Obj:
    """The JobStatus fields every sync writes (conditions and times are already in ``status``)."""
    status["active"] = len(active) + created
    status["ready"] = ready
    status["terminating"] = terminating
    status["succeeded"] = acc.succeeded
    status["failed"] = acc.failed
    status["uncountedTerminatedPods"] = {k: v for k, v in (("succeeded", acc.uncounted_succeeded),
                                                           ("failed", acc.uncounted_failed)) if v}
    if indexed:
        status["completedIndexes"] = format_indexes(acc.completed)
        if acc.failed_indexes or "failedIndexes" in status:
            status["failedIndexes"] = format_indexes(acc.failed_indexes)
    if not status.get("conditions"):
        status.pop("conditions", None)
    for key in ("active", "succeeded", "failed"):
        if not status[key]:
            status.pop(key)
    return status
