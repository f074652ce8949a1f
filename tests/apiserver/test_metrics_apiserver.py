"""The API server's Prometheus metrics (apiserver/metrics.py, apiserver/instrumentation.py).

Pure: Kubernetes' verb, scope and dry_run labels for each kind of request, what is left uncounted
(unknown resources, health checks), the in-flight watermark, the etcd ``type`` label. In process
over real etcd (the app itself, as the insecure superuser): the counts, durations and codes of
creates, gets, lists, applies, dry runs and 404s, a watch as a long-running request and its events,
the etcd latencies, the stored-object counts, ``/metrics`` absent from discovery. Over TLS (a real
``minik8s apiserver`` with RBAC): the real kubectl's ``get --raw /metrics`` as cluster-admin and as a
member of ``system:monitoring``, 403 for a user without the grant, 401 without credentials, the
plain port open; requests refused by authorization are not counted, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import AsyncIterator, Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
from prometheus_client import CollectorRegistry

from apiserver.app import create_app
from apiserver.cache import CacheEvent, Entry, TooSlowError, Watcher
from apiserver.auth.attributes import request_attributes
from apiserver.instrumentation import known_resources
from machinery.metricfamilies import Count, CountFamily, FamiliesCollector, HistogramFamily
from apiserver.metrics import Inflight, dry_run_label, etcd_type, request_labels
from apiserver.registry import Registry
from apiserver.resources import default_resources
from apiserver.storage.etcd import EtcdStorage
from machinery.metrics import Sample, exposition, parse, value
from machinery.userinfo import INSECURE_SUPERUSER
from tests.cluster import Etcd
from tests.securecluster import DEFAULT_TOKEN_USERS, SecureCluster

NS = "/api/v1/namespaces/ns1"
KNOWN = known_resources(default_resources())


# ------------------------------------------------------------------------------ pure
@pytest.mark.parametrize(("method", "path", "query", "ctype", "expected"), [
    ("GET", f"{NS}/pods", "", "", ("LIST", "namespace", "", "v1", "pods", "")),
    ("GET", "/api/v1/pods", "", "", ("LIST", "cluster", "", "v1", "pods", "")),
    ("HEAD", f"{NS}/pods/p", "", "", ("GET", "resource", "", "v1", "pods", "")),
    ("GET", f"{NS}/pods/p", "", "", ("GET", "resource", "", "v1", "pods", "")),
    ("POST", f"{NS}/pods", "", "", ("POST", "resource", "", "v1", "pods", "")),
    ("PUT", f"{NS}/pods/p/status", "", "", ("PUT", "resource", "", "v1", "pods", "status")),
    ("PATCH", f"{NS}/pods/p", "", "application/merge-patch+json", ("PATCH", "resource", "", "v1", "pods", "")),
    ("PATCH", f"{NS}/pods/p", "", "application/apply-patch+yaml", ("APPLY", "resource", "", "v1", "pods", "")),
    ("DELETE", f"{NS}/pods", "", "", ("DELETE", "namespace", "", "v1", "pods", "")),
    ("DELETE", f"{NS}/pods/p", "", "", ("DELETE", "resource", "", "v1", "pods", "")),
    ("GET", f"{NS}/pods", "watch=1", "", ("WATCH", "namespace", "", "v1", "pods", "")),
    ("GET", f"{NS}/pods", "watch=true&fieldSelector=metadata.name%3Dp", "",
     ("WATCH", "namespace", "", "v1", "pods", "")),
    ("GET", f"{NS}/pods/p", "watch=1", "", ("WATCH", "resource", "", "v1", "pods", "")),
    ("GET", "/api/v1/watch/namespaces/ns1/pods", "", "", ("WATCH", "namespace", "", "v1", "pods", "")),
    ("POST", f"{NS}/pods/p/exec", "command=ls", "", ("CONNECT", "resource", "", "v1", "pods", "exec")),
    ("GET", f"{NS}/pods/p/log", "", "", ("CONNECT", "resource", "", "v1", "pods", "log")),
    ("GET", f"{NS}/services/s/proxy/a/b", "", "", ("CONNECT", "resource", "", "v1", "services", "proxy")),
    ("POST", f"{NS}/pods/p/binding", "", "", ("POST", "resource", "", "v1", "pods", "binding")),
    ("GET", "/api/v1/namespaces/ns1", "", "", ("GET", "resource", "", "v1", "namespaces", "")),
    ("PUT", "/api/v1/namespaces/ns1/finalize", "", "", ("PUT", "resource", "", "v1", "namespaces", "finalize")),
    ("GET", "/apis/apps/v1/deployments", "", "", ("LIST", "cluster", "apps", "v1", "deployments", "")),
    ("PUT", "/apis/apps/v1/namespaces/ns1/deployments/d/scale", "", "",
     ("PUT", "resource", "apps", "v1", "deployments", "scale")),
    ("GET", "/apis/metrics.k8s.io/v1beta1/namespaces/ns1/pods", "", "",
     ("LIST", "namespace", "metrics.k8s.io", "v1beta1", "pods", "")),
    ("OPTIONS", f"{NS}/pods", "", "", ("other", "namespace", "", "v1", "pods", "")),
    # Non-resource requests: a bounded name in subresource, no scope (Kubernetes' discovery/openapi handlers).
    ("GET", "/apis", "", "", ("GET", "", "", "", "", "/apis")),
    ("GET", "/apis/apps/v1", "", "", ("GET", "", "", "", "", "/apis/{group}/{version}")),
    ("GET", "/api/v1", "", "", ("GET", "", "", "", "", "/api/{version}")),
    ("GET", "/openapi/v3/apis/apps/v1", "hash=x", "", ("GET", "", "", "", "", "openapi/v3")),
    ("GET", "/version", "", "", ("GET", "", "", "", "", "/version")),
    # Not counted: unknown resources, groups and subresources (a label per typo), health, /metrics itself.
    ("GET", f"{NS}/podz", "", "", None),
    ("GET", "/apis/nope.example.com/v1/things", "", "", None),
    ("GET", f"{NS}/pods/p/bogus", "", "", None),
    ("GET", f"{NS}/configmaps/c/status", "", "", None),
    ("GET", "/healthz", "", "", None),
    ("GET", "/readyz/etcd", "", "", None),
    ("GET", "/metrics", "", "", None),
    ("GET", "/random/path", "", "", None),
])
def test_request_labels(method: str, path: str, query: str, ctype: str,
                        expected: tuple[str, ...] | None) -> None:
    attributes = request_attributes(INSECURE_SUPERUSER, method, path, dict(parse_qsl(query)))
    labels = request_labels(attributes, method=method, query=query, content_type=ctype, known=KNOWN)
    got = None if labels is None else (labels.verb, labels.scope, labels.group, labels.version, labels.resource,
                                       labels.subresource)
    assert got == expected


@pytest.mark.parametrize(("query", "expected"), [
    ("", ""), ("fieldManager=x", ""), ("dryRun=All", "All"), ("dryRun=All&dryRun=All", "All"),
    ("dryRun=Al", "invalid"), ("dryRun=All&dryRun=x", "invalid"), ("dryRun=", "invalid"),
])
def test_dry_run_label(query: str, expected: str) -> None:
    assert dry_run_label(query) == expected


@pytest.mark.parametrize(("key", "expected"), [
    (b"/registry/core/pods/ns/p", "pods"), (b"/registry/apps/deployments/", "deployments.apps"),
    (b"/registry/example.com/widgets/ns/w", "widgets.example.com"), (b"/elsewhere", ""), (b"", ""),
])
def test_etcd_type(key: bytes, expected: str) -> None:
    assert etcd_type(key) == expected


def test_inflight_reports_the_most_at_once_in_the_last_second() -> None:
    f = Inflight(clock=lambda: 0.0)
    f.begin("readOnly", 100.1)
    f.begin("readOnly", 100.2)
    f.begin("mutating", 100.3)
    f.end("readOnly")
    assert f.watermarks(100.5) == {"readOnly": 2, "mutating": 1}
    f.end("readOnly")
    f.end("mutating")
    assert f.watermarks(101.2) == {"readOnly": 2, "mutating": 1}  # the previous second still counts
    assert f.watermarks(102.0) == {"readOnly": 0, "mutating": 0}
    f.begin("mutating", 102.1)
    assert f.watermarks(110.0) == {"readOnly": 0, "mutating": 1}  # still in flight after a quiet gap


def test_families_export_prometheus_counters_gauges_and_cumulative_histograms() -> None:
    counter = CountFamily("x_requests", "h", ["code"])
    gauge = CountFamily("x_open", "h", ["verb"], gauge=True)
    histogram = HistogramFamily("x_seconds", "h", ["op"], buckets=(1.0, 0.1))
    registry = CollectorRegistry()
    registry.register(FamiliesCollector(counter, gauge, histogram))
    counter.series("200").inc()
    counter.series("200").inc()
    gauge.series("WATCH").inc()
    gauge.series("WATCH").dec()
    for seconds in (0.1, 0.5, 2.0):
        histogram.series("get").observe(seconds)
    samples = parse(exposition(registry=registry)[0].decode())
    assert value(samples, "x_requests_total", code="200") == 2
    assert samples["x_open"] == [({"verb": "WATCH"}, 0.0)]
    assert [(labels["le"], v) for labels, v in samples["x_seconds_bucket"]] == [("0.1", 1), ("1.0", 2), ("+Inf", 3)]
    assert value(samples, "x_seconds_sum") == pytest.approx(2.6) and value(samples, "x_seconds_count") == 3


async def test_a_watcher_that_falls_behind_is_counted_once_as_terminated() -> None:
    terminated = Count()
    w = Watcher(lambda obj: True, on_terminated=terminated.inc)
    entry = Entry(b"/registry/core/pods/ns/p", {"metadata": {}}, b"{}", 1)
    for rv in range(1, 4100):  # the queue holds 4096
        w.offer(CacheEvent("MODIFIED", entry, entry, rv))
    assert terminated.n == 1
    assert isinstance(w.queue.get_nowait(), TooSlowError)


# ------------------------------------------------------------------------------ in process, real etcd
@pytest.fixture(scope="module")
async def client(etcd: Etcd) -> AsyncIterator[httpx.AsyncClient]:
    storage = EtcdStorage(etcd.url)
    registry = Registry(storage, default_resources())
    await registry.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(registry)), base_url="http://a",
                                 timeout=30) as c:
        yield c
    await registry.stop()
    await storage.close()


async def scrape(c: httpx.AsyncClient) -> dict[str, list[Sample]]:
    r = await c.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def requests(samples: dict[str, list[Sample]], **labels: str) -> float:
    return value(samples, "apiserver_request_total", **{"component": "apiserver", **labels})


async def test_requests_are_counted_with_kubernetes_labels(client: httpx.AsyncClient) -> None:
    ns = f"m1-{uuid.uuid4().hex[:8]}"
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    before = await scrape(client)
    assert (await client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})).status_code == 201
    for i in range(3):
        r = await client.post(cms, json={"metadata": {"name": f"c{i}"}, "data": {"k": "v"}})
        assert r.status_code == 201, r.text
    assert (await client.get(f"{cms}/c0")).status_code == 200
    assert (await client.get(f"{cms}/missing")).status_code == 404
    assert (await client.get(cms)).status_code == 200
    r = await client.post(cms, params={"dryRun": "All"}, json={"metadata": {"name": "dry"}})
    assert r.status_code == 201
    applied = b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}}'
    r = await client.patch(f"{cms}/c1", params={"fieldManager": "m1"}, content=applied,
                           headers={"content-type": "application/apply-patch+yaml"})
    assert r.status_code == 200, r.text
    after = await scrape(client)

    def delta(**labels: str) -> float:
        return requests(after, **labels) - requests(before, **labels)
    base = {"group": "", "version": "v1", "resource": "configmaps", "subresource": ""}
    assert delta(verb="POST", scope="resource", code="201", dry_run="", **base) == 3
    assert delta(verb="POST", scope="resource", code="201", dry_run="All", **base) == 1
    assert delta(verb="GET", scope="resource", code="200", **base) == 1
    assert delta(verb="GET", scope="resource", code="404", **base) == 1
    assert delta(verb="LIST", scope="namespace", code="200", **base) == 1
    assert delta(verb="APPLY", scope="resource", code="200", **base) == 1
    assert delta(verb="POST", resource="namespaces", code="201") == 1
    # The duration histogram (no code label) counts the same requests; the size histogram GET and LIST.
    duration = value(after, "apiserver_request_duration_seconds_count", verb="POST", dry_run="", **base) - \
        value(before, "apiserver_request_duration_seconds_count", verb="POST", dry_run="", **base)
    assert duration == 3
    assert value(after, "apiserver_request_duration_seconds_bucket", verb="POST", dry_run="", le="+Inf", **base) \
        == value(after, "apiserver_request_duration_seconds_count", verb="POST", dry_run="", **base)
    sizes = value(after, "apiserver_response_sizes_sum", verb="LIST", **base) - \
        value(before, "apiserver_response_sizes_sum", verb="LIST", **base)
    assert sizes > 3 * 50  # three ConfigMaps' JSON
    # etcd: one create per object written (the dry run stores nothing), typed by group-resource.
    etcd_creates = value(after, "etcd_request_duration_seconds_count", operation="create", type="configmaps") - \
        value(before, "etcd_request_duration_seconds_count", operation="create", type="configmaps")
    assert etcd_creates == 3
    assert value(after, "etcd_request_duration_seconds_count", operation="create", type="namespaces") >= 1
    assert value(after, "apiserver_storage_objects", resource="configmaps") >= 3
    assert value(after, "apiserver_watch_cache_resource_version", group="", resource="configmaps") > 0
    # /metrics counts itself in flight (a read), and nothing mutating is in flight now.
    assert value(after, "apiserver_current_inflight_requests", request_kind="readOnly") >= 1
    # Health checks and /metrics are not counted (Kubernetes does not instrument them).
    assert not any(s[0].get("subresource") in ("/metrics", "/healthz") for s in after["apiserver_request_total"])


async def test_a_watch_is_long_running_and_its_events_are_counted(client: httpx.AsyncClient) -> None:
    ns = f"m1w-{uuid.uuid4().hex[:8]}"
    assert (await client.post("/api/v1/namespaces", json={"metadata": {"name": ns}})).status_code == 201
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    before = await scrape(client)
    rv = (await client.get(cms)).json()["metadata"]["resourceVersion"]
    watch = asyncio.create_task(client.get(cms, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "2"}))
    watching = {"verb": "WATCH", "resource": "configmaps", "scope": "namespace", "component": "apiserver"}
    for _ in range(100):  # until the watch is being served
        during = await scrape(client)
        if value(during, "apiserver_longrunning_requests", **watching) >= 1:
            break
        await asyncio.sleep(0.02)
    else:
        pytest.fail("the open watch never showed in apiserver_longrunning_requests")
    for i in range(2):
        assert (await client.post(cms, json={"metadata": {"name": f"w{i}"}})).status_code == 201
    r = await watch
    assert r.status_code == 200 and r.text.count('"ADDED"') == 2
    after = await scrape(client)
    assert value(after, "apiserver_longrunning_requests", **watching) == \
        value(during, "apiserver_longrunning_requests", **watching) - 1
    assert requests(after, code="200", **watching) - requests(before, code="200", **watching) == 1
    sent = value(after, "apiserver_watch_events_total", group="", version="v1", kind="ConfigMap") - \
        value(before, "apiserver_watch_events_total", group="", version="v1", kind="ConfigMap")
    assert sent >= 2
    dispatched = value(after, "apiserver_watch_cache_events_dispatched_total", group="", resource="configmaps") - \
        value(before, "apiserver_watch_cache_events_dispatched_total", group="", resource="configmaps")
    assert dispatched >= 2


async def test_metrics_is_a_non_resource_url_absent_from_discovery(client: httpx.AsyncClient) -> None:
    for path in ("/api", "/apis", "/api/v1"):
        assert "/metrics" not in (await client.get(path)).text
    paths = (await client.get("/openapi/v2")).json()["paths"]
    assert not any(p == "/metrics" or p.startswith("/metrics/") for p in paths)
    r = await client.get("/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert r.headers["content-type"].startswith("application/openmetrics-text") and r.text.endswith("# EOF\n")


# ------------------------------------------------------------------------------ over TLS, real kubectl
PROMETHEUS_TOKEN = "prometheus-token-0123456789"


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    users = {**DEFAULT_TOKEN_USERS, PROMETHEUS_TOKEN: ("prometheus", "3001", ("system:monitoring",))}
    c = SecureCluster.start(tmp_path_factory.mktemp("metrics-secure"), token_users=users)
    yield c
    c.stop()


@pytest.mark.e2e
def test_kubectl_get_raw_metrics_needs_the_monitoring_grant(secure: SecureCluster, tmp_path: Path) -> None:
    with secure.client("alice") as alice:
        assert alice.get("/api/v1/namespaces/default/pods").status_code == 403
    for who in ("admin", "prometheus"):
        r = secure.kubectl(who, "get", "--raw", "/metrics")
        assert r.returncode == 0, r.stderr
        samples = parse(r.stdout)
        assert value(samples, "apiserver_request_total", verb="LIST", resource="pods", code="403") == 0
        assert value(samples, "etcd_request_duration_seconds_count", operation="list") > 0
        assert "apiserver_current_inflight_requests" in samples
    r = secure.kubectl("alice", "get", "--raw", "/metrics")
    assert r.returncode != 0
    assert 'User "alice" cannot get path "/metrics"' in r.stderr, r.stderr
    with secure.client("alice") as alice:
        assert alice.get("/metrics").status_code == 403
    with secure.client("anonymous") as anonymous:
        assert anonymous.get("/metrics").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
    # kubectl's list is counted; the plain port (127.0.0.1, tests) serves /metrics to anyone (the superuser).
    listed = secure.kubectl("admin", "get", "pods", "-A")
    assert listed.returncode == 0, listed.stderr
    r = httpx.get(secure.insecure_url + "/metrics", timeout=30)
    assert r.status_code == 200
    assert value(parse(r.text), "apiserver_request_total", verb="LIST", resource="pods", scope="cluster",
                 code="200") >= 1
