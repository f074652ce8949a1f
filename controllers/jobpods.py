"""What the Job controller reads from one pod, as pure functions over wire dicts.

Role: the pod-level facts ``controllers.jobplan`` decides with, after Kubernetes'
pkg/controller/job (``isPodFailed``, ``getCompletionIndex``, ``getFinishedTime``,
``matchPodFailurePolicy``, the ``orderedIntervals`` text of ``completedIndexes`` and the backoff of
``getRemainingTime``), plus the body of a pod to create (``pod_for_job``: the template, a
controller reference, the ``batch.kubernetes.io/job-tracking`` finalizer and, for Indexed Jobs,
the completion index as annotation, label, ``JOB_COMPLETION_INDEX`` and hostname).

No clock reads, no I/O; cached objects are never changed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from controllers.ownerrefs import Obj, is_deleting, meta, pod_from_template
from machinery.timefmt import parse_time

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURES = "batch.kubernetes.io/job-index-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"


def phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def has_tracking_finalizer(pod: Obj) -> bool:
    return TRACKING_FINALIZER in (meta(pod).get("finalizers") or [])


def only_replace_failed(job: Obj) -> bool:
    """``onlyReplaceFailedPods``: podReplacementPolicy Failed (always so with a podFailurePolicy)."""
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") == "Failed" or spec.get("podFailurePolicy") is not None


def is_failed(pod: Obj, job: Obj, *, now: datetime | None = None) -> bool:
    """``isPodFailed``: phase Failed, or deleted before it succeeded. When only failed pods are
    replaced, a deleted pod counts once its grace period is over (``now`` past its deletionTimestamp:
    a kubelet would have ended it by then, and not every kubelet here writes the Failed phase)."""
    if phase(pod) == "Failed":
        return True
    if phase(pod) == "Succeeded" or not is_deleting(pod):
        return False
    if not only_replace_failed(job):
        return True
    deadline = parse_time(meta(pod).get("deletionTimestamp"))
    return now is not None and deadline is not None and now >= deadline


def is_active(pod: Obj) -> bool:
    """Pending or Running and not being deleted."""
    return phase(pod) not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_terminating(pod: Obj) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and is_deleting(pod)


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict))


def completion_index(pod: Obj) -> int | None:
    """``getCompletionIndex``: the annotation (or label) as a non-negative int, else None."""
    m = meta(pod)
    for source in (m.get("annotations") or {}, m.get("labels") or {}):
        value = source.get(COMPLETION_INDEX)
        if isinstance(value, str) and value.isdigit() and value.isascii():
            return int(value)
    return None


def index_failures(pod: Obj) -> int:
    """How many pods of this pod's index failed before it (the job-index-failure-count annotation)."""
    value = (meta(pod).get("annotations") or {}).get(INDEX_FAILURES)
    return int(value) if isinstance(value, str) and value.isdigit() else 0


def finished_time(pod: Obj) -> datetime | None:
    """``getFinishedTime``: the latest container finishedAt, else the deletion or creation time."""
    status = pod.get("status") or {}
    times = [parse_time(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"))
             for key in ("containerStatuses", "initContainerStatuses") for s in status.get(key) or []
             if isinstance(s, dict)]
    found = [t for t in times if t is not None]
    if found:
        return max(found)
    return parse_time(meta(pod).get("deletionTimestamp")) or parse_time(meta(pod).get("creationTimestamp"))


def restarts(pod: Obj) -> int:
    status = pod.get("status") or {}
    return sum(int(s.get("restartCount") or 0) for key in ("containerStatuses", "initContainerStatuses")
               for s in status.get(key) or [] if isinstance(s, dict))


# ---------------------------------------------------------------------------- indexes
def parse_indexes(text: Any, *, limit: int) -> set[int]:
    """``completedIndexes`` text ("1,3-5,7") -> the set of indexes below ``limit``; bad parts skipped."""
    out: set[int] = set()
    if not isinstance(text, str):
        return out
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            continue
        lo, hi = int(first), int(last or first)
        out.update(range(lo, min(hi, limit - 1) + 1))
    return out


def format_indexes(indexes: Iterable[int]) -> str:
    """``orderedIntervals.String``: "1,3-5,7"; two neighbours are written "1,2"."""
    ordered = sorted(set(indexes))
    pieces: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = ordered[i], ordered[j]
        if first == last:
            pieces.append(str(first))
        elif last == first + 1:
            pieces += [str(first), str(last)]
        else:
            pieces.append(f"{first}-{last}")
        i = j + 1
    return ",".join(pieces)


# ---------------------------------------------------------------------------- pod failure policy
def _exit_code_match(rule: Mapping[str, Any], pod: Obj) -> tuple[str, int] | None:
    req = rule.get("onExitCodes") or {}
    wanted = req.get("containerName")
    values = set(req.get("values") or [])
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for s in status.get(key) or []:
            if not isinstance(s, dict) or (wanted and s.get("name") != wanted):
                continue
            terminated = (s.get("state") or {}).get("terminated") or {}
            code = terminated.get("exitCode")
            if not isinstance(code, int) or code == 0:
                continue
            if (req.get("operator") == "In") == (code in values):
                return str(s.get("name")), code
    return None


def _condition_match(rule: Mapping[str, Any], pod: Obj) -> str | None:
    conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if isinstance(c, dict)]
    for pattern in rule.get("onPodConditions") or []:
        for c in conditions:
            if c.get("type") == pattern.get("type") and c.get("status") == (pattern.get("status") or "True"):
                return str(c.get("type"))
    return None


