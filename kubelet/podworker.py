"""The kubelet's pod worker: one pod's containers converge to its spec, and its status is written.

Data flow:

    pods informer (spec.nodeName=NODE) -> on_pod / on_pod_update (spec or metadata changed) /
        on_pod_deleted -> key ns/name -> Controller -> reconcile(key):
      gone from the informer -> its containers removed (force delete), forget(uid)
      runtime.list(pod uid label) -> containers
      deletionTimestamp -> podsync.plan_deletion: stop (grace: SIGTERM, then SIGKILL), remove,
                           DELETE gracePeriodSeconds=0 with a uid precondition; the sandbox (the
                           pod IP) goes sandbox_linger seconds later
      Succeeded/Failed  -> left alone (final)
      otherwise         -> volumes refreshed (kubelet.volumes via ContainerConfig), a disk emptyDir
                           over its sizeLimit evicts the pod -> podsync.plan -> execute: sandbox
                           (the pod's DNS from kubelet.poddns, its Service table from
                           kubelet.serviceproxy before any app container), pull per
                           imagePullPolicy, create (ContainerConfig.spec: env, mounts, limits) and
                           start -> list again -> podsync.pod_status -> PUT pods/NAME/status when
                           it changed -> requeue after sync_interval (Docker's state is polled,
                           like the kubelet's PLEG relist)

Probes: one ``kubelet.probes.ProbeManager``; every sync hands it the pod's current containers and
IP, and ``probe_results(pod_uid, container)`` answers ``(ready, liveness_failed)`` (ready None: no
readiness probe). A changed result enqueues the pod; each failed run is a Warning ``Unhealthy``
event; a failed liveness/startup probe stops the container (event ``Killing``) and the restart
policy brings the next one.

Restart-safety: all the state that matters is in Docker (labels: pod uid, container name, restart
count), so a new kubelet process adopts running containers as they are. Every engine call goes
through ``run_blocking`` (the kubelet's thread pool).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import time
from typing import Any, Coroutine

from kubelet import podsync
from kubelet.containerconfig import ConfigError, ContainerConfig
from kubelet.metrics import POD_WORKER_DURATION, PodStartTracker, sync_operation
from kubelet.cri import (
    LABEL_POD_UID, ContainerInfo, ContainerRuntime, ContainerRuntimeError, ImageNotPresent, ImagePullError,
    RuntimeUnavailable,
)
from kubelet.node import NodeAgent, now_utc
from kubelet.poddns import pod_dns
from kubelet.podstatus import same_status
from kubelet.probes import ProbeEvent, ProbeManager
from kubelet.serviceproxy import PodServiceProxy
from kubelet.settings import KubeletSettings
from kubelet.volumes import MountError
from kubelet.volumes.emptydir import evicted_status
from kubelet.blocking import RunBlocking
from machinery import errors
from machinery.client import ApiClient
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, object_key, split_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class TaskSet:
    """Fire-and-forget tasks (events, removals, teardowns) kept referenced until done, cancelled at the end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class PodWorker:
    def __init__(self, client: ApiClient, settings: KubeletSettings, runtime: ContainerRuntime, *,
                 pods: Informer, node: NodeAgent, run_blocking: RunBlocking, recorder: EventRecorder,
                 config: ContainerConfig, service_proxy: PodServiceProxy) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.node_name
        self.runtime = runtime
        self.pods = pods
        self.node = node
        self.run_blocking = self._rt = run_blocking
        self.recorder = recorder
        self.config = config
        self.service_proxy = service_proxy
        self.controller: Controller[str] = Controller(f"kubelet-{self.name}", self.reconcile, workers=settings.workers)
        self.probes = ProbeManager(runtime, run_blocking=run_blocking, on_change=self._on_probe_change,
                                   on_event=self._on_probe_event)
        self.background = TaskSet()
        self.status_writes = 0
        self.memory: dict[str, podsync.PodMemory] = {}  # pod uid -> memory
        self._uids: dict[str, str] = {}  # key -> uid
        self.starts = PodStartTracker()  # kubelet_pod_start_* (kubelet.metrics)

    # ------------------------------------------------------------------ informer events
    def on_pod(self, pod: Obj) -> None:
        key = object_key(pod)
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self._uids[key] = str(uid)
        self.starts.seen(pod)
        self.controller.enqueue(key)

    def on_pod_update(self, old: Obj, new: Obj) -> None:
        """As Kubernetes' kubelet, a change of the status alone (its own writes, mostly) is no reason
        to sync: the kubelet is the source of a pod's status. Spec and metadata changes are."""
        self.starts.observed(new)  # our own status write coming back: the pod start SLI
        def without_status(pod: Obj) -> Obj:
            meta = {k: v for k, v in (pod.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
            return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}
        if without_status(old) != without_status(new):
            self.on_pod(new)

    def on_pod_deleted(self, pod: Obj) -> None:
        self.controller.enqueue(object_key(pod))

    def enqueue_all(self) -> None:
        for key in self.pods.keys():
            self.controller.enqueue(key)

    # ------------------------------------------------------------------ probes
    def probe_results(self, uid: str, container: str) -> tuple[bool | None, bool]:
        ready = self.probes.readiness(uid, container)
        started = self.probes.started(uid, container)
        if not started:
            ready = False  # a startup probe that has not passed yet: neither ready nor live-checked
        return ready, self.probes.needs_restart(uid, container) is not None

    def _key_of(self, uid: str) -> str | None:
        return next((k for k, u in self._uids.items() if u == uid), None)

    def _on_probe_change(self, uid: str) -> None:
        key = self._key_of(uid)
        if key is not None:
            self.controller.enqueue(key)

    def _on_probe_event(self, ev: ProbeEvent) -> None:
        key = self._key_of(ev.pod_uid)
        pod = self.pods.get(key) if key is not None else None
        if pod is not None:
            self.background.spawn(self.record(pod, ev.type, ev.reason, ev.message), name="probe-event")

    async def record(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        try:
            await self.recorder.event(pod, type_, reason, message)
        except Exception:  # events are best effort
            log.debug("recording event %s failed", reason, exc_info=True)

    def _sync_probes(self, pod: Obj, containers: list[ContainerInfo]) -> None:
        current: dict[str, ContainerInfo] = {}
        for c in (pod.get("spec") or {}).get("containers") or []:
            ins = podsync.instances(containers, str(c.get("name")), init=False)
            if ins:
                current[str(c.get("name"))] = ins[-1]
        sandbox = podsync.running_sandbox(containers)
        self.probes.sync(pod, current, sandbox.ip if sandbox is not None else None, time.time())

    def forget(self, uid: str) -> None:
        """Drops what this kubelet keeps of a pod that is gone: memory, probes, Service table, its
        directory and volumes (the last two in the background, through the pool)."""
        self.service_proxy.forget(uid)
        self.memory.pop(uid, None)
        self.starts.forget(uid)
        self.probes.remove_pod(uid)
        self.background.spawn(self._teardown(uid), name="volume-teardown")

    async def _teardown(self, uid: str) -> None:
        await self._rt(shutil.rmtree, self.settings.pod_dir(uid), ignore_errors=True)
        await self.config.volumes.teardown(uid)

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, key: str) -> Result | None:
        pod = self.pods.get(key)
        if pod is None:
            uid = self._uids.pop(key, None)
            if uid and self.node.runtime_ok:
                # Gone without us (force delete): kill what is left.
                for c in await self._rt(self.runtime.list, {LABEL_POD_UID: uid}):
                    await self._rt(self.runtime.remove, c.id)
            if uid:
                self.forget(uid)
            return None
        if not self.node.runtime_ok:
            return Result.after(self.settings.runtime_check_interval)
        try:
            uid = str((pod.get("metadata") or {}).get("uid"))
            with POD_WORKER_DURATION.labels(sync_operation(pod, known=uid in self.memory)).time():
                return await self._sync(key, pod)
        except RuntimeUnavailable as e:
            log.warning("pod %s: %s", key, e)
            return Result.after(self.settings.runtime_check_interval)

    async def _sync(self, key: str, pod: Obj) -> Result | None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        namespace, name = split_key(key)
        containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
        if meta.get("deletionTimestamp"):
            sandbox_ids = await self._terminate(pod, containers)
            try:
                await self.client.delete("pods", name, namespace=namespace, grace_period_seconds=0,
                                         preconditions={"uid": uid})
            except errors.NotFoundError:
                pass
            except errors.ConflictError:
                log.info("pod %s is no longer uid %s; not deleting it", key, uid)
            self.forget(uid)
            # The sandbox (the pod IP) goes a moment after the pod object: until every node's
            # Service table has dropped the endpoint, a connection to it is refused by the empty
            # namespace rather than sent to an address nobody answers for.
            self._remove_later(sandbox_ids, self.settings.sandbox_linger)
            return None
        if (pod.get("status") or {}).get("phase") in podsync.TERMINAL:
            # Succeeded and Failed are final: never recompute (a kubelet that restarts finds the
            # containers gone, which would read as Pending) and never start the pod again.
            return None
        memory = self.memory.setdefault(uid, podsync.PodMemory())
        self._sync_probes(pod, containers)
        running = podsync.running_sandbox(containers)
        if self.settings.service_proxy and running is not None and not self.service_proxy.knows(running.id):
            # A sandbox made before this kubelet started (adopted), or one whose table failed.
            await self.service_proxy.add(running.id, pid=running.pid, pod_uid=uid)
        if running is not None:
            await self.config.volumes.refresh(pod)  # ConfigMap/Secret edits, labels, tokens
            over = await self.config.volumes.over_limit(pod)  # a disk emptyDir beyond its sizeLimit
            if over is not None:
                await self._evict(pod, containers, over)
                return None
        liveness_failed = frozenset(
            str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []
            if self.probe_results(uid, str(c.get("name")))[1])
        p = podsync.plan(pod, containers, now=now_utc(), memory=memory, settings=self.settings.sync,
                         liveness_failed=liveness_failed)
        waiting = dict(p.waiting)
        requeue = p.requeue_after
        if p.actions:
            extra_wait, extra_requeue = await self._execute(pod, containers, p.actions, memory)
            waiting.update(extra_wait)
            if extra_requeue is not None:
                requeue = extra_requeue if requeue is None else min(requeue, extra_requeue)
            containers = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
            self._sync_probes(pod, containers)
        for w_name, (reason, message) in p.waiting.items():
            if reason == "CrashLoopBackOff":
                await self.recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container "
                                          f"{w_name} in pod {_pod_label(pod)}")
            elif reason == "ImagePullBackOff":
                await self.recorder.event(pod, "Normal", "BackOff", message)
        ready_of: dict[str, bool] = {}
        for c in (pod.get("spec") or {}).get("containers") or []:
            ready, _ = self.probe_results(uid, str(c.get("name")))
            if ready is not None:
                ready_of[str(c.get("name"))] = ready
        status = podsync.pod_status(pod, containers, now=now_utc(), host_ip=self.node.node_address, waiting=waiting,
                                    ready_of=ready_of)
        for st in status.get("containerStatuses") or []:
            if st.get("started"):
                st["started"] = self.probes.started(uid, str(st.get("name")))
        if not same_status(pod.get("status") or {}, status):
            self.starts.writing(uid, pod.get("status") or {}, status)
            try:
                await self.write_status(pod, status, namespace)
            except (errors.ConflictError, errors.NotFoundError):
                return Result.after(0.2)
        if status.get("phase") in podsync.TERMINAL:
            return None
        interval = self.settings.sync_interval
        return Result.after(interval if requeue is None else min(requeue, interval))

    # ------------------------------------------------------------------ executing a plan
    def _remove_later(self, ids: list[str], delay: float) -> None:
        async def remove() -> None:
            await asyncio.sleep(delay)
            for cid in ids:
                try:
                    await self._rt(self.runtime.remove, cid)
                except ContainerRuntimeError as e:
                    log.warning("removing sandbox %s: %s (housekeeping tries again)", cid[:12], e)
        if ids:
            self.background.spawn(remove(), name="remove-sandbox")

    async def _terminate(self, pod: Obj, containers: list[ContainerInfo]) -> list[str]:
        """Stops and removes the pod's app containers; returns its sandboxes' ids, left to the caller."""
        actions = podsync.plan_deletion(pod, containers, settings=self.settings.sync)
        stops = [a for a in actions if isinstance(a, podsync.StopContainer)]
        for s in stops:
            await self.recorder.event(pod, "Normal", "Killing", f"Stopping container {s.name}")
        await asyncio.gather(*(self._rt(self.runtime.stop, s.id, timeout=s.grace_s) for s in stops),
                             return_exceptions=True)
        sandbox_ids = {c.id for c in podsync.sandboxes(containers)}
        for a in actions:
            if isinstance(a, podsync.RemoveContainer) and a.id not in sandbox_ids:
                await self._rt(self.runtime.remove, a.id)
        return sorted(sandbox_ids)

    async def _execute(self, pod: Obj, containers: list[ContainerInfo], actions: list[podsync.Action],
                       memory: podsync.PodMemory) -> tuple[dict[str, tuple[str, str]], float | None]:
        waiting: dict[str, tuple[str, str]] = {}
        requeue: float | None = None
        meta = pod.get("metadata") or {}
        sandbox = podsync.running_sandbox(containers)
        for a in actions:
            if isinstance(a, podsync.RemoveContainer):
                await self._rt(self.runtime.remove, a.id)
            elif isinstance(a, podsync.StopContainer):
                if a.reason == "Unhealthy":
                    await self.recorder.event(pod, "Normal", "Killing",
                                              f"Container {a.name} failed liveness probe, will be restarted")
                await self._rt(self.runtime.stop, a.id, timeout=a.grace_s)
            elif isinstance(a, podsync.CreateSandbox):
                dns = pod_dns(pod, cluster_dns=self.settings.cluster_dns, cluster_domain=self.settings.cluster_domain)
                sb = await self._rt(self.runtime.run_sandbox, pod_uid=str(meta.get("uid")),
                                    pod_name=str(meta.get("name")), namespace=str(meta.get("namespace")),
                                    node=self.name, network=self.settings.pod_network_name, attempt=a.attempt,
                                    dns=dns)
                # Services work from the pod's first second: its table is in before any app container.
                if self.settings.service_proxy:
                    await self.service_proxy.add(sb.id, pid=sb.pid, pod_uid=str(meta.get("uid")))
                sandbox = ContainerInfo(id=sb.id, name=sb.name, labels={}, state="running", exit_code=None,
                                        created_at=None, started_at=None, finished_at=None, image="", image_id="",
                                        ip=sb.ip)
                requeue = 0.05  # the containers start on the next pass, with the sandbox listed
            elif isinstance(a, podsync.StartContainer):
                if sandbox is None:
                    continue
                result = await self._start(pod, a, sandbox, memory)
                if result is not None:
                    waiting[a.name] = result
                    f = memory.pull_failures.get(a.name)
                    if result[0] == "ErrImagePull" and f is not None:
                        # Look again halfway through the back-off so ImagePullBackOff shows.
                        r = max(0.1, f.delay / 2)
                        requeue = r if requeue is None else min(requeue, r)
        return waiting, requeue

    async def write_status(self, pod: Obj, status: Obj, namespace: str | None) -> None:
        """The kubelet owns a pod's status: a write that lost to a newer version of the pod (our
        informer is a write behind) is made again on the current one, so a short-lived state such
        as ErrImagePull is not skipped."""
        try:
            await self.client.update_status("pods", {**pod, "status": status}, namespace=namespace)
        except errors.ConflictError:
            name = str((pod.get("metadata") or {}).get("name") or "")
            current = await self.client.get("pods", name, namespace=namespace)
            if (current.get("metadata") or {}).get("uid") != (pod.get("metadata") or {}).get("uid"):
                raise
            await self.client.update_status("pods", {**current, "status": status}, namespace=namespace)
        self.status_writes += 1

    async def _start(self, pod: Obj, a: podsync.StartContainer, sandbox: ContainerInfo,
                     memory: podsync.PodMemory) -> tuple[str, str] | None:
        """Pulls (per imagePullPolicy), creates and starts one container; a waiting reason on failure."""
        spec = pod.get("spec") or {}
        which = "initContainers" if a.init else "ephemeralContainers" if a.ephemeral else "containers"
        c_spec = next((c for c in spec.get(which) or [] if c.get("name") == a.name), None)
        if c_spec is None:
            return None
        image = str(c_spec.get("image") or "")
        policy = c_spec.get("imagePullPolicy") or ("Always" if image.endswith(":latest") or ":" not in
                                                    image.rsplit("/", 1)[-1] else "IfNotPresent")
        try:
            await self._ensure_image(image, str(policy), pod_uid=str((pod.get("metadata") or {}).get("uid")))
        except ImagePullError as e:
            f = memory.record_pull_failure(a.name, str(e), now=now_utc(), settings=self.settings.sync)
            await self.recorder.event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {e}')
            log.info("pod %s: pull of %s failed (next try in %.1fs)", object_key(pod), image, f.delay)
            return ("ErrImageNeverPull" if policy == "Never" else "ErrImagePull", f"Failed to pull image \"{image}\": {e}")
        memory.pull_failures.pop(a.name, None)
        try:
            cspec = await self.config.spec(pod, c_spec, sandbox=sandbox, restart_count=a.restart_count, init=a.init)
            if a.pid_target:  # an ephemeral container with a target: in the target's PID namespace
                cspec = dataclasses.replace(cspec, pid_mode=f"container:{a.pid_target}")
        except ConfigError as e:
            await self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return ("CreateContainerConfigError", str(e))
        except MountError as e:
            await self.recorder.event(pod, "Warning", "FailedMount", str(e))
            return ("ContainerCreating", str(e))
        try:
            cid = await self._rt(self.runtime.create_container, cspec)
        except ImageNotPresent as e:
            return ("ErrImagePull", str(e))
        if a.next_delay is not None:
            memory.crash_delay[a.name] = a.next_delay
        try:
            await self._rt(self.runtime.start, cid)
        except RuntimeUnavailable:
            raise
        except ContainerRuntimeError as e:
            # Left in "created": the plan counts it as a failed run (StartError) and restarts it.
            await self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return None
        await self.recorder.event(pod, "Normal", "Started", f"Started container {a.name}")
        return None

    async def _ensure_image(self, image: str, policy: str, *, pod_uid: str = "") -> None:
        present = await self._rt(self.runtime.image_present, image)
        if policy == "Never":
            if not present:
                raise ImagePullError(f"image {image} is not present with pull policy of Never")
            return
        if present and policy != "Always":
            return
        self.starts.pulling(pod_uid)  # the SLI leaves pulls out
        try:
            await self._rt(self.runtime.pull, image)
        except ImagePullError:
            if not present:
                raise
            # Always with no registry reachable: the local copy is what we have.
            log.info("pull of %s failed; using the local image", image)
        finally:
            self.starts.pulled(pod_uid)

    async def _evict(self, pod: Obj, containers: list[ContainerInfo], message: str) -> None:
        """The eviction manager's way: containers stopped, the pod Failed with reason Evicted."""
        await self.recorder.event(pod, "Warning", "Evicted", message)
        stops = [a for a in podsync.plan_deletion(pod, containers, settings=self.settings.sync)
                 if isinstance(a, podsync.StopContainer)]
        await asyncio.gather(*(self._rt(self.runtime.stop, a.id, timeout=a.grace_s) for a in stops),
                             return_exceptions=True)
        stopped: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: str(pod["metadata"]["uid"])})
        status = evicted_status(podsync.shutdown_status(pod, stopped, now=now_utc(), host_ip=self.node.node_address),
                                message)
        await self.write_status(pod, status, (pod.get("metadata") or {}).get("namespace"))


def _pod_label(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


__all__ = ["PodWorker", "TaskSet"]
