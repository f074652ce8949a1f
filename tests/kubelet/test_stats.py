"""kubelet.stats (raw Docker stats -> usage, summary, Prometheus text) and the kubelet's
/stats/summary and /metrics/resource over HTTP with a runtime that answers canned stats."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import aiohttp
import pytest

from kubelet.cri import (LABEL_CONTAINER_NAME, LABEL_NODE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID,
                         LABEL_ROLE, ROLE_CONTAINER, ContainerInfo)
from kubelet.credential import fixed_token
from kubelet.server import label_resolver, start_kubelet_server
from machinery.kubeletauth import authorization_header
from kubelet.stats import ContainerUsage, Sample, UsageTracker, rate, resource_metrics_text, sample_of, summary
from kubelet.statscollect import StatsCollector

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def raw(cpu_ns: int, *, at: datetime = T0, usage: int = 10 << 20, inactive_key: str = "total_inactive_file",
        inactive: int = 4 << 20) -> dict[str, Any]:
    return {"read": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}},
            "memory_stats": {"usage": usage, "stats": {inactive_key: inactive}}}


@pytest.mark.parametrize("inactive_key", ["total_inactive_file", "inactive_file"])  # cgroup v1, v2
def test_working_set_is_usage_minus_inactive_file(inactive_key: str) -> None:
    sample = sample_of(raw(5, inactive_key=inactive_key), now=T0)
    assert sample == Sample(time=T0, cpu_ns=5, memory_usage=10 << 20, working_set=6 << 20)
    assert sample_of(raw(5, usage=1, inactive=9), now=T0).working_set == 0  # type: ignore[union-attr]


def test_a_stopped_container_has_no_sample() -> None:
    assert sample_of({"read": "0001-01-01T00:00:00Z", "cpu_stats": {}, "memory_stats": {}}, now=T0) is None


def test_cpu_rate_between_two_samples() -> None:
    first = Sample(T0, 1_000_000_000, 0, 0)
    second = Sample(T0 + timedelta(seconds=2), 2_000_000_000, 0, 0)
    assert rate(first, second).nanocores == 500_000_000  # type: ignore[union-attr]
    assert rate(second, first) is None  # time went backwards
    assert rate(second, Sample(T0 + timedelta(seconds=3), 5, 0, 0)) is None  # a counter reset


def test_tracker_needs_two_samples_and_answers_the_last_usage_when_asked_too_soon() -> None:
    tracker = UsageTracker(min_window=1.0)
    assert tracker.observe("c", Sample(T0, 0, 0, 0)) is None
    assert tracker.needs_second_sample("c")
    usage = tracker.observe("c", Sample(T0 + timedelta(seconds=1), 250_000_000, 0, 0))
    assert usage is not None and usage.nanocores == 250_000_000
    assert tracker.observe("c", Sample(T0 + timedelta(seconds=1.2), 900_000_000, 0, 0)) == usage
    tracker.forget_except([])
    assert not tracker.needs_second_sample("c") and tracker.observe("c", Sample(T0, 0, 0, 0)) is None


def _usage(pod: str, container: str, nanocores: int) -> ContainerUsage:
    sample_a, sample_b = Sample(T0, 0, 0, 0), Sample(T0 + timedelta(seconds=1), nanocores, 2048, 1024)
    u = rate(sample_a, sample_b)
    assert u is not None
    return ContainerUsage(namespace="ns", pod=pod, pod_uid=f"uid-{pod}", container=container, started=T0, usage=u)


def test_summary_and_prometheus_text() -> None:
    items = [_usage("a", "x", 100), _usage("a", "y", 50), _usage("b", "z", 7)]
    doc = summary("n1", items, now=T0, started=T0)
    assert doc["node"]["nodeName"] == "n1" and doc["node"]["cpu"]["usageNanoCores"] == 157
    pod_a = doc["pods"][0]
    assert pod_a["podRef"] == {"name": "a", "namespace": "ns", "uid": "uid-a"}
    assert [c["name"] for c in pod_a["containers"]] == ["x", "y"]
    assert pod_a["cpu"]["usageNanoCores"] == 150 and pod_a["memory"]["workingSetBytes"] == 2048
    text = resource_metrics_text(items)
    assert 'container_cpu_usage_seconds_total{container="x",namespace="ns",pod="a"} 0.000000100 ' in text
    assert 'container_memory_working_set_bytes{container="z",namespace="ns",pod="b"} 1024 ' in text


class CannedRuntime:
    """The two runtime calls the collector makes: list and stats (a busy container at 1/2 core)."""

    def __init__(self) -> None:
        self.calls = 0
        self.started = datetime.now(timezone.utc)

    def list(self, labels: Mapping[str, str] | None = None) -> list[ContainerInfo]:
        assert labels == {LABEL_NODE: "n1", LABEL_ROLE: ROLE_CONTAINER}
        return [ContainerInfo(id="c1", name="c1", state="running", exit_code=None, created_at=self.started,
                              started_at=self.started, finished_at=None, image="i", image_id="sha256:1",
                              labels={LABEL_POD_NAMESPACE: "ns", LABEL_POD_NAME: "web", LABEL_POD_UID: "u1",
                                      LABEL_CONTAINER_NAME: "app", LABEL_ROLE: ROLE_CONTAINER, LABEL_NODE: "n1"})]

    def stats(self, container_id: str) -> Mapping[str, Any]:
        self.calls += 1
        now = datetime.now(timezone.utc)
        elapsed_ns = int((now - self.started).total_seconds() * 1e9)
        return raw(1 + elapsed_ns // 2, at=now)


async def test_the_kubelet_serves_stats_summary_and_resource_metrics() -> None:
    runtime = CannedRuntime()
    runner, port = await start_kubelet_server(runtime, host="127.0.0.1", port=0,  # type: ignore[arg-type]
                                              resolve=label_resolver(runtime, run_blocking=asyncio.to_thread),  # type: ignore[arg-type]
                                              run_blocking=asyncio.to_thread, authorize=fixed_token("t"),
                                              stats=StatsCollector(runtime, "n1", run_blocking=asyncio.to_thread,  # type: ignore[arg-type]
                                                                   first_window=0.2))
    try:
        async with aiohttp.ClientSession(headers=authorization_header("t")) as s:
            async with s.get(f"http://127.0.0.1:{port}/stats/summary") as r:
                assert r.status == 200
                doc = await r.json()
            async with s.get(f"http://127.0.0.1:{port}/metrics/resource") as r:
                assert r.status == 200
                text = await r.text()
    finally:
        await runner.cleanup()
    container = doc["pods"][0]["containers"][0]
    assert doc["pods"][0]["podRef"] == {"name": "web", "namespace": "ns", "uid": "u1"}
    # The first scrape already has a rate: a second sample is taken first_window later.
    assert 400_000_000 < container["cpu"]["usageNanoCores"] < 600_000_000
    assert container["memory"]["workingSetBytes"] == 6 << 20
    assert 'container_cpu_usage_seconds_total{container="app",namespace="ns",pod="web"}' in text
    assert runtime.calls >= 3
