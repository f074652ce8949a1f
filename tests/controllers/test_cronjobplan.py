"""Cron schedules (machinery.cronschedule) and the CronJob controller's pure plan, with a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controllers.cronjobplan import SCHEDULED_TIMESTAMP, job_ref, plan
from machinery.cronschedule import ScheduleError, parse, zone

UTC = timezone.utc
NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("schedule", "after", "expected"), [
    ("*/1 * * * *", "2024-05-01T12:00:30", "2024-05-01T12:01:00"),
    ("*/15 * * * *", "2024-05-01T12:00:00", "2024-05-01T12:15:00"),
    ("5 4 * * *", "2024-05-01T12:00:00", "2024-05-02T04:05:00"),
    ("0 0 1 1 *", "2024-05-01T12:00:00", "2025-01-01T00:00:00"),
    ("@yearly", "2024-05-01T12:00:00", "2025-01-01T00:00:00"),
    ("@annually", "2024-05-01T12:00:00", "2025-01-01T00:00:00"),
    ("@monthly", "2024-05-01T12:00:00", "2024-06-01T00:00:00"),
    ("@weekly", "2024-05-01T12:00:00", "2024-05-05T00:00:00"),
    ("@daily", "2024-05-01T12:00:00", "2024-05-02T00:00:00"),
    ("@midnight", "2024-05-01T12:00:00", "2024-05-02T00:00:00"),
    ("@hourly", "2024-05-01T12:00:00", "2024-05-01T13:00:00"),
    ("0 9 * * MON-FRI", "2024-05-03T10:00:00", "2024-05-06T09:00:00"),
    ("0 0 * JAN,jul *", "2024-05-01T12:00:00", "2024-07-01T00:00:00"),
    ("30 8-18/5 * * *", "2024-05-01T12:00:00", "2024-05-01T13:30:00"),
    ("0 0 13 * 5", "2024-05-01T12:00:00", "2024-05-03T00:00:00"),  # 13th OR Friday
    ("0 0 31 * *", "2024-05-31T12:00:00", "2024-07-31T00:00:00"),
    ("0 0 29 2 *", "2024-03-01T00:00:00", "2028-02-29T00:00:00"),
    ("10/20 * * * ?", "2024-05-01T12:00:00", "2024-05-01T12:10:00"),
])
def test_next_after(schedule: str, after: str, expected: str) -> None:
    t = datetime.fromisoformat(after).replace(tzinfo=UTC)
    assert parse(schedule).next_after(t) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.parametrize(("schedule", "message"), [
    ("", "empty spec string"),
    ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
    ("60 * * * *", "end of range (60) above maximum (59): 60"),
    ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
    ("a * * * *", 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'),
    ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
    ("*/0 * * * *", "step of range should be a positive number: */0"),
    ("@often", "unrecognized descriptor: @often"),
    ("TZ=UTC * * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
    ("CRON_TZ=UTC * * * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
])
def test_bad_schedules(schedule: str, message: str) -> None:
    with pytest.raises(ScheduleError) as e:
        parse(schedule)
    assert str(e.value) == message


def test_time_zones() -> None:
    assert zone(None) is UTC and zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    for bad in ("Mars/Olympus", "", "../etc/passwd", "Local"):
        with pytest.raises(ScheduleError):
            zone(bad)
    berlin = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Berlin"))  # 14:00 local
    assert parse("0 15 * * *").next_after(berlin) == datetime(2024, 5, 1, 13, 0, tzinfo=UTC)


def cronjob(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow", "suspend": False,
                            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
                            "jobTemplate": {"metadata": {"labels": {"app": "hello"}},
                                            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "ns", "uid": "cj-uid", "creationTimestamp": "2024-05-01T11:58:10Z"},
            "spec": {**base, **spec}, "status": {}}


def job_of(name: str, *, finished: str | None = None, start: str = "2024-05-01T11:00:00Z", uid: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"startTime": start}
    if finished:
        status["conditions"] = [{"type": finished, "status": "True"}]
        if finished == "Complete":
            status["completionTime"] = "2024-05-01T11:59:10Z"
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid or f"uid-{name}", "resourceVersion": "7",
                         "ownerReferences": [{"kind": "CronJob", "name": "hello", "uid": "cj-uid", "controller": True}]},
            "status": status}


def test_the_scheduled_job_is_named_for_its_minute_and_annotated() -> None:
    p = plan(cronjob(), [], now=NOW)
    assert p.create is not None
    assert p.create["metadata"]["name"] == f"hello-{int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()) // 60}"
    assert p.create["metadata"]["annotations"][SCHEDULED_TIMESTAMP] == "2024-05-01T12:00:00Z"
    assert p.create["metadata"]["labels"] == {"app": "hello"}
    assert p.create["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    assert p.status["lastScheduleTime"] == "2024-05-01T12:00:00Z"
    assert p.requeue_after == pytest.approx(30.1)


def test_forbid_skips_a_run_while_one_is_active_and_allow_does_not() -> None:
    running = job_of("hello-28577999")
    cj = cronjob(concurrencyPolicy="Forbid")
    cj["status"] = {"active": [job_ref(running)], "lastScheduleTime": "2024-05-01T11:59:00Z"}
    p = plan(cj, [running], now=NOW)
    assert p.create is None
    assert ("Normal", "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid") in p.events
    assert p.status["lastScheduleTime"] == "2024-05-01T11:59:00Z"
    # A minute later, the previous run finished: the next one starts.
    done = job_of("hello-28577999", finished="Complete")
    p = plan(cj, [done], now=NOW + timedelta(minutes=1))
    assert p.create is not None and "active" not in p.status
    assert p.status["lastSuccessfulTime"] == "2024-05-01T11:59:10Z"
    cj["spec"]["concurrencyPolicy"] = "Allow"
    assert plan(cj, [running], now=NOW).create is not None


def test_replace_deletes_the_active_job() -> None:
    running = job_of("hello-28577999")
    cj = cronjob(concurrencyPolicy="Replace")
    cj["status"] = {"active": [job_ref(running)], "lastScheduleTime": "2024-05-01T11:59:00Z"}
    p = plan(cj, [running], now=NOW)
    assert p.delete == [running] and p.create is not None and "active" not in p.status


def test_starting_deadline_and_suspend() -> None:
    cj = cronjob(startingDeadlineSeconds=10)
    p = plan(cj, [], now=NOW + timedelta(seconds=15))  # 12:00:45: the 12:00 run is 45 s late, past 10 s
    assert p.create is None and p.events == [] and p.requeue_after == pytest.approx(15.1)
    assert plan(cronjob(startingDeadlineSeconds=60), [], now=NOW + timedelta(seconds=15)).create is not None
    assert plan(cronjob(suspend=True), [], now=NOW).create is None
    assert plan(cronjob(timeZone="Mars/Olympus"), [], now=NOW).events[0][1] == "UnknownTimeZone"


def test_nothing_before_the_first_scheduled_time_and_no_duplicate() -> None:
    cj = cronjob(schedule="0 * * * *")
    cj["metadata"]["creationTimestamp"] = "2024-05-01T12:00:10Z"
    p = plan(cj, [], now=NOW + timedelta(seconds=30))
    assert p.create is None and p.requeue_after == pytest.approx(3540.1)
    cj = cronjob()
    existing = job_of(f"hello-{int(datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()) // 60}")
    assert plan(cj, [existing], now=NOW).create is None


def test_history_limits_delete_the_oldest_finished_jobs() -> None:
    jobs = [job_of(f"ok-{i}", finished="Complete", start=f"2024-05-01T11:0{i}:00Z") for i in range(5)]
    jobs += [job_of(f"bad-{i}", finished="Failed", start=f"2024-05-01T11:0{i}:00Z") for i in range(3)]
    cj = cronjob(suspend=True)
    p = plan(cj, jobs, now=NOW)
    assert sorted(j["metadata"]["name"] for j in p.delete) == ["bad-0", "bad-1", "ok-0", "ok-1"]


def test_active_follows_the_jobs() -> None:
    cj = cronjob(suspend=True)
    vanished = job_of("gone")
    cj["status"] = {"active": [job_ref(vanished)]}
    unexpected = job_of("stray")
    p = plan(cj, [unexpected], now=NOW)
    assert [r["name"] for r in p.status["active"]] == ["stray"]
    assert {e[1] for e in p.events} == {"MissingJob", "UnexpectedJob"}
