"""ReplicaSet (apps/v1): keeps ``spec.replicas`` pods of its template alive.

After pkg/registry/apps/replicaset: ``replicas`` defaults to 1, the LabelSelector must match the
template and never changes, ``status`` starts as ``{replicas: 0}``; ``/status`` and ``/scale``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import keyed
from ...validation.fielderrors import Causes, Obj
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec, status
from ..common.podtemplate import CONTAINERS_COLUMN, IMAGES_COLUMN, container_cells, default_template, template_spec
from ..common.printers import format_label_selector
from ..common.replicated import replicas, replicated_spec, selector_update_causes, validate_replicated

REPLICA_COLUMNS = (
    NAME,
    Column("Desired", type="integer", description="Replicas is the number of desired replicas."),
    Column("Current", type="integer", description="Replicas is the most recently observed number of replicas."),
    Column("Ready", type="integer", description="The number of ready replicas for this replica set."),
    AGE,
    CONTAINERS_COLUMN,
    IMAGES_COLUMN,
)


class ReplicaSetStrategy(Strategy):
    group = "apps"
    kind = "ReplicaSet"
    plural = "replicasets"
    singular = "replicaset"
    short_names = ("rs",)
    categories = ("all",)
    subresources = ("status", "scale")
    model = "V1ReplicaSet"
    initial_status: Obj = {"replicas": 0}
    selectable_fields = ("status.replicas",)
    columns = REPLICA_COLUMNS + (Column("Selector", priority=1, description=(
        "Selector is a label query over pods that should match the replica count.")),)
    type_facts = {"V1ReplicaSetStatus": {"conditions": keyed("type")}}
    protobuf_messages = {
        "ReplicaSet": "metadata:1:ObjectMeta spec:2:ReplicaSetSpec status:3:ReplicaSetStatus",
        "ReplicaSetSpec": (
            "replicas:1:i! minReadySeconds:4:i selector:2:LabelSelector template:3:PodTemplateSpec"),
        "ReplicaSetStatus": (
            "replicas:1:i! fullyLabeledReplicas:2:i readyReplicas:4:i availableReplicas:5:i "
            "terminatingReplicas:7:i! observedGeneration:3:i conditions:6:*ReplicaSetCondition"),
        "ReplicaSetCondition": "type:1:s! status:2:s! lastTransitionTime:3:Time reason:4:s message:5:s",
    }

    def defaults(self, obj: Obj) -> None:
        owner_spec = replicated_spec(obj)
        if owner_spec is not None:
            default_template(owner_spec)

    def validate(self, obj: Obj) -> Causes:
        causes, _ = validate_replicated(obj, owner="ReplicaSet")
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return selector_update_causes(new, old)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return replica_cells(obj, now) + [format_label_selector(spec(obj).get("selector"))]


def replica_cells(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    """NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES (ReplicaSets and ReplicationControllers)."""
    state = status(obj)
    names, images = container_cells(template_spec(obj))
    return [name_of(obj), replicas(obj), int(state.get("replicas") or 0), int(state.get("readyReplicas") or 0),
            age(obj, now), names, images]


STRATEGY = ReplicaSetStrategy()
