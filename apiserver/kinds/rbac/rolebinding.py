"""RoleBinding (rbac.authorization.k8s.io/v1): grants a Role of its namespace, or a ClusterRole's rules
within its namespace, to users, groups and ServiceAccounts.

Validation after ``ValidateRoleBinding``: roleRef (apiGroup rbac.authorization.k8s.io, kind Role or
ClusterRole, a name) is required and immutable; subjects are User/Group (apiGroup
rbac.authorization.k8s.io, defaulted) or ServiceAccount (no apiGroup; an empty namespace means the
binding's). ``kubectl get rolebindings`` shows NAME, ROLE (``Kind/name``), AGE; ``-o wide`` adds
USERS, GROUPS and SERVICEACCOUNTS (``namespace/name``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...auth import escalation
from ...validation.fielderrors import Causes, Obj
from ..base import CreateContext, Strategy
from . import rbacfacts


class RoleBindingStrategy(Strategy):
    group = rbacfacts.GROUP
    kind = "RoleBinding"
    plural = "rolebindings"
    singular = "rolebinding"
    model = "V1RoleBinding"
    columns = rbacfacts.binding_columns(
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. "
        "If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.")
    type_facts = rbacfacts.TYPE_FACTS
    protobuf_messages = rbacfacts.PROTOBUF_MESSAGES

    def name_errors(self, name: str) -> list[str]:
        return rbacfacts.name_errors(name)

    def defaults(self, obj: Obj) -> None:
        rbacfacts.default_binding(obj)

    def validate(self, obj: Obj) -> Causes:
        return rbacfacts.validate_binding(obj, namespaced=True)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return rbacfacts.validate_role_ref_unchanged(new, old)

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        escalation.check_binding(obj, ctx.stored, cluster=False)  # 403 unless the writer holds what it grants

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        escalation.check_binding(new, ctx.stored, cluster=False)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return rbacfacts.binding_row(obj, now)


STRATEGY = RoleBindingStrategy()
