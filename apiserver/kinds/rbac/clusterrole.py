"""ClusterRole (rbac.authorization.k8s.io/v1, cluster-scoped): rules for every namespace, cluster-scoped
resources and non-resource URLs; an ``aggregationRule`` makes its rules the union of the ClusterRoles
its label selectors match (``controllers/clusterroleaggregation.py`` writes them).

Validation after ``ValidateClusterRole``: the rules as for Roles, nonResourceURLs allowed (but not
mixed with resources), an aggregationRule needs at least one valid selector. ``kubectl get
clusterroles`` shows NAME and CREATED AT.
"""

from __future__ import annotations

from .rbacstrategies import RoleStrategyBase


class ClusterRoleStrategy(RoleStrategyBase):
    kind = "ClusterRole"
    plural = "clusterroles"
    singular = "clusterrole"
    namespaced = False
    model = "V1ClusterRole"


STRATEGY = ClusterRoleStrategy()
