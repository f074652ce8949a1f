"""The scheduler's walk over the nodes and its ranking: pure functions over ``scheduler.plugins``' facts.

Data flow: the scheduling cycle (``scheduler.scheduler``) hands the pod's ``PodInfo`` and the
cache's NodeInfos in ring order -> ``scan`` walks them from a rotating start until enough fit
(Kubernetes' findNodesThatFit with numFeasibleNodesToFind; a simple pod on a plain node is checked
inline, ``run_filters`` decides the rest) -> ``score`` gives each feasible node least-allocated +
owner-spreading points, and ``top_scored`` keeps the best of them in one pass (with a
per-node memo of the least-allocated part) -> the cycle picks one of the best at random.

No I/O; the only state touched is ``top_scored``'s memo on the NodeInfos (cleared by any change
of a node). The tests compare ``scan`` and ``top_scored`` with the plugin chain and ``score``.
"""

from __future__ import annotations

from typing import Callable, Sequence

from scheduler.plugins import MAX_SCORE, NodeInfo, PodInfo, run_filters


def scan(pod: PodInfo, nodes: Sequence[NodeInfo], start: int, want: int, *,
         extra: Callable[[NodeInfo], list[str] | None] | None = None,
         ) -> tuple[list[NodeInfo], dict[str, list[str]], int]:
    """Filter ``nodes`` round the ring from ``start`` until ``want`` fit (Kubernetes' findNodesThatFit
    with numFeasibleNodesToFind): (the feasible nodes in walk order, the reasons of each rejected
    node, how many nodes were evaluated). ``extra`` is one more filter (VolumeBinding) run on the
    nodes the plugins pass."""
    feasible: list[NodeInfo] = []
    rejected: dict[str, list[str]] = {}
    inline = pod.simple and extra is None
    cpu, mem = pod.milli_cpu, pod.memory
    evaluated = 0
    for ni in (list(nodes[start:]) + list(nodes[:start])) if start else nodes:
        evaluated += 1
        f = ni.facts
        if (inline and f.plain and ni.pods < f.alloc_pods and cpu <= f.alloc_cpu - ni.milli_cpu
                and mem <= f.alloc_memory - ni.memory):
            reasons = None  # run_filters' own fast path, without the call
        else:
            reasons = run_filters(pod, ni)
            if reasons is None and extra is not None:
                reasons = extra(ni)
        if reasons is None:
            feasible.append(ni)
            if len(feasible) >= want:
                break
        else:
            rejected[f.name] = reasons
    return feasible, rejected, evaluated


# ------------------------------------------------------------------------------ scores
def least_allocated_score(pod: PodInfo, node: NodeInfo) -> int:
    """0..100: the mean free fraction of cpu and memory after placing the pod (Kubernetes' LeastAllocated)."""
    f = node.facts
    total = 0
    for alloc, used in ((f.alloc_cpu, node.nonzero_cpu + pod.nonzero_cpu),
                        (f.alloc_memory, node.nonzero_memory + pod.nonzero_memory)):
        if alloc > 0 and used <= alloc:
            total += (alloc - used) * MAX_SCORE // alloc
    return total // 2


def spread_score(pod: PodInfo, node: NodeInfo, max_count: int) -> int:
    """0..100: fewer pods of the same owner on the node scores higher (Kubernetes' selector spreading)."""
    if pod.owner_key is None or max_count <= 0:
        return MAX_SCORE
    return MAX_SCORE * (max_count - node.owners.get(pod.owner_key, 0)) // max_count


def score(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """The total score of each feasible node, in order: least_allocated_score + spread_score (the
    reference that ``top_scored``, the scheduler's path, is tested against)."""
    key = pod.owner_key
    max_count = max((n.owners.get(key, 0) for n in nodes), default=0) if key is not None else 0
    return [least_allocated_score(pod, n) + spread_score(pod, n, max_count) for n in nodes]


def top_scored(pod: PodInfo, nodes: list[NodeInfo]) -> list[NodeInfo]:
    """The nodes with the highest ``score``, in order (the same totals as ``score``, in one pass
    without building the list of scores: this runs over hundreds of nodes per pod). A node's
    least-allocated part is kept on the node for the next pod of the same requests (``la_key``):
    between two visits of the ring most nodes did not change, so it is rarely recomputed."""
    key = pod.owner_key
    counts = [n.owners.get(key, 0) for n in nodes] if key is not None else None
    max_count = max(counts) if counts else 0
    p_cpu, p_mem = pod.nonzero_cpu, pod.nonzero_memory
    sig = (p_cpu << 64) | p_mem if 0 <= p_mem < 1 << 64 and p_cpu >= 0 else -2
    best = -1
    top: list[NodeInfo] = []
    for i, n in enumerate(nodes):
        if n.la_key == sig:
            total = n.la
        else:
            total = least_allocated_score(pod, n)
            if sig >= 0:
                n.la_key, n.la = sig, total
        if counts is not None and max_count > 0:
            total += MAX_SCORE * (max_count - counts[i]) // max_count
        else:
            total += MAX_SCORE
        if total > best:
            best = total
            top = [n]
        elif total == best:
            top.append(n)
    return top


__all__ = ["least_allocated_score", "scan", "score", "spread_score", "top_scored"]
