"""Adopting and releasing dependents through the API: the I/O half of claiming.

Role: ``controllers.ownerrefs.claim`` decides, purely, which orphans an owner (a ReplicaSet or
Deployment) adopts and which owned objects it releases; the controllers' executors call ``adopt``
and ``release`` here to patch ``metadata.ownerReferences`` accordingly (Kubernetes'
``ControllerRefManager.AdoptPod``/``ReleasePod``). Data flow: claim result -> merge patch of the
whole ``ownerReferences`` list, guarded by the object's uid -> the patched object (or None when
the object is already gone).

Objects are plain wire dicts; cached ones are never changed (every function copies).
"""

from __future__ import annotations

import copy
from typing import Any

from controllers.ownerrefs import Obj, meta, name_of, uid_of
from machinery import errors
from machinery.client import ApiClient, ResourceLike


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
