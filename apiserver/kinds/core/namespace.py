"""Namespace (core/v1, cluster-scoped): the ``kubernetes`` finalizer, phase Active/Terminating.

After pkg/registry/core/namespace: a new namespace is Active and carries the
``kubernetes.io/metadata.name`` label and the ``kubernetes`` spec finalizer; deleting it turns it
Terminating, and it is removed once the namespace controller has emptied it and cleared
``spec.finalizers`` through ``/finalize``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import Facts, keyed
from ...validation.fielderrors import Causes, Obj, enum, get_map, get_str, get_strs, index
from ...validation.formats import dns1123_label_errors
from ...validation.objectmeta import finalizer_causes
from ..base import AGE, NAME, Column, CreateContext, Strategy, age, meta, name_of, status
from ..common.defaulting import map_at, set_if_unset

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
NAMESPACE_FINALIZER = "kubernetes"


class NamespaceStrategy(Strategy):
    kind = "Namespace"
    plural = "namespaces"
    singular = "namespace"
    namespaced = False
    short_names = ("ns",)
    subresources = ("status", "finalize")
    model = "V1Namespace"
    selectable_fields = ("status.phase",)
    columns = (NAME, Column("Status", description="The status of the namespace"), AGE)
    type_facts = {"V1NamespaceSpec": {"finalizers": Facts(list_type="atomic")},
                  "V1NamespaceStatus": {"conditions": keyed("type")}}
    protobuf_messages = {
        "Namespace": "metadata:1:ObjectMeta spec:2:NamespaceSpec status:3:NamespaceStatus",
        "NamespaceSpec": "finalizers:1:*s",
        "NamespaceStatus": "phase:1:s conditions:2:*NamespaceCondition",
        "NamespaceCondition": "type:1:s! status:2:s! lastTransitionTime:4:Time reason:5:s message:6:s",
    }

    def name_errors(self, name: str) -> list[str]:
        return dns1123_label_errors(name)

    def defaults(self, obj: Obj) -> None:
        metadata = map_at(obj, "metadata")
        name = metadata.get("name") if metadata is not None else None
        if isinstance(name, str) and name:
            labels = map_at(metadata, "labels", create=True)
            if labels is not None:
                labels[NAMESPACE_NAME_LABEL] = name
        deleting = metadata is not None and metadata.get("deletionTimestamp") is not None
        spec = map_at(obj, "spec", create=True)
        # The registry guarantees the "kubernetes" finalizer; once deletion has started the
        # namespace controller removes it through /finalize, so it must not come back then.
        if spec is not None and not deleting:
            finalizers = spec.get("finalizers")
            if finalizers is None:
                spec["finalizers"] = [NAMESPACE_FINALIZER]
            elif isinstance(finalizers, list) and NAMESPACE_FINALIZER not in finalizers:
                finalizers.append(NAMESPACE_FINALIZER)
        state = map_at(obj, "status", create=True)
        if state is not None:
            set_if_unset(state, "phase", "Active")

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        obj["status"] = {"phase": "Active"}

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        spec = get_map(obj, "spec", "", causes)
        for i, name in enumerate(get_strs(spec, "finalizers", "spec", causes)):
            causes.extend(finalizer_causes([name], index("spec.finalizers", i)))
        state = get_map(obj, "status", "", causes)
        causes.extend(enum("status.phase", get_str(state, "phase", "status", causes), ("Active", "Terminating"),
                           required_if_empty=False))
        return causes

    def deletion_blocked(self, obj: Obj) -> bool:
        return bool((obj.get("spec") or {}).get("finalizers"))

    def mark_deleting(self, obj: Obj) -> None:
        obj.setdefault("status", {})["phase"] = "Terminating"

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        # The real server always sets status.phase; fall back to what it would have set.
        default = "Terminating" if meta(obj).get("deletionTimestamp") else "Active"
        return [name_of(obj), status(obj).get("phase") or default, age(obj, now)]


STRATEGY = NamespaceStrategy()
