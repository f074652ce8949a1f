"""The CRD strategy's steps around validation: v1 defaulting, status on create/update, warnings.

Role: what the API server does to a CustomResourceDefinition before validating it, as
apiextensions does: ``SetDefaults_CustomResourceDefinition`` (singular = lower-case kind, listKind =
kind + "List", conversion strategy None, webhook service port 443), ``PrepareForCreate`` (a fresh
status whose ``storedVersions`` holds the storage version, generation 1), ``PrepareForUpdate``
(status kept from the stored object, a new storage version appended, generation bumped on a spec
change) and the ``unrecognized format "x"`` warnings.

Data flow: decode -> ``apply_defaults`` -> ``prepare_for_create``/``prepare_for_update`` ->
``validation.validate_crd``/``validate_crd_update``; ``warnings`` go to the response's
``Warning`` headers.
"""

from __future__ import annotations

import copy
from typing import Any

from .formats import effective_format
from .keywords import dict_at, list_at, props_of

Obj = dict[str, Any]


def apply_defaults(crd: Obj) -> None:
    """SetDefaults_CustomResourceDefinition (v1): singular, listKind, conversion None, storedVersions."""
    spec = crd.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    names = spec.setdefault("names", {})
    if isinstance(names, dict):
        kind = names.get("kind")
        if not names.get("singular") and isinstance(kind, str):
            names["singular"] = kind.lower()
        if not names.get("listKind") and isinstance(kind, str) and kind:
            names["listKind"] = kind + "List"
    if spec.get("conversion") is None:
        spec["conversion"] = {"strategy": "None"}
    elif isinstance(spec["conversion"], dict):
        webhook = spec["conversion"].get("webhook")
        service = dict_at(dict_at(webhook, "clientConfig"), "service")
        if service and service.get("port") is None:
            service["port"] = 443


def _add_storage_version(crd: Obj) -> None:
    status = crd.setdefault("status", {})
    stored = status.setdefault("storedVersions", [])
    for version in list_at(crd.get("spec"), "versions"):
        if isinstance(version, dict) and version.get("storage") is True:
            if version.get("name") not in stored:
                stored.append(version.get("name"))
            break


def prepare_for_create(crd: Obj) -> None:
    """The strategy's PrepareForCreate: a fresh status whose storedVersions holds the storage version."""
    crd["status"] = {}
    crd.setdefault("metadata", {})["generation"] = 1
    _add_storage_version(crd)
    if not crd["status"]["storedVersions"]:
        del crd["status"]["storedVersions"]


def prepare_for_update(crd: Obj, old: Obj) -> None:
    """PrepareForUpdate: the status is the old one (plus a new storage version); a spec change bumps generation."""
    crd["status"] = copy.deepcopy(old.get("status") or {})
    meta, old_meta = crd.setdefault("metadata", {}), old.get("metadata") or {}
    if crd.get("spec") != old.get("spec"):
        meta["generation"] = int(old_meta.get("generation") or 0) + 1
    else:
        meta["generation"] = old_meta.get("generation", meta.get("generation"))
    _add_storage_version(crd)


def warnings(crd: Obj, old: Obj | None = None) -> list[str]:
    """WarningsOnCreate/Update: ``unrecognized format "x"`` for each format newly dropped from a schema."""
    def formats(obj: Obj | None) -> list[str]:
        found: list[str] = []
        for version in list_at(dict_at(obj, "spec"), "versions"):
            _collect_formats(dict_at(dict_at(version, "schema"), "openAPIV3Schema"), found)
        return found

    before = set(formats(old)) if old is not None else set()
    return [f'unrecognized format "{f}"' for f in formats(crd) if f not in before]


def _collect_formats(s: Obj, out: list[str]) -> None:
    fmt = s.get("format")
    if isinstance(fmt, str) and fmt:
        types = ("integer", "string") if s.get("x-kubernetes-int-or-string") is True else (
            (s["type"],) if isinstance(s.get("type"), str) and s["type"] else ())
        if not effective_format(types, fmt):
            out.append(fmt)
    for child in list(props_of(s).values()) + [v for k in ("items", "additionalProperties", "not")
                                              if isinstance(v := s.get(k), dict)]:
        _collect_formats(child, out)
    for name in ("allOf", "anyOf", "oneOf"):
        for child in list_at(s, name):
            if isinstance(child, dict):
                _collect_formats(child, out)
