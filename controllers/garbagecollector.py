"""The garbage collector: deleting an owner deletes (or orphans) its dependents.

Data flow (Kubernetes' pkg/controller/garbagecollector):

    discovery (GET /api, /apis, each preferred /apis/{g}/{v}; again every ``resync_period_s``)
      -> gcgraph.deletable: every resource with list, watch and delete, minus Events
      -> gcgraph.plan_monitors: start a monitor (a shared informer + our handlers) for each new
         resource, stop the monitors of resources that left discovery (handlers removed, the
         informer released: stopped once no other controller uses it; their objects are
         forgotten as if deleted), keep those of group versions whose discovery failed
      -> gcgraph.kind_index: (group, kind) -> resource, to look owners up by reference

So custom resources are collected (and can own) from the first discovery after their CRD is
served, and their informers stop when the CRD goes; a resource that answers 404 meanwhile only
makes its informer retry with backoff. The handlers feed ``gcgraph.OwnerGraph`` (uid -> monitor
and cache key, owner uids; owner uid -> dependent uids) and enqueue uids that need a look:

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
  name at the resource discovery maps its group and kind to (404 or another uid: gone;
  remembered in a bounded absent-owner cache). No solid owner left -> DELETE the object (uid +
  resourceVersion preconditions) with Background, Foreground or Orphan as Kubernetes picks; a
  solid owner left -> strip references to gone ones. An owner of a kind discovery does not
  (yet) know cannot be verified: nothing is done, and the object is looked at again when
  discovery changes (never delete on a guess).

Objects whose owner was deleted while the collector was down are collected at start: the
first list adds every object, which enqueues every object with owners.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Callable

from controllers import gcgraph
from controllers.manager import ControllerContext
from machinery import errors
from machinery.client import ApiClient, ApiResource, retry_on_conflict
from machinery.controller import Controller, Result
from machinery.informer import HandlerRegistration, Informer, object_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Discover = Callable[[], Awaitable[gcgraph.Discovery]]


@dataclass
class GarbageCollectorSettings:
    workers: int = 4
    # How often discovery is read again to follow resources (CRDs) coming and going (Kubernetes: 30 s).
    resync_period_s: float = 30.0
    # How long the first start waits for the monitors' first lists before collecting anyway.
    initial_sync_timeout_s: float = 30.0
    ignored_resources: frozenset[tuple[str, str]] = field(default_factory=lambda: gcgraph.IGNORED_RESOURCES)


async def discover_resources(client: ApiClient) -> gcgraph.Discovery:
    """Read the server's discovery: ``/api`` and ``/apis`` (errors propagate: nothing is known),
    then each preferred group version's resource list, concurrently; a group version whose list
    cannot be read is reported in ``failed``."""
    api = await client.request("GET", "/api")
    apis = await client.request("GET", "/apis")
    gvs = gcgraph.preferred_group_versions(api if isinstance(api, dict) else {},
                                           apis if isinstance(apis, dict) else {})
    docs = await asyncio.gather(*(client.request("GET", "/api/" + gv if "/" not in gv else "/apis/" + gv)
                                  for gv in gvs), return_exceptions=True)
    resources: list[gcgraph.DiscoveredResource] = []
    failed: set[str] = set()
    for gv, doc in zip(gvs, docs):
        if isinstance(doc, errors.ApiError) or not isinstance(doc, (dict, BaseException)):
            log.info("discovery of %s failed: %s", gv, doc)
            failed.add(gv)
        elif isinstance(doc, BaseException):
            raise doc
        else:
            resources += gcgraph.resources_in(doc, gv)
    return gcgraph.Discovery(tuple(resources), frozenset(failed))


@dataclass(frozen=True)
class Location:
    resource: gcgraph.GVR  # the monitor (apiVersion, plural)
    key: str  # the informer cache key


@dataclass
class Monitor:
    """One watched resource: its shared informer and the collector's handlers on it."""

    resource: ApiResource
    discovered: gcgraph.DiscoveredResource
    informer: Informer
    registration: HandlerRegistration


