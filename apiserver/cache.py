"""The watch-fed cache: one etcd watch per resource type, fanned out in process.

Data flow: ``start()`` lists the resource's prefix at revision R, then one background task
watches etcd from R+1. Each etcd event is decoded and encoded to JSON **once** (``Entry``), the
object map is updated, the event is appended to a bounded history, and every matching
``Watcher`` gets it through its own queue. Reads (get/list) and watches are served from here;
nothing ranges etcd per request. A watch from a revision older than the retained history (the
ring buffer's floor, or what the apiserver compacted) answers 410 Expired.

When the etcd watch breaks (etcd restarted) the task reconnects with backoff and resumes from
the last revision; if that revision was compacted meanwhile it relists and ends every open
watcher with a 410, so clients relist too, exactly as Kubernetes' reflector expects.

Consistent reads (several API servers, KEP-2340's goal): the registry asks etcd for a ``Probe`` of
a key range (its current revision R, and for the range the count of keys and their newest
mod_revision, in one range request) and waits until ``caught_up(probe)``: either this cache has
seen R, or its objects in that range are provably etcd's at R. The second test stands in for
etcd's watch progress notifications (unreliable before etcd 3.4.31 / 3.5.13, the versions used
here): when no key in the range changed after this cache's revision C (newest <= C) and the range
holds as many keys here as in etcd, the range is the same at C and at R, since a key put after C
would have a newer mod_revision and a key deleted after C would lower the count.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

import orjson

from .metrics import watch_cache_children
from .storage import Probe, RevisionCompactedError, Storage, StorageError

log = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


@dataclass(slots=True)
class Entry:
    """One version of one object: parsed once, encoded once."""

    key: bytes
    obj: dict[str, Any]
    raw: bytes  # JSON of ``obj`` with metadata.resourceVersion set
    revision: int


Transform = Callable[[dict[str, Any]], None]


def decode(key: bytes, value: bytes, revision: int, transform: "Transform | None" = None) -> Entry:
    obj = orjson.loads(value)
    if transform is not None:
        transform(obj)  # e.g. a custom resource's schema defaults, applied on read as Kubernetes does
    obj.setdefault("metadata", {})["resourceVersion"] = str(revision)
    return Entry(key, obj, orjson.dumps(obj), revision)


def _prefix_end(prefix: bytes) -> bytes | None:
    """The first key after every key that starts with ``prefix`` (etcd's range end of a prefix),
    None when there is none (a prefix of 0xff bytes only)."""
    trimmed = prefix.rstrip(b"\xff")
    return trimmed[:-1] + bytes([trimmed[-1] + 1]) if trimmed else None


@dataclass(slots=True)
class CacheEvent:
    type: EventType
    entry: Entry  # for DELETED: the last state, with the deletion's resourceVersion
    prev: Entry | None
    revision: int
    # The whole watch-stream line, encoded once for every watcher that takes it as is.
    line: bytes = b""

    def wire_line(self) -> bytes:
        if not self.line:
            self.line = b'{"type":"' + self.type.encode() + b'","object":' + self.entry.raw + b"}\n"
        return self.line


Matcher = Callable[[dict[str, Any]], bool]


@dataclass(eq=False)
class Watcher:
    """One client's view: a bounded queue of events that match its filter."""

    matches: Matcher
    after: int = 0  # events at or below this revision were already seen by the client
    queue: asyncio.Queue["CacheEvent | Exception | None"] = field(default_factory=lambda: asyncio.Queue(4096))
    closed: bool = False
    on_terminated: Callable[[], None] | None = None  # apiserver_terminated_watchers_total

    def offer(self, ev: CacheEvent) -> None:
        if ev.revision <= self.after:
            return
        was = ev.prev is not None and self.matches(ev.prev.obj)
        now = ev.type != "DELETED" and self.matches(ev.entry.obj)
        if ev.type == "DELETED":
            now, was = False, self.matches(ev.entry.obj)
        if not was and not now:
            return
        if was and now:
            out = ev
        elif now:  # moved into the selection: the watcher sees it appear
            out = ev if ev.type == "ADDED" else CacheEvent("ADDED", ev.entry, ev.prev, ev.revision)
        else:  # moved out of (or deleted from) the selection
            out = ev if ev.type == "DELETED" else CacheEvent("DELETED", ev.entry, ev.prev, ev.revision)
        self._put(out)

    def _put(self, item: "CacheEvent | Exception | None") -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # A consumer this slow would hold events forever; Kubernetes drops it too.
            self.closed = True
            if self.on_terminated is not None:
                self.on_terminated()
            self.queue = asyncio.Queue(2)
            self.queue.put_nowait(TooSlowError())
            self.queue.put_nowait(None)

    def close(self, error: Exception | None = None) -> None:
        if error is not None:
            self._put(error)
        self._put(None)
        self.closed = True


class TooSlowError(Exception):
    pass


class ExpiredError(Exception):
    """The requested resourceVersion is older than this cache can replay."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested, self.oldest = requested, oldest


class WatchCache:
    def __init__(self, storage: Storage, prefix: bytes, *, history: int = 10000,
                 retry_seconds: float = 0.5, transform: Transform | None = None) -> None:
        self._storage = storage
        self.prefix = prefix
        self.transform = transform
        self._history: deque[CacheEvent] = deque()
        self._history_size = history
        self._retry = retry_seconds
        self.objects: dict[bytes, Entry] = {}
        self._keys: list[bytes] = []  # the keys of ``objects``, sorted: lists need no sort per request
        self.unreadable: dict[bytes, str] = {}  # keys whose stored value cannot be decrypted -> why
        self.revision = 0
        self.floor = 0  # events after this revision are all in _history
        self._watchers: set[Watcher] = set()
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        # (time, revision) samples so the compactor can find "the revision N seconds ago".
        self.samples: deque[tuple[float, int]] = deque(maxlen=4096)
        self._dispatched, self._terminated = watch_cache_children(prefix)  # counters (apiserver/metrics.py)

    def decode(self, key: bytes, value: bytes, revision: int) -> Entry:
        """One stored version as this resource serves it (parsed, transformed and encoded once)."""
        return decode(key, value, revision, self.transform)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watchcache {self.prefix.decode()}")

    async def stop(self, *, timeout: float = 5.0) -> None:
        """Stop following etcd and end every watch on this cache, even when the stop itself is
        cancelled while it waits (a CRD's cleanup cancelled as its resource is uninstalled left the
        resource's watches open: the cache was no longer the registry's, so nothing else ends them)."""
        try:
            if self._task:
                self._task.cancel()
                # Bounded: an etcd watch being torn down inside aetcd can hold the cancelled task
                # (seen in tests: a stop that never returned); the storage's close ends it after.
                done, _ = await asyncio.wait({self._task}, timeout=timeout)
                if not done:
                    log.warning("watch cache %s did not stop within %.0fs", self.prefix.decode(), timeout)
                elif not self._task.cancelled():
                    self._task.exception()  # retrieved: a failure while stopping is of no use now
        finally:
            for w in list(self._watchers):
                w.close()

    async def _relist(self) -> None:
        items, rev = await self._storage.list(self.prefix)
        fresh = {kv.key: self.decode(kv.key, kv.value, kv.mod_revision) for kv in items if not kv.error}
        self.unreadable = {kv.key: kv.error for kv in items if kv.error}
        for key, why in self.unreadable.items():
            log.error("cannot serve %s: %s", key.decode(errors="replace"), why)
        restarted = self.ready.is_set()
        self.objects, self._keys, self.revision, self.floor = fresh, sorted(fresh), rev, rev
        self._history.clear()
        if restarted:
            for w in list(self._watchers):
                w.close(ExpiredError(rev, rev))
            self._watchers.clear()
        await self._notify()
        self.ready.set()

    async def _run(self) -> None:
        delay = self._retry
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for ev in self._storage.watch(self.prefix, from_revision=self.revision + 1):
                    if ev.error and ev.type == "PUT":  # a version it cannot decrypt: no longer served
                        log.error("cannot serve %s: %s", ev.key.decode(errors="replace"), ev.error)
                        self.unreadable[ev.key] = ev.error
                        self._apply("DELETE", ev.key, b"", ev.revision)
                    else:
                        self.unreadable.pop(ev.key, None)
                        self._apply(ev.type, ev.key, ev.value, ev.revision)
                    self.revision = max(self.revision, ev.revision)  # also past keys it never served
                    delay = self._retry
                    await self._notify()
            except asyncio.CancelledError:
                raise
            except RevisionCompactedError:
                log.warning("watch on %s fell behind compaction; relisting", self.prefix.decode())
                need_list = True
            except StorageError as e:
                log.warning("watch on %s broke (%s); retrying in %.1fs", self.prefix.decode(), e, delay)
            except Exception:  # noqa: BLE001 - keep the cache alive whatever a decode hits
                log.exception("watch cache %s failed; relisting", self.prefix.decode())
                need_list = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _apply(self, etype: str, key: bytes, value: bytes, revision: int) -> None:
        prev = self.objects.get(key)
        if etype == "DELETE":
            if prev is None:
                return
            # The deleted object is served as its last state, stamped with the deletion's revision.
            last = dict(prev.obj, metadata={**prev.obj["metadata"], "resourceVersion": str(revision)})
            gone = Entry(key, last, orjson.dumps(last), revision)
            del self.objects[key]
            del self._keys[bisect.bisect_left(self._keys, key)]
            ev = CacheEvent("DELETED", gone, prev, revision)
        else:
            entry = self.decode(key, value, revision)
            self.objects[key] = entry
            if prev is None:
                bisect.insort(self._keys, key)
            ev = CacheEvent("MODIFIED" if prev is not None else "ADDED", entry, prev, revision)
        self.revision = revision
        self._history.append(ev)
        self._dispatched.inc()
        if len(self._history) > self._history_size:
            self.floor = self._history.popleft().revision
        for w in list(self._watchers):
            if w.closed:
                self._watchers.discard(w)
            else:
                w.offer(ev)
        self.samples.append((time.monotonic(), revision))

    async def _notify(self) -> None:
        async with self._advanced:
            self._advanced.notify_all()

    async def wait_for(self, revision: int, *, timeout: float = 5.0) -> bool:
        """Wait until this cache has seen ``revision`` (read-your-writes for this apiserver)."""
        return await self.wait_until(lambda: self.revision >= revision, timeout=timeout)

    async def wait_until(self, check: Callable[[], bool], *, timeout: float) -> bool:
        """Wait (at most ``timeout`` s) until the cache is ready and ``check()`` holds after an event."""
        if self.ready.is_set() and check():
            return True

        async def _wait() -> None:
            await self.ready.wait()
            async with self._advanced:
                await self._advanced.wait_for(check)
        try:
            await asyncio.wait_for(_wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def count(self, key: bytes, *, prefix: bool) -> int:
        """How many objects this cache holds under ``key`` (``prefix``) or at exactly ``key``."""
        # Keys whose value cannot be decrypted are in etcd too: counted, though not served.
        if not prefix:
            return 1 if key in self.objects or key in self.unreadable else 0
        if key == self.prefix:
            return len(self.objects) + len(self.unreadable)
        return sum(1 for k in (*self.objects, *self.unreadable) if k.startswith(key))

    def caught_up(self, probe: Probe, key: bytes, *, prefix: bool) -> bool:
        """Whether this cache holds etcd's state of the probed range as of ``probe.revision`` (or newer)."""
        if self.revision >= probe.revision:
            return True
        return self.revision >= probe.newest and self.count(key, prefix=prefix) == probe.count

    def compacted(self, revision: int) -> None:
        """The apiserver compacted etcd at ``revision``: history at or below it is gone too."""
        while self._history and self._history[0].revision <= revision:
            self._history.popleft()
        self.floor = max(self.floor, min(revision, self.revision))

    def list(self, prefix: bytes | None = None, *, after: bytes = b"") -> tuple[list[Entry], int]:
        """The entries under ``prefix`` (all by default) sorted by key, those after ``after`` only
        when given (a continued page): found by bisection in the sorted keys, no scan, no sort."""
        keys = self._keys
        end = _prefix_end(prefix) if prefix else None
        lo = bisect.bisect_left(keys, prefix) if prefix else 0
        hi = bisect.bisect_left(keys, end) if end is not None else len(keys)
        if after:
            lo = max(lo, bisect.bisect_right(keys, after))
        objects = self.objects
        return [objects[k] for k in keys[lo:hi]], self.revision

    def get(self, key: bytes) -> Entry | None:
        return self.objects.get(key)

    def watch(self, *, from_revision: int | None, matches: Matcher) -> Watcher:
        """A watcher fed with every matching event after ``from_revision``.

        ``None`` means "now, with the current objects as ADDED events first" (resourceVersion
        unset or "0" in the API). Raises ``ExpiredError`` for a revision this cache cannot replay.
        """
        w = Watcher(matches, after=from_revision or 0, on_terminated=self._terminated.inc)
        if from_revision is None:
            for entry in [self.objects[k] for k in self._keys]:
                w.offer(CacheEvent("ADDED", entry, None, entry.revision))
        else:
            if from_revision < self.floor:
                raise ExpiredError(from_revision, self.floor)
            for ev in self._history:
                if ev.revision > from_revision:
                    w.offer(ev)
        self._watchers.add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self._watchers.discard(w)
        w.closed = True
