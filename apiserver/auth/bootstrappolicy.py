"""The default RBAC policy every API server reconciles at start: plugin/pkg/auth/authorizer/rbac/bootstrappolicy.

Data only: ``cluster_roles()`` and ``cluster_role_bindings()`` return the objects, labelled
``kubernetes.io/bootstrapping: rbac-defaults`` and annotated
``rbac.authorization.kubernetes.io/autoupdate: "true"`` (``bootstrapreconcile`` writes them).

Kubernetes' own roles: cluster-admin (bound to system:masters), the aggregated admin / edit /
view (their rules come from the ``system:aggregate-to-*`` roles through the aggregation
controller), system:basic-user, system:discovery, system:public-info-viewer, system:monitoring,
system:auth-delegator, system:service-account-issuer-discovery, system:kubelet-api-admin,
system:node (unbound: kubelets are authorized by the Node authorizer); for group system:nodes
also system:minik8s:node (this project's kubelet is also kube-proxy and a local-path reclaimer:
EndpointSlices and PersistentVolumes) and, in kube-system, the Role reading the API server's
kubelet credential Secret. Then one role and binding
per component user of ``machinery.userinfo.COMPONENT_USERS``, granting what that component
does here: the scheduler and kube-proxy as Kubernetes' ``system:kube-scheduler`` and
``system:node-proxier``; the controller-manager, whose controllers all run as one user, reads and
writes every resource (the garbage collector and namespace controller need that in Kubernetes
too) and creates what its controllers create; dns, ingress and the console read only what they
serve; gitops applies arbitrary manifests and is bound to cluster-admin (as Flux's
kustomize-controller is); the API server's kubelet client gets system:kubelet-api-admin.
"""

from __future__ import annotations

from typing import Any

from machinery import kubeletauth
from machinery.userinfo import (AUTHENTICATED, COMPONENT_USERS, NODES_GROUP, SERVICEACCOUNTS_GROUP, SYSTEM_MASTERS,
                                UNAUTHENTICATED)

from .node import NODE_RULES

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
READ_WRITE = ["create", "delete", "deletecollection", "patch", "update"]
Rule = dict[str, Any]


def rule(verbs: list[str], groups: list[str], *resources: str, names: list[str] | None = None) -> Rule:
    out: Rule = {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}
    if names:
        out["resourceNames"] = list(names)
    return out


def urls(verbs: list[str], *paths: str) -> Rule:
    return {"verbs": list(verbs), "nonResourceURLs": list(paths)}


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": {**BOOTSTRAP_LABEL, **(labels or {})}, "annotations": {AUTOUPDATE: "true"}}


