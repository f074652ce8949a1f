"""The informer: one list+watch cache of one resource, shared by every minik8s component.

Data flow (client-go's reflector + store + shared handlers in one class):

    list -> replace the cache, emit the diff as add/update/delete -> has_synced
    watch ?resourceVersion=<list RV>&allowWatchBookmarks=true
      ADDED/MODIFIED/DELETED -> update the cache -> call the handlers
      BOOKMARK               -> only advance the resourceVersion
      stream ends (timeoutSeconds)      -> watch again from the last resourceVersion
      GoneError (410: RV compacted)     -> relist at once; the diff against the old cache is
                                           emitted as synthetic add/update/delete events
      ConnectionFailedError / 5xx / ... -> exponential backoff, then watch again from the last
                                           resourceVersion (which may answer 410 -> relist)

The last resourceVersion is taken from every event and bookmark, so a resumed watch replays
nothing twice and misses nothing.

The cache is read-only for callers. ``get``/``list`` and the handlers receive the cached dicts
themselves, not copies, because copying every object on every read would dominate a scheduler
or controller at scale. Callers must copy before changing anything (``copy.deepcopy``, or build a
patch). Breaking that rule corrupts every other user of the informer, so, like client-go's
``KUBE_CACHE_MUTATION_DETECTOR``, ``InformerSettings(detect_mutations=True)`` (or the environment
variable ``MINIK8S_CACHE_MUTATION_DETECTOR=1``) keeps a private copy of each object, compares when
the object is replaced or removed, logs and records any mutation, and ``check_mutations()`` raises
in tests.

Handlers are plain (synchronous) callables, called in the informer's task in event order; they
should be quick (typically ``controller.enqueue(key)``). One raising is logged and does not stop
the others or the informer. A handler added after the first sync is first sent an add for every
cached object, so it never misses what came before it; ``remove_handler`` (with what
``add_handler`` returned) detaches one. There is no periodic resync: controllers are
level-triggered and ask for a later look with ``Result.after``.
"""

from __future__ import annotations

import asyncio
import builtins
import copy
import logging
import os
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from machinery import errors
from machinery.client import ApiClient, ApiResource, ResourceLike, resource_for

log = logging.getLogger(__name__)

Obj = dict[str, Any]
AddHandler = Callable[[Obj], None]
UpdateHandler = Callable[[Obj, Obj], None]
DeleteHandler = Callable[[Obj], None]


def object_key(obj: Obj) -> str:
    """``namespace/name``, or ``name`` for a cluster-scoped object (client-go's MetaNamespaceKeyFunc)."""
    meta = obj.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name") or ""
    return f"{ns}/{name}" if ns else str(name)


def split_key(key: str) -> tuple[str | None, str]:
    """The inverse of ``object_key``: ``(namespace or None, name)``."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class CacheMutationError(AssertionError):
    """A caller changed an object that belongs to the informer's cache."""


@dataclass(frozen=True)
class InformerSettings:
    # Each watch asks the server to end it after a random time in [t, 2t] (client-go: 5-10 min),
    # so long-lived connections are refreshed and all informers do not reconnect at once.
    watch_timeout_s: float = 300.0
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 30.0
    detect_mutations: bool = os.environ.get("MINIK8S_CACHE_MUTATION_DETECTOR", "") in ("1", "true")


@dataclass(eq=False)
class HandlerRegistration:
    """What ``add_handler`` returns; give it to ``remove_handler`` to stop receiving events."""

    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None


