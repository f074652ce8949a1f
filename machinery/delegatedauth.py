"""Delegated authentication and authorization: TokenReview and SubjectAccessReview, each answer cached.

After Kubernetes' delegated auth (staging/src/k8s.io/apiserver/pkg/server/options/authentication.go
and authorization.go, .../plugin/pkg/authenticator/token/webhook, .../authorizer/webhook), which
kube-scheduler, kube-controller-manager and the kubelet use for their own listeners. Data flow of a
request with a bearer token that the component cannot check itself:

    token -> ``DelegatedAuth.authenticate``: cache (sha256 of the token: 2 min when valid, 30 s
        when not) or POST /apis/authentication.k8s.io/v1/tokenreviews {spec.token} -> UserInfo | None
    user + what it asks (``Attributes``: a resource request, as the kubelet maps its paths, or a
        non-resource URL such as ``NonResource("get", "/metrics")``) -> ``authorize``: cache (5 min
        allowed, 30 s denied) or POST /apis/authorization.k8s.io/v1/subjectaccessreviews -> allowed?

Both reviews go to the API server with the component's own client (its credential: the role of
each component that delegates grants create on tokenreviews and subjectaccessreviews, as
Kubernetes' system:auth-delegator does). A review that cannot be made (API server down, refused)
raises ``ReviewError`` and is not cached. ``check_bearer`` is the whole decision for one request:
no token -> 401, a token the API server does not accept -> 401, a user it does not allow -> 403
with Kubernetes' message, a review that failed -> 401 or 500 (as the kubelet and kube-scheduler).

``has_credential`` says whether a client config carries one at all: a component talking plain HTTP
to an insecure API server (the test clusters) has none, and then serves its /metrics openly.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Generic, Hashable, Protocol, TypeVar

from machinery import errors
from machinery.client import ApiClient
from machinery.kubeconfig import ClientConfig
from machinery.kubeletauth import bearer_of
from machinery.userinfo import UserInfo

log = logging.getLogger(__name__)

TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECTACCESSREVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
# Kubernetes' defaults: --authentication-token-webhook-cache-ttl 2m (the webhook authenticator
# keeps a refused token 30 s) and --authorization-webhook-cache-authorized-ttl 5m / -unauthorized-ttl 30s.
AUTHN_TTL, AUTHN_NEGATIVE_TTL = 120.0, 30.0
AUTHZ_TTL, AUTHZ_NEGATIVE_TTL = 300.0, 30.0
CACHE_SIZE = 4096

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ReviewError(Exception):
    """A TokenReview or SubjectAccessReview could not be made."""


class Attributes(Protocol):
    """What a request asks for, as a SubjectAccessReview's spec names it (hashable: it is a cache key)."""

    def __hash__(self) -> int: ...

    def review_spec(self) -> dict[str, Any]:
        """``{"resourceAttributes": {...}}`` or ``{"nonResourceAttributes": {...}}``."""
        ...


@dataclass(frozen=True)
class NonResource:
    """A non-resource URL request (``/metrics``, ``/healthz``): verb and path."""

    verb: str
    path: str

    def review_spec(self) -> dict[str, Any]:
        return {"nonResourceAttributes": {"verb": self.verb, "path": self.path}}


def token_review_body(token: str) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def access_review_body(user: UserInfo, attrs: Attributes) -> dict[str, Any]:
    who = user.to_api()  # a SubjectAccessReview names the user "user", the rest as UserInfo does
    spec: dict[str, Any] = {"user": who.pop("username"), **who, **attrs.review_spec()}
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


def has_credential(config: ClientConfig | str | None) -> bool:
    """Whether a client presents a credential to the API server (a token, basic auth, a client
    certificate); a bare URL or an empty kubeconfig user presents none."""
    if not isinstance(config, ClientConfig):
        return False
    return bool(config.token or config.basic_auth or config.cert_file or config.cert_data)


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

    def __init__(self, client: ApiClient, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._tokens: TTLCache[str, UserInfo | None] = TTLCache(clock=clock)
        self._decisions: TTLCache[tuple[Hashable, Hashable], bool] = TTLCache(clock=clock)
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

    async def authorize(self, user: UserInfo, attrs: Attributes) -> bool:
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

    async def check_bearer(self, header: str | None, attrs: NonResource) -> errors.ApiError | None:
        """None when the request's bearer token is a user allowed ``attrs``; else the refusal, with
        Kubernetes' Status: 401 ``Unauthorized`` (no token, not valid, or no TokenReview could be
        made), 403 ``forbidden: User "u" cannot get path "/metrics"``, 500 when no
        SubjectAccessReview could be made."""
        token = bearer_of(header)
        if token is None:
            return errors.UnauthorizedError(message="Unauthorized")
        try:
            user = await self.authenticate(token)
        except ReviewError:
            return errors.UnauthorizedError(message="Unauthorized")
        if user is None:
            return errors.UnauthorizedError(message="Unauthorized")
        try:
            allowed = await self.authorize(user, attrs)
        except ReviewError as e:
            return errors.InternalError(message=f"Internal Server Error: {attrs.path!r}: {e}")
        if allowed:
            return None
        return errors.ForbiddenError(message=f'forbidden: User "{user.name}" cannot {attrs.verb} path "{attrs.path}"')


__all__ = ["AUTHN_NEGATIVE_TTL", "AUTHN_TTL", "AUTHZ_NEGATIVE_TTL", "AUTHZ_TTL", "Attributes", "DelegatedAuth",
           "NonResource", "ReviewError", "SUBJECTACCESSREVIEWS", "TOKENREVIEWS", "TTLCache", "access_review_body",
           "has_credential", "review_allowed", "reviewed_user", "token_review_body"]
