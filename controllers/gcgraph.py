"""The garbage collector's pure part: the owner -> dependents graph and the decisions over it.

Data flow: the garbage collector's informer handlers call ``OwnerGraph.observe`` / ``forget`` with
each object's uid, where it is cached and the uids of its owners -> the graph answers which uids
need another look (the dependents of a vanished owner, the owners of a vanished dependent) ->
the reconcile of one uid classifies the object's owners (``owner_state`` for each one:
solid, dangling or waiting for its dependents' deletion) and asks:

- ``decide_dependent(...)`` for an object that is not being deleted: keep it, strip the
  references to owners that are gone or deleting in the foreground (when a solid owner
  remains), or delete it with the right propagation policy (Kubernetes' ``attemptToDeleteItem``);
- ``decide_deleting(...)`` for an object being deleted with the ``orphan`` or
  ``foregroundDeletion`` finalizer: orphan its dependents then drop ``orphan``, or wait for
  its blocking dependents then drop ``foregroundDeletion`` (``processDeletingDependentsItem``).

What to watch comes from discovery, as Kubernetes' ``GetDeletableResources`` + ``syncMonitors``:
``preferred_group_versions`` (the core version, then each group's preferred one) -> the resource
list of each -> ``resources_in`` (top-level resources only) -> ``deletable`` (verbs include
list, watch and delete; minus ``IGNORED_RESOURCES``) -> ``plan_monitors(current, deletable, ...)``
says which monitors (informers) to start and which to stop, keeping those of group versions whose
discovery failed this round; ``kind_index`` maps an owner reference's group and kind to the
resource to GET it from.

Nothing here does I/O; ``controllers.garbagecollector`` carries the decisions out.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, Hashable, TypeVar

Obj = dict[str, Any]
L = TypeVar("L", bound=Hashable)

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"


class OwnerState(str, Enum):
    SOLID = "solid"  # exists and is not waiting for its dependents
    DANGLING = "dangling"  # gone (404, or a different uid under that name)
    WAITING = "waiting"  # being deleted in the foreground: it waits for its dependents


def owner_uids(obj: Obj) -> tuple[str, ...]:
    return tuple(str(r.get("uid")) for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid"))


def finalizers(obj: Obj) -> list[str]:
    return list((obj.get("metadata") or {}).get("finalizers") or [])


def is_deleting(obj: Obj) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def owner_state(owner: Obj | None, uid: str) -> OwnerState:
    """The state of an owner given what was found under its name (None: not found)."""
    if owner is None or (owner.get("metadata") or {}).get("uid") != uid:
        return OwnerState.DANGLING
    if is_deleting(owner) and FOREGROUND in finalizers(owner):
        return OwnerState.WAITING
    return OwnerState.SOLID


@dataclass(frozen=True)
class Keep:
    """Nothing to do."""


@dataclass(frozen=True)
class StripOwners:
    """Remove the owner references with these uids (a solid owner remains)."""

    uids: frozenset[str]


@dataclass(frozen=True)
class Delete:
    """Delete the object with this propagation policy."""

    policy: str


@dataclass(frozen=True)
class Orphan:
    """Remove the references to this owner from these dependents, then drop the ``orphan`` finalizer."""

    dependents: tuple[str, ...]


@dataclass(frozen=True)
class RemoveFinalizer:
    name: str


@dataclass(frozen=True)
class WaitForDependents:
    """Foreground deletion: delete (or look again at) these dependents; blocking ones keep the owner."""

    dependents: tuple[str, ...]
    blocking: tuple[str, ...]


DependentAction = Keep | StripOwners | Delete
DeletingAction = Keep | Orphan | RemoveFinalizer | WaitForDependents


def decide_dependent(obj: Obj, states: dict[str, OwnerState], *, has_dependents: bool) -> DependentAction:
    """What to do with an object that has owner references and is not being deleted.

    ``states`` maps each owner uid of ``obj`` to its state. As in Kubernetes: one solid owner
    keeps the object (references to gone or foreground-deleting owners are stripped); with none,
    the object is deleted, in the foreground when a waiting owner needs its own dependents gone
    first, else by its own finalizers (``orphan`` -> Orphan, ``foregroundDeletion`` -> Foreground)
    or in the background.
    """
    uids = owner_uids(obj)
    if not uids:
        return Keep()
    solid = [u for u in uids if states.get(u, OwnerState.SOLID) == OwnerState.SOLID]
    dangling = [u for u in uids if states.get(u) == OwnerState.DANGLING]
    waiting = [u for u in uids if states.get(u) == OwnerState.WAITING]
    if solid:
        if dangling or waiting:
            return StripOwners(frozenset(dangling + waiting))
        return Keep()
    if waiting and has_dependents:
        return Delete("Foreground")
    fins = finalizers(obj)
    if ORPHAN in fins:
        return Delete("Orphan")
    if FOREGROUND in fins:
        return Delete("Foreground")
    return Delete("Background")


def blocks_owner(dependent: Obj, owner_uid: str) -> bool:
    """True when ``dependent`` refers to ``owner_uid`` with ``blockOwnerDeletion: true``."""
    for ref in (dependent.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion") is True:
            return True
    return False


def decide_deleting(obj: Obj, dependents: list[Obj]) -> DeletingAction:
    """What to do with an object being deleted, given its current dependents (cached objects)."""
    if not is_deleting(obj):
        return Keep()
    fins = finalizers(obj)
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    if ORPHAN in fins:
        return Orphan(tuple(sorted(str(d["metadata"]["uid"]) for d in dependents)))
    if FOREGROUND in fins:
        blocking = tuple(sorted(str(d["metadata"]["uid"]) for d in dependents if blocks_owner(d, uid)))
        if not blocking:
            return RemoveFinalizer(FOREGROUND)
        return WaitForDependents(tuple(sorted(str(d["metadata"]["uid"]) for d in dependents
                                              if not is_deleting(d))), blocking)
    return Keep()


def without_owners(obj: Obj, uids: frozenset[str] | set[str]) -> list[Obj]:
    """The object's owner references minus those with the given uids (a new list)."""
    return [dict(r) for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if r.get("uid") not in uids]


