"""The HorizontalPodAutoscaler's decisions, pure (after pkg/controller/podautoscaler).

Data flow: ``controllers.podautoscaler`` reads the HPA, its target's ``/scale``, the pods its
selector matches and their ``metrics.k8s.io`` PodMetrics, then calls ``plan`` with the HPA's
``HpaMemory`` (recommendation history and scale events, kept between syncs) -> ``Decision``:
the replica count to write to ``/scale`` (or none), the new status (currentReplicas,
desiredReplicas, currentMetrics, lastScaleTime, conditions AbleToScale / ScalingActive /
ScalingLimited with Kubernetes' reasons) and the events to record.

- ``resource_replicas`` / ``raw_resource_replicas``: replica_calculator.go's GetResourceReplicas
  and GetRawResourceReplicas (tolerance, pending / unready / missing pods, no flapping of direction);
- ``normalize`` (no ``behavior``): the downscale stabilisation window over the recommendations and
  the scale-up limit max(2 x current, 4); ``normalize_with_behavior``: the scale-up and scale-down
  windows and the Pods / Percent policies over the scale events of each policy's period, selectPolicy
  Max / Min / Disabled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from machinery.quantity import QuantityError, cpu_millis, parse_quantity, to_bytes
from machinery.timefmt import parse_time

Obj = dict[str, Any]

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0


@dataclass(frozen=True)
class Settings:
    tolerance: float = 0.1
    downscale_stabilization: float = 300.0
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0


@dataclass(frozen=True)
class PodMetric:
    value: int  # milli-units (CPU millicores, memory milli-bytes), as the metrics client gives them
    timestamp: datetime
    window: float  # seconds


class MetricError(Exception):
    """A metric could not give a replica count (the message is Kubernetes' own)."""


# ============================================================================ the replica calculator
def _condition(pod: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None


def _name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name") or "")


def group_pods(pods: Sequence[Mapping[str, Any]], metrics: Mapping[str, PodMetric], resource: str, *,
               now: datetime, settings: Settings) -> tuple[int, set[str], set[str], set[str]]:
    """(ready pod count, unready, missing, ignored) as groupPods does."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        name = _name(pod)
        state = pod.get("status") or {}
        if (pod.get("metadata") or {}).get("deletionTimestamp") or state.get("phase") == "Failed":
            ignored.add(name)
            continue
        if state.get("phase") == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            condition = _condition(pod, "Ready")
            started = parse_time(state.get("startTime"))
            if condition is None or started is None:
                is_unready = True
            else:
                transition = parse_time(condition.get("lastTransitionTime")) or started
                if started + timedelta(seconds=settings.cpu_initialization_period) > now:
                    is_unready = (condition.get("status") == "False"
                                  or metric.timestamp < transition + timedelta(seconds=metric.window))
                else:
                    is_unready = (condition.get("status") == "False"
                                  and started + timedelta(seconds=settings.initial_readiness_delay) > transition)
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def _milli(resource: str, value: Any) -> int:
    if resource == "cpu":
        return cpu_millis(value)
    if resource == "memory":
        return to_bytes(value) * 1000
    return int(parse_quantity(value) * 1000)


def pod_requests(pods: Sequence[Mapping[str, Any]], resource: str, container: str = "") -> dict[str, int]:
    """Each pod's request of ``resource`` in milli-units (calculatePodRequests); MetricError when a
    container has none."""
    out: dict[str, int] = {}
    for pod in pods:
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise MetricError(f"missing request for {resource} in container {c.get('name')} of Pod {_name(pod)}")
            try:
                total += _milli(resource, request)
            except QuantityError:
                raise MetricError(f"invalid request for {resource} in container {c.get('name')} of Pod {_name(pod)}")
        out[_name(pod)] = total
    return out


def utilization_ratio(metrics: Mapping[str, PodMetric], requests: Mapping[str, int],
                      target_utilization: int) -> tuple[float, int, int]:
    """(usage ratio, utilization %, average raw value) as GetResourceUtilizationRatio."""
    metrics_total = requests_total = entries = 0
    for name, metric in metrics.items():
        if name not in requests:
            continue
        metrics_total += metric.value
        requests_total += requests[name]
        entries += 1
    if requests_total == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = int(metrics_total * 100 / requests_total)
    return utilization / target_utilization, utilization, metrics_total // entries


def _adjust_for_unready(current: int, ratio: float, metrics: dict[str, PodMetric], *, unready: set[str],
                        missing: set[str], fallback: dict[str, int], recompute: Any,
                        tolerance: float) -> int | None:
    """The shared tail of both calculators: None when nothing needs adjusting (caller decides)."""
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        return None
    zero = PodMetric(0, datetime.min, 0.0)
    if missing:
        if ratio < 1.0:
            for name in missing:
                metrics[name] = PodMetric(fallback.get(name, 0), datetime.min, 0.0)
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = zero
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = zero
    new_ratio = recompute(metrics)
    if (abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio)):
        return current
    replicas = int(math.ceil(new_ratio * len(metrics)))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current
    return replicas


def resource_replicas(current: int, target_utilization: int, resource: str, pods: Sequence[Mapping[str, Any]],
                      metrics: Mapping[str, PodMetric], *, now: datetime, settings: Settings,
                      container: str = "") -> tuple[int, int, int]:
    """(replicas, utilization %, average raw milli-value) for a Utilization target."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now=now, settings=settings)
    usable = {k: v for k, v in metrics.items() if k not in ignored and k not in unready}
    if not usable:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(usable, requests, target_utilization)
    fallback_pct = max(100, target_utilization)
    adjusted = _adjust_for_unready(
        current, ratio, usable, unready=unready, missing=missing,
        fallback={n: requests.get(n, 0) * fallback_pct // 100 for n in missing},
        recompute=lambda m: utilization_ratio(m, requests, target_utilization)[0], tolerance=settings.tolerance)
    if adjusted is not None:
        return adjusted, utilization, raw
    if abs(1.0 - ratio) <= settings.tolerance:
        return current, utilization, raw
    return int(math.ceil(ratio * ready)), utilization, raw


def raw_resource_replicas(current: int, target_value: int, resource: str, pods: Sequence[Mapping[str, Any]],
                          metrics: Mapping[str, PodMetric], *, now: datetime, settings: Settings) -> tuple[int, int]:
    """(replicas, average milli-value) for an AverageValue target (GetRawResourceReplicas)."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, metrics, resource, now=now, settings=settings)
    usable = {k: v for k, v in metrics.items() if k not in ignored and k not in unready}
    if not usable:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")

    def ratio_of(m: Mapping[str, PodMetric]) -> float:
        return sum(x.value for x in m.values()) / len(m) / target_value

    ratio = ratio_of(usable)
    raw = sum(x.value for x in usable.values()) // len(usable)
    adjusted = _adjust_for_unready(current, ratio, usable, unready=unready, missing=missing,
                                   fallback={n: target_value for n in missing}, recompute=ratio_of,
                                   tolerance=settings.tolerance)
    if adjusted is not None:
        return adjusted, raw
    if abs(1.0 - ratio) <= settings.tolerance:
        return current, raw
    return int(math.ceil(ratio * ready)), raw


# ============================================================================ history and normalisation
@dataclass
class HpaMemory:
    """What the controller remembers of one HPA between syncs (Kubernetes keeps it in memory too)."""

    recommendations: list[tuple[datetime, int]] = field(default_factory=list)
    scale_up_events: list[tuple[datetime, int]] = field(default_factory=list)
    scale_down_events: list[tuple[datetime, int]] = field(default_factory=list)


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


def _changes_in_period(events: Sequence[tuple[datetime, int]], period: float, now: datetime) -> int:
    cutoff = now - timedelta(seconds=period)
    return sum(change for at, change in events if at > cutoff)


def scale_up_limit(current: int, rules: Mapping[str, Any], memory: HpaMemory, now: datetime) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    return _policy_limit(current, rules, memory, now, up=True)


def scale_down_limit(current: int, rules: Mapping[str, Any], memory: HpaMemory, now: datetime) -> int:
    """calculateScaleDownLimitWithBehaviors (the Min policy is the smallest change: the maximum)."""
    return _policy_limit(current, rules, memory, now, up=False)


def _policy_limit(current: int, rules: Mapping[str, Any], memory: HpaMemory, now: datetime, *, up: bool) -> int:
    """The replica count the rules' policies allow from the count at each policy period's start;
    selectPolicy Max picks the biggest change (Min the smallest), Disabled none."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    # Scaling up, the biggest change is the highest count; scaling down, the lowest.
    pick = (min if select == "Min" else max) if up else (max if select == "Min" else min)
    result: int | None = None
    for policy in rules.get("policies") or []:
        period = float(policy.get("periodSeconds") or 15)
        start = (current - _changes_in_period(memory.scale_up_events, period, now)
                 + _changes_in_period(memory.scale_down_events, period, now))
        value = int(policy.get("value") or 0)
        if policy.get("type") == "Pods":
            proposed = start + value if up else start - value
        elif up:
            proposed = int(math.ceil(start * (1 + value / 100)))
        else:
            proposed = int(start * (1 - value / 100))
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def _limit_without_behavior(current: int, desired: int, minimum: int, maximum: int) -> tuple[int, str, str]:
    """convertDesiredReplicasWithRules."""
    limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if desired < minimum:
        return minimum, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if maximum > limit:
        allowed, reason, message = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
    else:
        allowed, reason, message = maximum, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
    if desired > allowed:
        return allowed, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def normalize(current: int, desired: int, *, minimum: int, maximum: int, memory: HpaMemory, now: datetime,
              settings: Settings) -> tuple[int, list[Condition]]:
    """normalizeDesiredReplicas (no ``behavior``): stabilise downscales, then the min/max/rate limits."""
    cutoff = now - timedelta(seconds=settings.downscale_stabilization)
    stabilized = max([desired] + [r for at, r in memory.recommendations if at > cutoff])
    _record(memory.recommendations, now, desired, cutoff)
    conditions = [Condition("AbleToScale", "True", "ScaleDownStabilized",
                            "recent recommendations were higher than current one, applying the highest recent recommendation")
                  if stabilized != desired else
                  Condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")]
    final, reason, message = _limit_without_behavior(current, stabilized, minimum, maximum)
    conditions.append(Condition("ScalingLimited", "False" if final == stabilized else "True", reason, message))
    return final, conditions


def _record(history: list[tuple[datetime, int]], now: datetime, value: int, cutoff: datetime) -> None:
    """Store a recommendation, reusing the slot of one older than every window (as Kubernetes)."""
    for i, (at, _) in enumerate(history):
        if at < cutoff:
            history[i] = (now, value)
            return
    history.append((now, value))


def normalize_with_behavior(current: int, desired: int, *, minimum: int, maximum: int, behavior: Mapping[str, Any],
                            memory: HpaMemory, now: datetime, settings: Settings) -> tuple[int, list[Condition]]:
    """normalizeDesiredReplicasWithBehaviors: both stabilisation windows, then the policies' rates."""
    up = behavior.get("scaleUp") or {}
    down = behavior.get("scaleDown") or {}
    up_window = float(up.get("stabilizationWindowSeconds") or 0)
    down_window = down.get("stabilizationWindowSeconds")
    down_window = float(settings.downscale_stabilization if down_window is None else down_window)
    up_cutoff, down_cutoff = now - timedelta(seconds=up_window), now - timedelta(seconds=down_window)
    up_rec = down_rec = desired
    for at, rec in memory.recommendations:
        if at > up_cutoff:
            up_rec = min(up_rec, rec)
        if at > down_cutoff:
            down_rec = max(down_rec, rec)
    stabilized = min(max(current, up_rec), down_rec)
    _record(memory.recommendations, now, desired, min(up_cutoff, down_cutoff))
    if stabilized != desired:
        if desired >= current:
            able = Condition("AbleToScale", "True", "ScaleUpStabilized",
                             "recent recommendations were lower than current one, applying the lowest recent recommendation")
        else:
            able = Condition("AbleToScale", "True", "ScaleDownStabilized",
                             "recent recommendations were higher than current one, applying the highest recent recommendation")
    else:
        able = Condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size")
    final, reason, message = stabilized, "DesiredWithinRange", "the desired count is within the acceptable range"
    if stabilized > current:
        limit = max(scale_up_limit(current, up, memory, now), current)
        if maximum > limit:
            allowed, why, text = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate"
        else:
            allowed, why, text = maximum, "TooManyReplicas", "the desired replica count is more than the maximum replica count"
        if stabilized > allowed:
            final, reason, message = allowed, why, text
    elif stabilized < current:
        limit = min(scale_down_limit(current, down, memory, now), current)
        if minimum < limit:
            allowed, why, text = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            allowed, why, text = minimum, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
        if stabilized < allowed:
            final, reason, message = allowed, why, text
    return final, [able, Condition("ScalingLimited", "False" if final == stabilized else "True", reason, message)]


def record_scale_event(memory: HpaMemory, *, previous: int, new: int, now: datetime, longest_period: float) -> None:
    """storeScaleEvent: the change, kept while some policy's period may still count it."""
    cutoff = now - timedelta(seconds=longest_period)
    memory.scale_up_events[:] = [e for e in memory.scale_up_events if e[0] > cutoff]
    memory.scale_down_events[:] = [e for e in memory.scale_down_events if e[0] > cutoff]
    if new > previous:
        memory.scale_up_events.append((now, new - previous))
    elif new < previous:
        memory.scale_down_events.append((now, previous - new))


def longest_policy_period(behavior: Mapping[str, Any] | None) -> float:
    periods = [float(p.get("periodSeconds") or 0) for rules in ((behavior or {}).get("scaleUp"), (behavior or {}).get("scaleDown"))
               if isinstance(rules, Mapping) for p in rules.get("policies") or []]
    return max(periods, default=0.0)


__all__ = [
    "Condition", "HpaMemory", "MetricError", "PodMetric", "Settings", "group_pods", "longest_policy_period",
    "normalize", "normalize_with_behavior", "pod_requests", "raw_resource_replicas", "record_scale_event",
    "resource_replicas", "scale_down_limit", "scale_up_limit", "utilization_ratio",
]
