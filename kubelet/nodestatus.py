"""The pure parts of a node agent: capacity parsing, pod CIDRs, the Node object and its Lease.

Role: everything a kubelet decides about its Node without I/O, so both kubelets (the simulated
one and the Docker one, ``kubelet.agent``) only have to send what these functions return.

Data flow:

    "--capacity cpu=8,memory=32Gi" -> parse_capacity -> {"cpu": "8", "memory": "32Gi", "pods": "110"}
    existing Nodes' spec.podCIDR    -> allocate_pod_cidrs(names, used, cluster_cidr) -> {name: CIDR}
    podCIDR                         -> node_internal_ip -> a unique 10.x InternalIP per node
    NodeIdentity + now              -> new_node / node_status(existing) -> the body to create / patch
    node + now                      -> lease_body -> the kube-node-lease Lease to create / update

Pod CIDRs: a kubelet here assigns its nodes' CIDRs itself (Kubernetes' node IPAM controller does
it there), taking subnets of ``cluster_cidr`` that no existing Node uses, probed in an order
derived from the node name, so two kubelet processes starting at once rarely reach for the
same subnet. A Node that already has ``spec.podCIDR`` keeps it (podCIDR is immutable).
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import ipaddress
import platform
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from machinery.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]

KUBELET_VERSION = "v1.32.0-minik8s"
SIMULATED_RUNTIME_VERSION = "simulated://0"
SIMULATED_LABEL = "minik8s.io/simulated"
# Where this node keeps the local-path provisioner's volumes (kubelet.volumes.localpath).
LOCAL_PATH_DIR_ANNOTATION = "minik8s.io/local-path-dir"
DEFAULT_ROOT_DIR = "/var/lib/minik8s/kubelet"  # a node's root dir: DEFAULT_ROOT_DIR/<node> unless --root-dir
NODE_LEASE_NAMESPACE = "kube-node-lease"
NODE_LEASE_DURATION_SECONDS = 40  # Kubernetes' default nodeLeaseDurationSeconds
DEFAULT_CAPACITY: dict[str, str] = {"cpu": "8", "memory": "32Gi", "pods": "110"}
# The condition types a kubelet owns on its Node (others, e.g. NetworkUnavailable, are kept).
KUBELET_CONDITIONS = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
_PRESSURE = {
    "MemoryPressure": ("KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("KubeletHasSufficientPID", "kubelet has sufficient PID available"),
}
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def rfc3339(now: datetime) -> str:
    """``metav1.Time``: whole seconds, UTC, ``Z``."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(now: datetime) -> str:
    """``metav1.MicroTime`` (what Lease renewTime holds)."""
    return now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------------------------- capacity
def parse_capacity(text: str) -> dict[str, str]:
    """``"cpu=8,memory=32Gi,pods=110"`` -> ``{"cpu": "8", "memory": "32Gi", "pods": "110"}``.

    Any resource name is accepted (``nvidia.com/gpu=2``); cpu, memory and pods not given take
    the defaults of ``DEFAULT_CAPACITY`` (a real kubelet always reports all three). Raises
    ``ValueError`` naming the bad term.
    """
    out: dict[str, str] = {}
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        name, sep, value = term.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise ValueError(f"expected NAME=QUANTITY pairs separated by commas (cpu=8,memory=32Gi,pods=110), "
                             f"got {term!r}")
        if name in out:
            raise ValueError(f"{name} is given twice")
        try:
            amount = parse_quantity(value)
        except QuantityError as e:
            raise ValueError(f"{name}={value}: {e}") from None
        if amount < 0:
            raise ValueError(f"{name}={value}: must be a non-negative quantity")
        if name == "pods" and amount != amount.to_integral_value():
            raise ValueError(f"pods={value}: must be a whole number")
        out[name] = value
    for name, value in DEFAULT_CAPACITY.items():
        out.setdefault(name, value)
    return out


# ---------------------------------------------------------------------------------- names, CIDRs, IPs
def node_names(base: str, count: int) -> list[str]:
    """``count == 1``: exactly ``base``; otherwise ``base-0`` ... ``base-(count-1)``."""
    if count < 1:
        raise ValueError("count must be >= 1")
    return [base] if count == 1 else [f"{base}-{i}" for i in range(count)]


def _span(net: ipaddress.IPv4Network) -> tuple[int, int]:
    return int(net.network_address), int(net.broadcast_address)


