"""Prometheus metrics: one registry per process, Kubernetes' metric names, served at ``/metrics``.

Data flow: each component declares its metrics once, at import time, in a module of its own
(``apiserver/metrics.py``, ``scheduler/metrics.py``, ``kubelet/metrics.py``, ``gitops/metrics.py``;
the work queue's in ``machinery/workqueue.py``) on prometheus_client's process-wide ``REGISTRY``,
which also carries the ``process_*`` (CPU, resident memory, open fds) and ``python_*`` collectors ->
code on the hot path only increments counters and observes histograms (no I/O, no locks beyond
prometheus_client's own) -> the component's listener answers ``GET /metrics`` with
``exposition(accept_header)`` (the text format 0.0.4, or OpenMetrics when the scraper asks for it)
-> Prometheus, the benchmarks (``bench/``) and the tests read it back with ``parse``.

Names, labels and buckets follow Kubernetes where they overlap (``apiserver_request_total``,
``workqueue_depth``, ``scheduler_schedule_attempts_total``, ``kubelet_pod_start_duration_seconds``,
...), so dashboards and queries written for Kubernetes work unchanged. Several components in one
process (the tests, ``minik8s up`` does not do that) share the registry, as Kubernetes'
``legacyregistry`` is shared.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families

# Kubernetes' apiserver_request_duration_seconds buckets (staging/src/k8s.io/apiserver/pkg/endpoints/metrics).
REQUEST_DURATION_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0,
                            4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0)
# client-go workqueue's and etcd_request_duration_seconds' finer buckets for sub-millisecond work.
FINE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0, 60.0)
# Pod start and scheduling latencies (seconds to minutes), as kubelet_pod_start_duration_seconds.
SLOW_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 20.0, 30.0, 45.0, 60.0,
                120.0, 300.0, 600.0)

# Kubernetes exports no ``*_created`` series; prometheus_client would add one to every counter and histogram.
disable_created_metrics()

Sample = tuple[dict[str, str], float]


def exposition(accept: str | None = None, *, registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """The body and content type of a ``GET /metrics``, negotiated on the Accept header."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def parse(text: str) -> dict[str, list[Sample]]:
    """Every sample of a text exposition by sample name (``x_bucket``, ``x_count``, ``x_total``...)."""
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
    return samples


def value(samples: dict[str, list[Sample]], name: str, /, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 when none); positional
    ``name``, so that a label called ``name`` (gitops' GitSync names) can be matched too."""
    return sum(v for got, v in samples.get(name, ()) if all(got.get(k) == want for k, want in labels.items()))


def label_values(samples: dict[str, list[Sample]], name: str, label: str) -> set[str]:
    """The values one label takes across the samples named ``name``."""
    return {got[label] for got, _ in samples.get(name, ()) if label in got}


__all__ = ["FINE_BUCKETS", "REGISTRY", "REQUEST_DURATION_BUCKETS", "SLOW_BUCKETS", "Sample", "exposition",
           "label_values", "parse", "value"]
