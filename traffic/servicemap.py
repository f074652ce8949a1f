"""Services + EndpointSlices -> the endpoints of every Service port (pure), as kube-proxy sees them.

Data flow: Service objects and EndpointSlice objects (plain dicts, as the informers cache them)
-> ``service_ports`` -> one ``ServicePort`` per (Service, port) with its ClusterIP, NodePort,
protocol, affinity, traffic policies and the ``Endpoint`` s of every slice labelled
``kubernetes.io/service-name`` = the Service whose port has the same name and protocol.
``ServicePort.usable_endpoints`` is kube-proxy's choice of where a connection may go: the ready
endpoints, else (``ProxyTerminatingEndpoints``) the serving-and-terminating ones, optionally only
those on one node (``externalTrafficPolicy`` / ``internalTrafficPolicy: Local``).

Used by the kubelet's in-pod DNAT (traffic.proxy), ``minik8s proxy`` (NodePort, LoadBalancer),
``minik8s dns`` and ``minik8s ingress``. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

Obj = Mapping[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Endpoint:
    """One address:port of a Service port, with the EndpointSlice conditions."""

    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node: str | None = None
    zone: str | None = None
    hostname: str | None = None
    target: str | None = None  # the targetRef's name (a pod), when there is one


@dataclass(frozen=True)
class ServicePort:
    """One port of one Service and where its traffic may go."""

    namespace: str
    service: str
    port_name: str  # "" for an unnamed port
    protocol: str  # TCP, UDP or SCTP
    port: int
    type: str = "ClusterIP"
    cluster_ip: str | None = None  # None: headless ("None") or ExternalName
    node_port: int | None = None
    load_balancer_ips: tuple[str, ...] = ()  # status.loadBalancer.ingress[].ip
    external_ips: tuple[str, ...] = ()
    session_affinity: bool = False  # sessionAffinity: ClientIP
    affinity_timeout: int = 10800
    external_local: bool = False  # externalTrafficPolicy: Local
    internal_local: bool = False  # internalTrafficPolicy: Local
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def key(self) -> str:
        """``namespace/service:port_name`` (``namespace/service`` for an unnamed port)."""
        base = f"{self.namespace}/{self.service}"
        return f"{base}:{self.port_name}" if self.port_name else base

    def usable_endpoints(self, *, node: str | None = None) -> tuple[Endpoint, ...]:
        """The endpoints a new connection may go to: the ready ones; when there are none, the
        serving ones that are terminating (kube-proxy's fallback); with ``node``, only those on
        that node. Deduplicated by ip:port (several slices may list one endpoint while they are
        being rewritten), in a stable order."""
        candidates = [e for e in self.endpoints if node is None or e.node == node]
        chosen = [e for e in candidates if e.ready]
        if not chosen:
            chosen = [e for e in candidates if e.serving and e.terminating]
        seen: dict[tuple[str, int], Endpoint] = {}
        for e in chosen:
            seen.setdefault((e.ip, e.port), e)
        return tuple(sorted(seen.values(), key=lambda e: (e.ip, e.port)))

    def endpoints_for_external(self, *, node: str | None) -> tuple[Endpoint, ...]:
        """Where traffic arriving at a NodePort / load-balancer address of ``node`` may go:
        only ``node``'s endpoints when ``externalTrafficPolicy: Local`` (and a node is known)."""
        return self.usable_endpoints(node=node if self.external_local and node else None)

    def endpoints_for_internal(self, *, node: str | None) -> tuple[Endpoint, ...]:
        """Where traffic from a pod on ``node`` to the ClusterIP may go (``internalTrafficPolicy``)."""
        return self.usable_endpoints(node=node if self.internal_local and node else None)


def _condition(conditions: Mapping[str, Any], name: str, default: bool) -> bool:
    value = conditions.get(name)
    return default if value is None else bool(value)


def slice_endpoints(endpoint_slice: Obj, *, port_name: str, protocol: str) -> list[Endpoint]:
    """The endpoints of one EndpointSlice for the port named ``port_name`` (and ``protocol``)."""
    if endpoint_slice.get("addressType", "IPv4") != "IPv4":
        return []
    number = None
    for p in endpoint_slice.get("ports") or []:
        if (p.get("name") or "") == port_name and (p.get("protocol") or "TCP") == protocol and p.get("port"):
            number = int(p["port"])
            break
    if number is None:
        return []
    found = []
    for ep in endpoint_slice.get("endpoints") or []:
        cond = ep.get("conditions") or {}
        ready = _condition(cond, "ready", True)
        terminating = _condition(cond, "terminating", False)
        serving = _condition(cond, "serving", ready)
        ref = ep.get("targetRef") or {}
        for ip in (ep.get("addresses") or [])[:1]:  # kube-proxy uses the first address only
            found.append(Endpoint(ip=ip, port=number, ready=ready, serving=serving, terminating=terminating,
                                  node=ep.get("nodeName"), zone=ep.get("zone"), hostname=ep.get("hostname"),
                                  target=ref.get("name")))
    return found


def slices_by_service(slices: Iterable[Obj]) -> dict[tuple[str, str], list[Obj]]:
    """EndpointSlices grouped by (namespace, the Service their ``kubernetes.io/service-name`` names)."""
    grouped: dict[tuple[str, str], list[Obj]] = {}
    for s in slices:
        meta = s.get("metadata") or {}
        name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name:
            grouped.setdefault((meta.get("namespace") or "default", name), []).append(s)
    return grouped


def _cluster_ip(spec: Mapping[str, Any]) -> str | None:
    ip = spec.get("clusterIP")
    return None if not ip or ip == "None" else str(ip)


def service_ports(services: Iterable[Obj], slices: Iterable[Obj]) -> list[ServicePort]:
    """Every port of every Service (ExternalName ones excepted) with its endpoints, sorted by key."""
    grouped = slices_by_service(slices)
    out: list[ServicePort] = []
    for svc in services:
        meta = svc.get("metadata") or {}
        spec = svc.get("spec") or {}
        kind = spec.get("type") or "ClusterIP"
        if kind == "ExternalName":
            continue
        ns, name = meta.get("namespace") or "default", meta.get("name") or ""
        lb_ips = tuple(i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
                       if i.get("ip"))
        affinity = spec.get("sessionAffinity") == "ClientIP"
        timeout = (((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}).get("timeoutSeconds")) or 10800
        for p in spec.get("ports") or []:
            port_name, protocol = p.get("name") or "", p.get("protocol") or "TCP"
            eps: list[Endpoint] = []
            for s in grouped.get((ns, name), []):
                eps.extend(slice_endpoints(s, port_name=port_name, protocol=protocol))
            out.append(ServicePort(
                namespace=ns, service=name, port_name=port_name, protocol=protocol, port=int(p.get("port") or 0),
                type=kind, cluster_ip=_cluster_ip(spec),
                node_port=int(p["nodePort"]) if p.get("nodePort") and kind in ("NodePort", "LoadBalancer") else None,
                load_balancer_ips=lb_ips if kind == "LoadBalancer" else (),
                external_ips=tuple(spec.get("externalIPs") or ()), session_affinity=affinity,
                affinity_timeout=int(timeout), external_local=spec.get("externalTrafficPolicy") == "Local",
                internal_local=spec.get("internalTrafficPolicy") == "Local", endpoints=tuple(eps)))
    out.sort(key=lambda sp: (sp.namespace, sp.service, sp.port_name, sp.protocol))
    return out
