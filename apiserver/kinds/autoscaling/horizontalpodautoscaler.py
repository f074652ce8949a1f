"""HorizontalPodAutoscaler (autoscaling/v2, stored; autoscaling/v1 served by conversion).

After pkg/registry/autoscaling/horizontalpodautoscaler, pkg/apis/autoscaling/v2/defaults.go,
pkg/apis/autoscaling/validation and pkg/apis/autoscaling/v1/conversion.go:

- defaults (v2): ``minReplicas`` 1; no metrics -> one ``Resource`` cpu ``Utilization`` 80 %;
  a ``behavior`` that is given gets its missing rules filled (scaleUp: window 0, policies
  4 Pods and 100 Percent per 15 s, selectPolicy Max; scaleDown: policies 100 Percent per 15 s,
  selectPolicy Max, the window left to the controller's ``--horizontal-pod-autoscaler-downscale-stabilization``);
- validation with Kubernetes' messages (scaleTargetRef, min/max replicas, metric sources and
  targets, behavior rules);
- ``/status`` holds what the controller observed; the main resource never changes it;
- columns NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE, TARGETS as ``cpu: 45%/50%``.

autoscaling/v1 objects are the same objects seen through ``to_v1`` / ``from_v1``:
``targetCPUUtilizationPercentage`` is the cpu Utilization metric; every other v2 field (other
metrics, behavior, current metrics, conditions) rides in the ``autoscaling.alpha.kubernetes.io/*``
annotations on v1 reads (as v2 JSON) and comes back from them on v1 writes.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from machinery.quantity import QuantityError, parse_quantity

from ...decode import decode as decode_body
from ...openapi.facts import keyed
from ...validation.fielderrors import Causes, Obj, forbidden, invalid, not_supported, required
from ...validation.formats import dns1123_subdomain_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec, status

DEFAULT_CPU_UTILIZATION = 80
METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/metrics"
CURRENT_METRICS_ANNOTATION = "autoscaling.alpha.kubernetes.io/current-metrics"
CONDITIONS_ANNOTATION = "autoscaling.alpha.kubernetes.io/conditions"
BEHAVIOR_ANNOTATION = "autoscaling.alpha.kubernetes.io/behavior"
_V1_ANNOTATIONS = (METRICS_ANNOTATION, CURRENT_METRICS_ANNOTATION, CONDITIONS_ANNOTATION, BEHAVIOR_ANNOTATION)

METRIC_TYPES = ("ContainerResource", "External", "Object", "Pods", "Resource")
TARGET_TYPES = ("AverageValue", "Utilization", "Value")
POLICY_TYPES = ("Percent", "Pods")
SELECT_POLICIES = ("Disabled", "Max", "Min")
MAX_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800


def scale_up_defaults() -> Obj:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def scale_down_defaults() -> Obj:
    # No window: the controller's --horizontal-pod-autoscaler-downscale-stabilization (300 s) applies.
    return {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _fill_rules(rules: Any, defaults: Obj) -> Obj:
    out = dict(rules) if isinstance(rules, Mapping) else {}
    for key, value in defaults.items():
        if out.get(key) is None:
            out[key] = copy.deepcopy(value)
    return out


def cpu_metric(utilization: int) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                     "averageUtilization": utilization}}}


# ------------------------------------------------------------------------------ v1 <-> v2
def _is_cpu_utilization(metric: Mapping[str, Any]) -> bool:
    resource = metric.get("resource") or {}
    target = resource.get("target") or {}
    return (metric.get("type") == "Resource" and resource.get("name") == "cpu"
            and target.get("type") == "Utilization")


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


def to_v1(obj: Mapping[str, Any]) -> Obj:
    """A stored (v2) object as autoscaling/v1 shows it."""
    out = copy.deepcopy(dict(obj))
    out["apiVersion"] = "autoscaling/v1"
    meta = out.setdefault("metadata", {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _V1_ANNOTATIONS}
    v2_spec = out.get("spec") or {}
    v1_spec: Obj = {k: v2_spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in v2_spec}
    others = []
    for metric in v2_spec.get("metrics") or []:
        if _is_cpu_utilization(metric) and "targetCPUUtilizationPercentage" not in v1_spec:
            v1_spec["targetCPUUtilizationPercentage"] = metric["resource"]["target"].get("averageUtilization")
        else:
            others.append(metric)
    if others:
        annotations[METRICS_ANNOTATION] = _dump(others)
    if v2_spec.get("behavior"):
        annotations[BEHAVIOR_ANNOTATION] = _dump(v2_spec["behavior"])
    out["spec"] = v1_spec
    if "status" in out:
        v2_status = out.get("status") or {}
        v1_status: Obj = {k: v2_status[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas",
                                                   "desiredReplicas") if k in v2_status}
        v1_status.setdefault("currentReplicas", 0)
        v1_status.setdefault("desiredReplicas", 0)
        current_others = []
        for metric in v2_status.get("currentMetrics") or []:
            resource = metric.get("resource") or {}
            current = resource.get("current") or {}
            if (metric.get("type") == "Resource" and resource.get("name") == "cpu"
                    and current.get("averageUtilization") is not None
                    and "currentCPUUtilizationPercentage" not in v1_status):
                v1_status["currentCPUUtilizationPercentage"] = current["averageUtilization"]
            else:
                current_others.append(metric)
        if current_others:
            annotations[CURRENT_METRICS_ANNOTATION] = _dump(current_others)
        if v2_status.get("conditions"):
            annotations[CONDITIONS_ANNOTATION] = _dump(v2_status["conditions"])
        out["status"] = v1_status
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return out


def _load(annotations: Mapping[str, Any], key: str) -> Any:
    try:
        return orjson.loads(str(annotations[key])) if key in annotations else None
    except orjson.JSONDecodeError:
        return None


def from_v1(obj: Mapping[str, Any]) -> Obj:
    """An autoscaling/v1 body as the v2 object it stands for (the annotations back into fields)."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    v1_spec = out.get("spec") or {}
    v2_spec: Obj = {k: v1_spec[k] for k in ("scaleTargetRef", "minReplicas", "maxReplicas") if k in v1_spec}
    metrics: list[Any] = []
    if v1_spec.get("targetCPUUtilizationPercentage") is not None:
        metrics.append(cpu_metric(v1_spec["targetCPUUtilizationPercentage"]))
    others = _load(annotations, METRICS_ANNOTATION)
    if isinstance(others, list):
        metrics.extend(m for m in others if isinstance(m, dict))
    if metrics:
        v2_spec["metrics"] = metrics
    behavior = _load(annotations, BEHAVIOR_ANNOTATION)
    if isinstance(behavior, dict):
        v2_spec["behavior"] = behavior
    out["spec"] = v2_spec
    if "status" in out:
        v1_status = out.get("status") or {}
        v2_status: Obj = {k: v1_status[k] for k in ("observedGeneration", "lastScaleTime", "currentReplicas",
                                                   "desiredReplicas") if k in v1_status}
        current: list[Any] = []
        if v1_status.get("currentCPUUtilizationPercentage") is not None:
            current.append({"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": v1_status["currentCPUUtilizationPercentage"]}}})
        more = _load(annotations, CURRENT_METRICS_ANNOTATION)
        if isinstance(more, list):
            current.extend(m for m in more if isinstance(m, dict))
        if current:
            v2_status["currentMetrics"] = current
        conditions = _load(annotations, CONDITIONS_ANNOTATION)
        if isinstance(conditions, list):
            v2_status["conditions"] = conditions
        out["status"] = v2_status
    kept = {k: v for k, v in annotations.items() if k not in _V1_ANNOTATIONS}
    if kept:
        meta["annotations"] = kept
    else:
        meta.pop("annotations", None)
    return out


