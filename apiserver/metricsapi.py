"""``metrics.k8s.io/v1beta1``: pod and node resource usage, served by the API server itself.

In Kubernetes metrics-server serves this group through API aggregation; here the apiserver
answers it (read-only: get and list, JSON only). Data flow:

    GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods?labelSelector=...   (kubectl top pod, the HPA)
      -> the pods (registry, watch cache; label and field selectors as for pods) grouped by node
      -> per node, a scrape no older than ``resolution`` seconds (one in flight per node):
         GET http://NODE-IP:PORT/stats/summary (the kubelet's ``kubelet.statscollect``), or, for a
         simulated node (label ``minik8s.io/simulated``), synthetic usage (``synthetic_usage``)
      -> PodMetrics / NodeMetrics shaped as metrics-server's (timestamp, window, containers[].usage
         with cpu in nanocores "12345n" and memory "1234Ki", canonical Kubernetes quantities).

A pod or node without a sample is left out of lists and answers NotFound by name, as
metrics-server does. Discovery entries come from ``discovery_group`` / ``resource_list``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

import aiohttp
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from machinery import errors
from machinery.quantity import QuantityError, cpu_millis, to_bytes

from .nodeproxy import kubelet_headers, kubelet_location
from .registry import Registry

log = logging.getLogger(__name__)

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
SIMULATED_LABEL = "minik8s.io/simulated"
# Synthetic usage of a simulated node's pod (like kwok's metrics emulation): these annotations on
# the pod, else the containers' requests.
CPU_USAGE_ANNOTATION = "simulated.minik8s.io/cpu-usage"
MEMORY_USAGE_ANNOTATION = "simulated.minik8s.io/memory-usage"
SCRAPE_TIMEOUT = 5.0


# ------------------------------------------------------------------------------ pure shapes
def discovery_group() -> dict[str, Any]:
    """The group's entry in ``/apis``."""
    version = {"groupVersion": GROUP_VERSION, "version": VERSION}
    return {"name": GROUP, "versions": [version], "preferredVersion": version}


def resource_list() -> dict[str, Any]:
    """``/apis/metrics.k8s.io/v1beta1``: what metrics-server's APIService announces."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
        {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]},
    ]}


def format_cpu(nanocores: int) -> str:
    """A canonical DecimalSI quantity of nanocores (``resource.NewScaledQuantity(n, -9)``)."""
    n = max(0, int(nanocores))
    for divisor, suffix in ((10**9, ""), (10**6, "m"), (10**3, "u")):
        if n % divisor == 0:
            return f"{n // divisor}{suffix}"
    return f"{n}n"


def format_memory(value: int) -> str:
    """A canonical BinarySI quantity of bytes (``resource.NewQuantity(b, BinarySI)``)."""
    n = max(0, int(value))
    if n == 0:
        return "0"
    for power, suffix in ((50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")):
        if n % (1 << power) == 0:
            return f"{n >> power}{suffix}"
    return str(n)


@dataclass(frozen=True)
class PodUsage:
    time: str
    containers: tuple[tuple[str, int, int], ...]  # (name, nanocores, working-set bytes)


@dataclass(frozen=True)
class NodeScrape:
    time: str
    node: tuple[int, int] | None  # (nanocores, working-set bytes)
    pods: Mapping[tuple[str, str], PodUsage]  # (namespace, name) -> usage


def parse_summary(doc: Mapping[str, Any]) -> NodeScrape:
    """The kubelet's ``/stats/summary`` -> what this API serves."""
    def usage(entry: Mapping[str, Any]) -> tuple[int, int, str] | None:
        cpu, mem = entry.get("cpu") or {}, entry.get("memory") or {}
        if "usageNanoCores" not in cpu or "workingSetBytes" not in mem:
            return None
        return int(cpu["usageNanoCores"]), int(mem["workingSetBytes"]), str(cpu.get("time") or "")

    node_doc = doc.get("node") or {}
    node = usage(node_doc)
    pods: dict[tuple[str, str], PodUsage] = {}
    stamp = node[2] if node else ""
    for pod in doc.get("pods") or []:
        ref = pod.get("podRef") or {}
        containers = []
        for c in pod.get("containers") or []:
            u = usage(c)
            if u is not None:
                containers.append((str(c.get("name")), u[0], u[1]))
                stamp = stamp or u[2]
        if containers:
            pods[(str(ref.get("namespace")), str(ref.get("name")))] = PodUsage(
                time=str((pod.get("cpu") or {}).get("time") or stamp), containers=tuple(sorted(containers)))
    return NodeScrape(time=stamp, node=node[:2] if node else None, pods=pods)


