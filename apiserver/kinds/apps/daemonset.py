"""DaemonSet (apps/v1): one pod of its template on every eligible node.

After pkg/registry/apps/daemonset and pkg/apis/apps (v1 defaults, validation):

- defaults: ``updateStrategy`` RollingUpdate with maxUnavailable 1 and maxSurge 0,
  ``revisionHistoryLimit`` 10, the pod template's defaults;
- create: ``status`` starts as the four counters at 0 and ``metadata.generation`` 1; the
  ``deprecated.daemonset.template.generation`` annotation (apps/v1's form of the internal
  ``spec.templateGeneration``) starts at 1 and goes up by one whenever the template changes (the
  controller labels pods ``pod-template-generation`` with it);
- validation (``ValidateDaemonSet``): a non-empty selector that matches the template's labels and
  never changes, the template (restartPolicy Always, no activeDeadlineSeconds), the update
  strategy (OnDelete | RollingUpdate; exactly one of maxUnavailable/maxSurge non-zero, neither
  above 100%), minReadySeconds and revisionHistoryLimit not negative;
- ``/status``; ``kubectl get`` columns NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR
  AGE (wide: CONTAINERS IMAGES SELECTOR).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import keyed
from ...validation.fielderrors import (Causes, Obj, child, dict_at, get_int, get_map, get_opt_map, get_str, invalid,
                                       nonnegative, not_supported, required)
from ...validation.formats import PERCENT_RE, full_match
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, meta, name_of, spec, status
from ..common.defaulting import map_at, set_if_unset
from ..common.podtemplate import CONTAINERS_COLUMN, IMAGES_COLUMN, container_cells, default_template, template_spec
from ..common.printers import format_label_selector, format_labels
from ..common.replicated import FIELD_IMMUTABLE, validate_selector_and_template
from .deployment import _int_or_percent, _percent_value

TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
_DOCS = "More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"


class DaemonSetStrategy(Strategy):
    group = "apps"
    kind = "DaemonSet"
    plural = "daemonsets"
    singular = "daemonset"
    short_names = ("ds",)
    categories = ("all",)
    subresources = ("status",)
    model = "V1DaemonSet"
    initial_status: Obj = {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                           "numberReady": 0}
    columns = (
        NAME,
        Column("Desired", type="integer", description=(
            "The total number of nodes that should be running the daemon pod (including nodes correctly running "
            f"the daemon pod). {_DOCS}")),
        Column("Current", type="integer", description=(
            f"The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. {_DOCS}")),
        Column("Ready", type="integer", description=(
            "numberReady is the number of nodes that should be running the daemon pod and have one or more of the "
            "daemon pod running with a Ready Condition.")),
        Column("Up-to-date", type="integer", description="The total number of nodes that are running updated daemon pod"),
        Column("Available", type="integer", description=(
            "The number of nodes that should be running the daemon pod and have one or more of the daemon pod "
            "running and available (ready for at least spec.minReadySeconds)")),
        Column("Node Selector", description=(
            "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match "
            "a node's labels for the pod to be scheduled on that node. More info: "
            "https://kubernetes.io/docs/concepts/configuration/assign-pod-node/")),
        AGE,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column("Selector", priority=1, description=(
            "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It "
            "must match the pod template's labels. More info: "
            "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors")),
    )
    type_facts = {"V1DaemonSetStatus": {"conditions": keyed("type")}}
    # k8s.io/api/apps/v1 generated.proto (kubectl's typed commands send protobuf bodies).
    protobuf_messages = {
        "DaemonSet": "metadata:1:ObjectMeta spec:2:DaemonSetSpec status:3:DaemonSetStatus",
        "DaemonSetSpec": (
            "selector:1:LabelSelector template:2:PodTemplateSpec updateStrategy:3:DaemonSetUpdateStrategy "
            "minReadySeconds:4:i revisionHistoryLimit:6:i!"),
        "DaemonSetUpdateStrategy": "type:1:s rollingUpdate:2:RollingUpdateDaemonSet",
        "RollingUpdateDaemonSet": "maxUnavailable:1:IntOrString maxSurge:2:IntOrString",
        "DaemonSetStatus": (
            "currentNumberScheduled:1:i! numberMisscheduled:2:i! desiredNumberScheduled:3:i! numberReady:4:i! "
            "observedGeneration:5:i updatedNumberScheduled:6:i numberAvailable:7:i numberUnavailable:8:i "
            "collisionCount:9:i! conditions:10:*DaemonSetCondition"),
        "DaemonSetCondition": "type:1:s! status:2:s! lastTransitionTime:3:Time reason:4:s message:5:s",
    }

    def defaults(self, obj: Obj) -> None:
        ds_spec = map_at(obj, "spec", create=True)
        if ds_spec is None:
            return
        strategy = map_at(ds_spec, "updateStrategy", create=True)
        if strategy is not None:
            set_if_unset(strategy, "type", "RollingUpdate")
            if strategy.get("type") == "RollingUpdate":
                rolling = map_at(strategy, "rollingUpdate", create=True)
                if rolling is not None:
                    if rolling.get("maxUnavailable") is None:
                        rolling["maxUnavailable"] = 1
                    if rolling.get("maxSurge") is None:
                        rolling["maxSurge"] = 0
        if ds_spec.get("revisionHistoryLimit") is None:
            ds_spec["revisionHistoryLimit"] = 10
        default_template(ds_spec)

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        super().prepare_for_create(obj, ctx)
        annotations = map_at(map_at(obj, "metadata", create=True) or {}, "annotations", create=True)
        if annotations is not None and template_generation(obj) < 1:
            annotations[TEMPLATE_GENERATION] = "1"

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        super().prepare_for_update(new, old)
        generation = template_generation(old)
        if dict_at(new, "spec").get("template") != dict_at(old, "spec").get("template"):
            generation += 1
        annotations = map_at(map_at(new, "metadata", create=True) or {}, "annotations", create=True)
        if annotations is not None and generation > 0:
            annotations[TEMPLATE_GENERATION] = str(generation)

    def validate(self, obj: Obj) -> Causes:
        return validate_daemonset(obj)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        new_spec, old_spec = dict_at(new, "spec"), dict_at(old, "spec")
        if new_spec.get("selector") != old_spec.get("selector"):
            return [invalid("spec.selector", new_spec.get("selector"), FIELD_IMMUTABLE)]
        return []

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        state = status(obj)
        names, images = container_cells(template_spec(obj))
        return [name_of(obj), int(state.get("desiredNumberScheduled") or 0),
                int(state.get("currentNumberScheduled") or 0), int(state.get("numberReady") or 0),
                int(state.get("updatedNumberScheduled") or 0), int(state.get("numberAvailable") or 0),
                format_labels(template_spec(obj).get("nodeSelector")), age(obj, now), names, images,
                format_label_selector(spec(obj).get("selector"))]


def template_generation(obj: Mapping[str, Any]) -> int:
    """The ``deprecated.daemonset.template.generation`` annotation (0 when absent or not a number)."""
    value = (meta(obj).get("annotations") or {}).get(TEMPLATE_GENERATION)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _validate_rolling_update(rolling: Obj, path: str, causes: Causes) -> None:
    """``ValidateRollingUpdateDaemonSet``."""
    unavailable = _int_or_percent(rolling, "maxUnavailable", path, causes)
    surge = _int_or_percent(rolling, "maxSurge", path, causes)
    for name, value in (("maxUnavailable", unavailable), ("maxSurge", surge)):
        if isinstance(value, str) and full_match(PERCENT_RE, value) and int(value[:-1]) > 100:
            causes.append(invalid(child(path, name), value, "must not be greater than 100%"))
    has_unavailable, has_surge = _percent_value(unavailable) != 0, _percent_value(surge) != 0
    if has_unavailable and has_surge:
        causes.append(invalid(child(path, "maxSurge"), surge, "may not be set when maxUnavailable is non-zero"))
    elif not has_unavailable and not has_surge:
        causes.append(required(child(path, "maxUnavailable"), "cannot be 0 when maxSurge is 0"))


def _validate_update_strategy(ds_spec: Obj, causes: Causes) -> None:
    path = "spec.updateStrategy"
    strategy = get_map(ds_spec, "updateStrategy", "spec", causes)
    kind = get_str(strategy, "type", path, causes)
    if kind == "OnDelete":
        return
    if kind == "RollingUpdate":
        rolling = get_opt_map(strategy, "rollingUpdate", path, causes)
        if rolling is None:
            causes.append(required(child(path, "rollingUpdate")))
            return
        _validate_rolling_update(rolling, child(path, "rollingUpdate"), causes)
        return
    causes.append(not_supported(path, copy.deepcopy(strategy), ("RollingUpdate", "OnDelete")))


def validate_daemonset(obj: Obj) -> Causes:
    """``ValidateDaemonSetSpec`` (ObjectMeta is the registry's)."""
    causes: Causes = []
    ds_spec = get_map(obj, "spec", "", causes)
    validate_selector_and_template(ds_spec, causes, owner="DaemonSet", selector_owner="daemonset")
    causes.extend(nonnegative("spec.minReadySeconds", get_int(ds_spec, "minReadySeconds", "spec", causes)))
    causes.extend(nonnegative("spec.revisionHistoryLimit", get_int(ds_spec, "revisionHistoryLimit", "spec", causes)))
    _validate_update_strategy(ds_spec, causes)
    return causes


STRATEGY = DaemonSetStrategy()
