"""Pure helpers of the Deployment controller (Kubernetes' pkg/controller/deployment/util).

Data flow: none of its own; ``controllers.deploymentplan.plan`` calls these on wire dicts:
the pod-template hash (``compute_hash``), maxSurge/maxUnavailable resolution
(``resolve_fenceposts``), revision and replica annotations, finding the new and old ReplicaSets,
replica counts over ReplicaSets, the proportional-scaling fraction, and Deployment conditions.
Nothing here does I/O or mutates its arguments unless the name says ``set_``.
"""

from __future__ import annotations

import copy
import json
import math
import struct
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from controllers.ownerrefs import Obj, is_deleting, meta, name_of

# Label and annotation keys (apps/v1).
POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MAX_REV_HISTORY_CHARS = 2000

# Condition reasons (deploymentutil).
NEW_RS_REASON = "NewReplicaSetCreated"
FOUND_NEW_RS_REASON = "FoundNewReplicaSet"
RS_UPDATED_REASON = "ReplicaSetUpdated"
NEW_RS_AVAILABLE_REASON = "NewReplicaSetAvailable"
TIMED_OUT_REASON = "ProgressDeadlineExceeded"
PAUSED_REASON = "DeploymentPaused"
RESUMED_REASON = "DeploymentResumed"
FAILED_RS_CREATE_REASON = "ReplicaSetCreateError"
MIN_AVAILABLE_REASON = "MinimumReplicasAvailable"
MIN_UNAVAILABLE_REASON = "MinimumReplicasUnavailable"

MAX_INT32 = 2**31 - 1
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# ============================================================================ hashing
def fnv32a(data: bytes, h: int = 0x811C9DC5) -> int:
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    """``rand.SafeEncodeString``: map each byte onto consonants and digits (no vowels, no bad words)."""
    return "".join(_SAFE_ALPHANUMS[b % len(_SAFE_ALPHANUMS)] for b in s.encode())


def compute_hash(template: Obj, collision_count: int | None = None) -> str:
    """``controller.ComputeHash``: FNV-32a over the template (canonical JSON: sorted keys, no
    spaces) and, if set, the collision count as 4 little-endian bytes; the decimal sum is then
    safe-encoded. Stable across processes and key orders."""
    data = json.dumps(template, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    h = fnv32a(data)
    if collision_count is not None:
        h = fnv32a(struct.pack("<I", collision_count & 0xFFFFFFFF), h)
    return safe_encode(str(h))


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template or {})
    tmeta = t.get("metadata")
    if isinstance(tmeta, dict):
        labels = dict(tmeta.get("labels") or {})
        labels.pop(POD_TEMPLATE_HASH, None)
        if labels:
            tmeta["labels"] = labels
        else:
            tmeta.pop("labels", None)
        if not tmeta:
            t.pop("metadata")
    return t


def equal_ignore_hash(a: Obj, b: Obj) -> bool:
    """``EqualIgnoreHash``: two pod templates equal apart from the pod-template-hash label."""
    return _without_hash(a) == _without_hash(b)


