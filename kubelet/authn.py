"""The kubelet API's delegated authentication and authorization: TokenReview and SubjectAccessReview.

After the kubelet's ``--authentication-token-webhook`` and ``--authorization-mode=Webhook``
(pkg/kubelet/server/auth.go, staging/src/k8s.io/apiserver/plugin/pkg/authenticator/token/webhook,
.../authorizer/webhook). Data flow of a request with a bearer token that is not the API server's
own credential (``kubelet.credential`` decides that first):

    token -> ``authenticate``: cache (sha256 of the token: 2 min when valid, 30 s when not) or
        POST /apis/authentication.k8s.io/v1/tokenreviews {spec.token} -> UserInfo | None
    user + method + path -> ``request_attributes`` (pure: verb from the method, resource nodes,
        subresource stats|metrics|log|spec|proxy from the path, name the node)
        -> ``authorize``: cache (5 min allowed, 30 s denied) or
        POST /apis/authorization.k8s.io/v1/subjectaccessreviews -> allowed?

Both calls go to the API server with the kubelet's own client (its node credential). A review
that cannot be made (API server down, refused) raises ``ReviewError`` and is not cached: the
caller answers 401 (authentication) or 500 ``Authorization error (...)`` (authorization), as the
kubelet does.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, TypeVar

from machinery import errors
from machinery.client import ApiClient
from machinery.userinfo import UserInfo

log = logging.getLogger(__name__)

TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECTACCESSREVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
# The kubelet's defaults: --authentication-token-webhook-cache-ttl 2m (30 s for a refused token)
# and --authorization-webhook-cache-authorized-ttl 5m / -unauthorized-ttl 30s.
AUTHN_TTL, AUTHN_NEGATIVE_TTL = 120.0, 30.0
AUTHZ_TTL, AUTHZ_NEGATIVE_TTL = 300.0, 30.0
CACHE_SIZE = 4096

_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_SUBRESOURCES = (("/stats", "stats"), ("/metrics", "metrics"), ("/logs", "log"), ("/spec", "spec"))

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ReviewError(Exception):
    """A TokenReview or SubjectAccessReview could not be made."""


@dataclass(frozen=True)
class KubeletAttributes:
    """What a request to the kubelet asks for, as the kubelet's authorizer sees it."""

    verb: str
    subresource: str
    name: str
    resource: str = "nodes"


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


def token_review_body(token: str) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def access_review_body(user: UserInfo, attrs: KubeletAttributes) -> dict[str, Any]:
    who = user.to_api()  # a SubjectAccessReview names the user "user", the rest as UserInfo does
    spec: dict[str, Any] = {"user": who.pop("username"), **who,
                            "resourceAttributes": {"verb": attrs.verb, "group": "", "version": "v1",
                                                   "resource": attrs.resource, "subresource": attrs.subresource,
                                                   "name": attrs.name}}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def reviewed_user(answer: Any) -> UserInfo | None:
    """The user a TokenReview answer authenticated, or None (pure)."""
    status = (answer or {}).get("status") if isinstance(answer, dict) else None
    if not isinstance(status, dict) or status.get("authenticated") is not True:
        return None
    user = UserInfo.from_api(status.get("user") or {})
    return user if user.name else None


def review_allowed(answer: Any) -> bool:
    status = (answer or {}).get("status") if isinstance(answer, dict) else None
    return isinstance(status, dict) and status.get("allowed") is True and status.get("denied") is not True


class TTLCache(Generic[K, V]):
    """Answers kept for a time each; the oldest entries go first when full."""

    def __init__(self, *, clock: Callable[[], float], size: int = CACHE_SIZE) -> None:
        self._entries: dict[K, tuple[float, V]] = {}
        self._clock = clock
        self._size = size

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        if entry[0] <= self._clock():
            del self._entries[key]
            return False, None
        return True, entry[1]

    def put(self, key: K, value: V, ttl: float) -> None:
        self._entries.pop(key, None)
        while len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + ttl, value)

    def __len__(self) -> int:
        return len(self._entries)


def _user_key(user: UserInfo) -> Hashable:
    return (user.name, user.uid, user.groups, tuple(sorted((k, tuple(v)) for k, v in user.extra.items())))


class DelegatedAuth:
    """TokenReview and SubjectAccessReview through the API server, each answer cached."""

    def __init__(self, client: ApiClient, *, node_name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.node_name = node_name
        self._tokens: TTLCache[str, UserInfo | None] = TTLCache(clock=clock)
        self._decisions: TTLCache[tuple[Hashable, KubeletAttributes], bool] = TTLCache(clock=clock)
        self.reviews = 0  # how many reviews went to the API server (tests read it)

    async def authenticate(self, token: str) -> UserInfo | None:
        key = hashlib.sha256(token.encode()).hexdigest()
        hit, user = self._tokens.get(key)
        if hit:
            return user
        try:
            self.reviews += 1
            answer = await self.client.request("POST", TOKENREVIEWS, json=token_review_body(token))
        except errors.ApiError as e:
            log.warning("TokenReview failed: %s", e)
            raise ReviewError(str(e)) from None
        user = reviewed_user(answer)
        self._tokens.put(key, user, AUTHN_TTL if user is not None else AUTHN_NEGATIVE_TTL)
        return user

    async def authorize(self, user: UserInfo, attrs: KubeletAttributes) -> bool:
        key = (_user_key(user), attrs)
        hit, allowed = self._decisions.get(key)
        if hit:
            return bool(allowed)
        try:
            self.reviews += 1
            answer = await self.client.request("POST", SUBJECTACCESSREVIEWS, json=access_review_body(user, attrs))
        except errors.ApiError as e:
            log.warning("SubjectAccessReview for %s failed: %s", user.name, e)
            raise ReviewError(str(e)) from None
        allowed = review_allowed(answer)
        self._decisions.put(key, allowed, AUTHZ_TTL if allowed else AUTHZ_NEGATIVE_TTL)
        return allowed


__all__ = ["AUTHN_NEGATIVE_TTL", "AUTHN_TTL", "AUTHZ_NEGATIVE_TTL", "AUTHZ_TTL", "DelegatedAuth", "KubeletAttributes",
           "ReviewError", "TTLCache", "access_review_body", "authorization_error_message", "forbidden_message",
           "request_attributes", "review_allowed", "reviewed_user", "token_review_body"]
