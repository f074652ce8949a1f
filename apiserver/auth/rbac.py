"""The RBAC authorizer (``--authorization-mode=...,RBAC``): plugin/pkg/auth/authorizer/rbac.

Data flow: the registry's watch caches of roles, clusterroles, rolebindings and
clusterrolebindings (through ``Snapshots``) -> an index rebuilt only when one of their revisions
moves: bindings by subject key (user name, group name; a ServiceAccount subject becomes its
user name) -> per request: the user's ClusterRoleBindings, then the RoleBindings of the request's
namespace -> the bound role's rules (``rbacrules.rule_allows``) -> ALLOW with Kubernetes' reason
(``RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "y" to User "z"``) or NO_OPINION (the
reason names bindings whose role is missing, as Kubernetes' ``RBAC: role... not found``).
No I/O per decision. ``rules_for`` answers SelfSubjectRulesReview from the same index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from machinery.userinfo import UserInfo

from . import rbacrules
from .attributes import Attributes
from .authorizer import Decision

ROLES = "roles.rbac.authorization.k8s.io"
CLUSTER_ROLES = "clusterroles.rbac.authorization.k8s.io"
ROLE_BINDINGS = "rolebindings.rbac.authorization.k8s.io"
CLUSTER_ROLE_BINDINGS = "clusterrolebindings.rbac.authorization.k8s.io"
_RBAC_RESOURCES = (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)

Obj = Mapping[str, Any]
Grant = tuple[Obj, Obj]  # (binding, the subject of it that names the user)


class Snapshots(Protocol):
    """Read-only access to stored objects by group resource (``pods``, ``roles.rbac.authorization.k8s.io``)."""

    def revision(self, group_resource: str) -> int: ...

    def objects(self, group_resource: str) -> Iterable[Obj]: ...


def _meta(obj: Obj) -> Obj:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def _index_bindings(bindings: Iterable[Obj]) -> dict[tuple[str, str], list[Grant]]:
    index: dict[tuple[str, str], list[Grant]] = {}
    for binding in sorted(bindings, key=lambda b: str(_meta(b).get("name") or "")):
        namespace = str(_meta(binding).get("namespace") or "")
        subjects = binding.get("subjects")
        for subject in subjects if isinstance(subjects, list) else ():
            if isinstance(subject, Mapping):
                key = rbacrules.subject_keys(subject, namespace)
                if key is not None:
                    index.setdefault(key, []).append((binding, subject))
    return index


class RBACAuthorizer:
    def __init__(self, snapshots: Snapshots) -> None:
        self.snapshots = snapshots
        self._version: tuple[int, ...] = ()
        self._cluster_roles: dict[str, Obj] = {}
        self._roles: dict[tuple[str, str], Obj] = {}
        self._cluster_grants: dict[tuple[str, str], list[Grant]] = {}
        self._grants: dict[str, dict[tuple[str, str], list[Grant]]] = {}

    # ------------------------------------------------------------------ index
    def _refresh(self) -> None:
        version = tuple(self.snapshots.revision(gr) for gr in _RBAC_RESOURCES)
        if version == self._version:
            return
        self._cluster_roles = {str(_meta(r).get("name")): r for r in self.snapshots.objects(CLUSTER_ROLES)}
        self._roles = {(str(_meta(r).get("namespace")), str(_meta(r).get("name"))): r
                       for r in self.snapshots.objects(ROLES)}
        self._cluster_grants = _index_bindings(self.snapshots.objects(CLUSTER_ROLE_BINDINGS))
        by_namespace: dict[str, list[Obj]] = {}
        for b in self.snapshots.objects(ROLE_BINDINGS):
            by_namespace.setdefault(str(_meta(b).get("namespace") or ""), []).append(b)
        self._grants = {ns: _index_bindings(bs) for ns, bs in by_namespace.items()}
        self._version = version

    def _candidates(self, user: UserInfo, namespace: str) -> list[Grant]:
        keys = rbacrules.user_keys(user)
        out: list[Grant] = []
        seen: set[int] = set()
        indexes = [self._cluster_grants]
        if namespace:
            indexes.append(self._grants.get(namespace, {}))
        for index in indexes:
            found = [g for k in keys for g in index.get(k, ())]
            found.sort(key=lambda g: str(_meta(g[0]).get("name") or ""))
            for binding, subject in found:
                if id(binding) in seen:
                    continue
                if rbacrules.applies_to(user, subject, str(_meta(binding).get("namespace") or "")):
                    seen.add(id(binding))
                    out.append((binding, subject))
        return out

    def _role_rules(self, binding: Obj) -> tuple[list[Obj], str]:
        """The rules a binding grants, or an error like Kubernetes' rule resolver's."""
        ref = binding.get("roleRef")
        ref = ref if isinstance(ref, Mapping) else {}
        name = str(ref.get("name") or "")
        if ref.get("kind") == "ClusterRole":
            role = self._cluster_roles.get(name)
            missing = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
        elif ref.get("kind") == "Role":
            role = self._roles.get((str(_meta(binding).get("namespace") or ""), name))
            missing = f'role.rbac.authorization.k8s.io "{name}" not found'
        else:
            return [], f"unsupported role reference kind: {ref.get('kind')!r}"
        if role is None:
            return [], missing
        rules = role.get("rules")
        return [r for r in rules if isinstance(r, Mapping)] if isinstance(rules, list) else [], ""

    # ------------------------------------------------------------------ decisions
    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        self._refresh()
        errors: list[str] = []
        for binding, subject in self._candidates(a.user, a.namespace):
            rules, error = self._role_rules(binding)
            if error:
                errors.append(error)
                continue
            if rbacrules.rules_allow(a, rules):
                return Decision.ALLOW, "RBAC: allowed by " + rbacrules.describe_binding(binding, subject)
        if not errors:
            return Decision.NO_OPINION, ""
        return Decision.NO_OPINION, "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bool]:
        """SelfSubjectRulesReview: (resourceRules, nonResourceRules, incomplete)."""
        self._refresh()
        rules: list[Obj] = []
        incomplete = False
        for binding, _ in self._candidates(user, namespace):
            found, error = self._role_rules(binding)
            incomplete = incomplete or bool(error)
            rules.extend(found)
        resource, non_resource = rbacrules.split_rules(rules)
        return resource, non_resource, incomplete
