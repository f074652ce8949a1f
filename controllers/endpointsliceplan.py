"""What the EndpointSlices of one Service should be (pure), after Kubernetes' endpointslice reconciler.

Data flow: a Service with a selector, the pods of its namespace and the slices this controller
already keeps for it -> ``plan(service, pods, existing)`` -> ``SlicePlan``: slices to create (with
``generateName``), to update (the existing object with new endpoints/ports/labels) and to delete.

Which pods and which ports: the same rules as the Endpoints (``controllers.endpoints``): a pod with
an IP that is not finished for its restart policy; each Service port's ``targetPort`` resolved per
pod (pods offering different port sets go to different slices). Unlike Endpoints, a terminating
pod stays, with ``ready: false``, ``serving`` its readiness and ``terminating: true``, as kube-proxy
needs for graceful termination. At most 100 endpoints per slice (``maxEndpointsPerSlice``). A
Service with no endpoint keeps one empty slice (Kubernetes' placeholder). Existing slices are
reused for the same port set, so a change of one pod updates one slice and an unchanged world
writes nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from controllers.podendpoints import (find_port, is_pod_ready, selector_matches, should_pod_be_in_endpoints,
                                     with_headless_label)

Obj = dict[str, Any]

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100
API_VERSION = "discovery.k8s.io/v1"

PortSet = tuple[tuple[str, int, str], ...]


@dataclass
class SlicePlan:
    create: list[Obj] = field(default_factory=list)
    update: list[Obj] = field(default_factory=list)
    delete: list[Obj] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.create or self.update or self.delete)


def slice_labels(service: Obj) -> dict[str, str]:
    """The Service's labels, plus the two that say whose slice it is (and headless, as Kubernetes)."""
    meta = service.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = str(meta.get("name"))
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    return with_headless_label(labels, service)


def _endpoint(pod: Obj, service: Obj) -> Obj:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    ip = status.get("podIP") or ((status.get("podIPs") or [{}])[0].get("ip"))
    terminating = bool(meta.get("deletionTimestamp"))
    ready = is_pod_ready(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Obj = {"addresses": [ip], "conditions": {
        "ready": publish or (ready and not terminating), "serving": publish or ready, "terminating": terminating}}
    svc_meta = service.get("metadata") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc_meta.get("name"):
        endpoint["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        endpoint["nodeName"] = spec["nodeName"]
    endpoint["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
                             "uid": meta.get("uid")}
    return endpoint


def _ports(pod: Obj, service: Obj) -> list[Obj] | None:
    """The pod's slice ports; None when the pod offers none of them (it is left out)."""
    service_ports = (service.get("spec") or {}).get("ports") or []
    out: list[Obj] = []
    for sp in service_ports:
        number = find_port(pod, sp)
        if number is None:
            continue
        port: Obj = {"name": sp.get("name") or "", "port": number, "protocol": sp.get("protocol") or "TCP"}
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        out.append(port)
    if service_ports and not out:
        return None
    return sorted(out, key=lambda p: (p["name"], p["port"], p["protocol"]))


def _port_set(ports: list[Obj]) -> PortSet:
    return tuple((str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP")) for p in ports)


def desired_groups(service: Obj, pods: list[Obj]) -> dict[PortSet, tuple[list[Obj], list[Obj]]]:
    """Port set -> (its ports, its endpoints sorted by address)."""
    selector = (service.get("spec") or {}).get("selector") or {}
    groups: dict[PortSet, tuple[list[Obj], list[Obj]]] = {}
    for pod in pods:
        if not selector_matches(selector, (pod.get("metadata") or {}).get("labels")):
            continue
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = _ports(pod, service)
        if ports is None:
            continue
        _, endpoints = groups.setdefault(_port_set(ports), (ports, []))
        endpoints.append(_endpoint(pod, service))
    for _, endpoints in groups.values():
        endpoints.sort(key=lambda e: (e["addresses"][0], e["targetRef"].get("uid") or ""))
    return groups


def _owner(service: Obj) -> Obj:
    meta = service.get("metadata") or {}
    return {"apiVersion": "v1", "kind": "Service", "name": meta.get("name"), "uid": meta.get("uid"),
            "controller": True, "blockOwnerDeletion": True}


def _new_slice(service: Obj, ports: list[Obj], endpoints: list[Obj]) -> Obj:
    meta = service.get("metadata") or {}
    return {"apiVersion": API_VERSION, "kind": "EndpointSlice",
            "metadata": {"generateName": f"{meta.get('name')}-", "namespace": meta.get("namespace"),
                         "labels": slice_labels(service), "ownerReferences": [_owner(service)]},
            "addressType": "IPv4", "endpoints": copy.deepcopy(endpoints), "ports": copy.deepcopy(ports)}


def plan(service: Obj, pods: list[Obj], existing: list[Obj]) -> SlicePlan:
    groups = desired_groups(service, pods)
    chunks: list[tuple[PortSet, list[Obj], list[Obj]]] = []
    for key in sorted(groups):
        ports, endpoints = groups[key]
        for i in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
            chunks.append((key, ports, endpoints[i:i + MAX_ENDPOINTS_PER_SLICE]))
    if not chunks:
        chunks.append(((), [], []))  # the placeholder: a Service with no endpoint has one empty slice
    reusable: dict[PortSet, list[Obj]] = {}
    for s in sorted(existing, key=lambda s: str((s.get("metadata") or {}).get("name"))):
        reusable.setdefault(_port_set(s.get("ports") or []), []).append(s)
    out = SlicePlan()
    labels = slice_labels(service)
    for key, ports, endpoints in chunks:
        candidates = reusable.get(key) or []
        if not candidates:
            out.create.append(_new_slice(service, ports, endpoints))
            continue
        current = candidates.pop(0)
        meta = current.get("metadata") or {}
        if ((current.get("endpoints") or []) == endpoints and (current.get("ports") or []) == ports
                and (meta.get("labels") or {}) == labels and current.get("addressType") == "IPv4"):
            continue
        body = copy.deepcopy(current)
        body["metadata"]["labels"] = labels
        body["endpoints"] = copy.deepcopy(endpoints)
        body["ports"] = copy.deepcopy(ports)
        out.update.append(body)
    for leftovers in reusable.values():
        out.delete += leftovers
    return out
