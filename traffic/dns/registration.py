"""Registration: Service ``kube-system/kube-dns``, its EndpointSlice and Endpoints point at this server.

Data flow: at start and after every change burst of the Services / EndpointSlices informers
(``Registrar.poke``), and every ``interval`` seconds for the Endpoints (which no informer here
watches), ``Registrar`` compares the cached kube-dns Service and slice with ``service_body`` /
``slice_body`` (pure) and, when one is missing or differs, makes it right through the API:
create, or update the fields it owns on a fresh copy with its resourceVersion (conflicts retried),
or, when the Service's ClusterIP (immutable) is not ``cluster_ip``, delete it and create it again.
The Service is selector-less, so the EndpointSlice controller (which only looks at slices managed
by ``endpointslice-controller.k8s.io``) and the Endpoints controller leave our objects alone; the
slice is owned by the Service, so the garbage collector removes it with the Service and it is
created again with the new one. Failures are logged and retried with backoff; DNS keeps answering.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
import socket
from typing import Any, Callable, Mapping

from machinery import errors
from machinery.client import ApiClient, retry_on_conflict
from machinery.informer import Informer

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]

NAMESPACE = "kube-system"
NAME = "kube-dns"
SLICE_NAME = "kube-dns"
MANAGED_BY = "minik8s-dns"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
SERVICE_LABELS = {"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "kubernetes.io/cluster-service": "true"}
DEFAULT_CLUSTER_IP = "172.28.128.10"

SERVICES = ("v1", "services")
ENDPOINT_SLICES = ("discovery.k8s.io/v1", "endpointslices")
ENDPOINTS = ("v1", "endpoints")


def advertise_address(bind_address: str) -> str:
    """Where pods reach this server: the bind address when it is one concrete IPv4 address, else the
    IPv4 address this host's name resolves to ("" when there is none)."""
    try:
        ip = ipaddress.ip_address(bind_address)
        if ip.version == 4 and not ip.is_unspecified:
            return str(ip)
    except ValueError:
        pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""


def usable_endpoint(address: str) -> bool:
    """Whether an Endpoints / EndpointSlice may name ``address`` (Kubernetes refuses loopback,
    link-local and unspecified addresses there)."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast)


def eleventh_address(kubernetes_ip: str) -> str:
    """The 11th address of a service range (``.10``) given its 2nd, the kubernetes Service's."""
    return str(ipaddress.IPv4Address(kubernetes_ip) + 9)


def _ports(port: int) -> list[dict[str, Any]]:
    return [{"name": "dns", "port": port, "protocol": "UDP"}, {"name": "dns-tcp", "port": port, "protocol": "TCP"}]


def service_body(*, cluster_ip: str, target_port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": dict(SERVICE_LABELS)},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip,
                     "ports": [{**p, "port": 53, "targetPort": target_port} for p in _ports(target_port)]}}


def slice_body(*, address: str, port: int, owner_uid: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": SLICE_NAME, "namespace": NAMESPACE,
                            "labels": {SERVICE_NAME_LABEL: NAME, MANAGED_BY_LABEL: MANAGED_BY, "k8s-app": "kube-dns"}}
    if owner_uid:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Service", "name": NAME, "uid": owner_uid,
                                    "controller": True, "blockOwnerDeletion": True}]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta, "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "conditions": {"ready": True, "serving": True,
                                                                  "terminating": False}}],
            "ports": _ports(port)}


def endpoints_body(*, address: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "labels": {**SERVICE_LABELS, "endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": address}], "ports": _ports(port)}]}


def _labels_differ(current: Obj, desired: Obj) -> bool:
    have = (current.get("metadata") or {}).get("labels") or {}
    return any(have.get(k) != v for k, v in ((desired.get("metadata") or {}).get("labels") or {}).items())


def _port_set(ports: Any, *, target: bool) -> set[tuple[Any, ...]]:
    return {(p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP",
             str(p.get("targetPort")) if target else "") for p in ports or []}


