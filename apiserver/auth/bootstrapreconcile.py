"""Writes the bootstrap RBAC policy at API server start: pkg/registry/rbac/rest/storage_rbac.go + reconciliation.

Data flow: ``bootstrappolicy`` (the desired ClusterRoles and ClusterRoleBindings) + the stored
ones (registry) -> ``reconcile_role`` / ``reconcile_binding`` (pure, as Kubernetes'
``computeReconciledRole`` and ``computeReconciledRoleBinding``: missing objects are created; an
existing one not annotated ``rbac.authorization.kubernetes.io/autoupdate: "false"`` gets the
missing labels and annotations, the rules it does not cover yet (never removing extra ones; an
aggregated role's rules are the aggregation controller's), missing aggregation selectors and
missing subjects; a binding whose roleRef differs is recreated) -> registry create / update /
delete. Every API server runs it; a conflict with another one's write is retried on the next pass.
"""

from __future__ import annotations

import copy
import logging
from typing import TYPE_CHECKING, Any

from machinery import errors

from . import bootstrappolicy, rbacrules

if TYPE_CHECKING:
    from ..registry import Registry

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _protected(existing: Obj) -> bool:
    return ((existing.get("metadata") or {}).get("annotations") or {}).get(bootstrappolicy.AUTOUPDATE) == "false"


def _merge_meta(expected: Obj, out: Obj) -> None:
    meta = out.setdefault("metadata", {})
    for field in ("labels", "annotations"):
        want = (expected.get("metadata") or {}).get(field) or {}
        have = meta.get(field) or {}
        if any(k not in have for k in want):
            meta[field] = {**want, **have}


def reconcile_role(expected: Obj, existing: Obj) -> Obj | None:
    """The updated ClusterRole, or None when nothing is missing (or it is protected)."""
    if _protected(existing):
        return None
    out = copy.deepcopy(existing)
    _merge_meta(expected, out)
    _, missing = rbacrules.covers(existing.get("rules") or [], expected.get("rules") or [])
    if missing:
        out["rules"] = list(out.get("rules") or []) + missing
    want_agg = (expected.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
    if want_agg:
        have = list((out.get("aggregationRule") or {}).get("clusterRoleSelectors") or [])
        extra = [s for s in want_agg if s not in have]
        if extra:
            out["aggregationRule"] = {"clusterRoleSelectors": have + extra}
    return out if out != existing else None


def reconcile_binding(expected: Obj, existing: Obj) -> tuple[str, Obj | None]:
    """("none" | "update" | "recreate", the object to write)."""
    if _protected(existing):
        return "none", None
    if existing.get("roleRef") != expected.get("roleRef"):
        return "recreate", copy.deepcopy(expected)
    out = copy.deepcopy(existing)
    _merge_meta(expected, out)
    have = list(out.get("subjects") or [])
    extra = [s for s in expected.get("subjects") or [] if s not in have]
    if extra:
        out["subjects"] = have + extra
    return ("update", out) if out != existing else ("none", None)


async def ensure_policy(registry: "Registry") -> None:
    """Create or reconcile every default (Cluster)Role and (Cluster)RoleBinding (idempotent)."""
    for kind, objects in (("ClusterRole", bootstrappolicy.cluster_roles()), ("Role", bootstrappolicy.roles())):
        res = registry.resources.by_kind(kind, bootstrappolicy.GROUP)
        assert res is not None
        for role in objects:
            current = await _current(registry, res, role)
            if current is None:
                await _create(registry, res, role)
                continue
            updated = reconcile_role(role, current)
            if updated is not None:
                await _update(registry, res, updated)
    for kind, objects in (("ClusterRoleBinding", bootstrappolicy.cluster_role_bindings()),
                          ("RoleBinding", bootstrappolicy.role_bindings())):
        res = registry.resources.by_kind(kind, bootstrappolicy.GROUP)
        assert res is not None
        for binding in objects:
            current = await _current(registry, res, binding)
            if current is None:
                await _create(registry, res, binding)
                continue
            op, obj = reconcile_binding(binding, current)
            if op == "recreate" and obj is not None:
                try:
                    await registry.delete(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
                except errors.NotFoundError:
                    pass
                await _create(registry, res, obj)
            elif op == "update" and obj is not None:
                await _update(registry, res, obj)


async def _current(registry: "Registry", res: Any, obj: Obj) -> Obj | None:
    try:
        # A cache read (no etcd probe per object every pass): the update is a compare-and-swap on what
        # was read, so a stale read is a conflict, tried again on the next pass.
        return (await registry.get(res, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                                   resource_version="0")).obj
    except errors.NotFoundError:
        return None


async def _create(registry: "Registry", res: Any, obj: Obj) -> None:
    try:
        await registry.create(res, obj["metadata"].get("namespace"), obj)
        log.info("created %s %s", obj["kind"], obj["metadata"]["name"])
    except errors.AlreadyExistsError:
        pass  # another API server was first


async def _update(registry: "Registry", res: Any, obj: Obj) -> None:
    try:
        await registry.update(res, obj["metadata"].get("namespace"), obj["metadata"]["name"], obj)
        log.info("reconciled %s %s", obj["kind"], obj["metadata"]["name"])
    except (errors.ConflictError, errors.NotFoundError) as e:
        log.info("reconciling %s %s: %s (next pass)", obj["kind"], obj["metadata"]["name"], e.message)
