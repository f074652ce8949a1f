"""The API server's own CRD controller: serve what CustomResourceDefinitions define, and clean up.

After apiextensions-apiserver's naming, establishing and finalizing controllers, in one loop that
runs inside every apiserver process. Data flow: the CRD watch cache -> one event per changed CRD
-> ``sync(name)``, level-triggered on the cached object:

- names (the naming controller): every name a CRD asks for that another CRD of its group has
  accepted already (plural, singular and short names share one set, kind and listKind another)
  is refused: ``NamesAccepted=False`` with ``PluralConflict``, ``SingularConflict``,
  ``ShortNamesConflict``, ``KindConflict`` or ``ListKindConflict`` and ``"x" is already in use``;
  the free names go to ``status.acceptedNames``. When a CRD gives names up (it is deleted, or
  its names change), the other CRDs of its group are looked at again;
- serving: a CRD whose names are accepted (or that was established before) has its served
  versions installed in the registry under its accepted names (one strategy each, sharing one
  watch cache; discovery and OpenAPI follow at once), versions no longer served are removed,
  and only then ``Established=True`` is written, so a client that waits for it finds the resource;
- deletion (the finalizing controller): a CRD marked for deletion gets
  ``Terminating=True/InstanceDeletionInProgress`` and keeps being served, but forbids creates,
  while every custom object of it is deleted (objects with finalizers go when their controllers
  remove them); when none is left, ``Terminating=False/InstanceDeletionCompleted``, the
  ``customresourcecleanup.apiextensions.k8s.io`` finalizer is removed and the CRD goes, and with
  it the served resource.

A status write that loses a race is simply retried on the next event; several apiservers may run
this loop at once.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from machinery import errors

from .kinds.apiextensions.customresourcedefinition import CLEANUP_FINALIZER, condition_true, set_condition
from .kinds.customresource import CustomResourceStrategy, from_crd, storage_version

if TYPE_CHECKING:
    from .kinds.base import Strategy
    from .registry import Registry

log = logging.getLogger(__name__)

CLEANUP_POLL_SECONDS = 0.5


def _names(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    names = (crd.get("spec") or {}).get("names")
    return names if isinstance(names, Mapping) else {}


def _accepted(crd: Mapping[str, Any]) -> Mapping[str, Any]:
    names = (crd.get("status") or {}).get("acceptedNames")
    return names if isinstance(names, Mapping) else {}


def group_of(crd_name: str) -> str:
    """A CRD is named ``<plural>.<group>`` (validation insists), so its name tells its group."""
    return crd_name.split(".", 1)[1] if "." in crd_name else ""


def _fresh_or_ours(requested: Any, accepted: Any, used: set[str]) -> str | None:
    """equalToAcceptedOrFresh: None when the name may be taken, else the conflict message."""
    if requested == accepted or requested not in used:
        return None
    return f'"{requested}" is already in use'


def accepted_names(crd: Mapping[str, Any], group_crds: Sequence[Mapping[str, Any]]
                   ) -> tuple[dict[str, Any], tuple[str, str, str]]:
    """The naming controller's calculateNamesAndConditions: the names this CRD may use now and its
    NamesAccepted condition ``(status, reason, message)``.

    ``group_crds`` are the CRDs of the same group (this one included): the names in their
    ``status.acceptedNames`` are taken (plural, singular and short names share one set, kind and
    listKind another). A name this CRD already holds stays its own; a conflicting one keeps the
    previously accepted value, so an established CRD goes on being served under its old names.
    """
    resources: set[str] = set()
    kinds: set[str] = set()
    for other in group_crds:
        taken = _accepted(other)
        resources.update(str(taken.get(f) or "") for f in ("plural", "singular"))
        resources.update(str(x) for x in taken.get("shortNames") or [])
        kinds.update(str(taken.get(f) or "") for f in ("kind", "listKind"))
    requested, accepted = _names(crd), _accepted(crd)
    new = {k: copy.deepcopy(v) for k, v in accepted.items()}
    condition = ("Unknown", "", "")
    for field_name, used, reason in (("plural", resources, "PluralConflict"),
                                     ("singular", resources, "SingularConflict")):
        error = _fresh_or_ours(requested.get(field_name) or "", accepted.get(field_name) or "", used)
        if error is None:
            new[field_name] = requested.get(field_name) or ""
        else:
            condition = ("False", reason, error)
    wanted_short, held_short = list(requested.get("shortNames") or []), list(accepted.get("shortNames") or [])
    if wanted_short != held_short:
        errors_ = [e for short in wanted_short if short not in held_short
                   and (e := _fresh_or_ours(short, "", resources)) is not None]
        if errors_:
            unique = list(dict.fromkeys(errors_))
            condition = ("False", "ShortNamesConflict", unique[0] if len(unique) == 1 else f"[{', '.join(unique)}]")
        else:
            new["shortNames"] = wanted_short
    for field_name, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
        error = _fresh_or_ours(requested.get(field_name) or "", accepted.get(field_name) or "", kinds)
        if error is None:
            new[field_name] = requested.get(field_name) or ""
        else:
            condition = ("False", reason, error)
    if requested.get("categories") is not None:
        new["categories"] = list(requested.get("categories") or [])
    else:
        new.pop("categories", None)
    for field_name in ("shortNames", "categories"):
        if not new.get(field_name):
            new.pop(field_name, None)
    for field_name in ("singular", "listKind"):  # omitempty; plural and kind are always there, as in Go's JSON
        if not new.get(field_name):
            new.pop(field_name, None)
    new.setdefault("plural", "")
    new.setdefault("kind", "")
    if condition[0] == "Unknown":
        condition = ("True", "NoConflicts", "no conflicts found")
    return new, condition


class CRDController:
    def __init__(self, registry: "Registry") -> None:
        self.registry = registry
        crd_res = registry.resources.by_kind("CustomResourceDefinition", "apiextensions.k8s.io")
        assert crd_res is not None, "the CustomResourceDefinition kind is not served"
        self.crd_res: "Strategy" = crd_res
        self._served: dict[str, tuple[str, str]] = {}  # CRD name -> (group, plural) installed
        self._written: dict[str, dict[str, Any]] = {}  # CRD name -> the status this controller last wrote
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

    def _group_crds(self, group: str) -> list[dict[str, Any]]:
        """The CRDs of one group as this apiserver last knows them: the cache, or the status it just
        wrote when the cache has not caught up yet (Kubernetes' mutation cache), so two CRDs synced
        one after the other never both get the same name."""
        out = []
        for entry in list(self.registry.cache(self.crd_res).objects.values()):
            crd = entry.obj
            if (crd.get("spec") or {}).get("group") != group:
                continue
            written = self._written.get(crd["metadata"]["name"])
            if written is not None and int(written["metadata"]["resourceVersion"]) > entry.revision:
                crd = written
            out.append(crd)
        return out

    async def sync(self, name: str) -> None:
        crd = self._cached(name)
        if crd is None:
            await self._stop_serving(name)
            self._written.pop(name, None)
            await self._resync_group(group_of(name), but=name)  # its names are free now
            return
        if crd["metadata"].get("deletionTimestamp"):
            if condition_true(crd, "Established"):
                await self._serve(name, crd)  # still served (after a restart too), but creates are forbidden
            if name not in self._cleanups or self._cleanups[name].done():
                self._cleanups[name] = asyncio.create_task(self._cleanup(name), name=f"crd-cleanup-{name}")
            return
        group = str((crd.get("spec") or {}).get("group") or "")
        group_crds = [c if c["metadata"]["name"] != name else crd for c in self._group_crds(group)]
        if not any(c["metadata"]["name"] == name for c in group_crds):
            group_crds.append(crd)
        names, (accepted, reason, message) = accepted_names(crd, group_crds)
        status = copy.deepcopy(crd)
        status.setdefault("status", {})["acceptedNames"] = names
        set_condition(status, "NamesAccepted", accepted, reason, message)
        if not condition_true(crd, "Established") and accepted != "True":
            set_condition(status, "Established", "False", "NotAccepted", "not all names are accepted")
        # Served while its names are accepted or once it was established (then under the names it
        # was accepted with), as Kubernetes' handler serves it.
        if accepted == "True" or condition_true(crd, "Established"):
            await self._serve(name, status)
            set_condition(status, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted")
        else:
            await self._stop_serving(name)
        if status.get("status") != crd.get("status"):
            await self._write_status(status)
            if dict(_accepted(crd)) != names:
                await self._resync_group(group, but=name)  # names it gave up may be someone else's now
        log.debug("synced CRD %s (%s): names accepted %s", name, group, accepted)

    async def _resync_group(self, group: str, *, but: str) -> None:
        """Look again at the other CRDs of a group whose requested names are not (all) theirs yet."""
        for other in self._group_crds(group):
            other_name = other["metadata"]["name"]
            if other_name != but and dict(_names(other)) != dict(_accepted(other)):
                await self._sync_quietly(other_name)

    async def _serve(self, name: str, crd: Mapping[str, Any]) -> None:
        strategies = from_crd(crd)
        group = str(crd["spec"].get("group") or "")
        plural = str(_accepted(crd).get("plural") or _names(crd).get("plural") or "")
        previous = self._served.get(name)
        if previous is not None and previous != (group, plural):
            await self.registry.uninstall(*previous)
        if strategies:
            # Objects are defaulted as they are read too, with the storage version's schema.
            stored = [v for v in crd["spec"].get("versions") or [] if v.get("name") == storage_version(crd)]
            reader = CustomResourceStrategy(crd, stored[0]) if stored else strategies[0]
            await self.registry.install(list(strategies), read_transform=reader.defaults,
                                        transform_key=json.dumps(reader.crd_schema, sort_keys=True))
        await self.registry.uninstall(group, plural, keep_versions=[s.version for s in strategies])
        self._served[name] = (group, plural)

    async def _stop_serving(self, name: str) -> None:
        served = self._served.pop(name, None)
        if served is not None:
            await self.registry.uninstall(*served)
        task = self._cleanups.pop(name, None)
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    async def _write_status(self, crd: dict[str, Any]) -> dict[str, Any]:
        name = crd["metadata"]["name"]
        result = await self.registry.update(self.crd_res, None, name, crd, subresource="status")
        self._written[name] = result.obj
        return result.obj

    # ------------------------------------------------------------------ deletion
    def _instance_strategy(self, crd: Mapping[str, Any]) -> "Strategy | None":
        group = str(crd["spec"].get("group") or "")
        plural = str(_accepted(crd).get("plural") or _names(crd).get("plural") or "")
        served = self.registry.resources.versions_of(group, plural)
        if served:
            return served[0]
        versions = [v for v in crd["spec"].get("versions") or [] if v.get("name") == storage_version(crd)]
        return CustomResourceStrategy(crd, versions[0]) if versions else None

    async def _set_terminating(self, name: str, status: str, reason: str, message: str) -> dict[str, Any] | None:
        """Write the Terminating condition (retried a few times on a lost race); the CRD as it is now."""
        for attempt in range(5):
            crd = self._cached(name)
            if crd is None:
                return None
            crd = copy.deepcopy(crd)
            if not set_condition(crd, "Terminating", status, reason, message):
                return crd
            try:
                return await self._write_status(crd)
            except errors.NotFoundError:
                return None
            except errors.ConflictError:
                await asyncio.sleep(0.05 * (attempt + 1))
        return self._cached(name)

    async def _cleanup(self, name: str) -> None:
        """The finalizing controller: delete every custom object of the CRD, then let the CRD go."""
        crd = await self._set_terminating(name, "True", "InstanceDeletionInProgress",
                                          "CustomResource deletion is in progress")
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        if condition_true(crd, "Established"):
            while True:
                crd = self._cached(name)
                if crd is None or not crd["metadata"].get("deletionTimestamp"):
                    return
                res = self._instance_strategy(crd)
                remaining = await self._delete_instances(res) if res is not None else 0
                if remaining == 0:
                    break
                await asyncio.sleep(CLEANUP_POLL_SECONDS)
            await self._set_terminating(name, "False", "InstanceDeletionCompleted", "removed all instances")
        else:
            await self._set_terminating(name, "False", "NeverEstablished", "resource was never established")
        for attempt in range(10):
            fresh = self._cached(name)
            if fresh is None:
                break
            done = copy.deepcopy(fresh)
            done["metadata"]["finalizers"] = [f for f in done["metadata"].get("finalizers") or []
                                              if f != CLEANUP_FINALIZER]
            try:
                await self.registry.update(self.crd_res, None, name, done)
                break
            except errors.ConflictError:
                await asyncio.sleep(0.05 * (attempt + 1))
            except errors.NotFoundError:
                break
        served = self._served.pop(name, None)
        if served is not None:
            await self.registry.uninstall(*served)

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
