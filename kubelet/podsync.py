"""What the Docker kubelet decides per pod, with no I/O: the plan and the status.

Role: DESIGN pattern 6 for the kubelet. ``kubelet.agent`` lists a pod's containers from the
runtime (``kubelet.cri.ContainerInfo``, sandbox included), remembers a little more than Docker knows
(``PodMemory``: crash back-off delays, image pull failures), and asks:

    plan(pod, containers, now=, memory=, settings=)          -> Plan(actions, waiting, requeue_after)
    plan_deletion(pod, containers, now=)                      -> [StopContainer..., RemoveContainer...]
    pod_status(pod, containers, now=, host_ip=, waiting=, ...) -> the status dict to write

The executor runs the actions (creating the sandbox, pulling images, starting containers),
records failures in ``PodMemory`` (``record_pull_failure`` / ``StartContainer.next_delay``) and
writes the status only when it differs from the pod's.

Container instances: each start of a container is a new Docker container whose
``restart-count`` label says which attempt it is; the instance with the highest count is the
current one, the one before it gives ``lastState``. Older ones are removed.

Restarts (Kubernetes' semantics): ``Always`` restarts any exit, ``OnFailure`` non-zero exits,
``Never`` none. Ephemeral containers (``kubectl debug``) start once each, even while init
containers run, and are never restarted; one with a ``targetContainerName`` waits until the
target runs and shares its PID namespace (``StartContainer.pid_target``). They show in
``ephemeralContainerStatuses`` and count neither for the phase nor for Ready. The first restart is immediate, then the delay starts at ``backoff_base_s`` and
doubles up to ``backoff_max_s``; a container that ran ``backoff_reset_s`` or longer starts over.
While waiting the container shows ``waiting: CrashLoopBackOff``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence, Union

from kubelet.nodestatus import rfc3339
from kubelet.cri import ROLE_CONTAINER, ROLE_SANDBOX, ContainerInfo

Obj = dict[str, Any]

LABEL_INIT = "io.minik8s.container.init"
POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
TERMINAL = ("Succeeded", "Failed")
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
def sandboxes(containers: Sequence[ContainerInfo]) -> list[ContainerInfo]:
    return [c for c in containers if c.role == ROLE_SANDBOX]


def running_sandbox(containers: Sequence[ContainerInfo]) -> ContainerInfo | None:
    running = [c for c in sandboxes(containers) if c.running]
    running.sort(key=lambda c: (c.created_at or datetime.min.replace(tzinfo=None)).isoformat())
    return running[-1] if running else None


def instances(containers: Sequence[ContainerInfo], name: str, *, init: bool) -> list[ContainerInfo]:
    """The instances of one container, oldest first."""
    out = [c for c in containers if c.role == ROLE_CONTAINER and c.container_name == name
           and (c.labels.get(LABEL_INIT) == "true") == init]
    out.sort(key=lambda c: (c.restart_count, (c.created_at.isoformat() if c.created_at else "")))
    return out


def exited(c: ContainerInfo) -> bool:
    return not c.running and c.state not in ("restarting", "paused")


def exit_code(c: ContainerInfo) -> int:
    """A container that never started (bad command, missing binary) counts as exit code 128."""
    if c.exit_code is not None and c.started_at is not None:
        return c.exit_code
    return c.exit_code or 128  # None (never ran) and 0 (no code recorded) alike


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


# ------------------------------------------------------------------------------------ status
def _terminated(c: ContainerInfo) -> Obj:
    code = exit_code(c)
    if c.started_at is None:
        reason = "StartError"
    elif c.oom_killed:
        reason = "OOMKilled"
    else:
        reason = "Completed" if code == 0 else "Error"
    finished = c.finished_at or c.created_at
    out: Obj = {"exitCode": code, "reason": reason,
                "startedAt": rfc3339(c.started_at) if c.started_at else None,
                "finishedAt": rfc3339(finished) if finished else None,
                "containerID": f"docker://{c.id}"}
    if c.error:
        out["message"] = c.error
    return out


def _image_id(c: ContainerInfo) -> str:
    return f"docker://{c.image_id}" if c.image_id else ""


def _container_status(c_spec: Obj, ins: list[ContainerInfo], *, waiting: tuple[str, str] | None,
                      ready_of: Mapping[str, bool], init: bool) -> Obj:
    name = str(c_spec.get("name"))
    image = str(c_spec.get("image") or "")
    latest = ins[-1] if ins else None
    prev = ins[-2] if len(ins) >= 2 else None
    st: Obj = {"name": name, "image": image, "imageID": "", "ready": False, "restartCount": 0,
               "started": False, "state": {}, "lastState": {}}
    if latest is not None:
        st["restartCount"] = latest.restart_count
        st["imageID"] = _image_id(latest)
        st["containerID"] = f"docker://{latest.id}"
    if waiting is not None:
        reason, message = waiting
        st["state"] = {"waiting": {"reason": reason, "message": message}}
        if latest is not None and exited(latest):
            st["lastState"] = {"terminated": _terminated(latest)}
        elif prev is not None:
            st["lastState"] = {"terminated": _terminated(prev)}
        return st
    if latest is None:
        st["state"] = {"waiting": {"reason": "PodInitializing" if not init else "PodInitializing"}}
        if not init:
            st["state"] = {"waiting": {"reason": "ContainerCreating"}}
        return st
    if latest.running:
        st["state"] = {"running": {"startedAt": rfc3339(latest.started_at) if latest.started_at else None}}
        st["started"] = True
        st["ready"] = bool(ready_of.get(name, True)) and not init
    else:
        st["state"] = {"terminated": _terminated(latest)}
    if prev is not None:
        st["lastState"] = {"terminated": _terminated(prev)}
    return st


def _ephemeral_status(c_spec: Obj, ins: list[ContainerInfo], *, waiting: tuple[str, str] | None) -> Obj:
    """Like an app container's, but never ready and without ``started`` (no probes run for it)."""
    st = _container_status(c_spec, ins, waiting=waiting, ready_of={}, init=False)
    st["ready"] = False
    st.pop("started", None)
    return st


