"""A component's health and metrics endpoints: ``GET /healthz`` (``/livez``, ``/readyz``) and ``/metrics``.

Data flow: a process (scheduler on 10259, controller-manager on 10257, as in Kubernetes but plain
HTTP; proxy, dns and ingress on their health ports) calls ``serve_healthz(host, port, checks,
client=...)`` -> an aiohttp app answers the health paths by running the named checks (each
returns None when healthy, else the reason) -> 200 ``ok`` or 500 with one ``[-]name failed:
reason`` line per failed check, like Kubernetes' healthz; docker-compose's health checks and
``minik8s healthcheck URL`` read it. The health paths are anonymous (kube-scheduler's
AlwaysAllowPaths).

``GET /metrics`` answers the process's Prometheus registry (``machinery.metrics.exposition``).
When the component's client presents a credential to the API server, the scrape must too, as
kube-scheduler's delegated authentication and authorization: its bearer token goes to a
TokenReview and the user to a SubjectAccessReview for the non-resource URL ``/metrics``, verb
``get`` (``machinery.delegatedauth``, answers cached) -> 401 / 403 / 500 as Kubernetes' Status.
A component started without a credential (plain HTTP to an insecure API server) serves it openly.

A port that is taken is logged, not fatal: the component still works, only its probe does not.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable, Mapping

import orjson
from aiohttp import web

from machinery import errors
from machinery.client import ApiClient
from machinery.delegatedauth import DelegatedAuth, NonResource, has_credential
from machinery.metrics import exposition

log = logging.getLogger(__name__)

METRICS = NonResource("get", "/metrics")

Check = Callable[[], "str | None"]


def render(checks: Mapping[str, Check], *, verbose: bool = False) -> tuple[int, str]:
    """(status, body) for the checks, Kubernetes' healthz text format."""
    lines, failed = [], False
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as e:  # a broken check is a failed check, never a 500 with a traceback
            reason = f"{type(e).__name__}: {e}"
        if reason is None:
            lines.append(f"[+]{name} ok")
        else:
            failed = True
            lines.append(f"[-]{name} failed: {reason}")
    if failed:
        return 500, "\n".join(lines) + "\nhealthz check failed\n"
    return 200, ("\n".join(lines) + "\nhealthz check passed\n") if verbose else "ok"


def _status_response(error: errors.ApiError) -> web.Response:
    return web.Response(status=error.code, body=orjson.dumps(error.to_status()), content_type="application/json")


def metrics_auth(client: ApiClient | None) -> DelegatedAuth | None:
    """Who checks a scrape: the API server, through ``client``, when it carries a credential; else
    nobody (the scrape is open)."""
    return DelegatedAuth(client) if client is not None and has_credential(client.config) else None


def metrics_handler(auth: DelegatedAuth | None) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def metrics(request: web.Request) -> web.Response:
        try:
            refused = await auth.check_bearer(request.headers.get("Authorization"), METRICS) if auth else None
            if refused is not None:
                return _status_response(refused)
            body, content_type = exposition(request.headers.get("Accept"))
        except Exception as e:  # a broken collector or review: a Status, never a traceback
            log.exception("serving /metrics")
            return _status_response(errors.InternalError(message=f"serving the metrics failed: {e}"))
        return web.Response(body=body, headers={"Content-Type": content_type})
    return metrics


async def serve_healthz(host: str, port: int, checks: Mapping[str, Check], *,
                        client: ApiClient | None = None) -> web.AppRunner | None:
    """Serve the checks and /metrics on ``host:port``; None (and a logged error) when it cannot listen.
    ``client``: the component's API client, whose credential decides whether /metrics is guarded."""
    all_checks: dict[str, Check] = {"ping": lambda: None, **checks}

    async def handle(request: web.Request) -> web.Response:
        status, body = render(all_checks, verbose="verbose" in request.query)
        return web.Response(status=status, text=body, content_type="text/plain")

    app = web.Application()
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, handle)
    app.router.add_get("/metrics", metrics_handler(metrics_auth(client)))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        log.error("cannot serve /healthz on %s:%d: %s", host, port, e)
        await runner.cleanup()
        return None
    log.info("health checks on http://%s:%d/healthz", host, port)
    return runner


__all__ = ["Check", "METRICS", "metrics_auth", "metrics_handler", "render", "serve_healthz"]
