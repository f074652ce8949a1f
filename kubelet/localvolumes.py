"""The kubelet's reclaimer of local-path volumes: Delete reclaim happens on the node that has the data.

Data flow: a PersistentVolume informer (the kubelet's shared informers) -> every PV event
enqueues the PV's name -> ``reconcile``: ``kubelet.volumes.localpath.reclaim_path`` decides from
the cached PV whether this node must reclaim it (provisioned by ``minik8s.io/local-path``, node
affinity naming this node, phase ``Released``, policy ``Delete``, path inside this node's
local-path directory) -> the directory is removed (in the kubelet's thread pool) -> the PV is
deleted with its uid as precondition. A failure is retried with the controller's backoff. The PV binder
(controllers.persistentvolume) marks PVs Released; rancher's local-path-provisioner does this
with a helper pod on the node, here the node's own kubelet does it.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from kubelet.blocking import RunBlocking
from kubelet.volumes.localpath import reclaim_path
from machinery import errors
from machinery.client import ApiClient
from machinery.controller import Controller, Result
from machinery.sharedinformers import InformerFactory

log = logging.getLogger(__name__)

Obj = dict[str, Any]
PVS = ("v1", "persistentvolumes")


class LocalVolumeReclaimer:
    def __init__(self, client: ApiClient, informers: InformerFactory, *, node_name: str, local_dir: str,
                 run_blocking: RunBlocking) -> None:
        self.client = client
        self.run_blocking = run_blocking
        self.node_name = node_name
        self.local_dir = local_dir
        self.pvs = informers.informer(PVS)
        self.controller: Controller[str] = Controller(f"local-path-reclaimer-{node_name}", self.reconcile, workers=1)
        self.pvs.add_handler(self._enqueue, lambda _old, new: self._enqueue(new), None)
        self.reclaimed = 0

    def _enqueue(self, pv: Obj) -> None:
        name = (pv.get("metadata") or {}).get("name")
        if name:
            self.controller.enqueue(str(name))

    async def run(self) -> None:
        await self.pvs.wait_synced()
        try:
            await self.controller.run()
        finally:
            await self.controller.stop(timeout_s=2.0)

    async def reconcile(self, name: str) -> Result | None:
        pv = self.pvs.get(name)
        if pv is None:
            return None
        path = reclaim_path(pv, node=self.node_name, local_dir=self.local_dir)
        if path is None:
            return None
        await self.run_blocking(_remove, path)
        log.info("reclaimed local-path volume %s: removed %s", name, path)
        try:
            await self.client.delete(PVS, name, preconditions={"uid": str((pv.get("metadata") or {}).get("uid"))})
        except (errors.NotFoundError, errors.ConflictError):
            return None
        self.reclaimed += 1
        return None


def _remove(path: str) -> None:
    """The volume's directory, gone; any failure but its absence raises (and is retried)."""
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass


__all__ = ["LocalVolumeReclaimer"]
