"""The resource quota controller's decisions (pkg/controller/resourcequota), pure.

Data flow: a ResourceQuota and the objects of its namespace by group resource (from the
informers) -> ``calculate_status``: ``hard`` is ``spec.hard``; ``used`` has every hard resource,
the sum of ``machinery.quota.usage`` over the objects the quota covers (its scopes), zero where
nothing counts -> ``status_changed`` decides whether ``/status`` needs a write.
``needed_resources`` says which group resources a quota counts (what to watch);
``usage_changed`` says whether an object's change alters usage (a delete, a pod turning
terminal, a Service changing type), the events that make the controller look again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from machinery import quota as q

Obj = Mapping[str, Any]


def _hard(quota: Obj) -> dict[str, Any]:
    quota_spec = quota.get("spec")
    hard = quota_spec.get("hard") if isinstance(quota_spec, Mapping) else None
    return dict(hard) if isinstance(hard, Mapping) else {}


def needed_resources(quota: Obj) -> set[str]:
    """The group resources whose objects count against ``quota`` (``pods``, ``deployments.apps``)."""
    return {gr for gr in (q.group_resource_of(n) for n in _hard(quota)) if gr}


def calculate_status(quota: Obj, objects: Mapping[str, Iterable[Obj]], *, now: datetime) -> dict[str, Any]:
    """The status the quota should have: ``{"hard": spec.hard, "used": {...}}``."""
    hard = _hard(quota)
    used: q.ResourceList = {name: q.Quantity(Decimal(0)) for name in hard}
    for group_resource, items in objects.items():
        names = q.matching_resources(group_resource, hard)
        if not names:
            continue
        for obj in items:
            if q.matches(quota, group_resource, obj, hard=names):
                used = q.add(used, q.mask(q.usage(group_resource, obj, now=now), names))
    return {"hard": hard, "used": q.to_strings(used)}


def _canonical(values: Any) -> dict[str, str]:
    return q.to_strings(q.parse_list(values))


def status_changed(quota: Obj, desired: Mapping[str, Any]) -> bool:
    current = quota.get("status")
    if not isinstance(current, Mapping):
        return True
    return (current.get("hard") or {}) != desired["hard"] or \
        _canonical(current.get("used")) != _canonical(desired["used"])


def usage_changed(group_resource: str, old: Obj | None, new: Obj | None, *, now: datetime) -> bool:
    """Whether a change alters usage: a delete, or an update that makes the object count
    differently (a pod turning terminal, a Service becoming a NodePort). A create is charged by
    the admission already: recalculating then could race with creates still being admitted."""
    if new is None:
        return True
    if old is None:
        return False
    before, after = q.usage(group_resource, old, now=now), q.usage(group_resource, new, now=now)
    return q.to_strings(before) != q.to_strings(after)
