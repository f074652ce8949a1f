"""PersistentVolume (core/v1, cluster-scoped): a piece of storage, bound to at most one claim.

After pkg/registry/core/persistentvolume and ``ValidatePersistentVolumeSpec``: the v1 defaults
(``persistentVolumeReclaimPolicy: Retain``, ``volumeMode: Filesystem``), a new volume starts in
phase ``Pending`` (the binder makes it ``Available``), ``accessModes`` and ``capacity.storage``
are required, exactly one volume source (``local`` needs ``nodeAffinity``), the source, the
volume mode and a set node affinity never change; ``/status`` carries the phase the binder
writes; a new volume gets the ``kubernetes.io/pv-protection`` finalizer (removed by the
pv-protection controller once the deleted volume is not Bound). ``kubectl get pv`` columns are printPersistentVolume's (kubectl 1.32).

The helpers at the bottom (access-mode strings, class names, node-selector validation) are
shared with the PersistentVolumeClaim and StorageClass strategies.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.quantity import QuantityError, parse_quantity

from ...openapi.facts import ATOMIC, Facts
from ...validation.fielderrors import (Causes, Obj, child, each, forbidden, get_map, get_maps, get_opt_map, get_str,
                                       get_strs, invalid, not_supported, required)
from ...validation.formats import dns1123_subdomain_errors, label_value_errors, qualified_name_errors
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, meta, name_of, spec, status
from ..common.defaulting import set_if_unset

ACCESS_MODES = ("ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod")  # sets.List order
_ACCESS_SHORT = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
PV_PROTECTION = "kubernetes.io/pv-protection"
# Every PersistentVolumeSource field of core/v1 (exactly one must be set).
VOLUME_SOURCES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd", "quobyte",
    "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume", "photonPersistentDisk",
    "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi",
)
_NODE_SELECTOR_OPERATORS = ("DoesNotExist", "Exists", "Gt", "In", "Lt", "NotIn")
_HOST_PATH_TYPES = ("", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                    "Socket")
_ATOMIC_LIST = Facts(list_type="atomic")
_POSITIVE = "must be greater than zero"


class PersistentVolumeStrategy(Strategy):
    kind = "PersistentVolume"
    plural = "persistentvolumes"
    singular = "persistentvolume"
    namespaced = False
    short_names = ("pv",)
    subresources = ("status",)
    model = "V1PersistentVolume"
    initial_status: Obj = {"phase": "Pending"}
    columns = (
        NAME,
        Column("Capacity", description="capacity is the description of the persistent volume's resources and "
               "capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
        Column("Access Modes", description="accessModes contains all ways the volume can be mounted. More info: "
               "https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
        Column("Reclaim Policy", description="persistentVolumeReclaimPolicy defines what happens to a persistent "
               "volume when released from its claim. Valid options are Retain (default for manually created "
               "PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle "
               "(deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. "
               "More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
        Column("Status", description="phase indicates if a volume is available, bound to a claim, or released "
               "by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
        Column("Claim", description="claimRef is part of a bi-directional binding between PersistentVolume and "
               "PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative "
               "bind between PV and PVC. More info: "
               "https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
        Column("StorageClass", description="StorageClass of the pv"),
        Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
        Column("Reason", description="reason is a brief CamelCase string that describes any failure and is meant "
               "for machine parsing and tidy display in the CLI."),
        AGE,
        Column("VolumeMode", priority=1, description="volumeMode defines if a volume is intended to be used with "
               "a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not "
               "included in spec."),
    )
    type_facts = {
        "V1PersistentVolumeSpec": {"accessModes": _ATOMIC_LIST, "mountOptions": _ATOMIC_LIST},
        "V1VolumeNodeAffinity": {"": ATOMIC},
        "V1NodeSelector": {"": ATOMIC, "nodeSelectorTerms": _ATOMIC_LIST},
    }
    # Go's field numbers (k8s.io/api/core/v1/generated.proto); sources besides these are skipped.
    protobuf_messages = {
        "PersistentVolume": "metadata:1:ObjectMeta spec:2:PersistentVolumeSpec status:3:PersistentVolumeStatus",
        "PersistentVolumeSpec": (
            "capacity:1:{Quantity} -:2:PersistentVolumeSource accessModes:3:*s claimRef:4:ObjectReference "
            "persistentVolumeReclaimPolicy:5:s storageClassName:6:s mountOptions:7:*s volumeMode:8:s! "
            "nodeAffinity:9:VolumeNodeAffinity volumeAttributesClassName:10:s!"),
        "PersistentVolumeSource": (
            "hostPath:3:HostPathVolumeSource nfs:5:NFSVolumeSource local:20:LocalVolumeSource "
            "csi:22:CSIPersistentVolumeSource"),
        "LocalVolumeSource": "path:1:s fsType:2:s!",
        "CSIPersistentVolumeSource": "driver:1:s volumeHandle:2:s readOnly:3:b fsType:4:s volumeAttributes:5:{s}",
        "VolumeNodeAffinity": "required:1:NodeSelector",
        "PersistentVolumeStatus": "phase:1:s message:2:s reason:3:s lastPhaseTransitionTime:4:Time",
    }

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        # PersistentVolumeToSelectableFields: the object meta fields plus "name".
        return {**super().field_values(obj), "name": name_of(obj)}

    @property
    def all_selectable_fields(self) -> tuple[str, ...]:
        return super().all_selectable_fields + ("name",)

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        """Status reset and the StorageObjectInUseProtection admission's finalizer."""
        super().prepare_for_create(obj, ctx)
        add_finalizer(obj, PV_PROTECTION)

    def defaults(self, obj: Obj) -> None:
        pv_spec = obj.get("spec")
        if isinstance(pv_spec, dict):
            set_if_unset(pv_spec, "persistentVolumeReclaimPolicy", "Retain")
            set_if_unset(pv_spec, "volumeMode", "Filesystem")
        pv_status = obj.get("status")
        if isinstance(pv_status, dict):
            set_if_unset(pv_status, "phase", "Pending")

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        validate_pv_spec(get_map(obj, "spec", "", causes), "spec", causes)
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes: Causes = []
        new_spec, old_spec = spec(new), spec(old)
        if _source_of(new_spec) != _source_of(old_spec):
            causes.append(forbidden("spec.persistentvolumesource",
                                    "spec.persistentvolumesource is immutable after creation"))
        if new_spec.get("volumeMode") != old_spec.get("volumeMode"):
            causes.append(invalid("volumeMode", new_spec.get("volumeMode"), "field is immutable"))
        if old_spec.get("nodeAffinity") is not None and new_spec.get("nodeAffinity") != old_spec.get("nodeAffinity"):
            causes.append(invalid("nodeAffinity", new_spec.get("nodeAffinity"), "field is immutable"))
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        pv_spec, pv_status = spec(obj), status(obj)
        claim = pv_spec.get("claimRef")
        claim_text = f"{claim.get('namespace') or ''}/{claim.get('name') or ''}" if isinstance(claim, Mapping) else ""
        phase = "Terminating" if meta(obj).get("deletionTimestamp") else str(pv_status.get("phase") or "")
        found = pv_spec.get("capacity")
        capacity: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        return [
            name_of(obj), str(capacity.get("storage") or "0"), access_modes_string(pv_spec.get("accessModes")),
            str(pv_spec.get("persistentVolumeReclaimPolicy") or ""), phase, claim_text, volume_class(obj),
            _unset(pv_spec.get("volumeAttributesClassName")), str(pv_status.get("reason") or ""), age(obj, now),
            _unset(pv_spec.get("volumeMode")),
        ]


