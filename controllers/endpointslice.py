"""The EndpointSlice controller: the slices of every Service with a selector, beside its Endpoints.

Data flow (Kubernetes' pkg/controller/endpointslice): the services, pods and endpointslices
informers (slices: only those labelled ``endpointslice.kubernetes.io/managed-by:
endpointslice-controller.k8s.io``) -> handlers enqueue ``namespace/name`` of every Service a
changed pod matches (before and after), of a changed Service, and of the Service a managed slice
names (``kubernetes.io/service-name``) when that slice changes or goes, so a slice edited or deleted
by hand is put right -> ``reconcile(key)``:

- Service gone -> delete its managed slices (their owner reference would let the garbage collector
  do it too, later);
- ExternalName, or no selector -> nothing (slices of selector-less Services are the user's);
- else ``endpointsliceplan.plan(service, pods, slices)`` (pure) -> create, update, delete only what
  differs; an unchanged world writes nothing.
"""

from __future__ import annotations

import logging

from controllers.endpoints import follow_pods_of_services
from controllers.endpointsliceplan import MANAGED_BY, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, Obj, plan
from controllers.manager import ControllerContext
from machinery import errors
from machinery.controller import Controller, Result
from machinery.informer import object_key, split_key

log = logging.getLogger(__name__)

SERVICES = ("v1", "services")
PODS = ("v1", "pods")
ENDPOINT_SLICES = ("discovery.k8s.io/v1", "endpointslices")


class EndpointSliceController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.services = ctx.informers.informer(SERVICES)
        self.pods = ctx.informers.informer(PODS)
        self.slices = ctx.informers.informer(ENDPOINT_SLICES, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}")
        self.controller: Controller[str] = Controller("endpointslice", self.reconcile, workers=ctx.settings.workers)
        self.services.add_handler(self._on_service, lambda old, new: self._on_service(new), self._on_service)
        follow_pods_of_services(self.pods, self.services, self.controller.enqueue)
        self.slices.add_handler(self._on_slice, lambda old, new: self._on_slice(new), self._on_slice)

    def _on_service(self, svc: Obj) -> None:
        self.controller.enqueue(object_key(svc))

    def _on_slice(self, s: Obj) -> None:
        meta = s.get("metadata") or {}
        service = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if service:
            self.controller.enqueue(f"{meta.get('namespace')}/{service}")

    def _slices_of(self, namespace: str | None, name: str) -> list[Obj]:
        return [s for s in self.slices.list(namespace)
                if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == name]

    async def _delete(self, s: Obj) -> None:
        meta = s.get("metadata") or {}
        try:
            await self.client.delete(ENDPOINT_SLICES, str(meta.get("name")), namespace=meta.get("namespace"),
                                     preconditions={"uid": str(meta.get("uid"))})
        except (errors.NotFoundError, errors.ConflictError):
            pass

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        existing = self._slices_of(namespace, name)
        if service is None:
            for s in existing:
                await self._delete(s)
            return None
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName" or not spec.get("selector"):
            return None
        the_plan = plan(service, self.pods.list(namespace), existing)
        try:
            for body in the_plan.create:
                await self.client.create(ENDPOINT_SLICES, body, namespace=namespace)
            for body in the_plan.update:
                await self.client.update(ENDPOINT_SLICES, body, namespace=namespace)
        except (errors.ConflictError, errors.NotFoundError):
            return Result.after(0.1)  # the cache was behind: look again with the current slices
        for s in the_plan.delete:
            await self._delete(s)
        return None

    async def run(self) -> None:
        await self.services.wait_synced()
        await self.pods.wait_synced()
        await self.slices.wait_synced()
        # Slices whose Service went while the controller was down.
        for s in self.slices.list():
            self._on_slice(s)
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    ctl = EndpointSliceController(ctx)
    ctx.informers.start()
    await ctl.run()
