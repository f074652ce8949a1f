"""The kubelet's Prometheus metrics: Kubernetes' names (pkg/kubelet/metrics), and the pod start tracker.

Data flow:

    kubelet.runtime: every public DockerRuntime method is wrapped by ``timed_operation(<CRI name>)``
        -> kubelet_runtime_operations_total / _duration_seconds / _errors_total {operation_type}
        (Kubernetes' instrumentedRuntimeService: one sample per runtime call, an error per raise)
    kubelet.podworker (and kubelet.simulated, with the same tracker) -> ``PodStartTracker``:
        seen(pod)                  the pod first arrives from the informer (kubelet's firstSeenTime)
        pulling(uid) / pulled(uid) around a real image pull (excluded from the SLI)
        phase(uid, old, new)       Pending -> Running: kubelet_pod_start_duration_seconds
                                   (first seen -> running)
        status_written(uid, status) the first status written with every container running
        observed(pod)              the informer brings that status back (``observed via watch``):
                                   kubelet_pod_start_sli_duration_seconds (creationTimestamp -> now,
                                   minus the pull window) and kubelet_pod_start_total_duration_seconds
        forget(uid)                the pod is gone or terminal
    kubelet.podworker's reconcile -> kubelet_pod_worker_duration_seconds{operation_type create|sync|kill}
    kubelet.housekeeping's node-wide container list -> ``set_running`` -> kubelet_running_pods,
        kubelet_running_containers{container_state}

The tracker's decisions are pure (a clock is passed in); it only observes histograms. The metrics
live on machinery.metrics.REGISTRY; the kubelet's API serves them at ``GET /metrics``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping, ParamSpec, TypeVar

from prometheus_client import Counter, Gauge, Histogram

from kubelet.cri import ROLE_CONTAINER, ROLE_SANDBOX, ContainerInfo
from machinery.metrics import REGISTRY, SLOW_BUCKETS
from machinery.timefmt import parse_rfc3339

# metrics.ExponentialBuckets(.005, 2.5, 14), kubelet_runtime_operations_duration_seconds' buckets.
RUNTIME_BUCKETS = tuple(round(0.005 * 2.5 ** i, 6) for i in range(14))
# Prometheus' DefBuckets (kubelet_pod_worker_duration_seconds).
DEF_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

POD_START_DURATION = Histogram(
    "kubelet_pod_start_duration_seconds",
    "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
    buckets=SLOW_BUCKETS, registry=REGISTRY)
POD_START_SLI_DURATION = Histogram(
    "kubelet_pod_start_sli_duration_seconds",
    "Duration in seconds to start a pod, excluding time to pull images and run init containers, measured from "
    "pod creation timestamp to when all its containers are reported as started and observed via watch",
    ["first_with_network"], buckets=SLOW_BUCKETS, registry=REGISTRY)
POD_START_TOTAL_DURATION = Histogram(
    "kubelet_pod_start_total_duration_seconds",
    "Duration in seconds to start a pod since creation, including time to pull images and run init containers, "
    "measured from pod creation timestamp to when all its containers are reported as started and observed via watch",
    ["first_with_network"], buckets=SLOW_BUCKETS, registry=REGISTRY)
POD_WORKER_DURATION = Histogram(
    "kubelet_pod_worker_duration_seconds",
    "Duration in seconds to sync a single pod. Broken down by operation type: create, update, or sync",
    ["operation_type"], buckets=DEF_BUCKETS, registry=REGISTRY)
RUNTIME_OPERATIONS = Counter(
    "kubelet_runtime_operations_total", "Cumulative number of runtime operations by operation type.",
    ["operation_type"], registry=REGISTRY)
RUNTIME_OPERATIONS_DURATION = Histogram(
    "kubelet_runtime_operations_duration_seconds",
    "Duration in seconds of runtime operations. Broken down by operation type.",
    ["operation_type"], buckets=RUNTIME_BUCKETS, registry=REGISTRY)
RUNTIME_OPERATIONS_ERRORS = Counter(
    "kubelet_runtime_operations_errors_total", "Cumulative number of runtime operation errors by operation type.",
    ["operation_type"], registry=REGISTRY)
RUNNING_PODS = Gauge("kubelet_running_pods", "Number of pods that have a running pod sandbox", registry=REGISTRY)
RUNNING_CONTAINERS = Gauge("kubelet_running_containers", "Number of containers currently running",
                           ["container_state"], registry=REGISTRY)

# CRI's container states (the label's values); Docker's other states map onto them as dockershim did.
CONTAINER_STATES = ("created", "running", "exited", "unknown")
_CRI_STATE = {"created": "created", "running": "running", "exited": "exited", "dead": "exited"}

P = ParamSpec("P")
R = TypeVar("R")


def timed_operation(operation: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Counts and times every call of the wrapped runtime method; a raise counts as an error.

    The children are resolved once, at decoration: a call costs two clock reads and three
    lock-protected additions, nothing else."""
    total = RUNTIME_OPERATIONS.labels(operation)
    duration = RUNTIME_OPERATIONS_DURATION.labels(operation)
    failed = RUNTIME_OPERATIONS_ERRORS.labels(operation)

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            start = time.perf_counter()
            ok = False
            try:
                result = fn(*args, **kwargs)
                ok = True
                return result
            finally:
                total.inc()
                duration.observe(time.perf_counter() - start)
                if not ok:
                    failed.inc()
        return timed
    return wrap