class Informer:
    """List+watch of one resource (optionally one namespace and selectors) into a read-only cache."""

    def __init__(self, client: ApiClient, api_version: str, plural: str, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 settings: InformerSettings | None = None) -> None:
        self.client = client
        known = resource_for((api_version, plural))
        # A namespace given for an unknown resource still scopes it; None lists across namespaces.
        self.resource = ApiResource(api_version, plural, True if namespace else known.namespaced, known.kind)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.settings = settings or InformerSettings()
        self.name = f"{plural}.{api_version}" + (f"/{namespace}" if namespace else "")
        self._items: dict[str, Obj] = {}
        self._pristine: dict[str, Obj] = {}
        self.mutations: list[str] = []
        self._handlers: list[HandlerRegistration] = []
        self._synced = asyncio.Event()
        self._stop = asyncio.Event()
        self._running = False
        self.resource_version = ""  # the last resourceVersion seen (list, event or bookmark)
        self.relists = 0  # how many times the informer listed (1 + relists after 410)
        self._log = log.getChild(self.name)

    @classmethod
    def for_kind(cls, client: ApiClient, resource: ResourceLike, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None,
                 settings: InformerSettings | None = None) -> "Informer":
        """The same, addressed like the client's verbs: ``Informer.for_kind(client, Pod)``."""
        res = resource_for(resource)
        return cls(client, res.api_version, res.plural, namespace=namespace, label_selector=label_selector,
                   field_selector=field_selector, settings=settings)

    # ------------------------------------------------------------------ cache reads
    def get(self, key: str) -> Obj | None:
        """The cached object under ``ns/name`` (or ``name``); do not mutate it."""
        return self._items.get(key)

    def get_by_name(self, name: str, namespace: str | None = None) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self, namespace: str | None = None) -> builtins.list[Obj]:
        """All cached objects (of one namespace if given); do not mutate them."""
        if namespace is None:
            return list(self._items.values())
        return [o for o in self._items.values() if (o.get("metadata") or {}).get("namespace") == namespace]

    def keys(self) -> builtins.list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[Obj]:
        return iter(list(self._items.values()))

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until the first list is in the cache and its adds were handled; False on timeout."""
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # ------------------------------------------------------------------ handlers
    def add_handler(self, on_add: AddHandler | None = None, on_update: UpdateHandler | None = None,
                    on_delete: DeleteHandler | None = None) -> HandlerRegistration:
        handler = HandlerRegistration(on_add, on_update, on_delete)
        self._handlers.append(handler)
        if on_add is not None:
            # Late handlers see the current state as adds, as client-go's shared informer does.
            for obj in list(self._items.values()):
                self._call(on_add, obj)
        return handler

    def remove_handler(self, registration: HandlerRegistration) -> None:
        """Stop calling a handler (client-go's ``RemoveEventHandler``); unknown ones are ignored.

        For a component that stops caring about a resource while others still share the informer
        (the garbage collector when a resource leaves discovery)."""
        try:
            self._handlers.remove(registration)
        except ValueError:
            pass

    def _call(self, fn: Callable[..., None], *args: Obj) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - a handler's failure must not reach other handlers
            self._log.exception("event handler %r failed", fn)

    def _emit_add(self, obj: Obj) -> None:
        for h in list(self._handlers):
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for h in list(self._handlers):
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for h in list(self._handlers):
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    # ------------------------------------------------------------------ cache writes
    def _check(self, key: str, cached: Obj | None) -> None:
        if not self.settings.detect_mutations or cached is None:
            return
        pristine = self._pristine.get(key)
        if pristine is not None and pristine != cached:
            msg = f"cached object {self.name} {key} was mutated by a caller"
            self.mutations.append(msg)
            self._log.error(msg)

    def _store(self, key: str, obj: Obj) -> Obj | None:
        old = self._items.get(key)
        self._check(key, old)
        self._items[key] = obj
        if self.settings.detect_mutations:
            self._pristine[key] = copy.deepcopy(obj)
        return old

    def _remove(self, key: str) -> Obj | None:
        old = self._items.pop(key, None)
        self._check(key, old)
        self._pristine.pop(key, None)
        return old

    def check_mutations(self) -> None:
        """Raise ``CacheMutationError`` if any cached object was changed by a caller (detector on)."""
        for key, obj in self._items.items():
            self._check(key, obj)
            if self.settings.detect_mutations:
                self._pristine[key] = copy.deepcopy(obj)  # report each mutation once
        if self.mutations:
            raise CacheMutationError("; ".join(self.mutations))

    def _apply(self, etype: str, obj: Obj) -> None:
        rv = _rv(obj)
        if rv:
            self.resource_version = rv
        if etype == "BOOKMARK":
            return
        key = object_key(obj)
        if etype == "DELETED":
            self._remove(key)
            self._emit_delete(obj)
            return
        old = self._store(key, obj)
        if old is None:
            self._emit_add(obj)
        else:
            self._emit_update(old, obj)

    async def relist(self) -> None:
        """List afresh, replace the cache, and emit the difference as add/update/delete."""
        data = await self.client.list(self.resource, namespace=self.namespace, label_selector=self.label_selector,
                                      field_selector=self.field_selector)
        self.relists += 1
        fresh: dict[str, Obj] = {}
        kind, api_version = (data.get("kind") or "").removesuffix("List"), data.get("apiVersion")
        for item in data.get("items") or []:
            # List items carry no kind/apiVersion on the wire; handlers get whole objects, as from a watch.
            if kind:
                item.setdefault("kind", kind)
            if api_version:
                item.setdefault("apiVersion", api_version)
            fresh[object_key(item)] = item
        old_items = dict(self._items)
        added: list[Obj] = []
        updated: list[tuple[Obj, Obj]] = []
        for key, obj in fresh.items():
            prev = old_items.get(key)
            if prev is None:
                added.append(obj)
                self._store(key, obj)
            elif _rv(prev) != _rv(obj):
                updated.append((prev, obj))
                self._store(key, obj)
            # else unchanged: keep the object handlers already saw
        deleted = [prev for key, prev in old_items.items() if key not in fresh]
        for obj in deleted:
            self._remove(object_key(obj))
        self.resource_version = str((data.get("metadata") or {}).get("resourceVersion") or "")
        for obj in added:
            self._emit_add(obj)
        for prev, obj in updated:
            self._emit_update(prev, obj)
        for obj in deleted:
            self._emit_delete(obj)
        if not self._synced.is_set():
            self._log.debug("synced %d objects at resourceVersion %s", len(fresh), self.resource_version)
        self._synced.set()

    async def _watch_once(self) -> bool:
        """Watch from the last resourceVersion until the server ends the stream; True if events came."""
        timeout = int(self.settings.watch_timeout_s * (1 + random.random()))
        got = False
        async with self.client.watch(self.resource, namespace=self.namespace, label_selector=self.label_selector,
                                     field_selector=self.field_selector, resource_version=self.resource_version,
                                     timeout_seconds=max(timeout, 1), allow_watch_bookmarks=True) as stream:
            async for etype, obj in stream:
                got = True
                self._apply(etype, obj)
        return got

    # ------------------------------------------------------------------ lifecycle
    async def run(self) -> None:
        """List, then watch and keep the cache current until ``stop()`` (or cancellation)."""
        if self._running:
            raise RuntimeError(f"informer {self.name} is already running")
        self._running = True
        loop = asyncio.create_task(self._loop(), name=f"informer-{self.name}")
        stopper = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({loop, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (loop, stopper):
                t.cancel()
            await asyncio.gather(loop, stopper, return_exceptions=True)
            self._running = False
            self._stop.clear()  # a stop() that came before run() still ends this run at once
        if loop.done() and not loop.cancelled():
            failure = loop.exception()
            if failure is not None:
                raise failure  # a bug in the loop itself: do not hide it

    def start(self) -> "asyncio.Task[None]":
        """``run()`` in a new task (keep a reference to it)."""
        return asyncio.create_task(self.run(), name=f"informer-run-{self.name}")

    def stop(self) -> None:
        """Ask ``run()`` to end (or the next ``run()``, if none is running); it closes the watch."""
        self._stop.set()

    async def _loop(self) -> None:
        s = self.settings
        delay = s.backoff_initial_s
        # A restarted informer that synced before resumes its watch (410 -> relist, as always).
        need_list = not self._synced.is_set() or not self.resource_version
        while True:
            try:
                if need_list:
                    await self.relist()
                    need_list = False
                    delay = s.backoff_initial_s
                started = time.monotonic()
                got = await self._watch_once()
                if got or time.monotonic() - started > 1.0:
                    delay = s.backoff_initial_s
                    continue
                # The server ended an empty watch at once: do not spin on it.
                await asyncio.sleep(delay)
                delay = min(delay * 2, s.backoff_max_s)
            except errors.GoneError as e:
                self._log.info("resourceVersion %s expired (%s); relisting", self.resource_version, e)
                need_list = True
            except errors.ApiError as e:
                # Connection failures, 5xx, 429, and also 403/404 (a resource that may appear later):
                # keep trying, more slowly each time, resuming from the last resourceVersion.
                self._log.warning("list/watch failed: %s (%s); retrying in %.1fs", e, type(e).__name__, delay)
                await asyncio.sleep(delay * (0.75 + random.random() / 2))
                delay = min(delay * 2, s.backoff_max_s)


__all__ = ["CacheMutationError", "HandlerRegistration", "Informer", "InformerSettings", "object_key", "split_key"]
