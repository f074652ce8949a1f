"""LimitRange (core/v1, short name ``limits``): per-container, per-pod and per-claim bounds.

After ``ValidateLimitRange``: each ``spec.limits[]`` item has a ``type`` (Container, Pod,
PersistentVolumeClaim, or a qualified name), at most one item per type, and resource lists
``max``, ``min``, ``default``, ``defaultRequest`` (not for Pod) and ``maxLimitRequestRatio``
whose values must agree (min <= defaultRequest <= default <= max, ratio >= 1 and <= max/min); a
PersistentVolumeClaim item needs a min or max of ``storage``. A Container item's ``default`` is
defaulted from ``max`` and its ``defaultRequest`` from ``default``, else ``min`` (the v1 defaults).
The LimitRanger admission
(``apiserver/admission/limitranger.py``) applies them to pods and claims. ``kubectl get limits``
shows NAME and CREATED AT.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from machinery.quantity import QuantityError
from machinery.quota import Quantity

from ...validation.containers import _resource_name_errors as container_resource_errors
from ...validation.fielderrors import (Causes, Obj, child, duplicate, each, forbidden, get_map, get_maps,
                                       invalid, key, required)
from ...validation.formats import qualified_name_errors
from ..base import NAME, Column, Strategy, meta, name_of

LIMIT_TYPES = ("Pod", "Container", "PersistentVolumeClaim")
_FIELDS = ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")


def _type_errors(value: str, path: str) -> Causes:
    errs = each(path, value, qualified_name_errors(value))
    if not errs and "/" not in value and value not in LIMIT_TYPES:
        errs.append(invalid(path, value, "must be a standard limit type or fully qualified"))
    return errs


def _resource_errors(limit_type: str, name: str, path: str) -> Causes:
    if limit_type == "PersistentVolumeClaim":
        errs = each(path, name, qualified_name_errors(name))
        if not errs and "/" not in name and name != "storage":
            errs.append(invalid(path, name, "must be a standard resource for persistent volume claims"))
        return errs
    if limit_type in ("Pod", "Container"):
        return container_resource_errors(name, path)
    return each(path, name, qualified_name_errors(name))


def _quantities(item: Obj, field: str, limit_type: str, path: str, causes: Causes) -> dict[str, Quantity]:
    out: dict[str, Quantity] = {}
    for name, value in get_map(item, field, path, causes).items():
        item_path = key(child(path, field), name)
        causes += _resource_errors(limit_type, name, item_path)
        try:
            out[name] = Quantity.parse(value)
        except QuantityError as exc:
            causes.append(invalid(item_path, value, str(exc)))
    return out


def _overcommit_allowed(name: str) -> bool:
    return "/" not in name and not name.startswith("hugepages-")


def _item_causes(item: Obj, path: str) -> Causes:
    causes: Causes = []
    limit_type = str(item.get("type") or "")
    causes += _type_errors(limit_type, child(path, "type"))
    lists = {f: _quantities(item, f, limit_type, path, causes) for f in _FIELDS
             if not (limit_type == "Pod" and f in ("default", "defaultRequest"))}
    if limit_type == "Pod":
        for f in ("default", "defaultRequest"):
            if item.get(f):
                causes.append(forbidden(child(path, f), "may not be specified when `type` is 'Pod'"))
    if limit_type == "PersistentVolumeClaim" and "storage" not in lists["min"] and "storage" not in lists["max"]:
        causes.append(required(child(path, "limits"),
                               "either minimum or maximum storage value is required, but neither was provided"))
    mins, maxs = lists["min"], lists["max"]
    defaults, requests = lists.get("default", {}), lists.get("defaultRequest", {})
    ratios = lists["maxLimitRequestRatio"]
    names = sorted(set().union(*(set(v) for v in lists.values())))
    for name in names:
        lo, hi, dflt, dreq, ratio = (mins.get(name), maxs.get(name), defaults.get(name), requests.get(name),
                                     ratios.get(name))
        if lo and hi and lo.amount > hi.amount:
            causes.append(invalid(key(child(path, "min"), name), str(lo),
                                  f"min value {lo} is greater than max value {hi}"))
        if dreq and lo and lo.amount > dreq.amount:
            causes.append(invalid(key(child(path, "defaultRequest"), name), str(dreq),
                                  f"min value {lo} is greater than default request value {dreq}"))
        if dreq and hi and dreq.amount > hi.amount:
            causes.append(invalid(key(child(path, "defaultRequest"), name), str(dreq),
                                  f"default request value {dreq} is greater than max value {hi}"))
        if dreq and dflt and dreq.amount > dflt.amount:
            causes.append(invalid(key(child(path, "defaultRequest"), name), str(dreq),
                                  f"default request value {dreq} is greater than default limit value {dflt}"))
        if dflt and lo and lo.amount > dflt.amount:
            causes.append(invalid(key(child(path, "default"), name), str(dflt),
                                  f"min value {lo} is greater than default value {dflt}"))
        if dflt and hi and dflt.amount > hi.amount:
            causes.append(invalid(key(child(path, "default"), name), str(dflt),
                                  f"default value {dflt} is greater than max value {hi}"))
        if ratio and ratio.amount < 1:
            causes.append(invalid(key(child(path, "maxLimitRequestRatio"), name), str(ratio),
                                  f"ratio {ratio} is less than 1"))
        if ratio and lo and hi and lo.amount > 0:
            bound = hi.amount / lo.amount
            if ratio.amount > bound:
                causes.append(invalid(key(child(path, "maxLimitRequestRatio"), name), str(ratio),
                                      f"ratio {ratio} is greater than max/min = {bound.quantize(Decimal('0.000001'))}"))
        if not _overcommit_allowed(name) and dflt and dreq and dflt.amount != dreq.amount:
            causes.append(invalid(key(child(path, "defaultRequest"), name), str(dreq),
                                  f"default value {dflt} must equal to defaultRequest value {dreq} in {name}"))
    return causes


def default_limit_range(obj: Obj) -> None:
    """``SetDefaults_LimitRangeItem``: a Container item's default limit is its max, its default
    request the default limit, else its min."""
    lr_spec = obj.get("spec")
    limits = lr_spec.get("limits") if isinstance(lr_spec, dict) else None
    for item in limits if isinstance(limits, list) else []:
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = dict(item["default"]) if isinstance(item.get("default"), dict) else {}
        request = dict(item["defaultRequest"]) if isinstance(item.get("defaultRequest"), dict) else {}
        for source, target in ((item.get("max"), default), (default, request), (item.get("min"), request)):
            for name, value in (source if isinstance(source, dict) else {}).items():
                target.setdefault(name, value)
        for key_name, values in (("default", default), ("defaultRequest", request)):
            if values:  # an empty map is omitted, as Go's omitempty does
                item[key_name] = values


def validate_limit_range(obj: Obj) -> Causes:
    causes: Causes = []
    lr_spec = get_map(obj, "spec", "", causes)
    seen: set[str] = set()
    for path, item in get_maps(lr_spec, "limits", "spec", causes):
        limit_type = str(item.get("type") or "")
        if limit_type in seen:
            causes.append(duplicate(child(path, "type"), limit_type))
        seen.add(limit_type)
        causes += _item_causes(item, path)
    return causes


class LimitRangeStrategy(Strategy):
    kind = "LimitRange"
    plural = "limitranges"
    singular = "limitrange"
    short_names = ("limits",)
    model = "V1LimitRange"
    columns = (NAME, Column("Created At", type="date", description=(
        "CreationTimestamp is a timestamp representing the server time when this object was created.")))
    # Go's field numbers (k8s.io/api/core/v1/generated.proto).
    protobuf_messages = {
        "LimitRange": "metadata:1:ObjectMeta spec:2:LimitRangeSpec",
        "LimitRangeSpec": "limits:1:*LimitRangeItem",
        "LimitRangeItem": ("type:1:s max:2:{Quantity} min:3:{Quantity} default:4:{Quantity} "
                           "defaultRequest:5:{Quantity} maxLimitRequestRatio:6:{Quantity}"),
    }

    def defaults(self, obj: Obj) -> None:
        default_limit_range(obj)

    def validate(self, obj: Obj) -> Causes:
        return validate_limit_range(obj)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), str(meta(obj).get("creationTimestamp") or "")]


STRATEGY = LimitRangeStrategy()
