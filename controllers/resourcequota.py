"""The resource quota controller: keeps every ResourceQuota's ``status.hard`` and ``status.used`` true.

Data flow (Kubernetes' pkg/controller/resourcequota):

    informers: resourcequotas, and the objects quotas count (pods, services, configmaps, secrets,
        replicationcontrollers, resourcequotas from the start; any other group resource a quota
        names, e.g. count/deployments.apps or persistentvolumeclaims, found through discovery and
        watched from then on; one the server does not serve counts 0 and is looked up again after
        a resync period, e.g. a custom resource installed later)
    handlers: a quota added or changed -> its key; a counted object deleted or changed in a way
        that alters its usage (resourcequotaplan.usage_changed: a pod finishing, ...) -> the keys
        of its namespace's quotas; every resync period -> every quota
    reconcile(key): resourcequotaplan.calculate_status(quota, objects of its namespace)
        -> PUT /status with the cached resourceVersion when it differs (a conflict, e.g. with
        the admission charging a new object meanwhile, is retried with backoff by the runner)

Creates are not watched for: the ResourceQuota admission has charged them already, and a
recalculation racing with creates still being admitted could undercount.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from controllers.ownerrefs import Obj, key_of, meta
from controllers.resourcequotaplan import calculate_status, needed_resources, status_changed, usage_changed
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.discovery import ResourceInfo, discover
from machinery.informer import Informer, split_key
from machinery.sharedinformers import InformerFactory

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

QUOTA_RESOURCE = ApiResource("v1", "resourcequotas", True, "ResourceQuota")
# Watched from the start (served by every minik8s apiserver), by group resource.
CORE_RESOURCES: dict[str, ApiResource] = {
    "pods": ApiResource("v1", "pods", True, "Pod"),
    "services": ApiResource("v1", "services", True, "Service"),
    "configmaps": ApiResource("v1", "configmaps", True, "ConfigMap"),
    "secrets": ApiResource("v1", "secrets", True, "Secret"),
    "replicationcontrollers": ApiResource("v1", "replicationcontrollers", True, "ReplicationController"),
    "resourcequotas": QUOTA_RESOURCE,
}
SYNC_TIMEOUT = 10.0


def _group_resource(info: ResourceInfo) -> str:
    return f"{info.plural}.{info.group}" if info.group else info.plural


class ResourceQuotaController:
    def __init__(self, client: ApiClient, informers: InformerFactory, *, resync_period: float = 300.0,
                 workers: int = 2) -> None:
        self.client = client
        self.factory = informers
        self.resync_period = resync_period
        self.quotas = informers.informer(QUOTA_RESOURCE)
        self.counted: dict[str, Informer] = {}
        # group resources the server did not serve when last asked (counted as 0; asked again after a resync period)
        self.missing: dict[str, float] = {}
        self.controller: Controller[str] = Controller("resourcequota", self.reconcile, workers=workers)
        self.quotas.add_handler(self._quota_added, self._quota_updated, None)
        for gr, res in CORE_RESOURCES.items():
            self._follow(gr, informers.informer(res))

    # ------------------------------------------------------------------ handlers
    def _quota_added(self, quota: Obj) -> None:
        self.controller.enqueue(key_of(quota))

    def _quota_updated(self, old: Obj, new: Obj) -> None:
        # Not on a change of status.used alone (the admission's charges): only when the limits change.
        hard = (new.get("spec") or {}).get("hard") or {}
        if old.get("spec") != new.get("spec") or (new.get("status") or {}).get("hard") != hard:
            self.controller.enqueue(key_of(new))

    def _follow(self, group_resource: str, informer: Informer) -> None:
        self.counted[group_resource] = informer

        def updated(old: Obj, new: Obj) -> None:
            if usage_changed(group_resource, old, new, now=_now()):
                self._enqueue_namespace(new)

        def deleted(obj: Obj) -> None:
            self._enqueue_namespace(obj)

        informer.add_handler(None, updated, deleted)

    def _enqueue_namespace(self, obj: Obj) -> None:
        for quota in self.quotas.list(meta(obj).get("namespace")):
            self.controller.enqueue(key_of(quota))

    # ------------------------------------------------------------------ dynamic resources
    async def _informers_for(self, quota: Obj) -> dict[str, Informer | None]:
        """The informers of what ``quota`` counts; new ones (found through discovery) start now."""
        wanted = needed_resources(quota)
        now = time.monotonic()
        unknown = {gr for gr in wanted - set(self.counted)
                   if gr not in self.missing or now - self.missing[gr] >= self.resync_period}
        if unknown:
            served = {_group_resource(i): i for i in await discover(self.client)}
            for gr in unknown:
                info = served.get(gr)
                if info is None or not info.namespaced or "list" not in info.verbs or "watch" not in info.verbs:
                    log.info("resource quota counts %s, which the server does not serve", gr)
                    self.missing[gr] = now
                    continue
                self.missing.pop(gr, None)
                self._follow(gr, self.factory.informer(info.api_resource))
            self.factory.start()
        out: dict[str, Informer | None] = {}
        for gr in wanted | set(CORE_RESOURCES):
            informer = self.counted.get(gr)
            if informer is not None and not informer.has_synced:
                await informer.wait_synced(timeout=SYNC_TIMEOUT)
            out[gr] = informer
        return out

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        quota = self.quotas.get(key)
        if quota is None:
            return None
        ns, _ = split_key(key)
        informers = await self._informers_for(quota)
        objects = {gr: (inf.list(ns) if inf is not None else []) for gr, inf in informers.items()}
        desired = calculate_status(quota, objects, now=_now())
        if status_changed(quota, desired):
            body = copy.deepcopy(quota)
            body["status"] = desired
            try:
                await self.client.update_status(QUOTA_RESOURCE, body)
            except errors.NotFoundError:
                return None
        return Result.after(self.resync_period)

    async def run(self) -> None:
        await self.controller.run()


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager."""
    ctl = ResourceQuotaController(ctx.client, ctx.informers,
                                 resync_period=ctx.settings.resource_quota_sync_period,
                                 workers=max(1, ctx.settings.workers // 2))
    ctx.informers.start()
    await ctl.quotas.wait_synced()
    await asyncio.gather(*(inf.wait_synced() for inf in ctl.counted.values()))
    await ctl.run()

