"""The credential the API server presents to every kubelet (until real client certificates).

Data flow:

    apiserver start-up (apiserver.bootstrap): Secret kube-system/minik8s-kubelet-client exists, or
        is created with ``new_token()`` under data["token"] (base64, as every Secret); several API
        servers share the first one written (AlreadyExists -> read it).
    apiserver -> kubelet (pods/log, exec, attach, portforward, nodes/proxy, metrics): header
        ``Authorization: Bearer <token>`` (``authorization_header``).
    kubelet: watches that one Secret (field selector ``metadata.name``) and refuses every request
        but ``/healthz`` whose bearer token is not the Secret's (``token_matches``, constant time):
        401 without a token, 403 with a wrong one; 503 while it has not read the Secret yet.

So nobody who merely reaches a kubelet's port on the network can exec into its pods: they must go
through the API server. Until authentication and RBAC arrive (issue 14), any API client can read
the Secret, as any API client can exec through the API server anyway.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from typing import Any, Mapping

SECRET_NAMESPACE = "kube-system"
SECRET_NAME = "minik8s-kubelet-client"
TOKEN_KEY = "token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def secret_body(token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET_NAME, "namespace": SECRET_NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "minik8s-apiserver"},
                         "annotations": {"kubernetes.io/description":
                                         "the bearer token the API server presents to the kubelets"}},
            "data": {TOKEN_KEY: base64.b64encode(token.encode()).decode()}}


def token_of(secret: Mapping[str, Any] | None) -> str | None:
    """The token a Secret carries (None when absent or not decodable)."""
    if not secret:
        return None
    raw = (secret.get("data") or {}).get(TOKEN_KEY)
    if not isinstance(raw, str) or not raw:
        return None
    try:
        token = base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return token or None


def authorization_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bearer_of(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def token_matches(presented: str | None, expected: str | None) -> bool:
    if not presented or not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


__all__ = ["SECRET_NAME", "SECRET_NAMESPACE", "TOKEN_KEY", "authorization_header", "bearer_of", "new_token",
           "secret_body", "token_matches", "token_of"]
