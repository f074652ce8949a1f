"""The API server's authenticator: Kubernetes' union of X.509, token file and ServiceAccount tokens.

Data flow: ``Credentials`` (the verified client certificate chain from the TLS layer, the bearer
token from ``Authorization: Bearer`` or a WebSocket subprotocol; ``middleware.py`` extracts them)
-> X.509 (``x509.py``) -> static tokens (``tokenfile.py``, kube-apiserver's --token-auth-file)
-> ServiceAccount JWTs (``serviceaccount.py``) -> the first that recognises the credential decides;
every identity gets ``system:authenticated`` (Kubernetes' AuthenticatedGroupAdder). No credential:
``None`` (the middleware answers 401, or serves a health path anonymously); a credential nobody
accepts raises ``AuthenticationError`` (401), as Kubernetes' union does ("invalid bearer token").

``authenticate_token`` also answers TokenReviews (``apiserver/reviews.py``) with the audiences the
token was accepted for: token-file tokens are audience-agnostic, valid only for the API audiences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from machinery.userinfo import ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo

from ..registry import Registry
from ..tokens import ServiceAccountKeys
from .errors import AuthenticationError
from .serviceaccount import ServiceAccountAuthenticator
from .tokenfile import TokenFileAuthenticator
from .x509 import user_from_chain

if TYPE_CHECKING:
    from ..server import ApiServerSettings


@dataclass(frozen=True)
class Credentials:
    bearer_token: str = ""
    client_cert_chain: tuple[str, ...] = ()


def with_authenticated_group(user: UserInfo) -> UserInfo:
    if user.name == ANONYMOUS or AUTHENTICATED in user.groups or UNAUTHENTICATED in user.groups:
        return user
    return UserInfo(name=user.name, uid=user.uid, groups=(*user.groups, AUTHENTICATED), extra=user.extra)


def _aggregate(messages: list[str]) -> str:
    """Go's utilerrors.NewAggregate: one error as itself, several as [a, b]."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


class Authenticator:
    def __init__(self, *, keys: ServiceAccountKeys, registry: Registry,
                 token_file: TokenFileAuthenticator | None = None, x509: bool = True) -> None:
        self.keys = keys
        self.token_file = token_file
        self.x509 = x509
        self.service_accounts = ServiceAccountAuthenticator(keys, registry)

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        problems: list[str] = []
        if self.x509 and credentials.client_cert_chain:
            try:
                user = user_from_chain(credentials.client_cert_chain)
                if user is not None:
                    return with_authenticated_group(user)
            except AuthenticationError as e:
                problems.append(str(e))
        if credentials.bearer_token:
            try:
                found = await self.authenticate_token(credentials.bearer_token)
                if found is not None:
                    return found[0]
                problems.append("invalid bearer token")
            except AuthenticationError as e:
                problems.append(str(e))
        if problems:
            raise AuthenticationError(_aggregate(problems))
        return None

    async def authenticate_token(self, token: str, audiences: tuple[str, ...] = (),
                                 ) -> tuple[UserInfo, list[str]] | None:
        """(user, the audiences it is valid for), None when no authenticator knows the token."""
        if self.token_file is not None:
            user = await self.token_file.authenticate_token(token)
            if user is not None:
                # Audience-agnostic (Kubernetes' WrapAudienceAgnosticToken): only for the API's audiences.
                matched = [a for a in (audiences or self.keys.api_audiences) if a in self.keys.api_audiences]
                if matched:
                    return with_authenticated_group(user), matched
        found = await self.service_accounts.authenticate_token(token, audiences)
        if found is None:
            return None
        return with_authenticated_group(found[0]), found[1]


def build_authenticator(settings: "ApiServerSettings", registry: Registry) -> Authenticator:
    """From the apiserver's flags; a bad token file or key file raises here, at start-up."""
    keys = ServiceAccountKeys(registry.storage, signing_key_file=settings.service_account_signing_key_file,
                              key_file=settings.service_account_key_file,
                              issuer=settings.service_account_issuer)
    token_file = TokenFileAuthenticator.load(settings.token_auth_file) if settings.token_auth_file else None
    return Authenticator(keys=keys, registry=registry, token_file=token_file, x509=bool(settings.client_ca_file))


def default_authenticator(registry: Registry) -> Authenticator:
    """In-process apps without flags: ServiceAccount tokens signed with the cluster's etcd key."""
    return Authenticator(keys=ServiceAccountKeys(registry.storage), registry=registry)


__all__ = ["AuthenticationError", "Authenticator", "Credentials", "build_authenticator", "default_authenticator",
           "with_authenticated_group"]
