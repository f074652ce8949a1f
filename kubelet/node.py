"""The kubelet's Node: registration, status, Lease heartbeat and the engine's health behind Ready.

Data flow:

    start:     check_runtime(): runtime.version() / ensure_network(pod network) (engine down: the
               node registers NotReady and the heartbeat retries) -> register(): create the Node
               (kubelet.nodestatus bodies; InternalIP = node_address) or patch the existing one,
               then the Lease in kube-node-lease
    heartbeat: every min(lease_renew_interval, runtime_check_interval): ping the engine; renew the
               Lease every lease_renew_interval; PATCH nodes/NAME/status when Ready changed, when
               the server's Ready differs from this kubelet's (looked at every
               node_status_check_interval: the node controller marked the node Unknown while this
               kubelet was cut off) or every node_status_interval (a Node deleted meanwhile is
               registered again). Never
               dies: API and engine failures only log.
    engine back: ``on_runtime_back()`` (the kubelet enqueues every pod again).

Every engine call goes through ``run_blocking`` (the kubelet's thread pool).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import time
from datetime import datetime, timezone
from typing import Any, Callable

from kubelet.cri import ContainerRuntime, ContainerRuntimeError, RuntimeUnavailable
from kubelet.nodestatus import NODE_LEASE_NAMESPACE, NodeIdentity, lease_body, new_node, node_spec_patch, node_status
from kubelet.settings import KubeletSettings
from kubelet.blocking import RunBlocking
from machinery import errors
from machinery.client import ApiClient

log = logging.getLogger(__name__)

Obj = dict[str, Any]
LEASES = ("coordination.k8s.io/v1", "leases")


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class NodeAgent:
    """This kubelet's Node object, its Lease and the engine's health (``runtime_ok``)."""

    def __init__(self, client: ApiClient, settings: KubeletSettings, runtime: ContainerRuntime, *,
                 run_blocking: RunBlocking, on_runtime_back: Callable[[], None]) -> None:
        self.client = client
        self.settings = settings
        self.name = settings.node_name
        self.runtime = runtime
        self._rt = run_blocking
        self.on_runtime_back = on_runtime_back
        self.runtime_ok = False
        self._runtime_seen = False  # whether the engine ever answered (first success is no "comeback")
        self.runtime_error = "container runtime not checked yet"
        self.runtime_version = "docker://unknown"
        self.internal_ip = "127.0.0.1"
        self.kubelet_port = 0  # the port the HTTP API listens on (0: none), published on the Node
        self.shutting_down = False
        self._network_ready = False
        self._node_uid: str | None = None
        self._lease: Obj | None = None
        self._container_ip = _own_container_ip()

    # ------------------------------------------------------------------ runtime health
    async def check_runtime(self) -> bool:
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
                self.on_runtime_back()
        return was != self.runtime_ok

    # ------------------------------------------------------------------ addresses
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

    # ------------------------------------------------------------------ node and lease
    def _identity(self) -> NodeIdentity:
        return NodeIdentity(name=self.name, pod_cidr=self.settings.pod_network_subnet, internal_ip=self.node_address,
                            capacity=dict(self.settings.capacity), runtime_version=self.runtime_version,
                            os_image="minik8s docker node", kernel_version=os.uname().release, simulated=False,
                            local_path_dir=self.settings.local_path_dir)

    def _node_status(self, current: Obj | None) -> Obj:
        status = node_status(self._identity(), now=now_utc(), current=current)
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

    async def register(self) -> None:
        ident = self._identity()
        try:
            body = new_node(ident, now=now_utc())
            body["status"] = self._node_status(None)
            created = await self.client.create("nodes", body)
            self._node_uid = str(created["metadata"]["uid"])
        except errors.AlreadyExistsError:
            existing = await self.client.get("nodes", self.name)
            self._node_uid = str(existing["metadata"]["uid"])
            patch = node_spec_patch(ident, existing)
            if patch:
                await self.client.patch("nodes", self.name, patch)
            await self.write_status(existing)
        await self._renew()

    async def write_status(self, node: Obj | None = None) -> None:
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
                            LEASES, lease_body(node, now=now_utc(), duration_s=duration),
                            namespace=NODE_LEASE_NAMESPACE)
                        return
                    except errors.AlreadyExistsError:
                        continue
            try:
                self._lease = await self.client.update(
                    LEASES, lease_body(node, now=now_utc(), current=current, duration_s=duration),
                    namespace=NODE_LEASE_NAMESPACE)
                return
            except (errors.ConflictError, errors.NotFoundError):
                self._lease = None

    async def _disagreeing_node(self) -> Obj | None:
        """The Node when the server's Ready condition is not the one this kubelet reports, else None.

        Kubernetes' kubelet compares with the server's copy on every status update, so a node the
        node controller marked Unknown during a partition is Ready again within one update."""
        node = await self.client.get("nodes", self.name)
        current = node.get("status") or {}

        def ready(status: Obj) -> str | None:
            return next((c.get("status") for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        return node if ready(current) != ready(self._node_status(current)) else None

    async def heartbeat(self) -> None:
        s = self.settings
        last_lease = time.monotonic()
        last_status = last_check = time.monotonic()
        tick = min(s.lease_renew_interval, s.runtime_check_interval)
        while True:
            await asyncio.sleep(tick)
            try:
                changed = await self.check_runtime()
                now = time.monotonic()
                if now - last_lease >= s.lease_renew_interval - 1e-3:
                    await self._renew()
                    last_lease = now
                node = None
                if not changed and now - last_check >= s.node_status_check_interval:
                    last_check = now
                    node = await self._disagreeing_node()
                if changed or node is not None or now - last_status >= s.node_status_interval:
                    try:
                        await self.write_status(node)
                    except errors.NotFoundError:
                        log.warning("node %s is gone; registering it again", self.name)
                        self._lease = None
                        await self.register()
                    last_status = now
            except errors.ApiError as e:
                log.warning("heartbeat failed: %s", e)
            except Exception:  # never let the heartbeat die
                log.exception("heartbeat failed")


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


__all__ = ["LEASES", "NodeAgent", "now_utc"]
