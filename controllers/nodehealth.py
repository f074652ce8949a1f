"""The node lifecycle controller's pure part: node health, taints, zone disruption, evictions.

Data flow: ``controllers.nodelifecycle`` feeds each node, its Lease and the time into
``observe`` (when did this controller last see the kubelet alive?) -> ``is_stale`` -> stale
nodes get ``unknown_conditions`` written -> ``zone_state`` over every zone's Ready counts ->
``desired_taints`` (Kubernetes' NoSchedule taints by condition, plus the NoExecute
``unreachable`` / ``not-ready`` taints unless the zone is disrupted) -> for each pod on a node with
NoExecute taints ``eviction_time`` says when it must go (Kubernetes' taint eviction controller).

Times are aware ``datetime``s; nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from machinery.taints import tolerates
from machinery.timefmt import parse_time

Obj = dict[str, Any]

TAINT_UNREACHABLE = "node.kubernetes.io/unreachable"
TAINT_NOT_READY = "node.kubernetes.io/not-ready"
TAINT_UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_EXECUTE = "NoExecute"
NO_SCHEDULE = "NoSchedule"

# The conditions the controller sets to Unknown when the kubelet goes quiet (Ready first).
MONITORED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")

# (condition type, status) -> the NoSchedule taint key Kubernetes puts on the node.
NO_SCHEDULE_BY_CONDITION: dict[tuple[str, str], str] = {
    ("Ready", "False"): TAINT_NOT_READY,
    ("Ready", "Unknown"): TAINT_UNREACHABLE,
    ("MemoryPressure", "True"): "node.kubernetes.io/memory-pressure",
    ("DiskPressure", "True"): "node.kubernetes.io/disk-pressure",
    ("PIDPressure", "True"): "node.kubernetes.io/pid-pressure",
    ("NetworkUnavailable", "True"): "node.kubernetes.io/network-unavailable",
}
CONTROLLER_NO_SCHEDULE_KEYS = frozenset(NO_SCHEDULE_BY_CONDITION.values()) | {TAINT_UNSCHEDULABLE}

EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"

NORMAL = "Normal"
PARTIAL_DISRUPTION = "PartialDisruption"
FULL_DISRUPTION = "FullDisruption"

# Kubernetes' defaults: --unhealthy-zone-threshold 0.55, --large-cluster-size-threshold 50.
UNHEALTHY_ZONE_THRESHOLD = 0.55
LARGE_CLUSTER_THRESHOLD = 50


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(node: Obj, type_: str) -> Obj | None:
    for c in (node.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def ready_status(node: Obj) -> str:
    """"True", "False" or "Unknown" (a node that never posted Ready counts as Unknown)."""
    c = condition(node, "Ready")
    return str(c.get("status")) if c and c.get("status") else "Unknown"


# ---------------------------------------------------------------------------------- health
@dataclass(frozen=True)
class NodeHealth:
    """What the controller last saw of a node's kubelet, and when it saw it change."""

    probe_time: datetime  # when this controller last saw a sign of life
    heartbeat: str  # the Ready condition's lastHeartbeatTime as last seen
    renew_time: str  # the Lease's renewTime as last seen


def observe(previous: NodeHealth | None, node: Obj, lease: Obj | None, now: datetime) -> NodeHealth:
    """Kubernetes' ``tryUpdateNodeHealth`` bookkeeping: a changed heartbeat or lease renewal is a
    sign of life *seen now* (the controller's clock, so kubelet clock skew does not matter)."""
    ready = condition(node, "Ready") or {}
    heartbeat = str(ready.get("lastHeartbeatTime") or "")
    renew = str(((lease or {}).get("spec") or {}).get("renewTime") or "")
    if previous is None:
        probe = now
        if not ready and not renew:
            # Never posted anything: the grace period runs from the node's creation.
            probe = parse_time((node.get("metadata") or {}).get("creationTimestamp")) or now
        return NodeHealth(probe, heartbeat, renew)
    if heartbeat != previous.heartbeat or renew != previous.renew_time:
        return NodeHealth(now, heartbeat, renew)
    return previous


def is_stale(health: NodeHealth, now: datetime, grace_period: float) -> bool:
    return now - health.probe_time > timedelta(seconds=grace_period)


def unknown_conditions(node: Obj, now: datetime) -> list[Obj] | None:
    """The node's conditions with the monitored ones set to Unknown; None when they already are."""
    conditions = [dict(c) for c in (node.get("status") or {}).get("conditions") or []]
    changed = False
    stamp = rfc3339(now)
    for type_ in MONITORED_CONDITIONS:
        c = next((x for x in conditions if x.get("type") == type_), None)
        if c is None:
            created = (node.get("metadata") or {}).get("creationTimestamp") or stamp
            conditions.append({"type": type_, "status": "Unknown", "lastHeartbeatTime": created,
                               "lastTransitionTime": stamp, "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status."})
            changed = True
        elif c.get("status") != "Unknown":
            c.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                     lastTransitionTime=stamp)
            changed = True
    return conditions if changed else None


# ---------------------------------------------------------------------------------- zones
def zone_of(node: Obj) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return f"{labels.get(REGION_LABEL, '')}:\x00:{labels.get(ZONE_LABEL, '')}"


def zone_state(ready: int, not_ready: int) -> str:
    """Kubernetes' ``ComputeZoneState``."""
    if ready == 0 and not_ready > 0:
        return FULL_DISRUPTION
    if not_ready > 2 and not_ready / max(ready + not_ready, 1) >= UNHEALTHY_ZONE_THRESHOLD:
        return PARTIAL_DISRUPTION
    return NORMAL


