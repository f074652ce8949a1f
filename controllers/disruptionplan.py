"""The disruption controller's decisions: a PodDisruptionBudget's status from its pods, purely.

After pkg/controller/disruption (``trySync``, ``getExpectedPodCount``, ``countHealthyPods``,
``buildDisruptedPodMap``, ``updatePdbStatus``, ``failSafe``) and component-helpers'
``UpdateDisruptionAllowedCondition``. Data flow: the PDB, the pods its selector picks, the scales
of the pods' controllers (resolved by the executor: ``controller_refs`` names what to look up)
and the time -> ``plan`` -> the status to write (None when the stored one is current) and when
to look again (an entry of ``disruptedPods`` expires after ``DELETION_TIMEOUT``).

- expectedPods / desiredHealthy: ``minAvailable`` as an int -> that many, expected = the pods
  found; a percent ``minAvailable`` or any ``maxUnavailable`` -> expected = the sum of the scales
  of the pods' controllers (a pod without a controller is reported as unmanaged and skipped; a
  controller that cannot be found fails the sync), the percent rounded up;
- currentHealthy: Ready pods that are not being deleted and not in ``disruptedPods``;
- disruptionsAllowed = currentHealthy - desiredHealthy (0 when negative or nothing is expected);
- a failed sync writes ``disruptionsAllowed: 0`` and ``DisruptionAllowed=False/SyncFailed``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controllers.ownerrefs import get_controller_of, meta
from controllers.replicasetplan import is_pod_ready
from machinery.selectors import SelectorError, label_selector_from_dict
from machinery.timefmt import parse_time

Obj = dict[str, Any]

DELETION_TIMEOUT = timedelta(minutes=2)
STALE_POD_DISRUPTION_TIMEOUT = timedelta(minutes=2)
CONDITION = "DisruptionAllowed"
SUFFICIENT, INSUFFICIENT, SYNC_FAILED = "SufficientPods", "InsufficientPods", "SyncFailed"


class SyncError(Exception):
    """The status cannot be computed (a bad percent, a pod whose controller is missing)."""


@dataclass
class Plan:
    status: Obj | None  # the status to write; None: the stored one is current
    recheck_after: float | None = None  # seconds until a disruptedPods entry expires
    unmanaged: list[str] = field(default_factory=list)  # pods without a controller (percent budgets)
    pods: int = 0


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """policy/v1: an empty selector selects every pod of the namespace, a missing one none."""
    if (pod.get("metadata") or {}).get("namespace") != (pdb.get("metadata") or {}).get("namespace"):
        return False
    try:
        selector = label_selector_from_dict((pdb.get("spec") or {}).get("selector"))
    except SelectorError:
        return False
    return selector.matches((pod.get("metadata") or {}).get("labels") or {})


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent."""
    if isinstance(value, bool):
        raise SyncError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%") or not text[:-1].isdigit():
        raise SyncError("invalid value for IntOrString: invalid type: string is not a percentage")
    scaled = int(text[:-1]) * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)


def uses_scale(pdb: Mapping[str, Any]) -> bool:
    """Whether the expected count comes from the pods' controllers (percent minAvailable, maxUnavailable)."""
    pdb_spec = pdb.get("spec") or {}
    if pdb_spec.get("maxUnavailable") is not None:
        return True
    return isinstance(pdb_spec.get("minAvailable"), str)


def controller_refs(pods: Sequence[Obj]) -> tuple[dict[str, tuple[str, Obj]], list[str]]:
    """The controller references to resolve (uid -> (namespace, ref)) and the unmanaged pods."""
    refs: dict[str, tuple[str, Obj]] = {}
    unmanaged: list[str] = []
    for pod in pods:
        ref = get_controller_of(pod)
        if ref is None:
            unmanaged.append(str(meta(pod).get("name")))
            continue
        refs.setdefault(str(ref.get("uid")), (str(meta(pod).get("namespace") or ""), ref))
    return refs, unmanaged


