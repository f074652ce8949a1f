"""The ReplicaSet controller's decisions, as pure functions over wire dicts.

Role: DESIGN pattern 6 for ``controllers.replicaset`` (which also serves ReplicationControllers,
read as ReplicaSets): ``plan(rs, pods, now=..., manage=...)`` says what one sync of a ReplicaSet
should do, and the controller only carries it out. After Kubernetes' pkg/controller/replicaset
(``manageReplicas``, ``calculateStatus``) and the pod helpers it shares with the Deployment
controller (``FilterActivePods``, ``IsPodAvailable``, ``ActivePodsWithRanks``).

Data flow:

    the ReplicaSet (read as one) + every pod of its namespace, from informer caches
        -> plan: claim (adopt matching orphans, release owned pods that stopped matching)
                 active = owned pods not terminal and not being deleted
                 create N (capped at burst) / delete the first N of rank_for_deletion(active)
                 status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
                         observedGeneration, the ReplicaFailure condition (calculate_status)
        -> ReplicaSetPlan -> the executor (adopt/release patches, creations in
           slow_start_batches, deletions, PUT /status when status_changed)

Times come in as ``now``; nothing here reads a clock, does I/O or mutates its arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from controllers import ownerrefs
from controllers.ownerrefs import Obj, is_deleting, meta
from machinery.selectors import SelectorError, label_selector_from_dict, label_selector_from_set
from machinery.timefmt import parse_time

BURST_REPLICAS = 500  # Kubernetes' BurstReplicas: at most this many creations/deletions per sync
SLOW_START_INITIAL_BATCH = 1

_PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}


# ============================================================================ pod predicates (pure)
def _ready_condition(pod: Obj) -> dict[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return c
    return None


def is_pod_active(pod: Obj) -> bool:
    """``FilterActivePods``: not Succeeded/Failed and not being deleted."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not is_deleting(pod)


