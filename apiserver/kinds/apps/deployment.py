"""Deployment (apps/v1): declarative rollouts of a pod template through ReplicaSets.

After pkg/registry/apps/deployment: defaults (RollingUpdate 25%/25%, revisionHistoryLimit 10,
progressDeadlineSeconds 600), ``ValidateDeployment`` (strategy, deadlines, selector matching the
template), an immutable selector, ``status: {}`` on create, ``/status`` and ``/scale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import RETAIN_KEYS, keyed
from ...validation.fielderrors import (Causes, Obj, forbidden, get_bool, get_int, get_int_or_string, get_map,
                                       get_opt_map, get_str, child, invalid, nonnegative, not_supported, required)
from ...validation.formats import PERCENT_FMT, PERCENT_RE, full_match, regex_error
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec, status
from ..common.defaulting import map_at, set_if_unset
from ..common.podtemplate import CONTAINERS_COLUMN, IMAGES_COLUMN, container_cells, default_template, template_spec
from ..common.printers import selector_string
from ..common.replicated import replicas, replicated_spec, selector_update_causes, validate_replicated


class DeploymentStrategy(Strategy):
    group = "apps"
    kind = "Deployment"
    plural = "deployments"
    singular = "deployment"
    short_names = ("deploy",)
    categories = ("all",)
    subresources = ("status", "scale")
    model = "V1Deployment"
    initial_status: Obj = {}
    columns = (
        NAME,
        Column("Ready", description="Number of the pod with ready state"),
        Column("Up-to-date", description=(
            "Total number of non-terminated pods targeted by this deployment that have the desired template spec.")),
        Column("Available", description=(
            "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.")),
        AGE,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column("Selector", priority=1, description="Label selector for pods."),
    )
    type_facts = {"V1DeploymentSpec": {"strategy": RETAIN_KEYS}, "V1DeploymentStatus": {"conditions": keyed("type")}}
    protobuf_messages = {
        "Deployment": "metadata:1:ObjectMeta spec:2:DeploymentSpec status:3:DeploymentStatus",
        "DeploymentSpec": (
            "replicas:1:i! selector:2:LabelSelector template:3:PodTemplateSpec "
            "strategy:4:DeploymentStrategy minReadySeconds:5:i revisionHistoryLimit:6:i! paused:7:b "
            "progressDeadlineSeconds:9:i!"),
        "DeploymentStatus": (
            "observedGeneration:1:i replicas:2:i updatedReplicas:3:i readyReplicas:7:i "
            "availableReplicas:4:i unavailableReplicas:5:i terminatingReplicas:9:i! "
            "conditions:6:*DeploymentCondition collisionCount:8:i!"),
        "DeploymentStrategy": "type:1:s rollingUpdate:2:RollingUpdateDeployment",
        "RollingUpdateDeployment": "maxUnavailable:1:IntOrString maxSurge:2:IntOrString",
        "DeploymentCondition": (
            "type:1:s! status:2:s! lastUpdateTime:6:Time lastTransitionTime:7:Time reason:4:s "
            "message:5:s"),
    }

    def defaults(self, obj: Obj) -> None:
        owner_spec = replicated_spec(obj)
        if owner_spec is None:
            return
        strategy = map_at(owner_spec, "strategy", create=True)
        if strategy is not None:
            set_if_unset(strategy, "type", "RollingUpdate")
            if strategy.get("type") == "RollingUpdate":
                rolling = map_at(strategy, "rollingUpdate", create=True)
                if rolling is not None:
                    if rolling.get("maxUnavailable") is None:
                        rolling["maxUnavailable"] = "25%"
                    if rolling.get("maxSurge") is None:
                        rolling["maxSurge"] = "25%"
        if owner_spec.get("revisionHistoryLimit") is None:
            owner_spec["revisionHistoryLimit"] = 10
        if owner_spec.get("progressDeadlineSeconds") is None:
            owner_spec["progressDeadlineSeconds"] = 600
        default_template(owner_spec)

    def validate(self, obj: Obj) -> Causes:
        return _validate_deployment(obj)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return selector_update_causes(new, old)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        state = status(obj)
        names, images = container_cells(template_spec(obj))
        try:
            selector = selector_string(spec(obj).get("selector"))
        except ValueError:
            selector = "<invalid>"
        return [name_of(obj), f"{int(state.get('readyReplicas') or 0)}/{replicas(obj)}",
                int(state.get("updatedReplicas") or 0), int(state.get("availableReplicas") or 0), age(obj, now),
                names, images, selector]


def _percent_value(value: int | str | None) -> int:
    """getIntOrPercentValue: a valid percent string's number, an int, else 0."""
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        if full_match(PERCENT_RE, value):
            return int(value[:-1])
        return int(value) if value.lstrip("-").isdigit() and value.isascii() else 0
    return 0


def _int_or_percent(rolling: Obj, name: str, path: str, causes: Causes) -> int | str | None:
    value = get_int_or_string(rolling, name, path, causes)
    field_path = child(path, name)
    if isinstance(value, str) and not full_match(PERCENT_RE, value):
        causes.append(invalid(field_path, value, regex_error(
            "a valid percent string must be a numeric string followed by an ending '%'", PERCENT_FMT, "1%", "93%")))
    elif isinstance(value, int):
        causes.extend(nonnegative(field_path, value))
    return value


def _validate_strategy(owner_spec: Obj, causes: Causes) -> None:
    strategy = get_map(owner_spec, "strategy", "spec", causes)
    kind = get_str(strategy, "type", "spec.strategy", causes)
    rolling = get_opt_map(strategy, "rollingUpdate", "spec.strategy", causes)
    if kind == "Recreate":
        if rolling is not None:
            causes.append(forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"))
    elif kind == "RollingUpdate":
        if rolling is None:
            causes.append(required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"))
            return
        path = "spec.strategy.rollingUpdate"
        unavailable = _int_or_percent(rolling, "maxUnavailable", path, causes)
        surge = _int_or_percent(rolling, "maxSurge", path, causes)
        if _percent_value(unavailable) == 0 and _percent_value(surge) == 0:
            causes.append(invalid(child(path, "maxUnavailable"), unavailable if unavailable is not None else 0,
                                  "may not be 0 when `maxSurge` is 0"))
        if isinstance(unavailable, str) and full_match(PERCENT_RE, unavailable) and int(unavailable[:-1]) > 100:
            causes.append(invalid(child(path, "maxUnavailable"), unavailable, "must not be greater than 100%"))
    else:
        causes.append(not_supported("spec.strategy", kind, ("Recreate", "RollingUpdate")))


def _validate_deployment(obj: Obj) -> Causes:
    causes, owner_spec = validate_replicated(obj, owner="ReplicaSet")
    _validate_strategy(owner_spec, causes)
    history = get_int(owner_spec, "revisionHistoryLimit", "spec", causes)
    causes.extend(nonnegative("spec.revisionHistoryLimit", history))
    deadline = get_int(owner_spec, "progressDeadlineSeconds", "spec", causes)
    if deadline is not None:
        causes.extend(nonnegative("spec.progressDeadlineSeconds", deadline))
        min_ready = owner_spec.get("minReadySeconds")
        if deadline <= (min_ready if isinstance(min_ready, int) else 0):
            causes.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    get_bool(owner_spec, "paused", "spec", causes)
    return causes


STRATEGY = DeploymentStrategy()