def synthetic_usage(pods: list[Mapping[str, Any]], *, now: str) -> NodeScrape:
    """A simulated node's usage: each running pod's annotations, else its containers' requests."""
    out: dict[tuple[str, str], PodUsage] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        annotations = meta.get("annotations") or {}
        containers = [c for c in (pod.get("spec") or {}).get("containers") or [] if isinstance(c, Mapping)]
        rows = []
        for c in containers:
            requests = (c.get("resources") or {}).get("requests") or {}
            cpu = annotations.get(CPU_USAGE_ANNOTATION) or requests.get("cpu") or "0"
            mem = annotations.get(MEMORY_USAGE_ANNOTATION) or requests.get("memory") or "0"
            try:
                share = len(containers) if annotations.get(CPU_USAGE_ANNOTATION) else 1
                nanocores = cpu_millis(cpu) * 10**6 // share
                share = len(containers) if annotations.get(MEMORY_USAGE_ANNOTATION) else 1
                memory = to_bytes(mem) // share
            except QuantityError:
                continue
            rows.append((str(c.get("name")), nanocores, memory))
        if rows:
            out[(str(meta.get("namespace")), str(meta.get("name")))] = PodUsage(time=now, containers=tuple(sorted(rows)))
    total = (sum(r[1] for p in out.values() for r in p.containers), sum(r[2] for p in out.values() for r in p.containers))
    return NodeScrape(time=now, node=total, pods=out)


def pod_metrics(pod: Mapping[str, Any], usage: PodUsage, *, window: str, now: str) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    return {"kind": "PodMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"), "creationTimestamp": now,
                         "labels": dict(meta.get("labels") or {})},
            "timestamp": usage.time or now, "window": window,
            "containers": [{"name": name, "usage": {"cpu": format_cpu(cpu), "memory": format_memory(mem)}}
                           for name, cpu, mem in usage.containers]}


def node_metrics(node: Mapping[str, Any], scrape: NodeScrape, *, window: str, now: str) -> dict[str, Any] | None:
    if scrape.node is None:
        return None
    meta = node.get("metadata") or {}
    return {"kind": "NodeMetrics", "apiVersion": GROUP_VERSION,
            "metadata": {"name": meta.get("name"), "creationTimestamp": now, "labels": dict(meta.get("labels") or {})},
            "timestamp": scrape.time or now, "window": window,
            "usage": {"cpu": format_cpu(scrape.node[0]), "memory": format_memory(scrape.node[1])}}


# ------------------------------------------------------------------------------ the scraper
@dataclass
class _Cached:
    at: float
    scrape: NodeScrape | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MetricsAPI:
    def __init__(self, registry: Registry, *, resolution: float = 5.0) -> None:
        self.registry = registry
        self.resolution = resolution
        self._nodes: dict[str, _Cached] = {}

    @property
    def window(self) -> str:
        return f"{max(1, round(self.resolution))}s"

    def _resource(self, plural: str) -> Any:
        res = self.registry.resources.lookup("", "v1", plural)
        assert res is not None
        return res

    async def _scrape(self, node: Mapping[str, Any], now: str) -> NodeScrape | None:
        name = str((node.get("metadata") or {}).get("name"))
        if SIMULATED_LABEL in ((node.get("metadata") or {}).get("labels") or {}):
            pods = await self.registry.list(self._resource("pods"), None, field_selector=f"spec.nodeName={name}")
            return synthetic_usage([e.obj for e in pods.items], now=now)
        try:
            address, port = kubelet_location(node)
        except errors.ApiError:
            return None
        host = f"[{address}]" if ":" in address else address
        headers = await kubelet_headers(self.registry)
        try:
            # A session per scrape (at most one per node every `resolution` seconds): nothing to close
            # when the apiserver stops.
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT)) as session:
                async with session.get(f"http://{host}:{port}/stats/summary", headers=headers) as resp:
                    if resp.status != 200:
                        log.info("scraping node %s: HTTP %d", name, resp.status)
                        return None
                    return parse_summary(orjson.loads(await resp.read()))
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, TypeError, AttributeError) as e:
            log.info("scraping node %s failed: %s", name, e)
            return None

    async def scrape(self, node: Mapping[str, Any], now: str) -> NodeScrape | None:
        """The node's usage, from a scrape at most ``resolution`` seconds old."""
        name = str((node.get("metadata") or {}).get("name"))
        cached = self._nodes.setdefault(name, _Cached(at=-1e9, scrape=None))
        async with cached.lock:
            if time.monotonic() - cached.at >= self.resolution:
                cached.scrape = await self._scrape(node, now)
                cached.at = time.monotonic()
            return cached.scrape

    async def _node_objects(self, names: set[str] | None = None) -> list[Mapping[str, Any]]:
        nodes = await self.registry.list(self._resource("nodes"), None)
        return [e.obj for e in nodes.items if names is None or (e.obj.get("metadata") or {}).get("name") in names]

    async def pods(self, namespace: str | None, *, name: str | None = None, label_selector: str = "",
                   field_selector: str = "") -> list[dict[str, Any]]:
        if name is not None:
            field_selector = ",".join(x for x in (field_selector, f"metadata.name={name}") if x)
        listed = await self.registry.list(self._resource("pods"), namespace, label_selector=label_selector,
                                          field_selector=field_selector)
        pods = [e.obj for e in listed.items if (e.obj.get("spec") or {}).get("nodeName")]
        now = _now()
        node_names = {str(p["spec"]["nodeName"]) for p in pods}
        nodes = await self._node_objects(node_names)
        scrapes = dict(zip((str(n["metadata"]["name"]) for n in nodes),
                           await asyncio.gather(*(self.scrape(n, now) for n in nodes))))
        out = []
        for pod in pods:
            meta = pod.get("metadata") or {}
            scrape = scrapes.get(str(pod["spec"]["nodeName"]))
            usage = scrape.pods.get((str(meta.get("namespace")), str(meta.get("name")))) if scrape else None
            if usage is not None:
                out.append(pod_metrics(pod, usage, window=self.window, now=now))
        return out

    async def nodes(self, *, name: str | None = None, label_selector: str = "") -> list[dict[str, Any]]:
        field_selector = f"metadata.name={name}" if name is not None else ""
        listed = await self.registry.list(self._resource("nodes"), None, label_selector=label_selector,
                                          field_selector=field_selector)
        now = _now()
        nodes = [e.obj for e in listed.items]
        scrapes = await asyncio.gather(*(self.scrape(n, now) for n in nodes))
        return [m for n, s in zip(nodes, scrapes) if s is not None
                for m in [node_metrics(n, s, window=self.window, now=now)] if m is not None]



