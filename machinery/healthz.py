"""A component's health endpoint: ``GET /healthz`` (and ``/livez``, ``/readyz``) on its own port.

Data flow: a process (scheduler on 10259, controller-manager on 10257, as in Kubernetes but plain
HTTP) calls ``serve_healthz(host, port, checks)`` -> an aiohttp app answers every request by
running the named checks (each returns None when healthy, else the reason) -> 200 ``ok`` or
500 with one ``[-]name failed: reason`` line per failed check, like Kubernetes' healthz.
docker-compose's health checks and ``minik8s healthcheck URL`` read it.

A port that is taken is logged, not fatal: the component still works, only its probe does not.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from aiohttp import web

log = logging.getLogger(__name__)

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


async def serve_healthz(host: str, port: int, checks: Mapping[str, Check]) -> web.AppRunner | None:
    """Serve the checks on ``host:port``; None (and a logged error) when it cannot listen."""
    all_checks: dict[str, Check] = {"ping": lambda: None, **checks}

    async def handle(request: web.Request) -> web.Response:
        status, body = render(all_checks, verbose="verbose" in request.query)
        return web.Response(status=status, text=body, content_type="text/plain")

    app = web.Application()
    for path in ("/healthz", "/livez", "/readyz"):
        app.router.add_get(path, handle)
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


__all__ = ["Check", "render", "serve_healthz"]
