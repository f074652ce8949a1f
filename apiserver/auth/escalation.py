"""RBAC's escalation prevention: nobody grants permissions they do not hold (pkg/registry/rbac).

Data flow: a create or update of a Role / ClusterRole / RoleBinding / ClusterRoleBinding (the
kinds' ``before_create``/``before_update`` hooks) + the request's user (``context.request_user``)
+ the stored RBAC objects (``CreateContext.stored``) -> allowed when the user is in
``system:masters`` (also the plain-HTTP test port and in-process writes), or RBAC grants it the
``escalate`` verb on that role (for roles) or ``bind`` on the referenced role (for bindings), or
the rules it holds in that namespace cover every rule written or bound (``rbacrules.covers``; an
aggregationRule takes ``*`` on everything), or the update changes only ownerReferences and
finalizers (the garbage collector's writes) ->
else 403 with Kubernetes' message ``user "alice" (groups=[...]) is attempting to grant RBAC
permissions not currently held:`` and the missing rules in Go's compact form. A binding to a role
that does not exist is a 400 (as ``GetRoleReferenceRules``' error).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from machinery import errors
from machinery.userinfo import SYSTEM_MASTERS, UserInfo

from . import rbacrules
from .attributes import Attributes
from .authorizer import Decision
from .context import request_user
from .rbac import CLUSTER_ROLES, ROLES, RBACAuthorizer

GROUP = "rbac.authorization.k8s.io"
Stored = Callable[[str], Iterable[Mapping[str, Any]]]


class _StoredSnapshots:
    """The objects of a write's CreateContext as ``rbac.Snapshots`` (read once per write)."""

    def __init__(self, stored: Stored) -> None:
        self.stored = stored

    def revision(self, group_resource: str) -> int:
        return 1

    def objects(self, group_resource: str) -> Iterable[Mapping[str, Any]]:
        return self.stored(group_resource)


def compact_string(rule: Mapping[str, Any]) -> str:
    """rbacv1helpers.CompactString: ``{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}``."""
    parts = []
    for field, label in (("apiGroups", "APIGroups"), ("resources", "Resources"), ("nonResourceURLs", "NonResourceURLs"),
                         ("resourceNames", "ResourceNames"), ("verbs", "Verbs")):
        values = rule.get(field) or []
        if values:
            parts.append(f"{label}:[" + " ".join(json.dumps(v) for v in values) + "]")
    return "{" + ", ".join(parts) + "}"


def compact(rules: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """CompactRules: rules that differ only in their verbs become one."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rules:
        key = tuple(tuple(r.get(f) or ()) for f in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"))
        merged = out.setdefault(key, {**r, "verbs": []})
        merged["verbs"] += [v for v in r.get("verbs") or [] if v not in merged["verbs"]]
    return list(out.values())


def _allowed(authz: RBACAuthorizer, user: UserInfo, *, verb: str, resource: str, namespace: str, name: str) -> bool:
    a = Attributes(user=user, verb=verb, resource_request=True, path="", api_group=GROUP, api_version="v1",
                   namespace=namespace, resource=resource, name=name)
    return authz.authorize(a)[0] is Decision.ALLOW


def confirm_no_escalation(user: UserInfo, authz: RBACAuthorizer, rules: Iterable[Mapping[str, Any]], *,
                          namespace: str, group_resource: str, name: str) -> None:
    owner, owner_non_resource, _ = authz.rules_for(user, namespace)
    ok, missing = rbacrules.covers([*owner, *owner_non_resource], rules)
    if ok:
        return
    groups = "[" + " ".join(json.dumps(g) for g in user.groups) + "]"
    lines = sorted({compact_string(r) for r in compact(missing)})
    raise errors.ForbiddenError(message=(
        f'{group_resource} "{name}" is forbidden: user "{user.name}" (groups={groups}) is attempting to grant '
        "RBAC permissions not currently held:\n" + "\n".join(lines)), name=name, group=GROUP,
        kind=group_resource.partition(".")[0])


_GC_FIELDS = ("ownerReferences", "finalizers", "resourceVersion", "managedFields", "generation")
FULL_AUTHORITY = [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]}]


def only_gc_fields_change(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> bool:
    """IsOnlyMutatingGCFields: an update that touches only ownerReferences and finalizers."""
    if old is None:
        return False

    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _GC_FIELDS}
        return {**obj, "metadata": meta}
    return strip(new) == strip(old)


def check_role(obj: Mapping[str, Any], stored: Stored, *, cluster: bool, old: Mapping[str, Any] | None = None) -> None:
    """A Role or ClusterRole write: escalate, or hold every rule it lists (an aggregationRule: everything)."""
    user = request_user()
    if SYSTEM_MASTERS in user.groups or only_gc_fields_change(obj, old):
        return
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    resource = "clusterroles" if cluster else "roles"
    authz = RBACAuthorizer(_StoredSnapshots(stored))
    if _allowed(authz, user, verb="escalate", resource=resource, namespace=namespace, name=name):
        return
    rules = [r for r in obj.get("rules") or [] if isinstance(r, Mapping)]
    confirm_no_escalation(user, authz, rules, namespace=namespace, group_resource=f"{resource}.{GROUP}", name=name)
    if cluster and obj.get("aggregationRule") is not None:
        # It can gather anything, so it takes * on *.* (Kubernetes' "fullAuthority").
        if not rbacrules.covers(sum(authz.rules_for(user, "")[:2], []), FULL_AUTHORITY)[0]:
            raise errors.ForbiddenError(message=(
                f'{resource}.{GROUP} "{name}" is forbidden: must have cluster-admin privileges to use the '
                "aggregationRule"), name=name, group=GROUP, kind=resource)


def check_binding(obj: Mapping[str, Any], stored: Stored, *, cluster: bool,
                  old: Mapping[str, Any] | None = None) -> None:
    """A RoleBinding or ClusterRoleBinding write: bind on the role, or hold every rule it grants."""
    user = request_user()
    if SYSTEM_MASTERS in user.groups or only_gc_fields_change(obj, old):
        return
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    ref = obj.get("roleRef") or {}
    role_name = str(ref.get("name") or "")
    ref_resource = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
    authz = RBACAuthorizer(_StoredSnapshots(stored))
    if _allowed(authz, user, verb="bind", resource=ref_resource, namespace=namespace, name=role_name):
        return
    source = CLUSTER_ROLES if ref_resource == "clusterroles" else ROLES
    role = next((r for r in stored(source) if (r.get("metadata") or {}).get("name") == role_name
                 and (ref_resource == "clusterroles" or (r.get("metadata") or {}).get("namespace") == namespace)), None)
    if role is None:
        singular = "clusterrole" if ref_resource == "clusterroles" else "role"
        raise errors.BadRequestError(message=f'{singular}.{GROUP} "{role_name}" not found')
    rules = [r for r in role.get("rules") or [] if isinstance(r, Mapping)]
    plural = "clusterrolebindings" if cluster else "rolebindings"
    confirm_no_escalation(user, authz, rules, namespace=namespace, group_resource=f"{plural}.{GROUP}", name=name)
