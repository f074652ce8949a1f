"""PodDisruptionBudget (policy/v1, short name ``pdb``): how many of an application's pods voluntary
disruptions (evictions, ``kubectl drain``) may take down at once.

After pkg/registry/policy/poddisruptionbudget and pkg/apis/policy/validation:

- spec: exactly one of ``minAvailable`` / ``maxUnavailable`` (an int >= 0 or a percent <= 100%),
  a LabelSelector (in policy/v1 an empty selector selects every pod of the namespace, a missing
  one none), ``unhealthyPodEvictionPolicy`` ``IfHealthyBudget`` (the behaviour when unset) or
  ``AlwaysAllow``; the spec may change (a change bumps ``metadata.generation``);
- status (written by the disruption controller, and by the eviction subresource when it takes a
  disruption): starts as Kubernetes' zero status; ``/status`` writes keep the counters >= 0;
- ``kubectl get pdb``: NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE ("N/A" for the
  field that is not set).

The Eviction body (``pods/{name}/eviction``) is in this group too: its protobuf table is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import keyed
from ...validation.fielderrors import (Causes, Obj, child, get_int, get_map, get_opt_map, invalid, nonnegative,
                                       not_supported)
from ...validation.formats import PERCENT_RE, full_match
from ...validation.objectmeta import validate_label_selector
from ..apps.deployment import _int_or_percent as validate_positive_int_or_percent
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec, status

ALWAYS_ALLOW = "AlwaysAllow"
IF_HEALTHY_BUDGET = "IfHealthyBudget"
UNHEALTHY_POD_EVICTION_POLICIES = (ALWAYS_ALLOW, IF_HEALTHY_BUDGET)  # sorted, as Kubernetes lists them
STATUS_COUNTERS = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")


class PodDisruptionBudgetStrategy(Strategy):
    group = "policy"
    kind = "PodDisruptionBudget"
    plural = "poddisruptionbudgets"
    singular = "poddisruptionbudget"
    short_names = ("pdb",)
    subresources = ("status",)
    model = "V1PodDisruptionBudget"
    # PodDisruptionBudgetStatus{} as policy/v1 serializes it (the counters are not omitempty).
    initial_status: Obj = {name: 0 for name in STATUS_COUNTERS}
    columns = (
        NAME,
        Column("Min Available", description="The minimum number of pods that must be available."),
        Column("Max Unavailable", description="The maximum number of pods that may be unavailable."),
        Column("Allowed Disruptions", type="integer",
               description="Calculated number of pods that may be disrupted at this time."),
        AGE,
    )
    type_facts = {"V1PodDisruptionBudgetStatus": {"conditions": keyed("type")}}
    protobuf_messages = {
        "PodDisruptionBudget": "metadata:1:ObjectMeta spec:2:PodDisruptionBudgetSpec status:3:PodDisruptionBudgetStatus",
        "PodDisruptionBudgetSpec": (
            "minAvailable:1:IntOrString selector:2:LabelSelector maxUnavailable:3:IntOrString "
            "unhealthyPodEvictionPolicy:4:s"),
        "PodDisruptionBudgetStatus": (
            "observedGeneration:1:i disruptedPods:2:{Time} disruptionsAllowed:3:i! currentHealthy:4:i! "
            "desiredHealthy:5:i! expectedPods:6:i! conditions:7:*Condition"),
        "Eviction": "metadata:1:ObjectMeta deleteOptions:2:DeleteOptions",
    }

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        pdb_spec = get_map(obj, "spec", "", causes)
        if pdb_spec.get("minAvailable") is not None and pdb_spec.get("maxUnavailable") is not None:
            causes.append(invalid("spec", pdb_spec, "minAvailable and maxUnavailable cannot be both set"))
        for name in ("minAvailable", "maxUnavailable"):
            if pdb_spec.get(name) is None:
                continue
            value = validate_positive_int_or_percent(pdb_spec, name, "spec", causes)
            if isinstance(value, str) and full_match(PERCENT_RE, value) and int(value[:-1]) > 100:
                causes.append(invalid(child("spec", name), value, "must not be greater than 100%"))
        selector = get_opt_map(pdb_spec, "selector", "spec", causes)
        if selector is not None:
            validate_label_selector(selector, "spec.selector", causes)
        policy = pdb_spec.get("unhealthyPodEvictionPolicy")
        if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
            causes.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES))
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> Causes:
        causes: Causes = []
        state = get_map(new, "status", "", causes)
        for name in STATUS_COUNTERS:
            causes.extend(nonnegative(f"status.{name}", get_int(state, name, "status", causes)))
        causes.extend(nonnegative("status.observedGeneration",
                                  get_int(state, "observedGeneration", "status", causes, bits=64)))
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        pdb_spec = spec(obj)
        return [name_of(obj), int_or_string(pdb_spec.get("minAvailable")),
                int_or_string(pdb_spec.get("maxUnavailable")),
                int(status(obj).get("disruptionsAllowed") or 0), age(obj, now)]


def int_or_string(value: Any) -> str:
    """``IntOrString.String()`` for the table, "N/A" when the field is not set."""
    return "N/A" if value is None else str(value)


STRATEGY = PodDisruptionBudgetStrategy()