def running_counts(containers: Iterable[ContainerInfo]) -> tuple[int, dict[str, int]]:
    """(pods with a running sandbox, app containers by CRI state) of one node's containers."""
    pods: set[str] = set()
    states = dict.fromkeys(CONTAINER_STATES, 0)
    for c in containers:
        if c.role == ROLE_SANDBOX:
            if c.running and c.pod_uid:
                pods.add(c.pod_uid)
        elif c.role == ROLE_CONTAINER:
            states[_CRI_STATE.get(c.state, "unknown")] += 1
    return len(pods), states


def set_running(containers: Iterable[ContainerInfo]) -> None:
    pods, states = running_counts(containers)
    RUNNING_PODS.set(pods)
    for state, n in states.items():
        RUNNING_CONTAINERS.labels(state).set(n)


def sync_operation(pod: Mapping[str, Any], *, known: bool) -> str:
    """The pod worker's operation type: kill (being deleted), create (first sync here), else sync."""
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return "kill"
    return "sync" if known else "create"


def all_started(status: Mapping[str, Any]) -> bool:
    """Kubernetes' hasPodStartedSLO: every container status is running with a start time."""
    return all(((cs.get("state") or {}).get("running") or {}).get("startedAt")
               for cs in status.get("containerStatuses") or [])


@dataclass
class _PodStart:
    first_seen: float  # wall-clock seconds: the kubelet's firstSeenTime
    created: float | None  # metadata.creationTimestamp
    host_network: bool
    first_pull: float | None = None
    last_pull: float | None = None
    running_at: float | None = None  # the first status with every container running was written
    start_recorded: bool = False
    sli_recorded: bool = False


class PodStartTracker:
    """Per pod uid, the moments of its start (after Kubernetes' PodStartupLatencyTracker).

    Only pods that had no ``status.startTime`` when first seen are tracked: a pod the kubelet
    adopts after a restart has started already and must not count as a start."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.pods: dict[str, _PodStart] = {}
        self.first_network_pod_seen = False

    def seen(self, pod: Mapping[str, Any]) -> None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        status = pod.get("status") or {}
        if not uid or uid in self.pods or status.get("startTime") or status.get("phase") in ("Succeeded", "Failed"):
            return
        self.pods[uid] = _PodStart(first_seen=self.clock(), created=_timestamp(meta.get("creationTimestamp")),
                                   host_network=bool((pod.get("spec") or {}).get("hostNetwork")))

    def pulling(self, uid: str) -> None:
        state = self.pods.get(uid)
        if state is not None and state.first_pull is None:
            state.first_pull = self.clock()

    def pulled(self, uid: str) -> None:
        state = self.pods.get(uid)
        if state is not None:
            state.last_pull = self.clock()

    def phase(self, uid: str, old: str | None, new: str | None) -> None:
        """The kubelet computed phase ``new`` over the stored ``old``: Pending -> Running is a start."""
        state = self.pods.get(uid)
        if state is None or state.start_recorded or new != "Running" or old not in (None, "", "Pending"):
            return
        state.start_recorded = True
        POD_START_DURATION.observe(max(0.0, self.clock() - state.first_seen))

    def status_written(self, uid: str, status: Mapping[str, Any]) -> None:
        state = self.pods.get(uid)
        if state is not None and state.running_at is None and status.get("containerStatuses") and all_started(status):
            state.running_at = self.clock()

    def writing(self, uid: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        """The kubelet is about to write status ``new`` over ``old`` (before the write: the watch
        may bring it back before the write's own answer does)."""
        self.phase(uid, old.get("phase"), new.get("phase"))
        self.status_written(uid, new)

    def observed(self, pod: Mapping[str, Any]) -> None:
        """A version of the pod from the watch: once it shows every container running (after our
        write of that status), the SLI and total start durations are observed, once per pod."""
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid") or "")
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            self.forget(uid)
            return
        state = self.pods.get(uid)
        if state is None or state.running_at is None or state.sli_recorded or state.created is None:
            return
        if not status.get("containerStatuses") or not all_started(status):
            return
        state.sli_recorded = True
        total = max(0.0, self.clock() - state.created)
        pulling = (state.last_pull - state.first_pull) if state.first_pull is not None and \
            state.last_pull is not None else 0.0
        first = "true" if not state.host_network and not self.first_network_pod_seen else ""
        if first:
            self.first_network_pod_seen = True
        POD_START_SLI_DURATION.labels(first).observe(max(0.0, total - pulling))
        POD_START_TOTAL_DURATION.labels(first).observe(total)

    def forget(self, uid: str) -> None:
        self.pods.pop(uid, None)


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed: datetime = parse_rfc3339(value)
    except ValueError:
        return None
    return parsed.timestamp()


__all__ = ["CONTAINER_STATES", "POD_START_DURATION", "POD_START_SLI_DURATION", "POD_START_TOTAL_DURATION",
           "POD_WORKER_DURATION", "PodStartTracker", "RUNNING_CONTAINERS", "RUNNING_PODS", "RUNTIME_BUCKETS",
           "RUNTIME_OPERATIONS", "RUNTIME_OPERATIONS_DURATION", "RUNTIME_OPERATIONS_ERRORS", "all_started",
           "running_counts", "set_running", "sync_operation", "timed_operation"]