def zone_states(nodes: list[Obj]) -> dict[str, str]:
    counts: dict[str, list[int]] = {}
    for node in nodes:
        if EXCLUDE_DISRUPTION_LABEL in ((node.get("metadata") or {}).get("labels") or {}):
            continue
        c = counts.setdefault(zone_of(node), [0, 0])
        c[0 if ready_status(node) == "True" else 1] += 1
    return {zone: zone_state(r, n) for zone, (r, n) in counts.items()}


def no_execute_mode(state: str, *, all_fully_disrupted: bool, cluster_size: int) -> str:
    """How NoExecute tainting behaves in a zone: "taint", "hold" (add none) or "clear" (remove).

    Every zone fully disrupted -> "clear" (Kubernetes' master disruption mode: the fault is
    probably the controller's own view, so nothing is evicted). A partially disrupted zone of a
    small cluster -> "hold" (Kubernetes' eviction rate 0). Otherwise "taint".
    """
    if all_fully_disrupted:
        return "clear"
    if state == PARTIAL_DISRUPTION and cluster_size <= LARGE_CLUSTER_THRESHOLD:
        return "hold"
    return "taint"


# ---------------------------------------------------------------------------------- taints
def desired_taints(node: Obj, *, mode: str, now: datetime) -> list[Obj] | None:
    """The node's taints after this controller's pass; None when they are right already.

    NoSchedule taints follow the conditions (and ``spec.unschedulable``); the NoExecute
    ``unreachable`` / ``not-ready`` taints follow Ready (Unknown / False) as ``mode`` allows.
    Taints already present keep their ``timeAdded``; other taints are left as they are.
    """
    spec = node.get("spec") or {}
    current = [dict(t) for t in spec.get("taints") or []]
    want_ns: set[str] = set()
    for c in (node.get("status") or {}).get("conditions") or []:
        key = NO_SCHEDULE_BY_CONDITION.get((str(c.get("type")), str(c.get("status"))))
        if key:
            want_ns.add(key)
    if spec.get("unschedulable"):
        want_ns.add(TAINT_UNSCHEDULABLE)
    ready = ready_status(node)
    want_ne: set[str] = set()
    if ready == "Unknown":
        want_ne.add(TAINT_UNREACHABLE)
    elif ready == "False":
        want_ne.add(TAINT_NOT_READY)
    have_ne = {t["key"] for t in current if t.get("effect") == NO_EXECUTE and t.get("key") in (TAINT_UNREACHABLE, TAINT_NOT_READY)}
    if mode == "clear":
        want_ne = set()
    elif mode == "hold":
        # Add none; swap an existing one to match the condition (Kubernetes' swapNodeControllerTaint).
        want_ne = want_ne if have_ne else set()
    out: list[Obj] = []
    for t in current:
        key, effect = t.get("key"), t.get("effect")
        if effect == NO_SCHEDULE and key in CONTROLLER_NO_SCHEDULE_KEYS:
            if key in want_ns:
                out.append(t)
                want_ns.discard(str(key))
            continue
        if effect == NO_EXECUTE and key in (TAINT_UNREACHABLE, TAINT_NOT_READY):
            if key in want_ne:
                out.append(t)
                want_ne.discard(str(key))
            continue
        out.append(t)
    for key in sorted(want_ns):
        out.append({"key": key, "effect": NO_SCHEDULE})
    for key in sorted(want_ne):
        out.append({"key": key, "effect": NO_EXECUTE, "timeAdded": rfc3339(now)})
    return None if out == current else out


# ---------------------------------------------------------------------------------- eviction


def with_default_tolerations(tolerations: list[Obj], default_seconds: float) -> list[Obj]:
    """The DefaultTolerationSeconds admission plugin: tolerate not-ready and unreachable
    (NoExecute) for ``default_seconds`` unless the pod already tolerates them."""
    out = list(tolerations)
    for key in (TAINT_NOT_READY, TAINT_UNREACHABLE):
        probe = {"key": key, "effect": NO_EXECUTE}
        if not any(tolerates(t, probe) for t in tolerations):
            out.append({"key": key, "operator": "Exists", "effect": NO_EXECUTE, "tolerationSeconds": default_seconds})
    return out


def eviction_time(pod: Obj, taints: list[Obj], *, default_toleration_seconds: float,
                  first_seen: datetime) -> datetime | None:
    """When ``pod`` must be evicted because of the node's NoExecute taints; None: never.

    An untolerated NoExecute taint evicts at once (``first_seen``); otherwise the shortest
    ``tolerationSeconds`` among the tolerations used counts from the earliest ``timeAdded`` of
    those taints (``first_seen`` if unset); a toleration without seconds tolerates forever.
    """
    no_execute = [t for t in taints if t.get("effect") == NO_EXECUTE]
    if not no_execute:
        return None
    tolerations = with_default_tolerations(list((pod.get("spec") or {}).get("tolerations") or []),
                                           default_toleration_seconds)
    used: list[Obj] = []
    for taint in no_execute:
        match = next((t for t in tolerations if tolerates(t, taint)), None)
        if match is None:
            return first_seen
        used.append(match)
    seconds = [float(t["tolerationSeconds"]) for t in used if t.get("tolerationSeconds") is not None]
    if not seconds:
        return None
    added = [m for m in (parse_time(t.get("timeAdded")) for t in no_execute) if m is not None]
    start = min(added) if added else first_seen
    return start + timedelta(seconds=max(0.0, min(seconds)))
