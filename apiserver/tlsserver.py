"""The API server's listeners: HTTPS with client certificates, and the plain-HTTP port, in one event loop.

Data flow: ``server.run`` -> ``listener_config`` per listener (the secure one with the serving
pair, the client CA and this module's protocol classes; the plain one as before) -> ``serve``
runs the app's lifespan once (caches, bootstrap), then every listener, until SIGINT/SIGTERM.

uvicorn verifies a client certificate against the client CA during the handshake (CERT_OPTIONAL:
a client without one still connects and may use a token) but does not tell the app which
certificate it was. The two protocol classes below read it from the connection's SSL object and
put it into each request's scope as the ASGI TLS extension (``scope["extensions"]["tls"]
["client_cert_chain"]``: PEM strings, leaf first), for HTTP requests and for WebSockets
(exec, attach, port-forward) alike; the X.509 authenticator reads it from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import uvicorn
from cryptography import x509
from uvicorn.lifespan.on import LifespanOn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto import events

log = logging.getLogger(__name__)

# ASGI TLS extension's tls_version: the TLS protocol number (RFC 8446 appendix B.1)
_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


@dataclass(frozen=True)
class TLSFiles:
    """The serving pair and, optionally, the CA whose client certificates are accepted."""

    cert_file: str
    key_file: str
    client_ca_file: str = ""


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, or None on plain HTTP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    name = None
    if der:
        with contextlib.suppress(ValueError):
            name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    return {"server_cert": None, "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
            "client_cert_name": name, "client_cert_error": None,
            "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""), "cipher_suite": None}


def client_cert_chain(scope: Any) -> list[str]:
    """The verified client certificate chain (PEM, leaf first) of a request's scope; [] without one."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    return list(tls.get("client_cert_chain") or [])


class TLSHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol that adds the TLS extension to every request's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            extensions: dict[str, Any] = {"tls": dict(self._tls)}
            self.scope["extensions"] = extensions


class TLSWSProtocol(WSProtocol):
    """uvicorn's wsproto WebSocket protocol that adds the TLS extension to the connection's scope."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._tls = tls_extension(transport)

    def handle_connect(self, event: events.Request) -> None:
        super().handle_connect(event)  # builds the scope and schedules the app, which has not run yet
        if self._tls is not None:
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions["tls"] = dict(self._tls)


def listener_config(app: Any, *, host: str, port: int, tls: TLSFiles | None = None,
                    log_level: str = "info") -> uvicorn.Config:
    """uvicorn's settings for one listener of ``app`` (no lifespan: ``serve`` runs it once for all)."""
    # Idle connections stay open longer than clients keep them (Go's 90 s IdleConnTimeout): with
    # uvicorn's default 5 s, kubectl drain's POST after its 5 s retry pause raced the server's close (EOF).
    # WebSockets (pods/exec|attach|portforward) through wsproto: uvicorn's websockets implementation
    # refuses kubectl's port-forward subprotocol "SPDY/3.1+portforward.k8s.io" (not an HTTP token).
    common: dict[str, Any] = dict(host=host, port=port, log_level=log_level, lifespan="off",
                                  timeout_graceful_shutdown=3, timeout_keep_alive=120)
    if tls is None:
        return uvicorn.Config(app, ws="wsproto", **common)
    return uvicorn.Config(app, http=TLSHttpToolsProtocol, ws=TLSWSProtocol, ssl_certfile=tls.cert_file,
                          ssl_keyfile=tls.key_file, ssl_ca_certs=tls.client_ca_file or None,
                          ssl_cert_reqs=ssl.CERT_OPTIONAL if tls.client_ca_file else ssl.CERT_NONE, **common)


class _Listener(uvicorn.Server):
    """A uvicorn server that leaves the signals to ``serve`` (which stops every listener)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(lifespan_app: Any, configs: Sequence[uvicorn.Config], *, log_level: str = "info") -> None:
    """Run ``lifespan_app``'s start-up, then every listener until SIGINT/SIGTERM, then its shut-down.

    A signal during the start-up (e.g. while etcd is still away) ends the process at once."""
    loop = asyncio.get_running_loop()
    servers = [_Listener(c) for c in configs]
    stopping = asyncio.Event()

    def stop() -> None:
        stopping.set()
        for s in servers:
            s.force_exit = s.should_exit  # a second signal: do not wait for open connections
            s.should_exit = True

    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stop)
    try:
        lifespan = LifespanOn(uvicorn.Config(lifespan_app, lifespan="on", log_level=log_level))
        started = asyncio.ensure_future(lifespan.startup())
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({started, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not started.done():
            log.info("stopped during start-up")
            # The loop's end cancels the start-up; starlette reports that as a failed start-up with a
            # traceback through uvicorn's logger, which would only alarm whoever reads the log.
            logging.getLogger("uvicorn.error").disabled = True
            return
        if lifespan.should_exit:
            raise SystemExit(3)
        await asyncio.gather(*(s.serve() for s in servers))
        await lifespan.shutdown()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


__all__ = ["TLSFiles", "TLSHttpToolsProtocol", "TLSWSProtocol", "client_cert_chain", "listener_config", "serve",
           "tls_extension"]