# ------------------------------------------------------------------------------ validation
def validate_pv_spec(pv_spec: Obj, path: str, causes: Causes) -> None:
    causes.extend(access_mode_causes(get_strs(pv_spec, "accessModes", path, causes), child(path, "accessModes"),
                                     required_detail=""))
    capacity = get_map(pv_spec, "capacity", path, causes)
    capacity_path = child(path, "capacity")
    if not capacity:
        causes.append(required(capacity_path))
    if "storage" not in capacity or len(capacity) > 1:
        causes.append(not_supported(capacity_path, capacity, ("storage",)))
    for resource, value in capacity.items():
        causes.extend(positive_quantity_causes(value, f"{capacity_path}[{resource}]"))
    policy = get_str(pv_spec, "persistentVolumeReclaimPolicy", path, causes)
    if policy and policy not in RECLAIM_POLICIES:
        causes.append(not_supported(child(path, "persistentVolumeReclaimPolicy"), policy, RECLAIM_POLICIES))
    affinity = get_opt_map(pv_spec, "nodeAffinity", path, causes)
    has_affinity = affinity is not None and _validate_volume_node_affinity(affinity, child(path, "nodeAffinity"),
                                                                           causes)
    sources = 0
    for source in VOLUME_SOURCES:
        body = get_opt_map(pv_spec, source, path, causes)
        if body is None:
            continue
        source_path = child(path, source)
        if sources and source != "flexVolume":
            causes.append(forbidden(source_path, "may not specify more than 1 volume type"))
            continue
        sources += 1
        _validate_source(source, body, source_path, causes)
        if source == "local" and not has_affinity:
            causes.append(required(child(path, "nodeAffinity"), "Local volume requires node affinity"))
    if sources == 0:
        causes.append(required(path, "must specify a volume type"))
    class_name = get_str(pv_spec, "storageClassName", path, causes)
    if class_name:
        causes.extend(each(child(path, "storageClassName"), class_name, dns1123_subdomain_errors(class_name)))
    mode = get_str(pv_spec, "volumeMode", path, causes)
    if mode and mode not in VOLUME_MODES:
        causes.append(not_supported(child(path, "volumeMode"), mode, VOLUME_MODES))
    claim = get_opt_map(pv_spec, "claimRef", path, causes)
    if claim is not None:
        for field_name in ("name", "namespace", "uid", "kind", "apiVersion", "resourceVersion"):
            get_str(claim, field_name, child(path, "claimRef"), causes)


