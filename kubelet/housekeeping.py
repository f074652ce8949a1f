"""The kubelet's housekeeping and graceful node shutdown: what is left over, and the node going away.

Data flow:

    every housekeeping_interval: remove_orphans(): runtime.list(node label) -> podsync.orphans
        (containers whose pod uid is not in the pod informer, checked again after the slow listing)
        -> kubelet_running_pods / kubelet_running_containers set from that list -> removed, their
        pod forgotten (PodWorker.forget) -> engine volumes of gone pods removed
    shutdown_node() (SIGTERM with shutdown_grace_period > 0; Kubernetes' graceful node shutdown):
        Node NotReady (NodeAgent.shutting_down) -> every pod's containers stopped within the grace
        period -> pods Failed with reason Terminated (podsync.shutdown_status; a pod being deleted
        is deleted instead) -> every container of this node removed. API calls are best effort
        (the apiserver may be going away too); the containers go regardless.

Every engine call goes through the pod worker's ``run_blocking`` (the kubelet's thread pool).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable

from kubelet import podsync
from kubelet.cri import LABEL_NODE, LABEL_POD_UID, ContainerInfo, ContainerRuntimeError
from kubelet.metrics import set_running
from kubelet.node import NodeAgent, now_utc
from kubelet.podworker import PodWorker
from machinery import errors

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class Housekeeping:
    def __init__(self, worker: PodWorker, node: NodeAgent) -> None:
        self.worker = worker
        self.node = node
        self.settings = worker.settings
        self.runtime = worker.runtime
        self._rt = worker.run_blocking

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval)
            try:
                await self.remove_orphans()
            except ContainerRuntimeError as e:
                log.info("housekeeping skipped: %s", e)
            except Exception:
                log.exception("housekeeping failed")

    async def remove_orphans(self) -> int:
        """Removes containers on this node whose pod is gone; how many were removed."""
        pods = self.worker.pods
        if not pods.has_synced or not self.node.runtime_ok or self.node.shutting_down:
            return 0
        containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_NODE: self.node.name})
        set_running(containers)  # kubelet_running_pods / kubelet_running_containers, from this relist
        live = {str((p.get("metadata") or {}).get("uid")) for p in pods.list()}
        gone = podsync.orphans(containers, live)
        # Re-check against the cache after the (slow) listing: a pod may have arrived meanwhile.
        live = {str((p.get("metadata") or {}).get("uid")) for p in pods.list()}
        gone = [c for c in gone if c.pod_uid not in live]
        for c in gone:
            log.info("removing container %s of pod uid %s that no longer exists", c.name, c.pod_uid)
            await self._rt(self.runtime.remove, c.id)
        for uid in {c.pod_uid for c in gone if c.pod_uid}:
            self.worker.forget(uid)
        await self.worker.config.volumes.remove_orphans(live)
        return len(gone)

    # ------------------------------------------------------------------ graceful node shutdown
    async def shutdown_node(self) -> None:
        """Kubernetes' graceful node shutdown (see the module docstring)."""
        grace = self.settings.shutdown_grace_period
        log.info("node %s is shutting down: stopping its pods within %.0fs", self.node.name, grace)
        self.node.shutting_down = True
        await _best_effort("marking the node NotReady", self.node.write_status())
        if self.node.runtime_ok:
            limit = grace + 5.0  # the stops, then the status writes and removals
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(self._shut_down_pod(p, grace) for p in self.worker.pods.list())), limit)
            except asyncio.TimeoutError:
                log.warning("node shutdown: the pods were not done within %.0fs; removing their containers", limit)
            try:
                # Whatever is left (a pod that came late, a stop that hung): removed by force.
                left: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_NODE: self.node.name})
                await asyncio.gather(*(self._rt(self.runtime.remove, c.id) for c in left))
            except ContainerRuntimeError as e:
                log.warning("node shutdown: cannot remove the remaining containers: %s", e)
        log.info("node %s shut down", self.node.name)

    async def _shut_down_pod(self, pod: Obj, grace: float) -> None:
        meta = pod.get("metadata") or {}
        uid, name, namespace = str(meta.get("uid")), str(meta.get("name")), str(meta.get("namespace"))
        client = self.worker.client
        try:
            containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
            actions = podsync.plan_deletion(pod, containers, settings=self.settings.sync)
            await asyncio.gather(*(self._rt(self.runtime.stop, a.id, timeout=min(a.grace_s, grace))
                                   for a in actions if isinstance(a, podsync.StopContainer)), return_exceptions=True)
            if meta.get("deletionTimestamp"):
                await _best_effort(f"deleting pod {namespace}/{name}", client.delete(
                    "pods", name, namespace=namespace, grace_period_seconds=0, preconditions={"uid": uid}))
            elif (pod.get("status") or {}).get("phase") not in podsync.TERMINAL:
                stopped: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
                status = podsync.shutdown_status(pod, stopped, now=now_utc(), host_ip=self.node.node_address)
                await _best_effort(f"marking pod {namespace}/{name} Failed", client.update_status(
                    "pods", {**pod, "status": status}, namespace=namespace))
            for a in actions:
                if isinstance(a, podsync.RemoveContainer):
                    await self._rt(self.runtime.remove, a.id)
        except ContainerRuntimeError as e:
            log.warning("node shutdown: pod %s/%s: %s", namespace, name, e)
        self.worker.forget(uid)


async def _best_effort(what: str, call: Awaitable[Any], timeout_s: float = 3.0) -> None:
    try:
        await asyncio.wait_for(call, timeout_s)
    except (errors.ApiError, asyncio.TimeoutError, OSError) as e:
        log.warning("node shutdown: %s failed: %s", what, e)


__all__ = ["Housekeeping"]
