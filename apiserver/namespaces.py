"""Namespace lifecycle inside the apiserver: empty a terminating namespace, then remove it.

Data flow: the namespace watch cache -> namespaces with a deletionTimestamp -> delete every
namespaced object in them through the registry (pods gracefully) -> once nothing is left,
drop the ``kubernetes`` spec finalizer, which finishes the namespace's deletion.

Kubernetes runs this in the controller-manager; minik8s keeps it here until the
controller-manager exists (issue 3), so that ``kubectl delete namespace`` completes.
"""

from __future__ import annotations

import asyncio
import logging

from machinery import errors

from .registry import Registry

log = logging.getLogger(__name__)


class NamespaceFinalizer:
    def __init__(self, registry: Registry, *, interval: float = 1.0) -> None:
        self._registry = registry
        self._interval = interval

    async def run(self) -> None:
        ns_res = self._registry.resources.by_kind("Namespace")
        assert ns_res is not None
        cache = self._registry.cache(ns_res)
        while True:
            await asyncio.sleep(self._interval)
            for entry in list(cache.objects.values()):
                meta = entry.obj.get("metadata") or {}
                if meta.get("deletionTimestamp"):
                    try:
                        await self.finalize(meta["name"])
                    except errors.ApiError as e:
                        log.warning("namespace %s: %s", meta["name"], e)

    async def finalize(self, namespace: str) -> bool:
        """One pass over a terminating namespace; True once it is gone."""
        reg = self._registry
        remaining = 0
        for res in reg.resources.all:
            if not res.namespaced:
                continue
            listed = await reg.list(res, namespace)
            for e in listed.items:
                remaining += 1
                if not e.obj["metadata"].get("deletionTimestamp"):
                    try:
                        await reg.delete(res, namespace, e.obj["metadata"]["name"],
                                         options={"propagationPolicy": "Background"})
                    except errors.NotFoundError:
                        remaining -= 1
        if remaining:
            return False
        ns_res = reg.resources.by_kind("Namespace")
        assert ns_res is not None

        def drop_finalizer(current: dict) -> dict:  # type: ignore[type-arg]
            current = {**current, "spec": {**(current.get("spec") or {})}}
            current["spec"]["finalizers"] = [f for f in current["spec"].get("finalizers") or [] if f != "kubernetes"]
            if not current["spec"]["finalizers"]:
                del current["spec"]["finalizers"]
            return current

        try:
            await reg._guaranteed_update(ns_res, None, namespace, drop_finalizer, subresource="finalize",
                                         precondition=None, dry_run=False)
        except errors.NotFoundError:
            pass
        return True
