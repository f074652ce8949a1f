"""The scheduler's VolumeBinding plugin: a pod's PersistentVolumeClaims decide where it may run.

After pkg/scheduler/framework/plugins/volumebinding. Data flow, per scheduling attempt:

- ``prefilter(pod)`` reads the claims, volumes and classes from the informer caches: None for a
  pod without claims; a message that makes the pod unschedulable everywhere (a claim not found or
  being deleted, an unbound claim of an Immediate class: the binder binds those, not the
  scheduler); else a ``PodVolumes`` (the bound claims' volumes and the unbound
  WaitForFirstConsumer claims);
- ``filter(pod_volumes, node facts)`` per node: a bound volume's node affinity must match the
  node; each unbound claim needs an Available volume whose affinity allows the node (the smallest
  that fits, ``machinery.volumematch``) or a class that can provision there (a provisioner other
  than ``kubernetes.io/no-provisioner`` and the class's ``allowedTopologies``);
- ``prebind(client, pod_volumes, node)`` before the pod is bound (the bind task): a chosen static
  volume gets its claimRef (as Kubernetes' scheduler pre-binds it; the PV binder completes the
  binding), a claim to provision gets ``volume.kubernetes.io/selected-node: <node>`` (the
  provisioner then makes its volume on that node), then it waits until those claims are Bound
  (Kubernetes' ``bindTimeoutSeconds``, 600 s), so the pod reaches its node with its volumes ready.

The decisions are pure functions over mappings (this module imports no I/O: the informers and the
client are handed in); the chosen volumes are remembered until the PV informer shows them taken,
so two pods never pick the same volume.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from machinery import errors
from machinery.volumematch import (ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE, NO_PROVISIONER, annotations_of,
                                   claim_ref, delays_binding, find_matching_volume, meta, name, spec,
                                   storage_class_of)
from scheduler.plugins import NO_NODES, PREEMPTION_NOT_HELPFUL, NodeFacts, match_term

Obj = Mapping[str, Any]

REASON_NODE_CONFLICT = "node(s) had volume node affinity conflict"
REASON_BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
REASON_PV_MISSING = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
PVS = ("v1", "persistentvolumes")
PVCS = ("v1", "persistentvolumeclaims")


class Cache(Protocol):
    def get(self, key: str) -> Obj | None: ...

    def list(self, namespace: str | None = None) -> Sequence[Obj]: ...


class Client(Protocol):
    async def update(self, resource: Any, body: Mapping[str, Any]) -> dict[str, Any]: ...

    async def patch(self, resource: Any, name: str, patch: Any, *, namespace: str | None = None) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PodVolumes:
    """What ``filter`` and ``prebind`` need of one pod's claims."""

    bound: tuple[Obj | None, ...]  # the volume of each bound claim (None: it does not exist)
    unbound: tuple[Obj, ...]  # WaitForFirstConsumer claims without a volume
    volumes: tuple[Obj, ...] = ()
    classes: Mapping[str, Obj] = field(default_factory=dict)


def claim_names(pod: Obj) -> list[tuple[str, bool]]:
    """(claim name, ephemeral) for each claim a pod's volumes use (generic ephemeral: pod-volume)."""
    pod_name = name(pod)
    out = []
    for volume in spec(pod).get("volumes") or []:
        if (volume.get("persistentVolumeClaim") or {}).get("claimName"):
            out.append((str(volume["persistentVolumeClaim"]["claimName"]), False))
        elif volume.get("ephemeral") is not None:
            out.append((f"{pod_name}-{volume.get('name')}", True))
    return out


