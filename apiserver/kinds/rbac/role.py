"""Role (rbac.authorization.k8s.io/v1): namespaced rules, granted by RoleBindings in the same namespace.

Validation after ``ValidateRole``: names are path segments, every rule needs verbs, and resource
rules need apiGroups and resources (non-resource URLs only on ClusterRoles). Kubernetes has no
printer for roles: ``kubectl get roles`` shows NAME and CREATED AT.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...auth import escalation
from ...validation.fielderrors import Causes, Obj
from ..base import NAME, CreateContext, Strategy
from . import rbacfacts


class RoleStrategy(Strategy):
    group = rbacfacts.GROUP
    kind = "Role"
    plural = "roles"
    singular = "role"
    model = "V1Role"
    columns = (NAME, rbacfacts.CREATED_AT)
    type_facts = rbacfacts.TYPE_FACTS
    protobuf_messages = rbacfacts.PROTOBUF_MESSAGES

    def name_errors(self, name: str) -> list[str]:
        return rbacfacts.name_errors(name)

    def validate(self, obj: Obj) -> Causes:
        return rbacfacts.validate_rules(obj, namespaced=True)

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        escalation.check_role(obj, ctx.stored, cluster=False)  # 403 unless the writer holds what it grants

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        escalation.check_role(new, ctx.stored, cluster=False)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return rbacfacts.role_row(obj, now)


STRATEGY = RoleStrategy()
