"""NodeRestriction (plugin/pkg/admission/noderestriction): what a kubelet's identity may write, pure.

The Node authorizer decides which objects a kubelet may touch at all; this plugin looks into the
writes themselves. Data flow: the request's user -> ``node_identity`` (``system:node:<name>`` in
``system:nodes``; anyone else is not restricted here) -> ``admit(Request)`` -> None (allowed) or
the reason of a 403 ``<resource> "<name>" is forbidden: <reason>``, Kubernetes' wording:

- Node objects: only its own (``node "a" is not allowed to modify node "b"``), created without
  ``node-restriction.kubernetes.io/`` or unknown ``kubernetes.io``/``k8s.io`` labels, updated
  without changing its taints or such labels;
- pods: no creates (mirror pods only in Kubernetes; minik8s runs no static pods) and no spec
  updates; status updates and deletes of pods bound to itself only; evictions likewise;
- PersistentVolumeClaims: only status.capacity and status.conditions;
- Leases: only ``kube-node-lease/<its name>``; CSINodes: only its own;
- ``serviceaccounts/token``: only tokens bound to a pod on its node (``admit_token_request``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

from machinery.userinfo import NODE_USER_PREFIX, NODES_GROUP, UserInfo

Obj = Mapping[str, Any]

CREATE, UPDATE, DELETE = "CREATE", "UPDATE", "DELETE"
NODE_LEASE_NAMESPACE = "kube-node-lease"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
RESTRICTION_LABEL_NAMESPACE = "node-restriction.kubernetes.io"
# k8s.io/kubelet/pkg/apis: the kubernetes.io labels a kubelet may set on its own Node.
KUBELET_LABELS = frozenset({
    "kubernetes.io/hostname", "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type", "node.kubernetes.io/instance-type", "kubernetes.io/os", "kubernetes.io/arch",
    "beta.kubernetes.io/os", "beta.kubernetes.io/arch"})
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")


@dataclass(frozen=True)
class Request:
    """One write as admission sees it (Kubernetes' admission.Attributes)."""

    node: str
    operation: str  # CREATE, UPDATE or DELETE
    resource: str  # group_resource: "pods", "nodes", "leases.coordination.k8s.io", ...
    name: str
    namespace: str = ""
    subresource: str = ""
    obj: Obj | None = None  # the new object (CREATE, UPDATE)
    old: Obj | None = None  # the stored object (UPDATE, DELETE)


def node_identity(user: UserInfo) -> tuple[bool, str]:
    """(is a node, its name): Kubernetes' NodeIdentifier; a node user without a name has ""."""
    if not user.name.startswith(NODE_USER_PREFIX) or NODES_GROUP not in user.groups:
        return False, ""
    return True, user.name[len(NODE_USER_PREFIX):]


def _label_namespace(key: str) -> str:
    prefix, slash, _ = key.partition("/")
    return prefix if slash else ""


def _within(namespace: str, domain: str) -> bool:
    return namespace == domain or namespace.endswith("." + domain)


def _kubelet_label(key: str) -> bool:
    return key in KUBELET_LABELS or any(_within(_label_namespace(key), d) for d in KUBELET_LABEL_NAMESPACES)


def forbidden_labels(new: Mapping[str, str] | None, old: Mapping[str, str] | None) -> list[str]:
    """Labels a kubelet may not add, change or remove on its own Node, sorted."""
    new, old = new or {}, old or {}
    modified = {k for k in set(new) | set(old) if new.get(k) != old.get(k) or (k in new) != (k in old)}
    out = set()
    for key in modified:
        namespace = _label_namespace(key)
        if _within(namespace, RESTRICTION_LABEL_NAMESPACE):
            out.add(key)
        if (_within(namespace, "kubernetes.io") or _within(namespace, "k8s.io")) and not _kubelet_label(key):
            out.add(key)
    return sorted(out)


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def _bound_node(pod: Obj | None) -> str:
    return str(((pod or {}).get("spec") or {}).get("nodeName") or "")


def _admit_node(r: Request) -> str | None:
    if r.name != r.node:
        return f'node "{r.node}" is not allowed to modify node "{r.name}"'
    if r.operation == CREATE:
        if ((r.obj or {}).get("spec") or {}).get("configSource") is not None:
            return f'node "{r.node}" is not allowed to create pods with a non-nil configSource'
        labels = forbidden_labels(_meta(r.obj).get("labels"), None)
        if labels:
            return f'node "{r.node}" is not allowed to set the following labels: {", ".join(labels)}'
    if r.operation == UPDATE:
        new_spec, old_spec = (r.obj or {}).get("spec") or {}, (r.old or {}).get("spec") or {}
        if new_spec.get("configSource") is not None and new_spec.get("configSource") != old_spec.get("configSource"):
            return f'node "{r.node}" is not allowed to update configSource to a new non-nil configSource'
        if (new_spec.get("taints") or []) != (old_spec.get("taints") or []):
            return f'node "{r.node}" is not allowed to modify taints'
        labels = forbidden_labels(_meta(r.obj).get("labels"), _meta(r.old).get("labels"))
        if labels:
            return f"is not allowed to modify labels: {', '.join(labels)}"
    return None


def _admit_pod(r: Request) -> str | None:
    if r.subresource == "status":
        if r.operation != UPDATE:
            return f'unexpected operation "{r.operation}"'
        if _bound_node(r.old) != r.node:
            return f'node "{r.node}" can only update pod status for pods with spec.nodeName set to itself'
        if (_meta(r.obj).get("labels") or {}) != (_meta(r.old).get("labels") or {}):
            return f'node "{r.node}" cannot update labels through pod status'
        return None
    if r.subresource == "eviction":
        if _bound_node(r.old) != r.node:
            return f"node {r.node} can only evict pods with spec.nodeName set to itself"
        return None
    if r.subresource:
        return f"unexpected pod subresource \"{r.subresource}\", only 'status' and 'eviction' are allowed"
    if r.operation == CREATE:
        if MIRROR_ANNOTATION not in (_meta(r.obj).get("annotations") or {}):
            return f'pod does not have "{MIRROR_ANNOTATION}" annotation, node "{r.node}" can only create mirror pods'
        return f'node "{r.node}" can not create mirror pods: this cluster runs no static pods'
    if r.operation == DELETE:
        if _bound_node(r.old) != r.node:
            return f'node "{r.node}" can only delete pods with spec.nodeName set to itself'
        return None
    return f'unexpected operation "{r.operation}", node "{r.node}" can only create and delete mirror pods'


_PVC_STATUS_FIELDS = ("capacity", "conditions", "allocatedResources", "allocatedResourceStatuses")


def _without_status_fields(pvc: Obj | None) -> Obj:
    out = copy.deepcopy(dict(pvc or {}))
    meta = dict(out.get("metadata") or {})
    for f in ("resourceVersion", "managedFields"):
        meta.pop(f, None)
    out["metadata"] = meta
    out["status"] = {k: v for k, v in (out.get("status") or {}).items() if k not in _PVC_STATUS_FIELDS}
    return out


def _admit_claim(r: Request) -> str | None:
    if r.subresource != "status":
        return "may only update PVC status"
    if r.operation != UPDATE:
        return f'unexpected operation "{r.operation}"'
    if _without_status_fields(r.obj) != _without_status_fields(r.old):
        return f'node "{r.node}" is not allowed to update fields other than status.capacity and status.conditions'
    return None


def _admit_named_after_node(r: Request, what: str) -> str | None:
    name = str(_meta(r.obj).get("name") or "") if r.operation == CREATE else r.name
    return None if name == r.node else f"can only access {what} with the same name as the requesting node"


def admit(r: Request) -> str | None:
    """The reason a node's write is refused, or None (Kubernetes' Plugin.Admit); a node user
    without a name is refused before (``could_not_identify``)."""
    if r.resource == "pods":
        return _admit_pod(r)
    if r.resource == "nodes":
        return _admit_node(r)
    if r.resource == "persistentvolumeclaims":
        return _admit_claim(r)
    if r.resource == "leases.coordination.k8s.io":
        if r.namespace != NODE_LEASE_NAMESPACE:
            return f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        return _admit_named_after_node(r, "node lease")
    if r.resource == "csinodes.storage.k8s.io":
        return _admit_named_after_node(r, "CSINode")
    return None


def could_not_identify(user: UserInfo) -> str:
    return f'could not determine node from user "{user.name}"'


def admit_token_request(node: str, spec: Obj, pod: Obj | None) -> str | None:
    """A node's TokenRequest must be bound to a pod (found by the caller: ``pod``) on its node."""
    ref = spec.get("boundObjectRef") or {}
    if not ref or ref.get("apiVersion") != "v1" or ref.get("kind") != "Pod" or not ref.get("name"):
        return "node requested token not bound to a pod"
    if not ref.get("uid"):
        return "node requested token with a pod binding without a uid"
    if pod is None:
        return None  # the caller answers 404 for the pod, as Kubernetes does
    if ref["uid"] != _meta(pod).get("uid"):
        return (f"the UID in the bound object reference ({ref['uid']}) does not match the UID in record. "
                "The object might have been deleted and then recreated")
    if _bound_node(pod) != node:
        return "node requested token bound to a pod scheduled on a different node"
    return None
