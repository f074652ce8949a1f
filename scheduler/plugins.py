"""The scheduler's decisions: filter and score plugins as pure functions over (pod, node info).

Data flow: ``pod_info(pod)`` digests a Pod dict once per scheduling attempt (requests, host
ports, selectors, tolerations, owner) and ``node_facts(node)`` digests a Node dict once per node
event (allocatable, labels, taints, readiness) -> the cache (``scheduler.cache``) keeps one
``NodeInfo`` per node: those facts plus the running totals of the pods on it (bound or assumed)
-> ``run_filters(pod, node)`` returns None (fits) or the reasons it does not, in Kubernetes'
own words and plugin order (NodeUnschedulable, TaintToleration, node readiness, NodeAffinity,
NodePorts, NodeResourcesFit; the first failing plugin decides, as in the scheduler framework)
-> ``scheduler.scoring`` walks the nodes with these filters and ranks the feasible ones ->
``fit_error_message`` turns the per-node reasons of a pod that fits nowhere into Kubernetes'
``0/N nodes are available: ...`` message.

Nothing here does I/O or mutates its inputs; the tests drive these functions with tables.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Mapping

from machinery.quantity import QuantityError, cpu_millis, to_bytes
from machinery.taints import tolerates

Obj = Mapping[str, Any]

# Kubernetes' reason strings (pkg/scheduler/framework/plugins/...).
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_NOT_READY = "node(s) were not ready"
REASON_UNKNOWN_CONDITION = "node(s) had unknown conditions"
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_PORTS = "node(s) didn't have free ports for the requested pod ports"
REASON_CPU = "Insufficient cpu"
REASON_MEMORY = "Insufficient memory"
REASON_PODS = "Too many pods"
NO_NODES = "no nodes available to schedule pods"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
PREEMPTION_NO_VICTIMS = "No preemption victims found for incoming pod"

# Reasons preemption could in principle resolve (Kubernetes' Unschedulable, as opposed to
# UnschedulableAndUnresolvable): evicting pods frees resources and ports, never a taint or a label.
RESOLVABLE = frozenset({REASON_CPU, REASON_MEMORY, REASON_PODS, REASON_PORTS})

# What a request-less container counts as when scoring (Kubernetes' non-zero defaults), so
# best-effort pods still spread instead of piling on one node.
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024
MAX_SCORE = 100

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"


def taint_reason(taint: Obj) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '') or ''}}}"


# ------------------------------------------------------------------------------ pod facts
@dataclass(frozen=True, slots=True)
class PodInfo:
    key: str
    milli_cpu: int
    memory: int
    nonzero_cpu: int
    nonzero_memory: int
    host_ports: tuple[tuple[str, str, int], ...]  # (hostIP, protocol, hostPort)
    node_selector: Mapping[str, str]
    required_terms: tuple[Obj, ...] | None  # None: no required node affinity
    tolerations: tuple[Obj, ...]
    owner_key: str | None  # pods with the same owner_key are spread across nodes
    simple: bool = False  # no selector, affinity or host port: only resources decide on a plain node


def _qty(fn: Any, value: Any) -> int:
    if isinstance(value, str):
        return _qty_text(fn, value)  # node status and pod requests repeat the same few strings
    try:
        return int(fn(value))
    except (QuantityError, TypeError, ValueError, ArithmeticError):
        return 0


@lru_cache(maxsize=4096)
def _qty_text(fn: Any, value: str) -> int:
    try:
        return int(fn(value))
    except (QuantityError, TypeError, ValueError, ArithmeticError):
        return 0


def _container_requests(c: Obj) -> tuple[int, int, bool, bool]:
    res = c.get("resources") or {}
    # The apiserver defaults requests from limits; do it here too for objects that skipped that.
    req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    cpu = req.get("cpu")
    mem = req.get("memory")
    return (_qty(cpu_millis, cpu) if cpu is not None else 0, _qty(to_bytes, mem) if mem is not None else 0,
            cpu is not None, mem is not None)


def pod_requests(pod: Obj) -> tuple[int, int, int, int]:
    """(milli cpu, memory bytes, non-zero cpu, non-zero memory): containers summed, init containers maxed."""
    spec = pod.get("spec") or {}
    cpu = mem = nz_cpu = nz_mem = 0
    for c in spec.get("containers") or []:
        c_cpu, c_mem, has_cpu, has_mem = _container_requests(c)
        cpu += c_cpu
        mem += c_mem
        nz_cpu += c_cpu if has_cpu else DEFAULT_MILLI_CPU
        nz_mem += c_mem if has_mem else DEFAULT_MEMORY
    for c in spec.get("initContainers") or []:
        c_cpu, c_mem, has_cpu, has_mem = _container_requests(c)
        cpu, mem = max(cpu, c_cpu), max(mem, c_mem)
        nz_cpu = max(nz_cpu, c_cpu if has_cpu else DEFAULT_MILLI_CPU)
        nz_mem = max(nz_mem, c_mem if has_mem else DEFAULT_MEMORY)
    overhead = spec.get("overhead") or {}
    if overhead:
        extra_cpu, extra_mem = _qty(cpu_millis, overhead.get("cpu", 0)), _qty(to_bytes, overhead.get("memory", 0))
        cpu, mem, nz_cpu, nz_mem = cpu + extra_cpu, mem + extra_mem, nz_cpu + extra_cpu, nz_mem + extra_mem
    return cpu, mem, nz_cpu, nz_mem


def host_ports(pod: Obj) -> tuple[tuple[str, str, int], ...]:
    out = []
    for c in (pod.get("spec") or {}).get("containers") or []:
        for p in c.get("ports") or []:
            port = int(p.get("hostPort") or 0)
            if port > 0:
                out.append((p.get("hostIP") or "0.0.0.0", p.get("protocol") or "TCP", port))
    return tuple(out)


def owner_key(pod: Obj) -> str | None:
    """The controller owner's uid, else the pod's labels: pods sharing it are spread."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller") and ref.get("uid"):
            return f"uid:{ref['uid']}"
    labels = meta.get("labels") or {}
    if labels:
        return f"{meta.get('namespace', '')}:labels:" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return None


