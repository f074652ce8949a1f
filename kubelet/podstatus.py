"""The pure parts of running pods without containers: pod IP allocation and the Running status.

Role: what the simulated kubelet decides per pod, with no I/O, so it is tested with tables.

Data flow:

    informer add/update (pod with status.podIP on one of our nodes) -> PodIPAM.reserve
        (so a restarted kubelet re-learns every IP it gave out before allocating new ones)
    reconcile(pod) -> PodIPAM.allocate(node, uid) -> running_status(pod, pod_ip, host_ip, now)
        -> the same as the pod's status (``same_status``: a null field counts as absent, as the
           API server stores it)? nothing to write : PUT pods/{name}/status
    informer delete / the kubelet finishing a delete -> PodIPAM.release(uid)

``running_status`` keeps every timestamp already present (startTime, startedAt, condition
transition times), so applying it twice gives the same status: the kubelet writes only when
something changed.
"""

from __future__ import annotations

import copy
import ipaddress
from datetime import datetime
from typing import Any

from kubelet.nodestatus import rfc3339

Obj = dict[str, Any]

POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


class PodIPAM:
    """Per-node pod IP allocation from each node's pod CIDR (host-local IPAM's round robin).

    The first host address (x.x.x.1) is left for the node's bridge, as a CNI bridge would. IPs
    are keyed by pod UID, so a new pod with an old pod's name never inherits its address.
    """

    def __init__(self) -> None:
        self._nets: dict[str, ipaddress.IPv4Network] = {}
        self._used: dict[str, dict[int, str]] = {}  # node -> ip -> uid
        self._by_uid: dict[str, tuple[str, int]] = {}
        self._cursor: dict[str, int] = {}

    def add_node(self, node: str, pod_cidr: str) -> None:
        self._nets[node] = ipaddress.IPv4Network(pod_cidr, strict=False)
        self._used.setdefault(node, {})
        self._cursor.setdefault(node, int(self._nets[node].network_address) + 1)

    def _range(self, node: str) -> tuple[int, int]:
        net = self._nets[node]
        first, last = int(net.network_address) + 2, int(net.broadcast_address) - 1
        if net.prefixlen >= 31:
            first, last = int(net.network_address), int(net.broadcast_address)
        return first, last

    def reserve(self, node: str, ip: str, uid: str) -> bool:
        """Record that pod ``uid`` holds ``ip``; False if it is outside the node's CIDR or taken."""
        if node not in self._nets:
            return False
        try:
            value = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        if ipaddress.IPv4Address(value) not in self._nets[node]:
            return False
        holder = self._used[node].get(value)
        if holder is not None:
            return holder == uid
        self.release(uid)
        self._used[node][value] = uid
        self._by_uid[uid] = (node, value)
        return True

    def allocate(self, node: str, uid: str) -> str | None:
        """The IP of pod ``uid`` on ``node`` (a new one if it has none); None when the CIDR is full."""
        held = self._by_uid.get(uid)
        if held is not None and held[0] == node:
            return str(ipaddress.IPv4Address(held[1]))
        first, last = self._range(node)
        used = self._used[node]
        span = last - first + 1
        if span <= 0 or len(used) >= span:
            return None
        start = self._cursor[node]
        for step in range(1, span + 1):
            value = first + (start - first + step) % span
            if value not in used:
                self._cursor[node] = value
                used[value] = uid
                self._by_uid[uid] = (node, value)
                return str(ipaddress.IPv4Address(value))
        return None

    def release(self, uid: str) -> None:
        held = self._by_uid.pop(uid, None)
        if held is not None:
            node, value = held
            if self._used.get(node, {}).get(value) == uid:
                del self._used[node][value]

    def ip_of(self, uid: str) -> str | None:
        held = self._by_uid.get(uid)
        return str(ipaddress.IPv4Address(held[1])) if held else None

    def allocated(self, node: str) -> dict[str, str]:
        """``{ip: uid}`` on ``node``."""
        return {str(ipaddress.IPv4Address(v)): u for v, u in self._used.get(node, {}).items()}


