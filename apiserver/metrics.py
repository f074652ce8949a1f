"""The API server's Prometheus metrics: Kubernetes' names and labels, and the pure label decisions.

Data flow: declared once at import time on the process-wide registry (``machinery.metrics``), as
plain-number families (``machinery.metricfamilies``: the hot path adds to ints and bucket lists) ->
``apiserver.instrumentation`` asks ``request_labels`` for each request's labels (pure: the request's
method, path, query, content type and its ``Attributes``), binds the series once per label set
(``RequestChildren``) and only adds -> the etcd storage times each call with
``etcd_observe``; the watch cache counts dispatched events and ended slow watchers with the children
of ``watch_cache_children``; the watch handler counts the events it sends (``watch_events_child``)
-> at scrape time ``CacheCollector`` reads the object counts and revisions of every live watch cache
and ``Inflight`` reports the most requests served at once in the last second -> ``GET /metrics``.

Names and meanings (staging/src/k8s.io/apiserver/pkg/endpoints/metrics, pkg/storage/etcd3/metrics,
pkg/storage/cacher/metrics):

- ``apiserver_request_total{verb,dry_run,group,version,resource,subresource,scope,component,code}``
  and ``apiserver_request_duration_seconds`` (the same labels but code), recorded when the handler
  returns (a watch or exec stream when it ends, as in Kubernetes, so latency queries leave out
  ``WATCH`` and ``CONNECT``); ``apiserver_response_sizes`` for GET and LIST;
- ``apiserver_longrunning_requests``: open watches and exec/attach/port-forward/proxy/log streams;
- ``apiserver_current_inflight_requests{request_kind=readOnly|mutating}``: the most requests (not
  long-running) served at once in the last second;
- ``apiserver_watch_events_total{group,version,kind}``: events sent to watch clients;
  ``apiserver_watch_cache_events_dispatched_total{group,resource}``: events the watch cache fanned
  out (once each, whatever the number of watchers); ``apiserver_terminated_watchers_total``:
  watchers closed because they did not keep up; ``apiserver_watch_cache_resource_version``;
- ``apiserver_storage_objects{resource}``: the objects each watch cache holds (what etcd holds);
- ``etcd_request_duration_seconds{operation,type}`` and ``etcd_request_errors_total``: ``type`` is
  the group-resource (``pods``, ``deployments.apps``) as in Kubernetes since 1.28.
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Protocol
from urllib.parse import parse_qsl

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from machinery.metrics import FINE_BUCKETS, REGISTRY, REQUEST_DURATION_BUCKETS

from .auth.attributes import Attributes
from machinery.metricfamilies import Buckets, Count, CountFamily, FamiliesCollector, HistogramFamily

log = logging.getLogger(__name__)

COMPONENT = "apiserver"
READ_ONLY, MUTATING = "readOnly", "mutating"
APPLY_PATCH = "application/apply-patch+yaml"
# Kubernetes' validRequestMethods and validConnectRequests (endpoints/metrics/metrics.go).
VALID_VERBS = frozenset({"APPLY", "CONNECT", "CREATE", "DELETE", "DELETECOLLECTION", "GET", "LIST", "PATCH", "POST",
                         "PROXY", "PUT", "UPDATE", "WATCH", "WATCHLIST"})
CONNECT_SUBRESOURCES = frozenset({"log", "exec", "portforward", "attach", "proxy"})
_LONG_LABELS = ["verb", "group", "version", "resource", "subresource", "scope", "component"]
_LABELS = ["verb", "dry_run", "group", "version", "resource", "subresource", "scope", "component"]

REQUEST_TOTAL = CountFamily(
    "apiserver_request", "Counter of apiserver requests broken out for each verb, dry run value, group, version, "
    "resource, scope, component, and HTTP response code.", [*_LABELS, "code"])
REQUEST_DURATION = HistogramFamily(
    "apiserver_request_duration_seconds", "Response latency distribution in seconds for each verb, dry run value, "
    "group, version, resource, subresource, scope and component.", _LABELS, buckets=REQUEST_DURATION_BUCKETS)
RESPONSE_SIZES = HistogramFamily(
    "apiserver_response_sizes", "Response size distribution in bytes for each group, version, verb, resource, "
    "subresource, scope and component.", _LONG_LABELS, buckets=tuple(1000.0 * 10 ** i for i in range(7)))
LONGRUNNING = CountFamily(
    "apiserver_longrunning_requests", "Gauge of all active long-running apiserver requests broken out by verb, "
    "group, version, resource, scope and component. Not all requests are tracked this way.", _LONG_LABELS,
    gauge=True)
WATCH_EVENTS = CountFamily(
    "apiserver_watch_events", "Number of events sent in watch clients", ["group", "version", "kind"])
WATCH_CACHE_DISPATCHED = CountFamily(
    "apiserver_watch_cache_events_dispatched", "Counter of events dispatched in watch cache broken by resource type.",
    ["group", "resource"])
TERMINATED_WATCHERS = CountFamily(
    "apiserver_terminated_watchers", "Counter of watchers closed due to unresponsiveness broken by resource type.",
    ["group", "resource"])
ETCD_DURATION = HistogramFamily(
    "etcd_request_duration_seconds", "Etcd request latency in seconds for each operation and object type.",
    ["operation", "type"], buckets=FINE_BUCKETS)
ETCD_ERRORS = CountFamily(
    "etcd_request_errors", "Etcd failed request counts for each operation and object type.", ["operation", "type"])
REGISTRY.register(FamiliesCollector(REQUEST_TOTAL, REQUEST_DURATION, RESPONSE_SIZES, LONGRUNNING, WATCH_EVENTS,
                                    WATCH_CACHE_DISPATCHED, TERMINATED_WATCHERS, ETCD_DURATION, ETCD_ERRORS))


# ------------------------------------------------------------------------------ pure label decisions
class RequestLabels(NamedTuple):
    """The labels of apiserver_request_duration_seconds but ``component`` (a tuple: cheap to make and hash)."""

    verb: str
    dry_run: str
    group: str
    version: str
    resource: str
    subresource: str
    scope: str


KnownResource = Callable[[str, str, str, str], bool]  # (group, version, resource, subresource) -> served?


def non_resource_label(path: str) -> str | None:
    """The bounded name a non-resource request is counted under (Kubernetes puts it in
    ``subresource``: ``/apis``, ``openapi/v3``...), or None for what Kubernetes does not count
    (health checks, ``/metrics`` itself, paths nothing serves)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    head, n = parts[0], len(parts)
    if head == "api" and n <= 2:
        return "/api" if n == 1 else "/api/{version}"
    if head == "apis" and n <= 3:
        return ("/apis", "/apis/{group}", "/apis/{group}/{version}")[n - 1]
    if head == "openapi" and n >= 2 and parts[1] in ("v2", "v3"):
        return f"openapi/{parts[1]}"
    joined = "/" + "/".join(parts)
    if joined in ("/version", "/.well-known/openid-configuration", "/openid/v1/jwks"):
        return joined
    return None


