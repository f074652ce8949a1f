"""The simulated kubelet: many Nodes in one process, pods that run without containers (like kwok).

``minik8s kubelet --simulated --node-name NAME [--count N] [--capacity cpu=8,memory=32Gi,pods=110]``

Data flow:

    start: node informer (all Nodes) synced -> pod CIDRs for our nodes (kept if a Node already has
           one, else free subnets of cluster_cidr) -> register each Node (create, or on restart
           patch labels + status back to Ready) and create/renew its Lease, 32 requests at a time
    pods:  ONE pod informer for every node of the process (fieldSelector spec.nodeName!=, all
           namespaces) -> handler keeps only pods on our nodes, re-learns their podIPs (PodIPAM)
           -> work queue (key ns/name) -> Controller workers -> reconcile:
             deletionTimestamp set      -> (finalizers pending: status phase Failed, containers
                                           terminated 137, simexit.killed) then DELETE
                                           gracePeriodSeconds=0 + uid precondition, free IP
             Succeeded / Failed          -> leave it
             otherwise                   -> running_status(...) -> simexit.finish(...) (finite
                                            containers terminate, restart or end the pod) and PUT
                                            pods/{name}/status only if it differs (resourceVersion
                                            precondition); look again when the next container exits
    heartbeats: one task per node, started spread over the interval, each renewing the node's
           Lease in kube-node-lease every lease_renew_interval (bounded by the same semaphore),
           re-asserting the Node's status when it shows anything but Ready (e.g. after the node
           lifecycle controller marked it Unknown) and refreshing it every node_status_interval;
           a Node deleted by someone is registered again.
    metrics: with ``--healthz-port``, GET /healthz and /metrics there (machinery.healthz: the pod start
           metrics of kubelet.metrics, as a Docker kubelet reports them, and the process collectors)
    SIGTERM: stop renewing and leave: the Nodes and pods stay, their Leases expire, and the node
           lifecycle controller decides what happens next.

Simulated containers run forever unless they are finite (``kubelet.simexit``): the annotations
``simulated.minik8s.io/exit-after`` / ``exit-code`` (per pod, or per container with ``.<name>``) or a
recognisably finite command (``sleep N``, ``true``, ``false``, ``sh -c "...; exit N"``) make them
exit; restartPolicy then decides between a restart and a finished pod (Succeeded / Failed), so
Jobs run on simulated nodes. There is no admission (a pod bound here runs even if it exceeds the capacity: the
scheduler is the one that must not overcommit), no events and no probes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kubelet.nodestatus import (
    DEFAULT_CAPACITY, NODE_LEASE_DURATION_SECONDS, NODE_LEASE_NAMESPACE, NodeIdentity, allocate_pod_cidrs,
    lease_body, new_node, node_internal_ip, node_names, node_spec_patch, node_status, parse_capacity,
    simulated_local_path_dir, status_needs_update,
)
from kubelet.metrics import PodStartTracker
from kubelet.podstatus import PodIPAM, needs_ip, running_status, same_status
from kubelet.simexit import finish, killed
from machinery import errors
from machinery.client import ApiClient, default_user_agent
from machinery.controller import Controller, Result
from machinery.healthz import serve_healthz
from machinery.informer import Informer, object_key, split_key
from machinery.kubeconfig import ClientConfig
from machinery.process import run_until_signalled

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEASES = ("coordination.k8s.io/v1", "leases")
BOUND_PODS = "spec.nodeName!="


@dataclass
class SimulatedKubeletSettings:
    server: str | ClientConfig  # a URL, or a kubeconfig's address and credential
    node_name: str
    count: int = 1
    capacity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    lease_renew_interval: float = 10.0
    node_status_interval: float = 60.0  # full status refresh (lastHeartbeatTime) even if nothing changed
    lease_duration_seconds: int = NODE_LEASE_DURATION_SECONDS
    cluster_cidr: str = "10.244.0.0/16"  # node pod CIDRs are carved out of this
    node_cidr_mask_size: int = 24  # smaller subnets are used when the cluster CIDR runs short
    node_ip_base: str = "10.0.0.0"  # InternalIPs: this + the pod CIDR's offset in cluster_cidr + 1
    workers: int = 8
    max_concurrent_requests: int = 32
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 0  # GET /healthz and /metrics (kubelet_pod_start_*, process); 0: none

    @property
    def names(self) -> list[str]:
        return node_names(self.node_name, self.count)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SimulatedKubelet:
    """The nodes of one process. ``run(stop)`` until ``stop`` is set; ``registered`` tells when ready."""

    def __init__(self, client: ApiClient, settings: SimulatedKubeletSettings) -> None:
        self.client = client
        self.settings = settings
        self.names = settings.names
        self.idents: dict[str, NodeIdentity] = {}
        self.ipam = PodIPAM()
        self.nodes = Informer.for_kind(client, "nodes")
        self.pods = Informer.for_kind(client, "pods", field_selector=BOUND_PODS)
        self.controller: Controller[str] = Controller("simulated-kubelet", self.reconcile, workers=settings.workers)
        self.registered = asyncio.Event()
        self.registration_seconds = 0.0
        self.status_writes = 0
        self._sem = asyncio.Semaphore(settings.max_concurrent_requests)
        self._last_status: dict[str, float] = {}
        self._node_uids: dict[str, str] = {}
        self._leases: dict[str, Obj | None] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._fresh: set[str] = set()  # nodes created by this process whose Lease is not written yet
        self._heartbeats: list[asyncio.Task[None]] = []
        self.starts = PodStartTracker()  # kubelet_pod_start_* as a Docker kubelet reports them

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        self._tasks.append(self.nodes.start())
        controller_task: asyncio.Task[None] | None = None
        try:
            work = asyncio.create_task(self._start())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({work, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not work.done():
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                return
            work.result()
            controller_task = asyncio.create_task(self.controller.run())
            await stop.wait()
        finally:
            # Stop renewing first: from here on the leases just expire.
            for t in self._heartbeats:
                t.cancel()
            await asyncio.gather(*self._heartbeats, return_exceptions=True)
            if controller_task is not None:
                await self.controller.stop(timeout_s=5.0)
                await asyncio.gather(controller_task, return_exceptions=True)
            self.nodes.stop()
            self.pods.stop()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            log.info("stopped; %d node(s) left to their leases", len(self.names))

    async def _start(self) -> None:
        started = time.monotonic()
        await self.nodes.wait_synced()
        self._plan_identities()
        await asyncio.gather(*(self._register(name) for name in self.names))
        # Pods: the handlers see the initial list (and re-reserve its IPs) before any worker
        # runs, so a restarted kubelet never hands out an address a running pod still has.
        self.pods.add_handler(self._on_pod, lambda _old, new: self._on_pod(new), self._on_pod_deleted)
        self._tasks.append(self.pods.start())
        await self.pods.wait_synced()
        self.registration_seconds = time.monotonic() - started
        interval = self.settings.lease_renew_interval
        n = len(self.names)
        for i, name in enumerate(self.names):
            self._heartbeats.append(asyncio.create_task(self._heartbeat(name, offset=interval * (i + 1) / n),
                                                        name=f"heartbeat-{name}"))
        log.info("registered %d node(s) in %.2fs", n, self.registration_seconds)
        self.registered.set()

    def _plan_identities(self) -> None:
        s = self.settings
        existing: dict[str, str] = {}
        used: list[str] = []
        for node in self.nodes.list():
            cidr = (node.get("spec") or {}).get("podCIDR")
            name = (node.get("metadata") or {}).get("name")
            if cidr:
                used.append(cidr)
                if name in self.names:
                    existing[name] = cidr
        fresh = allocate_pod_cidrs([n for n in self.names if n not in existing], used=used,
                                   cluster_cidr=s.cluster_cidr, mask_size=s.node_cidr_mask_size)
        for name in self.names:
            cidr = existing.get(name) or fresh[name]
            ip = node_internal_ip(cidr, cluster_cidr=s.cluster_cidr, node_ip_base=s.node_ip_base)
            self.idents[name] = NodeIdentity(name=name, pod_cidr=cidr, internal_ip=ip, capacity=dict(s.capacity),
                                             local_path_dir=simulated_local_path_dir(name))
            self.ipam.add_node(name, cidr)

    # ------------------------------------------------------------------ nodes and leases
    async def _retrying(self, what: str, fn: Any) -> Any:
        delay = self.settings.retry_initial_s
        while True:
            try:
                async with self._sem:
                    return await fn()
            except (errors.InvalidError, errors.BadRequestError):
                raise  # our own mistake: retrying will not help
            except errors.ApiError as e:
                log.warning("%s failed: %s; retrying in %.1fs", what, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    async def _register(self, name: str) -> None:
        await self._retrying(f"registering node {name}", lambda: self._register_once(name))
        await self._retrying(f"creating lease of {name}", lambda: self._renew(name))

    async def _register_once(self, name: str) -> None:
        ident = self.idents[name]
        existing = self.nodes.get(name)
        if existing is None:
            try:
                created = await self.client.create("nodes", new_node(ident, now=_now()))
                self._node_uids[name] = str(created["metadata"]["uid"])
                self._last_status[name] = time.monotonic()
                self._fresh.add(name)
                return
            except errors.AlreadyExistsError:
                existing = await self.client.get("nodes", name)
        self._node_uids[name] = str(existing["metadata"]["uid"])
        patch = node_spec_patch(ident, existing)
        if patch:
            await self.client.patch("nodes", name, patch)
        await self._write_status(name, existing)

    async def _write_status(self, name: str, node: Obj) -> None:
        status = node_status(self.idents[name], now=_now(), current=node.get("status") or {})
        await self.client.patch("nodes", name, {"status": status}, subresource="status")
        self._last_status[name] = time.monotonic()

    async def _renew(self, name: str) -> None:
        """Write the node's Lease with renewTime now (create it if missing); CAS on resourceVersion."""
        node = self.nodes.get(name) or {"metadata": {"name": name, "uid": self._node_uids.get(name)}}
        duration = self.settings.lease_duration_seconds
        for _ in range(3):
            current = self._leases.get(name)
            if current is None and name in self._fresh:
                # A Node registered just now has no Lease yet: create it without reading first.
                self._fresh.discard(name)
                try:
                    self._leases[name] = await self.client.create(
                        LEASES, lease_body(node, now=_now(), duration_s=duration), namespace=NODE_LEASE_NAMESPACE)
                    return
                except errors.AlreadyExistsError:
                    pass
            if current is None:
                try:
                    current = await self.client.get(LEASES, name, namespace=NODE_LEASE_NAMESPACE)
                except errors.NotFoundError:
                    try:
                        self._leases[name] = await self.client.create(
                            LEASES, lease_body(node, now=_now(), duration_s=duration), namespace=NODE_LEASE_NAMESPACE)
                        return
                    except errors.AlreadyExistsError:
                        continue
            try:
                self._leases[name] = await self.client.update(
                    LEASES, lease_body(node, now=_now(), current=current, duration_s=duration),
                    namespace=NODE_LEASE_NAMESPACE)
                return
            except (errors.ConflictError, errors.NotFoundError):
                self._leases[name] = None  # someone else wrote it: read it again
        raise errors.ConflictError(message=f"lease {name}: too many concurrent writers")

    async def _heartbeat(self, name: str, *, offset: float) -> None:
        s = self.settings
        await asyncio.sleep(offset)
        while True:
            started = time.monotonic()
            try:
                async with self._sem:
                    await self._renew(name)
                    node = self.nodes.get(name)
                    if node is None and self.nodes.has_synced:
                        log.warning("node %s is gone; registering it again", name)
                        self._leases.pop(name, None)
                        await self._register_once(name)
                    elif node is not None and (
                            status_needs_update(self.idents[name], node)
                            or time.monotonic() - self._last_status.get(name, 0.0) >= s.node_status_interval):
                        await self._write_status(name, node)
            except errors.ApiError as e:
                log.warning("heartbeat of node %s failed: %s", name, e)
            await asyncio.sleep(max(0.0, s.lease_renew_interval - (time.monotonic() - started)))

    # ------------------------------------------------------------------ pods
    def _on_pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self.idents:
            return
        ip = (pod.get("status") or {}).get("podIP")
        uid = (pod.get("metadata") or {}).get("uid")
        if ip and uid and needs_ip(pod):
            self.ipam.reserve(node, ip, uid)
        self.starts.seen(pod)
        self.starts.observed(pod)
        self.controller.enqueue(object_key(pod))

    def _on_pod_deleted(self, pod: Obj) -> None:
        if (pod.get("spec") or {}).get("nodeName") in self.idents:
            uid = (pod.get("metadata") or {}).get("uid")
            if uid:
                self.ipam.release(uid)
                self.starts.forget(uid)

    async def reconcile(self, key: str) -> Result | None:
        pod = self.pods.get(key)
        if pod is None:
            return None
        meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        node = spec.get("nodeName")
        ident = self.idents.get(node or "")
        if ident is None:
            return None
        namespace, name = split_key(key)
        uid = str(meta.get("uid") or "")
        if meta.get("deletionTimestamp"):
            if meta.get("finalizers") and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"):
                # Someone waits for this pod's end (e.g. the Job controller's finalizer): say how it ended.
                try:
                    await self.client.update_status("pods", {**pod, "status": killed(pod, _now())},
                                                    namespace=namespace)
                except (errors.ConflictError, errors.NotFoundError):
                    return None  # a newer version is on its way
            await self.finish_delete(namespace, name, uid=uid)
            return None
        status = pod.get("status") or {}
        if status.get("phase") in ("Succeeded", "Failed"):
            return None
        if needs_ip(pod):
            current_ip = status.get("podIP")
            if current_ip and self.ipam.reserve(ident.name, current_ip, uid):
                ip: str | None = current_ip
            else:
                ip = self.ipam.allocate(ident.name, uid)
            if ip is None:
                log.warning("pod %s: no free IP left in %s (node %s)", key, ident.pod_cidr, ident.name)
                return Result.after(5.0)
        else:
            ip = ident.internal_ip
        now = _now()
        desired, wake = finish(pod, running_status(pod, pod_ip=ip, host_ip=ident.internal_ip, now=now), now)
        again = Result.after(wake) if wake is not None else None
        if same_status(status, desired):
            return again
        body = {**pod, "status": desired}  # a shallow copy: the cached pod itself is not touched
        self.starts.writing(uid, status, desired)
        try:
            await self.client.update_status("pods", body, namespace=namespace)
            self.status_writes += 1
        except (errors.ConflictError, errors.NotFoundError):
            pass  # a newer version (or its deletion) is on its way through the informer
        return again


    async def finish_delete(self, namespace: str | None, name: str, *, uid: str) -> bool:
        """No containers to stop: remove a terminating pod now (grace 0); True if it was removed.

        The uid precondition keeps a new pod that took the name from being deleted by mistake.
        """
        removed = False
        try:
            await self.client.delete("pods", name, namespace=namespace, grace_period_seconds=0,
                                     preconditions={"uid": uid})
            removed = True
        except errors.NotFoundError:
            pass
        except errors.ConflictError:
            log.info("pod %s/%s is no longer uid %s; not deleting it", namespace, name, uid)
        self.ipam.release(uid)
        return removed


async def main(settings: SimulatedKubeletSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (forever if None)."""
    stop = stop or asyncio.Event()
    async with ApiClient(settings.server, user_agent=default_user_agent("kubelet")) as client:
        health = await serve_healthz(settings.healthz_bind_address, settings.healthz_port, {}, client=client) \
            if settings.healthz_port else None
        try:
            await SimulatedKubelet(client, settings).run(stop)
        finally:
            if health is not None:
                await health.cleanup()


def run(settings: SimulatedKubeletSettings) -> None:
    """``main`` in a fresh event loop; SIGTERM and SIGINT end it cleanly."""
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["SimulatedKubelet", "SimulatedKubeletSettings", "main", "parse_capacity", "run"]
