"""``mkctl describe`` of ResourceQuotas and LimitRanges, as kubectl's describeQuota / describeLimitRange.

Data flow: the object -> lines of tab-separated cells handed to ``write(level, text)`` (the
describe module's writer, which aligns them like kubectl) -> ``Name``/``Namespace``, a quota's
scopes with kubectl's help text and its ``Resource Used Hard`` table (used shown in the hard
value's format, sorted by name), or a LimitRange's ``Type Resource Min Max Default Request
Default Limit Max Limit/Request Ratio`` table ("-" where unset). Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from machinery.quantity import QuantityError
from machinery.quota import Quantity, format_quantity

Obj = Mapping[str, Any]
Write = Callable[[int, str], None]

SCOPE_HELP = {
    "Terminating": "Matches all pods that have an active deadline. These pods have a limited lifespan on a node "
                   "before being actively terminated by the system.",
    "NotTerminating": "Matches all pods that do not have an active deadline. These pods usually include long "
                      "running pods whose container command is not expected to terminate.",
    "BestEffort": "Matches all pods that do not have resource requirements set. These pods have a best effort "
                  "quality of service.",
    "NotBestEffort": "Matches all pods that have at least one resource requirement set. These pods have a "
                     "burstable or guaranteed quality of service.",
}


def _map(obj: Obj, *path: str) -> Mapping[str, Any]:
    cur: Any = obj
    for part in path:
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur if isinstance(cur, Mapping) else {}


def _header(write: Write, obj: Obj) -> None:
    meta = _map(obj, "metadata")
    write(0, f"Name:\t{meta.get('name', '')}")
    write(0, f"Namespace:\t{meta.get('namespace', '')}")


def _in_format_of(used: Any, hard: Any) -> str:
    """The used value in the hard value's format (kubectl: ``resource.NewQuantity(used.Value(), hard.Format)``)."""
    try:
        u, h = Quantity.parse(used if used is not None else "0"), Quantity.parse(hard)
    except QuantityError:
        return str(used)
    if u.binary == h.binary:
        return str(u)
    return format_quantity(u.amount.to_integral_value(), binary=h.binary)


def describe_resource_quota(write: Write, obj: Obj) -> None:
    _header(write, obj)
    scopes = sorted(str(s) for s in _map(obj, "spec").get("scopes") or [])
    if scopes:
        write(0, f"Scopes:\t{', '.join(scopes)}")
        for scope in scopes:
            if scope in SCOPE_HELP:
                write(0, f" * {SCOPE_HELP[scope]}")
    hard, used = _map(obj, "status", "hard"), _map(obj, "status", "used")
    write(0, "Resource\tUsed\tHard")
    write(0, "--------\t----\t----")
    for name in sorted(hard):
        write(0, f"{name}\t{_in_format_of(used.get(name), hard[name])}\t{hard[name]}")


def describe_limit_range(write: Write, obj: Obj) -> None:
    _header(write, obj)
    write(0, "Type\tResource\tMin\tMax\tDefault Request\tDefault Limit\tMax Limit/Request Ratio")
    write(0, "----\t--------\t---\t---\t---------------\t-------------\t-----------------------")
    for item in _map(obj, "spec").get("limits") or []:
        if not isinstance(item, Mapping):
            continue
        fields = [_map(item, f) for f in ("min", "max", "defaultRequest", "default", "maxLimitRequestRatio")]
        for name in sorted(set().union(*fields)):
            cells = [str(f.get(name, "-")) for f in fields]
            write(0, "\t".join([str(item.get("type", "")), name, *cells]))