def service_differs(current: Obj | None, desired: Obj) -> bool:
    """Whether the kube-dns Service needs writing (missing, other ports, labels, a selector, ClusterIP)."""
    if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
        return True
    spec, want = current.get("spec") or {}, desired["spec"]
    return (spec.get("clusterIP") != want["clusterIP"] or bool(spec.get("selector"))
            or spec.get("type", "ClusterIP") != "ClusterIP"
            or _port_set(spec.get("ports"), target=True) != _port_set(want["ports"], target=True)
            or _labels_differ(current, desired))


def slice_differs(current: Obj | None, desired: Obj) -> bool:
    if current is None or (current.get("metadata") or {}).get("deletionTimestamp"):
        return True
    have_eps = [(tuple(e.get("addresses") or ()), bool((e.get("conditions") or {}).get("ready", True)))
                for e in current.get("endpoints") or []]
    want_eps = [(tuple(e["addresses"]), True) for e in desired["endpoints"]]
    owners = [(o.get("uid"), o.get("controller")) for o in (current.get("metadata") or {}).get("ownerReferences") or []]
    want_owners = [(o["uid"], True) for o in desired["metadata"].get("ownerReferences") or []]
    return (current.get("addressType") != "IPv4" or have_eps != want_eps
            or _port_set(current.get("ports"), target=False) != _port_set(desired["ports"], target=False)
            or (bool(want_owners) and owners != want_owners) or _labels_differ(current, desired))


def endpoints_differ(current: Obj | None, desired: Obj) -> bool:
    if current is None:
        return True
    def norm(subsets: Any) -> list[tuple[Any, ...]]:
        return [(tuple(sorted(a.get("ip") for a in s.get("addresses") or [])), tuple(sorted(a.get("ip") for a in
                 s.get("notReadyAddresses") or [])), frozenset(_port_set(s.get("ports"), target=False)))
                for s in subsets or []]
    return norm(current.get("subsets")) != norm(desired["subsets"]) or _labels_differ(current, desired)


def _merged(current: Obj, desired: Obj, fields: tuple[str, ...]) -> dict[str, Any]:
    """``current`` (a copy) with ``desired``'s labels, ownerReferences and top-level ``fields``."""
    body = copy.deepcopy(dict(current))
    meta = body.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **desired["metadata"].get("labels", {})}
    if desired["metadata"].get("ownerReferences"):
        meta["ownerReferences"] = desired["metadata"]["ownerReferences"]
    for f in fields:
        body[f] = copy.deepcopy(desired[f])
    return body


def merged_service(current: Obj, desired: Obj) -> dict[str, Any]:
    """The live Service with our labels, ports and type, and no selector (the rest, defaults, kept)."""
    body = _merged(current, desired, ())
    spec = body.setdefault("spec", {})
    spec["ports"] = copy.deepcopy(desired["spec"]["ports"])
    spec["type"] = "ClusterIP"
    spec.pop("selector", None)
    return body


async def _get(client: ApiClient, resource: tuple[str, str], name: str) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, namespace=NAMESPACE)
    except errors.NotFoundError:
        return None


async def _ensure(client: ApiClient, resource: tuple[str, str], name: str, desired: dict[str, Any],
                  differs: Callable[[Obj | None, Obj], bool],
                  merge: Callable[[Obj, Obj], dict[str, Any]]) -> dict[str, Any]:
    """Create ``desired``, or write ``merge(live, desired)`` when the live object differs; the object
    as it is now."""

    async def attempt() -> dict[str, Any]:
        current = await _get(client, resource, name)
        if current is None:
            try:
                return await client.create(resource, desired, namespace=NAMESPACE)
            except errors.AlreadyExistsError:
                raise errors.ConflictError(message=f"{name} appeared meanwhile") from None
        if not differs(current, desired):
            return current
        return await client.update(resource, merge(current, desired), namespace=NAMESPACE)

    return await retry_on_conflict(attempt)


