"""The ClusterRole aggregation plan (pkg/controller/clusterroleaggregation, pure).

Data flow: one ClusterRole with an ``aggregationRule`` + every ClusterRole -> the rules it should
hold: for each selector in order, the matching ClusterRoles (itself excluded) sorted by name,
their rules appended unless an equal rule is already there -> None when the stored rules are
already those (nothing to write), else the new list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from machinery.selectors import SelectorError, label_selector_from_dict

Obj = Mapping[str, Any]


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def aggregated_rules(role: Obj, all_roles: Iterable[Obj]) -> list[Any] | None:
    """The rules of an aggregated ClusterRole; None for a role without an aggregationRule."""
    rule = role.get("aggregationRule")
    if not isinstance(rule, Mapping):
        return None
    name = _meta(role).get("name")
    roles = sorted(all_roles, key=lambda r: str(_meta(r).get("name") or ""))
    out: list[Any] = []
    for selector in rule.get("clusterRoleSelectors") or []:
        try:
            matcher = label_selector_from_dict(selector if isinstance(selector, Mapping) else None)
        except SelectorError:
            continue
        for other in roles:
            if _meta(other).get("name") == name or not matcher.matches(_meta(other).get("labels") or {}):
                continue
            for r in other.get("rules") or []:
                if r not in out:
                    out.append(r)
    return out


def plan(role: Obj, all_roles: Iterable[Obj]) -> list[Any] | None:
    """The rules to write, or None when the role is not aggregated or already up to date."""
    wanted = aggregated_rules(role, all_roles)
    if wanted is None or wanted == list(role.get("rules") or []):
        return None
    return wanted
