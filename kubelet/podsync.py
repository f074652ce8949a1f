"""What the Docker kubelet decides per pod, with no I/O: the plan (and, from kubelet.containerstate, the status).

Role: DESIGN pattern 6 for the kubelet. The pod worker lists a pod's containers from the runtime
(``kubelet.cri.ContainerInfo``, sandbox included), remembers a little more than Docker knows
(``PodMemory``: crash back-off delays, image pull failures), and asks:

    plan(pod, containers, now=, memory=, settings=)          -> Plan(actions, waiting, requeue_after)
    plan_deletion(pod, containers, now=)                      -> [StopContainer..., RemoveContainer...]
    pod_status(pod, containers, now=, host_ip=, waiting=, ...) -> the status dict to write

The executor runs the actions (creating the sandbox, pulling images, starting containers),
records failures in ``PodMemory`` (``record_pull_failure`` / ``StartContainer.next_delay``) and
writes the status only when it differs from the pod's. Reading the containers (instances, exit
codes) and the status live in ``kubelet.containerstate``; this module re-exports them.

Restarts (Kubernetes' semantics): ``Always`` restarts any exit, ``OnFailure`` non-zero exits,
``Never`` none. The first restart is immediate, then the delay starts at ``backoff_base_s`` and
doubles up to ``backoff_max_s``; a container that ran ``backoff_reset_s`` or longer starts over.
While waiting the container shows ``waiting: CrashLoopBackOff``. Old instances beyond the current
and the previous one are removed.

Ephemeral containers (``kubectl debug``) start once each, even while init containers run, and are
never restarted; one with a ``targetContainerName`` waits until the target runs and shares its
PID namespace (``StartContainer.pid_target``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Sequence, Union

from kubelet.containerstate import (LABEL_INIT, NODE_SHUTDOWN_MESSAGE, NODE_SHUTDOWN_REASON, POD_CONDITIONS, TERMINAL,
                                    exit_code, exited, instances, pod_status, running_sandbox, sandboxes,
                                    shutdown_status)
from kubelet.cri import ROLE_CONTAINER, ContainerInfo

Obj = dict[str, Any]

TARGET_RETRY_S = 1.0  # an ephemeral container's target is not running yet: look again this soon


@dataclass(frozen=True)
class SyncSettings:
    backoff_base_s: float = 10.0
    backoff_max_s: float = 300.0
    backoff_reset_s: float = 600.0
    pull_backoff_base_s: float = 10.0
    pull_backoff_max_s: float = 300.0
    default_grace_s: float = 30.0


@dataclass(frozen=True)
class PullFailure:
    message: str
    at: datetime
    delay: float  # seconds before the next pull attempt


@dataclass
class PodMemory:
    """What the kubelet knows about one pod beyond Docker's state (lost on a kubelet restart,
    as Kubernetes' back-off is)."""

    crash_delay: dict[str, float] = field(default_factory=dict)  # container -> next back-off delay
    pull_failures: dict[str, PullFailure] = field(default_factory=dict)
    start_errors: dict[str, str] = field(default_factory=dict)

    def record_pull_failure(self, name: str, message: str, *, now: datetime, settings: SyncSettings) -> PullFailure:
        old = self.pull_failures.get(name)
        delay = settings.pull_backoff_base_s if old is None else min(old.delay * 2, settings.pull_backoff_max_s)
        self.pull_failures[name] = f = PullFailure(message=message, at=now, delay=delay)
        return f


# ------------------------------------------------------------------------------------ actions
@dataclass(frozen=True)
class CreateSandbox:
    attempt: int  # how many sandboxes this pod had before


@dataclass(frozen=True)
class StartContainer:
    name: str
    init: bool
    restart_count: int
    next_delay: float | None = None  # the crash back-off delay to remember after this restart
    ephemeral: bool = False  # a spec.ephemeralContainers entry
    pid_target: str | None = None  # the engine id whose PID namespace an ephemeral container joins


@dataclass(frozen=True)
class StopContainer:
    id: str
    name: str
    grace_s: float
    reason: str = "Killing"


