"""The pvc-protection and pv-protection controllers: storage in use is not deleted under its users.

After pkg/controller/volume/pvcprotection and pvprotection. The apiserver gives every new claim
the finalizer ``kubernetes.io/pvc-protection`` and every new volume ``kubernetes.io/pv-protection``
(the StorageObjectInUseProtection admission); a delete then only marks them (deletionTimestamp).

Data flow, claims: informers on claims and pods -> a deleting claim, or a pod that stops using
claims (deleted, finished), enqueues the claim -> ``machinery.volumematch.uses_claim`` over the
pods of its namespace (scheduled and not finished) -> when none uses it,
``protection_to_remove`` gives the claim without the finalizer -> a PUT with the
resourceVersion precondition (a conflict looks again); the claim is then gone, and the binder
releases its volume. Volumes (``run_volumes``, registered as ``pv-protection`` through
``controllers.pvprotection``): a deleting volume loses its finalizer once it is not ``Bound``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from controllers.manager import ControllerContext
from machinery import errors
from machinery.client import ApiClient
from machinery.controller import Controller, Result
from machinery.volumematch import PV_PROTECTION, PVC_PROTECTION, claim_key, name, protection_to_remove, spec, uses_claim

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
PVS = ("v1", "persistentvolumes")
PVCS = ("v1", "persistentvolumeclaims")
PODS = ("v1", "pods")


class ClaimProtection:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.pvcs = ctx.informers.informer(PVCS)
        self.pods = ctx.informers.informer(PODS)
        self.controller: Controller[str] = Controller("pvc-protection", self.reconcile, workers=2)
        self.pvcs.add_handler(self._claim, lambda _old, new: self._claim(new), None)
        self.pods.add_handler(None, lambda old, _new: self._pod(old), self._pod)

    def _claim(self, claim: Obj) -> None:
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            self.controller.enqueue(claim_key(claim))

    def _pod(self, pod: Obj) -> None:
        """A pod changed or went: the deleting claims it named may be free now."""
        namespace = (pod.get("metadata") or {}).get("namespace") or ""
        for volume in spec(pod).get("volumes") or []:
            claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if volume.get("ephemeral") is not None:
                claim_name = f"{name(pod)}-{volume.get('name')}"
            if claim_name:
                self.controller.enqueue(f"{namespace}/{claim_name}")

    async def reconcile(self, key: str) -> Result | None:
        claim = self.pvcs.get(key)
        if claim is None:
            return None
        namespace = (claim.get("metadata") or {}).get("namespace")
        in_use = any(uses_claim(pod, claim) for pod in self.pods.list(namespace))
        body = protection_to_remove(claim, PVC_PROTECTION, in_use=in_use)
        if body is None:
            return None
        return await _write(self.client, PVCS, {**body, "apiVersion": "v1", "kind": "PersistentVolumeClaim"})

    async def run(self) -> None:
        await self.pvcs.wait_synced()
        await self.pods.wait_synced()
        for claim in self.pvcs.list():
            self._claim(claim)
        await self.controller.run()


class VolumeProtection:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.pvs = ctx.informers.informer(PVS)
        self.controller: Controller[str] = Controller("pv-protection", self.reconcile, workers=1)
        self.pvs.add_handler(self._volume, lambda _old, new: self._volume(new), None)

    def _volume(self, volume: Obj) -> None:
        if (volume.get("metadata") or {}).get("deletionTimestamp"):
            self.controller.enqueue(name(volume))

    async def reconcile(self, key: str) -> Result | None:
        volume = self.pvs.get(key)
        if volume is None:
            return None
        in_use = (volume.get("status") or {}).get("phase") == "Bound"
        body = protection_to_remove(volume, PV_PROTECTION, in_use=in_use)
        if body is None:
            return None
        return await _write(self.client, PVS, {**body, "apiVersion": "v1", "kind": "PersistentVolume"})

    async def run(self) -> None:
        await self.pvs.wait_synced()
        for volume in self.pvs.list():
            self._volume(volume)
        await self.controller.run()


async def _write(client: ApiClient, resource: tuple[str, str], body: dict[str, Any]) -> Result | None:
    try:
        await client.update(resource, body)
    except errors.ConflictError:
        return Result.after(0.2)
    except errors.NotFoundError:
        return None
    log.info("%s %s: protection finalizer removed", body["kind"], name(body))
    return None


async def run(ctx: ControllerContext) -> None:
    protection = ClaimProtection(ctx)
    ctx.informers.start()
    await protection.run()


async def run_volumes(ctx: ControllerContext) -> None:
    protection = VolumeProtection(ctx)
    ctx.informers.start()
    await protection.run()
