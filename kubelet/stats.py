"""Container resource usage from the engine's raw statistics, as cAdvisor computes it.

Role: the pure half of the kubelet's resource metrics (the I/O half is ``kubelet.statscollect``).
Data flow: ``runtime.stats(id)`` (Docker's stats JSON) -> ``sample_of`` -> a ``Sample`` (the
cumulative CPU nanoseconds, memory usage and working set at one instant) -> ``UsageTracker``
keeps the previous sample of every container and turns two samples into a ``Usage`` (CPU as a
rate in nanocores, memory as the working set) -> ``summary`` builds the kubelet's
``/stats/summary`` JSON (what metrics-server up to 0.5 scraped and the apiserver's
``metrics.k8s.io`` reads here) and ``resource_metrics_text`` the Prometheus text of
``/metrics/resource`` (what metrics-server scrapes today).

Memory is the working set as cAdvisor defines it: usage minus inactive file pages
(``total_inactive_file`` with cgroup v1, ``inactive_file`` with v2), never below zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from machinery.timefmt import parse_rfc3339


@dataclass(frozen=True)
class Sample:
    """One reading of a container's counters."""

    time: datetime
    cpu_ns: int  # cumulative CPU time in nanoseconds
    memory_usage: int  # bytes, page cache included
    working_set: int  # bytes: usage - inactive_file


@dataclass(frozen=True)
class Usage:
    """A container's usage between two samples (``nanocores``: CPU nanoseconds per second)."""

    time: datetime
    nanocores: int
    cpu_ns: int
    working_set: int
    memory_usage: int
    window_seconds: float


@dataclass(frozen=True)
class ContainerUsage:
    """One container of one pod and its usage (what the summary lists)."""

    namespace: str
    pod: str
    pod_uid: str
    container: str
    started: datetime | None
    usage: Usage


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def sample_of(raw: Mapping[str, Any], *, now: datetime) -> Sample | None:
    """A ``Sample`` from Docker's stats JSON; None when it carries no CPU counter (a stopped container)."""
    cpu = (raw.get("cpu_stats") or {}).get("cpu_usage") or {}
    total = cpu.get("total_usage")
    if not isinstance(total, int) or total <= 0:
        return None
    memory = raw.get("memory_stats") or {}
    usage = _int(memory.get("usage"))
    stats = memory.get("stats") or {}
    inactive = _int(stats.get("total_inactive_file", stats.get("inactive_file")))
    try:
        when = parse_rfc3339(str(raw.get("read") or "")) or now
    except ValueError:
        when = now
    if when.year < 2000:
        when = now
    return Sample(time=when, cpu_ns=total, memory_usage=usage, working_set=max(0, usage - inactive))


def rate(previous: Sample, current: Sample) -> Usage | None:
    """The usage between two samples of one container; None when they cannot make a rate
    (no time passed, or the counter went backwards: another container behind the same key)."""
    seconds = (current.time - previous.time).total_seconds()
    delta = current.cpu_ns - previous.cpu_ns
    if seconds <= 0 or delta < 0:
        return None
    return Usage(time=current.time, nanocores=int(delta / seconds), cpu_ns=current.cpu_ns,
                 working_set=current.working_set, memory_usage=current.memory_usage, window_seconds=seconds)


@dataclass
class UsageTracker:
    """The previous sample of every container (by container id) and the last usage made from it.

    ``observe`` records a sample; a rate needs two samples at least ``min_window`` seconds apart,
    so a sample taken too soon after the previous one is answered with the last usage instead."""

    min_window: float = 1.0
    _samples: dict[str, Sample] = field(default_factory=dict)
    _usage: dict[str, Usage] = field(default_factory=dict)

    def observe(self, key: str, sample: Sample) -> Usage | None:
        previous = self._samples.get(key)
        if previous is None:
            self._samples[key] = sample
            return None
        if (sample.time - previous.time).total_seconds() < self.min_window:
            return self._usage.get(key)
        usage = rate(previous, sample)
        self._samples[key] = sample
        if usage is None:
            self._usage.pop(key, None)
            return None
        self._usage[key] = usage
        return usage

    def needs_second_sample(self, key: str) -> bool:
        """Whether ``key`` has a first sample but no usage yet."""
        return key in self._samples and key not in self._usage

    def forget_except(self, keys: Iterable[str]) -> None:
        """Drop every container not in ``keys`` (removed containers)."""
        keep = set(keys)
        for table in (self._samples, self._usage):
            for key in [k for k in table if k not in keep]:
                del table[key]