def _phase(pod: Obj, app_statuses: list[Obj], init_failed: bool, initialized: bool) -> str:
    """Kubernetes' getPhase over the container statuses."""
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if init_failed:
        return "Failed"
    if not initialized:
        return "Pending"
    waiting = running = stopped = succeeded = 0
    for s in app_statuses:
        state, last = s.get("state") or {}, s.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if "terminated" in last:
                stopped += 1
            else:
                waiting += 1
    if waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Running" if policy == "OnFailure" else "Failed"
    return "Pending"


def _cond(current: Mapping[str, Obj], ctype: str, ok: bool, stamp: str, *, reason: str | None = None,
          message: str | None = None) -> Obj:
    want = "True" if ok else "False"
    old = current.get(ctype) or {}
    since = old.get("lastTransitionTime") if old.get("status") == want else None
    out: Obj = {"type": ctype, "status": want, "lastProbeTime": None, "lastTransitionTime": since or stamp}
    if reason:
        out["reason"] = reason
    if message:
        out["message"] = message
    return out


def pod_status(pod: Obj, containers: Sequence[ContainerInfo], *, now: datetime, host_ip: str,
               waiting: Mapping[str, tuple[str, str]] | None = None,
               ready_of: Mapping[str, bool] | None = None) -> Obj:
    """The status of ``pod`` from its containers (a copy; ``pod`` is untouched). Timestamps
    already present are kept, so an unchanged pod gives an equal status (no write)."""
    spec = pod.get("spec") or {}
    status = copy.deepcopy(pod.get("status") or {})
    waiting = waiting or {}
    ready_of = ready_of or {}
    stamp = rfc3339(now)
    policy = spec.get("restartPolicy") or "Always"
    sandbox = running_sandbox(containers)
    app = list(spec.get("containers") or [])
    inits = list(spec.get("initContainers") or [])

    init_statuses = [_container_status(c, instances(containers, str(c.get("name")), init=True),
                                       waiting=waiting.get(str(c.get("name"))), ready_of=ready_of, init=True)
                     for c in inits]
    app_started = any(instances(containers, str(c.get("name")), init=False) for c in app)
    init_done = app_started or all(
        "terminated" in (s.get("state") or {}) and s["state"]["terminated"].get("exitCode") == 0
        for s in init_statuses)
    init_failed = policy == "Never" and any(
        "terminated" in (s.get("state") or {}) and s["state"]["terminated"].get("exitCode") != 0
        for s in init_statuses)
    if not init_done:
        # App containers wait for the init containers.
        app_statuses = [_container_status(c, [], waiting=("PodInitializing", ""), ready_of=ready_of, init=False)
                        for c in app]
        for s in app_statuses:
            s["state"] = {"waiting": {"reason": "PodInitializing"}}
    else:
        app_statuses = [_container_status(c, instances(containers, str(c.get("name")), init=False),
                                          waiting=waiting.get(str(c.get("name"))), ready_of=ready_of, init=False)
                        for c in app]
    for s in init_statuses:
        if "terminated" in (s.get("state") or {}):
            s["ready"] = s["state"]["terminated"].get("exitCode") == 0

    phase = _phase(pod, app_statuses, init_failed, init_done)
    current = {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    others = [c for t, c in current.items() if t not in POD_CONDITIONS]
    unready = [str(s["name"]) for s in app_statuses if not s.get("ready")]
    incomplete = [str(s["name"]) for s in init_statuses if not s.get("ready")] if not init_done else []
    all_ready = not unready and phase == "Running"
    ready_reason = None if all_ready else ("PodCompleted" if phase in TERMINAL else "ContainersNotReady")
    ready_msg = None if all_ready or phase in TERMINAL else f"containers with unready status: [{' '.join(unready)}]"
    conditions = [
        _cond(current, "PodReadyToStartContainers", sandbox is not None, stamp),
        _cond(current, "Initialized", init_done, stamp,
              reason=None if init_done else "ContainersNotInitialized",
              message=None if init_done else f"containers with incomplete status: [{' '.join(incomplete)}]"),
        _cond(current, "Ready", all_ready, stamp, reason=ready_reason, message=ready_msg),
        _cond(current, "ContainersReady", all_ready, stamp, reason=ready_reason, message=ready_msg),
        _cond(current, "PodScheduled", True, stamp),
    ]
    status["phase"] = phase
    status["conditions"] = conditions + others
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    if sandbox is not None and sandbox.ip:
        status["podIP"] = sandbox.ip
        status["podIPs"] = [{"ip": sandbox.ip}]
    status["startTime"] = status.get("startTime") or stamp
    status["containerStatuses"] = app_statuses
    if inits:
        status["initContainerStatuses"] = init_statuses
    ephemeral = list(spec.get("ephemeralContainers") or [])
    if ephemeral:
        status["ephemeralContainerStatuses"] = [
            _ephemeral_status(c, instances(containers, str(c.get("name")), init=False),
                              waiting=waiting.get(str(c.get("name")))) for c in ephemeral]
    status.pop("reason", None)
    status.pop("message", None)
    return status


NODE_SHUTDOWN_REASON = "Terminated"
NODE_SHUTDOWN_MESSAGE = "Pod was terminated in response to imminent node shutdown."


def shutdown_status(pod: Obj, containers: Sequence[ContainerInfo], *, now: datetime, host_ip: str) -> Obj:
    """The status of a pod whose containers a node shutdown stopped: Failed, reason ``Terminated``,
    a ``DisruptionTarget`` condition, the containers' real exit states (Kubernetes' graceful node
    shutdown). Its controller replaces it; the kubelet never starts it again (a terminal phase)."""
    status = pod_status(pod, containers, now=now, host_ip=host_ip)
    stamp = rfc3339(now)
    status["phase"] = "Failed"
    status["reason"] = NODE_SHUTDOWN_REASON
    status["message"] = NODE_SHUTDOWN_MESSAGE
    for c in status["conditions"]:
        if c.get("type") in ("Ready", "ContainersReady") and c.get("status") == "True":
            c.update(status="False", reason="PodFailed", lastTransitionTime=stamp)
            c.pop("message", None)
    status["conditions"] = [c for c in status["conditions"] if c.get("type") != "DisruptionTarget"] + [{
        "type": "DisruptionTarget", "status": "True", "reason": "TerminationByKubelet",
        "message": NODE_SHUTDOWN_MESSAGE, "lastProbeTime": None, "lastTransitionTime": stamp}]
    return status


__all__ = ["Action", "CreateSandbox", "NODE_SHUTDOWN_MESSAGE", "NODE_SHUTDOWN_REASON", "shutdown_status", "LABEL_INIT", "Plan", "PodMemory", "PullFailure", "RemoveContainer",
           "StartContainer", "StopContainer", "SyncSettings", "exit_code", "grace_seconds", "instances",
           "orphans", "plan", "plan_deletion", "pod_status", "running_sandbox", "sandboxes", "should_restart"]
