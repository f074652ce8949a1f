"""The endpoints controller: one ``Endpoints`` object per Service with a selector.

Data flow (Kubernetes' pkg/controller/endpoint): the services, pods and endpoints informers ->
handlers enqueue ``namespace/name`` of every Service a changed pod matches (before and after the
change), of an added, changed or deleted Service, and of a deleted Endpoints whose Service is
there (so it is made again) -> ``reconcile(key)`` (Kubernetes' ``syncService``):

- Service gone -> delete the Endpoints of that name (Kubernetes' controller does this itself);
- Service of type ExternalName, or without a selector -> nothing (the latter's Endpoints are the
  user's, made by hand for backends outside the cluster);
- else ``desired_subsets(service, pods)`` (pure) -> compare with the cached Endpoints -> create
  or update only when subsets or labels differ, so an unchanged world writes nothing.

An Endpoints that is added or changed is not looked at, as in Kubernetes (its informer has only a
delete handler): users create Endpoints by hand, often before their Service, and one must not be
deleted because its Service is not there yet. Orphans left while the controller was down are
found once at start (``check_leftover_endpoints``, Kubernetes' ``checkLeftoverEndpoints``): every
cached Endpoints is looked at, except a leader-election record (``LEADER_ANNOTATION``), which
never has a Service.

The pure part follows Kubernetes: a pod belongs in the Endpoints when it has an IP, is not
terminating (unless ``publishNotReadyAddresses``) and is not finished for its restart policy; it
goes under ``addresses`` when its Ready condition is True (or the Service publishes not-ready
addresses), else under ``notReadyAddresses``; each Service port's ``targetPort`` is resolved per
pod (a number, or a named container port of the same protocol; a pod where a name does not
resolve offers no address for that port); addresses offering the same set of ports are packed
into one subset (``RepackSubsets``) and everything is sorted, so the result is deterministic.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable

from controllers.manager import ControllerContext
from machinery import errors
from machinery.controller import Controller, Result
from machinery.informer import Informer, object_key, split_key

from .podendpoints import (HEADLESS_LABEL, find_port, is_pod_ready, selector_matches,  # noqa: F401 (re-exported)
                           should_pod_be_in_endpoints, with_headless_label)

log = logging.getLogger(__name__)

Obj = dict[str, Any]

SERVICES = ("v1", "services")
PODS = ("v1", "pods")
ENDPOINTS = ("v1", "endpoints")

# client-go's resourcelock.LeaderElectionRecordAnnotationKey: Endpoints-based leader election keeps its
# record there, on an Endpoints without a Service (deleting it would force a new election).
LEADER_ANNOTATION = "control-plane.alpha.kubernetes.io/leader"
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"
MAX_CAPACITY = 1000  # Kubernetes truncates an Endpoints object to 1000 addresses


# ---------------------------------------------------------------------------------- pure part
def endpoint_address(pod: Obj, service: Obj) -> Obj:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    status = pod.get("status") or {}
    ip = status.get("podIP") or ((status.get("podIPs") or [{}])[0].get("ip"))
    addr: Obj = {"ip": ip}
    svc_meta = service.get("metadata") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc_meta.get("name") \
            and meta.get("namespace") == svc_meta.get("namespace"):
        addr["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        addr["nodeName"] = spec["nodeName"]
    addr["targetRef"] = {"kind": "Pod", "namespace": meta.get("namespace"), "name": meta.get("name"),
                         "uid": meta.get("uid")}
    return addr


def _port_key(p: Obj) -> tuple[str, int, str]:
    return (p.get("name") or "", int(p.get("port") or 0), p.get("protocol") or "TCP")


def _address_key(a: Obj) -> tuple[str, str]:
    return (a.get("ip") or "", (a.get("targetRef") or {}).get("uid") or "")


def desired_subsets(service: Obj, pods: list[Obj]) -> list[Obj]:
    """The ``subsets`` of the Endpoints of ``service``, given the pods of its namespace."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    service_ports = spec.get("ports") or []
    headless = spec.get("clusterIP") == "None"
    # frozenset of ports -> (ready addresses, not-ready addresses)
    groups: dict[tuple[tuple[str, int, str], ...], tuple[list[Obj], list[Obj]]] = {}
    ports_of: dict[tuple[str, int, str], Obj] = {}
    for pod in pods:
        if not selector_matches(selector, (pod.get("metadata") or {}).get("labels")):
            continue
        if not should_pod_be_in_endpoints(pod, include_terminating=publish_not_ready):
            continue
        ports: list[Obj] = []
        if not service_ports:
            if not headless:
                continue  # a Service with no ports gets addresses only when headless
        else:
            for sp in service_ports:
                number = find_port(pod, sp)
                if number is None:
                    log.debug("pod %s has no port for %s", object_key(pod), sp.get("name") or sp.get("port"))
                    continue
                ep: Obj = {"name": sp.get("name") or "", "port": number, "protocol": sp.get("protocol") or "TCP"}
                if not ep["name"]:
                    del ep["name"]
                if sp.get("appProtocol"):
                    ep["appProtocol"] = sp["appProtocol"]
                ports.append(ep)
            if not ports:
                continue
        key = tuple(sorted({_port_key(p) for p in ports}))
        for p in ports:
            ports_of[_port_key(p)] = p
        ready, not_ready = groups.setdefault(key, ([], []))
        addr = endpoint_address(pod, service)
        (ready if publish_not_ready or is_pod_ready(pod) else not_ready).append(addr)
    subsets: list[Obj] = []
    for key in sorted(groups):
        ready, not_ready = groups[key]
        subset: Obj = {}
        if ready:
            subset["addresses"] = sorted(ready, key=_address_key)
        if not_ready:
            subset["notReadyAddresses"] = sorted(not_ready, key=_address_key)
        if key:
            subset["ports"] = [copy.deepcopy(ports_of[k]) for k in key]
        subsets.append(subset)
    return subsets


