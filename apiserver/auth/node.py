"""The Node authorizer (``--authorization-mode=Node,...``): plugin/pkg/auth/authorizer/node.

Data flow: a request of a kubelet identity (``system:node:<name>`` in ``system:nodes``; anyone
else: no opinion) -> for Secrets, ConfigMaps, PersistentVolumeClaims, PersistentVolumes and
``serviceaccounts/token`` a path in the node graph (``nodegraph.NodeGraph``, rebuilt from the
pod and PV watch caches when their revision moves) decides: only objects that a pod bound to
this node uses; Leases only in ``kube-node-lease`` under the node's own name; everything else
is checked against ``NODE_RULES`` (Kubernetes' ``bootstrappolicy.NodeRules``: read nodes, pods,
services, endpoints; write nodes, node status, pod status, events...). Which node and which
pod a write touches is NodeRestriction admission's business (``apiserver/admission``).

Reasons are Kubernetes' own (``no relationship found between node 'n1' and this object``).
"""

from __future__ import annotations

from typing import Any

from machinery.userinfo import NODE_USER_PREFIX, NODES_GROUP, node_name

from . import rbacrules
from .attributes import Attributes
from .authorizer import Decision
from .nodegraph import NodeGraph, NodeReach
from .rbac import Snapshots

NODE_LEASE_NAMESPACE = "kube-node-lease"
_GRAPH_RESOURCES = ("pods", "persistentvolumes")
_READ = ["get", "list", "watch"]


def _rule(verbs: list[str], group: str, *resources: str) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": [group], "resources": list(resources)}


# bootstrappolicy.NodeRules() of Kubernetes 1.32 (without DRA, CSR-less kinds kept for fidelity).
NODE_RULES: list[dict[str, Any]] = [
    _rule(["create"], "authentication.k8s.io", "tokenreviews"),
    _rule(["create"], "authorization.k8s.io", "subjectaccessreviews", "localsubjectaccessreviews"),
    _rule(_READ, "", "services"),
    _rule(["create", "get", "list", "watch"], "", "nodes"),
    _rule(["update", "patch"], "", "nodes/status"),
    _rule(["update", "patch"], "", "nodes"),
    _rule(["create", "update", "patch"], "", "events"),
    _rule(_READ, "", "pods"),
    _rule(["create", "delete"], "", "pods"),
    _rule(["update", "patch"], "", "pods/status"),
    _rule(["create"], "", "pods/eviction"),
    _rule(["get", "list", "watch"], "", "secrets", "configmaps"),
    _rule(["get"], "", "persistentvolumeclaims", "persistentvolumes"),
    _rule(["get"], "", "endpoints"),
    _rule(["create", "get", "list", "watch"], "certificates.k8s.io", "certificatesigningrequests"),
    _rule(["get", "create", "update", "patch", "delete"], "coordination.k8s.io", "leases"),
    _rule(["get"], "storage.k8s.io", "volumeattachments"),
    _rule(["get", "update", "patch"], "", "persistentvolumeclaims/status"),
    _rule(_READ, "storage.k8s.io", "csidrivers"),
    _rule(["get", "create", "update", "patch", "delete"], "storage.k8s.io", "csinodes"),
    _rule(_READ, "node.k8s.io", "runtimeclasses"),
    _rule(["create"], "", "serviceaccounts/token"),
]


class NodeAuthorizer:
    def __init__(self, snapshots: Snapshots) -> None:
        self.snapshots = snapshots
        self.graph = NodeGraph()
        self._version: tuple[int, ...] = ()

    def _reach(self, node: str) -> NodeReach:
        version = tuple(self.snapshots.revision(gr) for gr in _GRAPH_RESOURCES)
        if version != self._version:
            self.graph.update(self.snapshots.objects("pods"), self.snapshots.objects("persistentvolumes"))
            self._version = version
        return self.graph.reach.get(node) or NodeReach()

    def authorize(self, a: Attributes) -> tuple[Decision, str]:
        node = node_name(a.user)
        if node is None:
            if a.user.name == NODE_USER_PREFIX and NODES_GROUP in a.user.groups:
                return Decision.NO_OPINION, f'unknown node for user "{a.user.name}"'
            return Decision.NO_OPINION, ""
        if a.resource_request and a.api_group == "":
            if a.resource in ("secrets", "configmaps"):
                return self._read_namespaced(node, a)
            if a.resource == "persistentvolumeclaims":
                if a.subresource == "status":
                    return self._status_update(node, a)
                return self._get(node, a)
            if a.resource == "persistentvolumes":
                return self._get(node, a)
            if a.resource == "serviceaccounts":
                return self._create_token(node, a)
        if a.resource_request and a.api_group == "coordination.k8s.io" and a.resource == "leases":
            return self._lease(node, a)
        if rbacrules.rules_allow(a, NODE_RULES):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""

    # ------------------------------------------------------------------ subdivided resources
    def _related(self, node: str, a: Attributes) -> tuple[Decision, str]:
        if not a.name:
            return Decision.NO_OPINION, "No Object name found"
        reach = self._reach(node)
        key = (a.namespace, a.name)
        related = {
            "secrets": key in reach.secrets,
            "configmaps": key in reach.configmaps,
            "persistentvolumeclaims": key in reach.claims,
            "persistentvolumes": a.name in reach.volumes,
            "serviceaccounts": key in reach.service_accounts,
        }.get(a.resource, False)
        if not related:
            return Decision.NO_OPINION, f"no relationship found between node '{node}' and this object"
        return Decision.ALLOW, ""

    def _read_namespaced(self, node: str, a: Attributes) -> tuple[Decision, str]:
        if a.verb not in ("get", "list", "watch"):
            return Decision.NO_OPINION, "can only read resources of this type"
        if a.subresource:
            return Decision.NO_OPINION, "cannot read subresource"
        if not a.namespace:
            return Decision.NO_OPINION, "can only read namespaced object of this type"
        return self._related(node, a)

    def _get(self, node: str, a: Attributes) -> tuple[Decision, str]:
        if a.verb != "get":
            return Decision.NO_OPINION, "can only get individual resources of this type"
        if a.subresource:
            return Decision.NO_OPINION, "cannot get subresource"
        return self._related(node, a)

    def _status_update(self, node: str, a: Attributes) -> tuple[Decision, str]:
        if a.verb not in ("update", "patch"):
            return Decision.NO_OPINION, "can only get/update/patch this type"
        return self._related(node, a)

    def _create_token(self, node: str, a: Attributes) -> tuple[Decision, str]:
        if a.verb != "create" or not a.name:
            return Decision.NO_OPINION, "can only create tokens for individual service accounts"
        if a.subresource != "token":
            return Decision.NO_OPINION, "can only create token subresource of serviceaccount"
        return self._related(node, a)

    def _lease(self, node: str, a: Attributes) -> tuple[Decision, str]:
        if a.verb not in ("get", "create", "update", "patch", "delete"):
            return Decision.NO_OPINION, "can only get, create, update, patch, or delete a node lease"
        if a.namespace != NODE_LEASE_NAMESPACE:
            return Decision.NO_OPINION, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        if a.verb != "create" and a.name != node:
            return Decision.NO_OPINION, "can only access node lease with the same name as the requesting node"
        return Decision.ALLOW, ""