def pod_key(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def pod_info(pod: Obj) -> PodInfo:
    spec = pod.get("spec") or {}
    cpu, mem, nz_cpu, nz_mem = pod_requests(pod)
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    selector = dict(spec.get("nodeSelector") or {})
    ports = host_ports(pod)
    return PodInfo(
        simple=not selector and required is None and not ports,
        key=pod_key(pod), milli_cpu=cpu, memory=mem, nonzero_cpu=nz_cpu, nonzero_memory=nz_mem,
        host_ports=ports, node_selector=selector,
        required_terms=tuple(required.get("nodeSelectorTerms") or ()) if required is not None else None,
        tolerations=tuple(spec.get("tolerations") or ()), owner_key=owner_key(pod))


# ------------------------------------------------------------------------------ node facts
@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the filters read from a Node object; rebuilt on every node event."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Obj, ...]  # only NoSchedule / NoExecute: those that filter
    unschedulable: bool
    ready: str  # the Ready condition's status: "True", "False" or "Unknown" (also when missing)
    alloc_cpu: int
    alloc_memory: int
    alloc_pods: int
    plain: bool = False  # Ready, schedulable, untainted: only labels, ports and resources can reject it


def node_facts(node: Obj) -> NodeFacts:
    meta = node.get("metadata") or {}
    spec = node.get("spec") or {}
    status = node.get("status") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    ready = "Unknown"
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = str(cond.get("status") or "Unknown")
    taints = tuple(t for t in spec.get("taints") or [] if t.get("effect") in ("NoSchedule", "NoExecute"))
    return NodeFacts(
        name=str(meta.get("name") or ""), labels=dict(meta.get("labels") or {}), taints=taints,
        unschedulable=bool(spec.get("unschedulable")), ready=ready,
        alloc_cpu=_qty(cpu_millis, alloc.get("cpu", 0)), alloc_memory=_qty(to_bytes, alloc.get("memory", 0)),
        alloc_pods=_qty(int, alloc.get("pods", 0)),
        plain=ready == "True" and not spec.get("unschedulable") and not taints)


@dataclass(slots=True)
class NodeInfo:
    """A node's facts plus the totals of the pods on it (bound and assumed); the cache updates it."""

    facts: NodeFacts
    milli_cpu: int = 0
    memory: int = 0
    nonzero_cpu: int = 0
    nonzero_memory: int = 0
    pods: int = 0
    ports: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    owners: Counter[str] = field(default_factory=Counter)
    # A memo of top_scored: the least-allocated half-score for pods of request signature
    # ``la_key``; any change of the node (a pod added or removed, new facts) clears it.
    la_key: int = -1
    la: int = 0

    @property
    def name(self) -> str:
        return self.facts.name

    def add_pod(self, p: PodInfo, sign: int = 1) -> None:
        self.la_key = -1
        self.milli_cpu += sign * p.milli_cpu
        self.memory += sign * p.memory
        self.nonzero_cpu += sign * p.nonzero_cpu
        self.nonzero_memory += sign * p.nonzero_memory
        self.pods += sign
        for port in p.host_ports:
            self.ports[port] += sign
            if self.ports[port] <= 0:
                del self.ports[port]
        if p.owner_key is not None:
            self.owners[p.owner_key] += sign
            if self.owners[p.owner_key] <= 0:
                del self.owners[p.owner_key]

    def remove_pod(self, p: PodInfo) -> None:
        self.add_pod(p, -1)


# ------------------------------------------------------------------------------ filters
# Each returns None when the node passes, else the list of reasons (Kubernetes' texts).



def filter_unschedulable(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    if not node.facts.unschedulable:
        return None
    marker = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if any(tolerates(t, marker) for t in pod.tolerations):
        return None
    return [REASON_UNSCHEDULABLE]


def filter_taints(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    for taint in node.facts.taints:
        if not any(tolerates(t, taint) for t in pod.tolerations):
            return [taint_reason(taint)]
    return None


def filter_ready(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    ready = node.facts.ready
    if ready == "True":
        return None
    return [REASON_NOT_READY if ready == "False" else REASON_UNKNOWN_CONDITION]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def match_expression(expr: Obj, values_of: Mapping[str, str]) -> bool:
    """One NodeSelectorRequirement against a node's labels (or fields)."""
    key = expr.get("key") or ""
    op = expr.get("operator")
    values = expr.get("values") or []
    present = key in values_of
    value = values_of.get(key)
    if op == "In":
        return present and value in values
    if op == "NotIn":
        return not present or value not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt"):
        if not present or len(values) != 1:
            return False
        have, want = _int(str(value)), _int(str(values[0]))
        if have is None or want is None:
            return False
        return have > want if op == "Gt" else have < want
    return False


def match_term(term: Obj, facts: NodeFacts) -> bool:
    """A NodeSelectorTerm: all its expressions and fields; an empty term matches nothing."""
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False
    if not all(match_expression(e, facts.labels) for e in exprs):
        return False
    node_fields = {"metadata.name": facts.name}
    for f in fields:
        if f.get("key") != "metadata.name" or f.get("operator") not in ("In", "NotIn"):
            return False
        if not match_expression(f, node_fields):
            return False
    return True


def filter_node_affinity(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    labels = node.facts.labels
    for k, v in pod.node_selector.items():
        if labels.get(k) != v:
            return [REASON_AFFINITY]
    if pod.required_terms is not None and not any(match_term(t, node.facts) for t in pod.required_terms):
        return [REASON_AFFINITY]
    return None


def ports_conflict(want: tuple[str, str, int], used: Iterable[tuple[str, str, int]]) -> bool:
    ip, proto, port = want
    for u_ip, u_proto, u_port in used:
        if u_port == port and u_proto == proto and (ip == u_ip or ip == "0.0.0.0" or u_ip == "0.0.0.0"):
            return True
    return False


def filter_ports(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    if not pod.host_ports or not node.ports:
        return None
    for want in pod.host_ports:
        if ports_conflict(want, node.ports):
            return [REASON_PORTS]
    return None


def filter_resources(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    f = node.facts
    reasons = []
    if node.pods + 1 > f.alloc_pods:
        reasons.append(REASON_PODS)
    if pod.milli_cpu > 0 and pod.milli_cpu > f.alloc_cpu - node.milli_cpu:
        reasons.append(REASON_CPU)
    if pod.memory > 0 and pod.memory > f.alloc_memory - node.memory:
        reasons.append(REASON_MEMORY)
    return reasons or None


FILTERS = (filter_unschedulable, filter_taints, filter_ready, filter_node_affinity, filter_ports,
           filter_resources)


def run_filters(pod: PodInfo, node: NodeInfo) -> list[str] | None:
    """None if the pod fits; else the reasons of the first plugin that rejects the node."""
    f = node.facts
    if f.plain and pod.simple:
        # The hot path, equivalent to the chain below: on a plain node a simple pod can only be
        # rejected by NodeResourcesFit, and it almost always fits.
        if (node.pods < f.alloc_pods and pod.milli_cpu <= f.alloc_cpu - node.milli_cpu
                and pod.memory <= f.alloc_memory - node.memory):
            return None
        return filter_resources(pod, node)
    for plugin in FILTERS:
        reasons = plugin(pod, node)
        if reasons:
            return reasons
    return None


# ------------------------------------------------------------------------------ messages
def _histogram(counts: Mapping[str, int]) -> str:
    return ", ".join(sorted(f"{n} {reason}" for reason, n in counts.items()))


def fit_error_message(num_nodes: int, node_reasons: Mapping[str, list[str]]) -> str:
    """Kubernetes' FitError text plus the preemption post-filter's, for a pod that fits nowhere.

    ``node_reasons`` maps each node to the reasons it was rejected for. No pod here has a
    priority to preempt with, so every node ends up "No preemption victims found" (resources
    or ports: preemption would have looked) or "Preemption is not helpful" (the rest).
    """
    if num_nodes == 0:
        return NO_NODES
    counts: Counter[str] = Counter()
    preemption: Counter[str] = Counter()
    for reasons in node_reasons.values():
        counts.update(reasons)
        helpful = all(r in RESOLVABLE for r in reasons)
        preemption[PREEMPTION_NO_VICTIMS if helpful else PREEMPTION_NOT_HELPFUL] += 1
    msg = f"0/{num_nodes} nodes are available:"
    if counts:
        msg += f" {_histogram(counts)}."
    msg += f" preemption: 0/{num_nodes} nodes are available: {_histogram(preemption)}."
    return msg


__all__ = ["FILTERS", "MAX_SCORE", "NodeFacts", "NodeInfo", "PodInfo", "fit_error_message", "filter_node_affinity",
           "filter_ports", "filter_ready", "filter_resources", "filter_taints", "filter_unschedulable",
           "match_expression", "match_term", "node_facts", "owner_key", "pod_info", "pod_key", "pod_requests",
           "run_filters", "taint_reason", "tolerates"]
