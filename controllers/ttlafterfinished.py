"""The TTL-after-finished controller: deletes finished Jobs ``ttlSecondsAfterFinished`` after they finished.

Data flow (Kubernetes' pkg/controller/ttlafterfinished):

    Job informer --add/update of a Job with ttlSecondsAfterFinished--> work queue "ns/name"
    reconcile(key):
        expires_in(job, now) (pure): None (no TTL, not finished, being deleted) / seconds left
        seconds left > 0 -> look again then
        expired -> GET the Job fresh (the cache may be stale: the TTL may have been changed)
                -> still expired -> DELETE with propagationPolicy Background and a uid
                   precondition; the garbage collector then removes its pods
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from controllers.ownerrefs import Obj, is_deleting, key_of, meta, name_of, uid_of
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.informer import Informer, split_key
from machinery.timefmt import parse_time

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

JOB_RESOURCE = ApiResource("batch/v1", "jobs", True, "Job")


def finish_time(job: Obj) -> datetime | None:
    """``jobFinishTime``: when the Complete or Failed condition became True."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if isinstance(c, dict) and c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return parse_time(c.get("lastTransitionTime"))
    return None


def expires_in(job: Obj, now: datetime) -> float | None:
    """Seconds until the Job may be deleted (<= 0: now); None when it never expires (yet)."""
    ttl: Any = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if not isinstance(ttl, int) or is_deleting(job):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return ttl - (now - finished).total_seconds()


class TTLAfterFinishedController:
    def __init__(self, client: ApiClient, jobs: Informer, *, workers: int = 2) -> None:
        self.client = client
        self.jobs = jobs
        self.controller: Controller[str] = Controller("ttlafterfinished", self.reconcile, workers=workers)
        jobs.add_handler(self._changed, lambda _old, new: self._changed(new), lambda _job: None)

    def _changed(self, job: Obj) -> None:
        if (job.get("spec") or {}).get("ttlSecondsAfterFinished") is not None and not is_deleting(job):
            self.controller.enqueue(key_of(job))

    async def reconcile(self, key: str) -> Result | None:
        job = self.jobs.get(key)
        if job is None:
            return None
        left = expires_in(job, datetime.now(timezone.utc))
        if left is None:
            return None
        if left > 0:
            return Result.after(left)
        ns, name = split_key(key)
        try:
            fresh = await self.client.get(JOB_RESOURCE, name, namespace=ns)
        except errors.NotFoundError:
            return None
        left = expires_in(fresh, datetime.now(timezone.utc))
        if left is None:
            return None
        if left > 0:
            return Result.after(left)
        log.info("deleting Job %s: ttlSecondsAfterFinished expired", key)
        try:
            await self.client.delete(JOB_RESOURCE, name_of(fresh), namespace=meta(fresh).get("namespace"),
                                     propagation_policy="Background", preconditions={"uid": uid_of(fresh)})
        except (errors.NotFoundError, errors.ConflictError):
            pass
        return None

    async def run(self) -> None:
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager."""
    jobs = ctx.informers.informer(JOB_RESOURCE)
    ctl = TTLAfterFinishedController(ctx.client, jobs)
    ctx.informers.start()
    await jobs.wait_synced()
    await ctl.run()