# ------------------------------------------------------------------------------ validation
def _positive(value: Any, path: str, causes: Causes, detail: str = "must be greater than 0") -> None:
    if isinstance(value, int) and value <= 0:
        causes.append(invalid(path, value, detail))


def _validate_target(target: Any, path: str, causes: Causes, *, utilization_ok: bool) -> None:
    if not isinstance(target, Mapping):
        causes.append(required(path, "must specify a metric target"))
        return
    kind = target.get("type")
    if not kind:
        causes.append(required(f"{path}.type", "must specify a metric target type"))
    elif kind not in TARGET_TYPES:
        causes.append(not_supported(f"{path}.type", kind, TARGET_TYPES))
    for field in ("value", "averageValue"):
        value = target.get(field)
        if value is None:
            continue
        try:
            if parse_quantity(value) <= 0:
                causes.append(invalid(f"{path}.{field}", value, "must be positive"))
        except QuantityError as e:
            causes.append(invalid(f"{path}.{field}", value, str(e)))
    utilization = target.get("averageUtilization")
    _positive(utilization, f"{path}.averageUtilization", causes)
    if kind == "Utilization" and utilization is None:
        causes.append(required(f"{path}.averageUtilization", "must set either a target raw value or a target utilization"))
    if kind == "Value" and target.get("value") is None:
        causes.append(required(f"{path}.value", "must set either a target value for metric or a target utilization"))
    if kind == "AverageValue" and target.get("averageValue") is None:
        causes.append(required(f"{path}.averageValue", "must set either a target value for metric or a target utilization"))
    if utilization is not None and not utilization_ok:
        causes.append(forbidden(f"{path}.averageUtilization", "may not be set for non-resource metrics"))


