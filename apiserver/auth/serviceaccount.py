"""The ServiceAccount token authenticator (after Kubernetes' pkg/serviceaccount jwt.go and claims.go).

Data flow: a bearer token -> ``jws.parse`` (not a JWT, or another issuer's: no opinion, so other
authenticators may claim it) -> the RS256 signature against the verifying keys -> the audiences
(the token's ``aud`` must meet the requested ones, by default the API audiences) -> ``exp``,
``nbf``, ``iat`` with Kubernetes' one-minute leeway -> the objects the token names, read from
the registry's watch caches (a fresh read when the cache has not seen them yet, as Kubernetes'
getter falls back to a live read): the ServiceAccount with the token's uid, a bound Pod or Secret
or Node with its uid -> ``UserInfo`` (``system:serviceaccount:<ns>:<name>``, groups
``system:serviceaccounts`` and ``system:serviceaccounts:<ns>``, extra pod-name, pod-uid,
node-name, node-uid and credential-id ``JTI=<jti>``). A presented token that fails a check raises
``AuthenticationError`` with Kubernetes' message (TokenReview shows it in ``status.error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Protocol

from machinery import errors
from machinery.userinfo import SERVICEACCOUNT_USER_PREFIX, SERVICEACCOUNTS_GROUP, UserInfo

from ..registry import Registry
from . import jws
from .errors import AuthenticationError

LEEWAY = timedelta(minutes=1)  # go-jose's jwt.DefaultLeeway
EXTRA_PREFIX = "authentication.kubernetes.io/"
POD_NAME, POD_UID = EXTRA_PREFIX + "pod-name", EXTRA_PREFIX + "pod-uid"
NODE_NAME, NODE_UID = EXTRA_PREFIX + "node-name", EXTRA_PREFIX + "node-uid"
CREDENTIAL_ID = EXTRA_PREFIX + "credential-id"
SIGNED_CACHE_SIZE = 4096


class Keys(Protocol):
    issuer: str
    api_audiences: tuple[str, ...]

    async def public_keys(self) -> list[jws.PublicKey]: ...


def _ref(k8s: Mapping[str, Any], kind: str) -> dict[str, str] | None:
    value = k8s.get(kind)
    if not isinstance(value, Mapping):
        return None
    return {"name": str(value.get("name") or ""), "uid": str(value.get("uid") or "")}


def _stamp(claims: Mapping[str, Any], name: str) -> datetime | None:
    value = claims.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise AuthenticationError(f"service account token claims could not be validated: bad {name}") from None
    return None


def check_times(claims: Mapping[str, Any], now: datetime) -> None:
    expiry, not_before, issued = _stamp(claims, "exp"), _stamp(claims, "nbf"), _stamp(claims, "iat")
    if expiry is not None and now - LEEWAY > expiry:
        raise AuthenticationError("service account token has expired")
    if (not_before is not None and now + LEEWAY < not_before) or (issued is not None and now + LEEWAY < issued):
        raise AuthenticationError("service account token is not valid yet")


def token_audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def matched_audiences(claims: Mapping[str, Any], *, requested: tuple[str, ...], api: tuple[str, ...]) -> list[str]:
    """The token's audiences that were asked for; none at all is Kubernetes' 401 message."""
    have = token_audiences(claims) or list(api)  # a token without aud is for the API (legacy tokens)
    want = requested or api
    matched = [a for a in have if a in want]
    if not matched:
        have_q = "[" + " ".join(f'"{a}"' for a in have) + "]"
        want_q = "[" + " ".join(f'"{a}"' for a in want) + "]"
        raise AuthenticationError(f"token audiences {have_q} is invalid for the target audiences {want_q}")
    return matched


@dataclass(frozen=True)
class Bound:
    """What the token's ``kubernetes.io`` claim names."""

    namespace: str
    service_account: dict[str, str]
    pod: dict[str, str] | None
    secret: dict[str, str] | None
    node: dict[str, str] | None

    @classmethod
    def of(cls, claims: Mapping[str, Any]) -> "Bound":
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, Mapping):
            raise AuthenticationError("service account token claims could not be validated: no kubernetes.io claim")
        sa = _ref(k8s, "serviceaccount")
        namespace = str(k8s.get("namespace") or "")
        if sa is None or not sa["name"] or not namespace:
            raise AuthenticationError("service account token claims could not be validated: "
                                      "no namespace or service account")
        return cls(namespace, sa, _ref(k8s, "pod"), _ref(k8s, "secret"), _ref(k8s, "node"))


