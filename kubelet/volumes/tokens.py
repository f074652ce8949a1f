"""The kubelet's ServiceAccount token manager: the tokens of projected ``serviceAccountToken`` sources.

After pkg/kubelet/token/token_manager.go. Data flow (the volume manager asks while it writes a
projected volume, at set-up and on every refresh):

    (pod, source) -> cache key (namespace, service account, audience, expirationSeconds, pod uid)
        -> cached and fresh: the cached token
        -> else POST /api/v1/namespaces/NS/serviceaccounts/SA/token (TokenRequest: audiences,
           expirationSeconds, boundObjectRef the pod's name and uid) -> token + expirationTimestamp
           (kept; the volume writes it atomically with its other files)
        -> the request failed: the cached token while it has not expired (logged), else
           ``SourceError("failed to fetch token: <the API server's message>")`` (the pod waits in
           ContainerCreating with a FailedMount event; the next sync tries again)

``requires_refresh`` (pure) is Kubernetes' rule: fetch again once 80% of the token's lifetime has
passed (20% before its expiry) or it is older than 24 h, less a jitter of up to 10 s so that the
tokens of many pods are not fetched at one instant.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kubelet.volumes import SourceError
from kubelet.volumes.projection import TokenRef
from machinery import errors
from machinery.client import ApiClient
from machinery.timefmt import parse_rfc3339

log = logging.getLogger(__name__)

MAX_TTL = 24 * 3600.0
MAX_JITTER = 10.0

Key = tuple[str, str, str, int, str]  # namespace, service account, audience, expirationSeconds, pod uid


@dataclass(frozen=True)
class Token:
    token: str
    expires: float  # Unix time
    expiration_seconds: int


def requires_refresh(token: Token, *, now: float, jitter: float = 0.0) -> bool:
    """True when ``token`` should be fetched again (Kubernetes' requiresRefresh; pure)."""
    issued = token.expires - token.expiration_seconds
    if now > issued + MAX_TTL - jitter:
        return True
    return now > token.expires - token.expiration_seconds * 20 // 100 - jitter


def token_request(pod: Mapping[str, Any], ref: TokenRef) -> dict[str, Any]:
    meta = pod.get("metadata") or {}
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [ref.audience] if ref.audience else [],
                     "expirationSeconds": ref.expiration_seconds,
                     "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta.get("name"),
                                        "uid": meta.get("uid")}}}


def service_account_of(pod: Mapping[str, Any]) -> str:
    return str((pod.get("spec") or {}).get("serviceAccountName") or "default")


def token_of(answer: Any, ref: TokenRef, *, now: float) -> Token:
    """The token of a TokenRequest answer (its expiry: ``status.expirationTimestamp``)."""
    status = answer.get("status") if isinstance(answer, dict) else None
    token = str(status.get("token") or "") if isinstance(status, dict) else ""
    if not isinstance(status, dict) or not token:
        raise SourceError("failed to fetch token: the answer has no token")
    seconds = int(((answer.get("spec") or {}).get("expirationSeconds")) or ref.expiration_seconds)
    try:
        expires = parse_rfc3339(str(status.get("expirationTimestamp") or "")).timestamp()
    except ValueError:
        expires = now + seconds
    return Token(token=token, expires=expires, expiration_seconds=seconds)


class TokenManager:
    def __init__(self, client: ApiClient, *, clock: Callable[[], float] = time.time,
                 jitter: Callable[[], float] = lambda: random.random() * MAX_JITTER) -> None:
        self.client = client
        self.clock = clock
        self.jitter = jitter
        self._tokens: dict[Key, Token] = {}
        self.requests = 0  # TokenRequests sent (tests read it)

    async def get(self, pod: Mapping[str, Any], ref: TokenRef) -> str:
        meta = pod.get("metadata") or {}
        ns, sa = str(meta.get("namespace")), service_account_of(pod)
        key: Key = (ns, sa, ref.audience, ref.expiration_seconds, str(meta.get("uid")))
        cached = self._tokens.get(key)
        now = self.clock()
        if cached is not None and not requires_refresh(cached, now=now, jitter=self.jitter()):
            return cached.token
        try:
            self.requests += 1
            answer = await self.client.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                                               json=token_request(pod, ref))
            fresh = token_of(answer, ref, now=now)
        except (errors.ApiError, SourceError) as e:
            message = str(e).removeprefix("failed to fetch token: ")
            if cached is None:
                raise SourceError(f"failed to fetch token: {message}") from None
            if now >= cached.expires:
                raise SourceError(f"token {ns}/{sa} expired and refresh failed: {message}") from None
            log.warning("pod %s/%s: could not refresh the token of service account %s (%s); the current one "
                        "is valid until %s", ns, meta.get("name"), sa, message,
                        time.strftime("%H:%M:%S", time.gmtime(cached.expires)))
            return cached.token
        self._tokens[key] = fresh
        return fresh.token

    def forget(self, uid: str) -> None:
        """Drops the tokens of a pod that is gone."""
        for key in [k for k in self._tokens if k[4] == uid]:
            del self._tokens[key]


__all__ = ["MAX_JITTER", "MAX_TTL", "Token", "TokenManager", "requires_refresh", "service_account_of", "token_of",
           "token_request"]
