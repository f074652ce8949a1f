"""Node (core/v1, cluster-scoped): taints, pod CIDRs, capacity; written by its kubelet.

After pkg/registry/core/node: unlike most kinds a new Node keeps the status its kubelet sends
(a kubelet registers with its capacity and addresses), and ``allocatable`` defaults to capacity.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import Facts, keyed
from ...validation.containers import TAINT_EFFECTS, quantity
from ...validation.fielderrors import (Causes, Obj, child, duplicate, each, enum, get_bool, get_map, get_maps, get_str,
                                       get_strs, index, invalid, key, required_str)
from ...validation.formats import label_value_errors, qualified_name_errors
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, meta, name_of, spec, status
from ..common.defaulting import map_at

_ATOMIC_LIST = Facts(list_type="atomic")


def cidr_causes(cidr: str, path: str) -> Causes:
    message = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
    try:
        ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return [invalid(path, cidr, message)]
    return [] if "/" in cidr else [invalid(path, cidr, message)]


class NodeStrategy(Strategy):
    kind = "Node"
    plural = "nodes"
    singular = "node"
    namespaced = False
    short_names = ("no",)
    subresources = ("status", "proxy")
    model = "V1Node"
    selectable_fields = ("spec.unschedulable",)
    columns = (
        NAME,
        Column("Status", description="The status of the node"),
        Column("Roles", description="The roles of the node"),
        AGE,
        Column("Version", description="Kubelet Version reported by the node."),
        Column("Internal-IP", priority=1, description="List of addresses reachable to the node."),
        Column("External-IP", priority=1, description="List of addresses reachable to the node."),
        Column("OS-Image", priority=1, description="OS Image reported by the node from /etc/os-release."),
        Column("Kernel-Version", priority=1, description="Kernel Version reported by the node from 'uname -r'."),
        Column("Container-Runtime", priority=1,
               description="ContainerRuntime Version reported by the node through runtime remote API."),
    )
    type_facts = {
        "V1NodeSpec": {"podCIDRs": Facts(patch_strategy="merge", list_type="set"), "taints": _ATOMIC_LIST},
        "V1NodeStatus": {"conditions": keyed("type"), "addresses": keyed("type"), "images": _ATOMIC_LIST,
                         "volumesInUse": _ATOMIC_LIST, "volumesAttached": _ATOMIC_LIST,
                         "runtimeHandlers": _ATOMIC_LIST},
        "V1ContainerImage": {"names": _ATOMIC_LIST},
    }
    protobuf_messages = {
        "Node": "metadata:1:ObjectMeta spec:2:NodeSpec status:3:NodeStatus",
        "NodeSpec": (
            "podCIDR:1:s podCIDRs:7:*s providerID:3:s unschedulable:4:b taints:5:*Taint "
            "configSource:6:NodeConfigSource externalID:2:s "
            "podPreemptionPolicy:8:NodePodPreemptionPolicy"),
        "NodeStatus": (
            "capacity:1:{Quantity} allocatable:2:{Quantity} phase:3:s conditions:4:*NodeCondition "
            "addresses:5:*NodeAddress daemonEndpoints:6:NodeDaemonEndpoints nodeInfo:7:NodeSystemInfo "
            "images:8:*ContainerImage volumesInUse:9:*s volumesAttached:10:*AttachedVolume "
            "config:11:NodeConfigStatus runtimeHandlers:12:*NodeRuntimeHandler "
            "features:13:NodeFeatures declaredFeatures:14:*s"),
        "Taint": "key:1:s! value:2:s effect:3:s! timeAdded:4:Time",
        "NodeConfigSource": "configMap:2:ConfigMapNodeConfigSource",
        "NodePodPreemptionPolicy": "disableResizePreemption:1:*s",
        "NodeCondition": (
            "type:1:s! status:2:s! lastHeartbeatTime:3:Time lastTransitionTime:4:Time reason:5:s "
            "message:6:s"),
        "NodeAddress": "type:1:s! address:2:s!",
        "NodeDaemonEndpoints": "kubeletEndpoint:1:DaemonEndpoint",
        "NodeSystemInfo": (
            "machineID:1:s! systemUUID:2:s! bootID:3:s! kernelVersion:4:s! osImage:5:s! "
            "containerRuntimeVersion:6:s! kubeletVersion:7:s! kubeProxyVersion:8:s! "
            "operatingSystem:9:s! architecture:10:s! swap:11:NodeSwapStatus"),
        "ContainerImage": "names:1:*s sizeBytes:2:i",
        "AttachedVolume": "name:1:s! devicePath:2:s!",
        "NodeConfigStatus": (
            "assigned:1:NodeConfigSource active:2:NodeConfigSource lastKnownGood:3:NodeConfigSource "
            "error:4:s"),
        "NodeRuntimeHandler": "name:1:s! features:2:NodeRuntimeHandlerFeatures",
        "NodeFeatures": "supplementalGroupsPolicy:1:b!",
        "ConfigMapNodeConfigSource": (
            "namespace:1:s! name:2:s! uid:3:s resourceVersion:4:s kubeletConfigKey:5:s!"),
        "DaemonEndpoint": "Port:1:i!",
        "NodeSwapStatus": "capacity:1:i!",
        "NodeRuntimeHandlerFeatures": "recursiveReadOnlyMounts:1:b! userNamespaces:2:b!",
    }


    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        """A kubelet registers its Node with the status it measured: nothing to reset."""

    def defaults(self, obj: Obj) -> None:
        state = map_at(obj, "status")
        capacity = map_at(state, "capacity")
        if state is not None and state.get("allocatable") is None and capacity is not None:
            state["allocatable"] = dict(capacity)

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        node_spec = get_map(obj, "spec", "", causes)
        seen: set[tuple[str, str]] = set()
        for taint_path, taint in get_maps(node_spec, "taints", "spec", causes):
            taint_key = required_str(taint, "key", taint_path, causes, errors=qualified_name_errors)
            value = get_str(taint, "value", taint_path, causes)
            causes.extend(each(child(taint_path, "value"), value, label_value_errors(value)))
            effect = get_str(taint, "effect", taint_path, causes)
            causes.extend(enum(child(taint_path, "effect"), effect, TAINT_EFFECTS))
            if (taint_key, effect) in seen:
                causes.append(duplicate("spec.taints", f"{taint_key}:{effect}"))
            seen.add((taint_key, effect))
        cidr = get_str(node_spec, "podCIDR", "spec", causes)
        if cidr:
            causes.extend(cidr_causes(cidr, "spec.podCIDR"))
        for i, cidr in enumerate(get_strs(node_spec, "podCIDRs", "spec", causes)):
            causes.extend(cidr_causes(cidr, index("spec.podCIDRs", i)))
        get_bool(node_spec, "unschedulable", "spec", causes)
        state = get_map(obj, "status", "", causes)
        for list_name in ("capacity", "allocatable"):
            list_path = child("status", list_name)
            for resource, value in get_map(state, list_name, "status", causes).items():
                quantity(value, key(list_path, resource), causes)
        for address_path, address in get_maps(state, "addresses", "status", causes):
            get_str(address, "type", address_path, causes)
            get_str(address, "address", address_path, causes)
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        info = status(obj).get("nodeInfo") or {}
        return [
            name_of(obj), _node_status(obj), _node_roles(obj), age(obj, now), info.get("kubeletVersion", ""),
            _node_address(obj, "InternalIP"), _node_address(obj, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>",
        ]


def _node_status(node: Mapping[str, Any]) -> str:
    ready = [c for c in status(node).get("conditions") or [] if c.get("type") == "Ready"]
    words = ["Ready" if ready[-1].get("status") == "True" else "NotReady"] if ready else ["Unknown"]
    if spec(node).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_roles(node: Mapping[str, Any]) -> str:
    roles: set[str] = set()
    for label, value in (meta(node).get("labels") or {}).items():
        if label.startswith("node-role.kubernetes.io/") and label != "node-role.kubernetes.io/":
            roles.add(label.removeprefix("node-role.kubernetes.io/"))
        elif label == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Mapping[str, Any], address_type: str) -> str:
    for address in status(node).get("addresses") or []:
        if address.get("type") == address_type:
            return str(address.get("address", ""))
    return "<none>"


STRATEGY = NodeStrategy()
