"""The scheduler's cache: one NodeInfo per node, with the pods on it, bound or assumed.

Data flow: node informer events -> ``set_node`` / ``remove_node`` (facts rebuilt, pod totals
kept); pod informer events -> ``set_pod`` / ``remove_pod`` for pods that hold a node's resources
(``spec.nodeName`` set, not Succeeded/Failed); the scheduling loop -> ``assume(pod, node)`` the
moment it picks a node, so the next pod already sees those resources taken without waiting for
the binding's round trip -> the pod comes back through the watch with ``spec.nodeName`` and
``set_pod`` confirms the assumption (no double counting), or the bind fails and ``forget`` gives
the resources back.

Every change is an O(1) adjustment of running totals; nothing scans all pods. The methods report
whether something was freed or a node became more attractive, so the queue knows when to retry
unschedulable pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from scheduler.plugins import NodeFacts, NodeInfo, PodInfo, node_facts, pod_info, pod_key

Obj = Mapping[str, Any]


def holds_resources(pod: Obj) -> str | None:
    """The node whose resources this pod uses (None if unbound or finished)."""
    node = (pod.get("spec") or {}).get("nodeName")
    if not node:
        return None
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return str(node)


@dataclass
class _Placed:
    node: str
    info: PodInfo
    assumed: bool


class SchedulerCache:
    def __init__(self) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.node_order: list[str] = []  # the order filtering walks nodes in
        self.node_infos: list[NodeInfo] = []  # the same order, the NodeInfos themselves (no lookups per pod)
        self._pods: dict[str, _Placed] = {}
        # Pods placed on a node the cache has not seen yet: counted once the node arrives.
        self._orphans: dict[str, dict[str, PodInfo]] = {}

    # ------------------------------------------------------------------ nodes
    def set_node(self, node: Obj) -> bool:
        """Add or update a node; True if the change could let a waiting pod fit."""
        facts = node_facts(node)
        info = self.nodes.get(facts.name)
        if info is None:
            info = NodeInfo(facts)
            self.nodes[facts.name] = info
            self.node_order.append(facts.name)
            self.node_infos.append(info)
            for p in self._orphans.pop(facts.name, {}).values():
                info.add_pod(p)
            return True
        old = info.facts
        info.facts = facts
        info.la_key = -1  # the scores' memo was for the old allocatable
        return _may_help(old, facts)

    def remove_node(self, name: str) -> None:
        info = self.nodes.pop(name, None)
        if info is None:
            return
        self.node_order.remove(name)
        self.node_infos.remove(info)
        # Its pods stay known (they may still be deleted later); park them as orphans.
        parked = {k: p.info for k, p in self._pods.items() if p.node == name}
        if parked:
            self._orphans[name] = parked

    # ------------------------------------------------------------------ pods
    def _place(self, key: str, node: str, info: PodInfo, *, assumed: bool) -> None:
        self._pods[key] = _Placed(node, info, assumed)
        ni = self.nodes.get(node)
        if ni is not None:
            ni.add_pod(info)
        else:
            self._orphans.setdefault(node, {})[key] = info

    def _unplace(self, key: str) -> _Placed | None:
        placed = self._pods.pop(key, None)
        if placed is None:
            return None
        ni = self.nodes.get(placed.node)
        if ni is not None:
            ni.remove_pod(placed.info)
        else:
            self._orphans.get(placed.node, {}).pop(key, None)
        return placed

    def set_pod(self, pod: Obj) -> bool:
        """A pod as the watch shows it; True if it freed resources on a node."""
        key = pod_key(pod)
        node = holds_resources(pod)
        placed = self._pods.get(key)
        if node is None:
            if placed is None or placed.assumed:
                return False  # unbound (maybe assumed by us, binding in flight): nothing to change
            self._unplace(key)
            return True
        if placed is not None and placed.node == node:
            placed.assumed = False  # confirmed; the requests of a bound pod do not change
            return False
        freed = placed is not None
        if placed is not None:
            self._unplace(key)
        self._place(key, node, pod_info(pod), assumed=False)
        return freed

    def remove_pod(self, pod: Obj) -> bool:
        return self._unplace(pod_key(pod)) is not None

    def assume(self, info: PodInfo, node: str) -> None:
        self._unplace(info.key)
        self._place(info.key, node, info, assumed=True)

    def forget(self, key: str) -> None:
        placed = self._pods.get(key)
        if placed is not None and placed.assumed:
            self._unplace(key)

    def is_placed(self, key: str) -> bool:
        return key in self._pods

    def is_assumed(self, key: str) -> bool:
        placed = self._pods.get(key)
        return placed is not None and placed.assumed

    def node_of(self, key: str) -> str | None:
        placed = self._pods.get(key)
        return placed.node if placed else None

    def cache_sizes(self) -> dict[str, int]:
        """For ``scheduler_scheduler_cache_size`` (read at scrape time; counts pods it holds)."""
        assumed = sum(1 for p in self._pods.values() if p.assumed)
        return {"nodes": len(self.nodes), "pods": len(self._pods), "assumed_pods": assumed}


def _may_help(old: NodeFacts, new: NodeFacts) -> bool:
    return (new.alloc_cpu > old.alloc_cpu or new.alloc_memory > old.alloc_memory or new.alloc_pods > old.alloc_pods
            or new.labels != old.labels or new.taints != old.taints or new.unschedulable != old.unschedulable
            or (new.ready != old.ready and new.ready == "True"))


__all__ = ["SchedulerCache", "holds_resources"]
