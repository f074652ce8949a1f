"""The Docker kubelet's settings: one typed object, passed in (DESIGN pattern 8).

Data flow: ``minik8s kubelet`` flags and environment (cli/minik8s.py) or a test -> ``KubeletSettings``
-> ``kubelet.agent.Kubelet``, which hands it to its parts (``kubelet.node``, ``kubelet.podworker``,
``kubelet.housekeeping``). Tests shrink every interval here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubelet import podsync
from kubelet.nodestatus import DEFAULT_CAPACITY, DEFAULT_ROOT_DIR, NODE_LEASE_DURATION_SECONDS
from kubelet.runtime import DEFAULT_DOCKER_URL, DEFAULT_SANDBOX_IMAGE
from kubelet.volumes.localpath import local_path_dir

from machinery.kubeconfig import ClientConfig


@dataclass
class KubeletSettings:
    server: str | ClientConfig  # a URL, or a kubeconfig's address and credential
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
    node_status_check_interval: float = 10.0  # compare with the server's Ready (nodeStatusUpdateFrequency)
    runtime_check_interval: float = 5.0
    sync_interval: float = 2.0  # how often a live pod's containers are looked at again
    housekeeping_interval: float = 10.0
    workers: int = 8
    sync: podsync.SyncSettings = field(default_factory=podsync.SyncSettings)
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    address: str = "0.0.0.0"  # where the kubelet's HTTP API (logs, exec, port-forward) listens
    kubelet_port: int = 10250  # 0: any free port; -1: no HTTP API
    node_ip: str = ""  # the Node's InternalIP; default: see kubelet.node.NodeAgent.node_address
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

    def pod_dir(self, uid: str) -> Path:
        """A pod's own directory (its volumes) on this node."""
        return self.pods_dir / uid

    @property
    def local_path_dir(self) -> str:
        """Where the local-path provisioner's volumes of this node live (published on the Node)."""
        return local_path_dir(str(self.pods_dir.parent))


__all__ = ["KubeletSettings"]
