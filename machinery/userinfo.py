"""Who a request is: the authenticated user, as Kubernetes' ``user.Info`` and authentication.k8s.io's UserInfo.

Shared by the API server (its authenticators produce a ``UserInfo``; authorizers, admission and
the audit log read it) and by the components that check callers themselves (the kubelet's API asks
the API server with a TokenReview and gets one back). Data only: no I/O here.

The names are Kubernetes' own, so RBAC bindings written for Kubernetes mean the same here:
``system:masters`` (every permission), ``system:authenticated`` / ``system:unauthenticated``
(added to every user), ``system:node:<name>`` in group ``system:nodes`` (kubelets),
``system:serviceaccount:<namespace>:<name>`` in ``system:serviceaccounts`` and
``system:serviceaccounts:<namespace>`` (pods' own tokens), and one user per component
(``COMPONENT_USERS``: what ``machinery.pki`` writes into each component's client certificate and
what the bootstrap RBAC policy grants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

SYSTEM_MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
NODES_GROUP = "system:nodes"
NODE_USER_PREFIX = "system:node:"
SERVICEACCOUNT_USER_PREFIX = "system:serviceaccount:"
SERVICEACCOUNTS_GROUP = "system:serviceaccounts"

# The user name each component authenticates as (the CN of its client certificate).
ADMIN = "kubernetes-admin"  # group system:masters, the kubeconfig `minik8s up` and compose write
COMPONENT_USERS: dict[str, str] = {
    "scheduler": "system:kube-scheduler",
    "controller-manager": "system:kube-controller-manager",
    "proxy": "system:kube-proxy",
    "dns": "system:minik8s:dns",
    "ingress": "system:minik8s:ingress",
    "gitops": "system:minik8s:gitops",
    "console": "system:minik8s:console",
    # The API server's own identity towards kubelets (exec, logs, port-forward, proxy).
    "apiserver-kubelet-client": "system:kube-apiserver-kubelet-client",
}


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """authentication.k8s.io/v1 UserInfo (TokenReview status, SelfSubjectReview, audit events)."""
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> "UserInfo":
        return cls(name=str(data.get("username") or ""), uid=str(data.get("uid") or ""),
                   groups=tuple(data.get("groups") or ()),
                   extra={k: tuple(v or ()) for k, v in (data.get("extra") or {}).items()})


def node_name(user: UserInfo) -> str | None:
    """The node a kubelet's identity names (``system:node:<name>`` in ``system:nodes``), else None."""
    if NODES_GROUP in user.groups and user.name.startswith(NODE_USER_PREFIX):
        return user.name[len(NODE_USER_PREFIX):] or None
    return None


def service_account(user: UserInfo) -> tuple[str, str] | None:
    """(namespace, name) of a ServiceAccount's identity, else None."""
    if not user.name.startswith(SERVICEACCOUNT_USER_PREFIX):
        return None
    ns, _, name = user.name[len(SERVICEACCOUNT_USER_PREFIX):].partition(":")
    return (ns, name) if ns and name else None


# Requests through the plain-HTTP port on 127.0.0.1 (``--insecure-port``, for tests) and calls
# inside the API server process: every permission, as Kubernetes' old insecure port granted.
INSECURE_SUPERUSER = UserInfo(name="system:unsecured", groups=(SYSTEM_MASTERS, AUTHENTICATED))