def allocate_pod_cidrs(names: Iterable[str], *, used: Iterable[str], cluster_cidr: str,
                       mask_size: int = 24) -> dict[str, str]:
    """A free, non-overlapping subnet of ``cluster_cidr`` for each name (in the order given).

    ``used`` are the CIDRs other Nodes hold (any size; malformed ones are ignored). When fewer
    than ``len(names)`` free ``/mask_size`` subnets remain, smaller subnets are used (a longer
    prefix, at most /30), so one process can hold 1000 nodes in a /16. Raises ``ValueError``
    when even that does not fit.
    """
    wanted = list(names)
    cluster = ipaddress.IPv4Network(cluster_cidr, strict=False)
    spans: list[tuple[int, int]] = []
    for cidr in used:
        try:
            net = ipaddress.IPv4Network(cidr, strict=False)
        except ValueError:
            continue
        spans.append(_span(net))
    spans.sort()
    if not wanted:
        return {}
    mask = max(mask_size, cluster.prefixlen)
    while mask <= 30:
        got = _allocate(wanted, spans, cluster, mask)
        if got is not None:
            return got
        mask += 1
    raise ValueError(f"{cluster_cidr} has no room for {len(wanted)} more node pod CIDRs")


def _allocate(names: list[str], spans: list[tuple[int, int]], cluster: ipaddress.IPv4Network,
              mask: int) -> dict[str, str] | None:
    size = 1 << (32 - mask)
    slots = 1 << (mask - cluster.prefixlen)
    base = int(cluster.network_address)
    taken = list(spans)  # sorted (start, end)

    def free(start: int) -> bool:
        end = start + size - 1
        i = bisect.bisect_left(taken, (start, start))
        # the span before may reach into [start, end]; the one at i may start inside it
        if i > 0 and taken[i - 1][1] >= start:
            return False
        return not (i < len(taken) and taken[i][0] <= end)

    free_count = sum(1 for s in range(slots) if free(base + s * size)) if slots <= 1 << 16 else slots
    if free_count < len(names):
        return None
    out: dict[str, str] = {}
    for name in names:
        first = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") % slots
        for probe in range(slots):
            start = base + ((first + probe) % slots) * size
            if free(start):
                bisect.insort(taken, (start, start + size - 1))
                out[name] = f"{ipaddress.IPv4Address(start)}/{mask}"
                break
        else:
            return None
    return out


def node_internal_ip(pod_cidr: str, *, cluster_cidr: str, node_ip_base: str = "10.0.0.0") -> str:
    """A unique InternalIP per node, from where its pod CIDR sits in the cluster CIDR.

    Pod CIDRs never overlap, so their offsets in ``cluster_cidr`` are distinct, and so are
    ``node_ip_base + offset + 1`` (10.244.5.0/24 in 10.244.0.0/16 -> 10.0.5.1).
    """
    net = ipaddress.IPv4Network(pod_cidr, strict=False)
    cluster = ipaddress.IPv4Network(cluster_cidr, strict=False)
    offset = int(net.network_address) - int(cluster.network_address)
    if not 0 <= offset < cluster.num_addresses:
        offset = int(net.network_address) % cluster.num_addresses  # a CIDR from elsewhere: still stable
    return str(ipaddress.IPv4Address(int(ipaddress.IPv4Address(node_ip_base)) + offset + 1))


# ---------------------------------------------------------------------------------- the Node
@dataclass(frozen=True)
class NodeIdentity:
    """What a kubelet knows about one of its nodes before it talks to the API server."""

    name: str
    pod_cidr: str
    internal_ip: str
    capacity: Mapping[str, str]
    runtime_version: str = SIMULATED_RUNTIME_VERSION
    os_image: str = "minik8s simulated node"
    kernel_version: str = "simulated"
    simulated: bool = True
    local_path_dir: str = ""  # published as LOCAL_PATH_DIR_ANNOTATION (the local-path provisioner's volumes)

    def annotations(self) -> dict[str, str]:
        out = {"node.alpha.kubernetes.io/ttl": "0"}
        if self.local_path_dir:
            out[LOCAL_PATH_DIR_ANNOTATION] = self.local_path_dir
        return out

    @property
    def architecture(self) -> str:
        return _ARCH.get(platform.machine().lower(), platform.machine().lower() or "amd64")

    def labels(self) -> dict[str, str]:
        out = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux",
               "kubernetes.io/arch": self.architecture, "beta.kubernetes.io/os": "linux",
               "beta.kubernetes.io/arch": self.architecture}
        if self.simulated:
            out[SIMULATED_LABEL] = "true"
        return out


def _conditions(current: list[Obj], now: datetime) -> list[Obj]:
    """The kubelet's conditions (all healthy, Ready=True) with transition times kept when unchanged."""
    by_type = {c.get("type"): c for c in current if isinstance(c, dict)}
    stamp = rfc3339(now)
    out: list[Obj] = []
    for ctype in KUBELET_CONDITIONS:
        status = "True" if ctype == "Ready" else "False"
        reason, message = _PRESSURE.get(ctype, ("KubeletReady", "kubelet is posting ready status"))
        old = by_type.get(ctype) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append({"type": ctype, "status": status, "lastHeartbeatTime": stamp,
                    "lastTransitionTime": since or stamp, "reason": reason, "message": message})
    others = [c for t, c in by_type.items() if t not in KUBELET_CONDITIONS]
    return others + out


