"""``kubectl apply``'s client-side three-way strategic merge patch, as pure functions.

Data flow: ``original`` (the ``last-applied-configuration`` annotation of the live object),
``modified`` (the manifest, carrying its own new last-applied annotation) and ``current`` (the
live object) -> ``three_way_patch`` = deletions (fields in ``original`` that ``modified`` no
longer has: ``null``, ``$patch: delete`` list elements, ``$deleteFromPrimitiveList``) merged
with the delta from ``current`` to ``modified`` that ignores deletions (so fields set by others
stay). Lists are merged by key where the Kubernetes type says so (containers by ``name``,
ports by ``containerPort``, ...): the facts come from the kind's schema in the server's
``/openapi/v3`` (``x-kubernetes-patch-merge-key``/``-strategy``, read through
``machinery.schemaview``), the schema the server applies the patch with. After
k8s.io/apimachinery/pkg/util/strategicpatch ``CreateThreeWayMergePatch`` (without
``$setElementOrder`` directives, which the server does not need to merge correctly).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

from machinery.schemaview import Schema

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

Path = tuple[str, ...]


def _strategy(schema: Schema, path: Path) -> str | None:
    return schema.at(path).patch_strategy if path else None


def _merge_key(schema: Schema, path: Path) -> str | None:
    field = schema.at(path)
    return field.patch_merge_key if field.merges_list else None


def last_applied_value(obj: Mapping[str, Any]) -> str:
    """The annotation value kubectl writes: the manifest as compact JSON (sorted keys) + newline."""
    clean = json.loads(json.dumps(obj))
    annotations = (clean.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            clean["metadata"].pop("annotations")
    return json.dumps(clean, sort_keys=True, separators=(",", ":")) + "\n"


def with_last_applied(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the manifest that carries its own last-applied annotation."""
    value = last_applied_value(obj)
    out = json.loads(json.dumps(obj))
    meta = out.setdefault("metadata", {})
    annotations = meta.get("annotations") or {}
    meta["annotations"] = {**annotations, LAST_APPLIED: value}
    return out


def original_of(live: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not raw:
        return None
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def three_way_patch(original: Mapping[str, Any] | None, modified: Mapping[str, Any],
                    current: Mapping[str, Any], *, schema: Schema) -> dict[str, Any]:
    """The strategic merge patch that takes ``current`` to ``modified``; ``{}`` when nothing changes."""
    delta = _diff_maps(current, modified, schema=schema, path=(), deletions=False)
    removed = _diff_maps(original or {}, modified, schema=schema, path=(), deletions=True)
    return _merge(removed, delta, schema=schema, path=())


# ---------------------------------------------------------------------------------- diff
def _diff_maps(old: Mapping[str, Any], new: Mapping[str, Any], *, schema: Schema, path: Path,
               deletions: bool) -> dict[str, Any]:
    """``deletions=False``: additions and changes only; ``True``: deletions only."""
    patch: dict[str, Any] = {}
    if deletions:
        for key in old:
            if key not in new:
                patch[key] = None
    for key, new_value in new.items():
        sub = (*path, key)
        if key not in old:
            if not deletions:
                patch[key] = new_value
            continue
        old_value = old[key]
        if isinstance(old_value, dict) and isinstance(new_value, dict):
            inner = _diff_maps(old_value, new_value, schema=schema, path=sub, deletions=deletions)
            if inner:
                patch[key] = inner
        elif isinstance(old_value, list) and isinstance(new_value, list):
            _diff_list(patch, key, old_value, new_value, schema=schema, path=sub, deletions=deletions)
        elif not deletions and (type(old_value) is not type(new_value) or old_value != new_value):
            patch[key] = new_value
    strategy = _strategy(schema, path)
    if patch and strategy and "retainKeys" in strategy.split(","):
        patch["$retainKeys"] = sorted(k for k in new if not k.startswith("$"))
    return patch


def _diff_list(patch: dict[str, Any], key: str, old: list[Any], new: list[Any], *, schema: Schema, path: Path,
               deletions: bool) -> None:
    strategy = _strategy(schema, path) or ""
    merges = "merge" in strategy.split(",")
    merge_key = _merge_key(schema, path)
    if not merges:
        if not deletions and old != new:
            patch[key] = new
        return
    if merge_key is None:  # a set of scalars (finalizers)
        if deletions:
            gone = [v for v in old if v not in new]
            if gone:
                patch[f"$deleteFromPrimitiveList/{key}"] = gone
        else:
            added = [v for v in new if v not in old]
            if added:
                patch[key] = added
        return
    old_by_key = {item.get(merge_key): item for item in old if isinstance(item, dict)}
    new_keys = {item.get(merge_key) for item in new if isinstance(item, dict)}
    out: list[Any] = []
    if deletions:
        for k in old_by_key:
            if k not in new_keys:
                out.append({merge_key: k, "$patch": "delete"})
    for item in new:
        if not isinstance(item, dict):
            continue
        k = item.get(merge_key)
        if k not in old_by_key:
            if not deletions:
                out.append(item)
            continue
        inner = _diff_maps(old_by_key[k], item, schema=schema, path=path, deletions=deletions)
        if inner:
            out.append({merge_key: k, **inner})
    if out:
        patch[key] = out


# ---------------------------------------------------------------------------------- merge
def _merge(left: dict[str, Any], right: dict[str, Any], *, schema: Schema, path: Path) -> dict[str, Any]:
    """Combine the deletions patch with the delta patch (delta wins on the same scalar)."""
    out = dict(left)
    for key, value in right.items():
        if key not in out:
            out[key] = value
            continue
        mine = out[key]
        if isinstance(mine, dict) and isinstance(value, dict):
            out[key] = _merge(mine, value, schema=schema, path=(*path, key))
        elif isinstance(mine, list) and isinstance(value, list) and _merge_key(schema, (*path, key)):
            merge_key = _merge_key(schema, (*path, key))
            assert merge_key is not None
            merged = list(mine)
            for item in value:
                at = next((i for i, m in enumerate(merged) if isinstance(m, dict) and isinstance(item, dict)
                           and m.get(merge_key) == item.get(merge_key)), None)
                if at is None:
                    merged.append(item)
                else:
                    merged[at] = _merge(merged[at], item, schema=schema, path=(*path, key))
            out[key] = merged
        elif key == "$retainKeys" and isinstance(mine, list) and isinstance(value, list):
            out[key] = sorted(set(mine) | set(value))
        else:
            out[key] = value
    return out


__all__ = ["LAST_APPLIED", "last_applied_value", "original_of", "three_way_patch", "with_last_applied"]
