"""The scheduler's Prometheus metrics, with kube-scheduler's names, labels and buckets.

Data flow: declared once at import time on the process-wide registry (``machinery.metrics``) ->
``Scheduler`` (``scheduler.scheduler``) binds the label children it needs once per instance
(``SchedulerMetrics``) and, on its hot path, only increments and observes: an attempt's result
and duration, the algorithm's and each extension point's duration, a bound pod's end-to-end
latency and attempt count -> ``SchedulingQueue`` counts the pods it takes in by queue and event
-> at scrape time ``PendingPodsCollector`` reads the sizes of every live queue (nothing is kept
up to date between scrapes) -> ``GET /metrics`` on the scheduler's health listener.

Names and meanings follow pkg/scheduler/metrics/metrics.go:

- ``scheduler_schedule_attempts_total{result,profile}``: result ``scheduled`` (bound),
  ``unschedulable`` (fits no node) or ``error`` (the bind or the cycle failed);
- ``scheduler_scheduling_attempt_duration_seconds{result,profile}``: from the cycle's start to
  the bind's answer (scheduled) or to the decision (unschedulable, error);
- ``scheduler_scheduling_algorithm_duration_seconds``: filtering and scoring alone;
- ``scheduler_pod_scheduling_sli_duration_seconds{attempts}`` and
  ``scheduler_pod_scheduling_attempts``: from the pod's first entry into the queue to its bind,
  and how many attempts that took;
- ``scheduler_framework_extension_point_duration_seconds{extension_point,status,profile}``:
  PreFilter, Filter (the scan over the nodes for one pod), Score, PreBind, Bind;
- ``scheduler_queue_incoming_pods_total{queue,event}``: queue ``active``, ``backoff`` or
  ``unschedulable``; event ``PodAdd``, ``PodUpdate``, ``ScheduleAttemptFailure``,
  ``UnschedulableTimeout`` or the cluster event that moved waiting pods (``NodeAdd``,
  ``NodeUpdate``, ``AssignedPodUpdate``, ``AssignedPodDelete``, ``BindFailure``,
  ``PersistentVolumeClaimChange``, ...);
- ``scheduler_pending_pods{queue}``: ``active``, ``backoff``, ``unschedulable``, ``gated``;
- ``scheduler_scheduler_cache_size{type}``: ``nodes``, ``pods``, ``assumed_pods``.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Iterator, Protocol

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from machinery.metrics import REGISTRY

if TYPE_CHECKING:
    from prometheus_client.metrics import Counter as CounterT, Histogram as HistogramT


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """Prometheus' ExponentialBuckets (client_golang): ``count`` upper bounds from ``start``."""
    return tuple(start * factor ** i for i in range(count))


ATTEMPT_BUCKETS = exponential_buckets(0.001, 2, 15)  # 1 ms .. ~16 s
SLI_BUCKETS = exponential_buckets(0.01, 2, 20)  # 10 ms .. ~88 min
EXTENSION_POINT_BUCKETS = exponential_buckets(0.0001, 2, 12)  # 0.1 ms .. ~200 ms
ATTEMPTS_BUCKETS = exponential_buckets(1, 2, 5)  # 1 .. 16

SCHEDULED, UNSCHEDULABLE, ERROR = "scheduled", "unschedulable", "error"
MAX_ATTEMPTS_LABEL = 15  # attempts >= 15 share the label "15+", as kube-scheduler's getAttemptsLabel

SCHEDULE_ATTEMPTS = Counter(
    "scheduler_schedule_attempts", "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod "
    "could not be scheduled, while 'error' means an internal scheduler problem.", ["result", "profile"],
    registry=REGISTRY)
ATTEMPT_DURATION = Histogram(
    "scheduler_scheduling_attempt_duration_seconds", "Scheduling attempt latency in seconds (scheduling algorithm "
    "+ binding)", ["result", "profile"], buckets=ATTEMPT_BUCKETS, registry=REGISTRY)
ALGORITHM_DURATION = Histogram(
    "scheduler_scheduling_algorithm_duration_seconds", "Scheduling algorithm latency in seconds",
    buckets=ATTEMPT_BUCKETS, registry=REGISTRY)
POD_SCHEDULING_SLI_DURATION = Histogram(
    "scheduler_pod_scheduling_sli_duration_seconds", "E2e latency for a pod being scheduled, from the time the pod "
    "enters the scheduling queue and might involve multiple scheduling attempts.", ["attempts"],
    buckets=SLI_BUCKETS, registry=REGISTRY)
POD_SCHEDULING_ATTEMPTS = Histogram(
    "scheduler_pod_scheduling_attempts", "Number of attempts to successfully schedule a pod.",
    buckets=ATTEMPTS_BUCKETS, registry=REGISTRY)