def truncate(subsets: list[Obj], limit: int = MAX_CAPACITY) -> tuple[list[Obj], bool]:
    """Keep at most ``limit`` addresses, ready ones first (Kubernetes' ``truncateEndpoints``)."""
    total = sum(len(s.get("addresses") or []) + len(s.get("notReadyAddresses") or []) for s in subsets)
    if total <= limit:
        return subsets, False
    out = [{k: v for k, v in s.items() if k == "ports"} for s in subsets]
    left = limit
    for field in ("addresses", "notReadyAddresses"):
        for s, o in zip(subsets, out):
            take = (s.get(field) or [])[:left]
            left -= len(take)
            if take:
                o[field] = take
    return [o for o in out if o.get("addresses") or o.get("notReadyAddresses")], True


def desired_labels(service: Obj) -> dict[str, str]:
    return with_headless_label(dict((service.get("metadata") or {}).get("labels") or {}), service)


def desired_endpoints(service: Obj, pods: list[Obj], current: Obj | None) -> Obj | None:
    """The Endpoints object to write, or None when ``current`` is already right."""
    subsets, truncated = truncate(desired_subsets(service, pods))
    labels = desired_labels(service)
    annotations = dict(((current or {}).get("metadata") or {}).get("annotations") or {})
    if truncated:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    else:
        annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    if current is not None:
        meta = current.get("metadata") or {}
        if ((current.get("subsets") or []) == subsets and (meta.get("labels") or {}) == labels
                and (meta.get("annotations") or {}) == annotations):
            return None
        body = copy.deepcopy(current)
    else:
        svc_meta = service.get("metadata") or {}
        body = {"apiVersion": "v1", "kind": "Endpoints",
                "metadata": {"name": svc_meta.get("name"), "namespace": svc_meta.get("namespace")}}
    body["metadata"]["labels"] = labels
    if annotations:
        body["metadata"]["annotations"] = annotations
    else:
        body["metadata"].pop("annotations", None)
    body["subsets"] = subsets
    return body


def services_for_pod_change(old: Obj, new: Obj, services_in: Callable[[Obj], list[Obj]]) -> set[str]:
    """Keys of the Services a pod update concerns: those matching it now, and before when its labels
    changed; none when the update is a resync of the same version."""
    if (old.get("metadata") or {}).get("resourceVersion") == (new.get("metadata") or {}).get("resourceVersion"):
        return set()
    keys = set(services_for_pod(new, services_in(new)))
    if (old.get("metadata") or {}).get("labels") != (new.get("metadata") or {}).get("labels"):
        keys |= set(services_for_pod(old, services_in(old)))
    return keys


