"""TLS of ``minik8s ingress``: ``kubernetes.io/tls`` Secrets named in ``spec.tls``, chosen by SNI.

Data flow: our Ingresses (the route table's ``ours``) and the Secrets informer (``type=
kubernetes.io/tls`` only) -> ``tls_entries`` (pure: which hosts each Ingress's ``spec.tls`` entry
covers, the oldest Ingress first) -> ``Certificates.update`` builds one ``ssl.SSLContext`` per
Secret version (kept while the Secret's resourceVersion stays) and maps host names to them ->
the HTTPS listener's context calls ``Certificates._sni`` in each handshake and swaps in the
context of the server name (exact host, else ``*.parent``, else the certificate of an entry
without hosts, which is also the one for clients sending no SNI). No certificate for a name:
the handshake fails with ``unrecognized_name``.

``ssl`` loads certificates from files only: each PEM pair is written to a private temporary
directory, loaded and removed at once.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from .routes import normalize_host

log = logging.getLogger(__name__)

Obj = Mapping[str, Any]
TLS_SECRET_TYPE = "kubernetes.io/tls"


@dataclass(frozen=True)
class TLSEntry:
    hosts: tuple[str, ...]  # () : the default certificate
    namespace: str
    secret: str


def tls_entries(ingresses: Iterable[Obj]) -> list[TLSEntry]:
    """The ``spec.tls`` entries of ``ingresses`` (ours), oldest Ingress first."""
    def age(ing: Obj) -> tuple[str, str, str]:
        meta = ing.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))
    out = []
    for ing in sorted(ingresses, key=age):
        namespace = str((ing.get("metadata") or {}).get("namespace") or "default")
        for entry in (ing.get("spec") or {}).get("tls") or []:
            if entry.get("secretName"):
                hosts = tuple(normalize_host(h) for h in entry.get("hosts") or [] if h)
                out.append(TLSEntry(hosts, namespace, str(entry["secretName"])))
    return out


def _context_from_pem(cert: bytes, key: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory(prefix="minik8s-ingress-tls-") as tmp:
        cert_path, key_path = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx


class Certificates:
    """Host name -> SSLContext, replaced whole by ``update``; ``server_context()`` for the listener."""

    def __init__(self) -> None:
        self.by_host: dict[str, ssl.SSLContext] = {}
        self.default: ssl.SSLContext | None = None
        self._loaded: dict[tuple[str, str], tuple[str, ssl.SSLContext | None]] = {}

    def _load(self, secret: Obj) -> ssl.SSLContext | None:
        meta = secret.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        rv = str(meta.get("resourceVersion") or "")
        cached = self._loaded.get(key)
        if cached is not None and cached[0] == rv:
            return cached[1]
        ctx: ssl.SSLContext | None = None
        data = secret.get("data") or {}
        try:
            if secret.get("type") != TLS_SECRET_TYPE:
                raise ValueError(f"type is {secret.get('type')!r}, not {TLS_SECRET_TYPE}")
            ctx = _context_from_pem(base64.b64decode(data.get("tls.crt") or ""), base64.b64decode(data.get("tls.key") or ""))
        except (ValueError, ssl.SSLError, OSError) as e:
            log.warning("Secret %s/%s has no usable certificate: %s", key[0], key[1], e)
        self._loaded[key] = (rv, ctx)
        return ctx

    def update(self, ingresses: Iterable[Obj], secret: Callable[[str, str], Obj | None]) -> None:
        """Rebuild the host map from our Ingresses; ``secret(namespace, name)`` reads the cache."""
        by_host: dict[str, ssl.SSLContext] = {}
        default: ssl.SSLContext | None = None
        used: set[tuple[str, str]] = set()
        for entry in tls_entries(ingresses):
            found = secret(entry.namespace, entry.secret)
            if found is None:
                continue
            used.add((entry.namespace, entry.secret))
            ctx = self._load(found)
            if ctx is None:
                continue
            if not entry.hosts and default is None:
                default = ctx
            for host in entry.hosts:
                by_host.setdefault(host, ctx)
        self._loaded = {k: v for k, v in self._loaded.items() if k in used}
        self.by_host, self.default = by_host, default

    def lookup(self, server_name: str | None) -> ssl.SSLContext | None:
        if not server_name:
            return self.default
        name = normalize_host(server_name)
        found = self.by_host.get(name)
        if found is None:
            _, dot, parent = name.partition(".")
            found = self.by_host.get(f"*.{parent}") if dot and parent else None
        return found or self.default

    def _sni(self, sslobj: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> int | None:
        found = self.lookup(server_name)
        if found is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = found
        return None

    def server_context(self) -> ssl.SSLContext:
        """The listener's context: it holds no certificate itself, SNI picks one per handshake."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.sni_callback = self._sni
        return ctx


__all__ = ["Certificates", "TLSEntry", "TLS_SECRET_TYPE", "tls_entries"]
