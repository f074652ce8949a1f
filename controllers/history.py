"""ControllerRevision history shared by the DaemonSet and StatefulSet controllers (and mkctl rollout).

After Kubernetes' pkg/controller/history plus the revision parts of pkg/controller/daemon
(``getPatch``, ``Match``, ``snapshot``) and pkg/controller/statefulset (``newRevision``,
``ApplyRevision``). Objects are plain wire dicts; no function changes its arguments.

Data flow: a controller reads its owner and the ControllerRevisions of its namespace from
informer caches -> ``owned_revisions`` (controller reference uid) -> ``sort_revisions`` ->
compare the owner's ``template_patch`` with each revision (``equal_data`` /
``find_equal_revisions``) -> reuse one (``renumber`` if it is not the newest) or build a new one
(``new_revision`` for StatefulSets, ``daemonset_revision`` for DaemonSets) -> write it through
``RevisionWriter`` (the one I/O part: create with collision probing, update, delete) ->
``revisions_to_truncate`` says which old ones go beyond ``revisionHistoryLimit``.

API (pure unless marked):

- ``POD_REVISION_LABEL`` ("controller-revision-hash"): the label on pods (and DaemonSet
  revisions) naming the revision they were made from; ``REVISION_HASH_LABEL``
  ("controller.kubernetes.io/hash"): the hash label ``history.NewControllerRevision`` puts on a
  revision; ``CONTROLLER_REVISIONS``: the ``(apiVersion, plural)`` the client takes.
- ``fnv32(data)``: Go's ``fnv.New32`` (FNV-1, not 1a); ``go_json(value)``: bytes as Go's
  ``json.Marshal`` of a map writes them (sorted keys, compact, ``<>&`` escaped).
- ``template_patch(owner)`` -> ``{"spec": {"template": {..., "$patch": "replace"}}}``: the data of
  a revision (``getPatch``), which is also the strategic merge patch ``kubectl rollout undo``
  sends for DaemonSets and StatefulSets (``undo_patch(revision)`` returns it from a revision).
- ``hash_revision(data, collision_count)``: ``HashControllerRevision`` (FNV-1 over the JSON bytes
  of ``data``, then the decimal collision count, safe-encoded); ``revision_name(prefix, hash)``.
- ``new_revision(owner, data=..., revision=..., collision_count=..., api_version=..., kind=...,
  template_labels=...)``: ``history.NewControllerRevision`` (StatefulSets): labels copied from the
  template plus ``REVISION_HASH_LABEL``; a controller ownerReference; name ``<owner>-<hash>``.
- ``daemonset_revision(ds, revision=..., hash_=...)``: the DaemonSet controller's ``snapshot``
  body: name ``<ds>-<hash>`` where the hash is ``controller.ComputeHash`` of the template (the same
  hash as the pods' ``controller-revision-hash``), labels = template labels + that label, the
  DaemonSet's annotations.
- ``owned_revisions(owner, revisions)``, ``sort_revisions(revisions)`` (by revision, then
  creation time, then name), ``next_revision(revisions)`` (max + 1, 1 when none),
  ``equal_data(a, b)``, ``find_equal_revisions(revisions, needle)``, ``matches_owner(owner, rev)``
  (``Match``: the revision's data is the owner's template patch),
  ``revisions_to_truncate(revisions, live=..., limit=...)`` (the oldest revisions no pod uses,
  beyond the limit), ``renumbered(revision, number)`` (a copy with a new ``revision``),
  ``apply_revision(owner, revision)`` (``ApplyRevision``: the owner with the revision's template).
- I/O: ``RevisionWriter(client)``: ``create(owner, revision, collision_count)`` ->
  (stored revision, collision count used) following ``CreateControllerRevision`` (AlreadyExists
  with other data -> bump the count, rehash, try again; with equal data -> that one),
  ``update_number(revision, number)``, ``delete(revision)``. The client is anything with the
  ``ApiClient`` methods create/get/update/delete (``RevisionClient``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from controllers.deploymentutil import safe_encode
from controllers.ownerrefs import Obj, controller_ref, get_controller_of, meta, name_of, uid_of
from machinery import errors

POD_REVISION_LABEL = "controller-revision-hash"
REVISION_HASH_LABEL = "controller.kubernetes.io/hash"
CONTROLLER_REVISIONS = ("apps/v1", "controllerrevisions")
MAX_PREFIX = 223  # a revision name stays within 253 characters

_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


# ============================================================================ hashing
def fnv32(data: bytes, h: int = 0x811C9DC5) -> int:
    """Go's ``hash/fnv.New32``: FNV-1 (multiply, then xor)."""
    for b in data:
        h = (h * 0x01000193) & 0xFFFFFFFF
        h ^= b
    return h


