"""The garbage collector: deleting an owner deletes (or orphans) its dependents.

Data flow (Kubernetes' pkg/controller/garbagecollector): one shared informer per kind that can
own or be owned (every served kind but Events and Namespaces) -> handlers feed
``gcgraph.OwnerGraph`` (uid -> cache location, owner uids; owner uid -> dependent uids) and
enqueue uids that need a look:

- an object with owner references (added, or its references changed): are its owners there?
- an object being deleted with the ``orphan`` or ``foregroundDeletion`` finalizer;
- the dependents of an object that vanished, and the owners of a dependent that vanished or
  dropped its reference (a foreground owner may now be free to go).

``reconcile(uid)`` reads the object from its informer cache and decides with ``gcgraph``:

- being deleted with ``orphan``: strip the references to it from every dependent, then remove
  the finalizer (merge patches carrying ``resourceVersion``, re-read and retried on conflict);
- being deleted with ``foregroundDeletion``: look at every dependent again (they see a
  *waiting* owner and get deleted, in the foreground themselves when they have dependents);
  once no dependent with ``blockOwnerDeletion: true`` is left, remove the finalizer, which
  makes the apiserver finish the delete;
- otherwise, with owner references: an owner missing from the caches is verified with a GET by
  name (404 or another uid: gone; remembered in a bounded absent-owner cache). No solid owner
  left -> DELETE the object (uid + resourceVersion preconditions) with Background, Foreground or
  Orphan as Kubernetes picks; a solid owner left -> strip references to gone ones.

Objects whose owner was deleted while the collector was down are collected at start: the
first list adds every object, which enqueues every object with owners.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from controllers import gcgraph
from controllers.manager import ControllerContext
from machinery import errors
from machinery.client import ApiResource, resource_for, retry_on_conflict
from machinery.controller import Controller, Result
from machinery.informer import Informer, object_key
from machinery.models import KINDS, Event, Namespace

log = logging.getLogger(__name__)

Obj = dict[str, Any]

# Events are never owners nor owned in practice and are numerous; Namespaces are the
# namespace controller's.
GC_KINDS: tuple[ApiResource, ...] = tuple(ApiResource.of(k) for k in KINDS if k not in (Event, Namespace))


@dataclass(frozen=True)
class Location:
    resource: int  # index into the collector's informers
    key: str  # the informer cache key


def _uid(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def _interesting(obj: Obj) -> bool:
    """Needs a look by the collector on its own account."""
    if gcgraph.owner_uids(obj):
        return True
    fins = gcgraph.finalizers(obj)
    return gcgraph.is_deleting(obj) and (gcgraph.ORPHAN in fins or gcgraph.FOREGROUND in fins)


def _gc_relevant_change(old: Obj, new: Obj) -> bool:
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (om.get("ownerReferences") != nm.get("ownerReferences") or om.get("finalizers") != nm.get("finalizers")
            or om.get("deletionTimestamp") != nm.get("deletionTimestamp"))


class GarbageCollector:
    def __init__(self, ctx: ControllerContext, *, kinds: tuple[ApiResource, ...] = GC_KINDS) -> None:
        self.client = ctx.client
        self.graph: gcgraph.OwnerGraph[Location] = gcgraph.OwnerGraph()
        self.absent = gcgraph.AbsentOwners()
        self.controller: Controller[str] = Controller("garbagecollector", self.reconcile,
                                                      workers=ctx.settings.workers)
        self.resources = kinds
        self.informers: list[Informer] = [ctx.informers.informer(r) for r in kinds]
        for i, inf in enumerate(self.informers):
            inf.add_handler(self._adder(i), self._updater(i), self._on_delete)

    # ------------------------------------------------------------------ graph upkeep
    def _observe(self, index: int, obj: Obj) -> set[str]:
        return self.graph.observe(_uid(obj), Location(index, object_key(obj)), gcgraph.owner_uids(obj))

    def _adder(self, index: int) -> Callable[[Obj], None]:
        def on_add(obj: Obj) -> None:
            self._observe(index, obj)
            if _interesting(obj):
                self.controller.enqueue(_uid(obj))
        return on_add

    def _updater(self, index: int) -> Callable[[Obj, Obj], None]:
        def on_update(old: Obj, new: Obj) -> None:
            if _uid(old) != _uid(new):  # replaced under the same name (seen through a relist)
                self._on_delete(old)
                self._adder(index)(new)
                return
            dropped = self._observe(index, new)
            for owner in dropped:
                self.controller.enqueue(owner)
            if _gc_relevant_change(old, new) and _interesting(new):
                self.controller.enqueue(_uid(new))
        return on_update

    def _on_delete(self, obj: Obj) -> None:
        owners, dependents = self.graph.forget(_uid(obj))
        for uid in (*owners, *dependents):
            self.controller.enqueue(uid)

    def _cached(self, uid: str) -> tuple[ApiResource, Obj] | None:
        loc = self.graph.location(uid)
        if loc is None:
            return None
        obj = self.informers[loc.resource].get(loc.key)
        if obj is None or _uid(obj) != uid:
            return None
        return self.resources[loc.resource], obj

    # ------------------------------------------------------------------ owner lookups
    async def _owner_state(self, ref: Obj, namespace: str | None) -> gcgraph.OwnerState:
        uid = str(ref.get("uid"))
        cached = self._cached(uid)
        if cached is not None:
            return gcgraph.owner_state(cached[1], uid)
        if uid in self.absent:
            return gcgraph.OwnerState.DANGLING
        try:
            res = resource_for(str(ref.get("kind") or ""))
        except errors.NotFoundError:
            res = None
        if res is None or res.api_version != ref.get("apiVersion"):
            # A kind this API does not serve cannot be verified; never delete on a guess.
            log.warning("cannot verify owner %s %s/%s: unknown kind", ref.get("apiVersion"), ref.get("kind"),
                        ref.get("name"))
            return gcgraph.OwnerState.SOLID
        try:
            owner: Obj | None = await self.client.get(res, str(ref.get("name")),
                                                      namespace=namespace if res.namespaced else None)
        except errors.NotFoundError:
            owner = None
        state = gcgraph.owner_state(owner, uid)
        if state == gcgraph.OwnerState.DANGLING:
            self.absent.add(uid)
        return state

    # ------------------------------------------------------------------ reconcile
    async def reconcile(self, uid: str) -> Result | None:
        cached = self._cached(uid)
        if cached is None:
            return None  # gone (or never seen): nothing of its own to do
        res, obj = cached
        if gcgraph.is_deleting(obj):
            return await self._deleting(res, obj)
        namespace = (obj.get("metadata") or {}).get("namespace")
        states = {str(ref.get("uid")): await self._owner_state(ref, namespace)
                  for ref in (obj.get("metadata") or {}).get("ownerReferences") or []}
        action = gcgraph.decide_dependent(obj, states, has_dependents=bool(self._dependents(uid)))
        if isinstance(action, gcgraph.StripOwners):
            await self._strip_owners(res, obj, set(action.uids))
        elif isinstance(action, gcgraph.Delete):
            await self._delete(res, obj, action.policy)
        return None

    def _dependents(self, uid: str) -> list[Obj]:
        out = []
        for dep in sorted(self.graph.dependents(uid)):
            cached = self._cached(dep)
            if cached is not None:
                out.append(cached[1])
        return out

    async def _deleting(self, res: ApiResource, obj: Obj) -> Result | None:
        uid = _uid(obj)
        action = gcgraph.decide_deleting(obj, self._dependents(uid))
        if isinstance(action, gcgraph.Orphan):
            for dep_uid in action.dependents:
                cached = self._cached(dep_uid)
                if cached is not None:
                    await self._strip_owners(cached[0], cached[1], {uid})
            await self._remove_finalizer(res, obj, gcgraph.ORPHAN)
        elif isinstance(action, gcgraph.RemoveFinalizer):
            await self._remove_finalizer(res, obj, action.name)
        elif isinstance(action, gcgraph.WaitForDependents):
            # Each dependent sees this owner waiting and is deleted; their deletion events bring
            # this owner back here. Until then there is nothing to poll.
            for dep in action.dependents:
                self.controller.enqueue(dep)
        return None

    # ------------------------------------------------------------------ writes
    async def _delete(self, res: ApiResource, obj: Obj, policy: str) -> None:
        meta = obj["metadata"]
        log.info("deleting %s %s (%s): no owner left", res.kind or res.plural, object_key(obj), policy)
        try:
            await self.client.delete(res, meta["name"], namespace=meta.get("namespace"), propagation_policy=policy,
                                     preconditions={"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]})
        except errors.NotFoundError:
            pass
        # A ConflictError (changed since our cache) propagates: the key is retried with backoff
        # and decided again on the newer object.

    async def _patch_live(self, res: ApiResource, obj: Obj, change: Callable[[Obj], "Obj | None"]) -> bool:
        """Reads ``obj`` again and, while it is still the same object (uid), patches its metadata
        with what ``change(live)`` returns (None: nothing to do), under a resourceVersion
        precondition; a conflict is retried on a fresh read. True when a patch landed."""
        meta = obj["metadata"]
        name, namespace, uid = meta["name"], meta.get("namespace"), meta["uid"]
        patched = False

        async def attempt() -> None:
            nonlocal patched
            try:
                live = await self.client.get(res, name, namespace=namespace)
            except errors.NotFoundError:
                return
            if _uid(live) != uid:
                return
            meta_patch = change(live)
            if meta_patch is None:
                return
            patch = {"metadata": {**meta_patch, "resourceVersion": live["metadata"]["resourceVersion"]}}
            try:
                await self.client.patch(res, name, patch, namespace=namespace)
                patched = True
            except errors.NotFoundError:
                return

        await retry_on_conflict(attempt)
        return patched

    async def _strip_owners(self, res: ApiResource, obj: Obj, uids: set[str]) -> None:
        def change(live: Obj) -> Obj | None:
            refs = gcgraph.without_owners(live, uids)
            if len(refs) == len((live.get("metadata") or {}).get("ownerReferences") or []):
                return None
            return {"ownerReferences": refs or None}

        await self._patch_live(res, obj, change)

    async def _remove_finalizer(self, res: ApiResource, obj: Obj, finalizer: str) -> None:
        def change(live: Obj) -> Obj | None:
            if finalizer not in gcgraph.finalizers(live):
                return None
            return {"finalizers": [f for f in gcgraph.finalizers(live) if f != finalizer] or None}

        if await self._patch_live(res, obj, change):
            log.info("removed finalizer %s from %s %s", finalizer, res.kind or res.plural, object_key(obj))

    async def run(self) -> None:
        for inf in self.informers:
            await inf.wait_synced()
        await self.controller.run()


async def run(ctx: ControllerContext) -> None:
    gc = GarbageCollector(ctx)
    ctx.informers.start()
    await gc.run()
