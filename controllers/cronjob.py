"""The CronJob controller: creates each CronJob's Jobs on its schedule.

Data flow (Kubernetes' pkg/controller/cronjob, the v2 controller):

    informers (CronJobs, Jobs) --handlers--> work queue of CronJob keys "ns/name"
        (a Job's change enqueues its controlling CronJob)
    reconcile(key):
        cronjobplan.plan(cronjob, jobs of its namespace, now, the controller's zone) (pure)
        execute: delete Jobs (history limits, Replace) with propagation Background -> create the
            scheduled Job (AlreadyExists: it is there already) and add its reference to
            status.active -> PUT /status if it changed (resourceVersion of the cached CronJob: a
            stale cache gets a Conflict and another look) -> events
        -> look again at the next scheduled time
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from controllers.cronjobplan import job_ref, plan
from controllers.ownerrefs import Obj, get_controller_of, key_of, meta, name_of, uid_of
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

CRONJOB_RESOURCE = ApiResource("batch/v1", "cronjobs", True, "CronJob")
JOB_RESOURCE = ApiResource("batch/v1", "jobs", True, "Job")
COMPONENT = "cronjob-controller"


class CronJobController:
    def __init__(self, client: ApiClient, cronjobs: Informer, jobs: Informer, *,
                 recorder: EventRecorder | None = None, workers: int = 2) -> None:
        self.client = client
        self.cronjobs = cronjobs
        self.jobs = jobs
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self.controller: Controller[str] = Controller("cronjob", self.reconcile, workers=workers)
        cronjobs.add_handler(lambda cj: self.controller.enqueue(key_of(cj)),
                             lambda _old, new: self.controller.enqueue(key_of(new)), lambda _cj: None)
        jobs.add_handler(self._job_changed, lambda _old, new: self._job_changed(new), self._job_changed)

    def _job_changed(self, job: Obj) -> None:
        ref = get_controller_of(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.controller.enqueue(f"{meta(job).get('namespace')}/{ref.get('name')}")

    async def reconcile(self, key: str) -> Result | None:
        cronjob = self.cronjobs.get(key)
        if cronjob is None:
            return None
        ns, _ = split_key(key)
        p = plan(cronjob, self.jobs.list(ns), now=datetime.now(timezone.utc))
        for job in p.delete:
            try:
                await self.client.delete(JOB_RESOURCE, name_of(job), namespace=ns, propagation_policy="Background",
                                         preconditions={"uid": uid_of(job)})
            except (errors.NotFoundError, errors.ConflictError):
                pass
        if p.create is not None:
            try:
                created = await self.client.create(JOB_RESOURCE, p.create, namespace=ns)
            except errors.AlreadyExistsError:
                created = None
            except errors.ApiError as e:
                await self.recorder.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {e}")
                raise
            if created is not None:
                p.status.setdefault("active", []).append(job_ref(created))
                p.events.append(("Normal", "SuccessfulCreate", f"Created job {name_of(created)}"))
        if p.status != (cronjob.get("status") or {}):
            try:
                await self.client.update_status(CRONJOB_RESOURCE, {**cronjob, "status": p.status})
            except errors.NotFoundError:
                return None
        for kind, reason, message in p.events:
            await self.recorder.event(cronjob, kind, reason, message)
        if p.requeue_after is not None:
            return Result.after(p.requeue_after)
        return None

    async def run(self) -> None:
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager."""
    cronjobs = ctx.informers.informer(CRONJOB_RESOURCE)
    jobs = ctx.informers.informer(JOB_RESOURCE)
    ctl = CronJobController(ctx.client, cronjobs, jobs, recorder=ctx.recorder(COMPONENT))
    ctx.informers.start()
    await cronjobs.wait_synced()
    await jobs.wait_synced()
    await ctl.run()