def go_json(value: Any) -> bytes:
    """``json.Marshal`` of decoded JSON in Go: map keys sorted, no spaces, HTML characters escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in _GO_ESCAPES.items():
        text = text.replace(char, escape)
    return text.encode()


def hash_revision(data: Any, collision_count: int | None = None) -> str:
    """``HashControllerRevision``: FNV-1 over the data's JSON bytes and the decimal collision count."""
    h = fnv32(go_json(data))
    if collision_count is not None:
        h = fnv32(str(collision_count).encode(), h)
    return safe_encode(str(h))


def revision_name(prefix: str, hash_: str) -> str:
    """``ControllerRevisionName``: ``<prefix>-<hash>``, the prefix cut to 223 characters."""
    return f"{prefix[:MAX_PREFIX]}-{hash_}"


# ============================================================================ revision bodies
def template_patch(owner: Mapping[str, Any]) -> Obj:
    """``getPatch``: the patch that puts the owner's pod template back whole."""
    template = copy.deepcopy(dict((owner.get("spec") or {}).get("template") or {}))
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def undo_patch(revision: Mapping[str, Any]) -> Obj:
    """The strategic merge patch ``kubectl rollout undo`` sends for a DaemonSet or StatefulSet:
    the revision's data as stored."""
    return copy.deepcopy(dict(revision.get("data") or {}))


def _template_labels(owner: Mapping[str, Any]) -> dict[str, str]:
    template = (owner.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


def new_revision(owner: Obj, *, data: Obj, revision: int, collision_count: int | None, api_version: str,
                 kind: str, template_labels: Mapping[str, str] | None = None) -> Obj:
    """``NewControllerRevision``: the revision of ``data`` owned by ``owner`` (StatefulSets)."""
    hash_ = hash_revision(data, collision_count)
    labels = dict(template_labels if template_labels is not None else _template_labels(owner))
    labels[REVISION_HASH_LABEL] = hash_
    return {
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": revision_name(name_of(owner), hash_), "namespace": meta(owner).get("namespace"),
                     "labels": labels,
                     "ownerReferences": [controller_ref(owner, api_version=api_version, kind=kind)]},
        "data": copy.deepcopy(data), "revision": revision,
    }