def request_scope(a: Attributes, method: str) -> str:
    """Kubernetes' scope label: ``resource`` for a path naming one object or a create, ``namespace``
    for a collection in a namespace, ``cluster`` otherwise. A list or watch whose name comes only from
    ``fieldSelector=metadata.name=`` stays a collection, as the installer labels its route."""
    if method == "POST" or (a.name and (a.verb not in ("list", "watch") or a.path.rstrip("/").endswith("/" + a.name))):
        return "resource"
    return "namespace" if a.namespace else "cluster"


def request_verb(method: str, a: Attributes, scope: str, content_type: str) -> str:
    """Kubernetes' reported verb (CanonicalVerb + CleanVerb): LIST/GET by scope, WATCH, APPLY for
    server-side apply, CONNECT for exec/attach/portforward/proxy/log, ``other`` for anything unknown."""
    verb = method
    if method in ("GET", "HEAD"):
        verb = "GET" if scope in ("resource", "") else "LIST"
    if a.verb == "watch":
        verb = "WATCH"
    elif method == "PATCH" and content_type.split(";")[0].strip().lower() == APPLY_PATCH:
        verb = "APPLY"
    if a.resource_request and a.subresource in CONNECT_SUBRESOURCES:
        verb = "CONNECT"
    return verb if verb in VALID_VERBS else "other"


def dry_run_label(query: str) -> str:
    """``""``, ``All``, or ``invalid`` (Kubernetes' cleanDryRun; the query is parsed only when it names dryRun)."""
    if "dryRun" not in query:
        return ""
    values = sorted({v for k, v in parse_qsl(query, keep_blank_values=True) if k == "dryRun"})
    if not values:
        return ""
    return "invalid" if any(v != "All" for v in values) else ",".join(values)


