"""The two strategy shapes the four RBAC kinds share: roles (rules) and bindings (roleRef + subjects).

Each kind's module sets the type facts (kind, plural, scope, model, the roleRef column's text);
validation, defaults, escalation prevention (``apiserver/auth/escalation.py``, run before a write
is stored) and table rows are the same for the namespaced and the cluster-wide kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...auth import escalation
from ...validation.fielderrors import Causes, Obj
from ..base import NAME, CreateContext, Strategy
from . import rbacfacts


class RBACStrategy(Strategy):
    group = rbacfacts.GROUP
    type_facts = rbacfacts.TYPE_FACTS
    protobuf_messages = rbacfacts.PROTOBUF_MESSAGES

    def name_errors(self, name: str) -> list[str]:
        return rbacfacts.name_errors(name)


class RoleStrategyBase(RBACStrategy):
    columns = (NAME, rbacfacts.CREATED_AT)

    def validate(self, obj: Obj) -> Causes:
        causes = rbacfacts.validate_rules(obj, namespaced=self.namespaced)
        if not self.namespaced:
            causes += rbacfacts.validate_aggregation_rule(obj)
        return causes

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        escalation.check_role(obj, ctx.stored, cluster=not self.namespaced)  # 403 unless the writer holds it

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        escalation.check_role(new, ctx.stored, cluster=not self.namespaced, old=old)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return rbacfacts.role_row(obj, now)


class BindingStrategyBase(RBACStrategy):
    def defaults(self, obj: Obj) -> None:
        rbacfacts.default_binding(obj)

    def validate(self, obj: Obj) -> Causes:
        return rbacfacts.validate_binding(obj, namespaced=self.namespaced)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return rbacfacts.validate_role_ref_unchanged(new, old)

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        escalation.check_binding(obj, ctx.stored, cluster=not self.namespaced)  # bind, or hold the role's rules

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        escalation.check_binding(new, ctx.stored, cluster=not self.namespaced, old=old)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return rbacfacts.binding_row(obj, now)
