"""The API server's own CRD controller: serve what CustomResourceDefinitions define, and clean up.

After apiextensions-apiserver's naming, establishing and finalizing controllers, in one loop that
runs inside every apiserver process. Data flow: the CRD watch cache -> one event per changed CRD
-> ``sync(name)``, level-triggered on the cached object:

- names: a CRD whose plural, singular, kind, listKind or short names another CRD of the same
  group already uses gets ``NamesAccepted=False`` (``NameConflict``) and is not served; otherwise
  ``status.acceptedNames`` = ``spec.names``, ``NamesAccepted=True``;
- serving: the served versions are installed in the registry (one strategy each, sharing one
  watch cache; discovery and OpenAPI follow at once), versions no longer served are removed, and
  only then ``Established=True`` is written, so a client that waits for it finds the resource;
- deletion: a CRD marked for deletion keeps being served while every custom object of it is
  deleted (objects with finalizers go when their controllers remove them); when none is left,
  the ``customresourcecleanup.apiextensions.k8s.io`` finalizer is removed and the CRD goes, and
  with it the served resource.

A status write that loses a race is simply retried on the next event; several apiservers may run
this loop at once.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from machinery import errors

from .kinds.apiextensions.customresourcedefinition import CLEANUP_FINALIZER, set_condition
from .kinds.customresource import CustomResourceStrategy, from_crd, storage_version

if TYPE_CHECKING:
    from .kinds.base import Strategy
    from .registry import Registry

log = logging.getLogger(__name__)

_NAME_FIELDS = ("plural", "singular", "kind", "listKind")
CLEANUP_POLL_SECONDS = 0.5


def _names(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    names = (crd.get("spec") or {}).get("names")
    return names if isinstance(names, Mapping) else {}


def name_conflicts(crd: Mapping[str, Any], others: Sequence[Mapping[str, Any]]) -> str | None:
    """The NameConflict message of Kubernetes' naming controller, or None when the names are free."""
    spec = crd.get("spec") or {}
    names = _names(crd)
    for other in others:
        if (other.get("spec") or {}).get("group") != spec.get("group"):
            continue
        taken = (other.get("status") or {}).get("acceptedNames") or {}
        used = {str(taken.get(f)) for f in _NAME_FIELDS if taken.get(f)} | set(taken.get("shortNames") or [])
        for field_name in _NAME_FIELDS:
            value = names.get(field_name)
            if value and value in used:
                return f'"{value}" is already in use'
        for short in names.get("shortNames") or []:
            if short in used:
                return f'"{short}" is already in use'
    return None


