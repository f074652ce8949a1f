"""Ephemeral containers in the kubelet's pure plan and status (kubelet.podsync, kubelet.podstatus):
started once (even during init, never restarted), the target's PID namespace, waiting for the
target, image pull back-off, their statuses (never ready, no effect on phase or Ready)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubelet import podsync
from kubelet.cri import (LABEL_CONTAINER_NAME, LABEL_POD_UID, LABEL_RESTART_COUNT, LABEL_ROLE, ROLE_CONTAINER,
                         ROLE_SANDBOX, ContainerInfo)
from kubelet.podstatus import running_status
from kubelet.podsync import PodMemory, StartContainer

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
NOW = T0 + timedelta(seconds=100)


def debug_pod(*, policy: str = "Always", target: str = "app", inits: bool = False) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": policy, "nodeName": "n",
        "containers": [{"name": "app", "image": "img:1"}],
        "ephemeralContainers": [{"name": "debugger", "image": "dbg:1", "targetContainerName": target,
                                 "stdin": True, "tty": True}]}
    if inits:
        spec["initContainers"] = [{"name": "setup", "image": "img:1"}]
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}


def info(name: str, *, role: str = ROLE_CONTAINER, state: str = "running", code: int | None = None,
         init: bool = False) -> ContainerInfo:
    labels = {LABEL_ROLE: role, LABEL_POD_UID: "u1", LABEL_CONTAINER_NAME: name, LABEL_RESTART_COUNT: "0"}
    if init:
        labels[podsync.LABEL_INIT] = "true"
    done = state != "running"
    return ContainerInfo(id=f"id-{name}", name=name, labels=labels, state=state, exit_code=code, created_at=T0,
                         started_at=T0, finished_at=T0 + timedelta(seconds=5) if done else None, image="img:1",
                         image_id="sha256:x", ip="172.28.0.5" if role == ROLE_SANDBOX else None)


SANDBOX = info("", role=ROLE_SANDBOX)


def plan(pod: dict[str, Any], containers: list[ContainerInfo], memory: PodMemory | None = None) -> podsync.Plan:
    return podsync.plan(pod, containers, now=NOW, memory=memory or PodMemory())


def starts(p: podsync.Plan) -> list[StartContainer]:
    return [a for a in p.actions if isinstance(a, StartContainer)]


def test_it_starts_in_the_targets_pid_namespace() -> None:
    p = plan(debug_pod(), [SANDBOX, info("app")])
    assert starts(p) == [StartContainer(name="debugger", init=False, restart_count=0, ephemeral=True,
                                        pid_target="id-app")]


def test_without_a_target_it_has_its_own() -> None:
    p = plan(debug_pod(target=""), [SANDBOX, info("app")])
    assert starts(p)[0].pid_target is None


def test_it_waits_for_the_target_to_run() -> None:
    p = plan(debug_pod(), [SANDBOX, info("app", state="exited", code=1)], PodMemory(crash_delay={"app": 10.0}))
    assert "debugger" not in [a.name for a in starts(p)]  # the target restarts; the debugger waits
    assert p.waiting["debugger"] == ("CreateContainerConfigError", "unable to find target container app")
    assert p.requeue_after is not None and p.requeue_after <= podsync.TARGET_RETRY_S


def test_it_starts_while_init_containers_run_and_may_target_one() -> None:
    p = plan(debug_pod(target="setup", inits=True), [SANDBOX, info("setup", init=True)])
    assert [(a.name, a.pid_target) for a in starts(p)] == [("debugger", "id-setup")]


@pytest.mark.parametrize("state", ["running", "exited"])
def test_it_starts_once_and_is_never_restarted(state: str) -> None:
    p = plan(debug_pod(policy="Always"), [SANDBOX, info("app"), info("debugger", state=state, code=0)])
    assert p.actions == [] and p.waiting == {}


def test_no_sandbox_no_debugger_and_a_pull_failure_backs_off() -> None:
    assert starts(plan(debug_pod(), [])) == []
    memory = PodMemory()
    memory.record_pull_failure("debugger", "no such image", now=NOW - timedelta(seconds=1),
                               settings=podsync.SyncSettings(pull_backoff_base_s=10))
    p = plan(debug_pod(), [SANDBOX, info("app")], memory)
    assert starts(p) == [] and p.waiting["debugger"][0] == "ImagePullBackOff"


def test_deleting_the_pod_removes_it() -> None:
    actions = podsync.plan_deletion(debug_pod(), [SANDBOX, info("app"), info("debugger")])
    assert {a.id for a in actions if isinstance(a, podsync.RemoveContainer)} == {"id-app", "id-debugger", "id-"}


def status(containers: list[ContainerInfo], *, waiting: dict[str, tuple[str, str]] | None = None,
           pod: dict[str, Any] | None = None) -> dict[str, Any]:
    return podsync.pod_status(pod or debug_pod(), containers, now=NOW, host_ip="10.0.0.1", waiting=waiting)


def test_a_running_debugger_is_running_but_not_ready() -> None:
    st = status([SANDBOX, info("app"), info("debugger")])
    (eph,) = st["ephemeralContainerStatuses"]
    assert eph["name"] == "debugger" and eph["image"] == "dbg:1" and eph["containerID"] == "docker://id-debugger"
    assert "running" in eph["state"] and eph["ready"] is False and "started" not in eph
    assert [c["name"] for c in st["containerStatuses"]] == ["app"]
    assert st["phase"] == "Running"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"  # the debugger does not count


def test_a_finished_debugger_is_terminated_and_the_pod_stays() -> None:
    st = status([SANDBOX, info("app"), info("debugger", state="exited", code=0)],
                pod=debug_pod(policy="Never"))
    assert st["ephemeralContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert st["phase"] == "Running"


@pytest.mark.parametrize(("waiting", "reason"), [
    (None, "ContainerCreating"),
    ({"debugger": ("CreateContainerConfigError", "unable to find target container app")},
     "CreateContainerConfigError"),
])
def test_a_waiting_debugger(waiting: dict[str, tuple[str, str]] | None, reason: str) -> None:
    st = status([SANDBOX, info("app")], waiting=waiting)
    assert st["ephemeralContainerStatuses"][0]["state"]["waiting"]["reason"] == reason


def test_the_simulated_kubelet_shows_it_running() -> None:
    st = running_status(debug_pod(), pod_ip="10.1.0.2", host_ip="10.0.0.1", now=NOW)
    (eph,) = st["ephemeralContainerStatuses"]
    assert eph["name"] == "debugger" and "running" in eph["state"] and eph["ready"] is False and "started" not in eph
