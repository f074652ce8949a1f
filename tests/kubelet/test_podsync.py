"""kubelet.podsync: the plan and the status of a pod from its containers, as tables (no I/O)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubelet import podsync
from kubelet.podsync import CreateSandbox, PodMemory, RemoveContainer, StartContainer, StopContainer, SyncSettings
from kubelet.cri import (
    LABEL_CONTAINER_NAME, LABEL_POD_UID, LABEL_RESTART_COUNT, LABEL_ROLE, ROLE_CONTAINER, ROLE_SANDBOX, ContainerInfo,
)

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
S = SyncSettings(backoff_base_s=10, backoff_max_s=40, backoff_reset_s=600, pull_backoff_base_s=5)


def pod(*, policy: str = "Always", containers: tuple[str, ...] = ("app",), inits: tuple[str, ...] = (),
        phase: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
                         "spec": {"restartPolicy": policy, "nodeName": "n",
                                  "containers": [{"name": c, "image": "img:1"} for c in containers]}}
    if inits:
        p["spec"]["initContainers"] = [{"name": c, "image": "img:1"} for c in inits]
    if phase:
        p["status"] = {"phase": phase}
    return p


def sandbox(running: bool = True, id: str = "sb") -> ContainerInfo:
    return ContainerInfo(id=id, name=id, labels={LABEL_ROLE: ROLE_SANDBOX, LABEL_POD_UID: "u1"},
                         state="running" if running else "exited", exit_code=None if running else 0,
                         created_at=T0, started_at=T0, finished_at=None, image="", image_id="", ip="172.28.0.5")


def ctr(name: str, *, n: int = 0, state: str = "running", code: int | None = None, init: bool = False,
        ran: float = 1.0, finished: datetime | None = None) -> ContainerInfo:
    labels = {LABEL_ROLE: ROLE_CONTAINER, LABEL_POD_UID: "u1", LABEL_CONTAINER_NAME: name,
              LABEL_RESTART_COUNT: str(n)}
    if init:
        labels[podsync.LABEL_INIT] = "true"
    started = T0 + timedelta(seconds=n)
    fin = None if state == "running" else (finished or started + timedelta(seconds=ran))
    return ContainerInfo(id=f"{name}-{n}", name=f"{name}-{n}", labels=labels, state=state, exit_code=code,
                         created_at=started, started_at=started, finished_at=fin, image="img:1", image_id="sha256:x")


def plan(p: dict[str, Any], cs: list[ContainerInfo], now: datetime = T0 + timedelta(seconds=100),
         memory: PodMemory | None = None) -> podsync.Plan:
    return podsync.plan(p, cs, now=now, memory=memory or PodMemory(), settings=S)


def test_new_pod_gets_a_sandbox_first() -> None:
    assert plan(pod(), []).actions == [CreateSandbox(attempt=0)]


def test_init_containers_run_one_at_a_time_in_order() -> None:
    p = pod(inits=("i1", "i2"))
    assert plan(p, [sandbox()]).actions == [StartContainer(name="i1", init=True, restart_count=0)]
    assert plan(p, [sandbox(), ctr("i1", init=True)]).actions == []
    done = ctr("i1", init=True, state="exited", code=0)
    assert plan(p, [sandbox(), done]).actions == [StartContainer(name="i2", init=True, restart_count=0)]
    both = [sandbox(), done, ctr("i2", init=True, state="exited", code=0)]
    assert plan(p, both).actions == [StartContainer(name="app", init=False, restart_count=0)]


@pytest.mark.parametrize("policy,code,restarts", [
    ("Always", 0, True), ("Always", 1, True), ("OnFailure", 0, False), ("OnFailure", 2, True),
    ("Never", 0, False), ("Never", 1, False),
])
def test_restart_policy(policy: str, code: int, restarts: bool) -> None:
    actions = plan(pod(policy=policy), [sandbox(), ctr("app", state="exited", code=code)]).actions
    assert actions == ([StartContainer(name="app", init=False, restart_count=1, next_delay=10)] if restarts else [])


def test_crash_loop_backoff_doubles_and_caps() -> None:
    p = pod()
    exited = ctr("app", n=3, state="exited", code=1)  # finished at T0+4
    mem = PodMemory(crash_delay={"app": 20.0})
    early = plan(p, [sandbox(), exited], now=T0 + timedelta(seconds=10), memory=mem)
    assert early.actions == []
    assert early.waiting["app"][0] == "CrashLoopBackOff"
    assert early.requeue_after == pytest.approx(14.0)
    late = plan(p, [sandbox(), exited], now=T0 + timedelta(seconds=25), memory=mem)
    assert late.actions == [StartContainer(name="app", init=False, restart_count=4, next_delay=40)]
    mem2 = PodMemory(crash_delay={"app": 40.0})
    assert plan(p, [sandbox(), exited], now=T0 + timedelta(seconds=100), memory=mem2).actions[0] == \
        StartContainer(name="app", init=False, restart_count=4, next_delay=40)


def test_backoff_resets_after_a_long_run() -> None:
    long_run = ctr("app", n=5, state="exited", code=1, ran=700)
    out = plan(pod(), [sandbox(), long_run], now=T0 + timedelta(seconds=706), memory=PodMemory(crash_delay={"app": 40}))
    assert out.actions == [StartContainer(name="app", init=False, restart_count=6, next_delay=10)]


def test_image_pull_backoff() -> None:
    mem = PodMemory()
    mem.record_pull_failure("app", "no such image", now=T0, settings=S)
    out = plan(pod(), [sandbox()], now=T0 + timedelta(seconds=2), memory=mem)
    assert out.actions == [] and out.waiting["app"][0] == "ImagePullBackOff"
    assert plan(pod(), [sandbox()], now=T0 + timedelta(seconds=6), memory=mem).actions == \
        [StartContainer(name="app", init=False, restart_count=0)]
    assert mem.record_pull_failure("app", "x", now=T0, settings=S).delay == 10


def test_old_instances_and_stale_sandboxes_are_removed() -> None:
    cs = [sandbox(), sandbox(running=False, id="old"), ctr("app", n=0, state="exited", code=1),
          ctr("app", n=1, state="exited", code=1), ctr("app", n=2)]
    assert sorted(plan(pod(), cs).actions, key=str) == [RemoveContainer(id="app-0"), RemoveContainer(id="old")]


def test_lost_sandbox_is_recreated_and_containers_stopped() -> None:
    out = plan(pod(), [sandbox(running=False), ctr("app")]).actions
    assert out[0] == CreateSandbox(attempt=1)
    assert StopContainer(id="app-0", name="app", grace_s=0) in out


def test_terminal_pods_are_left_alone() -> None:
    assert plan(pod(phase="Failed"), [sandbox()]).actions == []


def test_liveness_failure_stops_the_container() -> None:
    out = podsync.plan(pod(), [sandbox(), ctr("app")], now=T0, memory=PodMemory(), settings=S,
                       liveness_failed=frozenset({"app"}))
    assert out.actions == [StopContainer(id="app-0", name="app", grace_s=30.0, reason="Unhealthy")]


def test_deletion_stops_with_grace_then_removes_sandbox_last() -> None:
    p = pod()
    p["metadata"]["deletionGracePeriodSeconds"] = 5
    actions = podsync.plan_deletion(p, [sandbox(), ctr("app"), ctr("app", n=1, state="exited", code=0)])
    assert actions == [StopContainer(id="app-0", name="app", grace_s=5.0), RemoveContainer(id="app-0"),
                       RemoveContainer(id="app-1"), RemoveContainer(id="sb")]


def status(p: dict[str, Any], cs: list[ContainerInfo], **kw: Any) -> dict[str, Any]:
    return podsync.pod_status(p, cs, now=T0 + timedelta(seconds=50), host_ip="172.28.0.1", **kw)


def conds(st: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in st["conditions"]}


@pytest.mark.parametrize("policy,cs,phase", [
    ("Always", [], "Pending"),
    ("Always", ["run"], "Running"),
    ("Always", ["exit0"], "Running"),
    ("OnFailure", ["exit0"], "Succeeded"),
    ("Never", ["exit0"], "Succeeded"),
    ("Never", ["exit1"], "Failed"),
    ("OnFailure", ["exit1"], "Running"),
    ("Never", ["run", "exit1"], "Running"),
])
def test_phase(policy: str, cs: list[str], phase: str) -> None:
    names = ("a", "b")[:max(1, len(cs))]
    made = {"run": lambda n: ctr(n), "exit0": lambda n: ctr(n, state="exited", code=0),
            "exit1": lambda n: ctr(n, state="exited", code=1)}
    containers = [sandbox()] + [made[k](n) for k, n in zip(cs, names)]
    assert status(pod(policy=policy, containers=names), containers)["phase"] == phase


def test_running_status_shape_and_idempotence() -> None:
    p = pod()
    st = status(p, [sandbox(), ctr("app", n=2), ctr("app", n=1, state="exited", code=137)])
    assert st["podIP"] == "172.28.0.5" and st["hostIP"] == "172.28.0.1"
    cs = st["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "2024-01-01T00:00:02Z"}}
    assert cs["restartCount"] == 2 and cs["ready"] is True and cs["containerID"] == "docker://app-2"
    assert cs["lastState"]["terminated"]["exitCode"] == 137
    assert conds(st) == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                         "ContainersReady": "True", "PodScheduled": "True"}
    again = podsync.pod_status({**p, "status": st}, [sandbox(), ctr("app", n=2), ctr("app", n=1, state="exited", code=137)],
                               now=T0 + timedelta(seconds=99), host_ip="172.28.0.1")
    assert again == st


def test_waiting_reasons_and_readiness_hook() -> None:
    st = status(pod(), [sandbox(), ctr("app", state="exited", code=1)],
                waiting={"app": ("CrashLoopBackOff", "back-off 10s")})
    cs = st["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert st["phase"] == "Running" and conds(st)["Ready"] == "False"
    unready = status(pod(), [sandbox(), ctr("app")], ready_of={"app": False})
    assert conds(unready)["Ready"] == "False" and unready["containerStatuses"][0]["ready"] is False
    pulling = status(pod(), [sandbox()], waiting={"app": ("ErrImagePull", "nope")})
    assert pulling["phase"] == "Pending"
    assert pulling["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"


def test_init_statuses() -> None:
    p = pod(inits=("i1",))
    st = status(p, [sandbox(), ctr("i1", init=True)])
    assert st["phase"] == "Pending" and conds(st)["Initialized"] == "False"
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    failed = status(pod(policy="Never", inits=("i1",)), [sandbox(), ctr("i1", init=True, state="exited", code=3)])
    assert failed["phase"] == "Failed"
    done = status(p, [sandbox(), ctr("i1", init=True, state="exited", code=0), ctr("app")])
    assert conds(done)["Initialized"] == "True" and done["initContainerStatuses"][0]["state"]["terminated"][
        "reason"] == "Completed"


def test_orphans() -> None:
    other = ctr("x")
    assert podsync.orphans([sandbox(), other], {"u1"}) == []
    assert len(podsync.orphans([sandbox(), other], {"u2"})) == 2