EXTENSION_POINT_DURATION = Histogram(
    "scheduler_framework_extension_point_duration_seconds", "Latency for running all plugins of a specific "
    "extension point.", ["extension_point", "status", "profile"], buckets=EXTENSION_POINT_BUCKETS, registry=REGISTRY)
QUEUE_INCOMING_PODS = Counter(
    "scheduler_queue_incoming_pods", "Number of pods added to scheduling queues by event and queue type.",
    ["queue", "event"], registry=REGISTRY)


def attempts_label(attempts: int) -> str:
    return f"{MAX_ATTEMPTS_LABEL}+" if attempts >= MAX_ATTEMPTS_LABEL else str(attempts)


class QueueSizes(Protocol):
    def pending_sizes(self) -> dict[str, int]: ...


class CacheSizes(Protocol):
    def cache_sizes(self) -> dict[str, int]: ...


class PendingPodsCollector(Collector):
    """``scheduler_pending_pods`` and ``scheduler_scheduler_cache_size``, read from every live
    scheduling queue and cache at scrape time (weak references: a dropped scheduler disappears)."""

    def __init__(self) -> None:
        self._queues: weakref.WeakSet[QueueSizes] = weakref.WeakSet()
        self._caches: weakref.WeakSet[CacheSizes] = weakref.WeakSet()

    def track(self, queue: QueueSizes, cache: CacheSizes) -> None:
        self._queues.add(queue)
        self._caches.add(cache)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pending = GaugeMetricFamily(
            "scheduler_pending_pods", "Number of pending pods, by the queue type. 'active' means number of pods in "
            "activeQ; 'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in "
            "unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the number of "
            "unschedulable pods that the scheduler never attempted to schedule because they are gated.",
            labels=["queue"])
        totals = dict.fromkeys(("active", "backoff", "unschedulable", "gated"), 0)
        for q in list(self._queues):
            for name, n in q.pending_sizes().items():
                totals[name] = totals.get(name, 0) + n
        for name, n in totals.items():
            pending.add_metric([name], n)
        yield pending
        cache = GaugeMetricFamily("scheduler_scheduler_cache_size",
                                  "Number of nodes, pods, and assumed (bound) pods in the scheduler cache.",
                                  labels=["type"])
        sizes = dict.fromkeys(("nodes", "pods", "assumed_pods"), 0)
        for c in list(self._caches):
            for name, n in c.cache_sizes().items():
                sizes[name] = sizes.get(name, 0) + n
        for name, n in sizes.items():
            cache.add_metric([name], n)
        yield cache


PENDING_PODS = PendingPodsCollector()
REGISTRY.register(PENDING_PODS)


class SchedulerMetrics:
    """One scheduler profile's label children, bound once so the hot path is an inc or observe."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.attempts: dict[str, CounterT] = {r: SCHEDULE_ATTEMPTS.labels(r, profile)
                                              for r in (SCHEDULED, UNSCHEDULABLE, ERROR)}
        self.attempt_duration: dict[str, HistogramT] = {r: ATTEMPT_DURATION.labels(r, profile)
                                                        for r in (SCHEDULED, UNSCHEDULABLE, ERROR)}
        self._points: dict[tuple[str, str], HistogramT] = {}

    def attempt(self, result: str, seconds: float) -> None:
        self.attempts[result].inc()
        self.attempt_duration[result].observe(seconds)

    def extension_point(self, point: str, status: str, seconds: float) -> None:
        child = self._points.get((point, status))
        if child is None:
            child = self._points[(point, status)] = EXTENSION_POINT_DURATION.labels(point, status, self.profile)
        child.observe(seconds)

    @staticmethod
    def algorithm(seconds: float) -> None:
        ALGORITHM_DURATION.observe(seconds)

    @staticmethod
    def pod_scheduled(attempts: int, seconds: float) -> None:
        POD_SCHEDULING_SLI_DURATION.labels(attempts_label(attempts)).observe(seconds)
        POD_SCHEDULING_ATTEMPTS.observe(attempts)


_INCOMING: dict[tuple[str, str], CounterT] = {}


def incoming(queue: str, event: str, n: int = 1) -> None:
    """Count ``n`` pods entering ``queue`` because of ``event`` (never raises into the caller)."""
    child = _INCOMING.get((queue, event))
    if child is None:
        child = _INCOMING[(queue, event)] = QUEUE_INCOMING_PODS.labels(queue, event)
    child.inc(n)


__all__ = ["ATTEMPT_BUCKETS", "ERROR", "EXTENSION_POINT_BUCKETS", "PENDING_PODS", "SCHEDULED", "SLI_BUCKETS",
           "UNSCHEDULABLE", "PendingPodsCollector", "SchedulerMetrics", "attempts_label", "exponential_buckets",
           "incoming"]
