"""The Job controller's pure plan: counting with the tracking finalizer, parallelism, Indexed, failure rules."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from apiserver.kinds.base import CreateContext
from apiserver.kinds.batch.job import STRATEGY
from controllers.jobplan import JobPlan, JobPlanSettings, plan
from controllers.jobpods import (
    COMPLETION_INDEX, TRACKING_FINALIZER, backoff_remaining, format_indexes, match_failure_policy, parse_indexes,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
UID = "job-uid"
FAST = JobPlanSettings(backoff_base_s=10.0, backoff_max_s=360.0)


def make_job(**spec: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "work", "namespace": "ns", "uid": UID, "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}},
                 **spec}}
    STRATEGY.defaults(obj)
    STRATEGY.prepare_for_create(obj, CreateContext(now=NOW))
    return obj


_counter = [0]


def pod_of(job: dict[str, Any], phase: str = "Running", *, index: int | None = None, finalizer: bool = True,
           deleting: bool = False, finished: datetime | None = None, exit_code: int | None = None,
           ready: bool = False) -> dict[str, Any]:
    _counter[0] += 1
    labels = dict(job["spec"]["template"]["metadata"]["labels"])
    annotations = {}
    if index is not None:
        labels[COMPLETION_INDEX] = annotations[COMPLETION_INDEX] = str(index)
    meta: dict[str, Any] = {
        "name": f"work-{_counter[0]}", "namespace": "ns", "uid": f"pod-{_counter[0]}", "labels": labels,
        "annotations": annotations, "creationTimestamp": "2024-05-01T11:00:00Z",
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "work", "uid": UID, "controller": True}]}
    if finalizer:
        meta["finalizers"] = [TRACKING_FINALIZER]
    if deleting:
        meta["deletionTimestamp"] = "2024-05-01T11:59:00Z"
    status: dict[str, Any] = {"phase": phase}
    if ready:
        status["conditions"] = [{"type": "Ready", "status": "True"}]
    if finished is not None or exit_code is not None:
        status["containerStatuses"] = [{"name": "c", "state": {"terminated": {
            "exitCode": exit_code or 0, "finishedAt": (finished or NOW).strftime("%Y-%m-%dT%H:%M:%SZ")}}}]
    return {"metadata": meta, "spec": {"nodeName": "n1"}, "status": status}


def run(job: dict[str, Any], pods: list[dict[str, Any]], **kw: Any) -> JobPlan:
    return plan(job, pods, now=kw.pop("now", NOW), settings=kw.pop("settings", FAST), **kw)


def test_a_new_job_starts_parallelism_pods_with_the_finalizer() -> None:
    job = make_job(completions=5, parallelism=2)
    p = run(job, [])
    assert len(p.create) == 2
    body = p.create[0]
    assert body["metadata"]["generateName"] == "work-" and TRACKING_FINALIZER in body["metadata"]["finalizers"]
    assert body["metadata"]["ownerReferences"][0]["controller"] is True
    assert body["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "work"
    assert p.status["startTime"] == "2024-05-01T12:00:00Z" and p.status["active"] == 2
    assert p.status["ready"] == 0 and p.status["terminating"] == 0 and p.status["uncountedTerminatedPods"] == {}


def test_never_more_than_the_remaining_completions() -> None:
    job = make_job(completions=5, parallelism=2)
    job["status"] = {"succeeded": 4, "startTime": "2024-05-01T11:00:00Z"}
    active = pod_of(job)
    p = run(job, [active])
    assert p.create == [] and p.delete == []
    job["status"]["succeeded"] = 3
    assert len(run(job, [active]).create) == 1
    two = [pod_of(job), pod_of(job), pod_of(job)]
    assert len(run(job, two).delete) == 1  # 3 active > parallelism 2


def test_finished_pods_are_counted_once_through_uncounted_then_the_finalizer() -> None:
    job = make_job(completions=2, parallelism=2)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    done, running = pod_of(job, "Succeeded"), pod_of(job)
    p1 = run(job, [done, running])
    assert p1.status["uncountedTerminatedPods"] == {"succeeded": [done["metadata"]["uid"]]}
    assert p1.remove_finalizer == [done] and "succeeded" not in p1.status and p1.create == []
    job["status"] = p1.status
    # The finalizer is gone: the uid moves to the counter.
    released = copy.deepcopy(done)
    del released["metadata"]["finalizers"]
    p2 = run(job, [released, running])
    assert p2.status["succeeded"] == 1 and p2.status["uncountedTerminatedPods"] == {}
    job["status"] = p2.status
    p3 = run(job, [released, running])
    assert p3.status["succeeded"] == 1  # never twice


def test_completion_waits_for_every_pod_then_complete_and_completion_time() -> None:
    job = make_job(completions=1)
    job["status"] = {"startTime": "2024-05-01T11:59:50Z"}
    done = pod_of(job, "Succeeded")
    p = run(job, [done])
    kinds = {c["type"]: c for c in p.status["conditions"]}
    assert kinds["SuccessCriteriaMet"]["reason"] == "CompletionsReached" and "Complete" not in kinds
    job["status"] = p.status
    del done["metadata"]["finalizers"]
    p = run(job, [done])
    kinds = {c["type"]: c for c in p.status["conditions"]}
    assert kinds["Complete"]["status"] == "True" and kinds["Complete"]["message"] == "Reached expected number of succeeded pods"
    assert p.status["completionTime"] == "2024-05-01T12:00:00Z" and p.status["succeeded"] == 1
    assert ("Normal", "Completed", "Job completed") in p.events


def test_backoff_limit_exceeded() -> None:
    job = make_job(backoffLimit=1)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "failed": 1}
    failed = pod_of(job, "Failed", exit_code=1)
    p = run(job, [failed])
    kinds = {c["type"]: c for c in p.status["conditions"]}
    assert kinds["FailureTarget"]["reason"] == "BackoffLimitExceeded"
    job["status"] = p.status
    del failed["metadata"]["finalizers"]
    p = run(job, [failed])
    failed_condition = next(c for c in p.status["conditions"] if c["type"] == "Failed")
    assert failed_condition["reason"] == "BackoffLimitExceeded"
    assert failed_condition["message"] == "Job has reached the specified backoff limit"
    assert p.status["failed"] == 2 and "completionTime" not in p.status


def test_replacements_wait_for_the_exponential_backoff() -> None:
    job = make_job(backoffLimit=6)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "failed": 2}
    gone = [pod_of(job, "Failed", finalizer=False, finished=NOW - timedelta(seconds=5)),
            pod_of(job, "Failed", finalizer=False, finished=NOW - timedelta(seconds=30))]
    p = run(job, gone)
    assert p.create == [] and p.requeue_after == pytest.approx(15.0)  # 2 failures: 20 s after the last
    p = run(job, gone, now=NOW + timedelta(seconds=16))
    assert len(p.create) == 1


@pytest.mark.parametrize(("failures", "elapsed", "remaining"), [
    (0, 0, 0.0), (1, 0, 10.0), (1, 4, 6.0), (3, 0, 40.0), (10, 0, 360.0), (10, 400, 0.0),
])
def test_backoff_remaining(failures: int, elapsed: float, remaining: float) -> None:
    last = NOW - timedelta(seconds=elapsed)
    times = [last - timedelta(seconds=i) for i in range(failures)]
    assert backoff_remaining(times, [], now=NOW, base_s=10, max_s=360) == pytest.approx(remaining)
    assert backoff_remaining(times, [NOW], now=NOW, base_s=10, max_s=360) == 0.0  # a success resets it


def test_deadline_exceeded_deletes_the_active_pods() -> None:
    job = make_job(activeDeadlineSeconds=30)
    job["status"] = {"startTime": "2024-05-01T11:59:00Z"}
    active = pod_of(job)
    p = run(job, [active])
    assert p.delete == [active]
    assert next(c for c in p.status["conditions"] if c["type"] == "FailureTarget")["reason"] == "DeadlineExceeded"
    job["status"] = {"startTime": "2024-05-01T11:59:50Z"}
    p = run(job, [active])
    assert p.delete == [] and p.requeue_after == pytest.approx(20.05)


def test_pod_failure_policy_fail_job_and_ignore() -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "c", "operator": "In", "values": [42]}},
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]}
    job = make_job(podFailurePolicy=policy, backoffLimit=6)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    fatal = pod_of(job, "Failed", exit_code=42)
    p = run(job, [fatal])
    target = next(c for c in p.status["conditions"] if c["type"] == "FailureTarget")
    assert target["reason"] == "PodFailurePolicy"
    assert target["message"] == (f"Container c for pod ns/{fatal['metadata']['name']} failed with exit code 42 "
                                 "matching FailJob rule at index 0")
    disrupted = pod_of(job, "Failed", exit_code=1)
    disrupted["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True"}]
    assert match_failure_policy(job, disrupted) is not None
    p = run(job, [disrupted])
    assert p.status["uncountedTerminatedPods"] == {} and p.remove_finalizer == [disrupted]
    assert "conditions" not in p.status  # not counted, not fatal; the replacement waits for the backoff
    assert p.create == [] and p.requeue_after == pytest.approx(10.0)


def test_suspend_deletes_active_pods_without_counting_them_and_resume() -> None:
    job = make_job(parallelism=2, completions=4, suspend=True)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    active = [pod_of(job), pod_of(job)]
    p = run(job, active)
    assert p.delete == active and "startTime" not in p.status
    assert next(c for c in p.status["conditions"] if c["type"] == "Suspended")["reason"] == "JobSuspended"
    job["status"] = p.status
    deleting = [pod_of(job, deleting=True)]
    p = run(job, deleting)
    assert p.remove_finalizer == deleting and p.status["uncountedTerminatedPods"] == {}
    job["spec"]["suspend"] = False
    p = run(job, [])
    suspended = next(c for c in p.status["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")
    assert p.status["startTime"] == "2024-05-01T12:00:00Z" and len(p.create) == 2


def test_indexed_jobs_create_the_lowest_missing_indexes() -> None:
    job = make_job(completionMode="Indexed", completions=4, parallelism=2)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "completedIndexes": "0"}
    running = pod_of(job, index=1)
    p = run(job, [running])
    assert len(p.create) == 1
    body = p.create[0]
    assert body["metadata"]["generateName"] == "work-2-"
    assert body["metadata"]["annotations"][COMPLETION_INDEX] == "2" == body["metadata"]["labels"][COMPLETION_INDEX]
    assert body["spec"]["hostname"] == "work-2"
    assert body["spec"]["containers"][0]["env"] == [{"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}}]
    done = pod_of(job, "Succeeded", index=1)
    p = run(job, [done])
    assert p.status["completedIndexes"] == "0,1" and p.status["succeeded"] == 2
    assert [b["metadata"]["generateName"] for b in p.create] == ["work-2-", "work-3-"]


@pytest.mark.parametrize(("indexes", "text"), [
    ([], ""), ([0], "0"), ([0, 1], "0,1"), ([0, 1, 2], "0-2"), ([1, 3, 4, 5, 7], "1,3-5,7"), ([5, 2, 3, 4], "2-5"),
])
def test_completed_indexes_text(indexes: list[int], text: str) -> None:
    assert format_indexes(indexes) == text
    assert parse_indexes(text, limit=10) == set(indexes)


def test_orphans_matching_the_selector_are_adopted_and_finished_jobs_only_release_finalizers() -> None:
    job = make_job()
    orphan = pod_of(job)
    orphan["metadata"]["ownerReferences"] = []
    p = run(job, [orphan])
    assert p.adopt == [orphan]
    job["status"] = {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 1}
    leftover = pod_of(job, "Succeeded")
    p = run(job, [leftover])
    assert p.remove_finalizer == [leftover] and p.create == [] and p.delete == []


def test_restart_policy_on_failure_counts_restarts() -> None:
    job = make_job(backoffLimit=2)
    job["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    job["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    crashing = pod_of(job)
    crashing["status"]["containerStatuses"] = [{"name": "c", "restartCount": 2, "state": {"waiting": {}}}]
    p = run(job, [crashing])
    assert next(c for c in p.status["conditions"] if c["type"] == "FailureTarget")["reason"] == "BackoffLimitExceeded"


def test_only_failed_replacement_waits_for_the_grace_period_of_a_deleted_pod() -> None:
    job = make_job(podReplacementPolicy="Failed", completions=1)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    deleted = pod_of(job, deleting=True)
    deleted["metadata"]["deletionTimestamp"] = "2024-05-01T12:00:20Z"  # its grace period ends in 20 s
    p = run(job, [deleted])
    assert p.create == [] and p.remove_finalizer == [] and p.status["terminating"] == 1
    assert p.requeue_after == pytest.approx(20.05)
    p = run(job, [deleted], now=NOW + timedelta(seconds=21))
    assert p.status["uncountedTerminatedPods"] == {"failed": [deleted["metadata"]["uid"]]}
    assert p.remove_finalizer == [deleted]
    # The default policy (TerminatingOrFailed) counts it at once and replaces it.
    plain = make_job(completions=1)
    plain["status"] = {"startTime": "2024-05-01T11:00:00Z"}
    gone = pod_of(plain, deleting=True)
    p = run(plain, [gone])
    assert p.status["uncountedTerminatedPods"] == {"failed": [gone["metadata"]["uid"]]}


def test_a_failing_job_counts_the_pods_it_deletes() -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    job = make_job(podFailurePolicy=policy, parallelism=2, completions=2)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "conditions": [
        {"type": "FailureTarget", "status": "True", "reason": "PodFailurePolicy", "message": "m"}]}
    deleted = pod_of(job, deleting=True)
    deleted["metadata"]["deletionTimestamp"] = "2024-05-01T12:00:30Z"
    p = run(job, [deleted])
    assert p.remove_finalizer == [deleted] and p.status["uncountedTerminatedPods"] == {
        "failed": [deleted["metadata"]["uid"]]}
    del deleted["metadata"]["finalizers"]
    job["status"] = p.status
    p = run(job, [])
    failed = next(c for c in p.status["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], p.status["failed"]) == ("PodFailurePolicy", 1)


def test_backoff_limit_per_index() -> None:
    job = make_job(completionMode="Indexed", completions=3, parallelism=3, backoffLimitPerIndex=1, maxFailedIndexes=1)
    assert job["spec"]["backoffLimit"] == 2**31 - 1
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "failedIndexes": ""}
    first = pod_of(job, "Failed", index=0, exit_code=1, finished=NOW - timedelta(seconds=30))
    others = [pod_of(job, index=1), pod_of(job, index=2)]
    p = run(job, [first, *others])
    assert p.status["failedIndexes"] == "" and p.status["uncountedTerminatedPods"] == {
        "failed": [first["metadata"]["uid"]]}
    assert [b["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] for b in p.create] == ["1"]
    # The retry of index 0 fails too: the index is given up, the others go on.
    job["status"] = p.status
    del first["metadata"]["finalizers"]
    retry = pod_of(job, "Failed", index=0, exit_code=1)
    retry["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] = "1"
    p = run(job, [first, retry, *others])
    assert p.status["failedIndexes"] == "0" and p.create == [] and "conditions" not in p.status
    # Index 1 fails twice as well: more failed indexes than maxFailedIndexes.
    job["status"] = p.status
    del retry["metadata"]["finalizers"]
    twice = pod_of(job, "Failed", index=1, exit_code=1)
    twice["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"] = "1"
    p = run(job, [first, retry, twice, others[1]])
    target = next(c for c in p.status["conditions"] if c["type"] == "FailureTarget")
    assert target["reason"] == "MaxFailedIndexesExceeded" and p.status["failedIndexes"] == "0,1"
    assert p.delete == [others[1]]


def test_failed_indexes_end_the_job_once_every_index_is_done() -> None:
    job = make_job(completionMode="Indexed", completions=2, parallelism=2, backoffLimitPerIndex=0)
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "completedIndexes": "1", "failedIndexes": ""}
    failed = pod_of(job, "Failed", index=0, exit_code=1)
    p = run(job, [failed])
    target = next(c for c in p.status["conditions"] if c["type"] == "FailureTarget")
    assert (target["reason"], target["message"]) == ("FailedIndexes", "Job has failed indexes")


@pytest.mark.parametrize(("rule", "completed", "met"), [
    ({"succeededIndexes": "0,2"}, "0,2", True),
    ({"succeededIndexes": "0,2"}, "0", False),
    ({"succeededCount": 2}, "1,3", True),
    ({"succeededIndexes": "0-3", "succeededCount": 3}, "0-2", True),
    ({"succeededIndexes": "0-3", "succeededCount": 3}, "0,1,4", False),
])
def test_success_policy(rule: dict[str, Any], completed: str, met: bool) -> None:
    job = make_job(completionMode="Indexed", completions=5, parallelism=5, successPolicy={"rules": [rule]})
    job["status"] = {"startTime": "2024-05-01T11:00:00Z", "completedIndexes": completed}
    lingering = pod_of(job, index=4 if "4" not in completed else 3)
    p = run(job, [lingering])
    conditions = {c["type"]: c for c in p.status.get("conditions") or []}
    if not met:
        assert "SuccessCriteriaMet" not in conditions
        return
    assert (conditions["SuccessCriteriaMet"]["reason"], conditions["SuccessCriteriaMet"]["message"]) == (
        "SuccessPolicy", "Matched rules at index 0")
    assert p.delete == [lingering] and "Complete" not in conditions
    job["status"] = p.status
    p = run(job, [])
    assert next(c for c in p.status["conditions"] if c["type"] == "Complete")["reason"] == "SuccessPolicy"
