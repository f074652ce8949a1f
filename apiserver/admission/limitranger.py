"""The LimitRanger admission plugin's decisions (plugin/pkg/admission/limitranger), pure.

Data flow: a new pod or PersistentVolumeClaim and the LimitRanges of its namespace ->
``default_pod`` (mutating: each container and init container gets the ``defaultRequest`` and
``default`` of the Container items for what it does not state, and the pod the
``kubernetes.io/limit-ranger`` annotation saying so) -> ``violations`` (validating: min, max and
maxLimitRequestRatio per Container, per Pod (containers summed, init containers as a floor) and
per claim's storage request) -> Kubernetes' messages, e.g. ``maximum cpu usage per Container is
500m, but limit is 1.``; ``message`` joins several as Go's error aggregate does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from machinery.quota import Quantity, ResourceList, add, parse_list

Obj = dict[str, Any]
ANNOTATION = "kubernetes.io/limit-ranger"


def _items(limit_range: Mapping[str, Any], limit_type: str) -> list[Mapping[str, Any]]:
    lr_spec = limit_range.get("spec")
    limits = lr_spec.get("limits") if isinstance(lr_spec, Mapping) else None
    return [i for i in limits or [] if isinstance(i, Mapping) and i.get("type") == limit_type]


def _containers(pod: Mapping[str, Any], field: str) -> list[Obj]:
    pod_spec = pod.get("spec")
    if not isinstance(pod_spec, Mapping):
        return []
    return [c for c in pod_spec.get(field) or [] if isinstance(c, dict)]


# ------------------------------------------------------------------ mutating
def _defaults(limit_ranges: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    for lr in limit_ranges:
        for item in _items(lr, "Container"):
            requests.update(item.get("defaultRequest") or {})
            limits.update(item.get("default") or {})
    return requests, limits


def _merge(container: Obj, requests: Mapping[str, Any], limits: Mapping[str, Any], what: str) -> list[str]:
    resources = container.setdefault("resources", {})
    if not isinstance(resources, dict):
        return []
    notes: list[str] = []
    for field, wanted, word in (("requests", requests, "request"), ("limits", limits, "limit")):
        if not wanted:
            continue
        current = resources.get(field)
        if not isinstance(current, dict):
            current = resources[field] = {}
        added = sorted(k for k in wanted if k not in current)
        for name in added:
            current[name] = wanted[name]
        if added:
            notes.append(f"{', '.join(added)} {word} for {what} {container.get('name', '')}")
    return notes


def default_pod(pod: Obj, limit_ranges: Iterable[Mapping[str, Any]]) -> bool:
    """Fill the containers' missing requests and limits from the Container defaults; True if changed."""
    requests, limits = _defaults(limit_ranges)
    if not requests and not limits:
        return False
    notes: list[str] = []
    for c in _containers(pod, "containers"):
        notes += _merge(c, requests, limits, "container")
    for c in _containers(pod, "initContainers"):
        notes += _merge(c, requests, limits, "init container")
    if not notes:
        return False
    annotations = pod.setdefault("metadata", {}).setdefault("annotations", {})
    annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
    return True


# ------------------------------------------------------------------ validating
def _milli(q: Quantity) -> Decimal:
    return q.amount * 1000


def _min(kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified."
    if _milli(req) < _milli(enforced):
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}."
    if lim is not None and _milli(lim) < _milli(enforced):
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}."
    return None


def _max(kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified."
    if _milli(lim) > _milli(enforced):
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}."
    if req is not None and _milli(req) > _milli(enforced):
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}."
    return None


def _max_request(kind: str, name: str, enforced: Quantity, requests: ResourceList) -> str | None:
    req = requests.get(name)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified."
    if _milli(req) > _milli(enforced):
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}."
    return None


def _ratio(kind: str, name: str, enforced: Quantity, requests: ResourceList, limits: ResourceList) -> str | None:
    req, lim = requests.get(name), limits.get(name)
    if req is None or req.amount == 0:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                "but no request is specified or request is 0.")
    if lim is None or lim.amount == 0:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                "but no limit is specified or limit is 0.")
    observed = lim.amount / req.amount
    if observed > enforced.amount:
        return (f"{name} max limit to request ratio per {kind} is {enforced}, "
                f"but provided ratio is {float(observed):f}.")
    return None


def _check(item: Mapping[str, Any], kind: str, requests: ResourceList, limits: ResourceList) -> list[str]:
    out: list[str] = []
    for name, q in parse_list(item.get("min")).items():
        out.append(_min(kind, name, q, requests, limits) or "")
    for name, q in parse_list(item.get("max")).items():
        out.append(_max(kind, name, q, requests, limits) or "")
    for name, q in parse_list(item.get("maxLimitRequestRatio")).items():
        out.append(_ratio(kind, name, q, requests, limits) or "")
    return [m for m in out if m]


def _resources(container: Mapping[str, Any], which: str) -> ResourceList:
    resources = container.get("resources")
    return parse_list(resources.get(which)) if isinstance(resources, Mapping) else {}


def _pod_totals(pod: Mapping[str, Any], which: str) -> ResourceList:
    """Containers summed (a resource some container lacks is left out), init containers as a floor."""
    lists = [_resources(c, which) for c in _containers(pod, "containers")]
    total: ResourceList = {}
    for lst in lists:
        total = add(total, lst)
    total = {n: q for n, q in total.items() if all(n in lst for lst in lists)}
    for c in _containers(pod, "initContainers"):
        for n, q in _resources(c, which).items():
            if n not in total or q.amount > total[n].amount:
                total[n] = q
    return total


def pod_violations(pod: Mapping[str, Any], limit_range: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for item in _items(limit_range, "Container"):
        for c in _containers(pod, "containers") + _containers(pod, "initContainers"):
            out += _check(item, "Container", _resources(c, "requests"), _resources(c, "limits"))
    for item in _items(limit_range, "Pod"):
        out += _check(item, "Pod", _pod_totals(pod, "requests"), _pod_totals(pod, "limits"))
    return out


def pvc_violations(pvc: Mapping[str, Any], limit_range: Mapping[str, Any]) -> list[str]:
    pvc_spec = pvc.get("spec")
    resources = pvc_spec.get("resources") if isinstance(pvc_spec, Mapping) else None
    requests = parse_list(resources.get("requests")) if isinstance(resources, Mapping) else {}
    out: list[str] = []
    for item in _items(limit_range, "PersistentVolumeClaim"):
        for name, q in parse_list(item.get("min")).items():
            out.append(_min("PersistentVolumeClaim", name, q, requests, {}) or "")
        for name, q in parse_list(item.get("max")).items():
            out.append(_max_request("PersistentVolumeClaim", name, q, requests) or "")
    return [m for m in out if m]


def violations(group_resource: str, obj: Mapping[str, Any], limit_ranges: Iterable[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for lr in limit_ranges:
        if group_resource == "pods":
            out += pod_violations(obj, lr)
        elif group_resource == "persistentvolumeclaims":
            out += pvc_violations(obj, lr)
    return out


def message(errors: list[str]) -> str:
    """Go's ``utilerrors.NewAggregate(errs).Error()``: one message alone, several as ``[a, b]``."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
