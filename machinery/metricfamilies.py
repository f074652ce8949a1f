"""Metric families kept as plain numbers on the hot path and turned into Prometheus families at scrape time.

Shared by the API server (apiserver/metrics.py) and the work queue (machinery/workqueue.py).

Data flow: a family (``CountFamily``: a counter or a gauge; ``HistogramFamily``) hands out one
mutable series per label values, once (``series(*values)``, cached) -> the request path, the watch
fan-out and the etcd calls only add to a ``Count`` or bisect into a ``Buckets`` (no locks, no
validation: prometheus_client's ``inc``/``observe`` cost several microseconds each on this
machine, several times per request) -> ``FamiliesCollector.collect`` (``GET /metrics``) reads them
into prometheus_client's ``CounterMetricFamily``/``GaugeMetricFamily``/``HistogramMetricFamily``
with cumulative buckets. Everything runs on the API server's event loop thread, scrapes included,
so plain numbers are consistent; a scrape copies each dict before reading it.
"""

from __future__ import annotations

import bisect
from typing import Generic, Iterator, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class Count:
    """A counter's or a gauge's value."""

    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def inc(self) -> None:
        self.n += 1

    def dec(self) -> None:
        self.n -= 1


class Buckets:
    """A histogram's per-bucket counts (not cumulative; the last is +Inf) and sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le: the first bound >= value
        self.sum += value

    def cumulative(self, les: list[str]) -> list[tuple[str, float]]:
        total, out = 0, []
        for le, count in zip(les, list(self.counts)):
            total += count
            out.append((le, float(total)))
        return out


S = TypeVar("S", Count, Buckets)


class _Family(Generic[S]):
    def __init__(self, name: str, documentation: str, labels: list[str]) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.all: dict[tuple[str, ...], S] = {}

    def _new(self) -> S:
        raise NotImplementedError

    def series(self, *values: str) -> S:
        found = self.all.get(values)
        if found is None:
            found = self.all[values] = self._new()
        return found

    def metric(self) -> Metric:
        raise NotImplementedError


class CountFamily(_Family[Count]):
    def __init__(self, name: str, documentation: str, labels: list[str], *, gauge: bool = False) -> None:
        super().__init__(name, documentation, labels)
        self.gauge = gauge

    def _new(self) -> Count:
        return Count()

    def metric(self) -> Metric:
        family = (GaugeMetricFamily if self.gauge else CounterMetricFamily)(self.name, self.documentation,
                                                                            labels=self.labels)
        for values, count in list(self.all.items()):
            family.add_metric(list(values), count.n)
        return family


class HistogramFamily(_Family[Buckets]):
    def __init__(self, name: str, documentation: str, labels: list[str], *, buckets: tuple[float, ...]) -> None:
        super().__init__(name, documentation, labels)
        self.bounds = tuple(sorted(buckets))
        self._les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]

    def _new(self) -> Buckets:
        return Buckets(self.bounds)

    def metric(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, h in list(self.all.items()):
            family.add_metric(list(values), h.cumulative(self._les), h.sum)
        return family


class FamiliesCollector(Collector):
    """Exports its families at scrape time (register it once on the registry)."""

    def __init__(self, *families: CountFamily | HistogramFamily) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()


__all__ = ["Buckets", "Count", "CountFamily", "FamiliesCollector", "HistogramFamily"]