Scales = Mapping[str, tuple[str, int] | None]


def expected_pods(pdb: Mapping[str, Any], pods: Sequence[Obj], scales: Scales) -> tuple[int, int, list[str]]:
    """getExpectedPodCount: (expectedPods, desiredHealthy, unmanaged pod names).

    ``scales`` maps the uid of a pod's controller reference to the controller that decides the
    scale (a ReplicaSet's Deployment) as (its uid, its replicas), None when it cannot be found;
    each controller counts once, however many ReplicaSets of it own pods."""
    pdb_spec = pdb.get("spec") or {}
    max_unavailable, min_available = pdb_spec.get("maxUnavailable"), pdb_spec.get("minAvailable")
    if max_unavailable is None and min_available is None:
        return 0, 0, []
    if not uses_scale(pdb):
        return len(pods), int(min_available or 0), []
    controllers: dict[str, int] = {}
    for pod in pods:
        ref = get_controller_of(pod)
        if ref is None:
            continue
        found = scales.get(str(ref.get("uid")))
        if found is None:
            raise SyncError(f'found no controllers for pod "{meta(pod).get("name")}"')
        controllers[found[0]] = found[1]
    _, unmanaged = controller_refs(pods)
    expected = sum(controllers.values())
    if max_unavailable is not None:
        desired = max(0, expected - scaled_value(max_unavailable, expected, round_up=True))
    else:
        desired = scaled_value(min_available, expected, round_up=True)
    return expected, desired, unmanaged


def disrupted_pod_map(pdb: Mapping[str, Any], pods: Sequence[Obj], now: datetime) -> tuple[dict[str, str], datetime | None]:
    """buildDisruptedPodMap: the entries still waiting for their pod's deletion, and the earliest expiry."""
    recorded: Mapping[str, Any] = (pdb.get("status") or {}).get("disruptedPods") or {}
    kept: dict[str, str] = {}
    recheck: datetime | None = None
    for pod in pods:
        name = str(meta(pod).get("name"))
        if meta(pod).get("deletionTimestamp") or name not in recorded:
            continue  # being deleted already (or not evicted): the entry has done its job
        when = parse_time(recorded[name])
        if when is None:
            continue
        expires = when + DELETION_TIMEOUT
        if expires < now:
            continue  # the eviction did not delete it after all
        kept[name] = recorded[name]
        if recheck is None or expires < recheck:
            recheck = expires
    return kept, recheck


def current_healthy(pods: Sequence[Obj], disrupted: Mapping[str, str], now: datetime) -> int:
    count = 0
    for pod in pods:
        if meta(pod).get("deletionTimestamp"):
            continue
        when = parse_time(disrupted.get(str(meta(pod).get("name"))))
        if when is not None and when + DELETION_TIMEOUT > now:
            continue
        if is_pod_ready(pod):
            count += 1
    return count


def set_condition(conditions: list[Obj], *, status: str, reason: str, message: str, generation: int,
                  now: datetime) -> list[Obj]:
    """apimeta.SetStatusCondition for the DisruptionAllowed condition (on a copy)."""
    out = [dict(c) for c in conditions]
    found = next((c for c in out if c.get("type") == CONDITION), None)
    wanted = {"type": CONDITION, "status": status, "observedGeneration": generation, "reason": reason,
              "message": message}
    if found is None:
        out.append({**wanted, "lastTransitionTime": rfc3339(now)})
    else:
        if found.get("status") != status:
            found["lastTransitionTime"] = rfc3339(now)
        found.update(wanted)
    return out


def allowed_condition(state: Obj, now: datetime) -> list[Obj]:
    """UpdateDisruptionAllowedCondition."""
    allowed = int(state.get("disruptionsAllowed") or 0) > 0
    return set_condition(list(state.get("conditions") or []), status="True" if allowed else "False",
                         reason=SUFFICIENT if allowed else INSUFFICIENT, message="",
                         generation=int(state.get("observedGeneration") or 0), now=now)


