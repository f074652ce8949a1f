"""Logins and sessions of the web console: whose credential the proxy presents to the API server.

Data flow: ``/console/login`` body ``{"token": T}`` or ``{"kubeconfig": YAML}`` -> ``credential``
(pure: which token, or which embedded client certificate; anything else is a ``LoginError``
naming what is missing) -> ``Upstream.identity`` builds the user's ``ClientConfig`` against the
console's own API server (its address and CA: a kubeconfig's server is not followed) and posts a
SelfSubjectReview with it: 201 -> ``Identity`` (the user's name and groups as the API server
sees them), 401 -> ``LoginError`` with the API server's message -> ``Sessions.create`` keeps the
identity under a random id (the cookie's value; never the credential itself) until logout or
``idle_seconds`` without a request.
"""

from __future__ import annotations

import dataclasses
import secrets
import ssl
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from machinery.kubeconfig import ClientConfig, KubeconfigError, load_config

SELF_SUBJECT_REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


class LoginError(Exception):
    """A login that is refused; the message says why, for the person logging in."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credential:
    """What the user presented: a bearer token, or a client certificate and its key (PEM)."""

    token: str | None = field(default=None, repr=False)
    cert_pem: bytes | None = field(default=None, repr=False)
    key_pem: bytes | None = field(default=None, repr=False)


def credential(body: Any) -> Credential:
    """The credential of a login body (``token`` or ``kubeconfig``), or a LoginError saying what is wrong."""
    if not isinstance(body, dict):
        raise LoginError("the login must be a JSON object with a token or a kubeconfig", 400)
    token = body.get("token")
    if isinstance(token, str) and token.strip():
        return Credential(token=token.strip())
    text = body.get("kubeconfig")
    if not isinstance(text, str) or not text.strip():
        raise LoginError("log in with a bearer token or a kubeconfig", 400)
    try:
        yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LoginError(f"the kubeconfig is not YAML: {e}", 400) from e
    # Parsed by the same code as kubectl's flags; a path in it would be one of this machine's
    # files, not the user's, so it is read in an empty folder and only embedded data counts.
    with tempfile.TemporaryDirectory(prefix="minik8s-console-") as tmp:
        path = Path(tmp) / "kubeconfig"
        path.write_text(text)
        try:
            cfg = load_config(kubeconfig=str(path))
        except KubeconfigError as e:
            raise LoginError(f"the kubeconfig cannot be used: {e}", 400) from e
    if cfg.token:
        return Credential(token=cfg.token)
    if cfg.cert_data and cfg.key_data:
        return Credential(cert_pem=cfg.cert_data, key_pem=cfg.key_data)
    if cfg.cert_file or cfg.key_file:
        raise LoginError("the kubeconfig names its client certificate by file: embed it "
                         "(kubectl config view --raw --flatten --minify)", 400)
    context = f'context "{cfg.context}"' if cfg.context else "the kubeconfig (no current context)"
    raise LoginError(f"{context} has no token and no client certificate", 400)


@dataclass(frozen=True)
class Identity:
    """A logged-in user: who the API server says it is, and how to present its credential."""

    username: str
    groups: tuple[str, ...]
    config: ClientConfig = field(repr=False)
    ssl: ssl.SSLContext | bool = field(repr=False, compare=False)

    @property
    def headers(self) -> dict[str, str]:
        return self.config.auth_headers

    @property
    def token(self) -> str | None:
        return self.config.token

    def public(self) -> dict[str, Any]:
        return {"username": self.username, "groups": list(self.groups)}


class Upstream:
    """The console's API server: its address and CA (from the console's own flags)."""

    def __init__(self, base: ClientConfig) -> None:
        self.base = base

    @property
    def url(self) -> str:
        return self.base.server

    def config_for(self, cred: Credential) -> ClientConfig:
        return dataclasses.replace(self.base, token=cred.token, username=None, password=None, cert_file=None,
                                   key_file=None, cert_data=cred.cert_pem, key_data=cred.key_pem, headers={})

    async def identity(self, http: aiohttp.ClientSession, cred: Credential) -> Identity:
        """Who the API server says this credential is (a SelfSubjectReview), or a LoginError."""
        cfg = self.config_for(cred)
        try:
            tls = cfg.verify
        except (ssl.SSLError, OSError, ValueError) as e:
            raise LoginError(f"the client certificate cannot be used: {e}", 400) from e
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            async with http.post(cfg.server + SELF_SUBJECT_REVIEW, json=body, headers=cfg.auth_headers,
                                 ssl=tls, timeout=aiohttp.ClientTimeout(total=15)) as r:
                answer = await r.json(content_type=None)
                status = r.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise LoginError(f"the API server at {cfg.server} cannot be reached: {e}", 502) from e
        if status == 401:
            raise LoginError(f"the API server refused this credential: {answer.get('message') or 'Unauthorized'}")
        if status >= 300:
            raise LoginError(f"the API server answered {status}: {answer.get('message') or ''}".rstrip(": "), 502)
        info = (answer.get("status") or {}).get("userInfo") or {}
        if not info.get("username"):
            raise LoginError("the API server did not say who this credential is")
        return Identity(str(info["username"]), tuple(info.get("groups") or ()), cfg, tls)


class Sessions:
    """Logged-in users by session id (in memory: a restarted console asks everyone to log in again)."""

    def __init__(self, *, idle_seconds: float = 12 * 3600, clock: Any = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._by_id: dict[str, tuple[Identity, float]] = {}

    def create(self, identity: Identity) -> str:
        self._expire()
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = (identity, self._clock())
        return sid

    def get(self, sid: str | None) -> Identity | None:
        if not sid:
            return None
        found = self._by_id.get(sid)
        if found is None or self._clock() - found[1] > self.idle_seconds:
            self._by_id.pop(sid, None)
            return None
        self._by_id[sid] = (found[0], self._clock())
        return found[0]

    def drop(self, sid: str | None) -> None:
        if sid:
            self._by_id.pop(sid, None)

    def __len__(self) -> int:
        return len(self._by_id)

    def _expire(self) -> None:
        now = self._clock()
        for sid in [s for s, (_, used) in self._by_id.items() if now - used > self.idle_seconds]:
            del self._by_id[sid]