# ------------------------------------------------------------------------------- output shapes
def _time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cpu(usage: Usage) -> dict[str, Any]:
    return {"time": _time(usage.time), "usageNanoCores": usage.nanocores, "usageCoreNanoSeconds": usage.cpu_ns}


def _memory(usage: Usage) -> dict[str, Any]:
    return {"time": _time(usage.time), "workingSetBytes": usage.working_set, "usageBytes": usage.memory_usage}


def _total(usages: list[Usage], now: datetime) -> Usage:
    return Usage(time=max((u.time for u in usages), default=now), nanocores=sum(u.nanocores for u in usages),
                 cpu_ns=sum(u.cpu_ns for u in usages), working_set=sum(u.working_set for u in usages),
                 memory_usage=sum(u.memory_usage for u in usages),
                 window_seconds=max((u.window_seconds for u in usages), default=0.0))


def summary(node: str, containers: Iterable[ContainerUsage], *, now: datetime, started: datetime) -> dict[str, Any]:
    """The kubelet's ``/stats/summary`` (``statsapi.Summary``): per pod and container CPU and
    memory; the node's figures are the sum of its pods' (the node's own processes are not counted)."""
    pods: dict[tuple[str, str, str], list[ContainerUsage]] = {}
    for c in containers:
        pods.setdefault((c.namespace, c.pod, c.pod_uid), []).append(c)
    pod_entries: list[dict[str, Any]] = []
    every: list[Usage] = []
    for (namespace, name, uid), items in sorted(pods.items()):
        items.sort(key=lambda c: c.container)
        total = _total([c.usage for c in items], now)
        every.extend(c.usage for c in items)
        start = min((c.started for c in items if c.started), default=now)
        pod_entries.append({
            "podRef": {"name": name, "namespace": namespace, "uid": uid},
            "startTime": _time(start),
            "containers": [{"name": c.container, "startTime": _time(c.started or now),
                            "cpu": _cpu(c.usage), "memory": _memory(c.usage)} for c in items],
            "cpu": _cpu(total), "memory": _memory(total),
        })
    node_total = _total(every, now)
    return {"node": {"nodeName": node, "startTime": _time(started), "cpu": _cpu(node_total),
                     "memory": _memory(node_total)},
            "pods": pod_entries}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resource_metrics_text(containers: Iterable[ContainerUsage]) -> str:
    """``/metrics/resource`` in the Prometheus text format, with the kubelet's metric names
    (cumulative CPU seconds and working set bytes, millisecond timestamps)."""
    items = list(containers)
    lines = ["# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds",
             "# TYPE container_cpu_usage_seconds_total counter"]
    for c in items:
        labels = f'container="{_label(c.container)}",namespace="{_label(c.namespace)}",pod="{_label(c.pod)}"'
        lines.append(f"container_cpu_usage_seconds_total{{{labels}}} {c.usage.cpu_ns / 1e9:.9f} "
                     f"{int(c.usage.time.timestamp() * 1000)}")
    lines += ["# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes",
              "# TYPE container_memory_working_set_bytes gauge"]
    for c in items:
        labels = f'container="{_label(c.container)}",namespace="{_label(c.namespace)}",pod="{_label(c.pod)}"'
        lines.append(f"container_memory_working_set_bytes{{{labels}}} {c.usage.working_set} "
                     f"{int(c.usage.time.timestamp() * 1000)}")
    total_cpu = sum(c.usage.cpu_ns for c in items) / 1e9
    total_ws = sum(c.usage.working_set for c in items)
    lines += ["# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node in core-seconds",
              "# TYPE node_cpu_usage_seconds_total counter", f"node_cpu_usage_seconds_total {total_cpu:.9f}",
              "# HELP node_memory_working_set_bytes [STABLE] Current working set of the node in bytes",
              "# TYPE node_memory_working_set_bytes gauge", f"node_memory_working_set_bytes {total_ws}",
              "# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise",
              "# TYPE scrape_error gauge", "scrape_error 0"]
    return "\n".join(lines) + "\n"


__all__ = ["ContainerUsage", "Sample", "Usage", "UsageTracker", "rate", "resource_metrics_text", "sample_of", "summary"]
