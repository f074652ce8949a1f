"""One scheduling loop: pick a pod, filter and score nodes, assume, bind asynchronously.

Data flow:

    pods informer  --handlers--> SchedulerCache (bound pods count against their node)
                             +-> SchedulingQueue (pending pods whose schedulerName is ours)
    nodes informer --handlers--> SchedulerCache (node facts); changes move unschedulable pods
    loop: key <- queue -> find_node (pure plugins over the cache's NodeInfos)
          fits:    cache.assume(pod, node) -> bind task: POST pods/{name}/binding
                   ok -> Event Scheduled; error -> cache.forget + queue.add_backoff
          nowhere: status condition PodScheduled=False/Unschedulable (patched only when it
                   changes) + Event FailedScheduling -> queue.add_unschedulable

The cycle itself is synchronous (no await between reading the cache and assuming), so the next
pod always sees the previous one's resources taken. Binds, status writes and events run as
tasks bounded by semaphores; the loop only waits when ``bind_concurrency`` binds are in flight.
``run()`` is what the leader runs; cancelling it (lost lease) cancels every bind in flight,
forgets those assumptions and requeues the pods.

Metrics (``scheduler.metrics``, kube-scheduler's names): each attempt's result and duration (a
scheduled attempt ends when the bind answers), the algorithm's and each extension point's
duration, and for a bound pod its latency since it first entered the queue and its attempts.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from machinery import errors
from machinery.client import ApiClient
from machinery.events import EventRecorder
from machinery.informer import Informer
from machinery.sharedinformers import InformerFactory
from scheduler.cache import SchedulerCache, holds_resources
from scheduler.metrics import ERROR, PENDING_PODS, SCHEDULED, UNSCHEDULABLE, SchedulerMetrics
from scheduler.plugins import NodeInfo, PodInfo, fit_error_message, pod_info, pod_key
from scheduler.queue import SchedulingQueue
from scheduler.scoring import scan, top_scored
from scheduler.volumebinding import PodVolumes, VolumeBinding, prefilter_message

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]

MIN_FEASIBLE_NODES = 100
MIN_FEASIBLE_PERCENT = 5


def num_feasible_nodes_to_find(num_nodes: int, percentage: int = 0) -> int:
    """How many feasible nodes are enough to pick from (Kubernetes' percentageOfNodesToScore, adaptive)."""
    if num_nodes < MIN_FEASIBLE_NODES:
        return num_nodes
    pct = percentage or max(50 - num_nodes // 125, MIN_FEASIBLE_PERCENT)
    return max(num_nodes * pct // 100, MIN_FEASIBLE_NODES)


def is_pending(pod: Obj, scheduler_name: str) -> bool:
    """Unbound, ours, not being deleted, not finished: a pod this scheduler should place."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName") or (spec.get("schedulerName") or "default-scheduler") != scheduler_name:
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


@dataclass
class Decision:
    node: str | None  # the chosen node, or None: fits nowhere
    message: str = ""  # the FitError message when node is None
    evaluated: int = 0


@dataclass
class CycleSettings:
    scheduler_name: str = "default-scheduler"
    bind_concurrency: int = 64
    status_concurrency: int = 8
    event_concurrency: int = 8
    percentage_of_nodes_to_score: int = 0  # 0: adaptive, as Kubernetes
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 10.0
    max_unschedulable_s: float = 60.0
    emit_scheduled_events: bool = True
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Scheduler:
    def __init__(self, client: ApiClient, factory: InformerFactory, settings: CycleSettings, *,
                 recorder: EventRecorder, is_leader: Callable[[], bool] = lambda: True) -> None:
        self.client = client
        self.settings = settings
        self.recorder = recorder
        self.is_leader = is_leader
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue(initial_backoff_s=settings.initial_backoff_s,
                                     max_backoff_s=settings.max_backoff_s,
                                     max_unschedulable_s=settings.max_unschedulable_s)
        self.rng = random.Random(settings.seed)
        self.pods: Informer = factory.informer(("v1", "pods"))
        self.nodes: Informer = factory.informer(("v1", "nodes"))
        # VolumeBinding: claims, volumes and classes; their changes may let waiting pods fit.
        self.volume_informers = [factory.informer(r) for r in (("v1", "persistentvolumeclaims"),
                                                                ("v1", "persistentvolumes"),
                                                                ("storage.k8s.io/v1", "storageclasses"))]
        self.volumes = VolumeBinding(*self.volume_informers)
        for inf, event in zip(self.volume_informers, ("PersistentVolumeClaimChange", "PersistentVolumeChange",
                                                      "StorageClassChange")):
            inf.add_handler(*self.volumes.handlers(functools.partial(self.queue.move_all_to_active, event)))
        self._next_start = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._bind_slots = asyncio.Semaphore(settings.bind_concurrency)
        self._status_slots = asyncio.Semaphore(settings.status_concurrency)
        self._event_slots = asyncio.Semaphore(settings.event_concurrency)
        self.bound = 0  # successful binds (for logs, tests and the benchmark)
        self.metrics = SchedulerMetrics(settings.scheduler_name)
        PENDING_PODS.track(self.queue, self.cache)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)

    # ------------------------------------------------------------------ informer handlers
    def _pod_added(self, pod: Obj) -> None:
        if holds_resources(pod):
            self.cache.set_pod(pod)
        elif is_pending(pod, self.settings.scheduler_name):
            self.queue.add(pod_key(pod))

    def _pod_updated(self, old: Obj, new: Obj) -> None:
        key = pod_key(new)
        freed = False
        if holds_resources(new) or holds_resources(old):
            freed = self.cache.set_pod(new)
        if is_pending(new, self.settings.scheduler_name):
            if not self.queue.is_unschedulable(key) or _spec_or_labels_changed(old, new):
                # Our own status writes also arrive here: they must not wake an unschedulable pod.
                self.queue.add(key)
        else:
            self.queue.remove(key)
        if freed:
            self.queue.move_all_to_active("AssignedPodUpdate")

    def _pod_deleted(self, pod: Obj) -> None:
        self.queue.remove(pod_key(pod))
        if self.cache.remove_pod(pod):
            self.queue.move_all_to_active("AssignedPodDelete")

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active("NodeAdd")

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if self.cache.set_node(new):
            self.queue.move_all_to_active("NodeUpdate")

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(str((node.get("metadata") or {}).get("name") or ""))

    # ------------------------------------------------------------------ the decision
    def find_node(self, info: PodInfo, volumes: PodVolumes | None = None) -> Decision:
        """Filter from a rotating start until enough feasible nodes are found, then score (pure over the cache)."""
        infos = self.cache.node_infos
        n = len(infos)
        if n == 0:
            return Decision(None, fit_error_message(0, {}))
        t0 = time.perf_counter()
        want = num_feasible_nodes_to_find(n, self.settings.percentage_of_nodes_to_score)
        start = self._next_start % n
        extra = None
        if volumes is not None:
            def extra(ni: NodeInfo) -> list[str] | None:
                return self.volumes.filter(volumes, ni.facts)
        feasible, rejected, evaluated = scan(info, infos, start, want, extra=extra)
        self._next_start = (start + evaluated) % n
        t1 = time.perf_counter()
        self.metrics.extension_point("Filter", "Success" if feasible else "Unschedulable", t1 - t0)
        if not feasible:
            return Decision(None, fit_error_message(n, rejected), evaluated=n)
        if len(feasible) == 1:
            return Decision(feasible[0].name, evaluated=evaluated)
        best = self.rng.choice(top_scored(info, feasible))  # ties at random
        self.metrics.extension_point("Score", "Success", time.perf_counter() - t1)
        return Decision(best.name, evaluated=evaluated)

    def schedule_one(self, key: str) -> Decision | None:
        """One cycle for one pod: decide, assume, and start the bind or the unschedulable report."""
        pod = self.pods.get(key)
        if pod is None or not is_pending(pod, self.settings.scheduler_name) or self.cache.is_placed(key):
            return None
        start = time.perf_counter()
        self.queue.attempt(key)
        info = pod_info(pod)
        volumes = self.volumes.prefilter(pod)
        prefiltered = time.perf_counter()
        self.metrics.extension_point("PreFilter", "UnschedulableAndUnresolvable" if isinstance(volumes, str)
                                     else "Success", prefiltered - start)
        if isinstance(volumes, str):
            decision, volumes = Decision(None, prefilter_message(len(self.cache.nodes), volumes)), None
        else:
            decision = self.find_node(info, volumes)
        decided = time.perf_counter()
        self.metrics.algorithm(decided - prefiltered)
        if decision.node is not None:
            self.cache.assume(info, decision.node)
            self._spawn(self._bind(pod, info, decision.node, volumes, start=start))
        else:
            self.metrics.attempt(UNSCHEDULABLE, decided - start)
            self.queue.add_unschedulable(key)
            self._spawn(self._report_unschedulable(pod, decision.message))
        return decision

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Schedule until cancelled (the leader's work)."""
        await self.pods.wait_synced()
        await self.nodes.wait_synced()
        for inf in self.volume_informers:
            await inf.wait_synced()
        # Pods that arrived before we led may sit in no queue (e.g. after a lost lease): look again.
        for pod in self.pods.list():
            if is_pending(pod, self.settings.scheduler_name) and not self.cache.is_placed(pod_key(pod)):
                self.queue.add(pod_key(pod))
        flusher = asyncio.create_task(self.queue.flush_forever(), name="scheduler-flush")
        log.info("scheduling (%d nodes, %d pods cached)", len(self.cache.nodes), len(self.pods))
        try:
            while True:
                key = await self.queue.get()
                try:
                    await self._bind_slots.acquire()  # backpressure: at most bind_concurrency in flight
                    self._bind_slots.release()
                    started = time.perf_counter()
                    self.schedule_one(key)
                except Exception:  # noqa: BLE001 - one pod's bug must not stop scheduling
                    log.exception("scheduling %s failed", key)
                    self.metrics.attempt(ERROR, time.perf_counter() - started)
                    self.queue.add_backoff(key)
                finally:
                    self.queue.done(key)
                await asyncio.sleep(0)  # let watch events and bind answers in between pods
        finally:
            flusher.cancel()
            tasks = list(self._tasks)
            for t in tasks:
                t.cancel()
            await asyncio.gather(flusher, *tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ executors
    async def _bind(self, pod: Obj, info: PodInfo, node: str, volumes: PodVolumes | None = None, *,
                    start: float | None = None) -> None:
        meta = pod.get("metadata") or {}
        name, ns = str(meta.get("name")), str(meta.get("namespace") or "default")
        start = time.perf_counter() if start is None else start
        point = "Bind"
        async with self._bind_slots:
            try:
                if not self.is_leader():
                    raise asyncio.CancelledError()
                t = time.perf_counter()
                if volumes is not None and node in self.cache.nodes:
                    point = "PreBind"
                    await self.volumes.prebind(self.client, volumes, self.cache.nodes[node].facts, sleep=asyncio.sleep)
                    self.metrics.extension_point(point, "Success", time.perf_counter() - t)
                    point, t = "Bind", time.perf_counter()
                await self.client.bind(name, node, namespace=ns, uid=meta.get("uid"))
                self.metrics.extension_point(point, "Success", time.perf_counter() - t)
            except asyncio.CancelledError:
                self.cache.forget(info.key)
                self.queue.add(info.key)
                raise
            except errors.ApiError as e:
                self.metrics.extension_point(point, "Error", time.perf_counter() - t)
                self.metrics.attempt(ERROR, time.perf_counter() - start)
                self.cache.forget(info.key)
                self.queue.move_all_to_active("BindFailure")  # the resources it held are free again
                if isinstance(e, errors.NotFoundError):
                    self.queue.remove(info.key)
                else:
                    log.warning("binding %s to %s failed: %s", info.key, node, e)
                    self.queue.add_backoff(info.key)
                return
        self.bound += 1
        now = time.perf_counter()
        self.metrics.attempt(SCHEDULED, now - start)
        self.metrics.pod_scheduled(self.queue.tries(info.key), self.queue.since_entered(info.key))
        self.queue.remove(info.key)
        if self.settings.emit_scheduled_events:
            await self._event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}")

    async def _report_unschedulable(self, pod: Obj, message: str) -> None:
        meta = pod.get("metadata") or {}
        log.info("%s/%s is unschedulable: %s", meta.get("namespace"), meta.get("name"), message)
        current = next((c for c in (pod.get("status") or {}).get("conditions") or []
                        if c.get("type") == "PodScheduled"), None)
        if not (current and current.get("status") == "False" and current.get("reason") == "Unschedulable"
                and current.get("message") == message):
            cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
            async with self._status_slots:
                try:
                    await self.client.patch(("v1", "pods"), str(meta.get("name")), {"status": {"conditions": [cond]}},
                                            namespace=meta.get("namespace"), patch_type="strategic",
                                            subresource="status")
                except errors.ApiError as e:
                    if not isinstance(e, errors.NotFoundError):
                        log.warning("could not set PodScheduled on %s: %s", meta.get("name"), e)
        await self._event(pod, "Warning", "FailedScheduling", message)

    async def _event(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        ref = {"apiVersion": "v1", "kind": "Pod", "metadata": pod.get("metadata") or {}}
        async with self._event_slots:
            await self.recorder.event(ref, type_, reason, message)


def _spec_or_labels_changed(old: Obj, new: Obj) -> bool:
    return (old.get("spec") != new.get("spec")
            or (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"))


__all__ = ["CycleSettings", "Decision", "Scheduler", "is_pending", "num_feasible_nodes_to_find"]