_SOURCE_FIELD = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
                 "Object": "object", "External": "external"}


def _validate_metric(metric: Any, path: str, causes: Causes) -> None:
    if not isinstance(metric, Mapping):
        causes.append(required(path))
        return
    kind = metric.get("type")
    if not kind:
        causes.append(required(f"{path}.type", "must specify a metric source type"))
        return
    if kind not in METRIC_TYPES:
        causes.append(not_supported(f"{path}.type", kind, METRIC_TYPES))
        return
    field = _SOURCE_FIELD[kind]
    for other_kind, other_field in _SOURCE_FIELD.items():
        if other_kind != kind and metric.get(other_field) is not None:
            causes.append(invalid(f"{path}.{other_field}", "", "must populate information for the given metric source"))
    source = metric.get(field)
    if not isinstance(source, Mapping):
        causes.append(required(f"{path}.{field}", "must populate information for the given metric source"))
        return
    if kind in ("Resource", "ContainerResource"):
        if not source.get("name"):
            causes.append(required(f"{path}.{field}.name", "must specify a resource name"))
        if kind == "ContainerResource" and not source.get("container"):
            causes.append(required(f"{path}.{field}.container", "must specify a container"))
    else:
        ident = source.get("metric") or {}
        if not ident.get("name"):
            causes.append(required(f"{path}.{field}.metric.name", "must specify a metric name"))
        if kind == "Object":
            ref = source.get("describedObject") or {}
            for key in ("kind", "name"):
                if not ref.get(key):
                    causes.append(required(f"{path}.{field}.describedObject.{key}"))
    _validate_target(source.get("target"), f"{path}.{field}.target", causes,
                     utilization_ok=kind in ("Resource", "ContainerResource"))


def _validate_rules(rules: Any, path: str, causes: Causes) -> None:
    if not isinstance(rules, Mapping):
        return
    window = rules.get("stabilizationWindowSeconds")
    if isinstance(window, int):
        if window < 0:
            causes.append(invalid(f"{path}.stabilizationWindowSeconds", window, "must be greater than or equal to zero"))
        elif window > MAX_WINDOW_SECONDS:
            causes.append(invalid(f"{path}.stabilizationWindowSeconds", window,
                                  f"must be less than or equal to {MAX_WINDOW_SECONDS}"))
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        causes.append(not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES))
    policies = rules.get("policies")
    if not policies:
        causes.append(required(f"{path}.policies", "must specify at least one Policy"))
        return
    for i, policy in enumerate(policies):
        p = f"{path}.policies[{i}]"
        if not isinstance(policy, Mapping):
            continue
        if policy.get("type") not in POLICY_TYPES:
            causes.append(not_supported(f"{p}.type", policy.get("type"), POLICY_TYPES))
        value = policy.get("value")
        if not isinstance(value, int) or value <= 0:
            causes.append(invalid(f"{p}.value", value, "must be greater than zero"))
        period = policy.get("periodSeconds")
        if not isinstance(period, int) or period <= 0:
            causes.append(invalid(f"{p}.periodSeconds", period, "must be greater than zero"))
        elif period > MAX_PERIOD_SECONDS:
            causes.append(invalid(f"{p}.periodSeconds", period, f"must be less than or equal to {MAX_PERIOD_SECONDS}"))


