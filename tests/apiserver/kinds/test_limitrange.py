"""LimitRange: Kubernetes' validation of limits[] (types, resource names, how the values must agree)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from apiserver.kinds import validate_object
from apiserver.kinds.core.limitrange import STRATEGY

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def limit_range(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr", "namespace": "ns"},
            "spec": {"limits": list(items)}}


def causes(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.field, c.message) for c in validate_object(STRATEGY, obj)]


def test_valid() -> None:
    assert causes(limit_range(
        {"type": "Container", "max": {"cpu": "1"}, "min": {"cpu": "100m"}, "default": {"cpu": "500m"},
         "defaultRequest": {"cpu": "200m"}, "maxLimitRequestRatio": {"cpu": "5"}},
        {"type": "Pod", "max": {"memory": "1Gi"}},
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}})) == []


@pytest.mark.parametrize("item, expected", [
    ({"type": "Container", "default": {"cpu": "2"}, "max": {"cpu": "1"}},
     [("spec.limits[0].default[cpu]", 'Invalid value: "2": default value 2 is greater than max value 1')]),
    ({"type": "Container", "min": {"memory": "1Gi"}, "max": {"memory": "512Mi"}},
     [("spec.limits[0].min[memory]", 'Invalid value: "1Gi": min value 1Gi is greater than max value 512Mi')]),
    ({"type": "Container", "default": {"cpu": "100m"}, "defaultRequest": {"cpu": "200m"}},
     [("spec.limits[0].defaultRequest[cpu]",
       'Invalid value: "200m": default request value 200m is greater than default limit value 100m')]),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}},
     [("spec.limits[0].maxLimitRequestRatio[cpu]", 'Invalid value: "500m": ratio 500m is less than 1')]),
    ({"type": "Pod", "default": {"cpu": "1"}},
     [("spec.limits[0].default", "Forbidden: may not be specified when `type` is 'Pod'")]),
    ({"type": "PersistentVolumeClaim", "max": {"cpu": "1"}},
     [("spec.limits[0].max[cpu]", 'Invalid value: "cpu": must be a standard resource for persistent volume claims'),
      ("spec.limits[0].limits",
       "Required value: either minimum or maximum storage value is required, but neither was provided")]),
    ({"type": "Widget"}, [("spec.limits[0].type", 'Invalid value: "Widget": must be a standard limit type or fully qualified')]),
])
def test_invalid(item: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert causes(limit_range(item)) == expected


def test_one_item_per_type_and_columns() -> None:
    assert causes(limit_range({"type": "Pod"}, {"type": "Pod"})) == [
        ("spec.limits[1].type", 'Duplicate value: "Pod"')]
    obj = limit_range()
    obj["metadata"]["creationTimestamp"] = "2024-05-01T11:00:00Z"
    assert [c.name for c in STRATEGY.columns] == ["Name", "Created At"]
    assert STRATEGY.row(obj, NOW) == ["lr", "2024-05-01T11:00:00Z"]
    assert STRATEGY.short_names == ("limits",)


def test_container_defaults_from_max_and_min() -> None:
    obj = limit_range({"type": "Container", "max": {"cpu": "800m", "memory": "1Gi"}, "min": {"cpu": "200m"},
                       "default": {"memory": "512Mi"}},
                      {"type": "Container", "min": {"cpu": "100m"}}, {"type": "Pod", "max": {"cpu": "2"}})
    STRATEGY.defaults(obj)
    first, second, pod_item = obj["spec"]["limits"]
    assert first["default"] == {"memory": "512Mi", "cpu": "800m"}
    assert first["defaultRequest"] == {"memory": "512Mi", "cpu": "800m"}
    assert second == {"type": "Container", "min": {"cpu": "100m"}, "defaultRequest": {"cpu": "100m"}}
    assert pod_item == {"type": "Pod", "max": {"cpu": "2"}}
    empty = limit_range({"type": "Container"})
    STRATEGY.defaults(empty)
    assert empty["spec"]["limits"] == [{"type": "Container"}]
