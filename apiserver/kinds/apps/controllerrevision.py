"""ControllerRevision (apps/v1): an immutable snapshot of a DaemonSet's or StatefulSet's state.

After pkg/registry/apps/controllerrevision: ``data`` (a RawExtension: any JSON object, here the
``{"spec": {"template": {..., "$patch": "replace"}}}`` patch the DaemonSet and StatefulSet
controllers write, see ``controllers.history``) is required and never changes; ``revision``
is required and not negative (it may change: the controllers renumber a revision they reuse).
No status. ``kubectl get controllerrevisions`` shows NAME CONTROLLER REVISION AGE, the controller
as ``daemonset.apps/web`` (``formatResourceName`` of the controller reference).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...validation.fielderrors import Causes, Obj, get_int, invalid, nonnegative, required, type_error
from ..base import AGE, NAME, Column, Strategy, age, meta, name_of

FIELD_IMMUTABLE = "field is immutable"


class ControllerRevisionStrategy(Strategy):
    group = "apps"
    kind = "ControllerRevision"
    plural = "controllerrevisions"
    singular = "controllerrevision"
    model = "V1ControllerRevision"
    columns = (
        NAME,
        Column("Controller", description="Controller of the object"),
        Column("Revision", description="Revision indicates the revision of the state represented by Data."),
        AGE,
    )
    # k8s.io/api/apps/v1 generated.proto; ``data`` is a runtime.RawExtension (JSON bytes).
    protobuf_messages = {"ControllerRevision": "metadata:1:ObjectMeta data:2:RawExtension revision:3:i!"}

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        if obj.get("data") is None:
            causes.append(required("data", "data is mandatory"))
        elif not isinstance(obj.get("data"), Mapping):
            causes.append(type_error("data", obj.get("data"), "object"))
        if obj.get("revision") is None:
            causes.append(required("revision"))
        else:
            causes.extend(nonnegative("revision", get_int(obj, "revision", "", causes, bits=64)))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        if new.get("data") != old.get("data"):
            return [invalid("data", new.get("data"), FIELD_IMMUTABLE)]
        return []

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), controller_cell(obj), obj.get("revision", 0), age(obj, now)]


def controller_cell(obj: Mapping[str, Any]) -> str:
    """``formatResourceName(gvk.GroupKind(), ref.Name, true)`` of the controller reference, else "<none>"."""
    for ref in meta(obj).get("ownerReferences") or []:
        if isinstance(ref, Mapping) and ref.get("controller"):
            api_version = str(ref.get("apiVersion") or "")
            group = api_version.split("/", 1)[0] if "/" in api_version else ""
            kind = str(ref.get("kind") or "").lower()
            return f"{kind}.{group}/{ref.get('name', '')}" if group else f"{kind}/{ref.get('name', '')}"
    return "<none>"


STRATEGY = ControllerRevisionStrategy()