def node_status(ident: NodeIdentity, *, now: datetime, current: Obj | None = None) -> Obj:
    """The whole status a kubelet reports, built on ``current`` (the Node's status, if any)."""
    cur = current or {}
    uid_seed = uuid.uuid5(uuid.NAMESPACE_DNS, f"{ident.name}.minik8s")
    return {
        "capacity": dict(ident.capacity),
        "allocatable": dict(ident.capacity),
        "conditions": _conditions(list(cur.get("conditions") or []), now),
        "addresses": [{"type": "InternalIP", "address": ident.internal_ip},
                      {"type": "Hostname", "address": ident.name}],
        # 0: no kubelet API (the simulated kubelet serves none, so the API server answers 503 at
        # once instead of dialling a made-up InternalIP); the Docker kubelet writes its real port.
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": uid_seed.hex, "systemUUID": str(uid_seed), "bootID": str(uid_seed),
            "kernelVersion": ident.kernel_version, "osImage": ident.os_image,
            "containerRuntimeVersion": ident.runtime_version, "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": ident.architecture,
        },
        **{k: copy.deepcopy(v) for k, v in cur.items() if k in ("images", "volumesInUse", "volumesAttached")},
    }


def new_node(ident: NodeIdentity, *, now: datetime) -> Obj:
    """The Node a kubelet registers (status included: a Node accepts status on create)."""
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": ident.name, "labels": ident.labels(),
                     "annotations": ident.annotations()},
        "spec": {"podCIDR": ident.pod_cidr, "podCIDRs": [ident.pod_cidr]},
        "status": node_status(ident, now=now),
    }


def simulated_local_path_dir(node: str) -> str:
    """A simulated node's local-path directory: where a Docker kubelet of that name would keep it
    (nothing is made there; the provisioner only needs a path to put in its PVs)."""
    return f"{DEFAULT_ROOT_DIR}/{node}/local-path"


def node_spec_patch(ident: NodeIdentity, existing: Obj) -> Obj | None:
    """A merge patch that adds our labels (and a podCIDR if the Node has none); None if nothing."""
    meta, spec = existing.get("metadata") or {}, existing.get("spec") or {}
    patch: Obj = {}
    labels = meta.get("labels") or {}
    missing = {k: v for k, v in ident.labels().items() if labels.get(k) != v}
    if missing:
        patch["metadata"] = {"labels": missing}
    annotations = meta.get("annotations") or {}
    if ident.local_path_dir and annotations.get(LOCAL_PATH_DIR_ANNOTATION) != ident.local_path_dir:
        patch.setdefault("metadata", {})["annotations"] = {LOCAL_PATH_DIR_ANNOTATION: ident.local_path_dir}
    if not spec.get("podCIDR"):
        patch["spec"] = {"podCIDR": ident.pod_cidr, "podCIDRs": [ident.pod_cidr]}
    return patch or None


def status_needs_update(ident: NodeIdentity, node: Obj) -> bool:
    """Whether the Node shows anything but what the kubelet reports (ignoring heartbeat times)."""
    status = node.get("status") or {}
    if status.get("capacity") != dict(ident.capacity) or status.get("allocatable") != dict(ident.capacity):
        return True
    by_type = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    for ctype in KUBELET_CONDITIONS:
        want = "True" if ctype == "Ready" else "False"
        if (by_type.get(ctype) or {}).get("status") != want:
            return True
    addresses = [a.get("address") for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
    return addresses != [ident.internal_ip]


# ---------------------------------------------------------------------------------- the Lease
def lease_body(node: Obj, *, now: datetime, current: Obj | None = None,
               duration_s: int = NODE_LEASE_DURATION_SECONDS) -> Obj:
    """The node's Lease renewed at ``now`` (built on ``current`` so its resourceVersion is the CAS)."""
    meta = node.get("metadata") or {}
    name = str(meta.get("name"))
    body: Obj = copy.deepcopy(current) if current else {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": NODE_LEASE_NAMESPACE}}
    if meta.get("uid"):
        # Like the kubelet: the Lease belongs to the Node, so deleting the Node deletes it.
        body["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node", "name": name,
                                                "uid": meta["uid"]}]
    spec = dict(body.get("spec") or {})
    spec.update(holderIdentity=name, leaseDurationSeconds=duration_s, renewTime=micro_time(now))
    body["spec"] = spec
    return body


__all__ = ["DEFAULT_CAPACITY", "DEFAULT_ROOT_DIR", "KUBELET_VERSION", "LOCAL_PATH_DIR_ANNOTATION",
           "NODE_LEASE_NAMESPACE", "NodeIdentity", "SIMULATED_LABEL",
           "allocate_pod_cidrs", "lease_body", "micro_time", "new_node", "node_internal_ip", "node_names",
           "node_spec_patch", "node_status", "parse_capacity", "rfc3339", "simulated_local_path_dir",
           "status_needs_update"]
