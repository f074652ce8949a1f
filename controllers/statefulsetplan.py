"""The StatefulSet controller's decisions, as pure functions over wire dicts.

Role: DESIGN pattern 6 for ``controllers.statefulset``, after Kubernetes' pkg/controller/
statefulset (``getStatefulSetRevisions``, ``updateStatefulSet``, ``processReplica``,
``processCondemned``, ``updateStatus``, ``completeRollingUpdate``); member naming, pod bodies and
claim ownership live in ``controllers.statefulsetpods``, revisions in ``controllers.history``.

Data flow:

    the StatefulSet + its ControllerRevisions (informer cache)
        -> decide_revision: reuse the newest revision / renumber an equal older one (a rollback)
           / create a new one; the current revision is status.currentRevision (else the update one)
        -> the executor writes the revision and passes both revisions to
    plan(sts, pods, claims, current=..., update=..., collision_count=..., now=...)
        replicas  = the owned pods with ordinals in [start, start + replicas), placeholders for
                    the missing ones (built from the current revision below the partition, the
                    update revision otherwise); condemned = the others, highest ordinal first
        steps (each a list of actions run together; steps run in order, a failing step stops):
          OrderedReady: one action per step, stopping at the first pod that is missing (create it,
            its claims first), terminating, not Running and Ready, or not yet available
            (minReadySeconds); then condemned pods one at a time, highest first, only when every
            replica is healthy; Parallel: every replica's action at once, then every condemned
            pod's deletion at once
          RollingUpdate: once the replicas are settled, delete the highest-ordinal pod at or above
            the partition whose revision is not the update revision, one at a time, waiting for
            the replaced pod to be available; OnDelete: nothing (pods change when deleted)
          failed or succeeded pods are deleted (and recreated on a later sync);
          claims of a pod are created when missing and their ownerReferences follow
          persistentVolumeClaimRetentionPolicy; a claim being deleted blocks its pod ("pvc ... is
          being deleted"), as does a claim still owned by a previous pod of that name
        status: replicas, readyReplicas, currentReplicas, updatedReplicas, availableReplicas,
                currentRevision, updateRevision, collisionCount, observedGeneration (a finished
                RollingUpdate makes the update revision current)

Times come in as ``now``; nothing here reads a clock, does I/O or mutates its arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from controllers import history
from controllers.ownerrefs import Obj, controller_ref, is_deleting, meta, name_of
from controllers.replicasetplan import is_pod_available, is_pod_ready
from controllers.statefulsetpods import (claim_refs_for_policy, claim_refs_up_to_date, claims_for, has_stale_pod_ref,
                                         identity_labels, identity_matches, in_range, new_pod, ordinal_of,
                                         pod_revision, replicas_of, retention_policy, start_ordinal)


# ============================================================================ revisions
@dataclass(frozen=True)
class RevisionDecision:
    """What to do about the update revision: ``reuse`` ``revision`` as is, ``renumber`` it to
    ``number`` (a rollback to an older template), or ``create`` it (collision probing)."""

    action: Literal["reuse", "renumber", "create"]
    revision: Obj
    number: int
    collision_count: int


def revision_body(sts: Obj, *, number: int, collision_count: int) -> Obj:
    """``newRevision``: the template patch, the template's labels, the set's annotations."""
    rev = history.new_revision(sts, data=history.template_patch(sts), revision=number,
                               collision_count=collision_count, api_version="apps/v1", kind="StatefulSet")
    annotations = meta(sts).get("annotations") or {}
    if annotations:
        rev["metadata"]["annotations"] = dict(annotations)
    return rev


def decide_revision(sts: Obj, revisions: Sequence[Obj]) -> RevisionDecision:
    """``getStatefulSetRevisions``' update half over the set's own (sorted) revisions."""
    ordered = history.sort_revisions(revisions)
    collision = int((sts.get("status") or {}).get("collisionCount") or 0)
    number = history.next_revision(ordered)
    candidate = revision_body(sts, number=number, collision_count=collision)
    equal = history.find_equal_revisions(ordered, candidate)
    if equal and history.equal_data(ordered[-1], equal[-1]):
        return RevisionDecision("reuse", ordered[-1], history.revision_number(ordered[-1]), collision)
    if equal:
        return RevisionDecision("renumber", equal[-1], number, collision)
    return RevisionDecision("create", candidate, number, collision)


def current_revision(sts: Obj, revisions: Sequence[Obj], update: Obj) -> Obj:
    """The revision named by ``status.currentRevision``; the update revision when there is none."""
    wanted = (sts.get("status") or {}).get("currentRevision")
    return next((r for r in revisions if name_of(r) == wanted), update)


# ============================================================================ actions
@dataclass(frozen=True)
class CreatePod:
    pod: Obj
    claims: tuple[Obj, ...] = ()  # missing claims, created first


@dataclass(frozen=True)
class CreateClaims:
    pod_name: str
    claims: tuple[Obj, ...]


@dataclass(frozen=True)
class DeletePod:
    pod: Obj
    why: Literal["failed", "condemned", "update"]


@dataclass(frozen=True)
class UpdateClaimRefs:
    claim: Obj
    refs: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class FixIdentity:
    pod: Obj
    labels: dict[str, str]


Action = CreatePod | CreateClaims | DeletePod | UpdateClaimRefs | FixIdentity


@dataclass
class StatefulSetPlan:
    steps: list[list[Action]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None
    # Why the sync could not go on (reported as an error after the status is written).
    error: str | None = None
    error_pod: str = ""  # the pod the error stopped
    waiting_for: str = ""

    def add(self, action: Action) -> None:
        self.steps.append([action])


# ============================================================================ pod predicates
def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_created(pod: Obj) -> bool:
    """``isCreated``: a pod the API server has (a placeholder has no phase)."""
    return bool(_phase(pod))


def running_and_ready(pod: Obj) -> bool:
    return _phase(pod) == "Running" and is_pod_ready(pod)


def _unavailable(pod: Obj, min_ready: int, now: datetime) -> bool:
    """``isUnavailable``: not created, terminating or not available."""
    return not is_created(pod) or is_deleting(pod) or not is_pod_available(pod, min_ready, now)


# ============================================================================ status
def replica_status(sts: Obj, pods: Sequence[Obj], *, current: str, update: str, collision_count: int,
                   now: datetime) -> dict[str, Any]:
    """``updateStatus`` + ``completeRollingUpdate``, zero counts left out as Go's omitempty does
    (``replicas``, ``availableReplicas`` and ``collisionCount`` are always written)."""
    min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    counts = dict.fromkeys(("replicas", "readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"), 0)
    for pod in pods:
        if not is_created(pod):
            continue
        counts["replicas"] += 1
        if running_and_ready(pod):
            counts["readyReplicas"] += 1
            if is_pod_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if not is_deleting(pod):
            revision = pod_revision(pod)
            counts["currentReplicas"] += revision == current
            counts["updatedReplicas"] += revision == update
    want = replicas_of(sts)
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    if rolling and counts["updatedReplicas"] == counts["readyReplicas"] == counts["replicas"] == want:
        counts["currentReplicas"], current = counts["updatedReplicas"], update
    out: dict[str, Any] = {"replicas": counts["replicas"]}
    generation = int(meta(sts).get("generation") or 0)
    for key, value in (("observedGeneration", generation), ("readyReplicas", counts["readyReplicas"]),
                       ("currentReplicas", counts["currentReplicas"]), ("updatedReplicas", counts["updatedReplicas"]),
                       ("currentRevision", current), ("updateRevision", update)):
        if value:
            out[key] = value
    out["collisionCount"] = collision_count
    out["availableReplicas"] = counts["availableReplicas"]
    conditions = (sts.get("status") or {}).get("conditions")
    if conditions:
        out["conditions"] = conditions
    return out


def status_changed(sts: Obj, status: Mapping[str, Any]) -> bool:
    return (sts.get("status") or {}) != status


# ============================================================================ the plan
def _missing_claims(sts: Obj, ordinal: int, claims: Mapping[str, Obj]) -> tuple[list[Obj], str | None]:
    """The member's claims that do not exist yet (bodies with the set's reference when the policy
    wants it), or the error of a claim that is being deleted."""
    when_deleted, _ = retention_policy(sts)
    missing = []
    for body in claims_for(sts, ordinal):
        existing = claims.get(name_of(body))
        if existing is None:
            if when_deleted == "Delete":
                body["metadata"]["ownerReferences"] = [controller_ref(sts, api_version="apps/v1", kind="StatefulSet")]
            missing.append(body)
        elif is_deleting(existing):
            return [], f"pvc {name_of(body)} is being deleted"
    return missing, None


def _claim_fixes(sts: Obj, pod: Obj, claims: Mapping[str, Obj]) -> list[UpdateClaimRefs]:
    out = []
    for body in claims_for(sts, ordinal_of(pod)):
        existing = claims.get(name_of(body))
        if existing is not None and not is_deleting(existing) and not claim_refs_up_to_date(existing, sts, pod):
            out.append(UpdateClaimRefs(existing, tuple(claim_refs_for_policy(existing, sts, pod))))
    return out


def _claim_is_stale(sts: Obj, ordinal: int, name: str, claims: Mapping[str, Obj]) -> bool:
    """``PodClaimIsStale``: under whenScaled Delete, a claim still owned by an earlier pod."""
    if retention_policy(sts)[1] == "Retain":
        return False
    return any(has_stale_pod_ref(claims[n], name, "") for n in (name_of(c) for c in claims_for(sts, ordinal))
               if n in claims)


def _placeholder(current_set: Obj, update_set: Obj, ordinal: int, *, current: str, update: str) -> Obj:
    """``newVersionedStatefulSetPod``: below the partition a new pod gets the current revision."""
    strategy = (update_set.get("spec") or {}).get("updateStrategy") or {}
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type") == "RollingUpdate" and isinstance(rolling, dict) and \
            ordinal < start_ordinal(update_set) + int(rolling.get("partition") or 0):
        return new_pod(current_set, ordinal, current)
    return new_pod(update_set, ordinal, update)


def plan(sts: Obj, pods: Sequence[Obj], claims: Mapping[str, Obj], *, current_set: Obj, update_set: Obj,
         current: str, update: str, collision_count: int, now: datetime) -> StatefulSetPlan:
    """One sync of ``sts`` over its owned ``pods`` and its namespace's ``claims`` (by name).

    ``current_set``/``update_set`` are ``sts`` with the current/update revision's template
    (``history.apply_revision``), ``current``/``update`` those revisions' names.
    """
    out = StatefulSetPlan()
    spec = sts.get("spec") or {}
    min_ready = int(spec.get("minReadySeconds") or 0)
    start, count = start_ordinal(sts), replicas_of(sts)
    by_ordinal: dict[int, Obj] = {}
    condemned: list[Obj] = []
    for pod in pods:
        ordinal = ordinal_of(pod)
        if in_range(sts, ordinal):
            by_ordinal[ordinal] = pod
        elif ordinal >= 0:
            condemned.append(pod)
    condemned.sort(key=ordinal_of, reverse=True)
    replicas = [by_ordinal.get(o) or _placeholder(current_set, update_set, o, current=current, update=update)
                for o in range(start, start + count)]
    out.status = replica_status(sts, [*replicas, *condemned], current=current, update=update,
                                collision_count=collision_count, now=now)
    if min_ready > 0 and out.status.get("readyReplicas", 0) > out.status["availableReplicas"]:
        out.requeue_after = float(min_ready)  # ready pods become available then: count them
    if is_deleting(sts):
        return out
    monotonic = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    if not _process_replicas(out, sts, replicas, claims, update_set=update_set, monotonic=monotonic,
                             min_ready=min_ready, now=now):
        return out
    fixes: list[Action] = [fix for pod in condemned for fix in _claim_fixes(update_set, pod, claims)]
    if fixes:
        out.steps.extend([[f] for f in fixes] if monotonic else [fixes])
        if monotonic:
            return out
    if not _process_condemned(out, replicas, condemned, monotonic=monotonic, min_ready=min_ready, now=now):
        return out
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return out
    partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
    for target in range(len(replicas) - 1, partition - 1, -1):
        pod = replicas[target]
        if pod_revision(pod) != update and not is_deleting(pod):
            out.add(DeletePod(pod, "update"))
            return out
        if _unavailable(pod, min_ready, now):
            out.waiting_for = f"pod {name_of(pod)} to update"
            _requeue_for_availability(out, pod, min_ready)
            return out
    return out


def _requeue_for_availability(out: StatefulSetPlan, pod: Obj, min_ready: int) -> None:
    if min_ready > 0 and running_and_ready(pod) and not is_deleting(pod):
        out.requeue_after = float(min_ready)


def _process_replicas(out: StatefulSetPlan, sts: Obj, replicas: list[Obj], claims: Mapping[str, Obj], *,
                      update_set: Obj, monotonic: bool, min_ready: int, now: datetime) -> bool:
    """``processReplica`` over every replica; False when the sync must stop here."""
    parallel: list[Action] = []

    def act(action: Action) -> None:
        if monotonic:
            out.add(action)
        else:
            parallel.append(action)

    for pod in replicas:
        ordinal, name = ordinal_of(pod), name_of(pod)
        phase = _phase(pod)
        if phase in ("Failed", "Succeeded"):
            if not is_deleting(pod):
                act(DeletePod(pod, "failed"))
            if monotonic:
                return False
            continue
        if not is_created(pod):
            if _claim_is_stale(sts, ordinal, name, claims):
                out.waiting_for = f"stale claims of pod {name}"
                if monotonic:
                    return False
                continue
            missing, error = _missing_claims(sts, ordinal, claims)
            if error is not None:
                out.error, out.error_pod = error, name
                if monotonic:
                    return False
                continue
            act(CreatePod(pod, tuple(missing)))
            if monotonic:
                return False
            continue
        if phase == "Pending":
            missing, error = _missing_claims(sts, ordinal, claims)
            if error is not None:
                out.error, out.error_pod = error, name
            elif missing:
                act(CreateClaims(name, tuple(missing)))
        if monotonic and is_deleting(pod):
            out.waiting_for = f"pod {name} to terminate"
            return False
        if monotonic and not running_and_ready(pod):
            out.waiting_for = f"pod {name} to be Running and Ready"
            return False
        if monotonic and not is_pod_available(pod, min_ready, now):
            out.waiting_for = f"pod {name} to be available"
            _requeue_for_availability(out, pod, min_ready)
            return False
        if not identity_matches(sts, pod):
            act(FixIdentity(pod, identity_labels(sts, ordinal)))
        for fix in _claim_fixes(update_set, pod, claims):
            act(fix)
    if parallel:
        out.steps.append(parallel)
    return True


def _process_condemned(out: StatefulSetPlan, replicas: list[Obj], condemned: list[Obj], *, monotonic: bool,
                       min_ready: int, now: datetime) -> bool:
    """``processCondemned``: scale down from the highest ordinal; False when the sync must stop."""
    first_unhealthy = next((p for p in [*replicas, *reversed(condemned)] if _unavailable(p, min_ready, now)), None)
    deletions: list[Action] = []
    for pod in condemned:
        if is_deleting(pod):
            if monotonic:
                out.waiting_for = f"pod {name_of(pod)} to terminate before scaling down"
                return False
            continue
        if monotonic and pod is not first_unhealthy and (not running_and_ready(pod)
                                                         or not is_pod_available(pod, min_ready, now)):
            out.waiting_for = f"pod {name_of(first_unhealthy or pod)} before scaling down"
            return False
        if monotonic:
            out.add(DeletePod(pod, "condemned"))
            return False
        deletions.append(DeletePod(pod, "condemned"))
    if deletions:
        out.steps.append(deletions)
    return True


__all__ = [
    "Action", "CreateClaims", "CreatePod", "DeletePod", "FixIdentity", "RevisionDecision", "StatefulSetPlan",
    "UpdateClaimRefs", "current_revision", "decide_revision", "is_created", "plan", "replica_status",
    "revision_body", "running_and_ready", "status_changed",
]
