"""The disruption controller: keeps each PodDisruptionBudget's status (how many pods may go now).

After pkg/controller/disruption. Data flow:

    informers (PDBs, pods, ReplicaSets, Deployments) --handlers--> queue of PDB keys
        (a pod event enqueues every PDB of its namespace that selects it)
    reconcile(key):
        the PDB and the pods of its namespace from the caches
        for percent / maxUnavailable budgets: each pod's controller resolved to the object that
            decides its scale (``_scale``: a ReplicaSet owned by a Deployment -> the Deployment,
            from the caches; any other kind -> GET its ``/scale``, as Kubernetes' scale finder)
        controllers.disruptionplan.plan(...) -> the status (None: current) and when to look again
        PUT /status with the cached resourceVersion (a conflict requeues the key)
        a failed sync -> the fail-safe status (disruptionsAllowed 0, DisruptionAllowed=False/SyncFailed)

A second queue, of pods, clears a ``DisruptionTarget=True`` condition that an eviction set 2 minutes
ago on a pod that was never deleted after all (Kubernetes' stale pod disruption cleanup).

Every PDB is looked at again after ``RESYNC_SECONDS`` (Kubernetes' 30 s informer resync): a
Deployment that scales changes a percent budget without any pod event.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers import disruptionplan
from controllers.ownerrefs import Obj, get_controller_of, key_of, meta, uid_of
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.discovery import parse_resource_list
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

PDBS = ApiResource("policy/v1", "poddisruptionbudgets", True, "PodDisruptionBudget")
PODS = ("v1", "pods")
REPLICA_SETS = ("apps/v1", "replicasets")
DEPLOYMENTS = ("apps/v1", "deployments")
RESYNC_SECONDS = 30.0
DISCOVERY_TTL = 60.0
COMPONENT = "controllermanager"


def _replicas(obj: Obj) -> int:
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


class DisruptionController:
    def __init__(self, client: ApiClient, informers: dict[str, Informer], *, recorder: EventRecorder,
                 workers: int = 2) -> None:
        self.client = client
        self.pdbs, self.pods = informers["pdbs"], informers["pods"]
        self.rss, self.deployments = informers["replicasets"], informers["deployments"]
        self.recorder = recorder
        self.kinds: dict[str, tuple[float, dict[str, str]]] = {}  # apiVersion -> (fetched at, kind -> plural)
        self.controller: Controller[str] = Controller("disruption", self.reconcile, workers=workers)
        self.stale: Controller[str] = Controller("stale-pod-disruption", self.clear_stale_disruption, workers=1)
        self.pdbs.add_handler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue)
        self.pods.add_handler(self._pod_changed, self._pod_updated, self._pod_changed)

    def _enqueue(self, pdb: Obj) -> None:
        self.controller.enqueue(key_of(pdb))

    def _pod_changed(self, pod: Obj) -> None:
        wait = disruptionplan.stale_disruption_wait(pod, datetime.now(timezone.utc))
        if wait is not None:
            self.stale.enqueue_after(key_of(pod), wait)
        for pdb in self.pdbs.list(meta(pod).get("namespace")):
            if disruptionplan.selects(pdb, pod):
                self.controller.enqueue(key_of(pdb))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        self._pod_changed(new)
        if meta(old).get("labels") != meta(new).get("labels"):
            self._pod_changed(old)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        pdb = self.pdbs.get(key)
        if pdb is None:
            return None
        ns, _ = split_key(key)
        pods = [p for p in self.pods.list(ns) if disruptionplan.selects(pdb, p)]
        now = datetime.now(timezone.utc)
        try:
            scales = await self._scales(pdb, pods)
            p = disruptionplan.plan(pdb, pods, scales, now=now)
        except (disruptionplan.SyncError, errors.ApiError) as e:
            log.warning("failed to sync PodDisruptionBudget %s: %s", key, e)
            await self.recorder.event(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                      f"Failed to calculate the number of expected pods: {e}")
            await self._write(pdb, disruptionplan.fail_safe(pdb, str(e), now=now))
            raise RuntimeError(f"sync of PodDisruptionBudget {key} failed: {e}") from e
        if p.unmanaged:
            log.info("PodDisruptionBudget %s selects pods without a controller: %s", key, p.unmanaged)
        if p.status is not None:
            await self._write(pdb, p.status)
        after = RESYNC_SECONDS if p.recheck_after is None else min(RESYNC_SECONDS, p.recheck_after + 0.1)
        return Result.after(after)

    async def clear_stale_disruption(self, key: str) -> Result | None:
        pod = self.pods.get(key)
        now = datetime.now(timezone.utc)
        wait = disruptionplan.stale_disruption_wait(pod, now) if pod is not None else None
        if pod is None or wait is None:
            return None
        if wait > 0:
            return Result.after(wait)
        body = copy.deepcopy(pod)
        body["status"]["conditions"] = disruptionplan.cleared_disruption(body["status"].get("conditions") or [], now)
        try:
            await self.client.update_status(PODS, body)
        except errors.NotFoundError:
            pass
        return None

    async def _write(self, pdb: Obj, status: Obj) -> None:
        body = copy.deepcopy(pdb)
        body["status"] = status
        try:
            await self.client.update_status(PDBS, body)
        except errors.NotFoundError:
            pass  # deleted meanwhile

    # ------------------------------------------------------------------ controllers' scales
    async def _scales(self, pdb: Obj, pods: list[Obj]) -> disruptionplan.Scales:
        """The pods' controller uid -> (uid of the controller deciding the scale, its replicas)."""
        if not disruptionplan.uses_scale(pdb):
            return {}
        refs, _ = disruptionplan.controller_refs(pods)
        return {uid: await self._scale(ns, ref) for uid, (ns, ref) in refs.items()}

    async def _scale(self, namespace: str, ref: Obj) -> tuple[str, int] | None:
        api_version, kind, name = str(ref.get("apiVersion") or ""), str(ref.get("kind") or ""), str(ref.get("name"))
        group = api_version.rpartition("/")[0]
        if kind == "ReplicaSet" and group in ("apps", "extensions"):
            rs = self.rss.get(f"{namespace}/{name}")
            if rs is None or uid_of(rs) != ref.get("uid"):
                return None
            owner = get_controller_of(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                deployment = self.deployments.get(f"{namespace}/{owner.get('name')}")
                if deployment is None or uid_of(deployment) != owner.get("uid"):
                    return None
                return uid_of(deployment), _replicas(deployment)
            return uid_of(rs), _replicas(rs)
        if kind == "Deployment" and group in ("apps", "extensions"):
            deployment = self.deployments.get(f"{namespace}/{name}")
            if deployment is not None and uid_of(deployment) == ref.get("uid"):
                return uid_of(deployment), _replicas(deployment)
            return None
        plural = await self._plural(api_version, kind)
        if plural is None:
            raise disruptionplan.SyncError(f'no resource of kind "{kind}" in "{api_version}"')
        try:
            scale = await self.client.get_scale(ApiResource(api_version, plural, True, kind), name,
                                                namespace=namespace)
        except errors.NotFoundError:
            return None
        if (scale.get("metadata") or {}).get("uid") not in (None, ref.get("uid")):
            return None
        return str(ref.get("uid")), int((scale.get("spec") or {}).get("replicas") or 0)

    async def _plural(self, api_version: str, kind: str) -> str | None:
        cached = self.kinds.get(api_version)
        if cached is None or time.monotonic() - cached[0] > DISCOVERY_TTL or kind not in cached[1]:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            try:
                doc = await self.client.request("GET", path)
            except errors.NotFoundError:
                return None
            listed = {r.kind: r.plural for r in parse_resource_list(doc if isinstance(doc, dict) else {})
                      if "/" not in r.plural}
            cached = (time.monotonic(), listed)
            self.kinds[api_version] = cached
        return cached[1].get(kind)

    async def run(self) -> None:
        for inf in (self.pdbs, self.pods, self.rss, self.deployments):
            await inf.wait_synced()
        stale = asyncio.create_task(self.stale.run(), name="stale-pod-disruption")
        try:
            await self.controller.run()
        finally:
            stale.cancel()
            await asyncio.gather(stale, return_exceptions=True)


async def run(ctx: ControllerContext) -> None:
    informers = {"pdbs": ctx.informers.informer(PDBS), "pods": ctx.informers.informer(PODS),
                 "replicasets": ctx.informers.informer(REPLICA_SETS),
                 "deployments": ctx.informers.informer(DEPLOYMENTS)}
    ctl = DisruptionController(ctx.client, informers, recorder=ctx.recorder(COMPONENT),
                               workers=ctx.settings.workers)
    ctx.informers.start()
    await ctl.run()
