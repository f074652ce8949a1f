"""ResourceQuota (core/v1, short name ``quota``): hard limits on what a namespace may consume.

After pkg/registry/core/resourcequota/strategy.go and ``ValidateResourceQuota``: ``spec.hard``
names standard quota resources (``pods``, ``requests.cpu``, ``services.nodeports``, ...),
hugepages, or qualified names (``count/deployments.apps``, ``requests.example.com/gpu``) with
non-negative quantities (whole numbers for object counts); ``spec.scopes`` and
``spec.scopeSelector`` take the standard scopes, each only over the pod resources it can
restrict. The status (``hard`` and ``used``) is written through ``/status`` by the resource
quota controller and by the ResourceQuota admission (``apiserver/admission``); a create starts
without one. ``kubectl get quota`` shows ``pods: 1/2, requests.cpu: 0/1`` in REQUEST and the
``limits.*`` resources in LIMIT, sorted by name, as Kubernetes' printer does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.quantity import QuantityError, parse_quantity
from machinery.quota import format_quantity

from ...validation.fielderrors import (Causes, Obj, child, each, get_list, get_map, get_opt_map, index, invalid,
                                       key, not_supported, required)
from ...validation.formats import qualified_name_errors
from ..base import AGE, NAME, Column, Strategy, age, name_of, status

STANDARD_QUOTA_RESOURCES = frozenset({
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods",
    "services", "replicationcontrollers", "resourcequotas", "secrets", "persistentvolumeclaims", "configmaps",
    "services.nodeports", "services.loadbalancers"})
INTEGER_RESOURCES = frozenset({
    "pods", "services", "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
    "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"})
SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
          "CrossNamespacePodAffinity")
OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_POD_COMPUTE = frozenset({"pods", "cpu", "memory", "limits.cpu", "limits.memory", "requests.cpu", "requests.memory"})
_CONFLICTING = (("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating"))


def scope_covers(scope: str, resource: str) -> bool:
    """``IsResourceQuotaScopeValidForResource``: BestEffort only restricts ``pods``."""
    if scope == "BestEffort":
        return resource == "pods"
    return resource in _POD_COMPUTE


def _resource_name_errors(name: str, path: str) -> Causes:
    errs = each(path, name, qualified_name_errors(name))
    if errs:
        return errs
    if "/" not in name and name not in STANDARD_QUOTA_RESOURCES and not name.startswith(
            ("hugepages-", "requests.hugepages-")):
        return [invalid(path, name, "must be a standard resource for quota")]
    return []


def validate_resource_list(values: Obj, path: str) -> Causes:
    """A quota ResourceList: quota resource names, quantities >= 0, counts whole."""
    causes: Causes = []
    for name, value in values.items():
        item = key(path, name)
        causes += _resource_name_errors(name, item)
        try:
            amount = parse_quantity(value)
        except QuantityError as exc:
            causes.append(invalid(item, value, str(exc)))
            continue
        if amount < 0:
            causes.append(invalid(item, value, "must be greater than or equal to 0"))
        elif name in INTEGER_RESOURCES and (amount * 1000) % 1000 != 0:
            causes.append(invalid(item, value, "must be an integer"))
    return causes


def _validate_scopes(quota_spec: Obj, causes: Causes) -> None:
    scopes = get_list(quota_spec, "scopes", "spec", causes)
    if not scopes:
        return
    hard = [n for n in (quota_spec.get("hard") or {}) if n in STANDARD_QUOTA_RESOURCES]
    for scope in scopes:
        if scope not in SCOPES:
            causes.append(invalid("spec.scopes", scopes, "unsupported scope"))
        if any(not scope_covers(str(scope), r) for r in sorted(hard)):
            causes.append(invalid("spec.scopes", scopes, "unsupported scope applied to resource"))
    for pair in _CONFLICTING:
        if all(s in scopes for s in pair):
            causes.append(invalid("spec.scopes", scopes, "conflicting scopes"))


def _validate_scope_selector(quota_spec: Obj, causes: Causes) -> None:
    selector = get_opt_map(quota_spec, "scopeSelector", "spec", causes)
    if selector is None:
        return
    path = "spec.scopeSelector.matchExpressions"
    hard = [n for n in (quota_spec.get("hard") or {}) if n in STANDARD_QUOTA_RESOURCES]
    for i, req in enumerate(get_list(selector, "matchExpressions", "spec.scopeSelector", causes)):
        item = index(path, i)
        if not isinstance(req, Mapping):
            continue
        scope, op, values = req.get("scopeName"), req.get("operator"), req.get("values") or []
        if scope not in SCOPES:
            causes.append(invalid(child(item, "scopeName"), scope, "unsupported scope"))
        elif any(not scope_covers(str(scope), r) for r in hard):
            causes.append(invalid(child(item, "scopeName"), scope, "unsupported scope applied to resource"))
        if op not in OPERATORS:
            causes.append(not_supported(child(item, "operator"), op, OPERATORS))
        elif op in ("In", "NotIn") and not values:
            causes.append(required(child(item, "values"),
                                   "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
        elif op in ("Exists", "DoesNotExist") and values:
            causes.append(invalid(child(item, "values"), values,
                                  "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
        if scope in SCOPES and scope != "PriorityClass" and op in OPERATORS and op != "Exists":
            causes.append(invalid(child(item, "operator"), op,
                                  "must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, "
                                  "ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, "
                                  "ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))


def quota_cells(obj: Mapping[str, Any]) -> tuple[str, str]:
    """The REQUEST and LIMIT cells: ``name: used/hard`` for each resource of ``status.hard``."""
    st = status(obj)
    hard, used = st.get("hard") or {}, st.get("used") or {}
    request: list[str] = []
    limit: list[str] = []
    for name in sorted(hard):
        cell = f"{name}: {_canonical(used.get(name, '0'))}/{_canonical(hard[name])}"
        (limit if name.split(".")[0] == "limits" and "." in name else request).append(cell)
    return ", ".join(request), ", ".join(limit)


def _canonical(value: Any) -> str:
    try:
        return format_quantity(parse_quantity(value), binary=str(value).endswith("i"))
    except QuantityError:
        return str(value)


class ResourceQuotaStrategy(Strategy):
    kind = "ResourceQuota"
    plural = "resourcequotas"
    singular = "resourcequota"
    short_names = ("quota",)
    subresources = ("status",)
    model = "V1ResourceQuota"
    columns = (
        NAME, AGE,
        Column("Request", description="Request represents a minimum amount of cpu/memory that a container may consume."),
        Column("Limit", description="Limits control the maximum amount of cpu/memory that a container may use "
                                    "independent of contention on the node."),
    )
    # Go's field numbers (k8s.io/api/core/v1/generated.proto).
    protobuf_messages = {
        "ResourceQuota": "metadata:1:ObjectMeta spec:2:ResourceQuotaSpec status:3:ResourceQuotaStatus",
        "ResourceQuotaSpec": "hard:1:{Quantity} scopes:2:*s scopeSelector:3:ScopeSelector",
        "ScopeSelector": "matchExpressions:1:*ScopedResourceSelectorRequirement",
        "ScopedResourceSelectorRequirement": "scopeName:1:s operator:2:s values:3:*s",
        "ResourceQuotaStatus": "hard:1:{Quantity} used:2:{Quantity}",
    }

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        quota_spec = get_map(obj, "spec", "", causes)
        causes += validate_resource_list(get_map(quota_spec, "hard", "spec", causes), "spec.hard")
        _validate_scopes(quota_spec, causes)
        _validate_scope_selector(quota_spec, causes)
        return causes

    def validate_status_update(self, new: Obj, old: Obj) -> Causes:
        causes: Causes = []
        st = get_map(new, "status", "", causes)
        causes += validate_resource_list(get_map(st, "hard", "status", causes), "status.hard")
        causes += validate_resource_list(get_map(st, "used", "status", causes), "status.used")
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        request, limit = quota_cells(obj)
        return [name_of(obj), age(obj, now), request, limit]


STRATEGY = ResourceQuotaStrategy()
