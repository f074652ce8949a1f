"""An owner's pods through the API: adopting, releasing, creating and deleting them.

Role: the I/O half that the pod-owning controllers (ReplicaSet, Job, DaemonSet) share, after
Kubernetes' ``ControllerRefManager`` and ``PodControl``.

- ``controllers.ownerrefs.claim`` decides, purely, which orphans an owner adopts and which owned
  objects it releases; ``adopt`` and ``release`` patch ``metadata.ownerReferences`` accordingly.
  Data flow: claim result -> merge patch of the whole ``ownerReferences`` list, guarded by the
  object's uid -> the patched object (or None when the object is already gone).
- ``PodWriter.create`` / ``delete``: the pod bodies or victims a plan chose -> creates in
  slow-start batches (1, 2, 4, ...: a failing batch stops the rest) / concurrent deletes -> the
  owner's ``Expectations`` raised first and lowered for what will never be observed, and the
  owner's ``SuccessfulCreate``/``FailedCreate``/``SuccessfulDelete``/``FailedDelete`` events.

Objects are plain wire dicts; cached ones are never changed (every function copies).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from typing import Any

from controllers.expectations import Expectations
from controllers.ownerrefs import Obj, key_of, meta, name_of, uid_of
from controllers.replicasetplan import slow_start_batches
from machinery import errors
from machinery.client import ApiClient, ResourceLike
from machinery.events import EventRecorder

POD_RESOURCE = ("v1", "pods")


async def adopt(client: ApiClient, resource: ResourceLike, obj: Obj, ref: dict[str, Any]) -> Obj:
    """Add the controller ref to ``obj`` (merge patch of the whole list, guarded by uid)."""
    refs = [r for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != ref.get("uid")]
    patch = {"metadata": {"uid": uid_of(obj), "ownerReferences": [*copy.deepcopy(refs), dict(ref)]}}
    return await client.patch(resource, name_of(obj), patch, namespace=meta(obj).get("namespace"))


async def release(client: ApiClient, resource: ResourceLike, obj: Obj, owner_uid: str) -> Obj | None:
    """Remove the owner's reference from ``obj``; None if ``obj`` is already gone."""
    refs = [copy.deepcopy(r) for r in meta(obj).get("ownerReferences") or [] if r.get("uid") != owner_uid]
    patch = {"metadata": {"uid": uid_of(obj), "ownerReferences": refs or None}}
    try:
        return await client.patch(resource, name_of(obj), patch, namespace=meta(obj).get("namespace"))
    except errors.NotFoundError:
        return None


def namespace_terminating(e: errors.ApiError) -> bool:
    """A create refused because the namespace is being deleted (cause ``NamespaceTerminating``)."""
    if any(c.reason == "NamespaceTerminating" for c in e.causes):
        return True
    return isinstance(e, errors.ForbiddenError) and "because it is being terminated" in e.message


class PodWriter:
    """Creates and deletes one controller's pods, keeping its expectations and recording events."""

    def __init__(self, client: ApiClient, recorder: EventRecorder, expectations: Expectations) -> None:
        self.client = client
        self.recorder = recorder
        self.expectations = expectations

    async def create(self, owner: Obj, key: str, bodies: Sequence[Obj]) -> int:
        """Create ``bodies`` (each copied) in the owner's namespace; the number created. Raises
        the first failure after lowering the expectations by what was not created."""
        self.expectations.expect_creations(key, len(bodies))
        ns = meta(owner).get("namespace")
        done = start = 0
        for size in slow_start_batches(len(bodies)):
            batch = bodies[start:start + size]
            start += size
            results = await asyncio.gather(*(self._create_one(owner, body, ns) for body in batch),
                                           return_exceptions=True)
            failures = [r for r in results if isinstance(r, BaseException)]
            done += len(batch) - len(failures)
            if failures:
                # Neither the failed nor the skipped creations will ever be observed.
                self.expectations.lower(key, adds=len(bodies) - done)
                raise failures[0]
        return done

    async def _create_one(self, owner: Obj, body: Obj, ns: str | None) -> None:
        try:
            pod = await self.client.create(POD_RESOURCE, copy.deepcopy(body), namespace=ns)
        except errors.ApiError as e:
            if namespace_terminating(e):
                return  # as Kubernetes: the namespace is going away, nothing to report
            await self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {e}")
            raise
        await self.recorder.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {name_of(pod)}")

    async def delete(self, owner: Obj, key: str, victims: Sequence[Obj]) -> None:
        """Delete ``victims`` concurrently; raises the first failure (a pod already gone is fine)."""
        self.expectations.expect_deletions(key, [key_of(p) for p in victims])

        async def one(pod: Obj) -> None:
            try:
                await self.client.delete(POD_RESOURCE, name_of(pod), namespace=meta(pod).get("namespace"))
            except errors.NotFoundError:
                self.expectations.deletion_observed(key, key_of(pod))
                return
            except errors.ApiError as e:
                self.expectations.deletion_observed(key, key_of(pod))
                await self.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {e}")
                raise
            await self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name_of(pod)}")

        results = await asyncio.gather(*(one(p) for p in victims), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
