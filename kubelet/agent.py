"""The Docker kubelet: one Node whose pods run as Docker containers.

``minik8s kubelet --server URL --node-name NAME [--capacity ...] [--pod-network-subnet ...]``

Data flow:

    start: runtime.version() / ensure_network(pod network)   (engine down: node NotReady, retried)
           register the Node (nodestatus helpers; InternalIP = the pod network's gateway) + Lease
    pods:  informer (fieldSelector spec.nodeName=NAME) -> key ns/name -> Controller -> reconcile:
             runtime.list(pod uid label) -> containers
             deletionTimestamp  -> plan_deletion: stop (grace: SIGTERM, then SIGKILL), remove,
                                   DELETE gracePeriodSeconds=0 with a uid precondition; the
                                   sandbox (the pod IP) goes sandbox_linger seconds later
             otherwise          -> podsync.plan -> execute (sandbox with the pod's DNS from
                                   kubelet.poddns and its Service table from kubelet.serviceproxy
                                   before any container; pull; create+start with the environment
                                   and mounts of kubelet.containerconfig) ->
                                   list again -> podsync.pod_status -> PUT pods/{name}/status if
                                   it changed -> requeue after sync_interval (Docker's state is
                                   polled, like the kubelet's PLEG relist)
    services: Services + EndpointSlices (traffic.watch) -> kubelet.serviceproxy rewrites the
           ClusterIP table of every pod of this node and serves NodePorts on the Node's InternalIP
    heartbeat: Lease renewal every lease_renew_interval; the engine is pinged every
           runtime_check_interval and the Node's Ready condition follows it (never crashes).
    housekeeping: containers on this node whose pod uid is not in the informer are removed.
    shutdown: SIGTERM with ``shutdown_grace_period`` > 0 -> Node NotReady -> every pod's containers
           stopped -> pods Failed (reason Terminated, podsync.shutdown_status) -> containers removed
           (Kubernetes' graceful node shutdown); with 0 the containers keep running and the next
           kubelet adopts them.

Restart-safety: all the state that matters is in Docker (labels: pod uid, container name,
restart count), so a new kubelet process adopts running containers as they are.

Probes: one ``kubelet.probes.ProbeManager``; every sync hands it the pod's current containers
and IP, and ``probe_results(pod_uid, container)`` answers ``(ready, liveness_failed)`` from it
(ready None: no readiness probe, ready when running and started). A changed result enqueues the
pod; each failed run is a Warning ``Unhealthy`` event; a failed liveness/startup probe stops the
container (event ``Killing``) and the restart policy brings the next one.

Logs: ``kubelet.server`` on ``address:kubelet_port`` (port published in the Node's
``status.daemonEndpoints.kubeletEndpoint.Port``; the apiserver's pods/log proxies to it). It
resolves a pod's container from this kubelet's informer and the engine: the instance with the
highest restart count is the current one, the one before it the previous.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import os
import shutil
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from kubelet import podsync
from kubelet.containerconfig import ConfigError, ContainerConfig
from kubelet.localvolumes import LocalVolumeReclaimer
from kubelet.volumes import MountError
from kubelet.volumes.emptydir import evicted_status
from kubelet.volumes.localpath import local_path_dir
from kubelet.poddns import pod_dns
from kubelet.serviceproxy import PodServiceProxy
from kubelet.probes import ProbeEvent, ProbeManager
from kubelet.nodestatus import (
    DEFAULT_CAPACITY, DEFAULT_ROOT_DIR, NODE_LEASE_DURATION_SECONDS, NODE_LEASE_NAMESPACE, NodeIdentity, lease_body,
    new_node, node_spec_patch, node_status,
)
from kubelet.server import LogsUnavailable, start_kubelet_server, waiting_to_start
from kubelet.statscollect import StatsCollector
from kubelet.cri import (
    LABEL_NODE, LABEL_POD_UID, ContainerInfo, ContainerRuntime, ContainerRuntimeError, ContainerSpec,
    ImageNotPresent, ImagePullError, RuntimeUnavailable,
)
from kubelet.runtime import DEFAULT_DOCKER_URL, DEFAULT_SANDBOX_IMAGE, DockerRuntime
from machinery import errors
from machinery.client import ApiClient, default_user_agent
from machinery.controller import Controller, Result
from machinery.events import EventRecorder
from machinery.informer import Informer, object_key, split_key
from machinery.process import run_until_signalled
from machinery.sharedinformers import InformerFactory
from traffic.proxy.server import Proxier
from traffic.proxy.userspace import RelaySettings
from traffic.watch import ServiceWatch
from machinery.quantity import parse_quantity, to_bytes

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEASES = ("coordination.k8s.io/v1", "leases")


@dataclass
class KubeletSettings:
    server: str
    node_name: str
    capacity: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CAPACITY))
    runtime_endpoint: str = DEFAULT_DOCKER_URL
    pod_network_name: str = "minik8s-pods"
    pod_network_subnet: str = "172.28.0.0/16"
    sandbox_image: str = DEFAULT_SANDBOX_IMAGE
    data_dir: str = ""  # default: /var/lib/minik8s/kubelet/<node>
    lease_renew_interval: float = 10.0
    lease_duration_seconds: int = NODE_LEASE_DURATION_SECONDS
    node_status_interval: float = 60.0
    runtime_check_interval: float = 5.0
    sync_interval: float = 2.0  # how often a live pod's containers are looked at again
    housekeeping_interval: float = 10.0
    workers: int = 8
    sync: podsync.SyncSettings = field(default_factory=podsync.SyncSettings)
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    address: str = "0.0.0.0"  # where the kubelet's HTTP API (logs) listens
    kubelet_port: int = 10250  # 0: any free port; -1: no HTTP API
    node_ip: str = ""  # the Node's InternalIP; default: see Kubelet.node_address
    # Graceful node shutdown: on SIGTERM, stop every pod's containers within this many seconds,
    # mark the pods Failed (reason Terminated) and remove the containers. 0: leave them running.
    shutdown_grace_period: float = 0.0
    # Docker gives pods addresses from this part of the pod subnet only; default: its lower half
    # (the upper half holds the apiserver's ClusterIPs).
    pod_ip_range: str = ""
    cluster_dns: list[str] = field(default_factory=list)  # the kube-dns ClusterIP; none: the node's resolver
    cluster_domain: str = "cluster.local"
    service_proxy: bool = True  # program ClusterIPs inside the pods (kubelet/serviceproxy.py)
    sandbox_linger: float = 1.0  # seconds a deleted pod's sandbox (its IP) outlives the pod object

    @property
    def pods_dir(self) -> Path:
        return Path(self.data_dir or f"{DEFAULT_ROOT_DIR}/{self.node_name}") / "pods"

    @property
    def local_path_dir(self) -> str:
        """Where the local-path provisioner's volumes of this node live (published on the Node)."""
        return local_path_dir(str(self.pods_dir.parent))


