"""One informer per resource per process: the shared informer factory.

Data flow: every controller of a process asks the factory for the informer of a resource
(``factory.informer(("v1", "pods"))``) and adds its handlers to it -> ``start()`` runs each informer
once -> ``wait_synced()`` blocks until every cache has listed. So a controller-manager running
five controllers watches pods once, not five times (client-go's SharedInformerFactory).
"""

from __future__ import annotations

import asyncio

from machinery.client import ApiClient, ResourceLike, resource_for
from machinery.informer import Informer, InformerSettings


class InformerFactory:
    def __init__(self, client: ApiClient, *, settings: InformerSettings | None = None) -> None:
        self.client = client
        self._settings = settings
        self._informers: dict[tuple[str, str, str | None, str | None, str | None], Informer] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def informer(self, resource: ResourceLike, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None) -> Informer:
        res = resource_for(resource)
        key = (res.api_version, res.plural, namespace, label_selector, field_selector)
        if key not in self._informers:
            self._informers[key] = Informer(self.client, res.api_version, res.plural, namespace=namespace,
                                            label_selector=label_selector, field_selector=field_selector,
                                            settings=self._settings)
        return self._informers[key]

    def start(self) -> None:
        """Start every informer asked for so far that is not running yet."""
        running = {t.get_name() for t in self._tasks}
        for inf in self._informers.values():
            if f"informer-run-{inf.name}" not in running:
                self._tasks.append(inf.start())

    async def wait_synced(self, timeout: float | None = None) -> bool:
        results = await asyncio.gather(*(i.wait_synced(timeout) for i in self._informers.values()))
        return all(results)

    async def stop(self) -> None:
        for inf in self._informers.values():
            inf.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
