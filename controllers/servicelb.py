"""The LoadBalancer controller: a loopback address in ``status.loadBalancer.ingress`` of every
``type: LoadBalancer`` Service (Kubernetes' service controller with a local "cloud", like k3s'
servicelb or MetalLB in layer-2 mode).

Data flow: the services informer -> every change enqueues the Service; a change that may free an
address (a Service deleted, or no longer a LoadBalancer) also enqueues every Service still waiting
for one -> ``reconcile(key)``: ``servicelbplan.assign(all services, pool)`` (pure, deterministic)
-> this Service's wanted address -> a PUT of ``/status`` with the resourceVersion precondition
only when it differs (a conflict: look again). Services of another ``loadBalancerClass`` are
never written. The pool is ``--load-balancer-ip-range`` (default ``127.240.0.0/16``); ``minik8s
proxy`` listens on these addresses.
"""

from __future__ import annotations

import ipaddress
import logging

from controllers.manager import ControllerContext
from controllers.servicelbplan import Obj, assign, key_of, managed, status_ips, status_update, wants_address
from machinery import errors
from machinery.controller import Controller, Result

log = logging.getLogger(__name__)

SERVICES = ("v1", "services")


class ServiceLBController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.pool = ipaddress.ip_network(ctx.settings.load_balancer_ip_range, strict=False)
        self.services = ctx.informers.informer(SERVICES)
        # One worker: assignments are computed from one cache view at a time.
        self.controller: Controller[str] = Controller("servicelb", self.reconcile, workers=1)
        self.services.add_handler(self._on_add, self._on_update, self._on_delete)

    def _on_add(self, svc: Obj) -> None:
        if wants_address(svc) or status_ips(svc):
            self.controller.enqueue(key_of(svc))

    def _on_update(self, old: Obj, new: Obj) -> None:
        self._on_add(new)
        if wants_address(old) and not wants_address(new):
            self._wake_waiting()

    def _on_delete(self, svc: Obj) -> None:
        if wants_address(svc):
            self._wake_waiting()

    def _wake_waiting(self) -> None:
        for svc in self.services.list():
            if wants_address(svc) and not status_ips(svc):
                self.controller.enqueue(key_of(svc))

    async def reconcile(self, key: str) -> Result | None:
        svc = self.services.get(key)
        if svc is None or not managed(svc):
            return None
        wanted = assign(self.services.list(), self.pool).get(key)
        if wanted is None and wants_address(svc):
            log.info("no load balancer address for %s (pool %s full or spec.loadBalancerIP taken)", key, self.pool)
        body = status_update(svc, wanted)
        if body is None:
            return None
        try:
            await self.client.update_status(SERVICES, body)
        except errors.ConflictError:
            return Result.after(0.1)  # the cache was behind: look again
        except errors.NotFoundError:
            return None
        if wanted is None:
            self._wake_waiting()  # an address came free
        return None

    async def run(self) -> None:
        await self.services.wait_synced()
        for svc in self.services.list():
            self._on_add(svc)
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    ctl = ServiceLBController(ctx)
    ctx.informers.start()
    await ctl.run()
