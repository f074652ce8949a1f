"""Namespace controller: empties a namespace that is being deleted, then lets it go.

Data flow: the namespaces informer -> a namespace with a deletionTimestamp is enqueued after a
grace period (5 s, as Kubernetes waits, so that a client deleting the namespace and then its
objects one by one, like ``kubectl delete -f``, is not raced to them) ->
reconcile: discover (again, every time: custom resources come and go) every namespaced resource
type the API serves that can be deleted as a collection -> ``DELETE`` each collection in the namespace (Background propagation; pods on a
node terminate gracefully, so this can take a while) -> while anything is left, look again in a
second -> once empty, ``PUT namespaces/{name}/finalize`` without the ``kubernetes`` finalizer,
which lets the apiserver remove the namespace (Kubernetes' namespace deleter, in short).

``plan_finalize`` is the pure part: given the namespace and what is left, what to write.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from machinery import errors
from machinery.controller import Controller, Result
from machinery.informer import Obj

from .manager import ControllerContext

log = logging.getLogger(__name__)

NAMESPACES = ("v1", "namespaces")
FINALIZER = "kubernetes"
RECHECK_SECONDS = 1.0


def plan_finalize(namespace: Obj, remaining: int) -> Obj | None:
    """The namespace to PUT to ``/finalize`` once nothing is left in it; None while content remains."""
    if remaining or not (namespace.get("metadata") or {}).get("deletionTimestamp"):
        return None
    finalizers = list((namespace.get("spec") or {}).get("finalizers") or [])
    if FINALIZER not in finalizers:
        return None
    body = copy.deepcopy(namespace)
    body.setdefault("spec", {})["finalizers"] = [f for f in finalizers if f != FINALIZER]
    return body


async def namespaced_resources(client: Any) -> list[tuple[str, str]]:
    """(apiVersion, plural) of every namespaced resource that supports deletecollection."""
    out: list[tuple[str, str]] = []
    group_versions = ["v1"] + [v["groupVersion"] for g in (await client.request("GET", "/apis")).get("groups") or []
                               for v in g.get("versions") or []]
    for gv in group_versions:
        path = "/api/v1" if gv == "v1" else f"/apis/{gv}"
        try:
            listed = await client.request("GET", path)
        except errors.NotFoundError:
            continue  # a group version that went away between the two requests
        for r in listed.get("resources") or []:
            if r.get("namespaced") and "/" not in r["name"] and "deletecollection" in (r.get("verbs") or []):
                out.append((gv, r["name"]))
    return out


class NamespaceController:
    def __init__(self, ctx: ControllerContext) -> None:
        self.client = ctx.client
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.controller: Controller[str] = Controller("namespace", self.reconcile, workers=ctx.settings.workers)
        self.namespaces.add_handler(self._on_namespace, lambda old, new: self._on_namespace(new), None)
        self._grace = ctx.settings.namespace_deletion_grace_period

    def _on_namespace(self, ns: Obj) -> None:
        if (ns.get("metadata") or {}).get("deletionTimestamp"):
            self.controller.enqueue_after(ns["metadata"]["name"], self._grace)

    async def reconcile(self, name: str) -> Result | None:
        ns = self.namespaces.get(name)
        if ns is None or not (ns.get("metadata") or {}).get("deletionTimestamp"):
            return None
        remaining = 0
        for resource in await namespaced_resources(self.client):
            try:
                listed = await self.client.list(resource, namespace=name)
            except errors.NotFoundError:
                continue  # its CustomResourceDefinition went away since discovery
            items = listed.get("items") or []
            if not items:
                continue
            remaining += len(items)
            if any(not (i.get("metadata") or {}).get("deletionTimestamp") for i in items):
                try:
                    await self.client.delete_collection(resource, namespace=name, propagation_policy="Background")
                except errors.NotFoundError:
                    pass
        body = plan_finalize(ns, remaining)
        if body is not None:
            try:
                await self.client.request("PUT", f"/api/v1/namespaces/{name}/finalize", json=body)
            except (errors.NotFoundError, errors.ConflictError):
                return Result.after(0.2)  # gone already, or changed: look again
            log.info("namespace %s is empty; finalized", name)
            return None
        return Result.after(RECHECK_SECONDS) if remaining else None


async def run(ctx: ControllerContext) -> None:
    ctl = NamespaceController(ctx)
    ctx.informers.start()
    await ctl.namespaces.wait_synced()
    await ctl.controller.run()
