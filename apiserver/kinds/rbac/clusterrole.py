"""ClusterRole (rbac.authorization.k8s.io/v1, cluster-scoped): rules for every namespace, cluster-scoped
resources and non-resource URLs; an ``aggregationRule`` makes its rules the union of the ClusterRoles
its label selectors match (``controllers/clusterroleaggregation.py`` writes them).

Validation after ``ValidateClusterRole``: the rules as for Roles, nonResourceURLs allowed (but not
mixed with resources), an aggregationRule needs at least one valid selector. ``kubectl get
clusterroles`` shows NAME and CREATED AT.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...auth import escalation
from ...validation.fielderrors import Causes, Obj
from ..base import NAME, CreateContext, Strategy
from . import rbacfacts


class ClusterRoleStrategy(Strategy):
    group = rbacfacts.GROUP
    kind = "ClusterRole"
    plural = "clusterroles"
    singular = "clusterrole"
    namespaced = False
    model = "V1ClusterRole"
    columns = (NAME, rbacfacts.CREATED_AT)
    type_facts = rbacfacts.TYPE_FACTS
    protobuf_messages = rbacfacts.PROTOBUF_MESSAGES

    def name_errors(self, name: str) -> list[str]:
        return rbacfacts.name_errors(name)

    def validate(self, obj: Obj) -> Causes:
        return rbacfacts.validate_rules(obj, namespaced=False) + rbacfacts.validate_aggregation_rule(obj)

    async def before_create(self, obj: Obj, ctx: CreateContext) -> None:
        escalation.check_role(obj, ctx.stored, cluster=True)  # 403 unless the writer holds what it grants

    async def before_update(self, new: Obj, old: Obj, ctx: CreateContext) -> None:
        escalation.check_role(new, ctx.stored, cluster=True)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return rbacfacts.role_row(obj, now)


STRATEGY = ClusterRoleStrategy()
