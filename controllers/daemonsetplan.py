"""The DaemonSet controller's decisions, as pure functions over wire dicts.

Role: DESIGN pattern 6 for ``controllers.daemonset``, after Kubernetes' pkg/controller/daemon
(``NodeShouldRunDaemonPod``, ``podsShouldBeOnNode``, ``rollingUpdate``, ``updateDaemonSetStatus``,
``constructHistory``, ``cleanupHistory``) and pkg/controller/daemon/util (the tolerations daemon
pods get, the ``metadata.name`` node affinity that pins a pod to its node, ``IsPodUpdated``).

Data flow:

    the DaemonSet + the pods of its namespace + every Node + its ControllerRevisions (caches)
        -> plan_history: reuse the revision whose data is the DaemonSet's template patch
           (renumbered to the newest if it is not) or a new one named ``<ds>-<template hash>``
           -> the revision hash the pods carry as ``controller-revision-hash``
        -> plan: claim pods (adopt matching orphans, release what stopped matching)
                 pods by target node (spec.nodeName, else the pinning node affinity)
                 per node: should_run / should_continue_running (nodeSelector, required node
                 affinity, taints against the template's tolerations plus the daemon ones)
                 manage: create on nodes that need a pod, delete failed/succeeded/surplus pods,
                         pods on nodes that should not run them, unscheduled pods of gone nodes
                 if manage has nothing to do: the RollingUpdate step (maxUnavailable: delete
                 old pods while few enough nodes are unavailable; maxSurge: create new pods
                 beside available old ones, delete old ones once the new one is available)
                 status: desired/current/misscheduled/ready/updated/available/unavailable
        -> DaemonSetPlan -> the executor (adopt/release, create pinned pods, delete, /status)
    history_to_delete: the oldest revisions beyond revisionHistoryLimit no pod uses.

Iteration over nodes is by name so a plan is deterministic. Nothing here reads a clock, does
I/O or mutates its arguments.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers import history, ownerrefs
from controllers.deploymentutil import compute_hash, scaled_value
from controllers.ownerrefs import Obj, is_deleting, meta, name_of
from controllers.replicasetplan import is_pod_available, is_pod_ready, rs_selector_matches
from machinery.selectors import Operator, Requirement
from machinery.taints import tolerates
from machinery.timefmt import parse_time

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
BURST_REPLICAS = 250

_NO_EXECUTE, _NO_SCHEDULE = "NoExecute", "NoSchedule"
DAEMON_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": _NO_EXECUTE},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": _NO_EXECUTE},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": _NO_SCHEDULE},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": _NO_SCHEDULE},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": _NO_SCHEDULE},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": _NO_SCHEDULE},
)
HOST_NETWORK_TOLERATION = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists",
                           "effect": _NO_SCHEDULE}
_OPERATORS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
              "DoesNotExist": Operator.DOES_NOT_EXIST, "Gt": Operator.GREATER_THAN, "Lt": Operator.LESS_THAN}


# ============================================================================ pods of a DaemonSet
def _same_toleration(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """``Toleration.MatchToleration``: same key, operator, value and effect."""
    return all((a.get(k) or "") == (b.get(k) or "") for k in ("key", "operator", "value", "effect"))


def with_daemon_tolerations(pod_spec: Mapping[str, Any]) -> Obj:
    """``AddOrUpdateDaemonPodTolerations``: a copy of the spec tolerating node problems forever."""
    out = copy.deepcopy(dict(pod_spec))
    tolerations = list(out.get("tolerations") or [])
    wanted = list(DAEMON_TOLERATIONS) + ([HOST_NETWORK_TOLERATION] if out.get("hostNetwork") else [])
    for toleration in wanted:
        for i, have in enumerate(tolerations):
            if _same_toleration(have, toleration):
                tolerations[i] = dict(toleration)
                break
        else:
            tolerations.append(dict(toleration))
    out["tolerations"] = tolerations
    return out


def pin_to_node(affinity: Mapping[str, Any] | None, node_name: str) -> Obj:
    """``ReplaceDaemonSetPodNodeNameNodeAffinity``: the required node affinity becomes the one term
    ``matchFields metadata.name In [node]`` (the scheduler then places the pod there)."""
    out = copy.deepcopy(dict(affinity or {}))
    node_affinity = out.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    return out


def template_generation(ds: Mapping[str, Any]) -> int | None:
    value = (meta(dict(ds)).get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def daemon_pod(ds: Obj, node_name: str, *, hash_: str) -> Obj:
    """The pod ``syncNodes`` creates for ``node_name``: the template with the daemon tolerations,
    the revision labels and the pinning affinity, owned by the DaemonSet."""
    template = copy.deepcopy((ds.get("spec") or {}).get("template") or {})
    labels = template.setdefault("metadata", {}).setdefault("labels", {})
    generation = template_generation(ds)
    if generation is not None:
        labels[TEMPLATE_GENERATION_LABEL] = str(generation)
    labels[history.POD_REVISION_LABEL] = hash_
    pod_spec = with_daemon_tolerations(template.get("spec") or {})
    pod_spec["affinity"] = pin_to_node(pod_spec.get("affinity"), node_name)
    template["spec"] = pod_spec
    return ownerrefs.pod_from_template(template, ds, api_version="apps/v1", kind="DaemonSet")


def is_pod_updated(pod: Obj, hash_: str, generation: int | None) -> bool:
    """``IsPodUpdated``: the pod carries the current revision hash (or template generation)."""
    labels = meta(pod).get("labels") or {}
    by_generation = generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == str(generation)
    return bool(hash_) and labels.get(history.POD_REVISION_LABEL) == hash_ or by_generation


def target_node(pod: Obj) -> str:
    """``GetTargetNodeName``: where the pod runs, or the node its pinning affinity names."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution") or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            values = req.get("values") or []
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and len(values) == 1:
                return str(values[0])
    return ""