class Registrar:
    """Keeps kube-dns pointing at ``address:port``; ``run`` until cancelled, ``poke`` to look again."""

    def __init__(self, client: ApiClient, *, services: Informer, slices: Informer, cluster_ip: str, address: str,
                 port: int, interval: float = 30.0) -> None:
        self.client = client
        self.services = services
        self.slices = slices
        self.cluster_ip = cluster_ip
        self.address = address
        self.port = port
        self.interval = interval
        self._poked = asyncio.Event()
        self._poked.set()
        self._warned = False

    def poke(self) -> None:
        self._poked.set()

    def _cached_ok(self) -> bool:
        key = f"{NAMESPACE}/{NAME}"
        svc = self.services.get(key)
        if not self.cluster_ip or service_differs(svc, service_body(cluster_ip=self.cluster_ip, target_port=self.port)):
            return False
        if not usable_endpoint(self.address):
            return True
        uid = str((svc or {}).get("metadata", {}).get("uid") or "")
        desired = slice_body(address=self.address, port=self.port, owner_uid=uid)
        return not slice_differs(self.slices.get(f"{NAMESPACE}/{SLICE_NAME}"), desired)

    async def _cluster_ip(self) -> str:
        if self.cluster_ip:
            return self.cluster_ip
        kubernetes = await self.client.get(SERVICES, "kubernetes", namespace="default")
        self.cluster_ip = eleventh_address(str((kubernetes.get("spec") or {}).get("clusterIP")))
        log.info("kube-dns ClusterIP: %s (the 11th address of the service range)", self.cluster_ip)
        return self.cluster_ip

    async def ensure(self) -> None:
        """Write whatever of Service, EndpointSlice and Endpoints is missing or wrong."""
        cluster_ip = await self._cluster_ip()
        desired = service_body(cluster_ip=cluster_ip, target_port=self.port)
        current = await _get(self.client, SERVICES, NAME)
        if current is not None and (current.get("spec") or {}).get("clusterIP") != cluster_ip:
            log.warning("Service %s/%s has ClusterIP %s, not %s: creating it again", NAMESPACE, NAME,
                        (current.get("spec") or {}).get("clusterIP"), cluster_ip)
            try:
                await self.client.delete(SERVICES, NAME, namespace=NAMESPACE,
                                         preconditions={"uid": str(current["metadata"]["uid"])})
            except (errors.NotFoundError, errors.ConflictError):
                pass
        svc = await _ensure(self.client, SERVICES, NAME, desired, service_differs, merged_service)
        if not usable_endpoint(self.address):
            if not self._warned:
                log.warning("no address pods could reach to advertise for kube-dns (%r): the Service only, no "
                            "endpoints (give --advertise-address)", self.address)
                self._warned = True
            return
        uid = str(svc["metadata"].get("uid") or "")
        await _ensure(self.client, ENDPOINT_SLICES, SLICE_NAME, slice_body(address=self.address, port=self.port,
                                                                           owner_uid=uid),
                      slice_differs, lambda cur, want: _merged(cur, want, ("addressType", "endpoints", "ports")))
        await _ensure(self.client, ENDPOINTS, NAME, endpoints_body(address=self.address, port=self.port),
                      endpoints_differ, lambda cur, want: _merged(cur, want, ("subsets",)))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        backoff = 0.5
        last_full = float("-inf")
        while True:
            try:
                await asyncio.wait_for(self._poked.wait(), self.interval)
            except asyncio.TimeoutError:
                pass
            self._poked.clear()
            due = loop.time() - last_full >= self.interval
            if not due and self.services.has_synced and self.slices.has_synced and self._cached_ok():
                continue
            try:
                await self.ensure()
                last_full = loop.time()
                backoff = 0.5
            except Exception as e:  # an API error, or a bug: logged and retried, DNS keeps answering
                log.warning("registering %s/%s: %s (again in %.1fs)", NAMESPACE, NAME, e, backoff,
                            exc_info=not isinstance(e, (errors.ApiError, OSError)))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                self._poked.set()


__all__ = ["DEFAULT_CLUSTER_IP", "MANAGED_BY", "NAME", "NAMESPACE", "Registrar", "advertise_address",
           "endpoints_body", "endpoints_differ", "eleventh_address", "merged_service", "service_body", "service_differs",
           "slice_body", "slice_differs", "usable_endpoint"]
