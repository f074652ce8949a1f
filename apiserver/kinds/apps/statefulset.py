"""StatefulSet (apps/v1): pods with stable names, stable storage and ordered rollouts.

After pkg/registry/apps/statefulset, pkg/apis/apps/v1/defaults.go (``SetDefaults_StatefulSet``)
and pkg/apis/apps/validation (``ValidateStatefulSetSpec``, ``ValidateStatefulSetUpdate``,
``ValidateStatefulSetStatusUpdate``), with the printer of pkg/printers/internalversion.

Data flow: a write's body -> ``defaults`` (podManagementPolicy OrderedReady, updateStrategy
RollingUpdate with partition 0, replicas 1, revisionHistoryLimit 10, persistentVolumeClaim-
RetentionPolicy Retain/Retain, the pod template's defaults, each volumeClaimTemplate's PVC
defaults) -> ``validate`` (policies, strategy, selector matching the template labels; like
Kubernetes, the template's pod spec itself is only checked when the controller creates the pods,
because its volume mounts may name volumeClaimTemplates) -> ``validate_update`` (only replicas,
ordinals, template, updateStrategy, persistentVolumeClaimRetentionPolicy and minReadySeconds may
change; ``maxUnavailable`` is dropped as with Kubernetes' MaxUnavailableStatefulSet gate off).
A create stores ``status: {replicas: 0, availableReplicas: 0}``; ``/status`` is written by the
controller (controllers/statefulset.py) and ``/scale`` reads ``spec.replicas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import Facts, keyed
from ...validation.fielderrors import (Causes, Obj, child, dict_at, forbidden, get_int, get_int_or_string, get_map,
                                       get_maps, get_opt_map, get_str, get_str_map, invalid, nonnegative,
                                       not_supported, required)
from ...validation.formats import PERCENT_FMT, PERCENT_RE, dns1123_label_errors, full_match, regex_error
from ...validation.objectmeta import read_labels, selector_matches, validate_annotations, validate_label_selector
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, name_of, status
from ..common.defaulting import map_at, maps_at, set_if_unset
from ..common.podtemplate import CONTAINERS_COLUMN, IMAGES_COLUMN, container_cells, default_template, template_spec
from ..common.replicated import replicas, replicated_spec

POLICIES = ("OrderedReady", "Parallel")
STRATEGIES = ("RollingUpdate", "OnDelete")
RETENTION = ("Retain", "Delete")
# The spec fields an update may change (ValidateStatefulSetUpdate, StatefulSetSlice on).
MUTABLE_SPEC = ("replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds")
UPDATE_FORBIDDEN = ("updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', "
                    "'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
_STATUS_COUNTS = ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas")


class StatefulSetStrategy(Strategy):
    group = "apps"
    kind = "StatefulSet"
    plural = "statefulsets"
    singular = "statefulset"
    short_names = ("sts",)
    categories = ("all",)
    subresources = ("status", "scale")
    model = "V1StatefulSet"
    # replicas and availableReplicas have no omitempty in apps/v1.
    initial_status: Obj = {"replicas": 0, "availableReplicas": 0}
    columns = (
        NAME,
        Column("Ready", description="Number of the pod with ready state"),
        AGE,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
    )
    type_facts = {
        "V1StatefulSetSpec": {"volumeClaimTemplates": Facts(list_type="atomic")},
        "V1StatefulSetStatus": {"conditions": keyed("type")},
    }
    # k8s.io/api/apps/v1 generated.proto (kubectl's typed commands send protobuf bodies).
    protobuf_messages = {
        "StatefulSet": "metadata:1:ObjectMeta spec:2:StatefulSetSpec status:3:StatefulSetStatus",
        "StatefulSetSpec": (
            "replicas:1:i! selector:2:LabelSelector template:3:PodTemplateSpec "
            "volumeClaimTemplates:4:*PersistentVolumeClaim serviceName:5:s podManagementPolicy:6:s "
            "updateStrategy:7:StatefulSetUpdateStrategy revisionHistoryLimit:8:i! minReadySeconds:9:i "
            "persistentVolumeClaimRetentionPolicy:10:StatefulSetPersistentVolumeClaimRetentionPolicy "
            "ordinals:11:StatefulSetOrdinals"),
        "StatefulSetUpdateStrategy": "type:1:s rollingUpdate:2:RollingUpdateStatefulSetStrategy",
        "RollingUpdateStatefulSetStrategy": "partition:1:i! maxUnavailable:2:IntOrString",
        "StatefulSetPersistentVolumeClaimRetentionPolicy": "whenDeleted:1:s whenScaled:2:s",
        "StatefulSetOrdinals": "start:1:i",
        "StatefulSetStatus": (
            "observedGeneration:1:i replicas:2:i! readyReplicas:3:i currentReplicas:4:i updatedReplicas:5:i "
            "currentRevision:6:s updateRevision:7:s collisionCount:9:i! conditions:10:*StatefulSetCondition "
            "availableReplicas:11:i!"),
        "StatefulSetCondition": "type:1:s! status:2:s! lastTransitionTime:3:Time reason:4:s message:5:s",
    }

    def name_errors(self, name: str) -> list[str]:
        # Pod names are "<name>-<ordinal>" and pods' hostnames are labels: a DNS-1123 label.
        return dns1123_label_errors(name)

    # ------------------------------------------------------------------ defaults
    def defaults(self, obj: Obj) -> None:
        owner_spec = replicated_spec(obj)
        if owner_spec is None:
            return
        set_if_unset(owner_spec, "podManagementPolicy", "OrderedReady")
        strategy = map_at(owner_spec, "updateStrategy", create=True)
        if strategy is not None:
            if strategy.get("type") in (None, ""):
                strategy["type"] = "RollingUpdate"
                map_at(strategy, "rollingUpdate", create=True)
            rolling = map_at(strategy, "rollingUpdate")
            if strategy.get("type") == "RollingUpdate" and rolling is not None and rolling.get("partition") is None:
                rolling["partition"] = 0
        retention = map_at(owner_spec, "persistentVolumeClaimRetentionPolicy", create=True)
        if retention is not None:
            set_if_unset(retention, "whenDeleted", "Retain")
            set_if_unset(retention, "whenScaled", "Retain")
        if owner_spec.get("revisionHistoryLimit") is None:
            owner_spec["revisionHistoryLimit"] = 10
        default_template(owner_spec)
        for claim in maps_at(owner_spec, "volumeClaimTemplates"):
            _default_claim_template(claim)

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        super().prepare_for_create(obj, ctx)
        _drop_max_unavailable(obj, None)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        _drop_max_unavailable(new, old)

    # ------------------------------------------------------------------ validation
    def validate(self, obj: Obj) -> Causes:
        return _validate_spec(get_map(obj, "spec", "", []))

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        new_spec, old_spec = dict_at(new, "spec"), dict_at(old, "spec")
        rest_new = {k: v for k, v in new_spec.items() if k not in MUTABLE_SPEC}
        rest_old = {k: v for k, v in old_spec.items() if k not in MUTABLE_SPEC}
        return [] if rest_new == rest_old else [forbidden("spec", UPDATE_FORBIDDEN)]

    def validate_status_update(self, new: Obj, old: Obj) -> Causes:
        return _validate_status(dict_at(new, "status"), dict_at(old, "status"))

    # ------------------------------------------------------------------ table
    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        names, images = container_cells(template_spec(obj))
        ready = int(status(obj).get("readyReplicas") or 0)
        return [name_of(obj), f"{ready}/{replicas(obj)}", age(obj, now), names, images]


def _rolling_update(obj: Obj | None) -> Obj | None:
    strategy = map_at(map_at(obj, "spec"), "updateStrategy")
    return map_at(strategy, "rollingUpdate")


def _drop_max_unavailable(new: Obj, old: Obj | None) -> None:
    """``dropStatefulSetDisabledFields``: maxUnavailable belongs to the MaxUnavailableStatefulSet
    feature (alpha, off in Kubernetes 1.32), kept only when the stored object already uses it."""
    old_rolling = _rolling_update(old)
    if old_rolling is not None and old_rolling.get("maxUnavailable") is not None:
        return
    rolling = _rolling_update(new)
    if rolling is not None:
        rolling.pop("maxUnavailable", None)


def _default_claim_template(claim: Obj) -> None:
    """SetDefaults_PersistentVolumeClaim(+Spec) on an embedded claim, plus the TypeMeta the apps/v1
    conversion writes (kubectl shows ``apiVersion: v1, kind: PersistentVolumeClaim`` there)."""
    set_if_unset(claim, "apiVersion", "v1")
    set_if_unset(claim, "kind", "PersistentVolumeClaim")
    claim_spec = map_at(claim, "spec", create=True)
    if claim_spec is not None:
        set_if_unset(claim_spec, "volumeMode", "Filesystem")
    claim_status = map_at(claim, "status", create=True)
    if claim_status is not None:
        set_if_unset(claim_status, "phase", "Pending")


def _percent_or_int(value: int | str) -> int:
    if isinstance(value, int):
        return value
    return int(value[:-1]) if full_match(PERCENT_RE, value) else 0


def _validate_rolling_update(rolling: Obj, path: str, causes: Causes) -> None:
    """validateRollingUpdateStatefulSet: partition >= 0; maxUnavailable a positive int or percent <= 100%."""
    causes.extend(nonnegative(child(path, "partition"), get_int(rolling, "partition", path, causes)))
    unavailable = get_int_or_string(rolling, "maxUnavailable", path, causes)
    if unavailable is None:
        return
    field = child(path, "maxUnavailable")
    if isinstance(unavailable, str) and not full_match(PERCENT_RE, unavailable):
        causes.append(invalid(field, unavailable, regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, "1%", "93%")))
    elif isinstance(unavailable, int):
        causes.extend(nonnegative(field, unavailable))
    if _percent_or_int(unavailable) == 0:
        causes.append(invalid(field, unavailable, "cannot be 0"))
    if isinstance(unavailable, str) and full_match(PERCENT_RE, unavailable) and int(unavailable[:-1]) > 100:
        causes.append(invalid(field, unavailable, "must not be greater than 100%"))


def _validate_strategy(owner_spec: Obj, causes: Causes) -> None:
    path = "spec.updateStrategy"
    strategy = get_map(owner_spec, "updateStrategy", "spec", causes)
    kind = get_str(strategy, "type", path, causes)
    rolling = get_opt_map(strategy, "rollingUpdate", path, causes)
    if not kind:
        causes.append(required(path))
    elif kind == "OnDelete":
        if rolling is not None:
            causes.append(invalid(child(path, "rollingUpdate"), rolling,
                                  "only allowed for updateStrategy 'RollingUpdate'"))
    elif kind == "RollingUpdate":
        if rolling is not None:
            _validate_rolling_update(rolling, child(path, "rollingUpdate"), causes)
    else:
        causes.append(invalid(path, strategy, "must be 'RollingUpdate' or 'OnDelete'"))


def _validate_template(owner_spec: Obj, selector: Obj | None, causes: Causes) -> None:
    """ValidatePodTemplateSpecForStatefulSet: labels match the selector, labels and annotations
    are valid; restartPolicy Always, no activeDeadlineSeconds."""
    template_path = "spec.template"
    template = get_map(owner_spec, "template", "spec", causes)
    meta_path = child(template_path, "metadata")
    meta = get_map(template, "metadata", template_path, causes)
    labels = read_labels(meta, "labels", meta_path, causes)
    annotations = get_str_map(meta, "annotations", meta_path, causes)
    causes.extend(validate_annotations(annotations, child(meta_path, "annotations")))
    if selector is not None and not selector_matches(selector, labels):
        causes.append(invalid(child(meta_path, "labels"), labels, "`selector` does not match template `labels`"))
    pod_spec_path = child(template_path, "spec")
    pod_spec = get_map(template, "spec", template_path, causes)
    restart = get_str(pod_spec, "restartPolicy", pod_spec_path, causes)
    if restart != "Always":
        causes.append(not_supported(child(pod_spec_path, "restartPolicy"), restart, ("Always",)))
    if pod_spec.get("activeDeadlineSeconds") is not None:
        causes.append(forbidden(child(pod_spec_path, "activeDeadlineSeconds"),
                                "activeDeadlineSeconds in StatefulSet is not Supported"))


def _validate_spec(owner_spec: Obj) -> Causes:
    causes: Causes = []
    policy = get_str(owner_spec, "podManagementPolicy", "spec", causes)
    if not policy:
        causes.append(required("spec.podManagementPolicy"))
    elif policy not in POLICIES:
        causes.append(invalid("spec.podManagementPolicy", policy, "must be 'OrderedReady' or 'Parallel'"))
    _validate_strategy(owner_spec, causes)
    retention = get_opt_map(owner_spec, "persistentVolumeClaimRetentionPolicy", "spec", causes)
    if retention is not None:
        for name in ("whenDeleted", "whenScaled"):
            path = child("spec.persistentVolumeClaimRetentionPolicy", name)
            value = get_str(retention, name, "spec.persistentVolumeClaimRetentionPolicy", causes)
            if value not in RETENTION:
                causes.append(not_supported(path, value, RETENTION))
    causes.extend(nonnegative("spec.replicas", get_int(owner_spec, "replicas", "spec", causes)))
    causes.extend(nonnegative("spec.minReadySeconds", get_int(owner_spec, "minReadySeconds", "spec", causes)))
    ordinals = get_opt_map(owner_spec, "ordinals", "spec", causes)
    if ordinals is not None:
        causes.extend(nonnegative("spec.ordinals.start", get_int(ordinals, "start", "spec.ordinals", causes)))
    selector = get_opt_map(owner_spec, "selector", "spec", causes)
    usable: Obj | None = None
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        ok = validate_label_selector(selector, "spec.selector", causes)
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            causes.append(invalid("spec.selector", selector, "empty selector is invalid for statefulset"))
        elif ok:
            usable = selector
    _validate_template(owner_spec, usable, causes)
    for claim_path, claim in get_maps(owner_spec, "volumeClaimTemplates", "spec", causes):
        # Kubernetes checks nothing here; a claim needs a name to be created per pod.
        claim_meta = get_map(claim, "metadata", claim_path, causes)
        if not get_str(claim_meta, "name", child(claim_path, "metadata"), causes):
            causes.append(required(child(child(claim_path, "metadata"), "name")))
    get_str(owner_spec, "serviceName", "spec", causes)
    return causes


def _validate_status(new: Obj, old: Obj) -> Causes:
    """ValidateStatefulSetStatusUpdate: counts >= 0 and consistent, collisionCount never decremented."""
    causes: Causes = []
    counts = {name: get_int(new, name, "status", causes) or 0 for name in _STATUS_COUNTS}
    for name, value in counts.items():
        causes.extend(nonnegative(child("status", name), value))
    for name in ("observedGeneration", "collisionCount"):
        causes.extend(nonnegative(child("status", name), get_int(new, name, "status", causes, bits=64)))
    for name in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        if counts[name] > counts["replicas"]:
            causes.append(invalid(child("status", name), counts[name], "cannot be greater than status.replicas"))
    if counts["availableReplicas"] > counts["readyReplicas"]:
        causes.append(invalid("status.availableReplicas", counts["availableReplicas"],
                              "cannot be greater than status.readyReplicas"))
    old_count, new_count = old.get("collisionCount"), new.get("collisionCount")
    if isinstance(old_count, int) and (not isinstance(new_count, int) or new_count < old_count):
        causes.append(invalid("status.collisionCount", new_count if isinstance(new_count, int) else 0,
                              "cannot be decremented"))
    return causes


STRATEGY = StatefulSetStrategy()

__all__ = ["STRATEGY", "StatefulSetStrategy", "UPDATE_FORBIDDEN"]