def _condition(current: dict[str, Obj], ctype: str, stamp: str) -> Obj:
    old = current.get(ctype) or {}
    since = old.get("lastTransitionTime") if old.get("status") == "True" else None
    return {"type": ctype, "status": "True", "lastProbeTime": None, "lastTransitionTime": since or stamp}


def _container_id(uid: str, name: str) -> str:
    return f"simulated://{uid}-{name}"


def running_status(pod: Obj, *, pod_ip: str, host_ip: str, now: datetime) -> Obj:
    """The status of ``pod`` with every container running and ready (a copy; ``pod`` is untouched).

    Simulated containers never exit, so this is also the answer for ``restartPolicy: Never`` or
    ``OnFailure``: the pod stays Running until it is deleted. Init containers are shown as
    completed (exit code 0), ephemeral containers as running but never ready. Timestamps already
    present are kept.
    """
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    status = copy.deepcopy(pod.get("status") or {})
    stamp = rfc3339(now)
    uid = str(meta.get("uid") or "")
    start_time = status.get("startTime") or stamp
    current: dict[str, Obj] = {str(c.get("type")): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    others = [c for t, c in current.items() if t not in POD_CONDITIONS]
    status["phase"] = "Running"
    status["conditions"] = [_condition(current, t, stamp) for t in POD_CONDITIONS] + others
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    status["podIP"] = pod_ip
    status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = start_time
    status.pop("reason", None)
    status.pop("message", None)

    def statuses(containers: list[Obj], previous: list[Obj], *, init: bool) -> list[Obj]:
        by_name = {s.get("name"): s for s in previous if isinstance(s, dict)}
        out = []
        for c in containers:
            name = str(c.get("name") or "")
            old = by_name.get(name) or {}
            image = str(c.get("image") or "")
            old_state = old.get("state") or {}
            if init:
                done = old_state.get("terminated") or {}
                state: Obj = {"terminated": {"exitCode": 0, "reason": "Completed",
                                             "startedAt": done.get("startedAt") or start_time,
                                             "finishedAt": done.get("finishedAt") or start_time,
                                             "containerID": _container_id(uid, name)}}
            else:
                running = old_state.get("running") or {}
                state = {"running": {"startedAt": running.get("startedAt") or stamp}}
            out.append({"name": name, "state": state, "lastState": old.get("lastState") or {},
                        "ready": True, "restartCount": int(old.get("restartCount") or 0),
                        "image": image, "imageID": f"simulated://{image}",
                        "containerID": _container_id(uid, name), "started": not init})
        return out

    status["containerStatuses"] = statuses(list(spec.get("containers") or []),
                                           list(status.get("containerStatuses") or []), init=False)
    if spec.get("initContainers"):
        status["initContainerStatuses"] = statuses(list(spec.get("initContainers") or []),
                                                   list(status.get("initContainerStatuses") or []), init=True)
    if spec.get("ephemeralContainers"):
        ephemeral = statuses(list(spec.get("ephemeralContainers") or []),
                             list(status.get("ephemeralContainerStatuses") or []), init=False)
        for st in ephemeral:
            st["ready"] = False
            del st["started"]
        status["ephemeralContainerStatuses"] = ephemeral
    return status


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def same_status(stored: Obj, desired: Obj) -> bool:
    """Whether writing ``desired`` would change ``stored``: the API server drops null fields (a
    condition's ``lastProbeTime: null``), so a desired status that has them is still the same, and
    a kubelet that compared with ``==`` would write the same status again on every sync."""
    return stored == desired or _without_nulls(stored) == _without_nulls(desired)


def needs_ip(pod: Obj) -> bool:
    """False for host-network pods, which take the node's IP."""
    return not (pod.get("spec") or {}).get("hostNetwork")


__all__ = ["POD_CONDITIONS", "PodIPAM", "needs_ip", "running_status", "same_status"]
