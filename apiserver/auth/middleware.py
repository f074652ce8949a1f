"""The secure port's request pipeline: authentication, impersonation, authorization (pure ASGI).

Data flow per HTTP request or WebSocket handshake: ``credentials`` (the TLS layer's verified
client certificate chain in ``scope["extensions"]["tls"]["client_cert_chain"]``, the bearer token
from ``Authorization: Bearer`` or the ``base64url.bearer.authorization.k8s.io.<token>`` WebSocket
subprotocol, which is then removed from the offered list as Kubernetes does) -> the
``Authenticator`` -> no credential: the health paths (/healthz, /livez, /readyz and their
subpaths, /version) are served to ``system:anonymous``, anything else gets 401 (a WebSocket its
handshake answered with the 401); bad credentials: 401 everywhere -> ``Impersonate-*`` headers
(``impersonation.py``) -> ``request_attributes`` -> the authorizer: anything but ALLOW is a 403
with Kubernetes' message (``forbidden_status``) -> the app, with ``scope["state"]["user"]`` and
``["attributes"]`` set (the audit log reads them) and ``context.current_user`` set (admission and
the SelfSubject reviews read it). The credential headers are dropped before the app sees them, so
no proxy forwards them.

``insecure_app`` is the plain-HTTP port's wrapper: every request acts as INSECURE_SUPERUSER.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Callable
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from machinery import errors
from machinery.userinfo import ANONYMOUS, INSECURE_SUPERUSER, UNAUTHENTICATED, UserInfo

from ..app import status_response
from .attributes import Attributes, request_attributes
from .authn import Authenticator, Credentials
from .authorizer import Authorizer, Decision
from .context import current_user
from .errors import AuthenticationError, forbidden_status
from .impersonation import impersonate

log = logging.getLogger(__name__)

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
WS_BEARER_PREFIX = "base64url.bearer.authorization.k8s.io."
ANONYMOUS_USER = UserInfo(name=ANONYMOUS, groups=(UNAUTHENTICATED,))


def anonymous_path(path: str) -> bool:
    path = path.rstrip("/") or "/"
    return path == "/version" or any(path == p or path.startswith(p + "/") for p in HEALTH_PATHS)


# ------------------------------------------------------------------------------ pure parts
def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers") or [] if k.lower() == name]


def bearer_token(scope: Scope) -> str:
    """Kubernetes' bearertoken authenticator: ``Authorization: Bearer <token>`` (scheme case-insensitive)."""
    values = _header_values(scope, b"authorization")
    if not values:
        return ""
    parts = values[0].strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return ""
    return parts[1]


def websocket_token(protocols: list[str]) -> tuple[str, list[str]]:
    """(token, the other subprotocols) from ``base64url.bearer.authorization.k8s.io.<token>``."""
    token, others, seen = "", [], False
    for protocol in protocols:
        protocol = protocol.strip()
        if not protocol.startswith(WS_BEARER_PREFIX):
            others.append(protocol)
            continue
        if seen:
            raise AuthenticationError("multiple base64.bearer.authorization tokens specified")
        seen = True
        encoded = protocol[len(WS_BEARER_PREFIX):]
        try:
            token = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, ValueError):
            raise AuthenticationError("invalid base64.bearer.authorization token encoding") from None
    if token and not others:
        raise AuthenticationError("missing additional subprotocol")
    return token, others


def _client_chain(scope: Scope) -> tuple[str, ...]:
    tls = (scope.get("extensions") or {}).get("tls") or {}
    return tuple(tls.get("client_cert_chain") or ())


def _method_and_query(scope: Scope) -> tuple[str, dict[str, str]]:
    method = "GET" if scope["type"] == "websocket" else str(scope.get("method") or "GET")
    return method, dict(parse_qsl((scope.get("query_string") or b"").decode("latin-1"), keep_blank_values=True))


def _without_headers(scope: Scope, drop: Callable[[bytes], bool]) -> None:
    scope["headers"] = [(k, v) for k, v in scope.get("headers") or [] if not drop(k.lower())]


