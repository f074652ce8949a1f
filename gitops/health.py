"""Is an applied object healthy yet? (pure) The reconciler asks it of every inventory object.

Data flow: a live object from the informer cache -> ``health(obj)`` -> ``(state, message)`` with
state ``Healthy``, ``Progressing`` or ``Failed``, after kstatus (what Flux's health checks use):
- Deployment: the controller saw this generation, every replica is updated and available;
- ReplicaSet, StatefulSet, ReplicationController: ready replicas reach the wanted count;
- DaemonSet: every scheduled pod is updated and available;
- Pod: Running with every container ready, or Succeeded; Failed is Failed;
- Job: Complete, or Failed once its Failed condition is True;
- CustomResourceDefinition: Established;
- anything else: healthy once it exists.
"""

from __future__ import annotations

from typing import Any, Mapping

HEALTHY, PROGRESSING, FAILED = "Healthy", "Progressing", "Failed"


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def _observed(obj: Mapping[str, Any]) -> bool:
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation is None or (observed is not None and int(observed) >= int(generation))


def health(obj: Mapping[str, Any]) -> tuple[str, str]:
    kind = str(obj.get("kind") or "")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return PROGRESSING, "being deleted"
    if kind == "Deployment":
        if not _observed(obj):
            return PROGRESSING, "the new generation is not observed yet"
        progressing = _condition(obj, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            return FAILED, str(progressing.get("message") or "progress deadline exceeded")
        want = int(spec.get("replicas", 1))
        updated, available = int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0)
        if updated < want or available < want or int(status.get("replicas") or 0) > updated:
            return PROGRESSING, f"{available} of {want} replicas available, {updated} updated"
        return HEALTHY, f"{available} of {want} replicas available"
    if kind in ("ReplicaSet", "StatefulSet", "ReplicationController"):
        want = int(spec.get("replicas", 1))
        ready = int(status.get("readyReplicas") or 0)
        if not _observed(obj) or ready < want:
            return PROGRESSING, f"{ready} of {want} replicas ready"
        return HEALTHY, f"{ready} of {want} replicas ready"
    if kind == "DaemonSet":
        want = int(status.get("desiredNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        if not _observed(obj) or available < want or updated < want:
            return PROGRESSING, f"{available} of {want} pods available"
        return HEALTHY, f"{available} of {want} pods available"
    if kind == "Pod":
        phase = status.get("phase")
        if phase == "Succeeded":
            return HEALTHY, "succeeded"
        if phase == "Failed":
            return FAILED, str(status.get("message") or status.get("reason") or "pod failed")
        ready_condition = _condition(obj, "Ready")
        if phase == "Running" and ready_condition is not None and ready_condition.get("status") == "True":
            return HEALTHY, "running and ready"
        return PROGRESSING, f"phase {phase or 'Pending'}"
    if kind == "Job":
        for name, state in (("Complete", HEALTHY), ("Failed", FAILED)):
            c = _condition(obj, name)
            if c is not None and c.get("status") == "True":
                return state, str(c.get("message") or name.lower())
        return PROGRESSING, "running"
    if kind == "CustomResourceDefinition":
        c = _condition(obj, "Established")
        if c is not None and c.get("status") == "True":
            return HEALTHY, "established"
        return PROGRESSING, "not established yet"
    return HEALTHY, "exists"
