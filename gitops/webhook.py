"""The gitops webhook receiver: a push to the repository triggers a sync of its GitSync at once.

Data flow (a push to a repository that a GitSync ``web`` in namespace ``apps`` follows):

    GitHub / GitLab / a generic HMAC sender
        -> POST http://HOST:9292/hooks/apps/web   (raw body, signature or token header)
        -> this app: body read up to ``max_body_bytes`` (413 beyond)
                     -> secret_for("apps", "web") -> the GitSync's webhook secret, or None
                     -> gitops.hooks.authenticate(headers, body, secret) -> Verdict
                     -> rate limits (per GitSync and global) -> trigger("apps", "web") -> 202

``trigger`` only asks the reconciler to sync now (it puts the key on the work queue); the
reconciler still polls every interval, so a lost or refused webhook delays a sync, never stops
it. The body itself is not read for anything: which commit to sync is the reconciler's business.

Endpoints:

    POST /hooks/{namespace}/{name}   202 sync triggered; 200 for a GitHub ping (nothing triggered)
                                     401 not authenticated; 413 body too large; 429 rate-limited
                                     (Retry-After); 405 any other method; 503 secret lookup failed
    GET  /healthz                    "ok"
    GET  /metrics                    the process's Prometheus metrics (gitops.metrics and the process
                                     collectors), when the server hands a handler in (machinery.healthz's:
                                     a bearer token reviewed by the API server, or open without a credential)

Every refusal of authentication is the same 401 body, whether the GitSync does not exist, has no
webhook secret, its Secret or ``token`` is missing, no signature header was sent or the signature
is wrong: a caller without the secret cannot probe which GitSyncs exist. The log says which it was
(at info level, and never the secret, a signature or a token).

Rate limits are token buckets (``gitops.hooks.RateLimiter``) on the injected ``clock``:
authenticated requests take from their GitSync's bucket and from one global bucket; requests that
fail authentication (or are too large) take from their client address's bucket instead, and once
that is empty they are answered 429. A flood of bad signatures therefore never empties a
GitSync's bucket, and a good request is never refused because of its address: senders share
addresses (GitHub's delivery hosts, a proxy or ingress in front of this port).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import orjson
from aiohttp import HttpVersion11, hdrs, web

from .hooks import RateLimiter, TokenBucket, authenticate, detect_sender, retry_after_header

log = logging.getLogger(__name__)

SecretLookup = Callable[[str, str], Awaitable["bytes | None"]]
"""(namespace, name) -> the GitSync's webhook secret (the decoded ``data.token`` of the Secret that
``spec.webhook.secretRef.name`` names), or None: unknown GitSync, no secret configured, Secret
missing or without ``token``. Called for every request that carries a signature header, so it
should read an informer cache, not the API server."""

Trigger = Callable[[str, str], None]
"""(namespace, name): sync this GitSync now. Must not block (put the key on the work queue)."""

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class WebhookSettings:
    bind_address: str = "0.0.0.0"
    port: int = 9292  # Flux's receiver port
    max_body_bytes: int = 1 << 20
    # Token buckets: burst (the bucket's size) and rate (tokens per second).
    per_sync_burst: int = 10
    per_sync_rate: float = 1.0
    global_burst: int = 100
    global_rate: float = 20.0
    per_client_burst: int = 20
    per_client_rate: float = 2.0
    # How many client addresses the per-client limiter remembers (memory stays bounded in a flood).
    max_clients: int = 10_000


# Kubernetes' names: a namespace is a DNS-1123 label, a GitSync's name a DNS-1123 subdomain. Other
# path segments are refused before any lookup, and never echoed into the log.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _valid_names(namespace: str, name: str) -> bool:
    return bool(_LABEL.fullmatch(namespace)) and len(name) <= 253 and bool(_SUBDOMAIN.fullmatch(name))


def _status(code: int, message: str, *, reason: str | None = None,
            headers: dict[str, str] | None = None) -> web.Response:
    """A Kubernetes ``Status`` body, as every other minik8s endpoint answers: a failure when it has
    a ``reason``, else a success."""
    body: dict[str, object] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                               "status": "Success" if reason is None else "Failure", "message": message}
    if reason is not None:
        body["reason"] = reason
    body["code"] = code
    return web.Response(status=code, body=orjson.dumps(body), content_type="application/json", headers=headers)


def _unauthorized() -> web.Response:
    # One body for every failed authentication (see the module docstring: names cannot be probed).
    return _status(401, "unauthorized", reason="Unauthorized")


def _too_large(limit: int) -> web.Response:
    resp = _status(413, f"the request body is larger than {limit} bytes", reason="RequestEntityTooLarge")
    # The rest of the body is never read into memory: aiohttp discards it for at most the runner's
    # lingering time (so the client still reads this answer), then the connection is closed.
    resp.force_close()
    return resp


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it is longer than ``limit`` (a chunked body has no Content-Length
    to check first, so the read itself stops)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def make_app(*, secret_for: SecretLookup, trigger: Trigger, settings: WebhookSettings,
             clock: Callable[[], float] = time.monotonic, metrics: Handler | None = None) -> web.Application:
    """The receiver's aiohttp app (serve it with ``serve``); ``metrics`` answers GET /metrics."""
    per_sync = RateLimiter(burst=settings.per_sync_burst, rate=settings.per_sync_rate)
    everyone = TokenBucket(burst=settings.global_burst, rate=settings.global_rate, now=clock())
    per_client = RateLimiter(burst=settings.per_client_burst, rate=settings.per_client_rate,
                             max_keys=settings.max_clients)
    limit = settings.max_body_bytes

    def declared_too_large(request: web.Request) -> bool:
        return request.content_length is not None and request.content_length > limit

    def refuse(client: str, what: str, why: str) -> web.Response:
        """401 for a request that failed authentication, or 429 once its client sent too many."""
        wait = per_client.take(client, clock())
        if wait > 0:
            # debug only: a flood must not flood the log as well
            log.debug("webhook from %s for %s refused (%s); client rate-limited", client, what, why)
            return _status(429, "too many requests", reason="TooManyRequests",
                           headers={hdrs.RETRY_AFTER: retry_after_header(wait)})
        log.info("webhook from %s for %s refused: %s", client, what, why)
        return _unauthorized()

    async def expect(request: web.Request) -> web.StreamResponse | None:
        # Expect: 100-continue (curl, some proxies): refuse a declared oversized body before it is sent.
        if declared_too_large(request):
            return _too_large(limit)
        if request.version == HttpVersion11 and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # as aiohttp's own expect handler: the 100 is not the body
            return None
        raise web.HTTPExpectationFailed(text="unknown Expect header")

    async def receive(request: web.Request) -> web.Response:
        if request.method != hdrs.METH_POST:
            return _status(405, f"{request.method} is not allowed; webhooks are POSTed", reason="MethodNotAllowed",
                           headers={hdrs.ALLOW: hdrs.METH_POST})
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        client = request.remote or "unknown"
        valid = _valid_names(namespace, name)
        what = f"{namespace}/{name}" if valid else "an invalid GitSync name"

        body = None if declared_too_large(request) else await _read_capped(request, limit)
        if body is None:
            per_client.take(client, clock())  # an oversized body is as unauthenticated as a bad signature
            log.info("webhook from %s for %s refused: body larger than %d bytes", client, what, limit)
            return _too_large(limit)

        secret: bytes | None = None
        # No lookup without a signature header (nothing to check it against) or for a name that
        # cannot exist: such requests cost nothing but the read.
        if valid and detect_sender(request.headers):
            try:
                secret = await secret_for(namespace, name)
            except Exception as e:  # noqa: BLE001 - answered 503; the reconciler still polls
                # The type only: an error's text could quote the object it failed on.
                log.warning("webhook for %s: looking up its secret failed (%s)", what, type(e).__name__)
                return _status(503, "the webhook secret could not be read; try again later",
                               reason="ServiceUnavailable")
        verdict = authenticate(request.headers, body, secret)
        if not verdict.ok:
            why = verdict.reason
            if secret is None and verdict.sender and valid:
                why = ("no webhook secret (no such GitSync, no spec.webhook.secretRef, "
                       "or its Secret or its token missing)")
            return refuse(client, what, f"{verdict.sender or 'unknown sender'}: {why}")

        now = clock()
        key = (namespace, name)
        wait = max(per_sync.retry_after(key, now), everyone.retry_after(now))
        if wait > 0:
            log.info("webhook from %s (%s) for %s rate-limited for %.1f s", client, verdict.sender, what, wait)
            return _status(429, "too many requests", reason="TooManyRequests",
                           headers={hdrs.RETRY_AFTER: retry_after_header(wait)})
        # Both buckets had a token (checked above, no await since): take them together, so that a
        # request refused by the global limit never spends its GitSync's token.
        per_sync.take(key, now)
        everyone.take(now)

        if verdict.ping:
            log.info("webhook ping from %s (%s) for %s", client, verdict.sender, what)
            return _status(200, "pong")
        try:
            trigger(namespace, name)
        except Exception:  # noqa: BLE001 - answered 500; the reconciler still polls
            log.exception("webhook for %s: triggering the sync failed", what)
            return _status(500, "the sync could not be triggered", reason="InternalError")
        log.info("webhook from %s (%s) triggers a sync of %s", client, verdict.sender, what)
        return _status(202, "sync triggered")

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    # The body is read by receive() itself, capped; client_max_size guards request.read() anyway.
    app = web.Application(client_max_size=limit)
    app.router.add_route("*", "/hooks/{namespace}/{name}", receive, expect_handler=expect)
    app.router.add_get("/healthz", healthz)
    if metrics is not None:
        app.router.add_get("/metrics", metrics)
    return app


async def serve(app: web.Application, *, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serves ``app`` on ``host:port`` (port 0: any free port) and returns the runner
    (``await runner.cleanup()`` stops it) and the port it listens on. Raises OSError when it
    cannot listen; the caller decides (the reconciler still polls without webhooks)."""
    # lingering_time: how long the unread rest of a refused body is drained (and discarded) so the
    # client reads the 413 instead of a connection reset; short, so a slow sender cannot hold on.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0, lingering_time=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    actual = port
    for address in runner.addresses:
        actual = int(address[1])
        break
    log.info("gitops webhook receiver on http://%s:%d/hooks/{namespace}/{name}", host, actual)
    return runner, actual


__all__ = ["Handler", "SecretLookup", "Trigger", "WebhookSettings", "make_app", "serve"]
