"""The CronJob controller's decisions for one sync, as a pure function over wire dicts.

After Kubernetes' pkg/controller/cronjob (``syncCronJob``, ``mostRecentScheduleTime``,
``getJobFromTemplate2``, ``cleanupFinishedJobs``). Data flow:

    the CronJob + the Jobs of its namespace (informer caches) + now + the controller's zone
      -> status.active follows the Jobs it owns (finished ones leave it: SawCompletedJob, and a
         Complete one moves lastSuccessfulTime; vanished ones leave it: MissingJob)
      -> finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit are deleted
      -> suspended, an unknown timeZone or an unparsable schedule: nothing more
      -> the most recent scheduled time in (lastScheduleTime or creation, now], limited by
         startingDeadlineSeconds (too late: MissSchedule)
      -> Job ``<cronjob>-<minutes since epoch>`` already there: nothing; concurrencyPolicy
         Forbid with an active Job: skip (JobAlreadyActive); Replace: delete the active Jobs
      -> the Job from jobTemplate (annotation batch.kubernetes.io/cronjob-scheduled-timestamp,
         controller reference), lastScheduleTime
      -> requeue at the next scheduled time

Nothing here reads a clock, does I/O or mutates its arguments.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from controllers.ownerrefs import Obj, controller_ref, get_controller_of, is_deleting, meta, name_of, uid_of
from machinery.cronschedule import ScheduleError, parse, zone
from machinery.timefmt import parse_time

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100
Event = tuple[str, str, str]


@dataclass
class CronJobPlan:
    status: Obj = field(default_factory=dict)
    delete: list[Obj] = field(default_factory=list)  # Jobs, deleted with propagation Background
    create: Obj | None = None  # the Job to create (its reference joins status.active once created)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def rfc3339(moment: datetime) -> str:
    """Go's ``time.RFC3339`` of an aware datetime: ``Z`` for UTC, else the offset."""
    text = moment.replace(microsecond=0).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_ref(job: Obj) -> Obj:
    m = meta(job)
    return {"kind": "Job", "namespace": m.get("namespace"), "name": m.get("name"), "uid": m.get("uid"),
            "apiVersion": "batch/v1", "resourceVersion": m.get("resourceVersion")}


