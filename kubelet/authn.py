"""The kubelet API's request attributes for delegated authorization (TokenReview, SubjectAccessReview).

After the kubelet's ``--authentication-token-webhook`` and ``--authorization-mode=Webhook``
(pkg/kubelet/server/auth.go). The reviews, their caches and TTLs are the shared
``machinery.delegatedauth`` (the scheduler's, controller-manager's and other components' /metrics
use the same); what is the kubelet's own is the mapping of a request onto the node resource:

    user + method + path -> ``request_attributes`` (pure: verb from the method, resource nodes,
        subresource stats|metrics|log|spec|proxy from the path, name the node)
        -> ``DelegatedAuth.authorize`` (machinery.delegatedauth: cached SubjectAccessReview)

``kubelet.credential`` decides first whether the token is the API server's own credential. A
review that cannot be made raises ``ReviewError``: the caller answers 401 (authentication) or 500
``Authorization error (...)`` (authorization), as the kubelet does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from machinery import delegatedauth
from machinery.client import ApiClient
from machinery.delegatedauth import (
    AUTHN_NEGATIVE_TTL,
    AUTHN_TTL,
    AUTHZ_NEGATIVE_TTL,
    AUTHZ_TTL,
    ReviewError,
    TTLCache,
    access_review_body,
    review_allowed,
    reviewed_user,
    token_review_body,
)
from machinery.userinfo import UserInfo

_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_SUBRESOURCES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"))


@dataclass(frozen=True)
class KubeletAttributes:
    """What a request to the kubelet asks for, as the kubelet's authorizer sees it."""

    verb: str
    subresource: str
    name: str
    resource: str = "nodes"

    def review_spec(self) -> dict[str, Any]:
        return {"resourceAttributes": {"verb": self.verb, "group": "", "version": "v1", "resource": self.resource,
                                       "subresource": self.subresource, "name": self.name}}


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def request_attributes(method: str, path: str, node_name: str) -> KubeletAttributes:
    """Kubernetes' kubelet mapping (pure): GET get, POST create, PUT update, PATCH patch, DELETE
    delete; /stats/* stats, /metrics/* metrics, /logs/* log, /spec/* spec, anything else proxy."""
    subresource = next((sub for prefix, sub in _SUBRESOURCES if _under(path, prefix)), "proxy")
    return KubeletAttributes(verb=_VERBS.get(method.upper(), ""), subresource=subresource, name=node_name)


def forbidden_message(user: UserInfo, attrs: KubeletAttributes) -> str:
    return (f"Forbidden (user={user.name}, verb={attrs.verb}, resource={attrs.resource}, "
            f"subresource={attrs.subresource})")


def authorization_error_message(user: UserInfo, attrs: KubeletAttributes) -> str:
    return (f"Authorization error (user={user.name}, verb={attrs.verb}, resource={attrs.resource}, "
            f"subresource={attrs.subresource})")


class DelegatedAuth(delegatedauth.DelegatedAuth):
    """The shared delegated auth, plus the node whose API this kubelet serves."""

    def __init__(self, client: ApiClient, *, node_name: str, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(client, clock=clock)
        self.node_name = node_name


__all__ = ["AUTHN_NEGATIVE_TTL", "AUTHN_TTL", "AUTHZ_NEGATIVE_TTL", "AUTHZ_TTL", "DelegatedAuth", "KubeletAttributes",
           "ReviewError", "TTLCache", "access_review_body", "authorization_error_message", "forbidden_message",
           "request_attributes", "review_allowed", "reviewed_user", "token_review_body"]
