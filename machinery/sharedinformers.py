"""One informer per resource per process: the shared informer factory.

Data flow: every controller of a process asks the factory for the informer of a resource
(``factory.informer(("v1", "pods"))``) and adds its handlers to it -> ``start()`` runs each informer
once -> ``wait_synced()`` blocks until every cache has listed. So a controller-manager running
five controllers watches pods once, not five times (client-go's SharedInformerFactory).

Informers can also come and go at run time (the garbage collector follows discovery, where
custom resources appear and vanish): each ``informer()`` call counts as one user, and
``release(informer)`` gives one use back; when the last user has released it, the informer is
stopped, its task awaited, and it is forgotten (asking again later makes a fresh one). Users
that never release (every controller with a fixed set of resources) keep theirs for the
process's life. A ``wait_synced()`` in progress stops waiting for an informer released meanwhile.
"""

from __future__ import annotations

import asyncio

from machinery.client import ApiClient, ResourceLike, resource_for
from machinery.informer import Informer, InformerSettings

InformerKey = tuple[str, str, str | None, str | None, str | None]


class InformerFactory:
    def __init__(self, client: ApiClient, *, settings: InformerSettings | None = None) -> None:
        self.client = client
        self._settings = settings
        self._informers: dict[InformerKey, Informer] = {}
        self._users: dict[InformerKey, int] = {}
        self._tasks: dict[InformerKey, asyncio.Task[None]] = {}
        self._released: dict[InformerKey, asyncio.Event] = {}

    def informer(self, resource: ResourceLike, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None) -> Informer:
        """The process's informer of that resource (made on first use); counts one more user."""
        res = resource_for(resource)
        key: InformerKey = (res.api_version, res.plural, namespace, label_selector, field_selector)
        if key not in self._informers:
            self._informers[key] = Informer(self.client, res.api_version, res.plural, namespace=namespace,
                                            label_selector=label_selector, field_selector=field_selector,
                                            settings=self._settings)
            self._released[key] = asyncio.Event()
        self._users[key] = self._users.get(key, 0) + 1
        return self._informers[key]

    def __contains__(self, informer: object) -> bool:
        return any(i is informer for i in self._informers.values())

    def _key_of(self, informer: Informer) -> InformerKey | None:
        return next((k for k, i in self._informers.items() if i is informer), None)

    def start(self) -> None:
        """Start every informer asked for so far that is not running yet."""
        for key, inf in self._informers.items():
            task = self._tasks.get(key)
            if task is None or task.done():
                self._tasks[key] = inf.start()

    async def release(self, informer: Informer, *, timeout: float = 10.0) -> bool:
        """Give back one use of ``informer``; the last one stops it and forgets it (True then).

        Its handlers stay attached: a user that shares it with others removes its own handlers
        first (``Informer.remove_handler``)."""
        key = self._key_of(informer)
        if key is None:
            return False
        self._users[key] -= 1
        if self._users[key] > 0:
            return False
        del self._informers[key], self._users[key]
        self._released.pop(key).set()
        informer.stop()
        task = self._tasks.pop(key, None)
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return True

    async def wait_synced(self, timeout: float | None = None) -> bool:
        """Wait until every informer asked for so far has listed once (or was released meanwhile)."""
        pending = [(inf, self._released[key]) for key, inf in self._informers.items()]
        results = await asyncio.gather(*(self._wait_one(inf, released, timeout) for inf, released in pending))
        return all(results)

    @staticmethod
    async def _wait_one(inf: Informer, released: asyncio.Event, timeout: float | None) -> bool:
        synced = asyncio.ensure_future(inf.wait_synced())
        gone = asyncio.ensure_future(released.wait())
        try:
            await asyncio.wait({synced, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (synced, gone):
                t.cancel()
            await asyncio.gather(synced, gone, return_exceptions=True)
        return inf.has_synced or released.is_set()

    async def stop(self) -> None:
        for inf in self._informers.values():
            inf.stop()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