def cluster_role(name: str, rules: list[Rule], *, labels: dict[str, str] | None = None,
                 aggregate_from: str = "") -> dict[str, Any]:
    role: dict[str, Any] = {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _meta(name, labels),
                            "rules": rules}
    if aggregate_from:
        role["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {AGGREGATE_TO + aggregate_from: "true"}}]}
    return role


def binding(name: str, role: str, *subjects: tuple[str, str]) -> dict[str, Any]:
    def subject(kind: str, who: str) -> dict[str, Any]:
        if kind == "ServiceAccount":
            namespace, _, sa = who.partition("/")
            return {"kind": kind, "name": sa, "namespace": namespace}
        return {"kind": kind, "apiGroup": GROUP, "name": who}
    return {"apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": _meta(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
            "subjects": [subject(k, n) for k, n in subjects]}


# ---------------------------------------------------------------------------------- aggregated roles
def _aggregate_to_view() -> list[Rule]:
    return [
        rule(READ, [""], "pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
             "services", "services/status", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status",
             "configmaps"),
        rule(READ, [""], "limitranges", "resourcequotas", "bindings", "events", "pods/status",
             "resourcequotas/status", "namespaces/status", "replicationcontrollers/status", "pods/log"),
        rule(READ, [""], "namespaces"),
        rule(READ, ["discovery.k8s.io"], "endpointslices"),
        rule(READ, ["apps"], "controllerrevisions", "daemonsets", "daemonsets/status", "deployments",
             "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status",
             "statefulsets", "statefulsets/scale", "statefulsets/status"),
        rule(READ, ["autoscaling"], "horizontalpodautoscalers", "horizontalpodautoscalers/status"),
        rule(READ, ["batch"], "cronjobs", "cronjobs/status", "jobs", "jobs/status"),
        rule(READ, ["policy"], "poddisruptionbudgets", "poddisruptionbudgets/status"),
        rule(READ, ["networking.k8s.io"], "ingresses", "ingresses/status", "networkpolicies"),
    ]


def _aggregate_to_edit() -> list[Rule]:
    return [
        rule(["impersonate"], [""], "serviceaccounts"),
        rule(READ_WRITE, [""], "pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"),
        rule(["create"], [""], "pods/eviction"),
        rule(READ_WRITE, [""], "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
             "services", "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"),
        rule(["create"], [""], "serviceaccounts/token"),
        rule(READ_WRITE, ["apps"], "daemonsets", "deployments", "deployments/rollback", "deployments/scale",
             "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"),
        rule(READ_WRITE, ["autoscaling"], "horizontalpodautoscalers"),
        rule(READ_WRITE, ["batch"], "jobs", "cronjobs"),
        rule(READ_WRITE, ["policy"], "poddisruptionbudgets"),
        rule(READ_WRITE, ["networking.k8s.io"], "networkpolicies", "ingresses"),
        rule(READ_WRITE, ["coordination.k8s.io"], "leases"),
        rule(READ, [""], "pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"),
    ]


def _aggregate_to_admin() -> list[Rule]:
    return [
        rule(["create"], ["authorization.k8s.io"], "localsubjectaccessreviews"),
        rule(READ_WRITE + READ, [GROUP], "rolebindings", "roles"),
    ]


# ---------------------------------------------------------------------------------- component roles
def _scheduler() -> list[Rule]:
    return [
        rule(["create", "patch", "update"], ["", "events.k8s.io"], "events"),
        rule(["create"], ["coordination.k8s.io"], "leases"),
        rule(["get", "update"], ["coordination.k8s.io"], "leases", names=["kube-scheduler"]),
        rule(READ, [""], "nodes"),
        rule(READ + ["delete"], [""], "pods"),
        rule(["create"], [""], "bindings", "pods/binding"),
        rule(["patch", "update"], [""], "pods/status"),
        rule(READ, [""], "replicationcontrollers", "services", "namespaces"),
        # Kubernetes' system:volume-scheduler: the volume binding plugin pre-binds PVs to claims.
        rule(READ + ["patch", "update"], [""], "persistentvolumeclaims", "persistentvolumes"),
        rule(READ, ["apps"], "replicasets", "statefulsets"),
        rule(READ, ["policy"], "poddisruptionbudgets"),
        rule(READ, ["storage.k8s.io"], "storageclasses", "csinodes", "csidrivers", "csistoragecapacities"),
        rule(["create"], ["authentication.k8s.io"], "tokenreviews"),
        rule(["create"], ["authorization.k8s.io"], "subjectaccessreviews"),
    ]


def _controller_manager() -> list[Rule]:
    return [
        # The garbage collector, namespace deletion, quota and every controller's informers.
        rule(READ + ["update", "patch", "delete", "deletecollection"], ["*"], "*"),
        rule(["create"], [""], "pods", "events", "endpoints", "serviceaccounts", "configmaps", "persistentvolumes",
             "persistentvolumeclaims", "pods/eviction", "pods/binding", "replicationcontrollers"),
        rule(["create"], ["storage.k8s.io"], "storageclasses"),  # the local-path provisioner's class
        rule(["create"], ["events.k8s.io"], "events"),
        rule(["create"], ["apps"], "replicasets", "controllerrevisions"),
        rule(["create"], ["batch"], "jobs"),
        rule(["create"], ["discovery.k8s.io"], "endpointslices"),
        rule(["create"], ["coordination.k8s.io"], "leases"),
        rule(["create"], ["authentication.k8s.io"], "tokenreviews"),
        rule(["create"], ["authorization.k8s.io"], "subjectaccessreviews"),
        # The ClusterRole aggregation controller writes rules it does not hold itself.
        rule(["escalate"], [GROUP], "clusterroles"),
    ]


def _node_extras() -> list[Rule]:
    # What this project's kubelet reads beyond Kubernetes' NodeRules: its built-in Service proxy
    # (kube-proxy's EndpointSlices) and the local-path reclaimer (every PersistentVolume).
    return [rule(READ, ["discovery.k8s.io"], "endpointslices"),
            rule(READ, [""], "persistentvolumes")]


def _proxy() -> list[Rule]:
    return [
        rule(READ, [""], "services", "endpoints", "nodes"),
        rule(READ, ["discovery.k8s.io"], "endpointslices"),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], "events"),
    ]


