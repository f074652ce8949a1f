"""Owner references, claiming and objects built from templates, as pure functions over wire dicts.

Role: what the ReplicaSet and Deployment controllers (and their pure planners) share about
ownership, after Kubernetes' ``metav1`` controller-ref helpers, ``ControllerRefManager.ClaimObject``
and ``GetPodFromTemplate``. Data flow: a planner reads an owner and candidate dependents from
informer caches -> ``claim(owner, objs, matches)`` decides which dependents it owns, which orphans
it adopts and which owned ones it releases -> the executor carries adoptions and releases out with
``controllers.podcontrol`` (the I/O). ``pod_from_template`` builds the body of a pod to create.

Objects are plain wire dicts; cached ones are never changed (every function copies). No I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]


def meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def uid_of(obj: Obj) -> str:
    return str(meta(obj).get("uid") or "")


def name_of(obj: Obj) -> str:
    return str(meta(obj).get("name") or "")


def key_of(obj: Obj) -> str:
    m = meta(obj)
    return f"{m.get('namespace')}/{m.get('name')}" if m.get("namespace") else str(m.get("name") or "")


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def controller_ref(owner: Obj, *, api_version: str, kind: str) -> dict[str, Any]:
    """``metav1.NewControllerRef``: the ownerReference a controller puts on what it creates."""
    return {"apiVersion": api_version, "kind": kind, "name": name_of(owner), "uid": uid_of(owner),
            "controller": True, "blockOwnerDeletion": True}


def get_controller_of(obj: Obj) -> dict[str, Any] | None:
    """The ownerReference with ``controller: true``, if any (``metav1.GetControllerOf``)."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def pod_from_template(template: Obj, owner: Obj, *, api_version: str, kind: str) -> Obj:
    """The pod a controller creates from ``spec.template``: generateName ``<owner>-``, the
    template's labels/annotations/finalizers, a controller ownerReference, the template's spec."""
    tmeta = template.get("metadata") or {}
    pod_meta: dict[str, Any] = {"generateName": f"{name_of(owner)}-",
                                "ownerReferences": [controller_ref(owner, api_version=api_version, kind=kind)]}
    for f in ("labels", "annotations", "finalizers"):
        if tmeta.get(f):
            pod_meta[f] = copy.deepcopy(tmeta[f])
    namespace = meta(owner).get("namespace")
    if namespace:
        pod_meta["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


@dataclass
class Claim:
    """What ``claim`` decided: ``owned`` (already ours and matching, plus ``adopt``), orphans to
    ``adopt``, and owned objects that stopped matching to ``release``."""

    owned: list[Obj] = field(default_factory=list)
    adopt: list[Obj] = field(default_factory=list)
    release: list[Obj] = field(default_factory=list)


def claim(owner: Obj, objs: Sequence[Obj], matches: Callable[[Obj], bool]) -> Claim:
    """``ControllerRefManager.ClaimObject`` over ``objs`` (pure).

    - ours (controller ref uid == owner uid): kept if it matches, else released (unless the
      owner is being deleted: then left alone);
    - another controller's: ignored;
    - an orphan: adopted if it matches, is not being deleted and the owner is not being deleted.
    """
    out = Claim()
    owner_uid = uid_of(owner)
    owner_deleting = is_deleting(owner)
    for obj in objs:
        ref = get_controller_of(obj)
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches(obj):
                out.owned.append(obj)
            elif not owner_deleting:
                out.release.append(obj)
            continue
        if owner_deleting or is_deleting(obj) or not matches(obj):
            continue
        out.adopt.append(obj)
        out.owned.append(obj)
    return out
