"""The Node authorizer: the graph of what a node's pods use (table), and its decisions after
plugin/pkg/auth/authorizer/node/node_authorizer_test.go."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.auth.attributes import request_attributes
from apiserver.auth.authorizer import Decision
from apiserver.auth.node import NodeAuthorizer
from apiserver.auth.nodegraph import pod_refs, pv_secrets
from machinery.userinfo import UserInfo

from .fakesnapshots import FakeSnapshots


def node_user(name: str) -> UserInfo:
    return UserInfo(f"system:node:{name}", groups=("system:nodes", "system:authenticated"))


N1, N2 = node_user("n1"), node_user("n2")


def pod(name: str, node: str, namespace: str = "ns", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": "1"},
            "spec": {"nodeName": node, "containers": [{"name": "c"}], **spec}}


FULL_SPEC: dict[str, Any] = {
    "serviceAccountName": "sa1",
    "imagePullSecrets": [{"name": "pull"}],
    "initContainers": [{"name": "i", "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "init-env", "key": "k"}}}]}],
    "containers": [{"name": "c",
                    "env": [{"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k"}}},
                            {"name": "C", "value": "plain"}],
                    "envFrom": [{"secretRef": {"name": "sec-from"}}, {"configMapRef": {"name": "cm-from"}}]}],
    "volumes": [{"name": "s", "secret": {"secretName": "sec-vol"}},
                {"name": "c", "configMap": {"name": "cm-vol"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "proj-sec"}},
                                                        {"configMap": {"name": "proj-cm"}},
                                                        {"serviceAccountToken": {"path": "token"}}]}},
                {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
                {"name": "r", "rbd": {"secretRef": {"name": "rbd-sec"}}},
                {"name": "e", "emptyDir": {}}],
}


def test_pod_refs_cover_every_place_a_pod_names_an_object() -> None:
    refs = pod_refs(pod("web", "n1", **FULL_SPEC))
    assert refs.secrets == {"pull", "init-env", "sec-from", "sec-vol", "proj-sec", "rbd-sec"}
    assert refs.configmaps == {"cm-env", "cm-from", "cm-vol", "proj-cm"}
    assert refs.claims == {"data", "web-scratch"}
    assert refs.service_account == "sa1"


def test_pv_secrets() -> None:
    pv = {"spec": {"csi": {"driver": "d", "nodePublishSecretRef": {"name": "csi", "namespace": "kube-system"}}}}
    assert pv_secrets(pv) == {("kube-system", "csi")}


@pytest.fixture
def authz() -> NodeAuthorizer:
    snapshots = FakeSnapshots({
        "pods": [pod("web", "n1", **FULL_SPEC), pod("other", "n2", volumes=[{"name": "s", "secret": {"secretName": "n2-only"}}]),
                 {"metadata": {"name": "pending", "namespace": "ns"},
                  "spec": {"volumes": [{"name": "s", "secret": {"secretName": "unbound"}}]}}],
        "persistentvolumes": [
            {"metadata": {"name": "pv-data", "resourceVersion": "1"},
             "spec": {"claimRef": {"namespace": "ns", "name": "data"},
                      "csi": {"driver": "d", "nodePublishSecretRef": {"name": "pv-sec", "namespace": "ns"}}}},
            {"metadata": {"name": "pv-other", "resourceVersion": "1"}, "spec": {"claimRef": {"namespace": "ns", "name": "x"}}}],
    })
    return NodeAuthorizer(snapshots)


@pytest.mark.parametrize("user,method,path,query,decision,reason", [
    # Secrets and ConfigMaps: only those a pod bound to the node uses, read only, by name.
    (N1, "GET", "/api/v1/namespaces/ns/secrets/sec-vol", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/namespaces/ns/secrets/pull", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/namespaces/ns/secrets/pv-sec", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/namespaces/ns/configmaps/proj-cm", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/namespaces/ns/secrets", {"watch": "1", "fieldSelector": "metadata.name=sec-vol"},
     Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/namespaces/ns/secrets/n2-only", {}, Decision.NO_OPINION,
     "no relationship found between node 'n1' and this object"),
    (N1, "GET", "/api/v1/namespaces/ns/secrets/unbound", {}, Decision.NO_OPINION,
     "no relationship found between node 'n1' and this object"),
    (N1, "GET", "/api/v1/namespaces/other/secrets/sec-vol", {}, Decision.NO_OPINION,
     "no relationship found between node 'n1' and this object"),
    (N1, "GET", "/api/v1/namespaces/ns/secrets", {}, Decision.NO_OPINION, "No Object name found"),
    (N1, "GET", "/api/v1/secrets", {}, Decision.NO_OPINION, "can only read namespaced object of this type"),
    (N1, "PUT", "/api/v1/namespaces/ns/secrets/sec-vol", {}, Decision.NO_OPINION, "can only read resources of this type"),
    (N2, "GET", "/api/v1/namespaces/ns/secrets/n2-only", {}, Decision.ALLOW, ""),
    # PVCs and PVs: get only, PV through its bound claim.
    (N1, "GET", "/api/v1/namespaces/ns/persistentvolumeclaims/data", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/namespaces/ns/persistentvolumeclaims/web-scratch", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/persistentvolumes/pv-data", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/persistentvolumes/pv-other", {}, Decision.NO_OPINION,
     "no relationship found between node 'n1' and this object"),
    (N1, "GET", "/api/v1/persistentvolumes", {}, Decision.NO_OPINION, "can only get individual resources of this type"),
    (N2, "GET", "/api/v1/persistentvolumes/pv-data", {}, Decision.NO_OPINION,
     "no relationship found between node 'n2' and this object"),
    # ServiceAccount tokens only for its pods' accounts.
    (N1, "POST", "/api/v1/namespaces/ns/serviceaccounts/sa1/token", {}, Decision.ALLOW, ""),
    (N2, "POST", "/api/v1/namespaces/ns/serviceaccounts/sa1/token", {}, Decision.NO_OPINION,
     "no relationship found between node 'n2' and this object"),
    (N1, "GET", "/api/v1/namespaces/ns/serviceaccounts/sa1", {}, Decision.NO_OPINION,
     "can only create tokens for individual service accounts"),
    # Leases: its own, in kube-node-lease.
    (N1, "PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1", {}, Decision.ALLOW, ""),
    (N1, "POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {}, Decision.ALLOW, ""),
    (N1, "PUT", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2", {}, Decision.NO_OPINION,
     "can only access node lease with the same name as the requesting node"),
    (N1, "GET", "/apis/coordination.k8s.io/v1/namespaces/default/leases/n1", {}, Decision.NO_OPINION,
     'can only access leases in the "kube-node-lease" system namespace'),
    # The static node rules.
    (N1, "GET", "/api/v1/nodes", {}, Decision.ALLOW, ""),
    (N1, "PATCH", "/api/v1/nodes/n1/status", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/pods", {"fieldSelector": "spec.nodeName=n1"}, Decision.ALLOW, ""),
    (N1, "PATCH", "/api/v1/namespaces/ns/pods/web/status", {}, Decision.ALLOW, ""),
    (N1, "POST", "/api/v1/namespaces/ns/events", {}, Decision.ALLOW, ""),
    (N1, "GET", "/api/v1/services", {}, Decision.ALLOW, ""),
    (N1, "POST", "/apis/authentication.k8s.io/v1/tokenreviews", {}, Decision.ALLOW, ""),
    (N1, "PUT", "/api/v1/namespaces/ns/pods/web", {}, Decision.NO_OPINION, ""),
    (N1, "DELETE", "/api/v1/nodes/n2", {}, Decision.NO_OPINION, ""),
    (N1, "POST", "/apis/apps/v1/namespaces/ns/deployments", {}, Decision.NO_OPINION, ""),
    (N1, "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {}, Decision.NO_OPINION, ""),
    # Not a node: no opinion at all.
    (UserInfo("alice"), "GET", "/api/v1/namespaces/ns/secrets/sec-vol", {}, Decision.NO_OPINION, ""),
    (UserInfo("system:node:n1"), "GET", "/api/v1/nodes", {}, Decision.NO_OPINION, ""),  # not in system:nodes
    (UserInfo("system:node:", groups=("system:nodes",)), "GET", "/api/v1/nodes", {}, Decision.NO_OPINION,
     'unknown node for user "system:node:"'),
])
def test_decisions(authz: NodeAuthorizer, user: UserInfo, method: str, path: str, query: dict[str, str],
                   decision: Decision, reason: str) -> None:
    assert authz.authorize(request_attributes(user, method, path, query)) == (decision, reason)


def test_the_graph_follows_pods_moving_and_going() -> None:
    snapshots = FakeSnapshots({"pods": [pod("web", "n1", volumes=[{"name": "s", "secret": {"secretName": "s1"}}])]})
    authz = NodeAuthorizer(snapshots)
    get_s1 = request_attributes(N2, "GET", "/api/v1/namespaces/ns/secrets/s1", {})
    assert authz.authorize(get_s1)[0] is Decision.NO_OPINION
    moved = pod("web2", "n2", volumes=[{"name": "s", "secret": {"secretName": "s1"}}])
    snapshots.put("pods", moved)
    assert authz.authorize(get_s1)[0] is Decision.ALLOW
    snapshots.store["pods"].remove(moved)
    snapshots.revisions["pods"] += 1
    assert authz.authorize(get_s1)[0] is Decision.NO_OPINION
