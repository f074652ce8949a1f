"""ClusterRoleBinding (rbac.authorization.k8s.io/v1, cluster-scoped): grants a ClusterRole's rules in
every namespace (and its non-resource URLs) to users, groups and ServiceAccounts.

Validation after ``ValidateClusterRoleBinding``: as RoleBinding, but roleRef.kind must be
ClusterRole and a ServiceAccount subject needs its namespace. Table columns as RoleBinding.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...auth import escalation
from ...validation.fielderrors import Causes, Obj
from ..base import CreateContext, Strategy
from . import rbacfacts


class ClusterRoleBindingStrategy(Strategy):
    group = rbacfacts.GROUP
    kind = "ClusterRoleBinding"
    plural = "clusterrolebindings"
    singular = "clusterrolebinding"
    namespaced = False
    model = "V1ClusterRoleBinding"
    columns = rbacfacts.binding_columns(
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, "
        "the Authorizer must return an error. This field is immutable.")
    type_facts = rbacfacts.TYPE_FACTS
    protobuf_messages = rbacfacts.PROTOBUF_MESSAGES

    def name_errors(self, name: str) -> list[str]:
        return rbacfacts.name_errors(name)

    def defaults(self, obj: Obj) -> None:
        rbacfacts.default_binding(obj)

    def validate(self, obj: Obj) -> Causes:
        return rbacfacts.validate_binding(obj, namespaced=False)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return rbacfacts.validate_role_ref_unchanged(new, old)

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        escalation.check_binding(obj, ctx.stored, cluster=True)  # 403 unless the writer holds what it grants

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        escalation.check_binding(new, ctx.stored, cluster=True)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return rbacfacts.binding_row(obj, now)


STRATEGY = ClusterRoleBindingStrategy()
