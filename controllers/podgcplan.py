"""The pod garbage collector's decisions, purely: which pods to force-delete and why.

After pkg/controller/podgc (``gcTerminated``, ``gcTerminating``, ``gcOrphaned``,
``gcUnscheduledTerminating``). Data flow: every pod and node from the caches (plus, for
orphans, the nodes the executor confirmed gone after the quarantine) -> the pods to delete:

- terminated pods (phase neither Pending, Running nor Unknown) beyond the threshold, evicted
  ones first, then the oldest (name breaks ties);
- pods being deleted on a node that is not Ready and carries the
  ``node.kubernetes.io/out-of-service`` taint;
- pods bound to a node that no longer exists (marked Failed with ``DisruptionTarget``
  ``DeletionByPodGC`` first, so no pod stays Running without a kubelet);
- pods being deleted that were never scheduled.

The executor marks each non-terminal pod Failed (``failed_status``) and deletes it with grace 0.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from machinery.timefmt import parse_time

Obj = dict[str, Any]

OUT_OF_SERVICE_TAINT = "node.kubernetes.io/out-of-service"
ORPHAN_CONDITION: Obj = {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                         "message": "PodGC: node no longer exists"}
_EPOCH = datetime.min


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _node_name(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def _phase(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_terminated(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) not in ("Pending", "Running", "Unknown")


def is_terminating(pod: Mapping[str, Any]) -> bool:
    return bool(_meta(pod).get("deletionTimestamp"))


def is_evicted(pod: Mapping[str, Any]) -> bool:
    return _phase(pod) == "Failed" and (pod.get("status") or {}).get("reason") == "Evicted"


def gc_order(pods: Sequence[Obj]) -> list[Obj]:
    """byEvictionAndCreationTimestamp: evicted pods first, then by creation time, then name."""
    def key(pod: Obj) -> tuple[bool, datetime, str]:
        created = parse_time(_meta(pod).get("creationTimestamp"))
        return (not is_evicted(pod), created.replace(tzinfo=None) if created else _EPOCH, str(_meta(pod).get("name")))
    return sorted(pods, key=key)


def terminated_beyond(pods: Sequence[Obj], threshold: int) -> list[Obj]:
    """gcTerminated: the terminated pods over ``threshold`` (none when the threshold is <= 0)."""
    if threshold <= 0:
        return []
    terminated = [p for p in pods if is_terminated(p)]
    excess = len(terminated) - threshold
    return gc_order(terminated)[:excess] if excess > 0 else []


def _node_ready(node: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def terminating_out_of_service(pods: Sequence[Obj], nodes: Mapping[str, Obj]) -> list[Obj]:
    """gcTerminating: pods being deleted on not-Ready nodes tainted out-of-service."""
    out = []
    for pod in pods:
        node = nodes.get(_node_name(pod))
        if not is_terminating(pod) or node is None:
            continue
        taints = (node.get("spec") or {}).get("taints") or []
        if not _node_ready(node) and any(t.get("key") == OUT_OF_SERVICE_TAINT for t in taints):
            out.append(pod)
    return gc_order(out)


def missing_nodes(pods: Sequence[Obj], node_names: Collection[str]) -> set[str]:
    """The node names pods are bound to that no node in the cache has (quarantine candidates)."""
    return {_node_name(p) for p in pods if _node_name(p) and _node_name(p) not in node_names}


def orphaned(pods: Sequence[Obj], deleted_nodes: Collection[str]) -> list[Obj]:
    """gcOrphaned: the pods of nodes confirmed gone."""
    return [p for p in pods if _node_name(p) in deleted_nodes]


def unscheduled_terminating(pods: Sequence[Obj]) -> list[Obj]:
    return [p for p in pods if is_terminating(p) and not _node_name(p)]


def failed_status(pod: Mapping[str, Any], *, condition: Obj | None, now: str) -> Obj | None:
    """The status patch that marks a pod Failed before its forced deletion; None if already terminal."""
    if _phase(pod) in ("Succeeded", "Failed"):
        return None
    patch: Obj = {"phase": "Failed"}
    if condition is not None:
        patch["conditions"] = [{**condition, "lastProbeTime": None, "lastTransitionTime": now}]
    return patch
