"""The PersistentVolume binder's decisions: what to write for one claim or one volume (pure).

After pkg/controller/volume/persistentvolume (``syncClaim``/``syncVolume``, ``bind``,
``reclaimVolume``). Data flow: the executor (``controllers.persistentvolume``) hands a claim or a
volume plus the cached volumes, claims and classes to ``plan_claim`` / ``plan_volume`` -> a list
of actions (data) -> for each write action ``apply_action(action, latest object)`` gives the
object to PUT (None: already so), so a bind's four writes (the volume's claimRef, its phase, the
claim's volumeName, its status) each start from the newest version.

Claims:
- an unbound claim without ``storageClassName`` (nil) gets the default class (retroactive
  default StorageClass assignment);
- an unbound claim without ``volumeName`` binds the smallest matching Available volume
  (``machinery.volumematch``); a WaitForFirstConsumer claim waits (the scheduler pre-binds a
  volume or sets ``volume.kubernetes.io/selected-node``); with no volume, a claim of a class
  with a provisioner gets the ``volume.kubernetes.io/storage-provisioner`` annotation and waits
  for that provisioner (for ``minik8s.io/local-path``: ``controllers.localprovisioner``);
- a claim naming a volume binds it if the volume is free or pre-bound to it;
- a bound claim (``pv.kubernetes.io/bind-completed``) whose volume is gone or taken is Lost.

Volumes: no claimRef -> Available; claim gone -> Released, then the reclaim policy: Retain keeps
it Released; Delete of a provisioned volume is left to whoever provisioned it (for local-path
volumes the kubelet of the volume's node removes the directory and the PV); Delete or Recycle of
a static volume fails (no deleter plugin here) and the volume becomes Failed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from machinery.volumematch import (ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER,
                                   ANN_PROVISIONED_BY, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER, NO_PROVISIONER,
                                   access_modes_fit, annotations_of, capacity, claim_key, claim_ref, delays_binding,
                                   find_matching_volume, is_bound_to, is_default_class, meta, name, requested, spec,
                                   storage_class_of, volume_mode)

Obj = Mapping[str, Any]

PV, PVC = "pv", "pvc"
MSG_WAIT_FIRST_CONSUMER = "waiting for first consumer to be created before binding"
MSG_NO_CLASS = "no persistent volumes available for this claim and no storage class is set"
MSG_LOST_REF = "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"
MSG_LOST_VOLUME = "Bound claim has lost its PersistentVolume. Data on the volume is lost!"
MSG_MISBOUND = "Two claims are bound to the same volume, this one is bound incorrectly"


def external_provisioning_message(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by "
            "the system administrator. If volume creation is delayed, please verify that the provisioner is running "
            "and correctly registered.")


# ------------------------------------------------------------------------------ actions
@dataclass(frozen=True)
class Write:
    """Change one object: ``kind`` pv/pvc, ``key`` its name (pv) or namespace/name (pvc);
    ``status`` writes go through /status. ``apply_action`` does the change."""

    kind: str
    key: str
    op: str  # bind-volume, unbind-volume, volume-phase, bind-claim, claim-status, annotate-claim, set-class
    status: bool = False
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    kind: str
    key: str
    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Wake:
    """Look at a claim again (a volume's sync found the binding half done)."""

    key: str


Action = Write | Event | Wake


def _set_phase(kind: str, key: str, phase: str, message: str = "") -> Write:
    return Write(kind, key, "volume-phase" if kind == PV else "claim-status", status=True,
                 args={"phase": phase, "message": message})


def apply_action(action: Write, obj: Obj) -> dict[str, Any] | None:
    """The object ``action`` asks for, made from ``obj`` (not mutated); None if nothing changes."""
    out: dict[str, Any] = copy.deepcopy(dict(obj))
    out_meta = out.setdefault("metadata", {})
    marks = out_meta.setdefault("annotations", {})
    out_spec = out.setdefault("spec", {})
    out_status = out.setdefault("status", {})
    args = action.args
    if action.op == "bind-volume":
        out_spec["claimRef"] = dict(args["claimRef"])
        if args.get("by_controller"):
            marks[ANN_BOUND_BY_CONTROLLER] = "yes"
    elif action.op == "unbind-volume":
        out_spec.pop("claimRef", None)
        marks.pop(ANN_BOUND_BY_CONTROLLER, None)
    elif action.op == "volume-phase":
        out_status["phase"] = args["phase"]
        if args.get("message"):
            out_status["message"] = args["message"]
        else:
            out_status.pop("message", None)
    elif action.op == "bind-claim":
        out_spec["volumeName"] = args["volume"]
        marks[ANN_BIND_COMPLETED] = "yes"
        if args.get("by_controller"):
            marks[ANN_BOUND_BY_CONTROLLER] = "yes"
    elif action.op == "claim-status":
        out_status["phase"] = args["phase"]
        for field_name in ("capacity", "accessModes"):
            if args.get(field_name) is not None:
                out_status[field_name] = copy.deepcopy(args[field_name])
            elif args["phase"] != "Bound":
                out_status.pop(field_name, None)
    elif action.op == "annotate-claim":
        marks.update(args["annotations"])
    elif action.op == "set-class":
        out_spec["storageClassName"] = args["class"]
    if not marks and meta(obj).get("annotations") != {}:
        out_meta.pop("annotations")
    if not out_status and "status" not in obj:
        out.pop("status")
    return None if out == obj else out


# ------------------------------------------------------------------------------ claims
def plan_claim(claim: Obj, volumes: Iterable[Obj], classes: Mapping[str, Obj]) -> list[Action]:
    """syncClaim: what one claim needs, given every cached volume and class (by name)."""
    if meta(claim).get("deletionTimestamp") is not None:
        return []
    volumes = list(volumes)
    if annotations_of(claim).get(ANN_BIND_COMPLETED):
        return _sync_bound_claim(claim, volumes)
    key = claim_key(claim)
    volume_name = str(spec(claim).get("volumeName") or "")
    if not volume_name:
        if spec(claim).get("storageClassName") is None and storage_class_of(claim) == "":
            default = _default_class(classes.values())
            if default is not None:
                return [Write(PVC, key, "set-class", args={"class": default})]
        delay = delays_binding(claim, classes)
        volume = find_matching_volume(claim, volumes, delay_binding=delay)
        if volume is not None:
            return _bind(volume, claim)
        return _pending(claim, classes, delay=delay)
    volume = next((v for v in volumes if name(v) == volume_name), None)
    if volume is None:
        return [_set_phase(PVC, key, "Pending")]
    if claim_ref(volume) is None:
        mismatch = _mismatch(volume, claim)
        if mismatch:
            return [_set_phase(PVC, key, "Pending"), Event(PVC, key, "Warning", "VolumeMismatch",
                                                           f'Cannot bind to requested volume "{volume_name}": {mismatch}')]
        return _bind(volume, claim)
    if is_bound_to(volume, claim):
        return _bind(volume, claim)
    return [_set_phase(PVC, key, "Pending"),
            Event(PVC, key, "Warning", "FailedBinding", f"volume \"{volume_name}\" already bound to a different claim.")]


def _mismatch(volume: Obj, claim: Obj) -> str:
    """checkVolumeSatisfyClaim: why a volume a claim names cannot be bound to it ("" when it can)."""
    if meta(volume).get("deletionTimestamp"):
        return f'the volume is marked for deletion "{name(volume)}"'
    if capacity(volume) < requested(claim):
        return "requested PV is too small"
    if storage_class_of(volume) != storage_class_of(claim):
        return "storageClassName does not match"
    if volume_mode(volume) != volume_mode(claim):
        return "incompatible volumeMode"
    if not access_modes_fit(claim, volume):
        return "incompatible accessMode"
    return ""


def _pending(claim: Obj, classes: Mapping[str, Obj], *, delay: bool) -> list[Action]:
    key = claim_key(claim)
    actions: list[Action] = [_set_phase(PVC, key, "Pending")]
    class_name = storage_class_of(claim)
    if delay and ANN_SELECTED_NODE not in annotations_of(claim):
        return actions + [Event(PVC, key, "Normal", "WaitForFirstConsumer", MSG_WAIT_FIRST_CONSUMER)]
    if not class_name:
        return actions + [Event(PVC, key, "Normal", "FailedBinding", MSG_NO_CLASS)]
    storage_class = classes.get(class_name)
    if storage_class is None:
        return actions + [Event(PVC, key, "Warning", "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{class_name}" not found')]
    provisioner = str(storage_class.get("provisioner") or "")
    if provisioner == NO_PROVISIONER:
        return actions + [Event(PVC, key, "Normal", "FailedBinding", "no persistent volumes available for this "
                                                                     "claim and no storage class is set")]
    marks = annotations_of(claim)
    if marks.get(ANN_STORAGE_PROVISIONER) != provisioner or marks.get(ANN_BETA_STORAGE_PROVISIONER) != provisioner:
        actions.append(Write(PVC, key, "annotate-claim", args={"annotations": {
            ANN_STORAGE_PROVISIONER: provisioner, ANN_BETA_STORAGE_PROVISIONER: provisioner}}))
        actions.append(Event(PVC, key, "Normal", "ExternalProvisioning", external_provisioning_message(provisioner)))
    return actions


def _bind(volume: Obj, claim: Obj) -> list[Action]:
    """bind(): the volume's claimRef and phase, then the claim's volumeName and status."""
    claim_meta = meta(claim)
    ref = {"kind": "PersistentVolumeClaim", "namespace": claim_meta.get("namespace"), "name": claim_meta.get("name"),
           "uid": claim_meta.get("uid"), "apiVersion": "v1", "resourceVersion": claim_meta.get("resourceVersion")}
    current = claim_ref(volume)
    volume_key, key = name(volume), claim_key(claim)
    actions: list[Action] = []
    if current is None or current.get("uid") != ref["uid"]:
        actions.append(Write(PV, volume_key, "bind-volume", args={"claimRef": ref, "by_controller": current is None}))
    actions.append(_set_phase(PV, volume_key, "Bound"))
    actions.append(Write(PVC, key, "bind-claim", args={"volume": volume_key,
                                                       "by_controller": not spec(claim).get("volumeName")}))
    volume_spec = spec(volume)
    actions.append(Write(PVC, key, "claim-status", status=True, args={
        "phase": "Bound", "capacity": volume_spec.get("capacity"), "accessModes": volume_spec.get("accessModes")}))
    return actions


def _sync_bound_claim(claim: Obj, volumes: list[Obj]) -> list[Action]:
    key = claim_key(claim)
    volume_name = str(spec(claim).get("volumeName") or "")
    if not volume_name:
        return [_set_phase(PVC, key, "Lost"), Event(PVC, key, "Warning", "ClaimLost", MSG_LOST_REF)]
    volume = next((v for v in volumes if name(v) == volume_name), None)
    if volume is None:
        return [_set_phase(PVC, key, "Lost"), Event(PVC, key, "Warning", "ClaimLost", MSG_LOST_VOLUME)]
    if claim_ref(volume) is None or is_bound_to(volume, claim):
        return _bind(volume, claim)
    return [_set_phase(PVC, key, "Lost"), Event(PVC, key, "Warning", "ClaimMisbound", MSG_MISBOUND)]


def _default_class(classes: Iterable[Obj]) -> str | None:
    defaults = sorted((c for c in classes if is_default_class(c)), key=name)
    if not defaults:
        return None
    return name(max(defaults, key=lambda c: str(meta(c).get("creationTimestamp") or "")))


# ------------------------------------------------------------------------------ volumes
def plan_volume(volume: Obj, claims: Mapping[str, Obj]) -> list[Action]:
    """syncVolume: what one volume needs, given the cached claims by namespace/name."""
    if meta(volume).get("deletionTimestamp") is not None:
        return []
    volume_key = name(volume)
    phase = (volume.get("status") or {}).get("phase")
    ref = claim_ref(volume)
    if ref is None or not ref.get("uid"):
        return [_set_phase(PV, volume_key, "Available")]
    claim = claims.get(f"{ref.get('namespace') or ''}/{ref.get('name') or ''}")
    if claim is not None and meta(claim).get("uid") != ref.get("uid"):
        claim = None  # deleted and made again: not the claim this volume was bound to
    if claim is None:
        if phase in ("Released", "Failed"):
            return _reclaim(volume) if phase == "Released" else []
        return [_set_phase(PV, volume_key, "Released")] + _reclaim(volume)
    claimed = str(spec(claim).get("volumeName") or "")
    if not claimed:
        return [Wake(claim_key(claim))]  # the claim's sync finishes the binding
    if claimed == volume_key:
        return [_set_phase(PV, volume_key, "Bound")]
    if ANN_PROVISIONED_BY in annotations_of(volume) and spec(volume).get("persistentVolumeReclaimPolicy") == "Delete":
        return [_set_phase(PV, volume_key, "Released")] + _reclaim(volume)
    if ANN_BOUND_BY_CONTROLLER in annotations_of(volume):
        return [Write(PV, volume_key, "unbind-volume"), _set_phase(PV, volume_key, "Available")]
    return []  # pre-bound by the user to a claim bound elsewhere: wait for the claim


def _reclaim(volume: Obj) -> list[Action]:
    """reclaimVolume after the claim is gone."""
    policy = spec(volume).get("persistentVolumeReclaimPolicy") or "Retain"
    volume_key = name(volume)
    if policy == "Retain":
        return []
    if policy == "Delete" and ANN_PROVISIONED_BY in annotations_of(volume):
        return []  # its provisioner deletes it (local-path: the kubelet of its node)
    if policy == "Delete":
        message = f'error getting deleter volume plugin for volume "{volume_key}": no deletable volume plugin matched'
        reason = "VolumeFailedDelete"
    else:
        message = "No recycler plugin found for the volume!"
        reason = "VolumeFailedRecycle"
    return [_set_phase(PV, volume_key, "Failed", message), Event(PV, volume_key, "Warning", reason, message)]


__all__ = ["Action", "Event", "PV", "PVC", "Wake", "Write", "apply_action", "external_provisioning_message",
           "plan_claim", "plan_volume"]