# ============================================================================ which nodes run it
def _requirement_matches(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    op = _OPERATORS.get(str(req.get("operator")))
    if op is None:
        return False
    return Requirement(str(req.get("key") or ""), op, tuple(req.get("values") or ())).matches(values)


def _term_matches(term: Mapping[str, Any], node: Obj) -> bool:
    """A NodeSelectorTerm (labels by matchExpressions, the name by matchFields); empty: nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = meta(node).get("labels") or {}
    if not all(_requirement_matches(e, labels) for e in exprs):
        return False
    return all(f.get("key") == "metadata.name" and _requirement_matches(f, {"metadata.name": name_of(node)})
               for f in fields)


def fits_node_affinity(pod_spec: Mapping[str, Any], node: Obj) -> bool:
    """``GetRequiredNodeAffinity(pod).Match(node)``: nodeSelector and the required terms."""
    labels = meta(node).get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    required = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if required is None:
        return True
    return any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or [])


def _untolerated(taints: Sequence[Mapping[str, Any]], tolerations: Sequence[Mapping[str, Any]],
                 effects: tuple[str, ...]) -> bool:
    return any(t.get("effect") in effects and not any(tolerates(tol, t) for tol in tolerations) for t in taints)


def should_run(ds: Obj, node: Obj, *, pod_spec: Mapping[str, Any] | None = None) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (a pod should be created here, an existing one may stay).
    ``pod_spec``: the template's spec with the daemon tolerations, when already made."""
    if pod_spec is None:
        pod_spec = with_daemon_tolerations(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    wanted_name = pod_spec.get("nodeName")
    if wanted_name and wanted_name != name_of(node):
        return False, False
    if not fits_node_affinity(pod_spec, node):
        return False, False
    taints = (node.get("spec") or {}).get("taints") or []
    tolerations = pod_spec.get("tolerations") or []
    if _untolerated(taints, tolerations, (_NO_SCHEDULE, _NO_EXECUTE)):
        return False, not _untolerated(taints, tolerations, (_NO_EXECUTE,))
    return True, True


# ============================================================================ the plan
@dataclass
class DaemonSetPlan:
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)
    create_on: list[str] = field(default_factory=list)  # node names, in order
    delete: list[Obj] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    requeue_after: float | None = None


def _by_creation_and_phase(pods: Sequence[Obj]) -> list[Obj]:
    """``podByCreationTimestampAndPhase``: scheduled first, then oldest, then by name."""
    return sorted(pods, key=lambda p: (not (p.get("spec") or {}).get("nodeName"),
                                       str(meta(p).get("creationTimestamp") or ""), name_of(p)))


def _phase(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def _max_counts(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) of a RollingUpdate, rounded up as ``SurgeCount``/``UnavailableCount``."""
    strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled_value(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if desired > 0 and surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


Runs = Mapping[str, tuple[bool, bool]]  # node name -> should_run


def _manage(ds: Obj, nodes: Sequence[Obj], by_node: Mapping[str, list[Obj]], *, runs: Runs, hash_: str,
            now: datetime, surge: bool, p: DaemonSetPlan) -> None:
    """``manage``/``podsShouldBeOnNode``: what each node needs, whatever the rollout."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    node_names = {name_of(n) for n in nodes}
    for node in nodes:
        run, keep = runs[name_of(node)]
        pods = by_node.get(name_of(node), [])
        if run and not pods:
            p.create_on.append(name_of(node))
        elif keep:
            running = []
            for pod in pods:
                if is_deleting(pod):
                    continue
                if _phase(pod) in ("Failed", "Succeeded"):
                    p.delete.append(pod)
                else:
                    running.append(pod)
            running = _by_creation_and_phase(running)
            if not surge:
                p.delete.extend(running[1:])
                continue
            if len(running) <= 1:
                if not running and run:
                    p.create_on.append(name_of(node))
                continue
            oldest_new = oldest_old = None
            for pod in running:
                is_new = (meta(pod).get("labels") or {}).get(history.POD_REVISION_LABEL) == hash_
                if is_new and oldest_new is None:
                    oldest_new = pod
                elif not is_new and oldest_old is None:
                    oldest_old = pod
                else:
                    p.delete.append(pod)
            if oldest_new is not None and oldest_old is not None and (
                    not is_pod_ready(oldest_old) or is_pod_available(oldest_new, min_ready, now)):
                p.delete.append(oldest_old)
        elif pods:
            p.delete.extend(pod for pod in pods if not is_deleting(pod))
    # Pods pinned to nodes that no longer exist and never scheduled (getUnscheduledPodsWithoutNode).
    for name, pods in sorted(by_node.items()):
        if name not in node_names:
            p.delete.extend(pod for pod in pods if not (pod.get("spec") or {}).get("nodeName")
                            and not is_deleting(pod))


def _new_and_old(pods: Sequence[Obj], hash_: str, generation: int | None) -> tuple[Obj | None, Obj | None, bool]:
    """``findUpdatedPodsOnNode``: the node's one new and one old pod (ok False when there are more)."""
    new = old = None
    for pod in pods:
        if is_deleting(pod):
            continue
        if is_pod_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True


def _rolling_update(ds: Obj, nodes: Sequence[Obj], by_node: Mapping[str, list[Obj]], *, runs: Runs, hash_: str,
                    now: datetime, p: DaemonSetPlan) -> None:
    """``rollingUpdate``: replace old pods without more than maxUnavailable nodes unavailable
    (maxSurge 0), or by surging at most maxSurge new pods beside available old ones."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    wanted = [n for n in nodes if runs[name_of(n)][0]]
    per_node: dict[str, list[Obj]] = {name: list(pods) for name, pods in by_node.items()}
    for node in wanted:
        per_node.setdefault(name_of(node), [])
    max_surge, max_unavailable = _max_counts(ds, len(wanted))
    available = lambda pod: is_pod_available(pod, min_ready, now)  # noqa: E731
    if max_surge == 0:
        unavailable, replace, candidates = 0, [], []
        for name in sorted(per_node):
            new, old, ok = _new_and_old(per_node[name], hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1
            elif new is not None:
                unavailable += 0 if available(new) else 1
            elif old is not None and not available(old):
                replace.append(old)
                unavailable += 1
            elif old is not None and unavailable < max_unavailable:
                candidates.append(old)
        room = min(max(0, max_unavailable - unavailable), len(candidates))
        p.delete.extend(replace + candidates[:room])
        return
    surge, available_count = 0, 0
    allowed: list[str] = []
    candidate_nodes: list[str] = []
    not_run: list[Obj] = []
    for name in sorted(per_node):
        new, old, ok = _new_and_old(per_node[name], hash_, generation)
        if not ok:
            surge += 1
            continue
        shown = old if old is not None else new
        if shown is not None and available(shown):
            available_count += 1
        if old is None:
            continue
        if new is None:
            runs_here = name in runs and runs[name][0]
            if not available(old):
                if not runs_here:
                    p.delete.append(old)
                else:
                    allowed.append(name)
            elif not runs_here:
                not_run.append(old)
            elif surge < max_surge:
                candidate_nodes.append(name)
        elif not available(new):
            surge += 1
        else:
            p.delete.append(old)
    deletable = min(max(0, available_count - len(wanted)), len(not_run))
    p.delete.extend(not_run[:deletable])
    room = min(max(0, max_surge - surge), len(candidate_nodes))
    p.create_on.extend(allowed + candidate_nodes[:room])


def calculate_status(ds: Obj, nodes: Sequence[Obj], by_node: Mapping[str, list[Obj]], *, runs: Runs, hash_: str,
                     now: datetime, observe_generation: bool) -> dict[str, Any]:
    """``updateDaemonSetStatus``: the counters over the nodes (zero optional counters left out)."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    generation = template_generation(ds)
    desired = current = misscheduled = ready = updated = available = 0
    for node in nodes:
        pods = by_node.get(name_of(node), [])
        if runs[name_of(node)][0]:
            desired += 1
            if not pods:
                continue
            current += 1
            pod = _by_creation_and_phase(pods)[0]
            if is_pod_ready(pod):
                ready += 1
                available += 1 if is_pod_available(pod, min_ready, now) else 0
            updated += 1 if is_pod_updated(pod, hash_, generation) else 0
        elif pods:
            misscheduled += 1
    old = ds.get("status") or {}
    status: dict[str, Any] = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                              "desiredNumberScheduled": desired, "numberReady": ready}
    generation_seen = meta(ds).get("generation") if observe_generation else old.get("observedGeneration")
    for key, value in (("observedGeneration", generation_seen), ("updatedNumberScheduled", updated),
                       ("numberAvailable", available), ("numberUnavailable", desired - available),
                       ("collisionCount", old.get("collisionCount"))):
        if value:
            status[key] = value
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    return status


def _requeue_for_availability(ds: Obj, pods: Sequence[Obj], now: datetime) -> float | None:
    """When a ready pod turns available after minReadySeconds: look again then."""
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    if min_ready <= 0:
        return None
    waits = []
    for pod in pods:
        if is_pod_ready(pod) and not is_pod_available(pod, min_ready, now):
            for cond in (pod.get("status") or {}).get("conditions") or []:
                since = parse_time(cond.get("lastTransitionTime")) if cond.get("type") == "Ready" else None
                if since is not None:
                    waits.append(max(0.0, min_ready - (now - since).total_seconds()) + 0.1)
    return min(waits) if waits else None


def plan(ds: Obj, pods: Sequence[Obj], nodes: Sequence[Obj], *, hash_: str, now: datetime,
         manage: bool = True) -> DaemonSetPlan:
    """One sync of a DaemonSet (``syncDaemonSet`` after the history): claim, manage, roll, status.
    ``manage`` False (expectations pending, or the DaemonSet being deleted): status only."""
    p = DaemonSetPlan()
    claim = ownerrefs.claim(ds, pods, rs_selector_matches(ds))
    p.adopt, p.release = claim.adopt, claim.release
    by_node: dict[str, list[Obj]] = {}
    for pod in claim.owned:
        if is_deleting(pod) and _phase(pod) in ("Failed", "Succeeded"):
            continue
        by_node.setdefault(target_node(pod), []).append(pod)
    nodes = sorted(nodes, key=name_of)
    daemon_spec = with_daemon_tolerations(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    runs = {name_of(n): should_run(ds, n, pod_spec=daemon_spec) for n in nodes}
    if manage and not is_deleting(ds):
        surge, _ = _max_counts(ds, 1)
        _manage(ds, nodes, by_node, runs=runs, hash_=hash_, now=now, surge=surge > 0, p=p)
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
        if rolling and not p.create_on and not p.delete and not p.adopt:
            _rolling_update(ds, nodes, by_node, runs=runs, hash_=hash_, now=now, p=p)
        p.create_on = list(dict.fromkeys(p.create_on))[:BURST_REPLICAS]
        p.delete = list({ownerrefs.key_of(x): x for x in p.delete}.values())[:BURST_REPLICAS]
    p.status = calculate_status(ds, nodes, by_node, runs=runs, hash_=hash_, now=now, observe_generation=manage)
    p.requeue_after = _requeue_for_availability(ds, claim.owned, now)
    return p


# ============================================================================ history
@dataclass
class HistoryPlan:
    """``constructHistory``: the revision to use (``current``, to create when ``create``), its new
    number if it must be renumbered, duplicates of it to delete, and the older revisions."""

    hash_: str
    current: Obj | None = None
    create: Obj | None = None
    renumber_to: int | None = None
    duplicates: list[Obj] = field(default_factory=list)
    old: list[Obj] = field(default_factory=list)


def plan_history(ds: Obj, revisions: Sequence[Obj]) -> HistoryPlan:
    owned = history.owned_revisions(ds, revisions)
    current = [r for r in owned if history.matches_owner(ds, r)]
    old = [r for r in owned if not history.matches_owner(ds, r)]
    number = history.next_revision(old)
    if not current:
        collision = (ds.get("status") or {}).get("collisionCount")
        hash_ = compute_hash((ds.get("spec") or {}).get("template") or {}, collision)
        return HistoryPlan(hash_=hash_, create=history.daemonset_revision(ds, revision=number, hash_=hash_), old=old)
    ordered = history.sort_revisions(current)
    keep, duplicates = ordered[-1], ordered[:-1]
    hash_ = (meta(keep).get("labels") or {}).get(history.POD_REVISION_LABEL) or name_of(keep)
    renumber = number if history.revision_number(keep) < number else None
    return HistoryPlan(hash_=hash_, current=keep, renumber_to=renumber, duplicates=duplicates, old=old)


def history_to_delete(ds: Obj, old: Sequence[Obj], pods: Sequence[Obj]) -> list[Obj]:
    """``cleanupHistory``: the oldest revisions (beyond revisionHistoryLimit) whose hash no pod carries."""
    limit = (ds.get("spec") or {}).get("revisionHistoryLimit")
    to_kill = len(old) - (10 if limit is None else int(limit))
    if to_kill <= 0:
        return []
    live = {(meta(p).get("labels") or {}).get(history.POD_REVISION_LABEL) for p in pods}
    out: list[Obj] = []
    for rev in history.sort_revisions(old):
        if len(out) >= to_kill:
            break
        if (meta(rev).get("labels") or {}).get(history.POD_REVISION_LABEL) not in live:
            out.append(rev)
    return out
