"""The pure parts of the kubelets: capacity parsing, pod CIDRs, Node/Lease bodies, pod IPs and status."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kubelet.nodestatus import (
    KUBELET_VERSION, NodeIdentity, allocate_pod_cidrs, lease_body, new_node, node_internal_ip, node_names,
    node_spec_patch, node_status, parse_capacity, status_needs_update,
)
from kubelet.podstatus import PodIPAM, running_status

NOW = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("cpu=8,memory=32Gi,pods=110", {"cpu": "8", "memory": "32Gi", "pods": "110"}),
    (" cpu = 500m , memory=1Gi ", {"cpu": "500m", "memory": "1Gi", "pods": "110"}),
    ("nvidia.com/gpu=2", {"nvidia.com/gpu": "2", "cpu": "8", "memory": "32Gi", "pods": "110"}),
    ("", {"cpu": "8", "memory": "32Gi", "pods": "110"}),
])
def test_parse_capacity(text: str, expected: dict[str, str]) -> None:
    assert parse_capacity(text) == expected


@pytest.mark.parametrize("text, message", [
    ("cpu", "expected NAME=QUANTITY"),
    ("cpu=", "expected NAME=QUANTITY"),
    ("=8", "expected NAME=QUANTITY"),
    ("cpu=eight", "cpu=eight: quantities must match"),
    ("memory=1Qi", "memory=1Qi:"),
    ("cpu=1,cpu=2", "cpu is given twice"),
    ("cpu=-1", "non-negative"),
    ("pods=1.5", "whole number"),
])
def test_parse_capacity_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_capacity(text)


def test_node_names() -> None:
    assert node_names("sim", 1) == ["sim"]
    assert node_names("sim", 3) == ["sim-0", "sim-1", "sim-2"]
    with pytest.raises(ValueError):
        node_names("sim", 0)


def test_pod_cidrs_are_free_and_disjoint() -> None:
    got = allocate_pod_cidrs(["a", "b", "c"], used=["10.244.0.0/24", "10.244.7.0/24", "garbage"],
                             cluster_cidr="10.244.0.0/16")
    nets = [ipaddress.IPv4Network(c) for c in got.values()]
    assert all(n.prefixlen == 24 and n.subnet_of(ipaddress.IPv4Network("10.244.0.0/16")) for n in nets)
    taken = [ipaddress.IPv4Network("10.244.0.0/24"), ipaddress.IPv4Network("10.244.7.0/24")]
    for i, n in enumerate(nets):
        assert not any(n.overlaps(t) for t in taken + nets[:i])
    # deterministic: the same inputs give the same answer
    assert got == allocate_pod_cidrs(["a", "b", "c"], used=["10.244.0.0/24", "10.244.7.0/24"],
                                     cluster_cidr="10.244.0.0/16")


def test_pod_cidrs_shrink_for_many_nodes() -> None:
    names = [f"n-{i}" for i in range(1000)]
    got = allocate_pod_cidrs(names, used=["10.244.3.0/24"], cluster_cidr="10.244.0.0/16")
    nets = sorted(ipaddress.ip_network(c) for c in got.values())
    assert len(nets) == 1000 and {n.prefixlen for n in nets} == {26}
    for a, b in zip(nets, nets[1:]):
        assert not a.overlaps(b)
    assert not any(n.overlaps(ipaddress.ip_network("10.244.3.0/24")) for n in nets)
    with pytest.raises(ValueError, match="no room"):
        allocate_pod_cidrs(names, used=[], cluster_cidr="10.244.0.0/24")


def test_node_internal_ips_are_unique() -> None:
    assert node_internal_ip("10.244.5.0/24", cluster_cidr="10.244.0.0/16") == "10.0.5.1"
    cidrs = allocate_pod_cidrs([f"n-{i}" for i in range(600)], used=[], cluster_cidr="10.244.0.0/16")
    ips = {node_internal_ip(c, cluster_cidr="10.244.0.0/16") for c in cidrs.values()}
    assert len(ips) == 600 and all(ip.startswith("10.0.") for ip in ips)


IDENT = NodeIdentity(name="sim-0", pod_cidr="10.244.1.0/24", internal_ip="10.0.1.1",
                     capacity={"cpu": "8", "memory": "32Gi", "pods": "110"})


def test_new_node_shape() -> None:
    node = new_node(IDENT, now=NOW)
    assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "sim-0"
    assert node["metadata"]["labels"]["minik8s.io/simulated"] == "true"
    assert node["metadata"]["labels"]["kubernetes.io/os"] == "linux"
    assert node["spec"] == {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}
    status = node["status"]
    assert status["capacity"] == status["allocatable"] == {"cpu": "8", "memory": "32Gi", "pods": "110"}
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Ready"]["status"] == "True" and conds["Ready"]["reason"] == "KubeletReady"
    assert conds["Ready"]["message"] == "kubelet is posting ready status"
    assert all(conds[t]["status"] == "False" for t in ("MemoryPressure", "DiskPressure", "PIDPressure"))
    assert status["addresses"] == [{"type": "InternalIP", "address": "10.0.1.1"},
                                   {"type": "Hostname", "address": "sim-0"}]
    info = status["nodeInfo"]
    assert info["kubeletVersion"] == KUBELET_VERSION and info["containerRuntimeVersion"] == "simulated://0"
    assert info["operatingSystem"] == "linux" and info["architecture"]
    assert not status_needs_update(IDENT, node)


def test_status_reasserts_ready_and_keeps_transition_times() -> None:
    node = new_node(IDENT, now=NOW)
    later = NOW + timedelta(minutes=5)
    # unchanged Ready keeps its transition time; the heartbeat moves
    again = node_status(IDENT, now=later, current=node["status"])
    ready = next(c for c in again["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2025-01-02T03:04:05Z" and ready["lastHeartbeatTime"] == "2025-01-02T03:09:05Z"
    # the node lifecycle controller set it Unknown: the kubelet puts it back, with a new transition
    unknown = {**node, "status": {**node["status"], "conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "lastTransitionTime": "x"},
        {"type": "NetworkUnavailable", "status": "False"}]}}
    assert status_needs_update(IDENT, unknown)
    fixed = node_status(IDENT, now=later, current=unknown["status"])
    types = [c["type"] for c in fixed["conditions"]]
    assert "NetworkUnavailable" in types  # not ours: kept
    ready = next(c for c in fixed["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "2025-01-02T03:09:05Z"


def test_node_spec_patch() -> None:
    node = new_node(IDENT, now=NOW)
    assert node_spec_patch(IDENT, node) is None
    bare = {"metadata": {"name": "sim-0", "labels": {"team": "x"}}, "spec": {}}
    patch = node_spec_patch(IDENT, bare)
    assert patch is not None
    assert patch["spec"]["podCIDR"] == "10.244.1.0/24"
    assert patch["metadata"]["labels"]["kubernetes.io/hostname"] == "sim-0" and "team" not in patch["metadata"]["labels"]


def test_lease_body() -> None:
    node = {"metadata": {"name": "sim-0", "uid": "u-1"}}
    lease = lease_body(node, now=NOW)
    assert lease["metadata"] == {"name": "sim-0", "namespace": "kube-node-lease", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Node", "name": "sim-0", "uid": "u-1"}]}
    assert lease["spec"] == {"holderIdentity": "sim-0", "leaseDurationSeconds": 40,
                             "renewTime": "2025-01-02T03:04:05.000000Z"}
    current = {**lease, "metadata": {**lease["metadata"], "resourceVersion": "7"}}
    renewed = lease_body(node, now=NOW + timedelta(seconds=10), current=current)
    assert renewed["metadata"]["resourceVersion"] == "7"  # the compare-and-swap precondition
    assert renewed["spec"]["renewTime"] == "2025-01-02T03:04:15.000000Z"
    assert current["spec"]["renewTime"] == "2025-01-02T03:04:05.000000Z"  # input untouched


# ---------------------------------------------------------------------------------- pods
def test_ipam_allocates_unique_ips_in_the_cidr_and_releases() -> None:
    ipam = PodIPAM()
    ipam.add_node("n", "10.244.1.0/29")  # hosts .1-.6; .1 is the bridge: 5 pod IPs
    ips = [ipam.allocate("n", f"u{i}") for i in range(5)]
    assert ips == ["10.244.1.2", "10.244.1.3", "10.244.1.4", "10.244.1.5", "10.244.1.6"]
    assert ipam.allocate("n", "u-more") is None
    assert ipam.allocate("n", "u0") == "10.244.1.2"  # same pod, same IP
    ipam.release("u2")
    assert ipam.allocate("n", "u-new") == "10.244.1.4"


def test_ipam_reserve_relearns_and_refuses_conflicts() -> None:
    ipam = PodIPAM()
    ipam.add_node("n", "10.244.1.0/24")
    assert ipam.reserve("n", "10.244.1.9", "old")
    assert ipam.reserve("n", "10.244.1.9", "old")  # idempotent
    assert not ipam.reserve("n", "10.244.1.9", "other")
    assert not ipam.reserve("n", "10.9.9.9", "x")  # not in this node's CIDR
    assert not ipam.reserve("elsewhere", "10.244.1.3", "x")
    assert ipam.allocated("n") == {"10.244.1.9": "old"}
    # round robin never hands out a reserved address
    got = {ipam.allocate("n", f"u{i}") for i in range(253)}
    assert "10.244.1.9" not in got and None in got


POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "web", "namespace": "ns", "uid": "uid-1", "resourceVersion": "5"},
    "spec": {"nodeName": "sim-0", "containers": [{"name": "app", "image": "nginx:1.27"},
                                                 {"name": "side", "image": "busybox"}],
             "initContainers": [{"name": "init", "image": "alpine"}]},
    "status": {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": "2025-01-01T00:00:00Z"}]},
}


def test_running_status_shape() -> None:
    status = running_status(POD, pod_ip="10.244.1.2", host_ip="10.0.1.1", now=NOW)
    assert status["phase"] == "Running" and status["qosClass"] == "BestEffort"
    assert status["podIP"] == "10.244.1.2" and status["podIPs"] == [{"ip": "10.244.1.2"}]
    assert status["hostIP"] == "10.0.1.1" and status["hostIPs"] == [{"ip": "10.0.1.1"}]
    assert status["startTime"] == "2025-01-02T03:04:05Z"
    conds = {c["type"]: c for c in status["conditions"]}
    assert {"PodScheduled", "Initialized", "ContainersReady", "Ready"} <= set(conds)
    assert all(c["status"] == "True" for c in conds.values())
    assert conds["PodScheduled"]["lastTransitionTime"] == "2025-01-01T00:00:00Z"  # kept
    app, side = status["containerStatuses"]
    assert app == {"name": "app", "state": {"running": {"startedAt": "2025-01-02T03:04:05Z"}}, "lastState": {},
                   "ready": True, "restartCount": 0, "image": "nginx:1.27", "imageID": "simulated://nginx:1.27",
                   "containerID": "simulated://uid-1-app", "started": True}
    assert side["name"] == "side"
    (init,) = status["initContainerStatuses"]
    assert init["state"]["terminated"]["exitCode"] == 0 and init["state"]["terminated"]["reason"] == "Completed"
    assert POD["status"]["phase"] == "Pending"  # the input is not touched


def test_running_status_is_a_fixed_point() -> None:
    first = running_status(POD, pod_ip="10.244.1.2", host_ip="10.0.1.1", now=NOW)
    again = running_status({**POD, "status": first}, pod_ip="10.244.1.2", host_ip="10.0.1.1",
                           now=NOW + timedelta(hours=1))
    assert again == first  # nothing to write the second time


@pytest.mark.parametrize("policy", ["Always", "OnFailure", "Never"])
def test_running_status_whatever_the_restart_policy(policy: str) -> None:
    pod = {**POD, "spec": {**POD["spec"], "restartPolicy": policy}}
    assert running_status(pod, pod_ip="10.244.1.2", host_ip="10.0.1.1", now=NOW)["phase"] == "Running"