@dataclass
class OwnerGraph(Generic[L]):
    """uid -> where the object is cached, its owners, and owner uid -> dependent uids.

    Owners that were never observed still index their dependents, so that when such an owner
    turns out to be gone its dependents are known (Kubernetes' "virtual" nodes).
    """

    _where: dict[str, L] = field(default_factory=dict)
    _owners: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _dependents: dict[str, set[str]] = field(default_factory=dict)

    def observe(self, uid: str, location: L, owners: tuple[str, ...]) -> set[str]:
        """Record an added or updated object; returns the uids of owners it stopped referring to."""
        old = self._owners.get(uid, ())
        self._where[uid] = location
        self._owners[uid] = owners
        for o in set(old) - set(owners):
            self._unlink(o, uid)
        for o in owners:
            self._dependents.setdefault(o, set()).add(uid)
        return set(old) - set(owners)

    def forget(self, uid: str) -> tuple[tuple[str, ...], set[str]]:
        """Drop a deleted object; returns (its owners, its dependents), both of which need a look."""
        self._where.pop(uid, None)
        owners = self._owners.pop(uid, ())
        for o in owners:
            self._unlink(o, uid)
        return owners, set(self._dependents.get(uid, ()))

    def _unlink(self, owner: str, dependent: str) -> None:
        deps = self._dependents.get(owner)
        if deps is not None:
            deps.discard(dependent)
            if not deps:
                del self._dependents[owner]

    def location(self, uid: str) -> L | None:
        return self._where.get(uid)

    def dependents(self, uid: str) -> set[str]:
        return set(self._dependents.get(uid, ()))

    def owners(self, uid: str) -> tuple[str, ...]:
        return self._owners.get(uid, ())

    def __contains__(self, uid: object) -> bool:
        return uid in self._where

    def __len__(self) -> int:
        return len(self._where)


class AbsentOwners:
    """A bounded set of owner uids known to be gone (Kubernetes' absentOwnerCache), oldest dropped first."""

    def __init__(self, size: int = 500) -> None:
        self._size = size
        self._uids: OrderedDict[str, None] = OrderedDict()

    def add(self, uid: str) -> None:
        self._uids[uid] = None
        self._uids.move_to_end(uid)
        while len(self._uids) > self._size:
            self._uids.popitem(last=False)

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids


# ================================================================================= discovery
# Kubernetes' DefaultIgnoredResources: (group, plural) the collector never watches.
IGNORED_RESOURCES: frozenset[tuple[str, str]] = frozenset({("", "events"), ("events.k8s.io", "events")})
DELETABLE_VERBS: frozenset[str] = frozenset({"delete", "list", "watch"})

