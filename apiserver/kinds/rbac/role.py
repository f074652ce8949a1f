"""Role (rbac.authorization.k8s.io/v1): namespaced rules, granted by RoleBindings in the same namespace.

Validation after ``ValidateRole``: names are path segments, every rule needs verbs, and resource
rules need apiGroups and resources (non-resource URLs only on ClusterRoles). Kubernetes has no
printer for roles: ``kubectl get roles`` shows NAME and CREATED AT.
"""

from __future__ import annotations

from .rbacstrategies import RoleStrategyBase


class RoleStrategy(RoleStrategyBase):
    kind = "Role"
    plural = "roles"
    singular = "role"
    model = "V1Role"


STRATEGY = RoleStrategy()
