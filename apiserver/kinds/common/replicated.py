"""What the replica-keeping kinds share: Deployment, ReplicaSet and ReplicationController.

``spec.replicas`` (default 1) of ``spec.template`` pods picked by a selector that must match the
template's labels; DESIRED/CURRENT/READY columns; the ``/scale`` subresource. The apps/v1 kinds
take a LabelSelector, which is immutable; a ReplicationController takes a plain label map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...validation.fielderrors import (Causes, Obj, dict_at, get_int, get_map, get_opt_map, invalid, nonnegative,
                                       required)
from ...validation.objectmeta import selector_matches, validate_label_selector
from ...validation.podspec import validate_template
from ..base import spec
from .defaulting import map_at

FIELD_IMMUTABLE = "field is immutable"


def replicated_spec(obj: Obj) -> Obj | None:
    """The spec of a replicated kind, with ``replicas`` defaulted to 1."""
    owner_spec = map_at(obj, "spec", create=True)
    if owner_spec is not None and owner_spec.get("replicas") is None:
        owner_spec["replicas"] = 1
    return owner_spec


def replicas(obj: Mapping[str, Any]) -> int:
    value = spec(obj).get("replicas")
    return 1 if value is None else int(value)  # the server defaults spec.replicas to 1


def validate_replicated(obj: Obj, *, owner: str) -> tuple[Causes, Obj]:
    """The replicas/selector/template rules of Deployments and ReplicaSets (LabelSelector)."""
    causes: Causes = []
    owner_spec = get_map(obj, "spec", "", causes)
    causes.extend(nonnegative("spec.replicas", get_int(owner_spec, "replicas", "spec", causes)))
    causes.extend(nonnegative("spec.minReadySeconds", get_int(owner_spec, "minReadySeconds", "spec", causes)))
    # Kubernetes says "for deployment" for ReplicaSets too.
    validate_selector_and_template(owner_spec, causes, owner=owner, selector_owner="deployment")
    return causes, owner_spec


def validate_selector_and_template(owner_spec: Obj, causes: Causes, *, owner: str, selector_owner: str) -> None:
    """The required, non-empty LabelSelector of an apps/v1 spec that must match its template's labels,
    and the template itself (Deployments, ReplicaSets, DaemonSets)."""
    selector = get_opt_map(owner_spec, "selector", "spec", causes)
    usable = False
    if selector is None:
        causes.append(required("spec.selector"))
    else:
        usable = validate_label_selector(selector, "spec.selector", causes)
        if not selector.get("matchLabels") and not selector.get("matchExpressions"):
            usable = False
            causes.append(invalid("spec.selector", selector, f"empty selector is invalid for {selector_owner}"))
    _, labels = validate_template(owner_spec, "spec", causes, owner=owner)
    if usable and selector is not None and not selector_matches(selector, labels):
        causes.append(invalid("spec.template.metadata.labels", labels, "`selector` does not match template `labels`"))


def selector_update_causes(new: Obj, old: Obj) -> Causes:
    """apps/v1 Deployments and ReplicaSets may never change their selector."""
    new_spec, old_spec = dict_at(new, "spec"), dict_at(old, "spec")
    if new_spec.get("selector") != old_spec.get("selector"):
        return [invalid("spec.selector", new_spec.get("selector"), FIELD_IMMUTABLE)]
    return []