def services_for_pod(pod: Obj, services: list[Obj]) -> list[str]:
    """Keys of the Services (with selectors) in the pod's namespace whose selector matches it."""
    labels = (pod.get("metadata") or {}).get("labels")
    out = []
    for svc in services:
        sel = (svc.get("spec") or {}).get("selector")
        if sel and selector_matches(sel, labels):
            out.append(object_key(svc))
    return out


# ---------------------------------------------------------------------------------- executor
def follow_pods_of_services(pods: Informer, services: Informer, enqueue: Callable[[str], None]) -> None:
    """The pod handlers of the Endpoints and EndpointSlice controllers: an added, changed or
    deleted pod enqueues the Services of its namespace that select it (before or after)."""
    def services_in(pod: Obj) -> list[Obj]:
        return services.list((pod.get("metadata") or {}).get("namespace"))

    def on_pod(pod: Obj) -> None:
        for key in services_for_pod(pod, services_in(pod)):
            enqueue(key)

    def on_pod_update(old: Obj, new: Obj) -> None:
        for key in services_for_pod_change(old, new, services_in):
            enqueue(key)
    pods.add_handler(on_pod, on_pod_update, on_pod)


class EndpointsController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.services = ctx.informers.informer(SERVICES)
        self.pods = ctx.informers.informer(PODS)
        self.endpoints = ctx.informers.informer(ENDPOINTS)
        self.controller: Controller[str] = Controller("endpoints", self.reconcile, workers=ctx.settings.workers)
        self.services.add_handler(self._on_service, lambda old, new: self._on_service(new), self._on_service)
        follow_pods_of_services(self.pods, self.services, self.controller.enqueue)
        # Deletions only (see the module docstring): an added or changed Endpoints is not looked at.
        self.endpoints.add_handler(on_delete=self._on_endpoints_delete)

    def _on_service(self, svc: Obj) -> None:
        self.controller.enqueue(object_key(svc))

    def _on_endpoints_delete(self, ep: Obj) -> None:
        # Kubernetes enqueues every deleted Endpoints; without its Service the look would only
        # delete it again (a 404), so only those of an existing Service are looked at (made again).
        key = object_key(ep)
        if self.services.get(key) is not None:
            self.controller.enqueue(key)

    def check_leftover_endpoints(self) -> None:
        """Look once at every cached Endpoints, to delete those whose Service went while we were down.

        Kubernetes' ``checkLeftoverEndpoints``, run at start: in steady state the Service's deletion
        deletes them. A leader-election record is skipped: it never has a Service.
        """
        for ep in self.endpoints.list():
            if LEADER_ANNOTATION in ((ep.get("metadata") or {}).get("annotations") or {}):
                continue
            self.controller.enqueue(object_key(ep))

    async def reconcile(self, key: str) -> Result | None:
        namespace, name = split_key(key)
        service = self.services.get(key)
        current = self.endpoints.get(key)
        if service is None:
            # The Service was deleted (or, at start, is missing): its Endpoints go, as in Kubernetes,
            # also when the cache has not seen them yet (just created for it). The uid of a cached
            # one is the precondition, so one made anew meanwhile, which the cache missed, stays.
            uid = ((current or {}).get("metadata") or {}).get("uid")
            try:
                await self.client.delete(ENDPOINTS, name, namespace=namespace,
                                         preconditions={"uid": uid} if uid else None)
            except (errors.NotFoundError, errors.ConflictError):
                pass
            return None
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return None  # a DNS alias: no endpoints (Kubernetes issue 105986)
        selector = spec.get("selector")
        if not selector:
            return None  # a Service without a selector: its Endpoints are managed by the user
        body = desired_endpoints(service, self.pods.list(namespace), current)
        if body is None:
            return None
        try:
            if current is None:
                await self.client.create(ENDPOINTS, body, namespace=namespace)
            else:
                await self.client.update(ENDPOINTS, body, namespace=namespace)
        except errors.NotFoundError:
            if current is not None:
                return Result.after(0.1)  # deleted under us: create it on the next look
            raise
        return None

    async def run(self) -> None:
        await self.services.wait_synced()
        await self.pods.wait_synced()
        await self.endpoints.wait_synced()
        self.check_leftover_endpoints()
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    ctl = EndpointsController(ctx)
    ctx.informers.start()
    await ctl.run()
