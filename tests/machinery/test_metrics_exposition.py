"""machinery.metrics: the exposition negotiates its format and parses back to the values written."""

from prometheus_client import CollectorRegistry, Counter, Histogram

from machinery.metrics import FINE_BUCKETS, exposition, label_values, parse, value


def test_text_exposition_round_trips_counters_and_histograms() -> None:
    reg = CollectorRegistry()
    c = Counter("demo_requests_total", "requests", ["verb", "code"], registry=reg)
    h = Histogram("demo_duration_seconds", "duration", ["verb"], buckets=FINE_BUCKETS, registry=reg)
    c.labels(verb="GET", code="200").inc(3)
    c.labels(verb="POST", code="201").inc()
    h.labels(verb="GET").observe(0.003)
    body, ctype = exposition(None, registry=reg)
    assert ctype.startswith("text/plain; version=0.0.4")
    samples = parse(body.decode())
    assert value(samples, "demo_requests_total") == 4
    assert value(samples, "demo_requests_total", verb="GET") == 3
    assert value(samples, "demo_requests_total", verb="PUT") == 0
    assert label_values(samples, "demo_requests_total", "code") == {"200", "201"}
    assert value(samples, "demo_duration_seconds_count", verb="GET") == 1
    assert value(samples, "demo_duration_seconds_bucket", verb="GET", le="0.005") == 1
    assert value(samples, "demo_duration_seconds_bucket", verb="GET", le="0.0025") == 0


def test_openmetrics_when_asked() -> None:
    reg = CollectorRegistry()
    Counter("demo_total", "x", registry=reg).inc()
    body, ctype = exposition("application/openmetrics-text; version=1.0.0", registry=reg)
    assert ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