# ------------------------------------------------------------------------------ the ASGI wrappers
async def _refuse(scope: Scope, receive: Receive, send: Send, err: errors.ApiError) -> None:
    response = status_response(err)
    if scope["type"] == "http":
        await response(scope, receive, send)
        return
    ws = WebSocket(scope, receive, send)
    try:
        response.headers["Connection"] = "close"
        await ws.send_denial_response(response)
    except RuntimeError:  # the server cannot answer a handshake with a response: a plain refusal (403)
        await ws.close(code=1008, reason=err.message[:120])


class _Secure:
    def __init__(self, app: ASGIApp, authenticator: Authenticator, authorizer: Authorizer) -> None:
        self.app, self.authenticator, self.authorizer = app, authenticator, authorizer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            user, attributes = await self._identify(scope)
        except errors.ApiError as e:
            await _refuse(scope, receive, send, e)
            return
        except Exception as e:  # noqa: BLE001 - a bug here must answer a Status, never a traceback
            log.exception("authenticating %s", scope.get("path"))
            await _refuse(scope, receive, send, errors.InternalError(
                message=f"an internal error occurred: {type(e).__name__}"))
            return
        scope.setdefault("state", {})
        scope["state"]["user"], scope["state"]["attributes"] = user, attributes
        token = current_user.set(user)
        try:
            await self.app(scope, receive, send)
        finally:
            current_user.reset(token)

    async def _identify(self, scope: Scope) -> tuple[UserInfo, Attributes]:
        path = scope.get("path") or "/"
        method, query = _method_and_query(scope)
        try:
            offered = list(scope.get("subprotocols") or []) if scope["type"] == "websocket" else []
            ws_token, others = websocket_token(offered)
            credentials = Credentials(bearer_token=bearer_token(scope) or ws_token,
                                      client_cert_chain=_client_chain(scope))
            user = await self.authenticator.authenticate(credentials)
        except AuthenticationError as e:
            log.info("unauthorized %s %s: %s", method, path, e)
            raise errors.UnauthorizedError(message="Unauthorized") from None
        if user is None:
            if not anonymous_path(path):
                raise errors.UnauthorizedError(message="Unauthorized")
            return ANONYMOUS_USER, request_attributes(ANONYMOUS_USER, method, path, query)
        if ws_token:  # the token's subprotocol is not the app's to see or echo back
            scope["subprotocols"] = others
            _without_headers(scope, lambda k: k == b"sec-websocket-protocol")
            scope["headers"].append((b"sec-websocket-protocol", ", ".join(others).encode("latin-1")))
        user = impersonate(user, scope, self.authorizer)
        _without_headers(scope, lambda k: k == b"authorization" or k.startswith(b"impersonate-"))
        attributes = request_attributes(user, method, path, query)
        if not anonymous_path(path):
            decision, reason = self.authorizer.authorize(attributes)
            if decision is not Decision.ALLOW:
                # The audit log (outside) records who was refused and why, as Kubernetes does.
                state = scope.setdefault("state", {})
                state["user"], state["attributes"] = user, attributes
                annotations = state.setdefault("audit_annotations", {})
                annotations["authorization.k8s.io/decision"] = "forbid"
                if reason:
                    annotations["authorization.k8s.io/reason"] = reason
                raise forbidden_status(attributes, reason)
            if reason:
                scope.setdefault("state", {}).setdefault("audit_annotations", {})["authorization.k8s.io/reason"] = reason
        return user, attributes


def secure_app(app: ASGIApp, *, authenticator: Authenticator, authorizer: Authorizer) -> ASGIApp:
    return _Secure(app, authenticator, authorizer)


def insecure_app(app: ASGIApp) -> ASGIApp:
    """The plain-HTTP port (127.0.0.1, for tests): every request is the insecure superuser."""
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        method, query = _method_and_query(scope)
        scope.setdefault("state", {})
        scope["state"]["user"] = INSECURE_SUPERUSER
        scope["state"]["attributes"] = request_attributes(INSECURE_SUPERUSER, method, scope.get("path") or "/", query)
        token = current_user.set(INSECURE_SUPERUSER)
        try:
            await app(scope, receive, send)
        finally:
            current_user.reset(token)

    return wrapped


__all__ = ["anonymous_path", "bearer_token", "forbidden_status", "insecure_app", "secure_app", "websocket_token"]
