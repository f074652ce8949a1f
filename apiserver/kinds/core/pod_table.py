"""The Pod's row in ``kubectl get pods``: Kubernetes' ``printPod`` arithmetic.

Data flow: ``PodStrategy.row`` -> ``pod_cells(pod, now)`` -> READY "1/2", STATUS (the reason
kubectl shows: Running, Init:0/1, CrashLoopBackOff, Completed, Terminating, ...), RESTARTS with
"(5m ago)", AGE, and the wide columns (IP, node, nominated node, readiness gates).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.timefmt import aware, human_duration, parse_time

from ..base import AGE, NAME, Column, age, meta, name_of, spec, status

COLUMNS = (
    NAME,
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description=(
        "The number of times the containers in this pod have been restarted and when the last "
        "container in this pod has restarted.")),
    AGE,
    Column("IP", priority=1, description="podIP address allocated to the pod."),
    Column("Node", priority=1, description="NodeName indicates in which node this pod is scheduled."),
    Column("Nominated Node", priority=1,
           description="nominatedNodeName is set only when this pod preempts other pods on the node."),
    Column("Readiness Gates", priority=1,
           description="If specified, all readiness gates will be evaluated for pod readiness."),
)
_POD_DONE = {"Succeeded": "The pod has completed successfully.", "Failed": "The pod failed."}


def row_conditions(pod: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Pods that finished carry a ``Completed`` row condition, as Kubernetes' printer adds."""
    phase = status(pod).get("phase")
    if phase not in _POD_DONE:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": _POD_DONE[phase]}]


def _is_restartable_init(container: Mapping[str, Any] | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: list[Mapping[str, Any]], condition_type: str) -> bool:
    """The first condition of ``condition_type`` is True (False when absent)."""
    for condition in conditions:
        if condition.get("type") == condition_type:
            return condition.get("status") == "True"
    return False


def _has_condition_true(conditions: list[Mapping[str, Any]], condition_type: str) -> bool:
    return any(c.get("type") == condition_type and c.get("status") == "True" for c in conditions)


def _finished_at(container_status: Mapping[str, Any]) -> datetime | None:
    terminated = (container_status.get("lastState") or {}).get("terminated")
    return parse_time(terminated.get("finishedAt")) if terminated else None


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or current < candidate else current


def _terminated_reason(terminated: Mapping[str, Any], *, prefix: str) -> str:
    if terminated.get("reason"):
        return prefix + terminated["reason"]
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _init_reason(
    status: Mapping[str, Any], *, index: int, total: int
) -> str | None:
    """The STATUS an init container status imposes, or None when it lets initialization go on."""
    state = status.get("state") or {}
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if terminated is not None:
        return _terminated_reason(terminated, prefix="Init:")
    if waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return "Init:" + waiting["reason"]
    return f"Init:{index}/{total}"


def _pod_summary(pod: Mapping[str, Any]) -> tuple[int, int, str, int, datetime | None]:
    """``printPod``'s arithmetic: (ready, total, status reason, restarts, last restart time)."""
    pod_spec, pod_status = spec(pod), status(pod)
    conditions = pod_status.get("conditions") or []
    init_specs = {c.get("name"): c for c in pod_spec.get("initContainers") or []}
    total = len(pod_spec.get("containers") or []) + sum(_is_restartable_init(c) for c in init_specs.values())
    ready = 0
    phase = pod_status.get("phase") or "Pending"
    reason = pod_status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"

    restarts, sidecar_restarts = 0, 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    initializing = False
    for index, container in enumerate(pod_status.get("initContainerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        last_restart = _later(last_restart, _finished_at(container))
        sidecar = _is_restartable_init(init_specs.get(container.get("name")))
        if sidecar:
            sidecar_restarts += int(container.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, _finished_at(container))
        terminated = (container.get("state") or {}).get("terminated")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and container.get("started"):
            ready += bool(container.get("ready"))
            continue
        reason = _init_reason(container, index=index, total=len(init_specs))
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for container in reversed(pod_status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            last_restart = _later(last_restart, _finished_at(container))
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = _terminated_reason(terminated, prefix="")
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition_true(conditions, "Ready") else "NotReady"

    deleting = meta(pod).get("deletionTimestamp") is not None
    if deleting and pod_status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _readiness_gates(pod: Mapping[str, Any]) -> str:
    gates = spec(pod).get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = status(pod).get("conditions") or []
    passed = sum(_condition_true(conditions, gate.get("conditionType", "")) for gate in gates)
    return f"{passed}/{len(gates)}"


def _pod_ip(pod: Mapping[str, Any]) -> str:
    pod_status = status(pod)
    ips = pod_status.get("podIPs") or []
    return (ips[0].get("ip") if ips else pod_status.get("podIP")) or "<none>"


def pod_cells(pod: Mapping[str, Any], now: datetime) -> list[Any]:
    ready, total, reason, restarts, last_restart = _pod_summary(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((aware(now) - last_restart).total_seconds())} ago)"
    return [
        name_of(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        age(pod, now),
        _pod_ip(pod),
        spec(pod).get("nodeName") or "<none>",
        status(pod).get("nominatedNodeName") or "<none>",
        _readiness_gates(pod),
    ]


