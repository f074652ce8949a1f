"""controllers.hpaplan: Kubernetes' own replica calculator cases (pkg/controller/podautoscaler/
replica_calculator_test.go: two containers per pod, each requesting 1 CPU unless told, levels per
container), and the normalisation: stabilisation windows, the default scale-up limit, behavior
policies with selectPolicy Max / Min / Disabled."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from controllers.hpaplan import (
    HpaMemory, MetricError, PodMetric, Settings, normalize, normalize_with_behavior, record_scale_event,
    resource_replicas, scale_down_limit, scale_up_limit,
)

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
COOL = NOW - timedelta(minutes=10)  # started long ago: past the CPU initialisation period
HOT = NOW - timedelta(seconds=30)  # still initialising
OLD_METRIC = datetime(2000, 1, 1, tzinfo=timezone.utc)
SETTINGS = Settings()
T, F = "True", "False"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def pods(n: int, *, requests: list[str] | None = None, readiness: list[str] | None = None,
         phases: list[str] | None = None, deleting: list[bool] | None = None,
         started: list[datetime] | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        request = (requests or ["1"] * n)[i] if requests is None or i < len(requests) else None
        resources = {"requests": {"cpu": request}} if request is not None else {}
        pod: dict[str, Any] = {
            "metadata": {"name": f"test-pod-{i}"},
            "spec": {"containers": [{"name": "c0", "resources": resources}, {"name": "c1", "resources": resources}]},
            "status": {"phase": (phases or ["Running"] * n)[i], "startTime": _stamp((started or [COOL] * n)[i]),
                       "conditions": [{"type": "Ready", "status": (readiness or [T] * n)[i]}]},
        }
        if deleting and deleting[i]:
            pod["metadata"]["deletionTimestamp"] = _stamp(NOW)
        out.append(pod)
    return out


def metrics(levels: list[int], names: list[str] | None = None) -> dict[str, PodMetric]:
    return {(names[i] if names else f"test-pod-{i}"): PodMetric(2 * level, OLD_METRIC, 60.0)
            for i, level in enumerate(levels)}


# (name, current, pods kwargs, levels, target, expected replicas, utilization, raw value)
CASES: list[tuple[str, int, dict[str, Any], list[int], int, int, int, int]] = [
    ("ScaleUp", 3, {}, [300, 500, 700], 30, 5, 50, 1000),
    ("ScaleUpUnreadyLessScale", 3, {"readiness": [F, T, T]}, [300, 500, 700], 30, 4, 60, 1200),
    ("ScaleUpHotCpuLessScale", 3, {"started": [HOT, COOL, COOL]}, [300, 500, 700], 30, 4, 60, 1200),
    ("ScaleUpUnreadyNoScale", 3, {"readiness": [T, F, F]}, [400, 500, 700], 30, 3, 40, 800),
    ("ScaleHotCpuNoScale", 3, {"readiness": [T, F, F], "started": [COOL, HOT, HOT]}, [400, 500, 700], 30, 3, 40, 800),
    ("ScaleUpIgnoresFailedPods", 2, {"n": 4, "readiness": [T, T, F, F], "phases": ["Running", "Running", "Failed", "Failed"]},
     [500, 700], 30, 4, 60, 1200),
    ("ScaleUpIgnoresDeletionPods", 2, {"n": 4, "readiness": [T, T, F, F], "deleting": [False, False, True, True]},
     [500, 700], 30, 4, 60, 1200),
    ("ScaleDown", 5, {}, [100, 300, 500, 250, 250], 50, 3, 28, 560),
    ("ScaleDownIncludeUnreadyPods", 5, {"readiness": [T, T, T, F, F]}, [100, 300, 500, 250, 250], 50, 2, 30, 600),
    ("ScaleDownExcludeUnscheduledPods", 5, {"readiness": [T, F, F, F, F],
                                            "phases": ["Running", "Pending", "Pending", "Pending", "Pending"]},
     [100], 50, 1, 10, 200),
    ("ScaleDownIgnoreHotCpuPods", 5, {"started": [COOL, COOL, COOL, HOT, HOT]}, [100, 300, 500, 250, 250], 50, 2, 30, 600),
    ("ScaleDownIgnoresFailedPods", 5, {"n": 7, "readiness": [T, T, T, T, T, F, F],
                                       "phases": ["Running"] * 5 + ["Failed", "Failed"]},
     [100, 300, 500, 250, 250], 50, 3, 28, 560),
    ("Tolerance", 3, {"requests": ["0.9", "1.0", "1.1"]}, [1010, 1030, 1020], 100, 3, 102, 2040),
    ("SuperfluousMetrics", 4, {}, [4000, 9500, 3000, 7000, 3200, 2000], 100, 24, 587, 11750),
    ("MissingMetrics", 4, {}, [400, 95], 100, 3, 24, 495),
    ("MissingMetricsNoChangeEq", 2, {}, [1000], 100, 2, 100, 2000),
    ("MissingMetricsNoChangeGt", 2, {}, [1900], 100, 2, 190, 3800),
    ("MissingMetricsNoChangeLt", 2, {}, [600], 100, 2, 60, 1200),
    ("MissingMetricsUnreadyChange", 3, {"readiness": [F, T, T]}, [100, 450], 50, 3, 45, 900),
    ("MissingMetricsHotCpuNoChange", 3, {"started": [HOT, COOL, COOL]}, [100, 450], 50, 3, 45, 900),
    ("MissingMetricsUnreadyScaleUp", 3, {"readiness": [F, T, T]}, [100, 2000], 50, 4, 200, 4000),
    ("MissingMetricsHotCpuScaleUp", 3, {"readiness": [F, T, T], "started": [HOT, COOL, COOL]}, [100, 2000], 50, 4, 200, 4000),
    ("MissingMetricsUnreadyScaleDown", 4, {"readiness": [F, T, T, T]}, [100, 100, 100], 50, 3, 10, 200),
    ("DuringRollingUpdateWithMaxSurge", 2, {"n": 3}, [100, 100], 50, 2, 10, 200),
]


@pytest.mark.parametrize(("current", "spec", "levels", "target", "replicas", "utilization", "raw"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_replica_calculator_matches_kubernetes(current: int, spec: dict[str, Any], levels: list[int], target: int,
                                               replicas: int, utilization: int, raw: int) -> None:
    spec = dict(spec)
    n = spec.pop("n", current)
    if spec.get("requests") is None:
        spec["requests"] = ["1"] * n
    got = resource_replicas(current, target, "cpu", pods(n, **spec), metrics(levels), now=NOW, settings=SETTINGS)
    assert got == (replicas, utilization, raw)


@pytest.mark.parametrize(("kwargs", "levels", "names", "message"), [
    ({"requests": ["1"]}, [100], ["an-older-pod-name"], "no metrics returned matched known pods"),
    ({"requests": []}, [200], None, "missing request for cpu in container c0 of Pod test-pod-0"),
])
def test_replica_calculator_errors(kwargs: dict[str, Any], levels: list[int], names: list[str] | None,
                                   message: str) -> None:
    with pytest.raises(MetricError, match=message):
        resource_replicas(1, 100, "cpu", pods(1, **kwargs), metrics(levels, names), now=NOW, settings=SETTINGS)


def test_no_pods_is_an_error() -> None:
    with pytest.raises(MetricError, match="no pods returned by selector while calculating replica count"):
        resource_replicas(1, 50, "cpu", [], {}, now=NOW, settings=SETTINGS)


# ------------------------------------------------------------------------ normalisation, no behavior
def test_scale_down_waits_for_the_highest_recommendation_of_the_window() -> None:
    memory = HpaMemory(recommendations=[(NOW - timedelta(seconds=100), 8), (NOW - timedelta(seconds=400), 10)])
    desired, conditions = normalize(6, 3, minimum=1, maximum=10, memory=memory, now=NOW, settings=SETTINGS)
    assert desired == 8  # the 400 s old 10 is outside the 300 s window
    assert (conditions[0].type, conditions[0].reason) == ("AbleToScale", "ScaleDownStabilized")
    assert (NOW, 3) in memory.recommendations  # recorded in the outdated slot
    assert len(memory.recommendations) == 2


@pytest.mark.parametrize(("current", "desired", "expected", "reason"), [
    (1, 10, 4, "ScaleUpLimit"),  # max(2 x 1, 4)
    (3, 10, 6, "ScaleUpLimit"),  # 2 x 3
    (4, 30, 8, "ScaleUpLimit"),
    (8, 30, 10, "TooManyReplicas"),
    (3, 0, 2, "TooFewReplicas"),
    (3, 5, 5, "DesiredWithinRange"),
])
def test_default_rate_and_bounds(current: int, desired: int, expected: int, reason: str) -> None:
    got, conditions = normalize(current, desired, minimum=2, maximum=10, memory=HpaMemory(), now=NOW,
                                settings=SETTINGS)
    assert got == expected
    limited = conditions[1]
    assert (limited.type, limited.reason, limited.status) == (
        "ScalingLimited", reason, "False" if reason == "DesiredWithinRange" else "True")


# ------------------------------------------------------------------------ behavior
UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
      "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


@pytest.mark.parametrize(("rules", "current", "expected"), [
    (UP, 1, 5),  # Pods 4 -> 5 beats Percent 100 -> 2
    (UP, 10, 20),  # Percent 100 -> 20 beats Pods 4 -> 14
    ({**UP, "selectPolicy": "Min"}, 10, 14),
    ({**UP, "selectPolicy": "Disabled"}, 10, 10),
    ({"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}, 3, 5),  # ceil(4.5)
])
def test_scale_up_limit(rules: dict[str, Any], current: int, expected: int) -> None:
    assert scale_up_limit(current, rules, HpaMemory(), NOW) == expected


@pytest.mark.parametrize(("rules", "current", "expected"), [
    (DOWN, 10, 0),
    ({"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60},
                                          {"type": "Percent", "value": 10, "periodSeconds": 60}]}, 10, 8),
    ({"selectPolicy": "Min", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60},
                                          {"type": "Percent", "value": 10, "periodSeconds": 60}]}, 10, 9),
    ({"selectPolicy": "Disabled", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}, 10, 10),
])
def test_scale_down_limit(rules: dict[str, Any], current: int, expected: int) -> None:
    assert scale_down_limit(current, rules, HpaMemory(), NOW) == expected


def test_scale_events_of_the_period_count_against_the_policy() -> None:
    memory = HpaMemory()
    rules = {"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]}
    record_scale_event(memory, previous=4, new=6, now=NOW - timedelta(seconds=30), longest_period=60)
    # The period started at 4 replicas: 2 more already happened, so no more now.
    assert scale_up_limit(6, rules, memory, NOW) == 6
    # After the period the events no longer count.
    assert scale_up_limit(6, rules, memory, NOW + timedelta(seconds=31)) == 8


def test_behavior_windows_and_policies() -> None:
    behavior = {"scaleUp": {**UP, "stabilizationWindowSeconds": 60},
                "scaleDown": {**DOWN, "stabilizationWindowSeconds": 0}}
    memory = HpaMemory(recommendations=[(NOW - timedelta(seconds=30), 4)])
    # Scale up from 3 to 10 is held to the lowest recommendation of the last 60 s (4).
    got, conditions = normalize_with_behavior(3, 10, minimum=1, maximum=20, behavior=behavior, memory=memory,
                                              now=NOW, settings=SETTINGS)
    assert got == 4
    assert conditions[0].reason == "ScaleUpStabilized"
    # No up window: Pods 4 per 15 s allows 3 -> 7 at most.
    behavior["scaleUp"]["stabilizationWindowSeconds"] = 0
    got, conditions = normalize_with_behavior(3, 30, minimum=1, maximum=20, behavior=behavior, memory=HpaMemory(),
                                              now=NOW, settings=SETTINGS)
    assert got == 7 and conditions[1].reason == "ScaleUpLimit"
    # Scale down with the flag's window (no window in the behavior): the highest recent recommendation wins.
    behavior["scaleDown"].pop("stabilizationWindowSeconds")
    memory = HpaMemory(recommendations=[(NOW - timedelta(seconds=100), 6)])
    got, conditions = normalize_with_behavior(8, 2, minimum=1, maximum=20, behavior=behavior, memory=memory,
                                              now=NOW, settings=SETTINGS)
    assert got == 6 and conditions[0].reason == "ScaleDownStabilized"
    # A disabled scale down never lowers the count.
    behavior["scaleDown"] = {"selectPolicy": "Disabled", "stabilizationWindowSeconds": 0, "policies": DOWN["policies"]}
    got, conditions = normalize_with_behavior(8, 2, minimum=1, maximum=20, behavior=behavior, memory=HpaMemory(),
                                              now=NOW, settings=SETTINGS)
    assert got == 8 and conditions[1].reason == "ScaleDownLimit"