def pod_volumes(pod: Obj, *, claims: Callable[[str], Obj | None], volumes: list[Obj],
                classes: Mapping[str, Obj]) -> PodVolumes | str | None:
    """PreFilter: None (no claims), an unschedulable message, or the pod's volumes."""
    names = claim_names(pod)
    if not names:
        return None
    namespace = str(meta(pod).get("namespace") or "default")
    by_name = {name(v): v for v in volumes}
    bound: list[Obj | None] = []
    unbound: list[Obj] = []
    for claim_name, ephemeral in names:
        claim = claims(f"{namespace}/{claim_name}")
        if claim is None:
            if ephemeral:
                return f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{claim_name}"'
            return f'persistentvolumeclaim "{claim_name}" not found'
        if meta(claim).get("deletionTimestamp"):
            return f'persistentvolumeclaim "{claim_name}" is being deleted'
        volume_name = spec(claim).get("volumeName")
        if volume_name:
            bound.append(by_name.get(str(volume_name)))
        elif delays_binding(claim, classes):
            unbound.append(claim)
        else:
            return UNBOUND_IMMEDIATE
    return PodVolumes(tuple(bound), tuple(unbound), tuple(volumes), classes)


def volume_fits(volume: Obj, facts: NodeFacts) -> bool:
    """The volume's required node affinity admits the node (none: every node)."""
    required = (spec(volume).get("nodeAffinity") or {}).get("required")
    if not required:
        return True
    return any(match_term(term, facts) for term in required.get("nodeSelectorTerms") or [])


def can_provision(claim: Obj, classes: Mapping[str, Obj], facts: NodeFacts) -> bool:
    storage_class = classes.get(storage_class_of(claim))
    if storage_class is None or storage_class.get("provisioner") in (None, "", NO_PROVISIONER):
        return False
    topologies = storage_class.get("allowedTopologies") or []
    if not topologies:
        return True
    return any(all(facts.labels.get(str(expr.get("key"))) in (expr.get("values") or [])
                   for expr in term.get("matchLabelExpressions") or [])
               for term in topologies)


@dataclass(frozen=True)
class Choice:
    claim: Obj
    volume: Obj | None  # a static volume to pre-bind; None: provision on the node


def decide(volumes: PodVolumes, facts: NodeFacts, *, taken: Mapping[str, str]) -> tuple[list[str] | None,
                                                                                        list[Choice]]:
    """Filter and the bindings it implies: (None or the reasons the node fails, the choices).
    ``taken`` maps volumes other pods were given (not yet visible in the cache) to their claims."""
    for volume in volumes.bound:
        if volume is None:
            return [REASON_PV_MISSING], []
        if not volume_fits(volume, facts):
            return [REASON_NODE_CONFLICT], []
    choices: list[Choice] = []
    chosen: set[str] = set()
    for claim in volumes.unbound:
        key = f"{meta(claim).get('namespace')}/{name(claim)}"
        found = find_matching_volume(
            claim, volumes.volumes, delay_binding=True, node_fits=lambda v: volume_fits(v, facts),
            skip=lambda v: name(v) in chosen or taken.get(name(v), key) != key)
        if found is not None:
            chosen.add(name(found))
            choices.append(Choice(claim, found))
        elif can_provision(claim, volumes.classes, facts):
            choices.append(Choice(claim, None))
        else:
            return [REASON_BIND_CONFLICT], []
    return None, choices


def prefilter_message(num_nodes: int, message: str) -> str:
    """The FitError text when PreFilter rejects the pod (every node gets the same status)."""
    if num_nodes == 0:
        return NO_NODES
    return (f"0/{num_nodes} nodes are available: {message}. preemption: 0/{num_nodes} nodes are available: "
            f"{num_nodes} {PREEMPTION_NOT_HELPFUL}.")


def prebound_volume(volume: Obj, claim: Obj) -> dict[str, Any]:
    """The volume with its claimRef set to ``claim`` (Kubernetes' scheduler pre-binding)."""
    claim_meta = meta(claim)
    out: dict[str, Any] = {**volume, "apiVersion": "v1", "kind": "PersistentVolume",
                           "metadata": {**meta(volume), "annotations": {**annotations_of(volume),
                                                                       ANN_BOUND_BY_CONTROLLER: "yes"}},
                           "spec": {**spec(volume), "claimRef": {
                               "kind": "PersistentVolumeClaim", "namespace": claim_meta.get("namespace"),
                               "name": claim_meta.get("name"), "uid": claim_meta.get("uid"), "apiVersion": "v1",
                               "resourceVersion": claim_meta.get("resourceVersion")}}}
    return out