def conditions_up_to_date(pdb: Obj) -> bool:
    state = pdb.get("status") or {}
    cond = next((c for c in state.get("conditions") or [] if c.get("type") == CONDITION), None)
    if cond is None or int(state.get("observedGeneration") or 0) != int(meta(pdb).get("generation") or 0):
        return False
    if int(state.get("disruptionsAllowed") or 0) > 0:
        return cond.get("status") == "True" and cond.get("reason") == SUFFICIENT
    return cond.get("status") == "False" and cond.get("reason") == INSUFFICIENT


def plan(pdb: Obj, pods: Sequence[Obj], scales: Scales, *, now: datetime) -> Plan:
    """trySync + updatePdbStatus; raises ``SyncError`` (the executor then writes ``fail_safe``)."""
    mine = [p for p in pods if selects(pdb, p)]
    expected, desired, unmanaged = expected_pods(pdb, mine, scales)
    disrupted, recheck = disrupted_pod_map(pdb, mine, now)
    healthy = current_healthy(mine, disrupted, now)
    allowed = healthy - desired
    if expected <= 0 or allowed <= 0:
        allowed = 0
    state = pdb.get("status") or {}
    generation = int(meta(pdb).get("generation") or 0)
    recheck_after = max(0.0, (recheck - now).total_seconds()) if recheck is not None else None
    if (state.get("currentHealthy") == healthy and state.get("desiredHealthy") == desired
            and state.get("expectedPods") == expected and state.get("disruptionsAllowed") == allowed
            and (state.get("disruptedPods") or {}) == disrupted
            and state.get("observedGeneration") == generation and conditions_up_to_date(pdb)):
        return Plan(None, recheck_after, unmanaged, len(mine))
    new: Obj = {"disruptionsAllowed": allowed, "currentHealthy": healthy, "desiredHealthy": desired,
                "expectedPods": expected, "observedGeneration": generation}
    if disrupted:
        new["disruptedPods"] = disrupted
    new["conditions"] = allowed_condition({**new, "conditions": copy.deepcopy(state.get("conditions") or [])}, now)
    return Plan(new, recheck_after, unmanaged, len(mine))


def stale_disruption_wait(pod: Obj, now: datetime, *,
                          timeout: timedelta = STALE_POD_DISRUPTION_TIMEOUT) -> float | None:
    """nonTerminatingPodHasStaleDisruptionCondition: None when the pod has no DisruptionTarget=True to
    clear (it is being deleted, terminal, or the kubelet set it), else the seconds until it is stale."""
    if meta(pod).get("deletionTimestamp"):
        return None
    state = pod.get("status") or {}
    cond = next((c for c in state.get("conditions") or [] if c.get("type") == "DisruptionTarget"), None)
    if (cond is None or cond.get("status") != "True" or cond.get("reason") == "TerminationByKubelet"
            or state.get("phase") in ("Succeeded", "Failed")):
        return None
    since = parse_time(cond.get("lastTransitionTime"))
    if since is None:
        return 0.0
    return max(0.0, (since + timeout - now).total_seconds())


def cleared_disruption(conditions: Sequence[Obj], now: datetime) -> list[Obj]:
    """UpdatePodCondition(DisruptionTarget=False): the eviction that set it never deleted the pod."""
    kept = [dict(c) for c in conditions if c.get("type") != "DisruptionTarget"]
    return kept + [{"type": "DisruptionTarget", "status": "False", "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(now)}]


def fail_safe(pdb: Obj, message: str, *, now: datetime) -> Obj:
    """failSafe: no disruptions until a sync succeeds again."""
    state = copy.deepcopy(pdb.get("status") or {})
    state["disruptionsAllowed"] = 0
    state["conditions"] = set_condition(list(state.get("conditions") or []), status="False", reason=SYNC_FAILED,
                                        message=message, generation=int(state.get("observedGeneration") or 0),
                                        now=now)
    return state