def user_info(bound: Bound, *, jti: str, pod: bool, node: bool) -> UserInfo:
    extra: dict[str, tuple[str, ...]] = {}
    if pod and bound.pod and bound.pod["name"] and bound.pod["uid"]:
        extra[POD_NAME], extra[POD_UID] = (bound.pod["name"],), (bound.pod["uid"],)
    if jti:
        extra[CREDENTIAL_ID] = (f"JTI={jti}",)
    if node and bound.node and bound.node["name"]:
        extra[NODE_NAME] = (bound.node["name"],)
        if bound.node["uid"]:
            extra[NODE_UID] = (bound.node["uid"],)
    ns, name = bound.namespace, bound.service_account["name"]
    return UserInfo(name=f"{SERVICEACCOUNT_USER_PREFIX}{ns}:{name}", uid=bound.service_account["uid"],
                    groups=(SERVICEACCOUNTS_GROUP, f"{SERVICEACCOUNTS_GROUP}:{ns}"), extra=extra)


def _deleted_before(obj: Mapping[str, Any], limit: datetime) -> bool:
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    try:
        return datetime.strptime(str(stamp), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) < limit
    except ValueError:
        return True


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


class ServiceAccountAuthenticator:
    def __init__(self, keys: Keys, registry: Registry) -> None:
        self.keys = keys
        self.registry = registry
        # Tokens whose RS256 signature checked out (the keys never change while the process runs):
        # the signature costs ~0.2 ms, the claim and object checks below are redone every time, so
        # a deleted Pod or ServiceAccount still ends its tokens at once.
        self._signed: set[str] = set()

    async def authenticate_token(self, token: str, audiences: tuple[str, ...] = (),
                                 ) -> tuple[UserInfo, list[str]] | None:
        if not jws.looks_like_jwt(token):
            return None
        try:
            parsed = jws.parse(token)
        except jws.JWSError:
            return None  # not a JWT at all: another authenticator's (or nobody's) token
        if parsed.claims.get("iss") != self.keys.issuer:
            return None
        if token not in self._signed:
            if not jws.verify(parsed, await self.keys.public_keys()):
                raise AuthenticationError("square/go-jose: error in cryptographic primitive")
            if len(self._signed) >= SIGNED_CACHE_SIZE:
                self._signed.clear()
            self._signed.add(token)
        matched = matched_audiences(parsed.claims, requested=audiences, api=self.keys.api_audiences)
        now = datetime.now(timezone.utc)
        check_times(parsed.claims, now)
        bound = Bound.of(parsed.claims)
        await self._check_objects(bound, now - LEEWAY)
        return user_info(bound, jti=str(parsed.claims.get("jti") or ""), pod=True, node=True), matched

    async def _check_objects(self, bound: Bound, limit: datetime) -> None:
        ns, sa_ref = bound.namespace, bound.service_account
        sa = await self._lookup("serviceaccounts", ns, sa_ref["name"])
        if sa is None:
            raise AuthenticationError(f'serviceaccounts "{sa_ref["name"]}" not found')
        if _deleted_before(sa, limit):
            raise AuthenticationError(f"service account {ns}/{sa_ref['name']} has been deleted")
        if _uid(sa) != sa_ref["uid"]:
            raise AuthenticationError(f"service account UID ({_uid(sa)}) does not match claim ({sa_ref['uid']})")
        for plural, ref, kind in (("secrets", bound.secret, "secret"), ("pods", bound.pod, "pod")):
            if ref is None:
                continue
            obj = await self._lookup(plural, ns, ref["name"])
            if obj is None or _deleted_before(obj, limit):
                raise AuthenticationError("service account token has been invalidated")
            if _uid(obj) != ref["uid"]:
                raise AuthenticationError(f"{kind} UID ({_uid(obj)}) does not match service account {kind} ref "
                                          f"claim ({ref['uid']})")
        if bound.node is not None and bound.pod is None:
            node = await self._lookup("nodes", None, bound.node["name"])
            if node is None:
                raise AuthenticationError("service account token has been invalidated")
            if _uid(node) != bound.node["uid"]:
                raise AuthenticationError(f"node UID ({_uid(node)}) does not match service account node ref "
                                          f"claim ({bound.node['uid']})")

    async def _lookup(self, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        res = self.registry.resources.lookup("", "v1", plural)
        if res is None or not name:
            return None
        cache = self.registry.caches.get(res.group_resource)
        entry = cache.get(res.key(namespace, name)) if cache is not None else None
        if entry is not None:
            return entry.obj
        try:  # not in the cache (yet): a fresh read, as Kubernetes' getter falls back to the API
            return (await self.registry.get(res, namespace, name)).obj
        except errors.NotFoundError:
            return None


__all__ = ["CREDENTIAL_ID", "NODE_NAME", "NODE_UID", "POD_NAME", "POD_UID", "ServiceAccountAuthenticator",
           "check_times", "matched_audiences", "user_info"]
