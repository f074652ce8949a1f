"""Who may call the kubelet's HTTP API: the API server's credential, or any identity RBAC lets in.

Data flow:

    Secret kube-system/minik8s-kubelet-client (written by the API server at start-up,
        machinery.kubeletauth) -> an Informer on that one Secret (field selector metadata.name)
        -> ``KubeletCredential.token`` (the last token seen; a deleted Secret keeps it, as the API
        server keeps presenting it until it restarts and writes a new one)
    every request but /healthz (kubelet.server's middleware) -> ``authorize(Authorization header,
        method, path)`` -> None (let through) or a ``Denial``:
        no bearer token                        -> 401 Unauthorized
        the API server's token                 -> let through (``decide``, pure, constant time)
        any other token (with ``delegated``)   -> TokenReview (kubelet.authn): not valid -> 401,
                                                  (503 while the Secret is not read yet: it may be
                                                  the API server's); valid -> SubjectAccessReview
                                                  on nodes/<subresource> of this node: denied ->
                                                  403 ``Forbidden (user=..., verb=..., ...)``
        any other token (no ``delegated``)     -> 403, 503 while the Secret is not read yet

Tests that serve the kubelet's API without an API server pass ``fixed_token(TOKEN)`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from machinery.client import ApiClient
from machinery.informer import Informer
from machinery.kubeletauth import SECRET_NAME, SECRET_NAMESPACE, bearer_of, token_matches, token_of

from .authn import (
    DelegatedAuth,
    ReviewError,
    authorization_error_message,
    forbidden_message,
    request_attributes,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Denial:
    status: int
    message: str


# (Authorization header, method, path) -> None to let the request through, else the answer.
Authorize = Callable[[str | None, str, str], Awaitable["Denial | None"]]

UNAUTHORIZED = Denial(401, "Unauthorized")  # the kubelet's own answer
FORBIDDEN = Denial(403, "Forbidden: the bearer token presented is not the API server's")
NOT_READY = Denial(503, "the kubelet has not read its credential yet")


def decide(header: str | None, expected: str | None) -> Denial | None:
    """None when ``header`` (``Authorization``) carries the expected bearer token."""
    if expected is None:
        return NOT_READY
    presented = bearer_of(header)
    if presented is None:
        return UNAUTHORIZED
    return None if token_matches(presented, expected) else FORBIDDEN


def fixed_token(token: str) -> Authorize:
    """An ``authorize`` hook that accepts one known token (tests, or a token given by hand)."""
    async def authorize(header: str | None, _method: str = "GET", _path: str = "/") -> Denial | None:
        return decide(header, token)
    return authorize


class KubeletCredential:
    """Watches the API server's credential Secret and answers ``authorize`` for the kubelet's API."""

    def __init__(self, client: ApiClient, *, delegated: DelegatedAuth | None = None) -> None:
        self.token: str | None = None
        self.delegated = delegated
        self.secrets = Informer.for_kind(client, ("v1", "secrets"), namespace=SECRET_NAMESPACE,
                                         field_selector=f"metadata.name={SECRET_NAME}")
        self.secrets.add_handler(self._seen, lambda _old, new: self._seen(new), None)
        self._task: asyncio.Task[None] | None = None

    def _seen(self, secret: dict[str, Any]) -> None:
        token = token_of(secret)
        if token is None:
            log.warning("Secret %s/%s carries no token; keeping the last one", SECRET_NAMESPACE, SECRET_NAME)
            return
        if token != self.token:
            log.info("read the API server's credential (Secret %s/%s)", SECRET_NAMESPACE, SECRET_NAME)
        self.token = token

    async def authorize(self, header: str | None, method: str = "GET", path: str = "/") -> Denial | None:
        presented = bearer_of(header)
        if self.delegated is None or presented is None or token_matches(presented, self.token):
            return decide(header, self.token)
        try:
            user = await self.delegated.authenticate(presented)
        except ReviewError:
            return UNAUTHORIZED
        if user is None:
            return NOT_READY if self.token is None else UNAUTHORIZED
        attrs = request_attributes(method, path, self.delegated.node_name)
        try:
            allowed = await self.delegated.authorize(user, attrs)
        except ReviewError:
            return Denial(500, authorization_error_message(user, attrs))
        return None if allowed else Denial(403, forbidden_message(user, attrs))

    def start(self) -> None:
        if self._task is None:
            self._task = self.secrets.start()

    async def wait_read(self, timeout_s: float) -> bool:
        """Until the Secret's first list is in (the kubelet publishes its port after that, so the
        API server's first call is not refused with 503); False after ``timeout_s``."""
        if await self.secrets.wait_synced(timeout_s) and self.token is not None:
            return True
        log.warning("no API server credential (Secret %s/%s) yet: the kubelet's API answers 503 until it comes",
                    SECRET_NAMESPACE, SECRET_NAME)
        return False

    async def stop(self) -> None:
        self.secrets.stop()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


__all__ = ["Authorize", "Denial", "FORBIDDEN", "KubeletCredential", "NOT_READY", "UNAUTHORIZED", "decide",
           "fixed_token"]