def validate_hpa_spec(hpa_spec: Mapping[str, Any], causes: Causes) -> None:
    ref = hpa_spec.get("scaleTargetRef")
    if not isinstance(ref, Mapping):
        causes.append(required("spec.scaleTargetRef"))
        ref = {}
    if not ref.get("kind"):
        causes.append(required("spec.scaleTargetRef.kind"))
    elif "/" in str(ref["kind"]) or "%" in str(ref["kind"]):
        causes.append(invalid("spec.scaleTargetRef.kind", ref["kind"], "may not contain '/' or '%'"))
    if not ref.get("name"):
        causes.append(required("spec.scaleTargetRef.name"))
    elif str(ref["name"]) in (".", "..") or "/" in str(ref["name"]) or "%" in str(ref["name"]):
        causes.append(invalid("spec.scaleTargetRef.name", ref["name"], "may not contain '/' or '%'"))
    minimum = hpa_spec.get("minReplicas")
    maximum = hpa_spec.get("maxReplicas")
    if isinstance(minimum, int) and minimum < 1:
        causes.append(invalid("spec.minReplicas", minimum, "must be greater than or equal to 1"))
    if not isinstance(maximum, int) or maximum < 1:
        causes.append(invalid("spec.maxReplicas", maximum, "must be greater than 0"))
    elif isinstance(minimum, int) and maximum < minimum:
        causes.append(invalid("spec.maxReplicas", maximum, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(hpa_spec.get("metrics") or []):
        _validate_metric(metric, f"spec.metrics[{i}]", causes)
    behavior = hpa_spec.get("behavior")
    if isinstance(behavior, Mapping):
        _validate_rules(behavior.get("scaleUp"), "spec.behavior.scaleUp", causes)
        _validate_rules(behavior.get("scaleDown"), "spec.behavior.scaleDown", causes)


# ------------------------------------------------------------------------------ table cells
def _quantity_text(value: Any) -> str:
    return str(value) if value is not None else "<unknown>"


def _metric_pair(metric: Mapping[str, Any], current: Mapping[str, Any] | None) -> str:
    kind = metric.get("type")
    field = _SOURCE_FIELD.get(str(kind), "")
    source = metric.get(field) or {}
    target = source.get("target") or {}
    cur = ((current or {}).get(field) or {}).get("current") or {}
    if kind in ("Resource", "ContainerResource"):
        prefix = f"{source.get('name')}: " if kind == "Resource" else f"{source.get('name')} of container {source.get('container')}: "
        if target.get("averageUtilization") is not None:
            now = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
            return f"{prefix}{now}/{target['averageUtilization']}%"
        return f"{prefix}{_quantity_text(cur.get('averageValue'))}/{_quantity_text(target.get('averageValue'))}"
    if target.get("type") == "Value":
        return f"{_quantity_text(cur.get('value'))}/{_quantity_text(target.get('value'))}"
    suffix = " (avg)" if kind == "External" else ""
    return f"{_quantity_text(cur.get('averageValue'))}/{_quantity_text(target.get('averageValue'))}{suffix}"


def format_targets(obj: Mapping[str, Any]) -> str:
    """The TARGETS cell (printers.go formatHPAMetrics): up to two metrics, then "+ N more..."."""
    metrics = [m for m in spec(obj).get("metrics") or [] if isinstance(m, Mapping)]
    if not metrics:
        return "<none>"
    currents = [c for c in status(obj).get("currentMetrics") or [] if isinstance(c, Mapping)]
    parts = [_metric_pair(m, currents[i] if i < len(currents) and currents[i].get("type") == m.get("type") else None)
             for i, m in enumerate(metrics)]
    if len(parts) > 2:
        return ", ".join(parts[:2]) + f" + {len(parts) - 2} more..."
    return ", ".join(parts)


# ------------------------------------------------------------------------------ the strategy
class HorizontalPodAutoscalerStrategy(Strategy):
    group = "autoscaling"
    version = "v2"
    kind = "HorizontalPodAutoscaler"
    plural = "horizontalpodautoscalers"
    singular = "horizontalpodautoscaler"
    short_names = ("hpa",)
    categories = ("all",)
    subresources = ("status",)
    model = "V2HorizontalPodAutoscaler"
    initial_status: Obj = {"currentReplicas": 0, "desiredReplicas": 0}
    columns = (
        NAME,
        Column("Reference", description="reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
        Column("Targets", description="the metrics used to calculate the desired replica count"),
        Column("MinPods", description="minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
        Column("MaxPods", type="integer", description="maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."),
        Column("Replicas", type="integer", description="currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
        AGE,
    )
    type_facts = {"V2HorizontalPodAutoscalerStatus": {"conditions": keyed("type")}}

    def name_errors(self, name: str) -> list[str]:
        return dns1123_subdomain_errors(name)

    def defaults(self, obj: Obj) -> None:
        hpa_spec = obj.get("spec")
        if not isinstance(hpa_spec, dict):
            return
        if hpa_spec.get("minReplicas") is None:
            hpa_spec["minReplicas"] = 1
        if not hpa_spec.get("metrics"):
            hpa_spec["metrics"] = [cpu_metric(DEFAULT_CPU_UTILIZATION)]
        behavior = hpa_spec.get("behavior")
        if isinstance(behavior, dict):
            behavior["scaleUp"] = _fill_rules(behavior.get("scaleUp"), scale_up_defaults())
            behavior["scaleDown"] = _fill_rules(behavior.get("scaleDown"), scale_down_defaults())

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        hpa_spec = obj.get("spec")
        if not isinstance(hpa_spec, Mapping):
            return [required("spec")]
        validate_hpa_spec(hpa_spec, causes)
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        if obj.get("apiVersion") == "autoscaling/v1":
            obj = from_v1(obj)
        hpa_spec = spec(obj)
        ref = hpa_spec.get("scaleTargetRef") or {}
        minimum = hpa_spec.get("minReplicas")
        return [name_of(obj), f"{ref.get('kind', '')}/{ref.get('name', '')}", format_targets(obj),
                "<unset>" if minimum is None else str(minimum), int(hpa_spec.get("maxReplicas") or 0),
                int(status(obj).get("currentReplicas") or 0), age(obj, now)]


class HorizontalPodAutoscalerV1Strategy(HorizontalPodAutoscalerStrategy):
    """autoscaling/v1: the v2 object through ``to_v1`` (reads) and ``from_v1`` (writes)."""

    version = "v1"
    model = "V1HorizontalPodAutoscaler"
    type_facts = {}
    # kubectl autoscale posts autoscaling/v1 protobuf (the message names are the v1 ones).
    protobuf_messages = {
        "HorizontalPodAutoscaler": (
            "metadata:1:ObjectMeta spec:2:HorizontalPodAutoscalerSpec status:3:HorizontalPodAutoscalerStatus"),
        "HorizontalPodAutoscalerSpec": (
            "scaleTargetRef:1:CrossVersionObjectReference minReplicas:2:i maxReplicas:3:i! "
            "targetCPUUtilizationPercentage:4:i"),
        "CrossVersionObjectReference": "kind:1:s! name:2:s! apiVersion:3:s",
        "HorizontalPodAutoscalerStatus": (
            "observedGeneration:1:i lastScaleTime:2:Time currentReplicas:3:i! desiredReplicas:4:i! "
            "currentCPUUtilizationPercentage:5:i"),
    }

    @property
    def storage_api_version(self) -> str:
        return "autoscaling/v2"

    def decode(self, body: Obj) -> tuple[Obj, list[str]]:
        obj, unknown = decode_body(self.model, body)
        return from_v1(obj), unknown

    def from_storage(self, obj: Mapping[str, Any]) -> Obj:
        return to_v1(obj)


STRATEGY = HorizontalPodAutoscalerStrategy()
MORE_VERSIONS = (HorizontalPodAutoscalerV1Strategy(),)
