"""Server-side apply and managedFields, after k8s.io/apimachinery/pkg/util/managedfields.

Role: every write of the API server records who owns which fields in ``metadata.managedFields``,
and ``PATCH`` with ``application/apply-patch+yaml`` merges an applied configuration with conflict
detection. This module is the pure engine; the API server decodes nothing itself:

    managers = update(live, new, None, manager=fm, api_version="apps/v1", schema=s, ignored=reset)
    new = set_managed_fields(new, managers)                       # create / update / patch
    obj, managers = apply(live, body, None, manager=fm, api_version="apps/v1", schema=s,
                          force=force, ignored=reset, kind="Deployment")
    obj = set_managed_fields(obj, managers)                       # server-side apply

It mirrors Kubernetes' chain of field managers, outermost first: version check, the
last-applied annotation updater and manager (client-side -> server-side apply upgrade for
``kubectl``), "before-first-apply" (objects without managedFields), the cap of ten update managers
("ancient-changes"), the manager identifier, timestamps, metadata stripping, then SMD's Updater
(``Update``: the writer gains what it added or modified, others lose it; ``Apply``: merge,
conflicts, pruning). Field sets are ``machinery.fieldpath.FieldSet``; the typed walks live in
``machinery.ssa_merge``. Pure: the clock comes in as ``now``.

``ignored`` is the endpoint's reset fields (``status`` for a main resource, ``spec`` & co. for
``/status``): nobody gains or loses them through this endpoint, and they are removed with
everything below them. The stripped metadata (``STRIPPED_FIELDS``: apiVersion, kind,
metadata.name, ...) is handled here, as Kubernetes' stripMeta does: a plain difference on the
writer's own set. Do not put ``metadata`` in ``ignored``: labels and annotations would go with it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from machinery.errors import BadRequestError, InternalError
from machinery.fieldpath import FieldSet, Path, make_path
from machinery.gofmt import go_json
from machinery.managedfields_codec import (
    APPLY,
    UPDATE,
    ApplyConflictError,
    Conflict,
    ManagedFieldsEntry,
    ManagedFieldsError,
    Managers,
    _decode_or_empty,
    _metadata,
    _unix_seconds,
    conflict_message,
    decode_managed_fields,
    encode_managed_fields,
    manager_from_user_agent,
    manager_identifier,
    managers_for_update,
    print_manager,
    set_managed_fields,
)
from machinery.ssa_merge import Comparison, compare, ensure_named_fields_are_members, merge, remove_items
from machinery.ssa_typed import FieldValueError, SchemaLike, _type_of, to_field_set, validate, zero_object

__all__ = [
    "APPLY", "UPDATE", "LAST_APPLIED_ANNOTATION", "STRIPPED_FIELDS", "ApplyConflictError", "Comparison",
    "Conflict", "FieldValueError", "ManagedFieldsEntry", "ManagedFieldsError", "Managers", "apply", "compare",
    "conflict_message", "decode_managed_fields", "encode_managed_fields", "ensure_named_fields_are_members",
    "manager_from_user_agent", "manager_identifier", "managers_for_update", "managers_from_scale",
    "managers_to_scale", "merge", "print_manager", "remove_items", "set_managed_fields", "to_field_set",
    "update", "validate", "zero_object",
]

LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
DEFAULT_MAX_UPDATE_MANAGERS = 10
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
ANCIENT_CHANGES = "ancient-changes"
BEFORE_FIRST_APPLY = "before-first-apply"
_CURRENT_OPERATION = "current-operation"  # not JSON, so no real manager identifier can collide

# stripMeta: never part of anyone's set (a plain difference: metadata.labels stays owned).
STRIPPED_FIELDS = FieldSet.from_paths([
    make_path("apiVersion"), make_path("kind"), make_path("metadata"),
    *(make_path("metadata", f) for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                         "clusterName", "generation", "managedFields", "resourceVersion")),
])

# The scale subresource's replicas, and its API version (ScaleHandler).
SCALE_REPLICAS_PATH = make_path("spec", "replicas")
SCALE_GROUP_VERSION = "autoscaling/v1"


def _strip_managed_fields(obj: Any) -> dict[str, Any]:
    if not isinstance(obj, dict):
        return {}
    meta = obj.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        out = dict(obj)
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
        return out
    return obj


def _format_time(now: datetime | str | None) -> str:
    if isinstance(now, str):
        return now
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Conflicts(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts


def _conflicts_from_sets(sets: Mapping[str, FieldSet]) -> list[Conflict]:
    # Go ranges over a map here; sorting the managers makes the order of causes deterministic.
    return [Conflict(manager, path) for manager in sorted(sets) for path in sets[manager]]


# --------------------------------------------------------------------------- SMD's Updater


def _smd_update(old: Any, new: Any, managers: Managers, workflow: str, force: bool, t: Any,
                ignored: FieldSet | None) -> tuple[Managers, Comparison]:
    """``Updater.update``: other managers lose what this write modified or added (conflicts,
    unless forced) and what it removed."""
    cmp = compare(old, new, t).exclude(ignored)
    changed = cmp.modified.union(cmp.added)
    conflicts: dict[str, FieldSet] = {}
    if not changed.empty():
        for ident, entry in managers.items():
            if ident != workflow:
                common = entry.fields.intersection(changed)
                if not common.empty():
                    conflicts[ident] = common
    if conflicts and not force:
        raise _Conflicts(_conflicts_from_sets(conflicts))
    out: Managers = {}
    for ident, entry in managers.items():
        fields = entry.fields
        if ident != workflow:
            if ident in conflicts:
                fields = fields.difference(conflicts[ident])
            fields = fields.difference(cmp.removed)
        if not fields.empty():
            out[ident] = entry.with_fields(fields)
    return out, cmp


def _strip_meta(managers: Managers, ident: str) -> None:
    entry = managers.get(ident)
    if entry is not None:
        fields = entry.fields.difference(STRIPPED_FIELDS)
        if fields.empty():
            del managers[ident]
        else:
            managers[ident] = entry.with_fields(fields)


def _update_chain(live: Any, new: Any, managers: Managers, *, manager: str, api_version: str, subresource: str,
                  t: Any, ignored: FieldSet | None, now: str) -> Managers:
    """BuildManagerInfo -> ManagedFieldsUpdater -> StripMeta -> Updater.Update, then the cap."""
    ident = manager_identifier(manager or "unknown", UPDATE, api_version, subresource)
    mgrs, cmp = _smd_update(live, new, managers, _CURRENT_OPERATION, True, t, ignored)
    # The write's own fields, under a placeholder name so the writer's old entry is "another
    # manager" above (it loses what changed, then gets it back below).
    gained = cmp.modified.union(cmp.added)
    if ignored is not None:
        gained = gained.recursive_difference(ignored)
    gained = gained.difference(STRIPPED_FIELDS)
    if not gained.empty():
        previous = mgrs.get(ident)  # same manager, operation, version and subresource
        fields = gained if previous is None else previous.fields.union(gained)
        original = managers.get(ident)
        if original is not None and original.fields == fields:
            mgrs[ident] = original.with_time(now)  # keeps its encoded fieldsV1 (a status heartbeat)
        elif previous is not None:
            mgrs[ident] = previous.with_fields(fields).with_time(now)
        else:
            mgrs[ident] = ManagedFieldsEntry(manager=manager or "unknown", operation=UPDATE,
                                             api_version=api_version, fields=fields, time=now, subresource=subresource)
    return _cap_update_managers(mgrs, DEFAULT_MAX_UPDATE_MANAGERS)


def _cap_update_managers(managers: Managers, limit: int) -> Managers:
    """``capUpdateManagers``: merge the oldest update entries into "ancient-changes" per version."""
    updaters = [ident for ident, e in managers.items() if not e.applied]
    if len(updaters) <= limit:
        return managers
    out = dict(managers)
    updaters.sort(key=lambda ident: (_unix_seconds(out[ident].time), ident))
    first_of_version: dict[str, str] = {}
    length = len(updaters)
    for ident in updaters:
        if length <= limit:
            break
        entry = out[ident]
        version = entry.api_version
        bucket = manager_identifier(ANCIENT_CHANGES, UPDATE, version)
        if version not in first_of_version:
            first_of_version[version] = ident
            continue
        if bucket not in out:
            first = out.pop(first_of_version[version])
            out[bucket] = ManagedFieldsEntry(manager=ANCIENT_CHANGES, operation=UPDATE, api_version=version,
                                             fields=first.fields, time=first.time)
        out[bucket] = ManagedFieldsEntry(manager=ANCIENT_CHANGES, operation=UPDATE, api_version=entry.api_version,
                                         fields=entry.fields.union(out[bucket].fields), time=entry.time)
        out.pop(ident, None)
        length -= 1
    return out


def update(live: Any, new: Any, managers: Mapping[str, ManagedFieldsEntry] | None = None, *, manager: str,
           api_version: str, subresource: str = "", schema: SchemaLike = None, now: datetime | str | None = None,
           ignored: FieldSet | None = None) -> Managers:
    """The managers after a create, update or non-apply patch (``FieldManager.UpdateNoErrors``).

    ``live`` is the stored object (None on create: it is compared with the kind's zero value),
    ``new`` the object about to be stored. ``managers`` defaults to ``managers_for_update``. The
    writer (``manager``, an Update at ``api_version``) gains every field it added or changed and
    every other manager loses those; removed fields leave everyone. An object already stored
    without managedFields stays untracked. An object SMD cannot type keeps the live managers.
    """
    if managers is None:
        managers = managers_for_update(live, new, subresource=subresource)
    t = _type_of(schema)
    live_obj = _strip_managed_fields(live) if live else zero_object(t)
    if not managers and _metadata(live_obj).get("uid"):
        return {}  # skipNonApplied: updates of untracked objects are not tracked
    try:
        return _update_chain(live_obj, _strip_managed_fields(new), dict(managers), manager=manager,
                             api_version=api_version, subresource=subresource, t=t, ignored=ignored,
                             now=_format_time(now))
    except FieldValueError:
        return _decode_or_empty(_metadata(live).get("managedFields"))


# --------------------------------------------------------------------------- apply


def _prune(merged: Any, managers: Managers, last: FieldSet | None, t: Any) -> Any:
    """``Updater.prune``: drop what the applier applied last time and no longer applies, unless
    another manager (or the new configuration) owns it."""
    if last is None or last.empty():
        return merged
    last_named = ensure_named_fields_are_members(last, t)
    pruned = remove_items(merged, last_named, t)
    # addBackOwnedItems: everything anyone owns comes back.
    managed = FieldSet()
    for entry in managers.values():
        managed = managed.union(entry.fields)
    merged_named = ensure_named_fields_are_members(to_field_set(merged, t), t)
    pruned_named = ensure_named_fields_are_members(to_field_set(pruned, t), t)
    pruned = remove_items(merged, merged_named.difference(
        pruned_named.union(ensure_named_fields_are_members(managed, t))), t)
    # addBackDanglingItems: only what the applier owned last time may go.
    pruned_named = ensure_named_fields_are_members(to_field_set(pruned, t), t)
    return remove_items(merged, merged_named.difference(pruned_named).intersection(last_named), t)


def _updater_apply(live: Any, config: Any, managers: Managers, *, manager: str, ident: str, api_version: str,
                   subresource: str, force: bool, t: Any, ignored: FieldSet | None) -> tuple[Any, Managers]:
    """``Updater.Apply``; the object is None when the apply changes nothing."""
    new_obj = merge(live, config, t)
    last = managers.get(ident)
    fields = to_field_set(config, t)
    if ignored is not None:
        fields = fields.recursive_difference(ignored)
    mgrs = dict(managers)
    mgrs[ident] = ManagedFieldsEntry(manager=manager, operation=APPLY, api_version=api_version, fields=fields,
                                     time=last.time if last is not None else None, subresource=subresource)
    new_obj = _prune(new_obj, mgrs, last.fields if last is not None else None, t)
    mgrs, _ = _smd_update(live, new_obj, mgrs, ident, force, t, ignored)
    if new_obj == live:
        return None, mgrs
    return new_obj, mgrs


def _apply_chain(live: Any, config: Any, managers: Managers, *, manager: str, api_version: str, subresource: str,
                 force: bool, t: Any, ignored: FieldSet | None, now: str) -> tuple[Any, Managers]:
    """skipNonApplied -> BuildManagerInfo -> ManagedFieldsUpdater -> StripMeta -> Updater.Apply."""
    if not managers:
        managers = _update_chain(zero_object(t), live, {}, manager=BEFORE_FIRST_APPLY, api_version=api_version,
                                 subresource=subresource, t=t, ignored=ignored, now=now)
    name = manager or "unknown"
    ident = manager_identifier(name, APPLY, "", subresource)
    new_obj, mgrs = _updater_apply(live, config, managers, manager=name, ident=ident, api_version=api_version,
                                   subresource=subresource, force=force, t=t, ignored=ignored)
    _strip_meta(mgrs, ident)
    entry, previous = mgrs.get(ident), managers.get(ident)
    if (entry is not None and previous is not None and previous.api_version == entry.api_version
            and previous.fields == entry.fields):
        entry = mgrs[ident] = previous  # the same set as last time: keep its encoded fieldsV1
    if new_obj is None:
        return live, mgrs
    if entry is not None:
        mgrs[ident] = entry.with_time(now)
    return new_obj, mgrs


def _allowed_from_last_applied(live: Any, api_version: str, t: Any) -> FieldSet | None:
    """``allowedConflictsFromLastApplied``: the fields of the last-applied annotation that still
    hold the live values; None when there is no usable annotation."""
    annotations = _metadata(live).get("annotations")
    text = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, Mapping) else None
    if not isinstance(text, str) or not text:
        return None
    try:
        last = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last, dict) or not last.get("kind") or last.get("apiVersion") != api_version:
        return None
    try:
        if validate(last, t):
            return None
        fields = to_field_set(last, t)
        cmp = compare(last, live, t)
    except FieldValueError:
        return None
    return fields.difference(cmp.modified).difference(cmp.added).difference(cmp.removed)


def _with_last_applied(live: Any, config: Any, managers: Managers, *, manager: str, force: bool,
                       api_version: str, t: Any, **kwargs: Any) -> tuple[Any, Managers]:
    """``lastAppliedManager``: ``kubectl`` taking over from client-side apply is forced when its
    only conflicts are fields that still hold the values of the last-applied annotation."""
    try:
        return _apply_chain(live, config, managers, manager=manager, force=force, api_version=api_version, t=t,
                            **kwargs)
    except _Conflicts as err:
        if manager != "kubectl":
            raise
        allowed = _allowed_from_last_applied(live, api_version, t)
        if allowed is None:
            raise
        remaining = [c for c in err.conflicts if not allowed.has(c.path)]
        if remaining:
            raise _Conflicts(remaining) from None
    return _apply_chain(live, config, managers, manager=manager, force=True, api_version=api_version, t=t, **kwargs)


def _build_last_applied(config: Mapping[str, Any]) -> str:
    obj = dict(config)
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        annotations = meta.get("annotations")
        if isinstance(annotations, Mapping) and LAST_APPLIED_ANNOTATION in annotations:
            obj["metadata"] = {**meta, "annotations": {k: v for k, v in annotations.items()
                                                       if k != LAST_APPLIED_ANNOTATION}}
    return go_json(obj) + "\n"  # json.Encoder: sorted keys, HTML escaped, a newline


def _set_last_applied(obj: Mapping[str, Any], value: str) -> dict[str, Any]:
    out = dict(obj)
    meta = dict(_metadata(obj))
    annotations = dict(meta.get("annotations") or {})
    annotations[LAST_APPLIED_ANNOTATION] = value
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        del annotations[LAST_APPLIED_ANNOTATION]
    meta["annotations"] = annotations
    out["metadata"] = meta
    return out


def _gvk_string(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion") or "")
    group, _, version = api_version.rpartition("/")
    return f"{group}/{version}, Kind={obj.get('kind') or ''}"


def _object_gvknn(obj: Any) -> str:
    meta = _metadata(obj)
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; {_gvk_string(obj if isinstance(obj, Mapping) else {})}"


def apply(live: Any, config: Mapping[str, Any], managers: Mapping[str, ManagedFieldsEntry] | None = None, *,
          manager: str, api_version: str, subresource: str = "", schema: SchemaLike = None, force: bool = False,
          now: datetime | str | None = None, ignored: FieldSet | None = None,
          kind: str | None = None) -> tuple[dict[str, Any], Managers]:
    """Server-side apply of ``config`` by ``manager`` (``FieldManager.Apply``).

    ``live`` is the stored object, None or {} to create; ``managers`` defaults to the live
    object's. Returns the new object (without managedFields; see ``set_managed_fields``; the live
    object itself when nothing changes) and the managers. Raises ``ApplyConflictError`` (409)
    unless ``force``; ``BadRequestError`` for a configuration of the wrong version or kind (``kind``
    given) or carrying managedFields; ``InternalError`` for lists SMD cannot type, with
    Kubernetes' messages.
    """
    if not isinstance(config, Mapping):
        raise BadRequestError(message="the applied configuration must be an object")
    if kind is not None and (config.get("apiVersion") != api_version or config.get("kind") != kind):
        raise BadRequestError(message=f"invalid object type: {_gvk_string(config)}")
    if _metadata(config).get("managedFields") is not None:
        raise BadRequestError(message="metadata.managedFields must be nil")
    patch_version = str(config.get("apiVersion") or "")
    if patch_version != api_version:
        raise BadRequestError(message=f"Incorrect version specified in apply patch. Specified patch version: "
                                      f"{patch_version}, expected: {api_version}")
    t = _type_of(schema)
    if managers is None:
        try:
            managers = decode_managed_fields(_metadata(live).get("managedFields"))
        except ManagedFieldsError as err:
            raise InternalError(message=f"failed to decode managed fields: {err}") from None
    problems = validate(config, t)
    if problems:
        raise InternalError(message=f"failed to create typed patch object ({_object_gvknn(config)}): "
                                    f"{FieldValueError(problems)}")
    live_obj = _strip_managed_fields(live) if live else {}
    try:
        new_obj, mgrs = _with_last_applied(
            live_obj, dict(config), dict(managers), manager=manager, force=force, api_version=api_version, t=t,
            subresource=subresource, ignored=ignored, now=_format_time(now))
    except _Conflicts as err:
        raise ApplyConflictError(err.conflicts) from None
    except FieldValueError as err:
        raise InternalError(message=f"failed to create typed live object ({_object_gvknn(live_obj)}): {err}") from None
    # lastAppliedUpdater: kubectl keeps the client-side annotation in step, if there is one.
    if manager == "kubectl":
        annotations = _metadata(new_obj).get("annotations")
        current = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, Mapping) else None
        if isinstance(current, str) and current:
            new_obj = _set_last_applied(new_obj, _build_last_applied(config))
    return new_obj, mgrs


# --------------------------------------------------------------------------- the scale subresource


def managers_to_scale(parent: Mapping[str, ManagedFieldsEntry],
                      replicas_paths: Mapping[str, Path | None]) -> Managers:
    """``ScaleHandler.ToSubresource``: the parent's owners of its replicas field, as owners of a
    Scale's ``.spec.replicas`` (``replicas_paths``: parent apiVersion -> its replicas path)."""
    out: Managers = {}
    scale_fields = FieldSet.from_paths([SCALE_REPLICAS_PATH])
    for ident, entry in parent.items():
        path = replicas_paths.get(entry.api_version)
        if path and entry.fields.has(path):
            moved = replace(entry, api_version=SCALE_GROUP_VERSION, fields=scale_fields, raw_fields=None,
                            source=None)
            out[moved.identifier] = moved  # keyed as it would decode from the encoded entry
    return out


