"""StorageClass (storage.k8s.io/v1, cluster-scoped): how volumes of a class are provisioned.

After pkg/apis/storage/validation and the v1 defaults: ``reclaimPolicy`` defaults to ``Delete``
and ``volumeBindingMode`` to ``Immediate``; ``provisioner`` is required (a qualified name);
``parameters`` at most 512 entries and 256 KiB; ``provisioner``, ``parameters``,
``reclaimPolicy`` and ``volumeBindingMode`` never change. ``kubectl get sc`` shows the name with
`` (default)`` for a class annotated ``storageclass.kubernetes.io/is-default-class: "true"``.

``default_class_name`` is the DefaultStorageClass admission's choice (the newest default class;
on a tie the first by name), used by the PersistentVolumeClaim strategy and the binder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import Facts
from ...validation.fielderrors import (Causes, Obj, child, each, forbidden, get_bool, get_maps, get_str,
                                       get_str_map, get_strs, invalid, not_supported, required, too_long)
from ...validation.formats import qualified_name_errors
from ..base import AGE, NAME, Column, Strategy, age, meta, name_of
from ..common.defaulting import set_if_unset

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024
_ATOMIC_LIST = Facts(list_type="atomic")


class StorageClassStrategy(Strategy):
    group = "storage.k8s.io"
    kind = "StorageClass"
    plural = "storageclasses"
    singular = "storageclass"
    namespaced = False
    short_names = ("sc",)
    model = "V1StorageClass"
    columns = (
        NAME,
        Column("Provisioner", description="provisioner indicates the type of the provisioner."),
        Column("ReclaimPolicy", description="reclaimPolicy controls the reclaimPolicy for dynamically "
               "provisioned PersistentVolumes of this storage class. Defaults to Delete."),
        Column("VolumeBindingMode", description="volumeBindingMode indicates how PersistentVolumeClaims should be "
               "provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by "
               "servers that enable the VolumeScheduling feature."),
        Column("AllowVolumeExpansion", description="allowVolumeExpansion shows whether the storage class allow "
               "volume expand."),
        AGE,
    )
    type_facts = {
        "V1StorageClass": {"mountOptions": _ATOMIC_LIST, "allowedTopologies": _ATOMIC_LIST},
    }
    # Go's field numbers (k8s.io/api/storage/v1/generated.proto).
    protobuf_messages = {
        "StorageClass": (
            "metadata:1:ObjectMeta provisioner:2:s parameters:3:{s} reclaimPolicy:4:s! mountOptions:5:*s "
            "allowVolumeExpansion:6:b! volumeBindingMode:7:s! allowedTopologies:8:*TopologySelectorTerm"),
        "TopologySelectorTerm": "matchLabelExpressions:1:*TopologySelectorLabelRequirement",
        "TopologySelectorLabelRequirement": "key:1:s values:2:*s",
    }

    def defaults(self, obj: Obj) -> None:
        set_if_unset(obj, "reclaimPolicy", "Delete")
        set_if_unset(obj, "volumeBindingMode", "Immediate")

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        provisioner = get_str(obj, "provisioner", "", causes)
        if not provisioner:
            causes.append(required("provisioner"))
        else:
            causes.extend(each("provisioner", provisioner, qualified_name_errors(provisioner.lower())))
        params = get_str_map(obj, "parameters", "", causes)
        if len(params) > MAX_PARAMETERS:
            causes.append(too_long("parameters", MAX_PARAMETERS))
        else:
            for key in params:
                if not key:
                    causes.append(invalid("parameters", key, "field can not be empty."))
            if sum(len(k) + len(v) for k, v in params.items()) > MAX_PARAMETERS_SIZE:
                causes.append(too_long("parameters", MAX_PARAMETERS_SIZE))
        policy = get_str(obj, "reclaimPolicy", "", causes)
        if policy and policy not in RECLAIM_POLICIES:
            causes.append(not_supported("reclaimPolicy", policy, RECLAIM_POLICIES))
        mode = get_str(obj, "volumeBindingMode", "", causes)
        if not mode:
            causes.append(required("volumeBindingMode"))
        elif mode not in BINDING_MODES:
            causes.append(not_supported("volumeBindingMode", mode, BINDING_MODES))
        get_bool(obj, "allowVolumeExpansion", "", causes)
        get_strs(obj, "mountOptions", "", causes)
        _validate_topologies(obj, causes)
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes: Causes = []
        if (new.get("parameters") or {}) != (old.get("parameters") or {}):
            causes.append(forbidden("parameters", "updates to parameters are forbidden."))
        if new.get("provisioner") != old.get("provisioner"):
            causes.append(forbidden("provisioner", "updates to provisioner are forbidden."))
        if new.get("reclaimPolicy") != old.get("reclaimPolicy"):
            causes.append(forbidden("reclaimPolicy", "updates to reclaimPolicy are forbidden."))
        if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
            causes.append(invalid("volumeBindingMode", new.get("volumeBindingMode"), "field is immutable"))
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        name = name_of(obj) + (" (default)" if is_default(obj) else "")
        return [name, str(obj.get("provisioner") or ""), str(obj.get("reclaimPolicy") or "Delete"),
                str(obj.get("volumeBindingMode") or "Immediate"), obj.get("allowVolumeExpansion") is True,
                age(obj, now)]


def _validate_topologies(obj: Obj, causes: Causes) -> None:
    """validateAllowedTopologies: each term's matchLabelExpressions name a key and values."""
    for term_path, term in get_maps(obj, "allowedTopologies", "", causes):
        for expr_path, expr in get_maps(term, "matchLabelExpressions", term_path, causes):
            key = get_str(expr, "key", expr_path, causes)
            causes.extend(each(child(expr_path, "key"), key, qualified_name_errors(key)))
            if not get_strs(expr, "values", expr_path, causes):
                causes.append(required(child(expr_path, "values"), "must specify as least one value"))
        if not term.get("matchLabelExpressions"):
            causes.append(required(term_path, "must have at least one label expression"))


def is_default(storage_class: Mapping[str, Any]) -> bool:
    """storageutil.IsDefaultAnnotation: the GA or the beta annotation is "true"."""
    annotations = meta(storage_class).get("annotations") or {}
    return annotations.get(DEFAULT_CLASS_ANNOTATION) == "true" or \
        annotations.get(BETA_DEFAULT_CLASS_ANNOTATION) == "true"


def default_class_name(classes: Iterable[Mapping[str, Any]]) -> str | None:
    """The class a claim without one gets: the newest default class, the first by name on a tie
    (GetDefaultClass); None when no class is marked default."""
    defaults = sorted((c for c in classes if is_default(c)), key=name_of)
    if not defaults:
        return None
    newest = max(defaults, key=lambda c: str(meta(c).get("creationTimestamp") or ""))
    return name_of(newest) or None


def storage_class_named(classes: Iterable[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((c for c in classes if name_of(c) == name), None)


STRATEGY = StorageClassStrategy()
