"""The strategy of a custom resource: one per served version of an established CRD.

After apiextensions-apiserver's customresource registry: every fact comes from the
CustomResourceDefinition object (``from_crd``): names (as accepted), scope, the version's
``openAPIV3Schema``, subresources, ``additionalPrinterColumns`` and ``selectableFields``.

Data flow of a write: body -> ``decode`` prunes unknown fields (reported like a builtin kind's:
``Warning`` or, with ``fieldValidation=Strict``, 400) -> ``defaults`` applies the schema's
defaults -> create/update validation against the schema (``apiserver/crd``; on update only
new errors count, as Kubernetes ratchets) -> stored at the CRD's storage version (conversion
strategy None: only ``apiVersion`` differs between versions). With a ``status`` subresource the
main resource ignores ``status`` and ``/status`` writes only it; ``generation`` moves when anything
but ``metadata`` and ``status`` changes. Strategic merge patch is not offered (415), as in
Kubernetes; JSON merge patch, JSON patch and server-side apply are. While the CRD is being
deleted its objects can still be read, updated and deleted, but not created (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery import errors

from ..crd import StructuralSchema, column_definitions, row_cells
from ..validation.fielderrors import Causes, Obj
from .base import COMMON_FIELDS, Column, CreateContext, ScalePaths, Strategy

_IGNORED_FOR_GENERATION = ("metadata", "status")


def served_versions(crd: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in (crd.get("spec") or {}).get("versions") or [] if isinstance(v, Mapping) and v.get("served")]


def storage_version(crd: Mapping[str, Any]) -> str:
    for version in (crd.get("spec") or {}).get("versions") or []:
        if isinstance(version, Mapping) and version.get("storage"):
            return str(version.get("name"))
    return ""


class CustomResourceStrategy(Strategy):
    strategic_merge = False
    # In the order apiextensions' discovery lists them (kubectl api-resources -o wide shows it).
    verbs = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")

    def __init__(self, crd: Mapping[str, Any], version: Mapping[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
        if not names.get("plural"):
            names = spec.get("names") or {}
        self.crd_name = str((crd.get("metadata") or {}).get("name") or "")
        self.crd_uid = str((crd.get("metadata") or {}).get("uid") or "")
        self.group = str(spec.get("group") or "")
        self.version = str(version.get("name") or "")
        self.kind = str(names.get("kind") or "")
        self.plural = str(names.get("plural") or "")
        self.singular = str(names.get("singular") or self.kind.lower())
        self.list_kind_name = str(names.get("listKind") or f"{self.kind}List")
        self.namespaced = spec.get("scope") != "Cluster"
        self.short_names = tuple(names.get("shortNames") or ())
        self.categories = tuple(names.get("categories") or ())
        subresources = version.get("subresources") or {}
        self.subresources = tuple(name for name in ("status", "scale") if name in subresources)
        self._scale: dict[str, Any] | None = subresources.get("scale") if "scale" in subresources else None
        if self._scale is not None:
            self.scale_paths = ScalePaths(spec_replicas=str(self._scale.get("specReplicasPath") or ".spec.replicas"),
                                          status_replicas=str(self._scale.get("statusReplicasPath") or ".status.replicas"),
                                          label_selector=self._scale.get("labelSelectorPath"))
        self.crd_schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object",
                                                                                    "x-kubernetes-preserve-unknown-fields": True}
        self._schema = StructuralSchema.compile(dict(self.crd_schema))
        self._storage_version = storage_version(crd) or self.version
        self._printer_columns: list[dict[str, Any]] | None = [dict(c) for c in version.get("additionalPrinterColumns") or []] or None
        self.columns = tuple(Column(name=d["name"], type=d["type"], priority=d["priority"], format=d["format"],
                                    description=d["description"])
                             for d in column_definitions(self._printer_columns))
        # The CRD is being deleted: its objects can be read, updated and deleted, not created.
        self.terminating = bool((crd.get("metadata") or {}).get("deletionTimestamp"))
        self.selectable_fields = tuple(str(f.get("jsonPath", "")).lstrip(".")
                                       for f in version.get("selectableFields") or [] if isinstance(f, Mapping))

    @property
    def list_kind(self) -> str:
        return self.list_kind_name

    @property
    def storage_api_version(self) -> str:
        return f"{self.group}/{self._storage_version}"

    @property
    def all_selectable_fields(self) -> tuple[str, ...]:
        """crConverter.ConvertFieldLabel: metadata.name, metadata.namespace only when namespaced, then
        the version's ``selectableFields``."""
        common = COMMON_FIELDS if self.namespaced else ("metadata.name",)
        return common + self.selectable_fields

    # ------------------------------------------------------------------ writes
    def decode(self, body: Obj) -> tuple[Obj, list[str]]:
        return body, self._schema.prune(body)

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        if self.terminating:
            # Kubernetes' forbidCreateAdmission, wrapped around a terminating CRD's create and patch handlers.
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise errors.ForbiddenError(
                message=f'{self.group_resource} "{name}" is forbidden: create not allowed while custom resource '
                        "definition is terminating",
                name=name, group=self.group, kind=self.plural)
        super().prepare_for_create(obj, ctx)

    def defaults(self, obj: Obj) -> None:
        self._schema.default(obj)

    def validate_create(self, obj: Obj) -> Causes:
        return self._schema.validate(obj, scale=self._scale)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return self._schema.validate(new, old=old, scale=self._scale)

    def validate_status_update(self, new: Obj, old: Obj) -> Causes:
        return self._schema.validate_status(new, old=old, scale=self._scale)

    def generation_changed(self, new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
        def content(obj: Mapping[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in obj.items() if k not in _IGNORED_FOR_GENERATION and k not in ("apiVersion", "kind")}
        return content(new) != content(old)

    # ------------------------------------------------------------------ tables
    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return row_cells(self._printer_columns, dict(obj), now=now)


def from_crd(crd: Mapping[str, Any]) -> list[CustomResourceStrategy]:
    """One strategy per served version of the CRD."""
    return [CustomResourceStrategy(crd, version) for version in served_versions(crd)]
