"""The pod garbage collector: force-deletes pods no kubelet will ever finish.

After pkg/controller/podgc. Data flow: pod and node informers -> every ``pod_gc_period`` one pass
(``gc_once``) over the caches, deciding with ``controllers.podgcplan``:

1. terminated pods beyond ``--terminated-pod-gc-threshold`` (evicted, then oldest first);
2. pods being deleted on not-Ready nodes tainted ``node.kubernetes.io/out-of-service``;
3. pods of nodes that no longer exist: a missing node name waits ``pod_gc_quarantine`` seconds
   (40 s, as Kubernetes' quarantine: the node informer may just be behind), then a GET of the
   node confirms it is gone, and its pods are marked Failed (``DisruptionTarget``
   ``DeletionByPodGC``) and deleted;
4. pods being deleted that were never scheduled.

Each deletion: the status patch to ``Failed`` (unless terminal already; uid-guarded), then a
DELETE with grace period 0, so a pod of a vanished node leaves Terminating at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers import podgcplan
from controllers.nodehealth import rfc3339
from controllers.ownerrefs import Obj, key_of, meta, name_of, uid_of
from machinery import errors
from machinery.client import ApiClient
from machinery.informer import Informer

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

PODS = ("v1", "pods")
NODES = ("v1", "nodes")


class PodGCController:
    def __init__(self, client: ApiClient, pods: Informer, nodes: Informer, *, threshold: int,
                 quarantine: float, period: float) -> None:
        self.client = client
        self.pods, self.nodes = pods, nodes
        self.threshold, self.quarantine, self.period = threshold, quarantine, period
        self.quarantined: dict[str, float] = {}  # node name -> monotonic time it may be checked

    async def gc_once(self) -> list[str]:
        """One pass; returns the keys of the pods it deleted."""
        pods, nodes = self.pods.list(), {name_of(n): n for n in self.nodes.list()}
        deleted: list[str] = []
        for pod in podgcplan.terminated_beyond(pods, self.threshold):
            deleted += await self._delete(pod, "terminated pods over the threshold")
        for pod in podgcplan.terminating_out_of_service(pods, nodes):
            deleted += await self._delete(pod, "terminating on an out-of-service node")
        gone = await self._deleted_nodes(podgcplan.missing_nodes(pods, nodes))
        for pod in podgcplan.orphaned(pods, gone):
            deleted += await self._delete(pod, f"orphaned: node {pod['spec']['nodeName']} no longer exists",
                                          condition=podgcplan.ORPHAN_CONDITION)
        for pod in podgcplan.unscheduled_terminating(pods):
            deleted += await self._delete(pod, "unscheduled and terminating")
        return deleted

    async def _deleted_nodes(self, missing: set[str]) -> set[str]:
        """The missing nodes past their quarantine that the API confirms are gone."""
        now = time.monotonic()
        for name in missing:
            self.quarantined.setdefault(name, now + self.quarantine)
        gone: set[str] = set()
        for name, due in list(self.quarantined.items()):
            if due > now:
                continue
            del self.quarantined[name]  # a node still missing next pass waits a new quarantine
            if name not in missing:
                continue
            try:
                await self.client.get(NODES, name)
            except errors.NotFoundError:
                gone.add(name)
            except errors.ApiError as e:
                log.warning("could not check node %s: %s", name, e)
        return gone

    async def _delete(self, pod: Obj, why: str, *, condition: Obj | None = None) -> list[str]:
        """markFailedAndDeletePod: Failed first (unless terminal), then a forced delete."""
        namespace, name, uid = meta(pod).get("namespace"), name_of(pod), uid_of(pod)
        log.info("PodGC is force deleting pod %s (%s)", key_of(pod), why)
        try:
            status = podgcplan.failed_status(pod, condition=condition,
                                             now=rfc3339(datetime.now(timezone.utc)))
            if status is not None:
                patch: dict[str, Any] = {"metadata": {"uid": uid}, "status": status}
                await self.client.patch(PODS, name, patch, namespace=namespace, patch_type="strategic",
                                        subresource="status")
            await self.client.delete(PODS, name, namespace=namespace, grace_period_seconds=0,
                                     preconditions={"uid": uid})
        except (errors.NotFoundError, errors.ConflictError):
            return []  # gone already, or another pod of that name now
        except errors.ApiError as e:
            log.warning("could not delete pod %s: %s", key_of(pod), e)
            return []
        return [key_of(pod)]

    async def run(self) -> None:
        await self.pods.wait_synced()
        await self.nodes.wait_synced()
        while True:
            try:
                await self.gc_once()
            except Exception:  # noqa: BLE001 - one failed pass must not end the collector
                log.exception("pod garbage collection pass failed")
            await asyncio.sleep(self.period)


async def run(ctx: ControllerContext) -> None:
    s = ctx.settings
    ctl = PodGCController(ctx.client, ctx.informers.informer(PODS), ctx.informers.informer(NODES),
                          threshold=s.terminated_pod_gc_threshold, quarantine=s.pod_gc_quarantine,
                          period=s.pod_gc_period)
    ctx.informers.start()
    await ctl.run()
