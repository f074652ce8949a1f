"""The Job controller: runs each Job's pods until enough succeed (or the Job fails).

Data flow (Kubernetes' pkg/controller/job):

    informers (Jobs, pods) --handlers--> work queue of "ns/name" keys
        (pod adds/deletes lower the Job's expectations; a pod's owner is found by its controller
        reference, orphans by the Jobs' selectors)
    reconcile(key):
        Job from the cache; pods of its namespace
        jobplan.plan(job, pods, now, manage=expectations satisfied) -> JobPlan (pure)
        execute: adopt / release -> create pods (slow-start batches) / delete pods -> PUT /status
            (resourceVersion of the cached Job: a stale cache gets a Conflict and a retry, never a
            status computed from old counts) -> THEN remove the job-tracking finalizer from the
            pods the stored status accounts for -> events (SuccessfulCreate, SuccessfulDelete,
            Completed, BackoffLimitExceeded, DeadlineExceeded, Suspended, Resumed)
        pods whose Job is gone (or replaced) lose the finalizer, so the garbage collector can
        remove them.

Settings: the failure backoff base/cap (``job_backoff_base_s``/``job_backoff_max_s`` of the
controller-manager) so tests can shrink them.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from controllers import ownerrefs, podcontrol
from controllers.expectations import Expectations
from controllers.jobpods import TRACKING_FINALIZER, has_tracking_finalizer
from controllers.jobplan import JobPlan, JobPlanSettings, is_finished, plan
from controllers.ownerrefs import Obj, get_controller_of, is_deleting, key_of, meta, name_of, uid_of
from machinery import errors
from machinery.client import ApiClient, ApiResource
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, split_key

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

log = logging.getLogger(__name__)

JOB_RESOURCE = ApiResource("batch/v1", "jobs", True, "Job")
POD_RESOURCE = podcontrol.POD_RESOURCE
COMPONENT = "job-controller"


@dataclass
class JobControllerSettings:
    workers: int = 4
    backoff_base_s: float = 10.0
    backoff_max_s: float = 360.0
    expectations_ttl_s: float = 5 * 60.0


class JobController:
    def __init__(self, client: ApiClient, job_informer: Informer, pod_informer: Informer, *,
                 recorder: EventRecorder | None = None, settings: JobControllerSettings | None = None) -> None:
        self.client = client
        self.jobs = job_informer
        self.pods = pod_informer
        self.settings = settings or JobControllerSettings()
        self.plan_settings = JobPlanSettings(backoff_base_s=self.settings.backoff_base_s,
                                             backoff_max_s=self.settings.backoff_max_s)
        self.recorder = recorder or EventRecorder(client, COMPONENT)
        self.expectations = Expectations(ttl_s=self.settings.expectations_ttl_s)
        self.pod_writer = podcontrol.PodWriter(client, self.recorder, self.expectations)
        self.controller: Controller[str] = Controller("job", self.reconcile, workers=self.settings.workers)
        self.jobs.add_handler(lambda job: self.controller.enqueue(key_of(job)),
                              lambda _old, new: self.controller.enqueue(key_of(new)), self._job_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)

    # ------------------------------------------------------------------ handlers
    def _job_deleted(self, job: Obj) -> None:
        self.expectations.delete(key_of(job))
        self.controller.enqueue(key_of(job))

    def _owner_key(self, pod: Obj) -> str | None:
        ref = get_controller_of(pod)
        if ref is None or ref.get("kind") != "Job":
            return None
        return f"{meta(pod).get('namespace')}/{ref.get('name')}"

    def _enqueue_for(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.controller.enqueue(key)
        elif get_controller_of(pod) is None:
            for job in self.jobs.list(meta(pod).get("namespace")):
                self.controller.enqueue(key_of(job))

    def _pod_added(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
        self._enqueue_for(pod)

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        if meta(old).get("resourceVersion") == meta(new).get("resourceVersion"):
            return
        key = self._owner_key(new)
        if key is not None and is_deleting(new) and not is_deleting(old):
            self.expectations.deletion_observed(key, key_of(new))
        old_key = self._owner_key(old)
        if old_key is not None and old_key != key:
            self.controller.enqueue(old_key)
        self._enqueue_for(new)

    def _pod_deleted(self, pod: Obj) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.controller.enqueue(key)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        ns, name = split_key(key)
        job = self.jobs.get(key)
        pods = self.pods.list(ns)
        await self._release_orphans(job, name, pods)
        if job is None:
            self.expectations.delete(key)
            return None
        if is_deleting(job) and not is_finished(job):
            await self._remove_finalizers([p for p in pods if self._ours(p, job) and has_tracking_finalizer(p)])
            return None
        now = datetime.now(timezone.utc)
        p = plan(job, pods, now=now, manage=self.expectations.satisfied(key), settings=self.plan_settings)
        error: BaseException | None = None
        try:
            await self._claim(job, p)
            if p.create:
                await self.pod_writer.create(job, key, p.create)
            if p.delete:
                await self.pod_writer.delete(job, key, p.delete)
        except errors.ApiError as e:
            error = e
        if p.status != (job.get("status") or {}):
            body = copy.deepcopy(job)
            body["status"] = p.status
            try:
                await self.client.update_status(JOB_RESOURCE, body)
            except errors.NotFoundError:
                return None
        await self._remove_finalizers(p.remove_finalizer)
        for kind, reason, message in p.events:
            await self.recorder.event(job, kind, reason, message)
        if error is not None:
            raise error
        if p.requeue_after is not None:
            return Result.after(p.requeue_after)
        return None

    @staticmethod
    def _ours(pod: Obj, job: Obj) -> bool:
        ref = get_controller_of(pod)
        return ref is not None and ref.get("uid") == uid_of(job)

    async def _release_orphans(self, job: Obj | None, name: str, pods: list[Obj]) -> None:
        """Pods that still carry the tracking finalizer of a Job that is gone (or was replaced)."""
        orphans = []
        for pod in pods:
            ref = get_controller_of(pod)
            if (ref is not None and ref.get("kind") == "Job" and ref.get("name") == name
                    and has_tracking_finalizer(pod) and (job is None or ref.get("uid") != uid_of(job))):
                orphans.append(pod)
        await self._remove_finalizers(orphans)

    async def _remove_finalizers(self, pods: list[Obj]) -> None:
        async def one(pod: Obj) -> None:
            rest = [f for f in meta(pod).get("finalizers") or [] if f != TRACKING_FINALIZER]
            patch = {"metadata": {"uid": uid_of(pod), "resourceVersion": meta(pod).get("resourceVersion"),
                                  "finalizers": rest or None}}
            try:
                await self.client.patch(POD_RESOURCE, name_of(pod), patch, namespace=meta(pod).get("namespace"))
            except (errors.NotFoundError, errors.ConflictError):
                pass  # gone, or changed: the next sync looks again

        await asyncio.gather(*(one(p) for p in pods))

    async def _claim(self, job: Obj, p: JobPlan) -> None:
        ref = ownerrefs.controller_ref(job, api_version="batch/v1", kind="Job")
        for pod in p.adopt:
            try:
                await podcontrol.adopt(self.client, POD_RESOURCE, pod, ref)
            except errors.NotFoundError:
                pass
        for pod in p.release:
            await podcontrol.release(self.client, POD_RESOURCE, pod, uid_of(job))

    async def run(self) -> None:
        await self.controller.run()


def settings_from(ctx: ControllerContext) -> JobControllerSettings:
    s = ctx.settings
    return JobControllerSettings(workers=s.workers, backoff_base_s=s.job_backoff_base_s,
                                 backoff_max_s=s.job_backoff_max_s)


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager: the Job controller over the shared informers."""
    jobs = ctx.informers.informer(JOB_RESOURCE)
    pods = ctx.informers.informer(POD_RESOURCE)
    ctl = JobController(ctx.client, jobs, pods, recorder=ctx.recorder(COMPONENT), settings=settings_from(ctx))
    ctx.informers.start()
    await jobs.wait_synced()
    await pods.wait_synced()
    await ctl.run()