def _validate_source(source: str, body: Obj, path: str, causes: Causes) -> None:
    if source in ("hostPath", "local"):
        value = get_str(body, "path", path, causes)
        if not value:
            causes.append(required(child(path, "path")))
            return
        causes.extend(no_backsteps_causes(value, child(path, "path")))
        if source == "hostPath":
            kind = get_str(body, "type", path, causes)
            if kind not in _HOST_PATH_TYPES:
                causes.append(not_supported(child(path, "type"), kind, _HOST_PATH_TYPES))
    elif source == "nfs":
        if not get_str(body, "server", path, causes):
            causes.append(required(child(path, "server")))
        nfs_path = get_str(body, "path", path, causes)
        if not nfs_path:
            causes.append(required(child(path, "path")))
        elif not nfs_path.startswith("/"):
            causes.append(invalid(child(path, "path"), nfs_path, "must be an absolute path"))
    elif source == "csi":
        for field_name in ("driver", "volumeHandle"):
            if not get_str(body, field_name, path, causes):
                causes.append(required(child(path, field_name)))


def no_backsteps_causes(value: str, path: str) -> Causes:
    """validatePathNoBacksteps: no ``..`` element."""
    return [invalid(path, value, "must not contain '..'")] if ".." in value.split("/") else []


def positive_quantity_causes(value: Any, path: str) -> Causes:
    """A quantity that parses and is > 0 (ValidatePositiveQuantityValue)."""
    try:
        amount = parse_quantity(value)
    except QuantityError as exc:
        return [invalid(path, value, str(exc))]
    return [] if amount > 0 else [invalid(path, str(value), _POSITIVE)]


def access_mode_causes(modes: list[str], path: str, *, required_detail: str) -> Causes:
    """At least one supported mode; ReadWriteOncePod only alone."""
    causes: Causes = []
    if not modes:
        causes.append(required(path, required_detail))
    rwop = other = False
    for mode in modes:
        if mode not in ACCESS_MODES:
            causes.append(not_supported(path, mode, ACCESS_MODES))
        elif mode == "ReadWriteOncePod":
            rwop = True
        else:
            other = True
    if rwop and other:
        causes.append(forbidden(path, "may not use ReadWriteOncePod with other access modes"))
    return causes