def daemonset_revision(ds: Obj, *, revision: int, hash_: str) -> Obj:
    """The DaemonSet controller's ``snapshot``: named after the template hash the pods carry."""
    labels = _template_labels(ds)
    labels[POD_REVISION_LABEL] = hash_
    body_meta: dict[str, Any] = {
        "name": f"{name_of(ds)}-{hash_}", "namespace": meta(ds).get("namespace"), "labels": labels,
        "ownerReferences": [controller_ref(ds, api_version="apps/v1", kind="DaemonSet")]}
    if meta(ds).get("annotations"):
        body_meta["annotations"] = dict(meta(ds)["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": body_meta,
            "data": template_patch(ds), "revision": revision}


# ============================================================================ reading history
def owned_revisions(owner: Mapping[str, Any], revisions: Iterable[Obj]) -> list[Obj]:
    """The revisions whose controller reference points at ``owner`` (by uid)."""
    uid = uid_of(dict(owner))
    out = []
    for rev in revisions:
        ref = get_controller_of(rev)
        if ref is not None and ref.get("uid") == uid:
            out.append(rev)
    return out


def revision_number(revision: Mapping[str, Any]) -> int:
    value = revision.get("revision")
    return int(value) if isinstance(value, int) else 0


def sort_revisions(revisions: Iterable[Obj]) -> list[Obj]:
    """``SortControllerRevisions``: by revision, then creation time, then name (stable)."""
    return sorted(revisions, key=lambda r: (revision_number(r), str(meta(r).get("creationTimestamp") or ""),
                                            name_of(r)))


def next_revision(revisions: Iterable[Obj]) -> int:
    """``nextRevision``/``maxRevision + 1``: one more than the highest revision, 1 when none."""
    return max((revision_number(r) for r in revisions), default=0) + 1


def _label_hash(revision: Mapping[str, Any]) -> int | None:
    """The hash label read as Go's ``strconv.ParseInt(s, 10, 32)`` does (None when it does not parse:
    a safe-encoded hash with letters, the usual case)."""
    text = str((meta(dict(revision)).get("labels") or {}).get(REVISION_HASH_LABEL, ""))
    if not text.lstrip("+-").isdigit() or not text.isascii():
        return None
    value = int(text)
    return value if -(2**31) <= value < 2**31 else None


def equal_data(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """``EqualRevision``: the same data; hash labels only disagree when both parse as numbers."""
    ha, hb = _label_hash(a), _label_hash(b)
    if ha is not None and hb is not None and ha & 0xFFFFFFFF != hb & 0xFFFFFFFF:
        return False
    return go_json(a.get("data")) == go_json(b.get("data"))


def find_equal_revisions(revisions: Iterable[Obj], needle: Mapping[str, Any]) -> list[Obj]:
    """``FindEqualRevisions``."""
    return [r for r in revisions if equal_data(r, needle)]


def matches_owner(owner: Mapping[str, Any], revision: Mapping[str, Any]) -> bool:
    """The DaemonSet controller's ``Match``: the revision's data is the owner's template patch."""
    return go_json(template_patch(owner)) == go_json(revision.get("data"))


def renumbered(revision: Obj, number: int) -> Obj:
    out = copy.deepcopy(revision)
    out["revision"] = number
    return out


def revisions_to_truncate(revisions: Sequence[Obj], *, live: Iterable[str], limit: int) -> list[Obj]:
    """The oldest revisions not named in ``live`` (those the current/updated state or a pod uses),
    as many as exceed ``limit`` (``truncateHistory`` / ``cleanupHistory``)."""
    keep = set(live)
    candidates = [r for r in sort_revisions(revisions) if name_of(r) not in keep]
    excess = len(candidates) - max(0, limit)
    return candidates[:excess] if excess > 0 else []


def apply_revision(owner: Obj, revision: Mapping[str, Any]) -> Obj:
    """``ApplyRevision``: a copy of the owner with the revision's pod template (its patch applied)."""
    out = copy.deepcopy(owner)
    template = copy.deepcopy(dict(((revision.get("data") or {}).get("spec") or {}).get("template") or {}))
    template.pop("$patch", None)
    out.setdefault("spec", {})["template"] = template
    return out


# ============================================================================ writing (I/O)
class RevisionClient(Protocol):
    """What ``RevisionWriter`` needs of ``machinery.client.ApiClient``."""

    async def create(self, resource: Any, body: Mapping[str, Any], *, namespace: str | None = None) -> Obj: ...

    async def get(self, resource: Any, name: str, *, namespace: str | None = None) -> Obj: ...

    async def update(self, resource: Any, body: Mapping[str, Any], *, namespace: str | None = None) -> Obj: ...

    async def delete(self, resource: Any, name: str, *, namespace: str | None = None) -> Obj: ...


class RevisionWriter:
    """Creates, renumbers and deletes ControllerRevisions through the API (``realHistory``)."""

    def __init__(self, client: RevisionClient) -> None:
        self.client = client

    async def create(self, owner: Obj, revision: Obj, collision_count: int) -> tuple[Obj, int]:
        """``CreateControllerRevision``: name the revision ``<owner>-<hash(data, count)>`` and create
        it; a name taken by other data bumps the count. Returns (the stored revision, the count)."""
        ns = meta(owner).get("namespace")
        while True:
            body = copy.deepcopy(revision)
            body["metadata"]["name"] = revision_name(name_of(owner), hash_revision(revision.get("data"),
                                                                                   collision_count))
            try:
                return await self.client.create(CONTROLLER_REVISIONS, body, namespace=ns), collision_count
            except errors.AlreadyExistsError:
                existing = await self.client.get(CONTROLLER_REVISIONS, body["metadata"]["name"], namespace=ns)
                if go_json(existing.get("data")) == go_json(body.get("data")):
                    return existing, collision_count
                collision_count += 1

    async def update_number(self, revision: Obj, number: int) -> Obj:
        """``UpdateControllerRevision``: give a reused revision the next number (conflicts re-read)."""
        current = revision
        for _ in range(5):
            if revision_number(current) == number:
                return current
            try:
                return await self.client.update(CONTROLLER_REVISIONS, renumbered(current, number),
                                                namespace=meta(current).get("namespace"))
            except errors.ConflictError:
                current = await self.client.get(CONTROLLER_REVISIONS, name_of(current),
                                                namespace=meta(current).get("namespace"))
        raise errors.ConflictError(message=f"could not renumber ControllerRevision {name_of(revision)}")

    async def delete(self, revision: Obj) -> None:
        try:
            await self.client.delete(CONTROLLER_REVISIONS, name_of(revision), namespace=meta(revision).get("namespace"))
        except errors.NotFoundError:
            pass


__all__ = [
    "CONTROLLER_REVISIONS", "POD_REVISION_LABEL", "REVISION_HASH_LABEL", "RevisionClient", "RevisionWriter",
    "apply_revision", "daemonset_revision", "equal_data", "find_equal_revisions", "fnv32", "go_json",
    "hash_revision", "matches_owner", "new_revision", "next_revision", "owned_revisions", "renumbered",
    "revision_name", "revision_number", "revisions_to_truncate", "sort_revisions", "template_patch", "undo_patch",
]
