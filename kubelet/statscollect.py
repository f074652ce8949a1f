"""The kubelet's resource-metrics collector: samples its running containers through the runtime.

Data flow: ``kubelet.server``'s ``/stats/summary`` and ``/metrics/resource`` -> ``StatsCollector.collect``
-> ``runtime.list`` (this node's app containers, by label) -> ``runtime.stats`` per running container
(one-shot Docker stats, in the kubelet's thread pool: ``run_blocking``) -> ``kubelet.stats.UsageTracker``
(rates between samples). A container seen for the first time is sampled a second time
``first_window`` seconds later, so the first scrape already answers a rate (cAdvisor samples in
the background; we sample on demand).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any

from .blocking import RunBlocking
from .cri import (LABEL_CONTAINER_NAME, LABEL_NODE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_ROLE,
                  ROLE_CONTAINER, ContainerInfo, ContainerRuntime, ContainerRuntimeError)
from .stats import ContainerUsage, UsageTracker, resource_metrics_text, sample_of, summary


class StatsCollector:
    def __init__(self, runtime: ContainerRuntime, node: str, *, run_blocking: RunBlocking,
                 first_window: float = 1.0) -> None:
        self.runtime = runtime
        self.run_blocking = run_blocking
        self.node = node
        self.first_window = first_window
        self.tracker = UsageTracker(min_window=first_window / 2)
        self.started = datetime.now(timezone.utc)
        self._lock = asyncio.Lock()

    async def _sample(self, containers: list[ContainerInfo]) -> dict[str, ContainerUsage]:
        out: dict[str, ContainerUsage] = {}

        def one(c: ContainerInfo) -> Any:
            try:
                return self.runtime.stats(c.id)
            except ContainerRuntimeError:
                return None

        raws = await asyncio.gather(*(self.run_blocking(one, c) for c in containers))
        now = datetime.now(timezone.utc)
        for c, raw in zip(containers, raws):
            sample = sample_of(raw, now=now) if isinstance(raw, dict) else None
            if sample is None:
                continue
            usage = self.tracker.observe(c.id, sample)
            if usage is not None:
                out[c.id] = ContainerUsage(
                    namespace=c.labels.get(LABEL_POD_NAMESPACE, ""), pod=c.labels.get(LABEL_POD_NAME, ""),
                    pod_uid=c.pod_uid or "", container=c.container_name or "", started=c.started_at, usage=usage)
        return out

    async def collect(self) -> list[ContainerUsage]:
        """The usage of every running app container of this node (those with a rate so far)."""
        async with self._lock:
            listed = await self.run_blocking(self.runtime.list, {LABEL_NODE: self.node, LABEL_ROLE: ROLE_CONTAINER})
            running = [c for c in listed if c.running and c.labels.get(LABEL_CONTAINER_NAME)]
            self.tracker.forget_except(c.id for c in running)
            found = await self._sample(running)
            again = [c for c in running if c.id not in found and self.tracker.needs_second_sample(c.id)]
            if again:
                await asyncio.sleep(self.first_window)
                found.update(await self._sample(again))
            return [found[c.id] for c in running if c.id in found]

    async def summary(self) -> dict[str, Any]:
        return summary(self.node, await self.collect(), now=datetime.now(timezone.utc), started=self.started)

    async def resource_metrics(self) -> str:
        return resource_metrics_text(await self.collect())


__all__ = ["StatsCollector"]
