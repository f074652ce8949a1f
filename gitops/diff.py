"""Unified diffs of objects as YAML, the same text for ``mkctl gitops diff`` and ``status.nextSync``.

Data flow: a live object and what the next sync would make of it (either may be missing) ->
``strip_server_fields`` (what the API server sets, never Git: ``status``, uid, resourceVersion,
managedFields...; kubectl diff hides the same) -> ``mask_secrets`` (a Secret's values become
``***``, or ``*** (before)`` / ``*** (after)`` where they differ, as kubectl diff shows them: a
diff lands in the GitSync's status, which more people may read than the Secret) -> YAML with
sorted keys -> ``difflib`` ->
``--- live/<kind>/<ns>/<name>`` against ``+++ <revision>/<kind>/<ns>/<name>``, a missing side
being ``/dev/null``. Pure.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any, Callable, Mapping

import yaml

from .plan import ObjKey

# Fields the API server sets, never Git: left out of diffs (kubectl diff hides the same).
SERVER_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")


def strip_server_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy without what the API server sets (and ``status``): what a diff should show."""
    out = copy.deepcopy(dict(obj))
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for name in SERVER_METADATA:
            meta.pop(name, None)
    return out


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def mask_secrets(before: dict[str, Any] | None, after: dict[str, Any] | None) -> tuple[
        dict[str, Any] | None, dict[str, Any] | None]:
    """Both sides with a core Secret's ``data`` and ``stringData`` values hidden (kubectl diff's
    masking: equal values ``***``, changed ones ``*** (before)`` and ``*** (after)``), and its
    last-applied annotation (a copy of the values) left out. Other kinds are returned as they are."""
    def is_secret(obj: dict[str, Any] | None) -> bool:
        return obj is not None and obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"

    if not is_secret(before) and not is_secret(after):
        return before, after
    for obj in (before, after):
        annotations = ((obj or {}).get("metadata") or {}).get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    for field in ("data", "stringData"):
        a = (before or {}).get(field)
        b = (after or {}).get(field)
        a = a if isinstance(a, dict) else None
        b = b if isinstance(b, dict) else None
        for key in set(a or {}) | set(b or {}):
            same = a is not None and b is not None and key in a and key in b and a[key] == b[key]
            if a is not None and key in a:
                a[key] = "***" if same else "*** (before)"
            if b is not None and key in b:
                b[key] = "***" if same else "*** (after)"
    return before, after


def object_path(key: ObjKey) -> str:
    kind = f"{key.kind}.{key.group}" if key.group else key.kind
    return f"{kind}/{key.namespace}/{key.name}" if key.namespace else f"{kind}/{key.name}"


def plain_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 20)


def unified(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, key: ObjKey, revision: str,
            dump: Callable[[Any], str] = plain_yaml) -> str:
    """``diff -u`` of two objects as YAML; a missing side is /dev/null."""
    left, right = mask_secrets(strip_server_fields(before) if before is not None else None,
                               strip_server_fields(after) if after is not None else None)
    a = dump(left).splitlines(keepends=True) if left is not None else []
    b = dump(right).splitlines(keepends=True) if right is not None else []
    path = object_path(key)
    lines = difflib.unified_diff(a, b, fromfile=f"live/{path}" if before is not None else "/dev/null",
                                 tofile=f"{revision}/{path}" if after is not None else "/dev/null", n=3)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