GVR = tuple[str, str]  # (apiVersion, plural): how a watched resource is named here
GroupKind = tuple[str, str]


def group_of(api_version: str) -> str:
    """``apps/v1`` -> ``apps``; ``v1`` -> ``""`` (the core group)."""
    return api_version.rpartition("/")[0]


@dataclass(frozen=True)
class DiscoveredResource:
    """One top-level resource of a discovery ``APIResourceList``."""

    api_version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset[str] = frozenset()

    @property
    def group(self) -> str:
        return group_of(self.api_version)

    @property
    def gvr(self) -> GVR:
        return (self.api_version, self.plural)


@dataclass(frozen=True)
class Discovery:
    """What one discovery round found, and the group versions whose document could not be read."""

    resources: tuple[DiscoveredResource, ...]
    failed: frozenset[str] = frozenset()


def preferred_group_versions(api_versions: Mapping[str, Any], group_list: Mapping[str, Any]) -> list[str]:
    """``v1``, ``apps/v1``, ...: the first version of ``/api``, then each ``/apis`` group's preferred one."""
    out: list[str] = []
    core = [str(v) for v in api_versions.get("versions") or [] if v]
    if core:
        out.append(core[0])
    for g in group_list.get("groups") or []:
        versions = g.get("versions") or []
        gv = (g.get("preferredVersion") or {}).get("groupVersion") or (versions[0].get("groupVersion")
                                                                        if versions else None)
        if gv and gv not in out:
            out.append(str(gv))
    return out


def resources_in(doc: Mapping[str, Any], group_version: str) -> list[DiscoveredResource]:
    """The top-level resources (``pods``, not ``pods/status``) of one ``APIResourceList``."""
    gv = str(doc.get("groupVersion") or group_version)
    out: list[DiscoveredResource] = []
    for r in doc.get("resources") or []:
        name = str(r.get("name") or "")
        if not name or "/" in name:
            continue
        out.append(DiscoveredResource(gv, name, str(r.get("kind") or ""), bool(r.get("namespaced")),
                                      frozenset(str(v) for v in r.get("verbs") or [])))
    return out


def deletable(resources: Iterable[DiscoveredResource], *,
              ignored: Collection[tuple[str, str]] = IGNORED_RESOURCES) -> dict[GVR, DiscoveredResource]:
    """``GetDeletableResources`` minus the ignored ones: resources with list, watch and delete."""
    return {r.gvr: r for r in resources
            if DELETABLE_VERBS <= r.verbs and (r.group, r.plural) not in ignored}


@dataclass(frozen=True)
class MonitorPlan:
    add: tuple[DiscoveredResource, ...] = ()
    remove: tuple[GVR, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.add or self.remove)


def plan_monitors(current: Mapping[GVR, DiscoveredResource], wanted: Mapping[GVR, DiscoveredResource], *,
                  failed: Collection[str] = (), synced: Collection[GVR] = ()) -> MonitorPlan:
    """Which monitors to start and stop so that exactly ``wanted`` is watched.

    As Kubernetes' ``Sync`` on a partial discovery failure: a resource of a group version whose
    document could not be read this round keeps its monitor if that monitor has synced (a
    transient error must not drop a whole group's graph); one that never synced is dropped.
    """
    keep = dict(wanted)
    for gvr, r in current.items():
        if r.api_version in failed and gvr in synced:
            keep.setdefault(gvr, r)
    return MonitorPlan(add=tuple(r for gvr, r in sorted(keep.items()) if gvr not in current),
                       remove=tuple(gvr for gvr in sorted(current) if gvr not in keep))


def kind_index(resources: Iterable[DiscoveredResource], *,
               previous: Mapping[GroupKind, DiscoveredResource] | None = None,
               failed: Collection[str] = ()) -> dict[GroupKind, DiscoveredResource]:
    """(group, kind) -> the resource serving it (a RESTMapper for owner references).

    The first resource of a kind wins (discovery order: core first). Mappings of group versions
    that failed this round are kept from ``previous``.
    """
    out: dict[GroupKind, DiscoveredResource] = {}
    for r in resources:
        if r.kind:
            out.setdefault((r.group, r.kind), r)
    for gk, r in (previous or {}).items():
        if r.api_version in failed:
            out.setdefault(gk, r)
    return out
