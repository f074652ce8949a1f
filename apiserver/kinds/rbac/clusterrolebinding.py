"""ClusterRoleBinding (rbac.authorization.k8s.io/v1, cluster-scoped): grants a ClusterRole's rules in
every namespace (and its non-resource URLs) to users, groups and ServiceAccounts.

Validation after ``ValidateClusterRoleBinding``: as RoleBinding, but roleRef.kind must be
ClusterRole and a ServiceAccount subject needs its namespace. Table columns as RoleBinding.
"""

from __future__ import annotations

from . import rbacfacts
from .rbacstrategies import BindingStrategyBase


class ClusterRoleBindingStrategy(BindingStrategyBase):
    kind = "ClusterRoleBinding"
    plural = "clusterrolebindings"
    singular = "clusterrolebinding"
    namespaced = False
    model = "V1ClusterRoleBinding"
    columns = rbacfacts.binding_columns(
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, "
        "the Authorizer must return an error. This field is immutable.")


STRATEGY = ClusterRoleBindingStrategy()