def _validate_volume_node_affinity(affinity: Obj, path: str, causes: Causes) -> bool:
    """validateVolumeNodeAffinity: ``required`` with at least one valid node selector term."""
    before = len(causes)
    node_selector = get_opt_map(affinity, "required", path, causes)
    if node_selector is None:
        causes.append(required(child(path, "required"), "must specify required node constraints"))
        return False
    validate_node_selector(node_selector, child(path, "required"), causes)
    return len(causes) == before


def validate_node_selector(node_selector: Obj, path: str, causes: Causes) -> None:
    terms = get_maps(node_selector, "nodeSelectorTerms", path, causes)
    if not terms:
        causes.append(required(child(path, "nodeSelectorTerms"), "must have at least one node selector term"))
    for term_path, term in terms:
        for expr_path, expr in get_maps(term, "matchExpressions", term_path, causes):
            expr_key = get_str(expr, "key", expr_path, causes)
            causes.extend(each(child(expr_path, "key"), expr_key, qualified_name_errors(expr_key)))
            operator = get_str(expr, "operator", expr_path, causes)
            values = get_strs(expr, "values", expr_path, causes)
            values_path = child(expr_path, "values")
            if operator in ("In", "NotIn"):
                if not values:
                    causes.append(required(values_path, "must be specified when `operator` is 'In' or 'NotIn'"))
            elif operator in ("Exists", "DoesNotExist"):
                if values:
                    causes.append(forbidden(values_path,
                                            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
            elif operator in ("Gt", "Lt"):
                if len(values) != 1:
                    causes.append(required(values_path, "must be specified single value when `operator` is 'Lt' or 'Gt'"))
            else:
                causes.append(not_supported(child(expr_path, "operator"), operator, _NODE_SELECTOR_OPERATORS))
            if operator not in ("Gt", "Lt"):
                for value in values:
                    causes.extend(each(values_path, value, label_value_errors(value)))


def _source_of(pv_spec: Mapping[str, Any]) -> dict[str, Any]:
    return {name: pv_spec[name] for name in VOLUME_SOURCES if pv_spec.get(name) is not None}


# ------------------------------------------------------------------------------ shared helpers
def add_finalizer(obj: Obj, finalizer: str) -> None:
    """StorageObjectInUseProtection: append the finalizer once (bad metadata is validation's business)."""
    metadata = obj.get("metadata")
    if not isinstance(metadata, dict):
        return
    finalizers = metadata.get("finalizers")
    if finalizers is None:
        metadata["finalizers"] = [finalizer]
    elif isinstance(finalizers, list) and finalizer not in finalizers:
        finalizers.append(finalizer)


def access_modes_string(modes: Any) -> str:
    """GetAccessModesAsString: RWO,ROX,RWX,RWOP in that order, each once."""
    present = set(modes) if isinstance(modes, list) else set()
    return ",".join(short for mode, short in _ACCESS_SHORT if mode in present)


def volume_class(obj: Mapping[str, Any]) -> str:
    """GetPersistentVolumeClass / GetPersistentVolumeClaimClass: the beta annotation wins over the field."""
    annotations = meta(obj).get("annotations") or {}
    if BETA_CLASS_ANNOTATION in annotations:
        return str(annotations[BETA_CLASS_ANNOTATION])
    return str(spec(obj).get("storageClassName") or "")


def _unset(value: Any) -> str:
    return "<unset>" if value is None else str(value)


STRATEGY = PersistentVolumeStrategy()

__all__ = ["ACCESS_MODES", "BETA_CLASS_ANNOTATION", "PV_PROTECTION", "PersistentVolumeStrategy", "STRATEGY",
           "access_mode_causes", "access_modes_string", "add_finalizer", "positive_quantity_causes",
           "validate_node_selector", "volume_class"]