def _dns() -> list[Rule]:
    # It serves every Service from the Services and EndpointSlices, and publishes itself as the
    # selector-less Service kube-system/kube-dns with its EndpointSlice and Endpoints.
    return [
        rule(READ, [""], "services"),
        rule(READ, ["discovery.k8s.io"], "endpointslices"),
        rule(["create"], [""], "services", "endpoints"),
        rule(["create"], ["discovery.k8s.io"], "endpointslices"),
        rule(["get", "update", "patch", "delete"], [""], "services", names=["kube-dns"]),
        rule(["get", "update", "patch", "delete"], [""], "endpoints", names=["kube-dns"]),
        rule(["get", "update", "patch", "delete"], ["discovery.k8s.io"], "endpointslices", names=["kube-dns"]),
    ]


def _ingress() -> list[Rule]:
    return [
        rule(READ, [""], "services", "endpoints", "secrets"),  # Secrets: the TLS certificates
        rule(READ, ["discovery.k8s.io"], "endpointslices"),
        rule(READ, ["networking.k8s.io"], "ingresses", "ingressclasses"),
        rule(["create"], ["networking.k8s.io"], "ingressclasses"),  # its own class, when missing
        rule(["update", "patch"], ["networking.k8s.io"], "ingresses/status"),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], "events"),
    ]


def _console() -> list[Rule]:
    # Read-only, Secrets excluded (as Kubernetes' view): the view rules plus the cluster-scoped kinds.
    return [*_aggregate_to_view(),
            rule(READ, [""], "nodes", "persistentvolumes"),
            rule(READ, ["storage.k8s.io"], "storageclasses"),
            rule(READ, ["networking.k8s.io"], "ingressclasses"),
            rule(READ, ["events.k8s.io"], "events"),
            rule(READ, ["coordination.k8s.io"], "leases"),
            rule(READ, ["apiextensions.k8s.io"], "customresourcedefinitions"),
            rule(READ, [GROUP], "roles", "rolebindings", "clusterroles", "clusterrolebindings")]