@dataclass(frozen=True)
class RemoveContainer:
    id: str


Action = Union[CreateSandbox, StartContainer, StopContainer, RemoveContainer]


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    waiting: dict[str, tuple[str, str]] = field(default_factory=dict)  # container -> (reason, message)
    requeue_after: float | None = None

    def requeue(self, seconds: float) -> None:
        seconds = max(0.05, seconds)
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


# ------------------------------------------------------------------------------------ helpers
def should_restart(policy: str, code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and code != 0)


def grace_seconds(pod: Obj, settings: SyncSettings) -> float:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for v in (meta.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if v is not None:
            return max(0.0, float(v))
    return settings.default_grace_s


def _ran_for(c: ContainerInfo) -> float:
    if c.started_at is None or c.finished_at is None:
        return 0.0
    return (c.finished_at - c.started_at).total_seconds()


def _pod_ref(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


# ------------------------------------------------------------------------------------ plan
def _start_or_wait(pod: Obj, spec_c: Obj, *, init: bool, latest: ContainerInfo | None, now: datetime,
                   memory: PodMemory, settings: SyncSettings, plan: Plan,
                   liveness_failed: frozenset[str]) -> bool:
    """Adds what one container needs; True when it is running or done (exited without restart)."""
    name = str(spec_c.get("name"))
    policy = str((pod.get("spec") or {}).get("restartPolicy") or "Always")
    if init and policy == "Always":
        policy = "OnFailure"  # init containers run to completion: only failures are retried
    if latest is not None and latest.running:
        if name in liveness_failed and not init:
            plan.actions.append(StopContainer(id=latest.id, name=name, grace_s=grace_seconds(pod, settings),
                                              reason="Unhealthy"))
        return True
    if latest is None:
        if not _pull_backoff(spec_c, now=now, memory=memory, plan=plan):
            plan.actions.append(StartContainer(name=name, init=init, restart_count=0))
        return False
    code = exit_code(latest)
    if not should_restart(policy, code):
        return True
    delay = memory.crash_delay.get(name)
    if _ran_for(latest) >= settings.backoff_reset_s:
        delay = None
    next_delay = settings.backoff_base_s if delay is None else min(delay * 2, settings.backoff_max_s)
    finished = latest.finished_at or latest.created_at or now
    left = 0.0 if delay is None else (finished + timedelta(seconds=delay) - now).total_seconds()
    if left > 0:
        plan.waiting[name] = ("CrashLoopBackOff",
                              f"back-off {delay:g}s restarting failed container={name} pod={_pod_ref(pod)}")
        plan.requeue(left)
        return False
    plan.actions.append(StartContainer(name=name, init=init, restart_count=latest.restart_count + 1,
                                       next_delay=next_delay))
    return False


def _pull_backoff(spec_c: Obj, *, now: datetime, memory: PodMemory, plan: Plan) -> bool:
    """True while the image of a container whose pull failed waits for its next try (ImagePullBackOff)."""
    name = str(spec_c.get("name"))
    failure = memory.pull_failures.get(name)
    left = 0.0 if failure is None else (failure.at + timedelta(seconds=failure.delay) - now).total_seconds()
    if left <= 0:
        return False
    plan.waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{spec_c.get("image")}"')
    plan.requeue(left)
    return True


def _plan_ephemeral(pod: Obj, containers: Sequence[ContainerInfo], *, now: datetime, memory: PodMemory,
                    plan: Plan) -> None:
    """Each ephemeral container that never ran starts now (once: Kubernetes never restarts one)."""
    for c_spec in (pod.get("spec") or {}).get("ephemeralContainers") or []:
        name = str(c_spec.get("name"))
        if instances(containers, name, init=False) or _pull_backoff(c_spec, now=now, memory=memory, plan=plan):
            continue
        target = str(c_spec.get("targetContainerName") or "")
        running = [c for init in (False, True) for c in instances(containers, target, init=init) if c.running]
        if target and not running:
            plan.waiting[name] = ("CreateContainerConfigError", f"unable to find target container {target}")
            plan.requeue(TARGET_RETRY_S)
            continue
        plan.actions.append(StartContainer(name=name, init=False, restart_count=0, ephemeral=True,
                                           pid_target=running[-1].id if target else None))


def plan(pod: Obj, containers: Sequence[ContainerInfo], *, now: datetime, memory: PodMemory,
         settings: SyncSettings = SyncSettings(), liveness_failed: frozenset[str] = frozenset()) -> Plan:
    """The next steps for a pod that is not being deleted (see the module docstring)."""
    out = Plan()
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if status.get("phase") in TERMINAL:
        return out
    sandbox = running_sandbox(containers)
    # Stale sandboxes (exited, or extra running ones) go.
    for s in sandboxes(containers):
        if sandbox is None or s.id != sandbox.id:
            out.actions.append(RemoveContainer(id=s.id))
    app = list(spec.get("containers") or [])
    inits = list(spec.get("initContainers") or [])
    # Old instances: keep the current and the previous one of each container.
    for c_spec, init in [(c, False) for c in app] + [(c, True) for c in inits]:
        for old in instances(containers, str(c_spec.get("name")), init=init)[:-2]:
            out.actions.append(RemoveContainer(id=old.id))
    if sandbox is None:
        # The pod's network is gone (first start, or the engine restarted): a new sandbox;
        # running containers of the old one can no longer be reached, so they are restarted.
        for c in containers:
            if c.role == ROLE_CONTAINER and c.running:
                out.actions.append(StopContainer(id=c.id, name=c.container_name or "", grace_s=0, reason="Killing"))
        out.actions.insert(0, CreateSandbox(attempt=len(sandboxes(containers))))
        return out
    _plan_ephemeral(pod, containers, now=now, memory=memory, plan=out)
    started_app = any(instances(containers, str(c.get("name")), init=False) for c in app)
    if not started_app:
        for c_spec in inits:
            ins = instances(containers, str(c_spec.get("name")), init=True)
            latest = ins[-1] if ins else None
            if latest is not None and exited(latest) and exit_code(latest) == 0:
                continue
            _start_or_wait(pod, c_spec, init=True, latest=latest, now=now, memory=memory, settings=settings,
                           plan=out, liveness_failed=liveness_failed)
            return out  # one init container at a time, in order
    for c_spec in app:
        ins = instances(containers, str(c_spec.get("name")), init=False)
        _start_or_wait(pod, c_spec, init=False, latest=ins[-1] if ins else None, now=now, memory=memory,
                       settings=settings, plan=out, liveness_failed=liveness_failed)
    return out


def plan_deletion(pod: Obj, containers: Sequence[ContainerInfo], *,
                  settings: SyncSettings = SyncSettings()) -> list[Action]:
    """Stop every running container with the pod's grace period, then remove all (sandbox last)."""
    grace = grace_seconds(pod, settings)
    actions: list[Action] = [StopContainer(id=c.id, name=c.container_name or "", grace_s=grace)
                             for c in containers if c.role == ROLE_CONTAINER and c.running]
    actions += [RemoveContainer(id=c.id) for c in containers if c.role == ROLE_CONTAINER]
    actions += [RemoveContainer(id=c.id) for c in sandboxes(containers)]
    return actions


def orphans(containers: Sequence[ContainerInfo], live_uids: set[str]) -> list[ContainerInfo]:
    """Containers whose pod no longer exists."""
    return [c for c in containers if c.pod_uid and c.pod_uid not in live_uids]


__all__ = ["Action", "CreateSandbox", "LABEL_INIT", "NODE_SHUTDOWN_MESSAGE", "NODE_SHUTDOWN_REASON", "POD_CONDITIONS",
           "Plan", "PodMemory", "PullFailure", "RemoveContainer", "StartContainer", "StopContainer", "SyncSettings",
           "TARGET_RETRY_S", "TERMINAL", "exit_code", "exited", "grace_seconds", "instances", "orphans", "plan",
           "plan_deletion", "pod_status", "running_sandbox", "sandboxes", "should_restart", "shutdown_status"]
