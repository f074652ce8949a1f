"""Unified diffs of objects as YAML, the same text for ``mkctl gitops diff`` and ``status.nextSync``.

Data flow: a live object and what the next sync would make of it (either may be missing) ->
``strip_server_fields`` (what the API server sets, never Git: ``status``, uid, resourceVersion,
managedFields...; kubectl diff hides the same) -> YAML with sorted keys -> ``difflib`` ->
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


def object_path(key: ObjKey) -> str:
    kind = f"{key.kind}.{key.group}" if key.group else key.kind
    return f"{kind}/{key.namespace}/{key.name}" if key.namespace else f"{kind}/{key.name}"


def plain_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 20)


def unified(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, *, key: ObjKey, revision: str,
            dump: Callable[[Any], str] = plain_yaml) -> str:
    """``diff -u`` of two objects as YAML; a missing side is /dev/null."""
    a = dump(strip_server_fields(before)).splitlines(keepends=True) if before is not None else []
    b = dump(strip_server_fields(after)).splitlines(keepends=True) if after is not None else []
    path = object_path(key)
    lines = difflib.unified_diff(a, b, fromfile=f"live/{path}" if before is not None else "/dev/null",
                                 tofile=f"{revision}/{path}" if after is not None else "/dev/null", n=3)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
