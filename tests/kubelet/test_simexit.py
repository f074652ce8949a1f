"""kubelet.simexit: which simulated containers finish, when, with what code, and the pod that follows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubelet.podstatus import running_status
from kubelet.simexit import command_lifetime, finish, killed, lifetime, parse_duration

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(("text", "seconds"), [
    ("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0), ("3", 3.0), ("0.25", 0.25),
    ("soon", None), ("2x", None), ("", None),
])
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("command", "args", "expected"), [
    (["true"], [], (0.0, 0)),
    (["false"], [], (0.0, 1)),
    (["/bin/sleep", "5"], [], (5.0, 0)),
    (["sleep"], ["2"], (2.0, 0)),
    (["sh", "-c", "echo hi; sleep 1; exit 3"], [], (1.0, 3)),
    (["/bin/sh", "-c"], ["date; echo Hello from the Kubernetes cluster"], (0.0, 0)),
    (["sh", "-c", "sleep 1 && sleep 2"], [], (3.0, 0)),
    (["sh", "-c", "echo $JOB_COMPLETION_INDEX"], [], (0.0, 0)),
    (["sh", "-c", "false; echo never"], [], (0.0, 1)),
    (["sh", "-c", "while true; do sleep 1; done"], [], None),
    (["nginx", "-g", "daemon off;"], [], None),
    (["sleep", "infinity"], [], None),
    ([], [], None),
    (["perl", "-Mbignum=bpi", "-wle", "print bpi(2000)"], [], None),
])
def test_command_lifetimes(command: list[str], args: list[str], expected: tuple[float, int] | None) -> None:
    assert command_lifetime({"name": "c", "command": command, "args": args}) == expected


def test_annotations_win_and_may_name_a_container() -> None:
    pod = {"metadata": {"annotations": {"simulated.minik8s.io/exit-after": "2s",
                                        "simulated.minik8s.io/exit-after.side": "5s",
                                        "simulated.minik8s.io/exit-code.side": "7"}}}
    assert lifetime(pod, {"name": "main", "command": ["sleep", "100"]}) == (2.0, 0)
    assert lifetime(pod, {"name": "side"}) == (5.0, 7)
    assert lifetime({"metadata": {"annotations": {"simulated.minik8s.io/exit-code": "4"}}},
                    {"name": "c", "command": ["sleep", "1"]}) == (1.0, 4)


def make_pod(policy: str, *, after: str = "2s", code: str = "0", containers: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": "p", "uid": "u", "annotations": {
                "simulated.minik8s.io/exit-after.c0": after, "simulated.minik8s.io/exit-code.c0": code}},
            "spec": {"restartPolicy": policy, "containers": [{"name": f"c{i}", "image": "x"} for i in range(containers)]},
            "status": {"phase": "Pending"}}


def step(pod: dict[str, Any], now: datetime) -> float | None:
    """One reconcile of the simulated kubelet: running_status, then finish; the status is stored."""
    status, wake = finish(pod, running_status(pod, pod_ip="10.0.0.2", host_ip="10.0.0.1", now=now), now)
    pod["status"] = status
    return wake


def test_never_ends_the_pod_and_is_idempotent() -> None:
    pod = make_pod("Never", code="2")
    assert step(pod, T0) == pytest.approx(2.0)
    assert pod["status"]["phase"] == "Running"
    before = dict(pod["status"])
    assert step(pod, T0 + timedelta(seconds=1)) == pytest.approx(1.0) and pod["status"] == before
    assert step(pod, T0 + timedelta(seconds=2.5)) is None
    status = pod["status"]
    assert status["phase"] == "Failed"
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated == {"exitCode": 2, "reason": "Error", "startedAt": "2024-05-01T12:00:00Z",
                          "finishedAt": "2024-05-01T12:00:02Z", "containerID": "simulated://u-c0"}
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"]["status"] == "False" and conditions["Ready"]["reason"] == "PodCompleted"


def test_on_failure_restarts_after_the_crash_loop_backoff() -> None:
    pod = make_pod("OnFailure", code="1")
    step(pod, T0)
    wake = step(pod, T0 + timedelta(seconds=2))
    entry = pod["status"]["containerStatuses"][0]
    assert entry["state"]["waiting"]["reason"] == "CrashLoopBackOff" and entry["restartCount"] == 1
    assert entry["lastState"]["terminated"]["exitCode"] == 1 and wake == pytest.approx(10.0)
    assert pod["status"]["phase"] == "Running"
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "False"
    frozen = dict(pod["status"])
    step(pod, T0 + timedelta(seconds=5))
    assert pod["status"] == frozen  # nothing changes while it backs off: no status write
    step(pod, T0 + timedelta(seconds=12))
    assert "running" in pod["status"]["containerStatuses"][0]["state"]


def test_on_failure_success_and_other_containers_keep_the_pod_running() -> None:
    pod = make_pod("OnFailure", code="0", containers=2)
    step(pod, T0)
    assert step(pod, T0 + timedelta(seconds=3)) is None
    assert pod["status"]["phase"] == "Running"  # c1 runs forever
    first, second = pod["status"]["containerStatuses"]
    assert first["state"]["terminated"]["reason"] == "Completed" and "running" in second["state"]
    ready = {c["type"]: c for c in pod["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "ContainersNotReady" and ready["message"] == "containers with unready status: [c0]"


def test_always_restarts_even_after_success() -> None:
    pod = make_pod("Always", code="0")
    step(pod, T0)
    step(pod, T0 + timedelta(seconds=2))
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 1 and pod["status"]["phase"] == "Running"


def test_infinite_containers_are_left_running() -> None:
    pod = {"metadata": {"name": "p", "uid": "u"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]},
           "status": {}}
    assert step(pod, T0) is None and pod["status"]["phase"] == "Running"


def test_a_deleted_pod_ends_failed_or_succeeded() -> None:
    pod = make_pod("Never", code="0")
    step(pod, T0)
    status = killed(pod, T0 + timedelta(seconds=1))
    assert status["phase"] == "Failed"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    step(pod, T0 + timedelta(seconds=3))  # exited 0 by itself
    assert killed(pod, T0 + timedelta(seconds=4))["phase"] == "Succeeded"
