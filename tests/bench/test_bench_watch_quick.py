"""bench/bench_watch.py in its reduced form (10 watchers per side, 20 pods) against a real etcd and API
server, plus its pure latency bookkeeping: the benchmark cannot silently break, and what it reports
is right. No speed is asserted here (that is the benchmark's report), only that every watcher on both
sides received every event and the figures carry numbers."""

from __future__ import annotations

import math

import pytest

from bench.bench_watch import figures, latencies, measure, report

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize(("received", "missed", "complete", "values"), [
    ([{"a": 1.5, "b": 2.25}], 0, 1, [0.5, 0.25]),
    ([{"a": 1.5}, {"a": 1.25, "b": 2.5}], 1, 1, [0.5, 0.25, 0.5]),
    ([{}], 2, 0, []),
])
def test_latencies_per_watcher_and_event(received: list[dict[str, float]], missed: int, complete: int,
                                         values: list[float]) -> None:
    side = latencies({"a": 1.0, "b": 2.0}, received, "x")
    assert sorted(side.latencies) == sorted(values)
    assert (side.missed, side.complete, side.watchers) == (missed, complete, len(received))
    if values:
        assert side.pct(100) == max(values)
    else:
        assert math.isnan(side.pct(50))


def test_quick_run_delivers_every_event() -> None:
    result = measure(["--quick"])
    assert (result.watchers, result.events) == (10, 20)
    for side in (result.api, result.etcd):
        assert side.missed == 0 and side.complete == 10, side
        assert len(side.latencies) == 200
        assert all(0 <= x < 30 for x in side.latencies)
    rows = figures(result)
    assert [r.target for r in rows] == ["", "<= raw etcd p99 + 10 ms", "every event"]
    assert rows[2].met is True
    assert "| apiserver |" in report(result)