def _now() -> datetime:
    return datetime.now(timezone.utc)


ProbeHook = Callable[[str, str], "tuple[bool | None, bool]"]


class Kubelet:
    """One node. ``run(stop)`` until ``stop`` is set; ``registered`` is set once the Node exists."""

    def __init__(self, client: ApiClient, settings: KubeletSettings, *,
                 runtime: ContainerRuntime | None = None) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.node_name
        self.runtime: ContainerRuntime = runtime or DockerRuntime(settings.runtime_endpoint,
                                                                  sandbox_image=settings.sandbox_image)
        self.pods = Informer.for_kind(client, "pods", field_selector=f"spec.nodeName={self.name}")
        self.controller: Controller[str] = Controller(f"kubelet-{self.name}", self.reconcile, workers=settings.workers)
        self.recorder = EventRecorder(client, "kubelet", host=self.name)
        self.registered = asyncio.Event()
        self.runtime_ok = False
        self._runtime_seen = False  # whether the engine ever answered (first success is no "comeback")
        self.runtime_error = "container runtime not checked yet"
        self.runtime_version = "docker://unknown"
        self.internal_ip = "127.0.0.1"
        self.status_writes = 0
        self.memory: dict[str, podsync.PodMemory] = {}  # pod uid -> memory
        self._uids: dict[str, str] = {}  # key -> uid
        self._network_ready = False
        self._node_uid: str | None = None
        self._lease: Obj | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.probes = ProbeManager(self.runtime, on_change=self._on_probe_change, on_event=self._on_probe_event)
        self.probe_results: ProbeHook = self._probe_results
        self.kubelet_port = 0  # the port the HTTP API listens on (0: none)
        self._server: Any = None
        self._event_tasks: set[asyncio.Task[None]] = set()
        self.shutting_down = False
        self._container_ip = _own_container_ip()
        self._pool = ThreadPoolExecutor(max_workers=max(32, 4 * settings.workers), thread_name_prefix="runtime")
        # Services and EndpointSlices: the in-pod ClusterIP table and the Service variables.
        self.informers = InformerFactory(client)
        self.service_watch = ServiceWatch(self.informers)
        self.service_proxy = PodServiceProxy(self.service_watch, node=self.name, run_blocking=self._rt)
        self.config = ContainerConfig(client, node_name=self.name, node_address=lambda: self.node_address,
                                      services=self.service_watch.services.list, pod_dir=self._pod_dir,
                                      runtime=self.runtime, run_blocking=self._rt,
                                      allocatable=lambda: self.settings.capacity)
        self.reclaimer = LocalVolumeReclaimer(client, self.informers, node_name=self.name,
                                              local_dir=settings.local_path_dir)

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        controller_task: asyncio.Task[None] | None = None
        try:
            await self._check_runtime()
            await self._start_server()
            await self._retrying("registering the node", self._register)
            self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod_deleted)
            self._tasks.append(self.pods.start())
            self.informers.start()
            self._tasks.append(asyncio.create_task(self.reclaimer.run(), name="local-path-reclaimer"))
            if self.settings.service_proxy:
                self._serve_node_ports()
                self._tasks.append(asyncio.create_task(self.service_proxy.run(), name="service-proxy"))
            self._tasks.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
            self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
            await self.pods.wait_synced()
            controller_task = asyncio.create_task(self.controller.run())
            self.registered.set()
            log.info("node %s registered; runtime %s", self.name, "ready" if self.runtime_ok else "down")
            await stop.wait()
            if self.settings.shutdown_grace_period > 0:
                await self.controller.stop(timeout_s=2.0)
                await self.shutdown_node()
        finally:
            for t in self._tasks:
                if t is not None:
                    t.cancel()
            self.pods.stop()
            await self.informers.stop()
            if controller_task is not None:
                await self.controller.stop(timeout_s=2.0)
                controller_task.cancel()
                await asyncio.gather(controller_task, return_exceptions=True)
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.probes.close()
            for et in list(self._event_tasks):
                et.cancel()
            await asyncio.gather(*self._event_tasks, return_exceptions=True)
            if self._server is not None:
                await self._server.cleanup()
                self._server = None
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _serve_node_ports(self) -> None:
        """NodePorts on the Node's InternalIP (kube-proxy's job on a real node), relayed in user
        space; not on a loopback address, which ``minik8s proxy`` serves for the whole host."""
        try:
            address = ipaddress.ip_address(self.node_address)
        except ValueError:
            return
        if address.is_loopback or address.is_unspecified:
            return
        self.service_proxy.nodeports = Proxier(nodeport_addresses=(str(address),), load_balancers=False,
                                               relay_settings=RelaySettings(node=self.name))

    async def _rt(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """A blocking runtime call in the kubelet's own thread pool. Not the loop's default pool:
        a few long ``docker stop`` calls must never starve what else runs in threads there
        (aiohttp resolves the apiserver's host name in it)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    async def _retrying(self, what: str, fn: Callable[[], Any]) -> Any:
        delay = self.settings.retry_initial_s
        while True:
            try:
                return await fn()
            except (errors.InvalidError, errors.BadRequestError):
                raise
            except errors.ApiError as e:
                log.warning("%s failed: %s; retrying in %.1fs", what, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max_s)

    # ------------------------------------------------------------------ runtime health
    async def _check_runtime(self) -> bool:
        """Pings the engine (and makes the pod network once); True when the Ready state changed."""
        was = self.runtime_ok
        try:
            v = await self._rt(self.runtime.version)
            self.runtime_version = f"docker://{v.version}"
            if not self._network_ready:
                net = await self._rt(self.runtime.ensure_network, self.settings.pod_network_name,
                                     self.settings.pod_network_subnet, ip_range=self.pod_ip_range)
                # Docker's bridge gateway is the subnet's first address when none is given.
                self.internal_ip = net.gateway or _first_host(net.subnet) or "127.0.0.1"
                self._network_ready = True
            self.runtime_ok = True
            self.runtime_error = ""
        except ContainerRuntimeError as e:
            self.runtime_ok = False
            self.runtime_error = f"container runtime is down: {e}"
            if isinstance(e, RuntimeUnavailable):
                self._network_ready = False  # the engine may come back without our network
        if was != self.runtime_ok:
            if self.runtime_ok and not self._runtime_seen:
                log.info("container runtime %s is ready", self.runtime_version)
            else:
                log.warning("container runtime %s", "is back" if self.runtime_ok else self.runtime_error)
            self._runtime_seen = self._runtime_seen or self.runtime_ok
            if self.runtime_ok:
                for key in self.pods.keys():
                    self.controller.enqueue(key)
        return was != self.runtime_ok

    # ------------------------------------------------------------------ node and lease
    @property
    def pod_ip_range(self) -> str:
        """Where Docker may put pod IPs: ``--pod-ip-range``, else the subnet's lower half."""
        if self.settings.pod_ip_range:
            return self.settings.pod_ip_range
        net = ipaddress.ip_network(self.settings.pod_network_subnet, strict=False)
        return str(next(net.subnets(prefixlen_diff=1))) if net.prefixlen < net.max_prefixlen else str(net)

    @property
    def node_address(self) -> str:
        """The Node's InternalIP: where the apiserver reaches this kubelet's HTTP API. ``--node-ip``
        when given. Bound to every address: in a container, the address its host name resolves to
        (the container's own, as Kubernetes' kubelet resolves its host name), else the pod
        network's gateway (an address of this host). Bound to one address, that address."""
        if self.settings.node_ip:
            return self.settings.node_ip
        if self.settings.address in ("", "0.0.0.0", "::"):
            return self._container_ip or self.internal_ip
        return self.settings.address

    def _identity(self) -> NodeIdentity:
        return NodeIdentity(name=self.name, pod_cidr=self.settings.pod_network_subnet, internal_ip=self.node_address,
                            capacity=dict(self.settings.capacity), runtime_version=self.runtime_version,
                            os_image="minik8s docker node", kernel_version=os.uname().release, simulated=False,
                            local_path_dir=self.settings.local_path_dir)

    def _node_status(self, current: Obj | None) -> Obj:
        status = node_status(self._identity(), now=_now(), current=current)
        status["daemonEndpoints"] = {"kubeletEndpoint": {"Port": self.kubelet_port}}
        if not self.runtime_ok or self.shutting_down:
            for c in status["conditions"]:
                if c["type"] == "Ready":
                    old = {x.get("type"): x for x in (current or {}).get("conditions") or []}.get("Ready") or {}
                    c.update(status="False", reason="KubeletNotReady",
                             message="node is shutting down" if self.shutting_down else self.runtime_error,
                             lastTransitionTime=old.get("lastTransitionTime") if old.get("status") == "False"
                             else c["lastHeartbeatTime"])
        return status

    async def _register(self) -> None:
        ident = self._identity()
        try:
            body = new_node(ident, now=_now())
            body["status"] = self._node_status(None)
            created = await self.client.create("nodes", body)
            self._node_uid = str(created["metadata"]["uid"])
        except errors.AlreadyExistsError:
            existing = await self.client.get("nodes", self.name)
            self._node_uid = str(existing["metadata"]["uid"])
            patch = node_spec_patch(ident, existing)
            if patch:
                await self.client.patch("nodes", self.name, patch)
            await self._write_node_status(existing)
        await self._renew()

    async def _write_node_status(self, node: Obj | None = None) -> None:
        if node is None:
            node = await self.client.get("nodes", self.name)
        await self.client.patch("nodes", self.name, {"status": self._node_status(node.get("status") or {})},
                                subresource="status")

    async def _renew(self) -> None:
        node = {"metadata": {"name": self.name, "uid": self._node_uid}}
        duration = self.settings.lease_duration_seconds
        for _ in range(3):
            current = self._lease
            if current is None:
                try:
                    current = await self.client.get(LEASES, self.name, namespace=NODE_LEASE_NAMESPACE)
                except errors.NotFoundError:
                    try:
                        self._lease = await self.client.create(
                            LEASES, lease_body(node, now=_now(), duration_s=duration), namespace=NODE_LEASE_NAMESPACE)
                        return
                    except errors.AlreadyExistsError:
                        continue
            try:
                self._lease = await self.client.update(
                    LEASES, lease_body(node, now=_now(), current=current, duration_s=duration),
                    namespace=NODE_LEASE_NAMESPACE)
                return
            except (errors.ConflictError, errors.NotFoundError):
                self._lease = None

    async def _heartbeat(self) -> None:
        s = self.settings
        last_lease = time.monotonic()
        last_status = time.monotonic()
        tick = min(s.lease_renew_interval, s.runtime_check_interval)
        while True:
            await asyncio.sleep(tick)
            try:
                changed = await self._check_runtime()
                now = time.monotonic()
                if now - last_lease >= s.lease_renew_interval - 1e-3:
                    await self._renew()
                    last_lease = now
                if changed or now - last_status >= s.node_status_interval:
                    try:
                        await self._write_node_status()
                    except errors.NotFoundError:
                        log.warning("node %s is gone; registering it again", self.name)
                        self._lease = None
                        await self._register()
                    last_status = now
            except errors.ApiError as e:
                log.warning("heartbeat failed: %s", e)
            except Exception:  # never let the heartbeat die
                log.exception("heartbeat failed")

    # ------------------------------------------------------------------ the HTTP API (logs)
    async def _start_server(self) -> None:
        s = self.settings
        if s.kubelet_port < 0 or self._server is not None:
            return
        try:
            self._server, self.kubelet_port = await start_kubelet_server(
                self.runtime, host=s.address or "0.0.0.0", port=s.kubelet_port, resolve=self.resolve_logs,
                stats=StatsCollector(self.runtime, self.name))
            log.info("kubelet API (logs) on %s:%d", s.address, self.kubelet_port)
        except OSError as e:
            # Pods still run; `kubectl logs` answers 503 (the Node publishes no port).
            log.error("cannot serve the kubelet API on %s:%d: %s; logs are unavailable", s.address, s.kubelet_port, e)
            self.kubelet_port = 0

    async def resolve_logs(self, namespace: str, name: str, container: str) -> tuple[str, str | None]:
        """(current, previous) Docker container of a pod's container, for the log server."""
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise LogsUnavailable(f'pod "{name}" in namespace "{namespace}" is not running on node {self.name}', 404)
        spec, status = pod.get("spec") or {}, pod.get("status") or {}
        inits = {str(c.get("name")) for c in spec.get("initContainers") or []}
        apps = {str(c.get("name")) for c in spec.get("containers") or []}
        if container not in inits | apps:
            raise LogsUnavailable(f"container {container} is not valid for pod {name}", 404)
        uid = str((pod.get("metadata") or {}).get("uid"))
        containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
        ins = podsync.instances(containers, container, init=container not in apps)
        if not ins:
            reason = "ContainerCreating"
            for st in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
                if st.get("name") == container:
                    reason = str(((st.get("state") or {}).get("waiting") or {}).get("reason") or reason)
            raise waiting_to_start(name, container, reason)
        return ins[-1].id, (ins[-2].id if len(ins) >= 2 else None)

    # ------------------------------------------------------------------ probes
    def _probe_results(self, uid: str, container: str) -> tuple[bool | None, bool]:
        ready = self.probes.readiness(uid, container)
        started = self.probes.started(uid, container)
        if not started:
            ready = False  # a startup probe that has not passed yet: neither ready nor live-checked
        return ready, self.probes.needs_restart(uid, container) is not None

    def _key_of(self, uid: str) -> str | None:
        return next((k for k, u in self._uids.items() if u == uid), None)

    def _on_probe_change(self, uid: str) -> None:
        key = self._key_of(uid)
        if key is not None:
            self.controller.enqueue(key)

    def _on_probe_event(self, ev: ProbeEvent) -> None:
        key = self._key_of(ev.pod_uid)
        pod = self.pods.get(key) if key is not None else None
        if pod is None:
            return
        task = asyncio.get_running_loop().create_task(self._record(pod, ev.type, ev.reason, ev.message))
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    async def _record(self, pod: Obj, type_: str, reason: str, message: str) -> None:
        try:
            await self.recorder.event(pod, type_, reason, message)
        except Exception:  # events are best effort
            log.debug("recording event %s failed", reason, exc_info=True)

    def _sync_probes(self, pod: Obj, containers: list[ContainerInfo]) -> None:
        current: dict[str, ContainerInfo] = {}
        for c in (pod.get("spec") or {}).get("containers") or []:
            ins = podsync.instances(containers, str(c.get("name")), init=False)
            if ins:
                current[str(c.get("name"))] = ins[-1]
        sandbox = podsync.running_sandbox(containers)
        self.probes.sync(pod, current, sandbox.ip if sandbox is not None else None, time.time())

    def _forget(self, uid: str) -> None:
        self.service_proxy.forget(uid)
        self.memory.pop(uid, None)
        self.probes.remove_pod(uid)
        shutil.rmtree(self._pod_dir(uid), ignore_errors=True)
        task = asyncio.get_running_loop().create_task(self.config.volumes.teardown(uid), name="volume-teardown")
        self._event_tasks.add(task)
        task.add_done_callback(self._event_tasks.discard)

    # ------------------------------------------------------------------ pods
    def _on_pod(self, pod: Obj) -> None:
        key = object_key(pod)
        uid = (pod.get("metadata") or {}).get("uid")
        if uid:
            self._uids[key] = str(uid)
        self.controller.enqueue(key)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        """As Kubernetes' kubelet, a change of the status alone (its own writes, mostly) is no reason
        to sync: the kubelet is the source of a pod's status. Spec and metadata changes are."""
        def without_status(pod: Obj) -> Obj:
            meta = {k: v for k, v in (pod.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
            return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}
        if without_status(old) != without_status(new):
            self._on_pod(new)

    def _on_pod_deleted(self, pod: Obj) -> None:
        self.controller.enqueue(object_key(pod))

    def _pod_dir(self, uid: str) -> Path:
        return self.settings.pods_dir / uid

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.settings.housekeeping_interval)
            try:
                await self.remove_orphans()
            except ContainerRuntimeError as e:
                log.info("housekeeping skipped: %s", e)
            except Exception:
                log.exception("housekeeping failed")

    # ------------------------------------------------------------------ graceful node shutdown
    async def shutdown_node(self) -> None:
        """Kubernetes' graceful node shutdown: the Node turns NotReady, every pod's containers are
        stopped (each within its own grace period, all within ``shutdown_grace_period``), the pods
        are marked Failed with reason ``Terminated`` (a pod being deleted is deleted instead), and
        every container of this node is removed. API calls are best effort: the apiserver may be
        going away too; the containers go regardless."""
        grace = self.settings.shutdown_grace_period
        log.info("node %s is shutting down: stopping its pods within %.0fs", self.name, grace)
        self.shutting_down = True
        await self._best_effort("marking the node NotReady", self._write_node_status())
        if self.runtime_ok:
            limit = grace + 5.0  # the stops, then the status writes and removals
            try:
                await asyncio.wait_for(asyncio.gather(*(self._shut_down_pod(p, grace) for p in self.pods.list())),
                                       limit)
            except asyncio.TimeoutError:
                log.warning("node shutdown: the pods were not done within %.0fs; removing their containers", limit)
            try:
                # Whatever is left (a pod that came late, a stop that hung): removed by force.
                left: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_NODE: self.name})
                await asyncio.gather(*(self._rt(self.runtime.remove, c.id) for c in left))
            except ContainerRuntimeError as e:
                log.warning("node shutdown: cannot remove the remaining containers: %s", e)
        log.info("node %s shut down", self.name)

    async def _shut_down_pod(self, pod: Obj, grace: float) -> None:
        meta = pod.get("metadata") or {}
        uid, name, namespace = str(meta.get("uid")), str(meta.get("name")), str(meta.get("namespace"))
        try:
            containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
            actions = podsync.plan_deletion(pod, containers, settings=self.settings.sync)
            await asyncio.gather(*(self._rt(self.runtime.stop, a.id, timeout=min(a.grace_s, grace))
                                   for a in actions if isinstance(a, podsync.StopContainer)), return_exceptions=True)
            if meta.get("deletionTimestamp"):
                await self._best_effort(f"deleting pod {namespace}/{name}", self.client.delete(
                    "pods", name, namespace=namespace, grace_period_seconds=0, preconditions={"uid": uid}))
            elif (pod.get("status") or {}).get("phase") not in podsync.TERMINAL:
                stopped: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
                status = podsync.shutdown_status(pod, stopped, now=_now(), host_ip=self.node_address)
                await self._best_effort(f"marking pod {namespace}/{name} Failed", self.client.update_status(
                    "pods", {**pod, "status": status}, namespace=namespace))
            for a in actions:
                if isinstance(a, podsync.RemoveContainer):
                    await self._rt(self.runtime.remove, a.id)
        except ContainerRuntimeError as e:
            log.warning("node shutdown: pod %s/%s: %s", namespace, name, e)
        self._forget(uid)

    async def _evict(self, pod: Obj, containers: list[ContainerInfo], message: str) -> None:
        """The eviction manager's way: containers stopped, the pod Failed with reason Evicted."""
        await self.recorder.event(pod, "Warning", "Evicted", message)
        stops = [a for a in podsync.plan_deletion(pod, containers, settings=self.settings.sync)
                 if isinstance(a, podsync.StopContainer)]
        await asyncio.gather(*(self._rt(self.runtime.stop, a.id, timeout=a.grace_s) for a in stops),
                             return_exceptions=True)
        stopped: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: str(pod["metadata"]["uid"])})
        status = evicted_status(podsync.shutdown_status(pod, stopped, now=_now(), host_ip=self.node_address), message)
        await self._write_status(pod, status, (pod.get("metadata") or {}).get("namespace"))

    async def _best_effort(self, what: str, call: Any, timeout_s: float = 3.0) -> None:
        try:
            await asyncio.wait_for(call, timeout_s)
        except (errors.ApiError, asyncio.TimeoutError, OSError) as e:
            log.warning("node shutdown: %s failed: %s", what, e)

    async def remove_orphans(self) -> int:
        """Removes containers on this node whose pod is gone; how many were removed."""
        if not self.pods.has_synced or not self.runtime_ok or self.shutting_down:
            return 0
        containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_NODE: self.name})
        live = {str((p.get("metadata") or {}).get("uid")) for p in self.pods.list()}
        gone = podsync.orphans(containers, live)
        # Re-check against the cache after the (slow) listing: a pod may have arrived meanwhile.
        live = {str((p.get("metadata") or {}).get("uid")) for p in self.pods.list()}
        gone = [c for c in gone if c.pod_uid not in live]
        for c in gone:
            log.info("removing container %s of pod uid %s that no longer exists", c.name, c.pod_uid)
            await self._rt(self.runtime.remove, c.id)
        for uid in {c.pod_uid for c in gone if c.pod_uid}:
            self._forget(uid)
        await self.config.volumes.remove_orphans(live)
        return len(gone)

    async def reconcile(self, key: str) -> Result | None:
        pod = self.pods.get(key)
        if pod is None:
            uid = self._uids.pop(key, None)
            if uid and self.runtime_ok:
                # Gone without us (force delete): kill what is left.
                for c in await self._rt(self.runtime.list, {LABEL_POD_UID: uid}):
                    await self._rt(self.runtime.remove, c.id)
            if uid:
                self._forget(uid)
            return None
        if not self.runtime_ok:
            return Result.after(self.settings.runtime_check_interval)
        try:
            return await self._sync(key, pod)
        except RuntimeUnavailable as e:
            log.warning("pod %s: %s", key, e)
            return Result.after(self.settings.runtime_check_interval)

    async def _sync(self, key: str, pod: Obj) -> Result | None:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        namespace, name = split_key(key)
        containers: list[ContainerInfo] = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
        if meta.get("deletionTimestamp"):
            sandbox_ids = await self._terminate(pod, containers)
            try:
                await self.client.delete("pods", name, namespace=namespace, grace_period_seconds=0,
                                         preconditions={"uid": uid})
            except errors.NotFoundError:
                pass
            except errors.ConflictError:
                log.info("pod %s is no longer uid %s; not deleting it", key, uid)
            self._forget(uid)
            # The sandbox (the pod IP) goes a moment after the pod object: until every node's
            # Service table has dropped the endpoint, a connection to it is refused by the empty
            # namespace rather than sent to an address nobody answers for.
            self._remove_later(sandbox_ids, self.settings.sandbox_linger)
            return None
        if (pod.get("status") or {}).get("phase") in podsync.TERMINAL:
            # Succeeded and Failed are final: never recompute (a kubelet that restarts finds the
            # containers gone, which would read as Pending) and never start the pod again.
            return None
        memory = self.memory.setdefault(uid, podsync.PodMemory())
        self._sync_probes(pod, containers)
        running = podsync.running_sandbox(containers)
        if self.settings.service_proxy and running is not None and not self.service_proxy.knows(running.id):
            # A sandbox made before this kubelet started (adopted), or one whose table failed.
            await self.service_proxy.add(running.id, pid=running.pid, pod_uid=uid)
        if running is not None:
            await self.config.volumes.refresh(pod)  # ConfigMap/Secret edits, labels, tokens
            over = await self.config.volumes.over_limit(pod)  # a disk emptyDir beyond its sizeLimit
            if over is not None:
                await self._evict(pod, containers, over)
                return None
        liveness_failed = frozenset(
            str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []
            if self.probe_results(uid, str(c.get("name")))[1])
        p = podsync.plan(pod, containers, now=_now(), memory=memory, settings=self.settings.sync,
                         liveness_failed=liveness_failed)
        waiting = dict(p.waiting)
        requeue = p.requeue_after
        if p.actions:
            extra_wait, extra_requeue = await self._execute(pod, containers, p.actions, memory)
            waiting.update(extra_wait)
            if extra_requeue is not None:
                requeue = extra_requeue if requeue is None else min(requeue, extra_requeue)
            containers = await self._rt(self.runtime.list, {LABEL_POD_UID: uid})
            self._sync_probes(pod, containers)
        for w_name, (reason, message) in p.waiting.items():
            if reason == "CrashLoopBackOff":
                await self.recorder.event(pod, "Warning", "BackOff", "Back-off restarting failed container "
                                          f"{w_name} in pod {_pod_label(pod)}")
            elif reason == "ImagePullBackOff":
                await self.recorder.event(pod, "Normal", "BackOff", message)
        ready_of: dict[str, bool] = {}
        for c in (pod.get("spec") or {}).get("containers") or []:
            ready, _ = self.probe_results(uid, str(c.get("name")))
            if ready is not None:
                ready_of[str(c.get("name"))] = ready
        status = podsync.pod_status(pod, containers, now=_now(), host_ip=self.node_address, waiting=waiting,
                                    ready_of=ready_of)
        for st in status.get("containerStatuses") or []:
            if st.get("started"):
                st["started"] = self.probes.started(uid, str(st.get("name")))
        if status != (pod.get("status") or {}):
            try:
                await self._write_status(pod, status, namespace)
            except (errors.ConflictError, errors.NotFoundError):
                return Result.after(0.2)
        if status.get("phase") in podsync.TERMINAL:
            return None
        interval = self.settings.sync_interval
        return Result.after(interval if requeue is None else min(requeue, interval))

    # ------------------------------------------------------------------ executing a plan
    def _remove_later(self, ids: list[str], delay: float) -> None:
        async def remove() -> None:
            await asyncio.sleep(delay)
            for cid in ids:
                try:
                    await self._rt(self.runtime.remove, cid)
                except ContainerRuntimeError as e:
                    log.warning("removing sandbox %s: %s (housekeeping tries again)", cid[:12], e)
        if ids:
            task = asyncio.create_task(remove(), name="remove-sandbox")
            self._event_tasks.add(task)
            task.add_done_callback(self._event_tasks.discard)

    async def _terminate(self, pod: Obj, containers: list[ContainerInfo]) -> list[str]:
        """Stops and removes the pod's app containers; returns its sandboxes' ids, left to the caller."""
        actions = podsync.plan_deletion(pod, containers, settings=self.settings.sync)
        stops = [a for a in actions if isinstance(a, podsync.StopContainer)]
        for s in stops:
            await self.recorder.event(pod, "Normal", "Killing", f"Stopping container {s.name}")
        await asyncio.gather(*(self._rt(self.runtime.stop, s.id, timeout=s.grace_s) for s in stops),
                             return_exceptions=True)
        sandbox_ids = {c.id for c in podsync.sandboxes(containers)}
        for a in actions:
            if isinstance(a, podsync.RemoveContainer) and a.id not in sandbox_ids:
                await self._rt(self.runtime.remove, a.id)
        return sorted(sandbox_ids)

    async def _execute(self, pod: Obj, containers: list[ContainerInfo], actions: list[podsync.Action],
                       memory: podsync.PodMemory) -> tuple[dict[str, tuple[str, str]], float | None]:
        waiting: dict[str, tuple[str, str]] = {}
        requeue: float | None = None
        meta = pod.get("metadata") or {}
        sandbox = podsync.running_sandbox(containers)
        for a in actions:
            if isinstance(a, podsync.RemoveContainer):
                await self._rt(self.runtime.remove, a.id)
            elif isinstance(a, podsync.StopContainer):
                if a.reason == "Unhealthy":
                    await self.recorder.event(pod, "Normal", "Killing",
                                              f"Container {a.name} failed liveness probe, will be restarted")
                await self._rt(self.runtime.stop, a.id, timeout=a.grace_s)
            elif isinstance(a, podsync.CreateSandbox):
                dns = pod_dns(pod, cluster_dns=self.settings.cluster_dns, cluster_domain=self.settings.cluster_domain)
                sb = await self._rt(self.runtime.run_sandbox, pod_uid=str(meta.get("uid")),
                                    pod_name=str(meta.get("name")), namespace=str(meta.get("namespace")),
                                    node=self.name, network=self.settings.pod_network_name, attempt=a.attempt,
                                    dns=dns)
                # Services work from the pod's first second: its table is in before any app container.
                if self.settings.service_proxy:
                    await self.service_proxy.add(sb.id, pid=sb.pid, pod_uid=str(meta.get("uid")))
                sandbox = ContainerInfo(id=sb.id, name=sb.name, labels={}, state="running", exit_code=None,
                                        created_at=None, started_at=None, finished_at=None, image="", image_id="",
                                        ip=sb.ip)
                requeue = 0.05  # the containers start on the next pass, with the sandbox listed
            elif isinstance(a, podsync.StartContainer):
                if sandbox is None:
                    continue
                result = await self._start(pod, a, sandbox, memory)
                if result is not None:
                    waiting[a.name] = result
                    f = memory.pull_failures.get(a.name)
                    if result[0] == "ErrImagePull" and f is not None:
                        # Look again halfway through the back-off so ImagePullBackOff shows.
                        r = max(0.1, f.delay / 2)
                        requeue = r if requeue is None else min(requeue, r)
        return waiting, requeue

    async def _write_status(self, pod: Obj, status: Obj, namespace: str | None) -> None:
        """The kubelet owns a pod's status: a write that lost to a newer version of the pod (our
        informer is a write behind) is made again on the current one, so a short-lived state such
        as ErrImagePull is not skipped."""
        try:
            await self.client.update_status("pods", {**pod, "status": status}, namespace=namespace)
        except errors.ConflictError:
            name = str((pod.get("metadata") or {}).get("name") or "")
            current = await self.client.get("pods", name, namespace=namespace)
            if (current.get("metadata") or {}).get("uid") != (pod.get("metadata") or {}).get("uid"):
                raise
            await self.client.update_status("pods", {**current, "status": status}, namespace=namespace)
        self.status_writes += 1

    async def _start(self, pod: Obj, a: podsync.StartContainer, sandbox: ContainerInfo,
                     memory: podsync.PodMemory) -> tuple[str, str] | None:
        """Pulls (per imagePullPolicy), creates and starts one container; a waiting reason on failure."""
        spec = pod.get("spec") or {}
        c_spec = next((c for c in spec.get("initContainers" if a.init else "containers") or []
                       if c.get("name") == a.name), None)
        if c_spec is None:
            return None
        image = str(c_spec.get("image") or "")
        policy = c_spec.get("imagePullPolicy") or ("Always" if image.endswith(":latest") or ":" not in
                                                    image.rsplit("/", 1)[-1] else "IfNotPresent")
        try:
            await self._ensure_image(image, str(policy))
        except ImagePullError as e:
            f = memory.record_pull_failure(a.name, str(e), now=_now(), settings=self.settings.sync)
            await self.recorder.event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {e}')
            log.info("pod %s: pull of %s failed (next try in %.1fs)", object_key(pod), image, f.delay)
            return ("ErrImageNeverPull" if policy == "Never" else "ErrImagePull", f"Failed to pull image \"{image}\": {e}")
        memory.pull_failures.pop(a.name, None)
        try:
            cspec = await self._container_spec(pod, c_spec, a, sandbox)
        except ConfigError as e:
            await self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return ("CreateContainerConfigError", str(e))
        except MountError as e:
            await self.recorder.event(pod, "Warning", "FailedMount", str(e))
            return ("ContainerCreating", str(e))
        try:
            cid = await self._rt(self.runtime.create_container, cspec)
        except ImageNotPresent as e:
            return ("ErrImagePull", str(e))
        if a.next_delay is not None:
            memory.crash_delay[a.name] = a.next_delay
        try:
            await self._rt(self.runtime.start, cid)
        except RuntimeUnavailable:
            raise
        except ContainerRuntimeError as e:
            # Left in "created": the plan counts it as a failed run (StartError) and restarts it.
            await self.recorder.event(pod, "Warning", "Failed", f"Error: {e}")
            return None
        await self.recorder.event(pod, "Normal", "Started", f"Started container {a.name}")
        return None

    async def _ensure_image(self, image: str, policy: str) -> None:
        present = await self._rt(self.runtime.image_present, image)
        if policy == "Never":
            if not present:
                raise ImagePullError(f"image {image} is not present with pull policy of Never")
            return
        if present and policy != "Always":
            return
        try:
            await self._rt(self.runtime.pull, image)
        except ImagePullError:
            if not present:
                raise
            # Always with no registry reachable: the local copy is what we have.
            log.info("pull of %s failed; using the local image", image)

    async def _container_spec(self, pod: Obj, c: Obj, a: podsync.StartContainer, sandbox: ContainerInfo) -> ContainerSpec:
        meta = pod.get("metadata") or {}
        uid = str(meta.get("uid"))
        env = await self.config.env(pod, c, pod_ip=sandbox.ip or "")
        mounts = await self.config.mounts(pod, c, env=env)
        limits = (c.get("resources") or {}).get("limits") or {}
        nano_cpus = int(parse_quantity(limits["cpu"]) * 1_000_000_000) if limits.get("cpu") else None
        mem = to_bytes(limits["memory"]) if limits.get("memory") else None
        return ContainerSpec(
            pod_uid=uid, pod_name=str(meta.get("name")), namespace=str(meta.get("namespace")), node=self.name,
            name=a.name, image=str(c.get("image")), sandbox_id=sandbox.id, command=c.get("command"),
            args=c.get("args"), env=env, working_dir=c.get("workingDir"), nano_cpus=nano_cpus, mem_limit=mem,
            mounts=mounts, restart_count=a.restart_count,
            labels={podsync.LABEL_INIT: "true"} if a.init else {})

def _pod_label(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('name')}_{meta.get('namespace')}({meta.get('uid')})"


def _own_container_ip() -> str | None:
    """In a Docker container (``/.dockerenv``), the address its host name resolves to; else None."""
    if not os.path.exists("/.dockerenv"):
        return None
    try:
        ip = socket.gethostbyname(socket.gethostname())
    except OSError:
        return None
    return None if ip.startswith("127.") else ip


def _first_host(subnet: str) -> str | None:
    try:
        return str(next(ipaddress.IPv4Network(subnet, strict=False).hosts()))
    except (ValueError, StopIteration):
        return None


async def main(settings: KubeletSettings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    async with ApiClient(settings.server, user_agent=default_user_agent("kubelet")) as client:
        await Kubelet(client, settings).run(stop)


def run(settings: KubeletSettings) -> None:
    """``main`` in a fresh event loop; SIGTERM and SIGINT end it (a graceful node shutdown when
    ``shutdown_grace_period`` > 0, else the containers keep running)."""
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["Kubelet", "KubeletSettings", "main", "run"]