def match_failure_policy(job: Obj, pod: Obj) -> tuple[str, str] | None:
    """``matchPodFailurePolicy``: (action, message) of the first rule a failed pod matches, else None."""
    policy = (job.get("spec") or {}).get("podFailurePolicy") or {}
    m = meta(pod)
    who = f"{m.get('namespace')}/{m.get('name')}"
    for i, rule in enumerate(policy.get("rules") or []):
        action = str(rule.get("action") or "")
        if rule.get("onExitCodes") is not None:
            found = _exit_code_match(rule, pod)
            if found is not None:
                return action, (f"Container {found[0]} for pod {who} failed with exit code {found[1]} "
                                f"matching {action} rule at index {i}")
        elif rule.get("onPodConditions"):
            cond = _condition_match(rule, pod)
            if cond is not None:
                return action, f"Pod {who} has condition {cond} matching {action} rule at index {i}"
    return None


# ---------------------------------------------------------------------------- backoff
def backoff_remaining(failed_times: list[datetime], succeeded_times: list[datetime], *, now: datetime,
                      base_s: float, max_s: float) -> float:
    """``getRemainingTime``: seconds until a replacement may start (0: now) after the failures since the last success."""
    last_success = max(succeeded_times, default=None)
    recent = [t for t in failed_times if last_success is None or t > last_success]
    if not recent:
        return 0.0
    delay = min(base_s * 2 ** (len(recent) - 1), max_s)
    return max(0.0, delay - (now - max(recent)).total_seconds())


# ---------------------------------------------------------------------------- the pod to create
def pod_for_job(job: Obj, *, index: int | None, failures: int | None = None) -> Obj:
    """The pod of ``job``'s template (an Indexed Job's carries ``index``; with backoffLimitPerIndex
    also the ``failures`` of that index so far), with the tracking finalizer."""
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    job_name = str(meta(job).get("name") or "")
    if index is not None:
        tmeta = template.setdefault("metadata", {})
        tmeta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
        if failures is not None:
            tmeta["annotations"][INDEX_FAILURES] = str(failures)
        tmeta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
        pod_spec = template.setdefault("spec", {})
        if not pod_spec.get("hostname"):
            pod_spec["hostname"] = f"{job_name}-{index}"
        env_var = {"name": INDEX_ENV, "valueFrom": {"fieldRef": {
            "apiVersion": "v1", "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}}
        for key in ("initContainers", "containers"):
            for container in pod_spec.get(key) or []:
                env = container.setdefault("env", [])
                if not any(e.get("name") == INDEX_ENV for e in env):
                    env.append(copy.deepcopy(env_var))
    pod = pod_from_template(template, job, api_version="batch/v1", kind="Job")
    if index is not None:
        pod["metadata"]["generateName"] = f"{job_name}-{index}-"
    finalizers = pod["metadata"].setdefault("finalizers", [])
    if TRACKING_FINALIZER not in finalizers:
        finalizers.append(TRACKING_FINALIZER)
    return pod