def is_pod_ready(pod: Obj) -> bool:
    cond = _ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def pod_ready_time(pod: Obj) -> datetime | None:
    cond = _ready_condition(pod)
    if cond is None or cond.get("status") != "True":
        return None
    return parse_time(cond.get("lastTransitionTime"))


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """``podutil.IsPodAvailable``: ready, and ready for longer than ``min_ready_seconds``."""
    if not is_pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def _max_restarts(pod: Obj) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def _after_or_zero(t1: datetime | None, t2: datetime | None) -> bool:
    """``afterOrZero``: an unset time sorts first, then the later one."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _deletion_less(a: Obj, b: Obj, rank_a: int, rank_b: int) -> bool:
    """``ActivePodsWithRanks.Less``: True if ``a`` should be deleted before ``b``."""
    na, nb = (a.get("spec") or {}).get("nodeName") or "", (b.get("spec") or {}).get("nodeName") or ""
    if na != nb and (not na or not nb):
        return not na  # 1. unscheduled first
    pa = _PHASE_ORDINAL.get((a.get("status") or {}).get("phase") or "", 0)
    pb = _PHASE_ORDINAL.get((b.get("status") or {}).get("phase") or "", 0)
    if pa != pb:
        return pa < pb  # 2. Pending < Unknown < Running
    ra, rb = is_pod_ready(a), is_pod_ready(b)
    if ra != rb:
        return not ra  # 3. not ready first
    ca = _deletion_cost(a)
    cb = _deletion_cost(b)
    if ca != cb:
        return ca < cb  # 4. lower pod-deletion-cost first
    if rank_a != rank_b:
        return rank_a > rank_b  # 5. doubled up on a node first
    if ra and rb:
        ta, tb = pod_ready_time(a), pod_ready_time(b)
        if ta != tb:
            return _after_or_zero(ta, tb)  # 6. ready for less time first
    xa, xb = _max_restarts(a), _max_restarts(b)
    if xa != xb:
        return xa > xb  # 7. more restarts first
    ta, tb = parse_time(meta(a).get("creationTimestamp")), parse_time(meta(b).get("creationTimestamp"))
    if ta != tb:
        return _after_or_zero(ta, tb)  # 8. newer first
    return False


def _deletion_cost(pod: Obj) -> int:
    raw = (meta(pod).get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost")
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def rank_for_deletion(pods: Sequence[Obj], related: Sequence[Obj] | None = None) -> list[Obj]:
    """``pods`` in the order Kubernetes deletes them (first = first to go).

    The rank of a pod is the number of active ready ``related`` pods (default: ``pods``) on its
    node, so pods doubled up on a node go before lone ones. Creation and ready times compare
    directly (Kubernetes' order with the LogarithmicScaleDown gate off, which is deterministic).
    """
    related = pods if related is None else related
    on_node: dict[str, int] = {}
    for p in related:
        node = (p.get("spec") or {}).get("nodeName") or ""
        if node and is_pod_active(p) and is_pod_ready(p):
            on_node[node] = on_node.get(node, 0) + 1
    ranks = {id(p): on_node.get((p.get("spec") or {}).get("nodeName") or "", 0) for p in pods}

    def cmp(a: Obj, b: Obj) -> int:
        if _deletion_less(a, b, ranks[id(a)], ranks[id(b)]):
            return -1
        if _deletion_less(b, a, ranks[id(b)], ranks[id(a)]):
            return 1
        return 0

    return sorted(pods, key=functools.cmp_to_key(cmp))


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """Batch sizes of ``slowStartBatch``: 1, 2, 4, ... until ``count`` is reached."""
    out: list[int] = []
    remaining = count
    size = min(remaining, initial)
    while size > 0:
        out.append(size)
        remaining -= size
        size = min(2 * size, remaining)
    return out


# ============================================================================ the plan (pure)
@dataclass
class ReplicaSetPlan:
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)
    create: int = 0
    delete: list[Obj] = field(default_factory=list)
    active: list[Obj] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    # After creating, look again once ready pods may have become available (minReadySeconds).
    requeue_after: float | None = None


def spec_replicas(obj: Obj) -> int:
    """``spec.replicas`` of a ReplicaSet or Deployment (the API defaults it to 1)."""
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def rs_selector_matches(rs: Obj) -> Callable[[Obj], bool]:
    """Whether a pod's labels match the ReplicaSet's ``spec.selector`` (a selector that does not
    parse matches nothing)."""
    try:
        sel = label_selector_from_dict((rs.get("spec") or {}).get("selector"))
    except SelectorError:
        sel = None
    return lambda pod: sel is not None and sel.matches(meta(pod).get("labels") or {})


def calculate_status(rs: Obj, active: Sequence[Obj], *, now: datetime,
                     manage_error: str | None = None) -> dict[str, Any]:
    """``calculateStatus`` + observedGeneration: the status the ReplicaSet should have now.

    Zero counts are left out as Go's ``omitempty`` does (``replicas`` is always written).
    """
    spec = rs.get("spec") or {}
    old = rs.get("status") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    template_sel = label_selector_from_set(template_labels)
    min_ready = int(spec.get("minReadySeconds") or 0)
    fully = ready = available = 0
    for pod in active:
        if template_sel.matches(meta(pod).get("labels") or {}):
            fully += 1
        if is_pod_ready(pod):
            ready += 1
            if is_pod_available(pod, min_ready, now):
                available += 1
    conditions = [c for c in old.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in old.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None:
        if failure is None:
            desired = spec_replicas(rs)
            reason = "FailedCreate" if len(active) < desired else "FailedDelete"
            failure = {"type": "ReplicaFailure", "status": "True", "reason": reason, "message": manage_error,
                       "lastTransitionTime": _rfc3339(now)}
        conditions.append(failure)
    status: dict[str, Any] = {"replicas": len(active)}
    for k, v in (("fullyLabeledReplicas", fully), ("readyReplicas", ready), ("availableReplicas", available),
                 ("observedGeneration", int(meta(rs).get("generation") or 0))):
        if v:
            status[k] = v
    if conditions:
        status["conditions"] = conditions
    return status


def plan(rs: Obj, pods: Sequence[Obj], *, now: datetime, manage: bool = True,
         burst: int = BURST_REPLICAS) -> ReplicaSetPlan:
    """Decide what to do for ``rs`` given every pod of its namespace (pure).

    ``manage=False`` (expectations not yet satisfied, or the ReplicaSet is being deleted): only
    claim and compute status, create/delete nothing.
    """
    out = ReplicaSetPlan()
    candidates = [p for p in pods if is_pod_active(p)]
    claimed = ownerrefs.claim(rs, candidates, rs_selector_matches(rs))
    out.adopt, out.release = claimed.adopt, claimed.release
    out.active = claimed.owned
    spec = rs.get("spec") or {}
    want = spec_replicas(rs)
    if manage and not is_deleting(rs):
        diff = len(out.active) - want
        if diff < 0:
            out.create = min(-diff, burst)
        elif diff > 0:
            out.delete = rank_for_deletion(out.active)[: min(diff, burst)]
    out.status = calculate_status(rs, out.active, now=now)
    min_ready = int(spec.get("minReadySeconds") or 0)
    st = out.status
    if min_ready > 0 and st.get("readyReplicas", 0) == want and st.get("availableReplicas", 0) != want:
        out.requeue_after = float(min_ready)
    elif min_ready > 0 and st.get("readyReplicas", 0) > st.get("availableReplicas", 0):
        out.requeue_after = float(min_ready)
    return out


def status_changed(rs: Obj, status: dict[str, Any]) -> bool:
    return (rs.get("status") or {}) != status


def _rfc3339(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
