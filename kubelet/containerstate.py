"""What a pod's containers say, with no I/O: each container's instances, exit codes, and the status.

Role: the reading half of ``kubelet.podsync`` (which plans; it re-exports everything here). The
Docker kubelet lists a pod's containers from the runtime (``kubelet.cri.ContainerInfo``, sandbox
included) and asks:

    running_sandbox(containers) / sandboxes(containers)      -> the pod's sandbox(es)
    instances(containers, name, init=)                        -> one container's starts, oldest first
    pod_status(pod, containers, now=, host_ip=, waiting=, ...) -> the status dict to write
    shutdown_status(pod, containers, now=, host_ip=)           -> Failed by a node shutdown

Container instances: each start of a container is a new Docker container whose
``restart-count`` label says which attempt it is; the instance with the highest count is the
current one, the one before it gives ``lastState``. Ephemeral containers show in
``ephemeralContainerStatuses`` (never ready) and count neither for the phase nor for Ready.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any, Mapping, Sequence

from kubelet.cri import ROLE_CONTAINER, ROLE_SANDBOX, ContainerInfo
from kubelet.nodestatus import rfc3339

Obj = dict[str, Any]

LABEL_INIT = "io.minik8s.container.init"
POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
TERMINAL = ("Succeeded", "Failed")


# ------------------------------------------------------------------------------------ instances
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


__all__ = ["LABEL_INIT", "NODE_SHUTDOWN_MESSAGE", "NODE_SHUTDOWN_REASON", "POD_CONDITIONS", "TERMINAL", "exit_code",
           "exited", "instances", "pod_status", "running_sandbox", "sandboxes", "shutdown_status"]
