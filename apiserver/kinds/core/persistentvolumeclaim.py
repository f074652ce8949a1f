"""PersistentVolumeClaim (core/v1): a user's request for storage, bound to one PersistentVolume.

After pkg/registry/core/persistentvolumeclaim and ``ValidatePersistentVolumeClaim(Update)``:
``volumeMode`` defaults to ``Filesystem`` and a new claim starts ``{phase: Pending}`` (the binder
writes the phase, capacity and access modes through ``/status``); at least one access mode and a
positive ``resources.requests.storage`` are required. After creation the spec is immutable except
``volumeName`` (set once, by the binder), a nil ``storageClassName`` being set (the retroactive
default class), and ``resources.requests`` of a bound claim. The PersistentVolumeClaimResize
admission then lets a bound claim grow only when its class has ``allowVolumeExpansion``.

The StorageObjectInUseProtection admission adds the finalizer ``kubernetes.io/pvc-protection``
(the pvc-protection controller removes it once no pod uses the deleted claim). The
DefaultStorageClass admission runs in ``prepare_for_create`` too: a claim created without
``storageClassName`` (and without the beta class annotation) gets the default StorageClass, read
from the stored classes (``CreateContext.stored``). ``kubectl get pvc`` columns are
printPersistentVolumeClaim's (kubectl 1.32).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery import errors
from machinery.quantity import QuantityError, parse_quantity

from ...openapi.facts import Facts
from ...validation.fielderrors import (Causes, Obj, child, dict_at, each, forbidden, get_map, get_opt_map, get_str,
                                       get_strs, invalid, not_supported, required)
from ...validation.formats import dns1123_subdomain_errors
from ...validation.objectmeta import validate_label_selector
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, meta, name_of, spec, status
from ..common.defaulting import set_if_unset
from ..storage.storageclass import default_class_name, storage_class_named
from .persistentvolume import (BETA_CLASS_ANNOTATION, VOLUME_MODES, access_mode_causes, access_modes_string,
                               add_finalizer, positive_quantity_causes, volume_class)

_ATOMIC_LIST = Facts(list_type="atomic")
PVC_PROTECTION = "kubernetes.io/pvc-protection"
IMMUTABLE_SPEC = "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"


class PersistentVolumeClaimStrategy(Strategy):
    kind = "PersistentVolumeClaim"
    plural = "persistentvolumeclaims"
    singular = "persistentvolumeclaim"
    short_names = ("pvc",)
    subresources = ("status",)
    model = "V1PersistentVolumeClaim"
    initial_status: Obj = {"phase": "Pending"}
    columns = (
        NAME,
        Column("Status", description="phase represents the current phase of PersistentVolumeClaim."),
        Column("Volume", description="volumeName is the binding reference to the PersistentVolume backing this "
               "claim."),
        Column("Capacity", description="capacity represents the actual resources of the underlying volume."),
        Column("Access Modes", description="accessModes contains the actual access modes the volume backing the "
               "PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1"),
        Column("StorageClass", description="StorageClass of the pvc"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
        AGE,
        Column("VolumeMode", priority=1, description="volumeMode defines what type of volume is required by the "
               "claim. Value of Filesystem is implied when not included in claim spec."),
    )
    type_facts = {
        "V1PersistentVolumeClaimSpec": {"accessModes": _ATOMIC_LIST},
        "V1PersistentVolumeClaimStatus": {"accessModes": _ATOMIC_LIST},
    }
    # Go's field numbers (k8s.io/api/core/v1/generated.proto; the spec's table is the pod volumes' one).
    protobuf_messages = {
        "PersistentVolumeClaim": (
            "metadata:1:ObjectMeta spec:2:PersistentVolumeClaimSpec status:3:PersistentVolumeClaimStatus"),
        "PersistentVolumeClaimStatus": (
            "phase:1:s accessModes:2:*s capacity:3:{Quantity} conditions:4:*PersistentVolumeClaimCondition "
            "allocatedResources:5:{Quantity} allocatedResourceStatuses:7:{s} "
            "currentVolumeAttributesClassName:8:s!"),
        "PersistentVolumeClaimCondition": (
            "type:1:s status:2:s lastProbeTime:3:Time lastTransitionTime:4:Time reason:5:s message:6:s"),
    }

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        return {**super().field_values(obj), "name": name_of(obj)}

    @property
    def all_selectable_fields(self) -> tuple[str, ...]:
        return super().all_selectable_fields + ("name",)

    def defaults(self, obj: Obj) -> None:
        claim_spec = obj.get("spec")
        if isinstance(claim_spec, dict):
            set_if_unset(claim_spec, "volumeMode", "Filesystem")

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        """Status reset, the StorageObjectInUseProtection finalizer, the DefaultStorageClass admission."""
        super().prepare_for_create(obj, ctx)
        add_finalizer(obj, PVC_PROTECTION)
        claim_spec = obj.get("spec")
        annotations = dict_at(dict_at(obj, "metadata"), "annotations")
        if not isinstance(claim_spec, dict) or claim_spec.get("storageClassName") is not None \
                or BETA_CLASS_ANNOTATION in annotations:
            return
        chosen = default_class_name(ctx.stored("storageclasses.storage.k8s.io"))
        if chosen:
            claim_spec["storageClassName"] = chosen

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        """The PersistentVolumeClaimResize admission: a bound claim grows only if its class allows it."""
        before, after = _request(old), _request(new)
        if before is None or after is None or after <= before or status(old).get("phase") != "Bound":
            return
        class_name = volume_class(new)
        found = storage_class_named(ctx.stored("storageclasses.storage.k8s.io"), class_name) if class_name else None
        if found is None or found.get("allowVolumeExpansion") is not True:
            raise errors.ForbiddenError(message=(
                f'persistentvolumeclaims "{name_of(new)}" is forbidden: only dynamically provisioned pvc can be '
                "resized and the storageclass that provisions the pvc must support resize"))

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        validate_claim_spec(get_map(obj, "spec", "", causes), "spec", causes)
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return claim_update_causes(new, old)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        claim_spec, claim_status = spec(obj), status(obj)
        phase = "Terminating" if meta(obj).get("deletionTimestamp") else str(claim_status.get("phase") or "")
        capacity = access = ""
        if claim_spec.get("volumeName"):
            access = access_modes_string(claim_status.get("accessModes"))
            found = claim_status.get("capacity")
            capacity = str((found if isinstance(found, Mapping) else {}).get("storage") or "0")
        vac = claim_spec.get("volumeAttributesClassName")
        mode = claim_spec.get("volumeMode")
        return [name_of(obj), phase, str(claim_spec.get("volumeName") or ""), capacity, access, volume_class(obj),
                "<unset>" if vac is None else str(vac), age(obj, now), "<unset>" if mode is None else str(mode)]


def validate_claim_spec(claim_spec: Obj, path: str, causes: Causes) -> None:
    """ValidatePersistentVolumeClaimSpec (claims and StatefulSet volumeClaimTemplates)."""
    causes.extend(access_mode_causes(get_strs(claim_spec, "accessModes", path, causes), child(path, "accessModes"),
                                     required_detail="at least 1 access mode is required"))
    selector = get_opt_map(claim_spec, "selector", path, causes)
    if selector is not None:
        validate_label_selector(selector, child(path, "selector"), causes)
    resources = get_map(claim_spec, "resources", path, causes)
    requests = get_map(resources, "requests", child(path, "resources"), causes)
    storage_path = f"{child(path, 'resources')}[storage]"
    if "storage" not in requests:
        causes.append(required(storage_path))
    else:
        causes.extend(positive_quantity_causes(requests["storage"], storage_path))
    class_name = get_str(claim_spec, "storageClassName", path, causes)
    if class_name:
        causes.extend(each(child(path, "storageClassName"), class_name, dns1123_subdomain_errors(class_name)))
    mode = get_str(claim_spec, "volumeMode", path, causes)
    if mode and mode not in VOLUME_MODES:
        causes.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    get_str(claim_spec, "volumeName", path, causes)
    for source in ("dataSource", "dataSourceRef"):
        ref = get_opt_map(claim_spec, source, path, causes)
        if ref is None:
            continue
        ref_path = child(path, source)
        for field_name in ("name", "kind"):
            if not get_str(ref, field_name, ref_path, causes):
                causes.append(required(child(ref_path, field_name)))
        if not get_str(ref, "apiGroup", ref_path, causes) and ref.get("kind") != "PersistentVolumeClaim":
            causes.append(invalid(ref_path, ref.get("kind"),
                                  "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))


def claim_update_causes(new: Obj, old: Obj) -> Causes:
    """ValidatePersistentVolumeClaimUpdate's comparisons with the stored claim."""
    causes: Causes = []
    new_spec, old_spec = dict(spec(new)), dict(spec(old))
    if not old_spec.get("volumeName"):
        _copy_key(new_spec, old_spec, "volumeName")
    old_annotations = meta(old).get("annotations") or {}
    new_annotations = meta(new).get("annotations") or {}
    if old_annotations.get(BETA_CLASS_ANNOTATION) != new_annotations.get(BETA_CLASS_ANNOTATION):
        causes.append(invalid(f"metadata.annotations[{BETA_CLASS_ANNOTATION}]",
                              new_annotations.get(BETA_CLASS_ANNOTATION) or "", "field is immutable"))
    if old_spec.get("storageClassName") is None and new_spec.get("storageClassName") is not None and (
            BETA_CLASS_ANNOTATION not in old_annotations
            or old_annotations[BETA_CLASS_ANNOTATION] == new_spec["storageClassName"]):
        old_spec["storageClassName"] = new_spec["storageClassName"]
    if status(new).get("phase") == "Bound":
        old_spec["resources"] = _with_request(dict_at(old_spec, "resources"), new_spec)
    for ignored in ("volumeAttributesClassName",):
        old_spec.pop(ignored, None)
        new_spec.pop(ignored, None)
    if new_spec != old_spec:
        causes.append(forbidden("spec", IMMUTABLE_SPEC))
    before, after = _request(old), _request(new)
    if before is not None and after is not None and after < before:
        capacity = _quantity((dict_at(dict(status(old)), "capacity")).get("storage"))
        # RecoverVolumeExpansionFailure (beta, on): a request may shrink back, but not to the capacity.
        if after <= (capacity or 0):
            causes.append(forbidden("spec.resources.requests.storage", "field can not be less than status.capacity"))
    if spec(new).get("volumeMode") != spec(old).get("volumeMode"):
        causes.append(invalid("volumeMode", spec(new).get("volumeMode"), "field is immutable"))
    return causes


def _copy_key(source: Obj, target: Obj, key: str) -> None:
    if key in source:
        target[key] = source[key]
    else:
        target.pop(key, None)


def _with_request(old_resources: Obj, new_spec: Obj) -> Obj:
    """The old resources with the new requests (a bound claim's requests may change)."""
    new_resources = new_spec.get("resources")
    out = dict(old_resources)
    if isinstance(new_resources, dict) and "requests" in new_resources:
        out["requests"] = new_resources["requests"]
    else:
        out.pop("requests", None)
    return out


def _quantity(value: Any) -> Any:
    if value is None:
        return None
    try:
        return parse_quantity(value)
    except QuantityError:
        return None


def _request(obj: Mapping[str, Any]) -> Any:
    resources = spec(obj).get("resources")
    requests = resources.get("requests") if isinstance(resources, Mapping) else None
    return _quantity(requests.get("storage")) if isinstance(requests, Mapping) else None


STRATEGY = PersistentVolumeClaimStrategy()