class CannotVerify(Exception):
    """An owner reference that cannot be checked against the API now."""

    def __init__(self, message: str, *, until_discovery_changes: bool) -> None:
        super().__init__(message)
        self.until_discovery_changes = until_discovery_changes


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
    def __init__(self, ctx: ControllerContext, *, settings: GarbageCollectorSettings | None = None,
                 discover: Discover | None = None) -> None:
        self.client = ctx.client
        self.factory = ctx.informers
        self.settings = settings or GarbageCollectorSettings(workers=ctx.settings.workers,
                                                             resync_period_s=ctx.settings.gc_resync_period)
        self.graph: gcgraph.OwnerGraph[Location] = gcgraph.OwnerGraph()
        self.absent = gcgraph.AbsentOwners()
        self.controller: Controller[str] = Controller("garbagecollector", self.reconcile,
                                                      workers=self.settings.workers)
        self.monitors: dict[gcgraph.GVR, Monitor] = {}
        self.kinds: dict[gcgraph.GroupKind, gcgraph.DiscoveredResource] = {}
        self._discover: Discover = discover or (lambda: discover_resources(self.client))
        # Objects with an owner of a kind discovery did not know: looked at again when it changes.
        self._unresolved: set[str] = set()

    # ------------------------------------------------------------------ monitors (discovery)
    async def sync_resources(self) -> bool:
        """One discovery round: start and stop monitors to match it; True if any changed."""
        try:
            found = await self._discover()
        except errors.ApiError as e:
            log.warning("garbage collector: discovery failed (%s); keeping the %d monitors", e, len(self.monitors))
            return False
        if not found.resources:
            log.info("garbage collector: discovery reported no resources; keeping the current monitors")
            return False
        wanted = gcgraph.deletable(found.resources, ignored=self.settings.ignored_resources)
        current = {gvr: m.discovered for gvr, m in self.monitors.items()}
        synced = {gvr for gvr, m in self.monitors.items() if m.informer.has_synced}
        plan = gcgraph.plan_monitors(current, wanted, failed=found.failed, synced=synced)
        kinds = gcgraph.kind_index(found.resources, previous=self.kinds, failed=found.failed)
        kinds_changed, self.kinds = kinds != self.kinds, kinds
        for gvr in plan.remove:
            await self._stop_monitor(gvr)
        for res in plan.add:
            self._start_monitor(res)
        if plan.add:
            self.factory.start()
        if plan.changed:
            log.info("garbage collector watches %d resources (added %s, removed %s)", len(self.monitors),
                     [f"{r.plural}.{r.api_version}" for r in plan.add], [f"{p}.{v}" for v, p in plan.remove])
        if kinds_changed or plan.add:
            for uid in sorted(self._unresolved):
                self.controller.enqueue(uid)
        return plan.changed

    def _start_monitor(self, discovered: gcgraph.DiscoveredResource) -> None:
        gvr = discovered.gvr
        res = ApiResource(discovered.api_version, discovered.plural, discovered.namespaced, discovered.kind)
        informer = self.factory.informer(res)
        # A shared informer that already listed replays its cache to us as adds, right here.
        registration = informer.add_handler(self._adder(gvr), self._updater(gvr), self._on_delete)
        self.monitors[gvr] = Monitor(res, discovered, informer, registration)

    async def _stop_monitor(self, gvr: gcgraph.GVR, *, forget: bool = True) -> None:
        mon = self.monitors.pop(gvr)
        mon.informer.remove_handler(mon.registration)
        if forget:
            # Its objects are no longer served: to the graph they are gone (their dependents and
            # owners get a look, and decide with what discovery still maps).
            for obj in mon.informer.list():
                loc = self.graph.location(_uid(obj))
                if loc is not None and loc.resource == gvr:
                    self._on_delete(obj)
        await self.factory.release(mon.informer)

    async def _resync_loop(self) -> None:
        while True:
            period = self.settings.resync_period_s
            # Nothing watched yet (the first discovery failed): try again sooner.
            await asyncio.sleep(period if self.monitors else min(period, 1.0))
            try:
                await self.sync_resources()
            except Exception:  # noqa: BLE001 - the loop must outlive any one round
                log.exception("garbage collector: resyncing monitors failed")

    async def wait_for_monitors(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(*(m.informer.wait_synced(timeout) for m in list(self.monitors.values())))
        return all(results)

    # ------------------------------------------------------------------ graph upkeep
    def _observe(self, gvr: gcgraph.GVR, obj: Obj) -> set[str]:
        return self.graph.observe(_uid(obj), Location(gvr, object_key(obj)), gcgraph.owner_uids(obj))

    def _adder(self, gvr: gcgraph.GVR) -> Callable[[Obj], None]:
        def on_add(obj: Obj) -> None:
            self._observe(gvr, obj)
            if _interesting(obj):
                self.controller.enqueue(_uid(obj))
        return on_add

    def _updater(self, gvr: gcgraph.GVR) -> Callable[[Obj, Obj], None]:
        def on_update(old: Obj, new: Obj) -> None:
            if _uid(old) != _uid(new):  # replaced under the same name (seen through a relist)
                self._on_delete(old)
                self._adder(gvr)(new)
                return
            dropped = self._observe(gvr, new)
            for owner in dropped:
                self.controller.enqueue(owner)
            if _gc_relevant_change(old, new) and _interesting(new):
                self.controller.enqueue(_uid(new))
        return on_update

    def _on_delete(self, obj: Obj) -> None:
        uid = _uid(obj)
        self._unresolved.discard(uid)
        owners, dependents = self.graph.forget(uid)
        for other in (*owners, *dependents):
            self.controller.enqueue(other)

    def _cached(self, uid: str) -> tuple[ApiResource, Obj] | None:
        loc = self.graph.location(uid)
        if loc is None:
            return None
        mon = self.monitors.get(loc.resource)
        if mon is None:
            return None
        obj = mon.informer.get(loc.key)
        if obj is None or _uid(obj) != uid:
            return None
        return mon.resource, obj

    # ------------------------------------------------------------------ owner lookups
    async def _owner_state(self, ref: Obj, namespace: str | None) -> gcgraph.OwnerState:
        """Solid, dangling or waiting; raises ``CannotVerify`` when the API cannot tell."""
        uid = str(ref.get("uid"))
        cached = self._cached(uid)
        if cached is not None:
            return gcgraph.owner_state(cached[1], uid)
        if uid in self.absent:
            return gcgraph.OwnerState.DANGLING
        api_version, kind = str(ref.get("apiVersion") or ""), str(ref.get("kind") or "")
        found = self.kinds.get((gcgraph.group_of(api_version), kind))
        if found is None:
            raise CannotVerify(f"owner {api_version} {kind}/{ref.get('name')}: a kind discovery does not list",
                               until_discovery_changes=True)
        if found.namespaced and not namespace:
            raise CannotVerify(f"owner {kind}/{ref.get('name')} is namespaced, its dependent is not",
                               until_discovery_changes=False)
        res = ApiResource(found.api_version, found.plural, found.namespaced, found.kind)
        try:
            owner: Obj | None = await self.client.get(res, str(ref.get("name")),
                                                      namespace=namespace if found.namespaced else None)
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
        try:
            states = {str(ref.get("uid")): await self._owner_state(ref, namespace)
                      for ref in (obj.get("metadata") or {}).get("ownerReferences") or []}
        except CannotVerify as e:
            log.info("keeping %s %s: cannot verify %s", res.kind or res.plural, object_key(obj), e)
            if e.until_discovery_changes:
                self._unresolved.add(uid)
            return None
        self._unresolved.discard(uid)
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
        """Discover and start the monitors, wait (bounded) for their first lists, then collect while
        rediscovering every ``resync_period_s``; on the way out, detach from every informer."""
        try:
            await self.sync_resources()
            if not await self.wait_for_monitors(self.settings.initial_sync_timeout_s):
                log.info("garbage collector: not all resource monitors synced; proceeding anyway")
            resync = asyncio.create_task(self._resync_loop(), name="garbagecollector-discovery")
            try:
                await self.controller.run()
            finally:
                resync.cancel()
                await asyncio.gather(resync, return_exceptions=True)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop every monitor (handlers removed, informers released); the graph is left as is."""
        for gvr in list(self.monitors):
            await self._stop_monitor(gvr, forget=False)


async def run(ctx: ControllerContext) -> None:
    await GarbageCollector(ctx).run()