def request_labels(a: Attributes, *, method: str, query: str, content_type: str,
                   known: KnownResource) -> RequestLabels | None:
    """The labels of one request, or None when it is not counted: a resource or subresource this
    server does not serve (a label per typo would be unbounded) or a non-resource path Kubernetes does
    not count."""
    method = method.upper()
    if a.resource_request:
        if not known(a.api_group, a.api_version, a.resource, a.subresource):
            return None
        scope = request_scope(a, method)
        return RequestLabels(request_verb(method, a, scope, content_type), dry_run_label(query) if query else "",
                             a.api_group, a.api_version, a.resource, a.subresource, scope)
    label = non_resource_label(a.path)
    if label is None:
        return None
    return RequestLabels(method if method in VALID_VERBS else "other", "", "", "", "", label, "")


def split_group_resource(group_resource: str) -> tuple[str, str]:
    """``deployments.apps`` -> (``apps``, ``deployments``); ``pods`` -> (``""``, ``pods``)."""
    resource, _, group = group_resource.partition(".")
    return group, resource


def prefix_group_resource(key: bytes) -> tuple[str, str]:
    """``/registry/<group|core>/<plural>/...`` -> (group, plural); ("", "") for other keys."""
    parts = key.split(b"/", 4)
    if len(parts) < 4 or parts[1] != b"registry":
        return "", ""
    group = parts[2].decode(errors="replace")
    return ("" if group == "core" else group), parts[3].decode(errors="replace")


def etcd_type(key: bytes) -> str:
    """The group-resource an etcd key belongs to: Kubernetes' ``type`` label (``pods``, ``deployments.apps``)."""
    group, resource = prefix_group_resource(key)
    return f"{resource}.{group}" if group else resource


# ------------------------------------------------------------------------------ bound series
@dataclass
class RequestChildren:
    """The series of one label set, bound once: the hot path adds to plain numbers."""

    labels: RequestLabels
    duration: Buckets
    sizes: Buckets | None
    _longrunning: Count | None = None
    _totals: dict[int, Count] = field(default_factory=dict)

    @property
    def longrunning(self) -> Count:
        """Made on first use: only long-running requests have a series, as in Kubernetes."""
        if self._longrunning is None:
            l_ = self.labels
            self._longrunning = LONGRUNNING.series(l_.verb, l_.group, l_.version, l_.resource, l_.subresource,
                                                   l_.scope, COMPONENT)
        return self._longrunning

    def total(self, code: int) -> Count:
        count = self._totals.get(code)
        if count is None:
            count = self._totals[code] = REQUEST_TOTAL.series(*self.labels, COMPONENT, str(code))
        return count


_REQUEST_CHILDREN: dict[RequestLabels, RequestChildren] = {}


def request_children(labels: RequestLabels) -> RequestChildren:
    children = _REQUEST_CHILDREN.get(labels)
    if children is None:
        sizes = None
        if labels.verb in ("GET", "LIST"):
            sizes = RESPONSE_SIZES.series(labels.verb, labels.group, labels.version, labels.resource,
                                          labels.subresource, labels.scope, COMPONENT)
        children = _REQUEST_CHILDREN[labels] = RequestChildren(
            labels, REQUEST_DURATION.series(*labels, COMPONENT), sizes)
    return children


_ETCD_CHILDREN: dict[tuple[str, bytes], tuple[Buckets, str]] = {}


def _resource_prefix(key: bytes) -> bytes:
    """``/registry/<group>/<plural>/`` of a key (what bounds the series cache), b"" for other keys."""
    if not key.startswith(b"/registry/"):
        return b""
    end = key.find(b"/", key.find(b"/", 10) + 1)
    return key if end < 0 else key[:end + 1]


def etcd_observe(operation: str, key: bytes, seconds: float, *, failed: bool = False) -> None:
    """Record one etcd call (never raises into the storage call it measures)."""
    try:
        prefix = _resource_prefix(key)
        entry = _ETCD_CHILDREN.get((operation, prefix))
        if entry is None:
            kind = etcd_type(prefix)
            entry = _ETCD_CHILDREN[(operation, prefix)] = (ETCD_DURATION.series(operation, kind), kind)
        entry[0].observe(seconds)
        if failed:
            ETCD_ERRORS.series(operation, entry[1]).inc()
    except Exception:  # noqa: BLE001 - a metric must never break a storage call
        log.debug("etcd metric for %s failed", operation, exc_info=True)