# ---------------------------------------------------------------------------------- the policy
def cluster_roles() -> list[dict[str, Any]]:
    discovery = ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*",
                 "/readyz", "/version", "/version/"]
    c = COMPONENT_USERS
    return [
        cluster_role("cluster-admin", [rule(["*"], ["*"], "*"), urls(["*"], "*")]),
        cluster_role("admin", [], aggregate_from="admin"),
        cluster_role("edit", [], labels={AGGREGATE_TO + "admin": "true"}, aggregate_from="edit"),
        cluster_role("view", [], labels={AGGREGATE_TO + "edit": "true"}, aggregate_from="view"),
        cluster_role("system:aggregate-to-admin", _aggregate_to_admin(), labels={AGGREGATE_TO + "admin": "true"}),
        cluster_role("system:aggregate-to-edit", _aggregate_to_edit(), labels={AGGREGATE_TO + "edit": "true"}),
        cluster_role("system:aggregate-to-view", _aggregate_to_view(), labels={AGGREGATE_TO + "view": "true"}),
        cluster_role("system:discovery", [urls(["get"], *discovery)]),
        cluster_role("system:monitoring", [urls(["get"], "/metrics", "/metrics/slis", "/livez", "/readyz",
                                                "/healthz", "/livez/*", "/readyz/*", "/healthz/*")]),
        cluster_role("system:basic-user", [
            rule(["create"], ["authorization.k8s.io"], "selfsubjectaccessreviews", "selfsubjectrulesreviews"),
            rule(["create"], ["authentication.k8s.io"], "selfsubjectreviews")]),
        cluster_role("system:public-info-viewer", [urls(["get"], "/livez", "/readyz", "/healthz", "/version",
                                                        "/version/")]),
        cluster_role("system:auth-delegator", [rule(["create"], ["authentication.k8s.io"], "tokenreviews"),
                                               rule(["create"], ["authorization.k8s.io"], "subjectaccessreviews")]),
        cluster_role("system:service-account-issuer-discovery", [urls(
            ["get"], "/.well-known/openid-configuration", "/.well-known/openid-configuration/",
            "/openid/v1/jwks", "/openid/v1/jwks/")]),
        cluster_role("system:kubelet-api-admin", [
            rule(READ, [""], "nodes"), rule(["proxy"], [""], "nodes"),
            rule(["*"], [""], "nodes/proxy", "nodes/metrics", "nodes/stats", "nodes/log")]),
        cluster_role("system:node", [dict(r) for r in NODE_RULES]),
        cluster_role("system:minik8s:node", _node_extras()),
        cluster_role(c["scheduler"], _scheduler()),
        cluster_role(c["controller-manager"], _controller_manager()),
        cluster_role("system:node-proxier", _proxy()),
        cluster_role(c["dns"], _dns()),
        cluster_role(c["ingress"], _ingress()),
        cluster_role(c["console"], _console()),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    c = COMPONENT_USERS
    return [
        binding("cluster-admin", "cluster-admin", ("Group", SYSTEM_MASTERS)),
        binding("system:monitoring", "system:monitoring", ("Group", "system:monitoring")),
        binding("system:discovery", "system:discovery", ("Group", AUTHENTICATED)),
        binding("system:basic-user", "system:basic-user", ("Group", AUTHENTICATED)),
        binding("system:public-info-viewer", "system:public-info-viewer", ("Group", AUTHENTICATED),
                ("Group", UNAUTHENTICATED)),
        binding("system:service-account-issuer-discovery", "system:service-account-issuer-discovery",
                ("Group", SERVICEACCOUNTS_GROUP)),
        binding(c["scheduler"], c["scheduler"], ("User", c["scheduler"])),
        binding(c["controller-manager"], c["controller-manager"], ("User", c["controller-manager"])),
        binding("system:node-proxier", "system:node-proxier", ("User", c["proxy"])),
        binding(c["dns"], c["dns"], ("User", c["dns"])),
        binding(c["ingress"], c["ingress"], ("User", c["ingress"])),
        binding(c["console"], c["console"], ("User", c["console"])),
        # Their /metrics check scrapes with TokenReview and SubjectAccessReview (machinery.healthz);
        # the scheduler's and controller-manager's own roles grant that already.
        binding("system:minik8s:metrics-auth-delegator", "system:auth-delegator", ("User", c["proxy"]),
                ("User", c["dns"]), ("User", c["ingress"])),
        binding(c["gitops"], "cluster-admin", ("User", c["gitops"])),
        binding(c["apiserver-kubelet-client"], "system:kubelet-api-admin", ("User", c["apiserver-kubelet-client"])),
        binding("system:minik8s:node", "system:minik8s:node", ("Group", NODES_GROUP)),
    ]


# The kubelets read the API server's credential (machinery.kubeletauth's Secret) to check its calls.
KUBELET_CREDENTIAL_ROLE = "system:minik8s:kubelet-credential-reader"


def roles() -> list[dict[str, Any]]:
    """The namespaced default Roles (Kubernetes' NamespaceRoles)."""
    role = cluster_role(KUBELET_CREDENTIAL_ROLE, [rule(READ, [""], "secrets", names=[kubeletauth.SECRET_NAME])])
    role["kind"] = "Role"
    role["metadata"]["namespace"] = kubeletauth.SECRET_NAMESPACE
    return [role]


def role_bindings() -> list[dict[str, Any]]:
    """The namespaced default RoleBindings (Kubernetes' NamespaceRoleBindings)."""
    b = binding(KUBELET_CREDENTIAL_ROLE, KUBELET_CREDENTIAL_ROLE, ("Group", NODES_GROUP))
    b["kind"] = "RoleBinding"
    b["metadata"]["namespace"] = kubeletauth.SECRET_NAMESPACE
    b["roleRef"]["kind"] = "Role"
    return [b]
