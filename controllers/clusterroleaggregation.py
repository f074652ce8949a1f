"""ClusterRole aggregation controller: an aggregated ClusterRole holds the rules of the roles it selects.

After Kubernetes' pkg/controller/clusterroleaggregation. Data flow: the clusterroles informer ->
any change of any ClusterRole enqueues every ClusterRole with an ``aggregationRule`` (a label or
a rule of a selected role may have changed) -> reconcile(name): ``clusterroleaggregationplan.plan``
over the informer's cache -> an update of the role's ``rules`` (from a copy of the cached object,
with its resourceVersion: a conflict retries with backoff). This is what fills Kubernetes'
``admin``, ``edit`` and ``view`` from the ``rbac.authorization.k8s.io/aggregate-to-*`` labels.
"""

from __future__ import annotations

import copy
import logging

from machinery import errors
from machinery.client import ApiResource
from machinery.controller import Controller, Result
from machinery.informer import Obj

from .clusterroleaggregationplan import plan
from .manager import ControllerContext

log = logging.getLogger(__name__)

CLUSTER_ROLES = ApiResource("rbac.authorization.k8s.io/v1", "clusterroles", False, "ClusterRole")


class ClusterRoleAggregationController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.roles = ctx.informers.informer(CLUSTER_ROLES)
        self.controller: Controller[str] = Controller("clusterrole-aggregation", self.reconcile,
                                                      workers=1)
        self.roles.add_handler(self._enqueue_all, lambda old, new: self._enqueue_all(new), self._enqueue_all)

    def _enqueue_all(self, _: Obj) -> None:
        for role in self.roles.list():
            if role.get("aggregationRule") is not None:
                self.controller.enqueue(str((role.get("metadata") or {}).get("name") or ""))

    async def reconcile(self, name: str) -> Result | None:
        role = self.roles.get(name)
        if role is None:
            return None
        rules = plan(role, self.roles.list())
        if rules is None:
            return None
        body = copy.deepcopy(dict(role))
        body["rules"] = rules
        try:
            await self.client.update(CLUSTER_ROLES, body)
            log.info("aggregated %d rules into ClusterRole %s", len(rules), name)
        except errors.NotFoundError:
            pass
        return None


async def run(ctx: ControllerContext) -> None:
    ctl = ClusterRoleAggregationController(ctx)
    ctx.informers.start()
    await ctl.roles.wait_synced()
    await ctl.controller.run()
