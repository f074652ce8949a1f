"""RoleBinding (rbac.authorization.k8s.io/v1): grants a Role of its namespace, or a ClusterRole's rules
within its namespace, to users, groups and ServiceAccounts.

Validation after ``ValidateRoleBinding``: roleRef (apiGroup rbac.authorization.k8s.io, kind Role or
ClusterRole, a name) is required and immutable; subjects are User/Group (apiGroup
rbac.authorization.k8s.io, defaulted) or ServiceAccount (no apiGroup; an empty namespace means the
binding's). ``kubectl get rolebindings`` shows NAME, ROLE (``Kind/name``), AGE; ``-o wide`` adds
USERS, GROUPS and SERVICEACCOUNTS (``namespace/name``).
"""

from __future__ import annotations

from . import rbacfacts
from .rbacstrategies import BindingStrategyBase


class RoleBindingStrategy(BindingStrategyBase):
    kind = "RoleBinding"
    plural = "rolebindings"
    singular = "rolebinding"
    model = "V1RoleBinding"
    columns = rbacfacts.binding_columns(
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. "
        "If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.")


STRATEGY = RoleBindingStrategy()
