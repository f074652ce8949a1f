"""CustomResourceDefinition (apiextensions.k8s.io/v1, cluster-scoped): new kinds, defined by users.

After apiextensions-apiserver's registry: v1 defaults (singular, listKind, conversion None),
``ValidateCustomResourceDefinition`` (names, versions, exactly one storage version, structural
schemas, subresources, printer columns; ``apiserver/crd``), ``status.storedVersions`` kept,
``Warning``s for unrecognized formats. Deleting a CRD first only marks it: the
``customresourcecleanup.apiextensions.k8s.io`` finalizer and a ``Terminating`` condition are added,
the CRD controller (``apiserver/crdcontroller.py``) deletes every custom object of the kind, then
removes the finalizer. What a CRD defines is served by ``apiserver/kinds/customresource.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ...crd import prepare_for_create as crd_prepare_for_create
from ...crd import prepare_for_update as crd_prepare_for_update
from ...crd import apply_defaults, validate_crd, validate_crd_status_update, validate_crd_update
from ...crd import warnings as crd_warnings
from ...validation.fielderrors import Causes, Obj
from ..base import NAME, Column, CreateContext, Strategy, meta, name_of

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def set_condition(crd: Obj, condition_type: str, status: str, reason: str, message: str, *,
                  now: datetime | None = None) -> bool:
    """SetCRDCondition: add or change a condition (the transition time moves with its status); True if changed."""
    conditions = crd.setdefault("status", {}).setdefault("conditions", [])
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for cond in conditions:
        if cond.get("type") == condition_type:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) == (status, reason, message):
                return False
            if cond.get("status") != status:
                cond["lastTransitionTime"] = stamp
            cond.update(status=status, reason=reason, message=message)
            return True
    conditions.append({"type": condition_type, "status": status, "lastTransitionTime": stamp,
                       "reason": reason, "message": message})
    return True


def condition_true(crd: Mapping[str, Any], condition_type: str) -> bool:
    return any(c.get("type") == condition_type and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


class CustomResourceDefinitionStrategy(Strategy):
    group = "apiextensions.k8s.io"
    kind = "CustomResourceDefinition"
    plural = "customresourcedefinitions"
    singular = "customresourcedefinition"
    namespaced = False
    short_names = ("crd", "crds")
    categories = ("api-extensions",)
    subresources = ("status",)
    model = "V1CustomResourceDefinition"
    columns = (NAME, Column("Created At", type="date", description=(
        "CreationTimestamp is a timestamp representing the server time when this object was created.")))

    def defaults(self, obj: Obj) -> None:
        apply_defaults(obj)

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        crd_prepare_for_create(obj)

    def prepare_for_update(self, new: Obj, old: Obj) -> None:
        crd_prepare_for_update(new, old)

    def validate_create(self, obj: Obj) -> Causes:
        return validate_crd(obj)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return validate_crd_update(new, old)

    def validate_status_update(self, new: Obj, old: Obj) -> Causes:
        return validate_crd_status_update(new, old)

    def warnings(self, obj: Obj, old: Obj | None) -> list[str]:
        return crd_warnings(obj, old)

    def deletion_blocked(self, obj: Obj) -> bool:
        """The first delete only marks the CRD; its objects go before it does."""
        return not meta(obj).get("deletionTimestamp")

    def mark_deleting(self, obj: Obj) -> None:
        finalizers = obj["metadata"].setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        set_condition(obj, "Terminating", "True", "InstanceDeletionPending",
                      "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon")

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), str(meta(obj).get("creationTimestamp") or "")]


STRATEGY = CustomResourceDefinitionStrategy()