def finished_condition(job: Obj) -> str | None:
    for c in (job.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return str(c["type"])
    return None


def job_name(cronjob: Obj, scheduled: datetime) -> str:
    """``getJobName``: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{name_of(cronjob)}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cronjob: Obj, scheduled: datetime) -> Obj:
    """``getJobFromTemplate2``: the jobTemplate as a Job named for ``scheduled``, owned by the CronJob."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = rfc3339(scheduled)
    job_meta: Obj = {"name": job_name(cronjob, scheduled), "namespace": meta(cronjob).get("namespace"),
                     "annotations": annotations,
                     "ownerReferences": [controller_ref(cronjob, api_version="batch/v1", kind="CronJob")]}
    if tmeta.get("labels"):
        job_meta["labels"] = dict(tmeta["labels"])
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def _start(job: Obj) -> datetime:
    return (parse_time((job.get("status") or {}).get("startTime"))
            or parse_time(meta(job).get("creationTimestamp")) or datetime.min.replace(tzinfo=timezone.utc))


def _history(cronjob: Obj, owned: list[Obj], events: list[Event]) -> list[Obj]:
    spec = cronjob.get("spec") or {}
    doomed: list[Obj] = []
    for kind, limit_key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(limit_key)
        if not isinstance(limit, int):
            continue
        done = sorted((j for j in owned if finished_condition(j) == kind and not is_deleting(j)), key=_start)
        for job in done[:max(0, len(done) - limit)]:
            doomed.append(job)
            events.append(("Normal", "SuccessfulDelete", f"Deleted job {name_of(job)}"))
    return doomed


def _follow_jobs(cronjob: Obj, owned: list[Obj], status: Obj, events: list[Event]) -> None:
    """status.active and lastSuccessfulTime from the Jobs (``syncCronJob``'s first half)."""
    by_uid = {uid_of(j): j for j in owned}
    active: list[Obj] = []
    for ref in status.get("active") or []:
        job = by_uid.get(str(ref.get("uid") or ""))
        if job is None:
            events.append(("Normal", "MissingJob", f"Active job went missing: {ref.get('name')}"))
            continue
        condition = finished_condition(job)
        if condition is None:
            active.append(ref)
            continue
        events.append(("Normal", "SawCompletedJob", f"Saw completed job: {name_of(job)}, condition: {condition}"))
        if condition == "Complete":
            done = parse_time((job.get("status") or {}).get("completionTime"))
            last = parse_time(status.get("lastSuccessfulTime"))
            if done is not None and (last is None or done > last):
                status["lastSuccessfulTime"] = rfc3339(done)
    known = {str(r.get("uid")) for r in active}
    for job in owned:
        if uid_of(job) not in known and finished_condition(job) is None and not is_deleting(job):
            events.append(("Warning", "UnexpectedJob",
                           f"Saw a job that the controller did not create or forgot: {name_of(job)}"))
            active.append(job_ref(job))
    if active:
        status["active"] = active
    else:
        status.pop("active", None)


def plan(cronjob: Obj, jobs: list[Obj], *, now: datetime, default_zone: tzinfo = timezone.utc) -> CronJobPlan:
    """One sync of ``cronjob`` given the Jobs of its namespace (see the module docstring)."""
    out = CronJobPlan(status=copy.deepcopy(cronjob.get("status") or {}))
    spec = cronjob.get("spec") or {}
    owned = [j for j in jobs if (get_controller_of(j) or {}).get("uid") == uid_of(cronjob)]
    _follow_jobs(cronjob, owned, out.status, out.events)
    out.delete = _history(cronjob, owned, out.events)
    if is_deleting(cronjob) or spec.get("suspend"):
        return out
    try:
        where = zone(spec.get("timeZone"), default_zone)
    except ScheduleError as e:
        out.events.append(("Warning", "UnknownTimeZone", f"invalid timeZone: {spec.get('timeZone')!r}: {e}"))
        return out
    try:
        schedule = parse(str(spec.get("schedule") or ""))
    except ScheduleError as e:
        out.events.append(("Warning", "UnparseableSchedule", f"unparseable schedule: {spec.get('schedule')!r} : {e}"))
        return out
    local_now = now.astimezone(where)
    earliest = parse_time(out.status.get("lastScheduleTime")) or parse_time(meta(cronjob).get("creationTimestamp")) \
        or now
    deadline = spec.get("startingDeadlineSeconds")
    if isinstance(deadline, int) and earliest < now - timedelta(seconds=deadline):
        earliest = now - timedelta(seconds=deadline)
    scheduled, missed = schedule.most_recent(earliest.astimezone(where), local_now)
    upcoming = schedule.next_after(local_now)
    if upcoming is not None:
        out.requeue_after = (upcoming - local_now).total_seconds() + 0.1
    if missed > TOO_MANY_MISSED:
        out.events.append(("Warning", "TooManyMissedTimes", f"too many missed start times: {missed}. Set or decrease "
                           ".spec.startingDeadlineSeconds or check clock skew"))
    if scheduled is None:
        return out
    if isinstance(deadline, int) and scheduled + timedelta(seconds=deadline) < now:
        out.events.append(("Warning", "MissSchedule", "Missed scheduled time to start a job: "
                           + scheduled.astimezone(timezone.utc).strftime("%a, %d %b %Y %H:%M:%S +0000")))
        return out
    name = job_name(cronjob, scheduled)
    if any(r.get("name") == name for r in out.status.get("active") or []) or any(name_of(j) == name for j in jobs):
        return out
    active_refs = list(out.status.get("active") or [])
    policy = spec.get("concurrencyPolicy") or "Allow"
    if policy == "Forbid" and active_refs:
        out.events.append(("Normal", "JobAlreadyActive",
                           "Not starting job because prior execution is running and concurrency policy is Forbid"))
        return out
    if policy == "Replace" and active_refs:
        by_uid = {uid_of(j): j for j in owned}
        for ref in active_refs:
            job = by_uid.get(str(ref.get("uid") or ""))
            if job is not None and job not in out.delete:
                out.delete.append(job)
                out.events.append(("Normal", "SuccessfulDelete", f"Deleted job {name_of(job)}"))
        out.status.pop("active", None)
    out.create = job_from_template(cronjob, scheduled)
    out.status["lastScheduleTime"] = rfc3339(scheduled.astimezone(timezone.utc))
    return out