class CRDController:
    def __init__(self, registry: "Registry") -> None:
        self.registry = registry
        crd_res = registry.resources.by_kind("CustomResourceDefinition", "apiextensions.k8s.io")
        assert crd_res is not None, "the CustomResourceDefinition kind is not served"
        self.crd_res: "Strategy" = crd_res
        self._served: dict[str, tuple[str, str]] = {}  # CRD name -> (group, plural) installed
        self._cleanups: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Serve every CRD already stored (before the apiserver answers), then follow the changes."""
        cache = self.registry.cache(self.crd_res)
        for entry in list(cache.objects.values()):
            await self._sync_quietly(entry.obj["metadata"]["name"])
        self._task = asyncio.create_task(self._run(), name="crd-controller")

    async def stop(self) -> None:
        for task in [self._task, *self._cleanups.values()]:
            if task is not None:
                task.cancel()

    async def _run(self) -> None:
        cache = self.registry.cache(self.crd_res)
        while True:
            watcher = cache.watch(from_revision=None, matches=lambda _obj: True)
            try:
                while True:
                    item = await watcher.queue.get()
                    if item is None or isinstance(item, Exception):
                        break  # the cache relisted (or closed): watch again, from the current objects
                    await self._sync_quietly(str(item.entry.obj["metadata"]["name"]))
            finally:
                cache.unwatch(watcher)

    async def _sync_quietly(self, name: str) -> None:
        try:
            await self.sync(name)
        except errors.ApiError as e:  # a lost status race or etcd trouble: the next event retries
            log.info("syncing CRD %s: %s", name, e.message)
        except Exception:  # noqa: BLE001 - one bad CRD must not stop the others from being served
            log.exception("syncing CRD %s failed", name)

    # ------------------------------------------------------------------ one CRD
    def _cached(self, name: str) -> dict[str, Any] | None:
        entry = self.registry.cache(self.crd_res).get(self.crd_res.key(None, name))
        return entry.obj if entry is not None else None

    async def sync(self, name: str) -> None:
        crd = self._cached(name)
        if crd is None:
            await self._stop_serving(name)
            return
        spec = crd.get("spec") or {}
        if crd["metadata"].get("deletionTimestamp"):
            if name not in self._cleanups or self._cleanups[name].done():
                self._cleanups[name] = asyncio.create_task(self._cleanup(name), name=f"crd-cleanup-{name}")
            return
        others = [e.obj for e in self.registry.cache(self.crd_res).objects.values()
                  if e.obj["metadata"]["name"] != name]
        conflict = name_conflicts(crd, others)
        status = copy.deepcopy(crd)
        if conflict is not None:
            changed = set_condition(status, "NamesAccepted", "False", "NameConflict", conflict)
            changed |= set_condition(status, "Established", "False", "NotAccepted", "not all names are accepted")
            if changed:
                await self._write_status(status)
            return
        status.setdefault("status", {})["acceptedNames"] = copy.deepcopy(dict(_names(crd)))
        set_condition(status, "NamesAccepted", "True", "NoConflicts", "no conflicts found")
        await self._serve(name, status)
        set_condition(status, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
        if status.get("status") != crd.get("status"):
            await self._write_status(status)
        log.debug("serving %s (%s)", name, spec.get("group"))

    async def _serve(self, name: str, crd: Mapping[str, Any]) -> None:
        strategies = from_crd(crd)
        group, plural = str(crd["spec"].get("group") or ""), str(_names(crd).get("plural") or "")
        previous = self._served.get(name)
        if previous is not None and previous != (group, plural):
            await self.registry.uninstall(*previous)
        if strategies:
            await self.registry.install(list(strategies))
        await self.registry.uninstall(group, plural, keep_versions=[s.version for s in strategies])
        self._served[name] = (group, plural)

    async def _stop_serving(self, name: str) -> None:
        served = self._served.pop(name, None)
        if served is not None:
            await self.registry.uninstall(*served)
        task = self._cleanups.pop(name, None)
        if task is not None and not task.done():
            task.cancel()

    async def _write_status(self, crd: dict[str, Any]) -> None:
        name = crd["metadata"]["name"]
        await self.registry.update(self.crd_res, None, name, crd, subresource="status")

    # ------------------------------------------------------------------ deletion
    def _instance_strategy(self, crd: Mapping[str, Any]) -> "Strategy | None":
        group, plural = str(crd["spec"].get("group") or ""), str(_names(crd).get("plural") or "")
        served = self.registry.resources.versions_of(group, plural)
        if served:
            return served[0]
        versions = [v for v in crd["spec"].get("versions") or [] if v.get("name") == storage_version(crd)]
        return CustomResourceStrategy(crd, versions[0]) if versions else None

    async def _cleanup(self, name: str) -> None:
        """Delete every custom object of the CRD, then let the CRD go (the finalizing controller)."""
        while True:
            crd = self._cached(name)
            if crd is None or not crd["metadata"].get("deletionTimestamp"):
                return
            res = self._instance_strategy(crd)
            remaining = await self._delete_instances(res) if res is not None else 0
            if remaining == 0:
                break
            await asyncio.sleep(CLEANUP_POLL_SECONDS)
        crd = self._cached(name)
        if crd is None:
            return
        if res is not None:
            group, plural = res.group, res.plural
            await self.registry.uninstall(group, plural)
            self._served.pop(name, None)
        done = copy.deepcopy(crd)
        set_condition(done, "Terminating", "True", "InstanceDeletionCompleted", "removed all instances")
        done["metadata"]["finalizers"] = [f for f in done["metadata"].get("finalizers") or [] if f != CLEANUP_FINALIZER]
        for attempt in range(10):
            try:
                await self.registry.update(self.crd_res, None, name, done)
                return
            except errors.ConflictError:
                fresh = self._cached(name)
                if fresh is None:
                    return
                done = copy.deepcopy(fresh)
                done["metadata"]["finalizers"] = [f for f in done["metadata"].get("finalizers") or []
                                                  if f != CLEANUP_FINALIZER]
                await asyncio.sleep(0.05 * (attempt + 1))
            except errors.NotFoundError:
                return

    async def _delete_instances(self, res: "Strategy") -> int:
        """Ask every remaining object to go; how many are still stored."""
        if res.group_resource in self.registry.caches:
            listed = await self.registry.list(res, None)
            objects = [e.obj for e in listed.items]
        else:  # no version served: straight from storage
            items, _ = await self.registry.storage.list(res.prefix)
            for kv in items:
                await self.registry.storage.delete(kv.key)
            return 0
        for obj in objects:
            meta = obj["metadata"]
            if meta.get("deletionTimestamp"):
                continue  # already going: its finalizers decide when
            try:
                await self.registry.delete(res, meta.get("namespace"), meta["name"])
            except errors.NotFoundError:
                pass
        return len(objects)