# ============================================================================ int-or-percent
def scaled_value(value: int | str | None, total: int, *, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``: an int, or "N%" of ``total`` rounded up/down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.endswith("%"):
        return int(text)
    pct = int(text[:-1])
    num = pct * total
    return -(-num // 100) if round_up else num // 100


def is_rolling(d: Obj) -> bool:
    return ((d.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def replicas_of(obj: Obj | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None,
                       desired: int) -> tuple[int, int]:
    """``ResolveFenceposts``: surge rounds up, unavailable down; both 0 -> unavailable 1."""
    surge = scaled_value(max_surge if max_surge is not None else 0, desired, round_up=True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else 0, desired, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def _rolling_params(d: Obj) -> tuple[int | str | None, int | str | None]:
    ru = ((d.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}
    surge = ru.get("maxSurge", "25%")
    unavailable = ru.get("maxUnavailable", "25%")
    return surge, unavailable


def max_surge(d: Obj) -> int:
    if not is_rolling(d):
        return 0
    surge, unavailable = _rolling_params(d)
    return resolve_fenceposts(surge, unavailable, replicas_of(d))[0]


def max_unavailable(d: Obj) -> int:
    desired = replicas_of(d)
    if not is_rolling(d) or desired == 0:
        return 0
    surge, unavailable = _rolling_params(d)
    return min(resolve_fenceposts(surge, unavailable, desired)[1], desired)


# ============================================================================ replica counts
def status_int(obj: Obj | None, field: str) -> int:
    if obj is None:
        return 0
    return int((obj.get("status") or {}).get(field) or 0)


def replica_count(rss: Iterable[Obj | None]) -> int:
    """``GetReplicaCountForReplicaSets``: the sum of ``spec.replicas``."""
    return sum(replicas_of(rs) for rs in rss if rs is not None)


def pod_count_upper_bound(rss: Iterable[Obj | None]) -> int:
    """Pods that may exist: per ReplicaSet ``max(spec.replicas, status.replicas)``.

    While a ReplicaSet's controller has not caught up with a scale-down its pods still exist;
    counting the spec alone (as Kubernetes does) lets the next scale-up briefly exceed maxSurge.
    """
    return sum(max(replicas_of(rs), status_int(rs, "replicas")) for rs in rss if rs is not None)


def actual_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "replicas") for rs in rss if rs is not None)


def ready_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "readyReplicas") for rs in rss if rs is not None)


def available_replica_count(rss: Iterable[Obj | None]) -> int:
    return sum(status_int(rs, "availableReplicas") for rs in rss if rs is not None)


def available_lower_bound(rss: Iterable[Obj | None]) -> int:
    """Available pods that will remain: per ReplicaSet ``min(status.availableReplicas, spec.replicas)``
    (a ReplicaSet scaled down but not yet synced still reports the pods it is about to delete)."""
    return sum(min(status_int(rs, "availableReplicas"), replicas_of(rs)) for rs in rss if rs is not None)


def filter_active(rss: Iterable[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and replicas_of(rs) > 0]


# ============================================================================ ordering
def _created(obj: Obj) -> str:
    return str(meta(obj).get("creationTimestamp") or "")


def by_creation(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsByCreationTimestamp``: oldest first, ties by name."""
    return sorted(rss, key=lambda rs: (_created(rs), name_of(rs)))


def revision_of(obj: Obj | None) -> int:
    if obj is None:
        return 0
    try:
        return int((meta(obj).get("annotations") or {}).get(REVISION) or 0)
    except ValueError:
        return 0


def by_revision(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsByRevision``: lowest revision first, ties by creation."""
    return sorted(rss, key=lambda rs: (revision_of(rs), _created(rs), name_of(rs)))


def max_revision(rss: Iterable[Obj]) -> int:
    return max((revision_of(rs) for rs in rss), default=0)


def find_new_rs(d: Obj, rss: Sequence[Obj]) -> Obj | None:
    """``FindNewReplicaSet``: the oldest ReplicaSet whose template equals the Deployment's."""
    template = (d.get("spec") or {}).get("template") or {}
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template") or {}, template):
            return rs
    return None


def find_old_rss(d: Obj, rss: Sequence[Obj]) -> list[Obj]:
    new = find_new_rs(d, rss)
    return [rs for rs in rss if new is None or rs is not new]


def by_size_newer(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsBySizeNewer``: larger first; equal sizes: newer first."""
    newest_first = sorted(rss, key=lambda rs: (_created(rs), name_of(rs)), reverse=True)
    return sorted(newest_first, key=lambda rs: -replicas_of(rs))  # stable: keeps newer first


def by_size_older(rss: Iterable[Obj]) -> list[Obj]:
    """``ReplicaSetsBySizeOlder``: larger first; equal sizes: older first."""
    return sorted(rss, key=lambda rs: (-replicas_of(rs), _created(rs), name_of(rs)))


def find_active_or_latest(new_rs: Obj | None, old_rss: Sequence[Obj]) -> Obj | None:
    """``FindActiveOrLatest``: the only active ReplicaSet, the newest one if none is active,
    or None if several are active."""
    if new_rs is None and not old_rss:
        return None
    olds = list(reversed(by_creation(old_rss)))
    active = filter_active([*olds, new_rs])
    if not active:
        return new_rs if new_rs is not None else olds[0]
    if len(active) == 1:
        return active[0]
    return None


# ============================================================================ annotations
def _int_annotation(rs: Obj, key: str) -> int | None:
    raw = (meta(rs).get("annotations") or {}).get(key)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def desired_replicas_annotation(rs: Obj) -> int | None:
    return _int_annotation(rs, DESIRED_REPLICAS)


def max_replicas_annotation(rs: Obj) -> int | None:
    return _int_annotation(rs, MAX_REPLICAS)


def set_replicas_annotations(rs: Obj, desired: int, max_replicas: int) -> bool:
    """``SetReplicasAnnotations`` on ``rs`` (a copy the caller owns); True if anything changed."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(max_replicas))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def replicas_annotations_need_update(rs: Obj, desired: int, max_replicas: int) -> bool:
    ann = meta(rs).get("annotations") or {}
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(max_replicas)


_SKIP_COPY = {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}


def copy_deployment_annotations(d: Obj, rs: Obj) -> bool:
    """``copyDeploymentAnnotationsToReplicaSet`` onto ``rs`` (a copy); True if anything changed."""
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    changed = False
    for k, v in (meta(d).get("annotations") or {}).items():
        if k in _SKIP_COPY or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, *, exists: bool,
                           limit_chars: int = MAX_REV_HISTORY_CHARS) -> bool:
    """``SetNewReplicaSetAnnotations`` on ``rs`` (a copy): deployment annotations, the revision
    (only ever raised; a raised revision of an existing ReplicaSet is a rollback, whose old
    revision goes to revision-history), and for a new ReplicaSet the replica annotations."""
    changed = copy_deployment_annotations(d, rs)
    ann = rs.setdefault("metadata", {}).setdefault("annotations", {})
    old_raw = ann.get(REVISION)
    try:
        old_rev = int(old_raw) if old_raw is not None else 0
    except ValueError:
        return changed
    if old_rev < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old_raw is not None:
            history = ann.get(REVISION_HISTORY) or ""
            olds = history.split(",") if history else []
            total = len(history) + len(old_raw) + 1
            start = 0
            while total > limit_chars and start < len(olds):
                total -= len(olds[start]) + 1
                start += 1
            if total <= limit_chars:
                ann[REVISION_HISTORY] = ",".join([*olds[start:], old_raw])
    if not exists and set_replicas_annotations(rs, replicas_of(d), replicas_of(d) + max_surge(d)):
        changed = True
    return changed


# ============================================================================ proportional scaling
def go_round(x: float) -> int:
    """``math.Round``: halves away from zero (Python's round() goes to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def rs_fraction(rs: Obj, d: Obj) -> int:
    """``getReplicaSetFraction``: how many replicas ``rs`` gains (or loses) when the Deployment's
    maximum size changes from its max-replicas annotation to ``replicas + maxSurge``."""
    if replicas_of(d) == 0:
        return -replicas_of(rs)
    new_max = replicas_of(d) + max_surge(d)
    before = max_replicas_annotation(rs)
    if not before:
        before = status_int(d, "replicas")
    if not before:
        return 0
    return go_round(replicas_of(rs) * new_max / before) - replicas_of(rs)


def rs_proportion(rs: Obj, d: Obj, to_add: int, added: int) -> int:
    """``GetReplicaSetProportion``: the share of ``to_add`` this ReplicaSet takes, never more than
    what is left to add (or remove)."""
    if replicas_of(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = rs_fraction(rs, d)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    """``IsSaturated``: the new ReplicaSet runs all the Deployment's replicas, all available."""
    if rs is None:
        return False
    desired = desired_replicas_annotation(rs)
    want = replicas_of(d)
    return replicas_of(rs) == want and desired == want and status_int(rs, "availableReplicas") == want


# ============================================================================ conditions
def rfc3339(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def get_condition(status: Obj, ctype: str) -> dict[str, Any] | None:
    for c in status.get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def new_condition(ctype: str, status: str, reason: str, message: str, now: datetime) -> dict[str, Any]:
    ts = rfc3339(now)
    return {"type": ctype, "status": status, "lastUpdateTime": ts, "lastTransitionTime": ts,
            "reason": reason, "message": message}


def set_condition(status: Obj, cond: dict[str, Any]) -> None:
    """``SetDeploymentCondition`` on ``status`` (a copy): same status and reason -> no change;
    same status -> keep lastTransitionTime; the condition goes to the end of the list."""
    current = get_condition(status, cond["type"])
    if current is not None and current.get("status") == cond["status"] and current.get("reason") == cond["reason"]:
        return
    cond = dict(cond)
    if current is not None and current.get("status") == cond["status"]:
        cond["lastTransitionTime"] = current.get("lastTransitionTime")
    status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, ctype: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != ctype]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


def has_progress_deadline(d: Obj) -> bool:
    pds = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return pds is not None and int(pds) != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    rhl = (d.get("spec") or {}).get("revisionHistoryLimit")
    return rhl is not None and int(rhl) != MAX_INT32


def _st(status: Obj, field: str) -> int:
    return int(status.get(field) or 0)


def deployment_complete(d: Obj, status: Obj) -> bool:
    want = replicas_of(d)
    return (_st(status, "updatedReplicas") == want and _st(status, "replicas") == want
            and _st(status, "availableReplicas") == want
            and _st(status, "observedGeneration") >= int(meta(d).get("generation") or 0))


def deployment_progressing(d: Obj, status: Obj) -> bool:
    old = d.get("status") or {}
    old_old = _st(old, "replicas") - _st(old, "updatedReplicas")
    new_old = _st(status, "replicas") - _st(status, "updatedReplicas")
    return (_st(status, "updatedReplicas") > _st(old, "updatedReplicas") or new_old < old_old
            or _st(status, "readyReplicas") > _st(old, "readyReplicas")
            or _st(status, "availableReplicas") > _st(old, "availableReplicas"))


def parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def deployment_timed_out(d: Obj, status: Obj, now: datetime) -> bool:
    if not has_progress_deadline(d):
        return False
    cond = get_condition(status, "Progressing")
    if cond is None or cond.get("reason") == NEW_RS_AVAILABLE_REASON:
        return False
    if cond.get("reason") == TIMED_OUT_REASON:
        return True
    since = parse_ts(cond.get("lastUpdateTime"))
    if since is None:
        return False
    return (now - since).total_seconds() > int((d.get("spec") or {}).get("progressDeadlineSeconds") or 0)


def is_rs_deleting(rs: Obj) -> bool:
    return is_deleting(rs)