def watch_cache_children(prefix: bytes) -> tuple[Count, Count]:
    """(events dispatched, watchers terminated) of the watch cache of a resource's key prefix."""
    group, resource = prefix_group_resource(prefix)
    return WATCH_CACHE_DISPATCHED.series(group, resource), TERMINATED_WATCHERS.series(group, resource)


def watch_events_child(group: str, version: str, kind: str) -> Count:
    return WATCH_EVENTS.series(group, version, kind)


# ------------------------------------------------------------------------------ read at scrape time
class Inflight(Collector):
    """``apiserver_current_inflight_requests``: like Kubernetes' max-in-flight filter, the most
    requests served at once during the last second (the current second and the one before), by kind.
    ``begin``/``end`` are two integer updates; the clock is the caller's (``time.perf_counter``)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.current = {READ_ONLY: 0, MUTATING: 0}
        self._high = dict(self.current)
        self._previous = dict(self.current)
        self._second = 0

    def _roll(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            # A gap of more than a second: what was in flight all along is the previous second's most.
            self._previous = self._high if second == self._second + 1 else dict(self.current)
            self._high = dict(self.current)
            self._second = second

    def begin(self, kind: str, now: float) -> None:
        self._roll(now)
        n = self.current[kind] = self.current[kind] + 1
        if n > self._high[kind]:
            self._high[kind] = n

    def end(self, kind: str) -> None:
        self.current[kind] -= 1

    def watermarks(self, now: float) -> dict[str, int]:
        self._roll(now)
        return {k: max(self._high[k], self._previous[k]) for k in self.current}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "apiserver_current_inflight_requests", "Maximal number of currently used inflight request limit of this "
            "apiserver per request kind in last second.", labels=["request_kind"])
        for kind, n in self.watermarks(self.clock()).items():
            family.add_metric([kind], n)
        yield family


class CacheLike(Protocol):
    @property
    def objects(self) -> Mapping[bytes, Any]: ...

    @property
    def unreadable(self) -> Mapping[bytes, str]: ...

    @property
    def revision(self) -> int: ...


class RegistryLike(Protocol):
    @property
    def caches(self) -> Mapping[str, CacheLike]: ...  # group-resource -> its watch cache


class CacheCollector(Collector):
    """``apiserver_storage_objects`` and ``apiserver_watch_cache_resource_version`` from every live
    registry's watch caches (weak references). Several API servers in one process (tests) share
    etcd: each label takes the largest value, not the sum."""

    def __init__(self) -> None:
        self._registries: weakref.WeakSet[RegistryLike] = weakref.WeakSet()

    def track(self, registry: RegistryLike) -> None:
        self._registries.add(registry)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts: dict[str, int] = {}
        revisions: dict[str, int] = {}
        for registry in list(self._registries):
            caches: Mapping[str, CacheLike] = registry.caches
            for group_resource, cache in list(caches.items()):
                n = len(cache.objects) + len(cache.unreadable)
                counts[group_resource] = max(counts.get(group_resource, 0), n)
                revisions[group_resource] = max(revisions.get(group_resource, 0), cache.revision)
        objects = GaugeMetricFamily("apiserver_storage_objects", "Number of stored objects at the time of last check "
                                    "split by kind.", labels=["resource"])
        for group_resource in sorted(counts):
            objects.add_metric([group_resource], counts[group_resource])
        yield objects
        versions = GaugeMetricFamily("apiserver_watch_cache_resource_version", "Current resource version of watch "
                                     "cache broken by resource type.", labels=["group", "resource"])
        for group_resource in sorted(revisions):
            versions.add_metric(list(split_group_resource(group_resource)), revisions[group_resource])
        yield versions


INFLIGHT = Inflight()
CACHES = CacheCollector()
REGISTRY.register(INFLIGHT)
REGISTRY.register(CACHES)


__all__ = ["CACHES", "COMPONENT", "CONNECT_SUBRESOURCES", "INFLIGHT", "MUTATING", "READ_ONLY", "CacheCollector",
           "Inflight", "KnownResource", "RequestChildren", "RequestLabels", "dry_run_label", "etcd_observe",
           "etcd_type", "non_resource_label", "prefix_group_resource", "request_children", "request_labels",
           "request_scope", "request_verb", "split_group_resource", "watch_cache_children", "watch_events_child"]