def managers_from_scale(parent: Mapping[str, ManagedFieldsEntry], scale: Mapping[str, ManagedFieldsEntry], *,
                        api_version: str, replicas_paths: Mapping[str, Path | None]) -> Managers:
    """``ScaleHandler.ToParent``: the parent's managers after a write through ``/scale``. Those
    that lost ``.spec.replicas`` there lose the parent's replicas; new scale owners own it (with
    no time, as in Kubernetes); entries of unknown apiVersions are dropped."""
    out: Managers = {}
    remaining = dict(scale)
    for ident, entry in parent.items():
        if entry.api_version not in replicas_paths:
            continue
        path = replicas_paths[entry.api_version]
        if path is None or not entry.fields.has(path):
            out[ident] = entry
        elif ident in remaining:
            out[ident] = entry
            del remaining[ident]
        else:
            fields = entry.fields.difference(FieldSet.from_paths([path]))
            if not fields.empty():
                out[ident] = entry.with_fields(fields)
    own_path = replicas_paths.get(api_version)
    for ident, entry in remaining.items():
        if not own_path or not entry.fields.has(SCALE_REPLICAS_PATH):
            continue
        previous = parent.get(ident)
        moved = replace(entry, api_version=api_version, fields=FieldSet.from_paths([own_path]),
                        time=previous.time if previous is not None else None, raw_fields=None, source=None)
        out[moved.identifier] = moved
    return out