def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _list(kind: str, items: list[dict[str, Any]]) -> Response:
    body = {"kind": kind, "apiVersion": GROUP_VERSION, "metadata": {}, "items": items}
    return Response(orjson.dumps(body) + b"\n", media_type="application/json")


def _one(item: dict[str, Any]) -> Response:
    return Response(orjson.dumps(item) + b"\n", media_type="application/json")


def install(app: FastAPI, registry: Registry, *, resolution: float = 5.0) -> MetricsAPI:
    """Route ``/apis/metrics.k8s.io/v1beta1/...`` to a ``MetricsAPI`` (before the generic resource routes)."""
    api = MetricsAPI(registry, resolution=resolution)
    base = f"/apis/{GROUP_VERSION}"

    def selectors(request: Request) -> dict[str, str]:
        q = request.query_params
        return {"label_selector": q.get("labelSelector", ""), "field_selector": q.get("fieldSelector", "")}

    @app.get(base + "/nodes", include_in_schema=False)
    async def list_nodes(request: Request) -> Response:
        return _list("NodeMetricsList", await api.nodes(label_selector=request.query_params.get("labelSelector", "")))

    @app.get(base + "/nodes/{name}", include_in_schema=False)
    async def get_node(name: str) -> Response:
        found = await api.nodes(name=name)
        if not found:
            raise errors.NotFoundError(message=f'nodemetrics.metrics.k8s.io "{name}" not found',
                                       name=name, group=GROUP, kind="nodes")
        return _one(found[0])

    @app.get(base + "/pods", include_in_schema=False)
    async def list_all_pods(request: Request) -> Response:
        return _list("PodMetricsList", await api.pods(None, **selectors(request)))

    @app.get(base + "/namespaces/{namespace}/pods", include_in_schema=False)
    async def list_pods(namespace: str, request: Request) -> Response:
        return _list("PodMetricsList", await api.pods(namespace, **selectors(request)))

    @app.get(base + "/namespaces/{namespace}/pods/{name}", include_in_schema=False)
    async def get_pod(namespace: str, name: str) -> Response:
        found = await api.pods(namespace, name=name)
        if not found:
            raise errors.NotFoundError(message=f'podmetrics.metrics.k8s.io "{namespace}/{name}" not found',
                                       name=name, group=GROUP, kind="pods")
        return _one(found[0])

    return api


__all__ = ["GROUP_VERSION", "MetricsAPI", "discovery_group", "format_cpu", "format_memory", "install",
           "node_metrics", "parse_summary", "pod_metrics", "resource_list", "synthetic_usage"]
