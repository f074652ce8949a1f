"""``minik8s console``: serves the page and relays its API requests as the logged-in user.

Data flow (see ``console/__init__.py`` for the whole picture):
    GET /, /static/*            -> console/static/ (the page: plain ES modules, no build step)
    GET /healthz                -> ok (anonymous, for docker-compose's health check)
    POST /console/login         -> console.sessions (token or kubeconfig -> SelfSubjectReview)
                                   -> Set-Cookie: the session id (HttpOnly, SameSite=Strict)
    GET /console/session        -> who is logged in (401 when nobody)
    POST /console/logout        -> the session dropped, the cookie cleared, its watch sockets closed
    GET /console/watch          -> WebSocket: every watch of the page over this one connection
                                   (console.watchmux; 401 Status without a session)
    /api, /apis, /version, /openapi (any method, WebSocket upgrades too)
                                -> 401 Status without a session; else console.upstream as that user

Cross-site requests: the session cookie is SameSite=Strict, and a request that changes something
(any method but GET/HEAD) or opens a WebSocket must come from this console's own origin (its
``Origin`` header, which browsers always send on those), so another site cannot act as a
logged-in user.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from console import watchmux
from console.sessions import LoginError, Sessions, Upstream, credential
from console.upstream import relay, relay_websocket
from machinery.kubeconfig import ClientConfig

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
COOKIE = "minik8s-console-session"
API_ROUTES = ("/api", "/api/{rest:.*}", "/apis", "/apis/{rest:.*}", "/version", "/openapi/{rest:.*}")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SESSIONS = web.AppKey("sessions", Sessions)
HTTP = web.AppKey("http", aiohttp.ClientSession)  # to the API server, shared by every user's requests


@dataclass(frozen=True)
class ConsoleSettings:
    server: ClientConfig  # the API server's address and CA (the console's own credential is not used)
    bind_address: str = "127.0.0.1"
    port: int = 9090
    idle_seconds: float = 12 * 3600
    max_watches: int = watchmux.MAX_WATCHES  # per watch socket (one a page)


def status(code: int, reason: str, message: str) -> web.Response:
    return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}, status=code,
                             dumps=lambda o: orjson.dumps(o).decode())


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return request.method in SAFE_METHODS and request.headers.get("Upgrade", "").lower() != "websocket"
    return origin == f"{request.scheme}://{request.host}"


def create_app(settings: ConsoleSettings) -> web.Application:
    upstream = Upstream(settings.server)
    sessions = Sessions(idle_seconds=settings.idle_seconds)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SESSIONS] = sessions
    sockets = watchmux.Sockets()

    async def client(app: web.Application):  # type: ignore[no-untyped-def]
        app[HTTP] = aiohttp.ClientSession(auto_decompress=False)
        yield
        await app[HTTP].close()
    app.cleanup_ctx.append(client)

    async def going_away(app: web.Application) -> None:
        await sockets.close_all()  # the pages see a close at once (and retry), not a stalled stop
    app.on_shutdown.append(going_away)

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def login(request: web.Request) -> web.Response:
        if not same_origin(request):
            return status(403, "Forbidden", "a login must come from the console's own page")
        try:
            body = await request.json(loads=orjson.loads)
        except (ValueError, orjson.JSONDecodeError):
            body = None
        try:
            identity = await upstream.identity(request.app[HTTP], credential(body))
        except LoginError as e:
            return status(e.status, "Unauthorized" if e.status == 401 else "BadRequest", str(e))
        sessions.drop(request.cookies.get(COOKIE))
        response = web.json_response(identity.public())
        response.set_cookie(COOKIE, sessions.create(identity), httponly=True, samesite="Strict", path="/",
                            secure=request.secure)
        log.info("%s logged in (%d sessions)", identity.username, len(sessions))
        return response

    async def session(request: web.Request) -> web.Response:
        identity = sessions.get(request.cookies.get(COOKIE))
        if identity is None:
            return status(401, "Unauthorized", "not logged in")
        return web.json_response(identity.public())

    async def logout(request: web.Request) -> web.Response:
        if not same_origin(request):
            return status(403, "Forbidden", "a logout must come from the console's own page")
        sessions.drop(request.cookies.get(COOKIE))
        await sockets.close(request.cookies.get(COOKIE))
        response = web.json_response({})
        response.del_cookie(COOKIE, path="/")
        return response

    async def api(request: web.Request) -> web.StreamResponse:
        identity = sessions.get(request.cookies.get(COOKIE))
        if identity is None:
            return status(401, "Unauthorized", "log in to the console first")
        if not same_origin(request):
            return status(403, "Forbidden", "a request that changes something must come from the console's own page")
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await relay_websocket(request, request.app[HTTP], upstream.url, identity)
        return await relay(request, request.app[HTTP], upstream.url, identity)

    async def watch(request: web.Request) -> web.StreamResponse:
        sid = request.cookies.get(COOKIE)
        identity = sessions.get(sid)
        if identity is None or sid is None:
            return status(401, "Unauthorized", "log in to the console first")
        if not same_origin(request):
            return status(403, "Forbidden", "the watch socket must be opened by the console's own page")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return status(400, "BadRequest", "/console/watch is a WebSocket (see console/watchmux.py)")
        return await watchmux.serve(request, request.app[HTTP], upstream.url, identity, sid=sid, sockets=sockets,
                                    alive=lambda: sessions.get(sid) is not None, max_watches=settings.max_watches)

    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/console/login", login)
    app.router.add_get("/console/session", session)
    app.router.add_post("/console/logout", logout)
    app.router.add_get("/console/watch", watch)
    app.router.add_static("/static/", STATIC, append_version=False)
    for route in API_ROUTES:
        app.router.add_route("*", route, api)
    return app


async def serve(settings: ConsoleSettings) -> None:
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.bind_address, settings.port)
    await site.start()
    log.info("console on http://%s:%d (API server %s)", settings.bind_address, settings.port, settings.server.server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def run(settings: ConsoleSettings) -> None:
    asyncio.run(serve(settings))
