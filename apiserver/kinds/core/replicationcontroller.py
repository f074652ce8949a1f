"""ReplicationController (core/v1): the ReplicaSet's predecessor, still used by the docs' guestbook.

After pkg/registry/core/replicationcontroller and ``ValidateReplicationController``: the selector
is a plain label map (mutable, unlike a ReplicaSet's) that defaults to the template's labels, as
do the controller's own labels when it has none; ``replicas`` defaults to 1; the template is
required and must match the selector; ``status`` starts as ``{replicas: 0}``; ``/status`` and
``/scale``. The ReplicaSet controller's logic keeps its pods (controllers/replicaset.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import Facts, keyed
from ...validation.fielderrors import (Causes, Obj, dict_at, get_int, get_map, get_opt_map, invalid, nonnegative,
                                       required)
from ...validation.objectmeta import read_labels
from ...validation.podspec import validate_template
from ..apps.replicaset import REPLICA_COLUMNS, replica_cells
from ..base import Column, ScalePaths, Strategy, spec
from ..common.defaulting import map_at
from ..common.podtemplate import default_template
from ..common.printers import format_labels


class ReplicationControllerStrategy(Strategy):
    kind = "ReplicationController"
    plural = "replicationcontrollers"
    singular = "replicationcontroller"
    short_names = ("rc",)
    categories = ("all",)
    subresources = ("status", "scale")
    model = "V1ReplicationController"
    initial_status: Obj = {"replicas": 0}
    selectable_fields = ("status.replicas",)
    scale_paths = ScalePaths(label_selector=".spec.selector")
    columns = REPLICA_COLUMNS + (Column("Selector", priority=1, description=(
        "Selector is a label query over pods that should match the Replicas count.")),)
    type_facts = {
        "V1ReplicationControllerSpec": {"selector": Facts(map_type="atomic")},
        "V1ReplicationControllerStatus": {"conditions": keyed("type")},
    }
    protobuf_messages = {
        "ReplicationController": (
            "metadata:1:ObjectMeta spec:2:ReplicationControllerSpec status:3:ReplicationControllerStatus"),
        "ReplicationControllerSpec": (
            "replicas:1:i! minReadySeconds:4:i selector:2:{s} template:3:PodTemplateSpec"),
        "ReplicationControllerStatus": (
            "replicas:1:i! fullyLabeledReplicas:2:i readyReplicas:4:i availableReplicas:5:i "
            "observedGeneration:3:i conditions:6:*ReplicationControllerCondition"),
        "ReplicationControllerCondition": (
            "type:1:s! status:2:s! lastTransitionTime:3:Time reason:4:s message:5:s"),
    }

    def defaults(self, obj: Obj) -> None:
        owner_spec = map_at(obj, "spec", create=True)
        if owner_spec is None:
            return
        template = map_at(owner_spec, "template")
        template_meta = map_at(template, "metadata")
        labels = template_meta.get("labels") if template_meta is not None else None
        if isinstance(labels, dict) and labels:
            if not owner_spec.get("selector"):
                owner_spec["selector"] = dict(labels)
            metadata = map_at(obj, "metadata", create=True)
            if metadata is not None and not metadata.get("labels"):
                metadata["labels"] = dict(labels)
        if owner_spec.get("replicas") is None:
            owner_spec["replicas"] = 1
        default_template(owner_spec)

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        owner_spec = get_map(obj, "spec", "", causes)
        causes.extend(nonnegative("spec.minReadySeconds", get_int(owner_spec, "minReadySeconds", "spec", causes)))
        selector = read_labels(owner_spec, "selector", "spec", causes)
        if not selector:
            causes.append(required("spec.selector"))
        causes.extend(nonnegative("spec.replicas", get_int(owner_spec, "replicas", "spec", causes)))
        if get_opt_map(owner_spec, "template", "spec", causes) is None:
            causes.append(required("spec.template"))
            return causes
        _, labels = validate_template(owner_spec, "spec", causes, owner="ReplicationController")
        if selector and any(labels.get(k) != v for k, v in selector.items()):
            causes.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return replica_cells(obj, now) + [format_labels(dict_at(dict(spec(obj)), "selector") or None)]


STRATEGY = ReplicationControllerStrategy()