class VolumeBinding:
    """The plugin's state in a scheduler: the caches it reads and the volumes it handed out."""

    def __init__(self, claims: Cache, volumes: Cache, classes: Cache, *, bind_timeout_s: float = 600.0) -> None:
        self.claims = claims
        self.volumes = volumes
        self.classes = classes
        self.bind_timeout_s = bind_timeout_s
        self.taken: dict[str, str] = {}  # volume name -> claim key, until the cache shows the claimRef

    def handlers(self, wake: Callable[[], object]) -> tuple[Callable[[dict[str, Any]], None],
                                                             Callable[[dict[str, Any], dict[str, Any]], None]]:
        """Informer handlers: a new or changed claim, volume or class may let waiting pods fit."""
        def added(_obj: dict[str, Any]) -> None:
            wake()

        def updated(_old: dict[str, Any], new: dict[str, Any]) -> None:
            self.volume_seen(new)
            wake()
        return added, updated

    def volume_seen(self, volume: Obj) -> None:
        """A PV event: forget a pre-binding the cache now shows (or that can no longer happen)."""
        if name(volume) in self.taken and claim_ref(volume) is not None:
            del self.taken[name(volume)]

    def prefilter(self, pod: Obj) -> PodVolumes | str | None:
        if not claim_names(pod):
            return None
        return pod_volumes(pod, claims=self.claims.get, volumes=list(self.volumes.list()),
                           classes={name(c): c for c in self.classes.list()})

    def filter(self, volumes: PodVolumes, facts: NodeFacts) -> list[str] | None:
        return decide(volumes, facts, taken=self.taken)[0]

    async def prebind(self, client: Client, volumes: PodVolumes, facts: NodeFacts, *,
                      sleep: Callable[[float], Awaitable[None]]) -> None:
        """Write the bindings the chosen node implies, then wait until the claims are Bound; raises
        the client's errors, or a Conflict when a claim vanishes or the binding times out."""
        reasons, choices = decide(volumes, facts, taken=self.taken)
        if reasons:
            raise errors.ConflictError(message=f"node {facts.name} no longer fits the pod's volumes: {reasons[0]}")
        for choice in choices:
            claim_meta = meta(choice.claim)
            key = f"{claim_meta.get('namespace')}/{claim_meta.get('name')}"
            if choice.volume is not None:
                self.taken[name(choice.volume)] = key
                try:
                    await client.update(PVS, prebound_volume(choice.volume, choice.claim))
                except errors.ApiError:
                    self.taken.pop(name(choice.volume), None)
                    raise
            elif annotations_of(choice.claim).get(ANN_SELECTED_NODE) != facts.name:
                await client.patch(PVCS, str(claim_meta.get("name")),
                                   {"metadata": {"annotations": {ANN_SELECTED_NODE: facts.name}}},
                                   namespace=claim_meta.get("namespace"))
        await self._wait_bound([f"{meta(c.claim).get('namespace')}/{name(c.claim)}" for c in choices], sleep)

    async def _wait_bound(self, keys: list[str], sleep: Callable[[float], Awaitable[None]]) -> None:
        deadline = time.monotonic() + self.bind_timeout_s
        while True:
            pending = [key for key in keys if not _is_bound(self.claims.get(key))]
            if not pending:
                return
            gone = next((key for key in pending if self.claims.get(key) is None), None)
            if gone is not None:
                raise errors.ConflictError(message=f'binding volumes: persistentvolumeclaim "{gone}" not found')
            if time.monotonic() >= deadline:
                raise errors.ConflictError(message="binding volumes: context deadline exceeded")
            await sleep(0.1)


def _is_bound(claim: Obj | None) -> bool:
    return claim is not None and bool(spec(claim).get("volumeName")) and \
        (claim.get("status") or {}).get("phase") == "Bound"


__all__ = ["Choice", "PodVolumes", "REASON_BIND_CONFLICT", "REASON_NODE_CONFLICT", "REASON_PV_MISSING",
           "UNBOUND_IMMEDIATE", "VolumeBinding", "claim_names", "decide", "pod_volumes", "prebound_volume",
           "prefilter_message", "volume_fits"]
