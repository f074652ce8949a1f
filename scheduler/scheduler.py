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
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from machinery import errors
from machinery.client import ApiClient
from machinery.events import EventRecorder
from machinery.informer import Informer
from machinery.sharedinformers import InformerFactory
from scheduler.cache import SchedulerCache, holds_resources
from scheduler.plugins import NodeInfo, PodInfo, fit_error_message, pod_info, pod_key, run_filters, score
from scheduler.queue import SchedulingQueue
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
        for inf in self.volume_informers:
            inf.add_handler(*self.volumes.handlers(self.queue.move_all_to_active))
        self._next_start = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._bind_slots = asyncio.Semaphore(settings.bind_concurrency)
        self._status_slots = asyncio.Semaphore(settings.status_concurrency)
        self._event_slots = asyncio.Semaphore(settings.event_concurrency)
        self.bound = 0  # successful binds (for logs, tests and the benchmark)
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
            self.queue.move_all_to_active()

    def _pod_deleted(self, pod: Obj) -> None:
        self.queue.remove(pod_key(pod))
        if self.cache.remove_pod(pod):
            self.queue.move_all_to_active()

    def _node_added(self, node: Obj) -> None:
        self.cache.set_node(node)
        self.queue.move_all_to_active()

    def _node_updated(self, old: Obj, new: Obj) -> None:
        if self.cache.set_node(new):
            self.queue.move_all_to_active()

    def _node_deleted(self, node: Obj) -> None:
        self.cache.remove_node(str((node.get("metadata") or {}).get("name") or ""))

    # ------------------------------------------------------------------ the decision
    def find_node(self, info: PodInfo, volumes: PodVolumes | None = None) -> Decision:
        """Filter from a rotating start until enough feasible nodes are found, then score (pure over the cache)."""
        order = self.cache.node_order
        nodes = self.cache.nodes
        n = len(order)
        if n == 0:
            return Decision(None, fit_error_message(0, {}))
        want = num_feasible_nodes_to_find(n, self.settings.percentage_of_nodes_to_score)
        start = self._next_start % n
        feasible: list[NodeInfo] = []
        rejected: dict[str, list[str]] = {}
        i = 0
        for i in range(n):
            ni = nodes[order[(start + i) % n]]
            reasons = run_filters(info, ni)
            if reasons is None and volumes is not None:
                reasons = self.volumes.filter(volumes, ni.facts)
            if reasons is None:
                feasible.append(ni)
                if len(feasible) >= want:
                    break
            else:
                rejected[ni.name] = reasons
        self._next_start = (start + i + 1) % n
        if not feasible:
            return Decision(None, fit_error_message(n, rejected), evaluated=n)
        if len(feasible) == 1:
            return Decision(feasible[0].name, evaluated=i + 1)
        scores = score(info, feasible)
        top = max(scores)
        best = self.rng.choice([ni for ni, s in zip(feasible, scores) if s == top])  # ties at random
        return Decision(best.name, evaluated=i + 1)

    def schedule_one(self, key: str) -> Decision | None:
        """One cycle for one pod: decide, assume, and start the bind or the unschedulable report."""
        pod = self.pods.get(key)
        if pod is None or not is_pending(pod, self.settings.scheduler_name) or self.cache.is_placed(key):
            return None
        info = pod_info(pod)
        volumes = self.volumes.prefilter(pod)
        if isinstance(volumes, str):
            decision, volumes = Decision(None, prefilter_message(len(self.cache.nodes), volumes)), None
        else:
            decision = self.find_node(info, volumes)
        if decision.node is not None:
            self.cache.assume(info, decision.node)
            self._spawn(self._bind(pod, info, decision.node, volumes))
        else:
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
                    self.schedule_one(key)
                except Exception:  # noqa: BLE001 - one pod's bug must not stop scheduling
                    log.exception("scheduling %s failed", key)
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
    async def _bind(self, pod: Obj, info: PodInfo, node: str, volumes: PodVolumes | None = None) -> None:
        meta = pod.get("metadata") or {}
        name, ns = str(meta.get("name")), str(meta.get("namespace") or "default")
        async with self._bind_slots:
            try:
                if not self.is_leader():
                    raise asyncio.CancelledError()
                if volumes is not None and node in self.cache.nodes:
                    await self.volumes.prebind(self.client, volumes, self.cache.nodes[node].facts, sleep=asyncio.sleep)
                await self.client.bind(name, node, namespace=ns, uid=meta.get("uid"))
            except asyncio.CancelledError:
                self.cache.forget(info.key)
                self.queue.add(info.key)
                raise
            except errors.ApiError as e:
                self.cache.forget(info.key)
                self.queue.move_all_to_active()  # the resources it held are free again
                if isinstance(e, errors.NotFoundError):
                    self.queue.remove(info.key)
                else:
                    log.warning("binding %s to %s failed: %s", info.key, node, e)
                    self.queue.add_backoff(info.key)
                return
        self.bound += 1
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
