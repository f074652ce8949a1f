"""The local-path provisioner in the controller-manager: a directory on a node per claim (after
rancher's local-path-provisioner).

Data flow: at start it creates the default StorageClass ``local-path`` (provisioner
``minik8s.io/local-path``, WaitForFirstConsumer, reclaim Delete, the is-default-class annotation)
unless a class of that name exists (a user's edit is never overwritten) -> informers on claims,
classes, nodes and volumes; a claim change (the scheduler's selected-node annotation), a class
change or a node becoming Ready enqueues claims -> ``localprovisionerplan.provision`` (pure)
decides the PV -> it is created (AlreadyExists: done) with Events ``Provisioning`` and
``ProvisioningSucceeded`` on the claim; the binder completes the binding of the pre-bound volume.
A bound claim whose request grew (a class with ``allowVolumeExpansion``) gets its volume's
capacity raised (``localprovisionerplan.expanded``), with the external resizer's events.

The contract with the kubelet (``kubelet.localvolumes``): the PV's ``spec.local.path`` lies in
the directory its node publishes as the Node annotation ``minik8s.io/local-path-dir`` (default
``/var/lib/minik8s/local-path``), and its node affinity names the node. That node's kubelet
creates the directory when a pod first mounts the volume, and once the volume is ``Released``
with reclaim policy ``Delete`` (the binder sets Released when the claim is gone) it removes the
directory and then deletes the PV object. This process touches no node's disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from controllers.localprovisionerplan import (DEFAULT_CLASS_NAME, PROVISIONER, default_class, expanded, is_ready,
                                              provision)
from controllers.manager import ControllerContext
from machinery import errors
from machinery.client import ApiClient
from machinery.controller import Controller, Result
from machinery.volumematch import claim_key, meta, name, spec, storage_class_of

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
PVS = ("v1", "persistentvolumes")
PVCS = ("v1", "persistentvolumeclaims")
NODES = ("v1", "nodes")
CLASSES = ("storage.k8s.io/v1", "storageclasses")


async def ensure_default_class(client: ApiClient) -> bool:
    """Create ``local-path`` unless a class of that name exists; True if created."""
    try:
        await client.get(CLASSES, DEFAULT_CLASS_NAME)
        return False
    except errors.NotFoundError:
        pass
    try:
        await client.create(CLASSES, default_class())
    except errors.AlreadyExistsError:
        return False
    log.info("created the default StorageClass %s (%s)", DEFAULT_CLASS_NAME, PROVISIONER)
    return True


class LocalPathProvisioner:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.recorder = ctx.recorder(PROVISIONER)
        self.pvcs = ctx.informers.informer(PVCS)
        self.pvs = ctx.informers.informer(PVS)
        self.nodes = ctx.informers.informer(NODES)
        self.classes = ctx.informers.informer(CLASSES)
        self.controller: Controller[str] = Controller("local-path-provisioner", self.reconcile, workers=2)
        self.created: set[str] = set()  # PVs made here that the informer may not show yet
        self.pvcs.add_handler(self._claim, lambda _old, new: self._claim(new), None)
        self.classes.add_handler(lambda _c: self._all(), lambda _o, _n: self._all(), None)
        self.nodes.add_handler(None, self._node_updated, None)

    def _claim(self, claim: Obj) -> None:
        self.controller.enqueue(claim_key(claim))

    def _all(self) -> None:
        for claim in self.pvcs.list():
            self._claim(claim)

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if is_ready(new) and not is_ready(old):
            self._all()  # an Immediate claim may have been waiting for a Ready node

    async def reconcile(self, key: str) -> Result | None:
        claim = self.pvcs.get(key)
        if claim is None:
            return None
        classes = {name(c): c for c in self.classes.list()}
        if spec(claim).get("volumeName"):
            return await self._expand(claim, classes)
        existing = {name(v) for v in self.pvs.list()} | self.created
        body = provision(claim, classes, {name(n): n for n in self.nodes.list()}, existing)
        if body is None:
            return None
        ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(claim)}
        await self.recorder.event(ref, "Normal", "Provisioning",
                                  f'External provisioner is provisioning volume for claim "{key}"')
        try:
            await self.client.create(PVS, body)
        except errors.AlreadyExistsError:
            return None
        except errors.InvalidError as e:
            await self.recorder.event(ref, "Warning", "ProvisioningFailed", f"failed to provision volume with "
                                      f'StorageClass "{storage_class_of(claim)}": {e}')
            return None
        self.created.add(body["metadata"]["name"])
        log.info("provisioned %s for %s at %s", body["metadata"]["name"], key, body["spec"]["local"]["path"])
        await self.recorder.event(ref, "Normal", "ProvisioningSucceeded",
                                  f"Successfully provisioned volume {body['metadata']['name']}")
        return None

    async def _expand(self, claim: Obj, classes: Mapping[str, Obj]) -> Result | None:
        volume_name = str(spec(claim).get("volumeName"))
        body = expanded(claim, self.pvs.get(volume_name), classes)
        if body is None:
            return None
        ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(claim)}
        await self.recorder.event(ref, "Normal", "Resizing", f'External resizer is resizing volume {volume_name}')
        try:
            await self.client.update(PVS, {**body, "apiVersion": "v1", "kind": "PersistentVolume"})
        except errors.ConflictError:
            return Result.after(0.2)
        except errors.NotFoundError:
            return None
        await self.recorder.event(ref, "Normal", "VolumeResizeSuccessful",
                                  f'resize volume "{volume_name}" by resizer "{PROVISIONER}" succeeded')
        return None

    async def run(self) -> None:
        while True:
            try:
                await ensure_default_class(self.client)
                break
            except errors.ApiError as e:
                log.warning("could not make sure the StorageClass %s exists: %s", DEFAULT_CLASS_NAME, e)
                await asyncio.sleep(1.0)
        for informer in (self.pvcs, self.pvs, self.nodes, self.classes):
            await informer.wait_synced()
        self._all()
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    provisioner = LocalPathProvisioner(ctx)
    ctx.informers.start()
    await provisioner.run()
