"""managedFields on every write, and server-side apply: the API server's side of ``machinery.managedfields``.

After k8s.io/apiserver's fieldmanager wiring: the registry hands every write to ``FieldManager``

- ``record_update(res, live, new, writer=...)``: a create, update or non-apply patch by manager
  ``writer.manager`` (the ``fieldManager`` parameter, else the client's user agent up to its first
  '/', as Kubernetes derives it) becomes an ``Update`` entry of ``metadata.managedFields``;
- ``apply(res, live, config, writer=..., force=...)``: ``application/apply-patch+yaml``: the
  applied configuration is merged into the live object (or creates it), fields the manager applied
  before and no longer applies are removed unless another manager owns them, and changing a
  field another manager owns is a 409 naming the fields and managers unless ``force``;
- ``unchanged(new, old)``: a write that changes nothing but managedFields timestamps is a no-op
  (Kubernetes' IgnoreManagedFieldsTimestampsTransformer), so it keeps the old resourceVersion.

The kind's list semantics come from its OpenAPI schema (``x-kubernetes-list-type`` and friends,
which the strategies publish); the fields an endpoint does not own (``status`` for the main
resource, everything but ``status`` for ``/status``) are the endpoint's reset fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from machinery import errors
from machinery.errors import StatusCause
from machinery.fieldpath import FieldSet, make_path
from machinery.managedfields import apply as ssa_apply
from machinery.managedfields import decode_managed_fields, manager_from_user_agent, set_managed_fields, update
from machinery.managedfields_codec import FIELD_MANAGER_MAX_LENGTH, ManagedFieldsError

if TYPE_CHECKING:
    from .kinds.base import Strategy
    from .openapi import OpenAPI

Obj = dict[str, Any]
_STATUS = FieldSet.from_paths([make_path("status")])
_NOTHING = FieldSet()


@dataclass(frozen=True)
class Writer:
    """Who writes: the field manager name (already checked) and, for apply, whether to force."""

    manager: str
    force: bool = False


def writer_for(field_manager: str | None, user_agent: str | None, *, applying: bool = False,
               force: str | None = None) -> Writer:
    """The write's manager from ``?fieldManager=`` or the user agent; 400s as Kubernetes answers them."""
    causes: list[StatusCause] = []
    manager = field_manager if field_manager is not None else ""
    if field_manager is not None:
        if len(field_manager.encode()) > FIELD_MANAGER_MAX_LENGTH:
            causes.append(StatusCause("FieldValueTooLong", f"Too long: may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes",
                                      "fieldManager"))
        if any(not ch.isprintable() for ch in field_manager):
            causes.append(StatusCause("FieldValueInvalid", f"Invalid value: {field_manager!r}: must only contain printable "
                                      "characters", "fieldManager"))
    if applying and not manager:
        causes.append(StatusCause("FieldValueRequired", "Required value: is required for apply patch", "fieldManager"))
    forced = (force or "").lower() in ("true", "1")
    if force not in (None, "") and not applying and forced:
        causes.append(StatusCause("FieldValueForbidden", "Forbidden: may not be specified for non-apply patch", "force"))
    if causes:
        kind = "PatchOptions" if applying or force is not None else "UpdateOptions"
        raise errors.invalid(kind, "", causes, group="meta.k8s.io")
    return Writer(manager or manager_from_user_agent(user_agent), force=forced)


class FieldManager:
    def __init__(self, openapi: "OpenAPI") -> None:
        self.openapi = openapi

    def reset_fields(self, res: "Strategy", subresource: str | None, obj: Mapping[str, Any]) -> FieldSet:
        """What this endpoint never owns: status on the main resource, all but status on /status."""
        if subresource == "status":
            return FieldSet.from_paths([make_path(k) for k in obj if k not in ("status", "apiVersion", "kind")])
        return _STATUS if res.has_status else _NOTHING

    def record_update(self, res: "Strategy", live: Obj | None, new: Obj, *, writer: Writer,
                      subresource: str | None = None) -> Obj:
        """``new`` with the managedFields after ``writer``'s create (``live`` None) or update."""
        managers = update(live, new, None, manager=writer.manager, api_version=res.api_version,
                          subresource=subresource or "", schema=self.openapi.schema_for(res),
                          ignored=self.reset_fields(res, subresource, new))
        return set_managed_fields(new, managers)

    def apply(self, res: "Strategy", live: Obj | None, config: Any, *, writer: Writer,
              subresource: str | None = None) -> Obj:
        """The object after ``writer`` applies ``config`` (an ApplyConflictError 409 unless forced)."""
        if not isinstance(config, dict):
            raise errors.BadRequestError(message="the applied configuration must be an object")
        obj, managers = ssa_apply(live or None, config, None, manager=writer.manager, api_version=res.api_version,
                                  subresource=subresource or "", schema=self.openapi.schema_for(res),
                                  force=writer.force, ignored=self.reset_fields(res, subresource, config),
                                  kind=res.kind)
        return set_managed_fields(obj, managers)

    @staticmethod
    def unchanged(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
        """Equal but for resourceVersion and managedFields timestamps: the write is a no-op."""
        def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
            meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
            return {**obj, "metadata": meta}
        if strip(new) != strip(old):
            return False
        new_mf = (new.get("metadata") or {}).get("managedFields")
        old_mf = (old.get("metadata") or {}).get("managedFields")
        if new_mf == old_mf:
            return True
        try:
            a, b = decode_managed_fields(new_mf), decode_managed_fields(old_mf)
        except ManagedFieldsError:
            return False
        return a.keys() == b.keys() and all(a[k].fields == b[k].fields for k in a)
