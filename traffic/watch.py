"""The informers behind every traffic component: Services and EndpointSlices, one debounced signal.

Data flow: a shared ``InformerFactory`` -> the informers of ``v1/services`` and
``discovery.k8s.io/v1/endpointslices`` (all namespaces) -> any add/update/delete marks the view
dirty -> ``changes()`` yields once per burst (after ``debounce`` seconds of quiet, at most
``max_delay`` after the first change), and only once both initial lists are in, as kube-proxy
syncs only after both; ``ports()`` is ``servicemap.service_ports`` over the caches at that moment.

Consumers: the kubelet's in-pod DNAT, ``minik8s proxy``, ``minik8s dns``, ``minik8s ingress``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from machinery.informer import Informer
from machinery.sharedinformers import InformerFactory
from traffic.servicemap import ServicePort, service_ports

SERVICES = ("v1", "services")
ENDPOINT_SLICES = ("discovery.k8s.io/v1", "endpointslices")


class ServiceWatch:
    """Services + EndpointSlices from ``factory``; start the factory after making this."""

    def __init__(self, factory: InformerFactory, *, debounce: float = 0.01, max_delay: float = 0.1) -> None:
        self.services: Informer = factory.informer(SERVICES)
        self.slices: Informer = factory.informer(ENDPOINT_SLICES)
        self.debounce = debounce
        self.max_delay = max_delay
        self._dirty = asyncio.Event()
        self._generation = 0
        for inf in (self.services, self.slices):
            inf.add_handler(self._on_event, lambda _old, _new: self._mark(), self._on_event)

    def _on_event(self, _obj: Any) -> None:
        self._mark()

    def _mark(self) -> None:
        self._generation += 1
        self._dirty.set()

    def notify(self) -> None:
        """Asks for one more round of ``changes()`` (e.g. when another input of a consumer moved)."""
        self._mark()

    @property
    def synced(self) -> bool:
        return self.services.has_synced and self.slices.has_synced

    async def wait_synced(self, timeout: float | None = None) -> bool:
        ok_services = await self.services.wait_synced(timeout)
        ok_slices = await self.slices.wait_synced(timeout)
        return ok_services and ok_slices

    def ports(self) -> list[ServicePort]:
        return service_ports(self.services.list(), self.slices.list())

    async def changes(self) -> AsyncIterator[int]:
        """Yields a generation number after each burst of changes, starting with one as soon as
        both caches have synced."""
        await self.wait_synced()
        self._dirty.set()
        while True:
            await self._dirty.wait()
            first = time.monotonic()
            seen = self._generation
            while True:
                await asyncio.sleep(self.debounce)
                if self._generation == seen or time.monotonic() - first >= self.max_delay:
                    break
                seen = self._generation
            self._dirty.clear()
            yield self._generation
