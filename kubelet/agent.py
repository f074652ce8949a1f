"""The Docker kubelet: one Node whose pods run as Docker containers. This module wires its parts.

``minik8s kubelet --server URL --node-name NAME [--capacity ...] [--pod-network-subnet ...]``

Data flow (each part's own docstring tells the rest):

    Kubelet.run:
      kubelet.node.NodeAgent.check_runtime   engine ping + pod network (down: NotReady, retried)
      kubelet.server                         the HTTP API on address:kubelet_port: containerLogs,
                                             stats, exec/attach/portforward (kubelet.streaming with
                                             kubelet.streamingctx), published on the Node; the
                                             API server's bearer token gets in (kubelet.credential
                                             watches its Secret), other tokens as TokenReview and
                                             SubjectAccessReview say (kubelet.authn)
      NodeAgent.register                     the Node and its Lease
      pods informer (spec.nodeName=NAME) ->  kubelet.podworker.PodWorker (reconcile per pod:
                                             containers, probes, status; environment and volumes
                                             from kubelet.containerconfig)
      Services + EndpointSlices ->           kubelet.serviceproxy (ClusterIP tables in the pods,
                                             NodePorts on the Node's InternalIP)
      PersistentVolumes ->                   kubelet.localvolumes (local-path Delete reclaim)
      NodeAgent.heartbeat                    Lease, engine health, Node status
      kubelet.housekeeping                   orphaned containers; graceful node shutdown on
                                             SIGTERM when shutdown_grace_period > 0 (else the
                                             containers keep running and the next kubelet
                                             adopts them)

Every blocking engine and file-system call of every part runs in one thread pool of this kubelet
(kubelet.blocking.BlockingPool), never in the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Any, Callable

from kubelet.blocking import BlockingPool
from kubelet.containerconfig import ContainerConfig
from kubelet.authn import DelegatedAuth
from kubelet.credential import KubeletCredential
from kubelet.cri import ContainerRuntime
from kubelet.housekeeping import Housekeeping
from kubelet.localvolumes import LocalVolumeReclaimer
from kubelet.node import NodeAgent
from kubelet.podworker import PodWorker
from kubelet.runtime import DockerRuntime
from kubelet.server import start_kubelet_server
from kubelet.serviceproxy import PodServiceProxy
from kubelet.settings import KubeletSettings
from kubelet.statscollect import StatsCollector
from kubelet.streamingctx import KubeletStreamingContext
from machinery import errors
from machinery.client import ApiClient, default_user_agent
from machinery.events import EventRecorder
from machinery.informer import Informer
from machinery.process import run_until_signalled
from machinery.sharedinformers import InformerFactory
from traffic.proxy.server import Proxier
from traffic.proxy.userspace import RelaySettings
from traffic.watch import ServiceWatch

log = logging.getLogger(__name__)


class Kubelet:
    """One node. ``run(stop)`` until ``stop`` is set; ``registered`` is set once the Node exists."""

    def __init__(self, client: ApiClient, settings: KubeletSettings, *,
                 runtime: ContainerRuntime | None = None) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.node_name
        self.runtime: ContainerRuntime = runtime or DockerRuntime(settings.runtime_endpoint,
                                                                  sandbox_image=settings.sandbox_image)
        self.pool = BlockingPool(max(32, 4 * settings.workers))
        self.registered = asyncio.Event()
        self.pods = Informer.for_kind(client, "pods", field_selector=f"spec.nodeName={self.name}")
        self.informers = InformerFactory(client)  # Services, EndpointSlices, PersistentVolumes
        self.node = NodeAgent(client, settings, self.runtime, run_blocking=self.pool,
                              on_runtime_back=lambda: self.worker.enqueue_all())
        self.service_watch = ServiceWatch(self.informers)
        self.service_proxy = PodServiceProxy(self.service_watch, node=self.name, run_blocking=self.pool)
        self.config = ContainerConfig(client, node_name=self.name, node_address=lambda: self.node.node_address,
                                      services=self.service_watch.services.list, pod_dir=settings.pod_dir,
                                      runtime=self.runtime, run_blocking=self.pool,
                                      allocatable=lambda: self.settings.capacity)
        self.worker = PodWorker(client, settings, self.runtime, pods=self.pods, node=self.node,
                                run_blocking=self.pool, recorder=EventRecorder(client, "kubelet", host=self.name),
                                config=self.config, service_proxy=self.service_proxy)
        self.housekeeping = Housekeeping(self.worker, self.node)
        self.reclaimer = LocalVolumeReclaimer(client, self.informers, node_name=self.name,
                                              local_dir=settings.local_path_dir, run_blocking=self.pool)
        # Who may call the HTTP API: the API server, or whom TokenReview + SubjectAccessReview let in.
        self.credential = KubeletCredential(client, delegated=DelegatedAuth(client, node_name=self.name))
        self.streaming = KubeletStreamingContext(self.runtime, pods=self.pods, node_name=self.name,
                                                 run_blocking=self.pool)
        self._server: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    # ------------------------------------------------------------------ lifecycle
    async def run(self, stop: asyncio.Event) -> None:
        controller = self.worker.controller
        controller_task: asyncio.Task[None] | None = None
        try:
            await self.node.check_runtime()
            self.credential.start()
            await self.credential.wait_read(5.0)
            await self._start_server()
            await self._retrying("registering the node", self.node.register)
            self.pods.add_handler(self.worker.on_pod, self.worker.on_pod_update, self.worker.on_pod_deleted)
            self._tasks.append(self.pods.start())
            self.informers.start()
            self._spawn(self.reclaimer.run(), "local-path-reclaimer")
            if self.settings.service_proxy:
                self._serve_node_ports()
                self._spawn(self.service_proxy.run(), "service-proxy")
            self._spawn(self.node.heartbeat(), "heartbeat")
            self._spawn(self.housekeeping.run(), "housekeeping")
            await self.pods.wait_synced()
            controller_task = asyncio.create_task(controller.run())
            self.registered.set()
            log.info("node %s registered; runtime %s", self.name, "ready" if self.node.runtime_ok else "down")
            await stop.wait()
            if self.settings.shutdown_grace_period > 0:
                await controller.stop(timeout_s=2.0)
                await self.housekeeping.shutdown_node()
        finally:
            for t in self._tasks:
                t.cancel()
            self.pods.stop()
            await self.informers.stop()
            await self.credential.stop()
            if controller_task is not None:
                await controller.stop(timeout_s=2.0)
                controller_task.cancel()
                await asyncio.gather(controller_task, return_exceptions=True)
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.worker.probes.close()
            await self.worker.background.cancel_all()
            if self._server is not None:
                await self._server.cleanup()
                self._server = None
            self.pool.shutdown()

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def _start_server(self) -> None:
        s = self.settings
        if s.kubelet_port < 0 or self._server is not None:
            return
        try:
            self._server, self.node.kubelet_port = await start_kubelet_server(
                self.runtime, host=s.address or "0.0.0.0", port=s.kubelet_port, resolve=self.streaming.resolve_logs,
                run_blocking=self.pool, authorize=self.credential.authorize,
                stats=StatsCollector(self.runtime, self.name, run_blocking=self.pool), streaming=self.streaming)
            log.info("kubelet API on %s:%d", s.address, self.node.kubelet_port)
        except OSError as e:
            # Pods still run; `kubectl logs` answers 503 (the Node publishes no port).
            log.error("cannot serve the kubelet API on %s:%d: %s; logs are unavailable", s.address, s.kubelet_port, e)
            self.node.kubelet_port = 0

    def _serve_node_ports(self) -> None:
        """NodePorts on the Node's InternalIP (kube-proxy's job on a real node), relayed in user
        space; not on a loopback address, which ``minik8s proxy`` serves for the whole host."""
        try:
            address = ipaddress.ip_address(self.node.node_address)
        except ValueError:
            return
        if address.is_loopback or address.is_unspecified:
            return
        self.service_proxy.nodeports = Proxier(nodeport_addresses=(str(address),), load_balancers=False,
                                               relay_settings=RelaySettings(node=self.name))

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


async def main(settings: KubeletSettings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    async with ApiClient(settings.server, user_agent=default_user_agent("kubelet")) as client:
        await Kubelet(client, settings).run(stop)


def run(settings: KubeletSettings) -> None:
    """``main`` in a fresh event loop; SIGTERM and SIGINT end it (a graceful node shutdown when
    ``shutdown_grace_period`` > 0, else the containers keep running)."""
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["Kubelet", "KubeletSettings", "main", "run"]
