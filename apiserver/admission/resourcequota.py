"""The ResourceQuota admission plugin's decisions (plugin/pkg/admission/resourcequota), pure.

Data flow: a new object, its group resource and the ResourceQuotas of its namespace ->
``pertinent`` (the quotas whose scopes match it and that limit something it consumes; refuses a
pod that leaves out a constrained compute resource, ``failed quota: q: must specify ...``, and
a quota whose usage the controller has not computed yet, ``status unknown for quota: q, ...``)
-> ``charge`` (the quota's ``status.used`` plus what the object consumes, or for an update what
it consumes more than before; or ``exceeded quota: q, requested: pods=1, used: pods=2, limited:
pods=2``). The caller writes each new ``used`` with
a compare-and-swap before the object is stored and calls ``charge`` again on a conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from machinery import quota as q


class Refused(Exception):
    """The object may not be created; ``str()`` is Kubernetes' reason (after ``... is forbidden: ``)."""


def name_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""


def pertinent(quotas: Iterable[Mapping[str, Any]], group_resource: str, obj: Mapping[str, Any]
              ) -> list[Mapping[str, Any]]:
    """The quotas that must be charged for ``obj`` (``checkRequest``'s first loop)."""
    out: list[Mapping[str, Any]] = []
    for quota in quotas:
        hard = q.hard_of(quota)
        if not q.matches(quota, group_resource, obj, hard=hard.keys()):
            continue
        restricted = q.matching_resources(group_resource, hard.keys())
        problem = q.constraints(group_resource, restricted, obj)
        if problem is not None:
            raise Refused(f"failed quota: {name_of(quota)}: {problem}")
        used = q.used_of(quota)
        if any(name not in used for name in restricted):
            raise Refused(f"status unknown for quota: {name_of(quota)}, resources: {','.join(sorted(restricted))}")
        out.append(quota)
    return out


def request_of(group_resource: str, obj: Mapping[str, Any], *, now: datetime,
               old: Mapping[str, Any] | None = None) -> q.ResourceList:
    """What a create consumes; for an update, only what it adds (``SubtractWithNonNegativeResult``)."""
    usage = q.usage(group_resource, obj, now=now)
    negative = sorted(n for n, v in usage.items() if v.amount < 0)
    if negative:
        raise Refused(f"quota usage is negative for resource(s): {','.join(negative)}")
    if old is not None:
        before = q.usage(group_resource, old, now=now)
        usage = {n: v - before[n] if n in before else v for n, v in usage.items()}
        usage = {n: v for n, v in usage.items() if v.amount > 0}
    return usage


def charge(quota: Mapping[str, Any], requested: q.ResourceList) -> dict[str, str] | None:
    """The quota's new ``status.used`` with ``requested`` added; None when it limits none of it."""
    hard = q.hard_of(quota)
    masked = q.mask(requested, hard.keys())
    if q.is_zero(masked):
        return None
    used = q.used_of(quota)
    new_used = q.add(used, masked)
    over = q.exceeded(q.mask(new_used, masked.keys()), hard)
    if over:
        raise Refused(f"exceeded quota: {name_of(quota)}, requested: {q.pretty(q.mask(masked, over))}, "
                      f"used: {q.pretty(q.mask(used, over))}, limited: {q.pretty(q.mask(hard, over))}")
    return q.to_strings(new_used)


def evaluate(quotas: Iterable[Mapping[str, Any]], group_resource: str, obj: Mapping[str, Any], *,
             now: datetime, old: Mapping[str, Any] | None = None) -> dict[str, dict[str, str]]:
    """Every pertinent quota's name -> its new ``status.used``; raises ``Refused``. ``old``: the
    stored object of an update (only the increase is charged)."""
    chosen = pertinent(quotas, group_resource, obj)
    if not chosen:
        return {}
    requested = request_of(group_resource, obj, now=now, old=old)
    out: dict[str, dict[str, str]] = {}
    for quota in chosen:
        new_used = charge(quota, requested)
        if new_used is not None:
            out[name_of(quota)] = new_used
    return out
