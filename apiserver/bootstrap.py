"""The objects every cluster has: the system namespaces and the ``default/kubernetes`` Service.

After Kubernetes' ``SystemNamespaces`` and the "kubernetes service" reconciler of
pkg/controlplane: at start-up, and then every ``interval`` seconds, the apiserver makes sure that

- the namespaces ``default``, ``kube-system``, ``kube-public`` and ``kube-node-lease`` exist;
- the default RBAC ClusterRoles and ClusterRoleBindings (``apiserver/auth/bootstrapreconcile.py``);
- the Service ``default/kubernetes`` exists: ClusterIP, the first address of the service range,
  port 443 named ``https`` to the apiserver's port (its secure port when it serves TLS, as
  Kubernetes; else the plain-HTTP port), labels ``component=apiserver,
  provider=kubernetes``, no selector (it is recreated if someone deletes it);
- the Secret ``kube-system/minik8s-kubelet-client`` (``machinery.kubeletauth``) holds the bearer
  token the API server presents to every kubelet: made with a new random token when missing (the
  first API server to write it wins; the others read it);
- its Endpoints and its EndpointSlice ``default/kubernetes`` (labelled only
  ``kubernetes.io/service-name: kubernetes``, as Kubernetes' endpoints adapter writes it, so the
  EndpointSlice controller, which touches only slices with its own managed-by label, leaves it
  alone) list the apiserver's advertised address when it has one that pods can reach
  (``--advertise-address``, else the bind address, else the host's address; a loopback address
  is not a valid endpoint, so a 127.0.0.1-only apiserver publishes the Service without endpoints).

Beside that loop runs the Service allocation repair (``apiserver/allocators.py``): it frees the
ClusterIPs and NodePorts that Services stopped using and records those that lack a claim.

An apiserver started without a TLS pair serves plain HTTP only; its port named ``https`` then
speaks plain HTTP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING, Any

from machinery import errors, kubeletauth

from .allocators import AllocationRepair
from .auth import bootstrapreconcile

if TYPE_CHECKING:
    from .registry import Registry

log = logging.getLogger(__name__)

SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
SERVICE_LABELS = {"component": "apiserver", "provider": "kubernetes"}


def first_service_ip(cidr: str) -> str:
    return str(ipaddress.ip_network(cidr, strict=False).network_address + 1)


def dns_service_ip(cidr: str) -> str:
    """The range's 11th address, which the cluster DNS Service ``kube-system/kube-dns`` asks for."""
    return str(ipaddress.ip_network(cidr, strict=False).network_address + 10)


def advertised_ip(advertise_address: str, bind_address: str) -> str | None:
    """The address pods reach the apiserver at, or None when there is no usable one."""
    for candidate in (advertise_address, bind_address):
        if not candidate:
            continue
        try:
            ip = ipaddress.ip_address(candidate)
        except ValueError:
            continue
        if ip.is_unspecified:
            try:
                ip = ipaddress.ip_address(socket.gethostbyname(socket.gethostname()))
            except (OSError, ValueError):
                return None
        if ip.is_loopback or ip.is_unspecified or ip.is_link_local:
            return None
        return str(ip)
    return None


def kubernetes_service(cidr: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": dict(SERVICE_LABELS)},
            "spec": {"type": "ClusterIP", "clusterIP": first_service_ip(cidr), "sessionAffinity": "None",
                     "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}}


def kubernetes_endpoints(ip: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}


def kubernetes_endpoint_slice(ip: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}


async def _ensure(registry: "Registry", kind: str, namespace: str | None, obj: dict[str, Any]) -> None:
    res = registry.resources.by_kind(kind, "")
    assert res is not None
    try:
        await registry.create(res, namespace, obj)
    except errors.AlreadyExistsError:
        pass


async def ensure_system_objects(registry: "Registry", *, port: int, advertise_address: str = "",
                                bind_address: str = "127.0.0.1") -> None:
    for name in SYSTEM_NAMESPACES:
        await _ensure(registry, "Namespace", None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await bootstrapreconcile.ensure_policy(registry)  # the default RBAC roles and bindings
    await _ensure(registry, "Secret", kubeletauth.SECRET_NAMESPACE, kubeletauth.secret_body(kubeletauth.new_token()))
    try:
        await _ensure(registry, "Service", "default", kubernetes_service(registry.settings.service_cidr, port))
        await _keep_service_ports(registry, port)
    except errors.InvalidError as e:  # e.g. someone else holds the first service IP
        log.warning("cannot create the default/kubernetes Service: %s", e.message)
    ip = advertised_ip(advertise_address, bind_address)
    if ip is None:
        return
    await _keep(registry, "Endpoints", "", kubernetes_endpoints(ip, port), ("subsets",))
    await _keep(registry, "EndpointSlice", "discovery.k8s.io", kubernetes_endpoint_slice(ip, port),
                ("addressType", "endpoints", "ports"))


async def _keep_service_ports(registry: "Registry", port: int) -> None:
    """Put default/kubernetes' ports back (an API server restarted with TLS moves targetPort), as
    Kubernetes' master service reconciler does; everything else of the Service is left alone."""
    res = registry.resources.by_kind("Service", "")
    assert res is not None
    try:
        current = (await registry.get(res, "default", "kubernetes")).obj
    except errors.NotFoundError:
        return
    ports = kubernetes_service(registry.settings.service_cidr, port)["spec"]["ports"]
    if (current.get("spec") or {}).get("ports") != ports:
        await registry.update(res, "default", "kubernetes", {**current, "spec": {**current["spec"], "ports": ports}})


async def _keep(registry: "Registry", kind: str, group: str, desired: dict[str, Any], fields: tuple[str, ...]) -> None:
    """Create ``default/kubernetes`` of ``kind``, or put ``fields`` back to ``desired``."""
    res = registry.resources.by_kind(kind, group)
    assert res is not None
    try:
        current = (await registry.get(res, "default", "kubernetes")).obj
    except errors.NotFoundError:
        try:
            await registry.create(res, "default", desired)
        except errors.AlreadyExistsError:
            pass
        return
    labels = (current.get("metadata") or {}).get("labels") or {}
    wanted_labels = desired["metadata"]["labels"]
    if any(current.get(f) != desired[f] for f in fields) or any(labels.get(k) != v for k, v in wanted_labels.items()):
        meta = dict(current.get("metadata") or {}, labels={**labels, **wanted_labels})
        await registry.update(res, "default", "kubernetes", {**current, **{f: desired[f] for f in fields}, "metadata": meta})


async def reconcile_forever(registry: "Registry", *, interval: float = 10.0, repair_interval: float = 60.0,
                            **kw: Any) -> None:
    """Keep the system objects in place (Kubernetes' reconcilers run every 10 s), and the Service
    allocations in step with the Services."""
    repair = asyncio.create_task(AllocationRepair(registry, registry.allocations, interval=repair_interval).run(),
                                 name="service-allocation-repair")
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                await ensure_system_objects(registry, **kw)
            except errors.ApiError as e:
                log.warning("reconciling the system objects failed: %s", e.message)
    finally:
        repair.cancel()
