"""The kubelet's own HTTP API: container logs, resource stats, and the streaming routes (exec,
attach, port-forward) for the API server.

Data flow (``kubectl logs -f web``):

    kubectl -> apiserver GET /api/v1/namespaces/NS/pods/web/log?follow=true
            -> (apiserver.nodeproxy) GET http://NODE-IP:PORT/containerLogs/NS/web/CONTAINER?follow=true
            -> this app: resolve(NS, web, CONTAINER) -> (current id, previous id)
            -> runtime.logs / runtime.follow_logs (Docker) -> text/plain stream back

Endpoints (the real kubelet's paths and query parameters); every one but /healthz needs
``Authorization: Bearer <token>``: the API server's credential, or a token the API server's
TokenReview accepts whose user a SubjectAccessReview lets at nodes/<subresource> (the ``authorize``
hook: kubelet.credential; 401 without a valid token, 403 without the grant):

    GET /healthz                                  "ok"
    GET /containerLogs/{namespace}/{pod}/{container}
        ?follow=true&tailLines=N&sinceSeconds=N&sinceTime=RFC3339&timestamps=true
        &previous=true&limitBytes=N
    GET /stats/summary                            resource usage per pod and container (JSON; with a StatsSource)
    GET /metrics/resource                         the same as Prometheus text
    GET /metrics                                  the kubelet's own Prometheus metrics (kubelet.metrics:
                                                  pod start latency, runtime operations, running pods)
    GET|POST /exec|attach/{namespace}/{pod}/{container}, /portforward/{namespace}/{pod}
                                                  WebSocket streams (kubelet.streaming, with a
                                                  StreamingContext: kubelet.streamingctx)

The kubelet tells this app which Docker container is "the" container of a pod through
``resolve(namespace, pod, container) -> (current id, previous id or None)``; it raises
``LogsUnavailable(message, status)`` when it cannot answer (404: unknown pod or container; 400:
``container "c" in pod "p" is waiting to start: ContainerCreating``). The message is answered as
``text/plain`` with that status and the API server turns it into a Kubernetes ``Status``.

Every short blocking engine call (``runtime.logs``, ``inspect``, ``list``) runs through
``run_blocking``, the kubelet's thread pool (kubelet.blocking). ``runtime.follow_logs`` is a
blocking iterator: each follow gets a daemon thread of its own (kubelet.logfollow; never a pool's
thread, which a quiet container would hold forever).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping, Protocol

from aiohttp import web

from machinery.metrics import exposition
from machinery.timefmt import parse_rfc3339

from .blocking import RunBlocking
from .credential import Authorize
from .cri import (
    LABEL_CONTAINER_NAME,
    LABEL_NODE,
    LABEL_POD_NAME,
    LABEL_POD_NAMESPACE,
    LABEL_ROLE,
    ROLE_CONTAINER,
    ContainerInfo,
    ContainerNotFound,
    ContainerRuntime,
    ContainerRuntimeError,
    RuntimeUnavailable,
)
from .logfollow import follow, interrupt_follow
from .streaming.context import StreamingContext
from .streaming.routes import add_routes as add_streaming_routes

log = logging.getLogger(__name__)

Resolver = Callable[[str, str, str], Awaitable[tuple[str, "str | None"]]]


class StatsSource(Protocol):
    """Resource metrics for ``/stats/summary`` and ``/metrics/resource`` (``kubelet.statscollect``)."""

    async def summary(self) -> dict[str, Any]: ...
    async def resource_metrics(self) -> str: ...


class LogsUnavailable(Exception):
    """Raised by a resolver: no logs for that container. ``status`` is the HTTP answer (404 for an
    unknown pod or container, 400 for a container that exists in the spec but never ran)."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def waiting_to_start(pod: str, container: str, reason: str = "ContainerCreating") -> LogsUnavailable:
    """The real kubelet's answer for a container that has not run yet (kubectl shows it as is)."""
    return LogsUnavailable(f'container "{container}" in pod "{pod}" is waiting to start: {reason}', 400)


# ---------------------------------------------------------------------------------------------
# Query parameters (PodLogOptions)


def _flag(q: Mapping[str, str], name: str) -> bool:
    return q.get(name, "").lower() in ("1", "true", "yes")


def _nonneg(q: Mapping[str, str], name: str, *, minimum: int = 0) -> int | None:
    raw = q.get(name, "")
    if raw == "":
        return None
    try:
        v = int(raw)
    except ValueError:
        raise LogsUnavailable(f'invalid value for {name}: "{raw}" is not an integer', 400)
    if v < minimum:
        raise LogsUnavailable(f"invalid value for {name}: must be >= {minimum}", 400)
    return v


class LogOptions:
    """Parsed PodLogOptions of one request."""

    def __init__(self, q: Mapping[str, str]) -> None:
        self.follow = _flag(q, "follow")
        self.previous = _flag(q, "previous")
        self.timestamps = _flag(q, "timestamps")
        self.tail = _nonneg(q, "tailLines")
        self.limit = _nonneg(q, "limitBytes", minimum=1)
        since_seconds = _nonneg(q, "sinceSeconds", minimum=1)
        since_time = q.get("sinceTime", "")
        if since_seconds is not None and since_time:
            raise LogsUnavailable("at most one of sinceTime or sinceSeconds may be specified", 400)
        self.since: datetime | float | None = None
        if since_seconds is not None:
            self.since = time.time() - since_seconds
        elif since_time:
            try:
                self.since = parse_rfc3339(since_time)
            except ValueError:
                raise LogsUnavailable(f'invalid value for sinceTime: "{since_time}" is not RFC 3339', 400)

    def runtime_kwargs(self) -> dict[str, Any]:
        return {"tail": self.tail, "since": self.since, "timestamps": self.timestamps}


# ---------------------------------------------------------------------------------------------
# The app


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message.rstrip("\n") + "\n", content_type="text/plain")


class _Limiter:
    """Cuts the output after ``limit`` bytes (limitBytes)."""

    def __init__(self, limit: int | None) -> None:
        self.left = limit

    def cut(self, data: bytes) -> bytes:
        if self.left is None:
            return data
        data = data[: self.left]
        self.left -= len(data)
        return data

    @property
    def done(self) -> bool:
        return self.left is not None and self.left <= 0


class _LimitReached(Exception):
    pass


def _auth_middleware(authorize: Authorize) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/healthz":
            denial = await authorize(request.headers.get("Authorization"), request.method, request.path)
            if denial is not None:
                resp = _text(denial.status, denial.message)
                if denial.status == 401:
                    resp.headers["WWW-Authenticate"] = 'Bearer realm="kubelet"'
                return resp
        response: web.StreamResponse = await handler(request)
        return response
    return auth


def build_app(runtime: ContainerRuntime, resolve: Resolver, *, run_blocking: RunBlocking, authorize: Authorize,
              stats: StatsSource | None = None, streaming: StreamingContext | None = None) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    async def container_logs(request: web.Request) -> web.StreamResponse:
        ns = request.match_info["namespace"]
        pod = request.match_info["pod"]
        container = request.match_info["container"]
        try:
            opts = LogOptions(request.query)
            current, previous = await resolve(ns, pod, container)
        except LogsUnavailable as e:
            return _text(e.status, e.message)
        except RuntimeUnavailable as e:
            return _text(503, f"the container runtime is not reachable: {e}")
        container_id = current
        if opts.previous:
            if not previous:
                return _text(400, f'previous terminated container "{container}" in pod "{pod}" not found')
            container_id = previous
        limiter = _Limiter(opts.limit)
        try:
            if not opts.follow:
                data = await run_blocking(runtime.logs, container_id, **opts.runtime_kwargs())
                return web.Response(body=limiter.cut(data), content_type="text/plain")
            # Fail before the 200 when the container is gone (removed between resolve and here).
            await run_blocking(runtime.inspect, container_id)
        except ContainerNotFound:
            return _text(404, f'container "{container}" in pod "{pod}" not found (it was removed)')
        except RuntimeUnavailable as e:
            return _text(503, f"the container runtime is not reachable: {e}")
        except ContainerRuntimeError as e:
            return _text(500, f"reading the logs of {container} failed: {e}")

        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8",
                                           "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)

        async def write(chunk: bytes) -> None:
            data = limiter.cut(chunk)
            if data:
                await resp.write(data)
            if limiter.done:
                raise _LimitReached()

        try:
            await follow(runtime, container_id, opts.runtime_kwargs(), write)
        except _LimitReached:
            pass
        except (ConnectionError, asyncio.CancelledError):
            raise  # the client went away: _follow already stopped the follower
        except ContainerRuntimeError as e:
            log.info("following the logs of %s/%s/%s ended: %s", ns, pod, container, e)
        try:
            await resp.write_eof()
        except ConnectionError:
            pass
        return resp

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = exposition(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application(middlewares=[_auth_middleware(authorize)])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)  # authorized as nodes/metrics, as the kubelet does
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    if stats is not None:  # resource metrics (kubelet.statscollect): what the apiserver's metrics.k8s.io reads
        source = stats

        async def stats_summary(_: web.Request) -> web.Response:
            try:
                return web.json_response(await source.summary())
            except RuntimeUnavailable as e:
                return _text(503, f"the container runtime is not reachable: {e}")

        async def resource_metrics(_: web.Request) -> web.Response:
            try:
                return web.Response(text=await source.resource_metrics(), content_type="text/plain")
            except RuntimeUnavailable as e:
                return _text(503, f"the container runtime is not reachable: {e}")

        app.router.add_get("/stats/summary", stats_summary)
        app.router.add_get("/metrics/resource", resource_metrics)
    if streaming is not None:
        add_streaming_routes(app, streaming)
    return app


async def start_kubelet_server(runtime: ContainerRuntime, *, host: str, port: int, resolve: Resolver,
                               run_blocking: RunBlocking, authorize: Authorize, stats: StatsSource | None = None,
                               streaming: StreamingContext | None = None) -> tuple[web.AppRunner, int]:
    """Starts the kubelet's HTTP API on ``host:port`` (port 0: any free port) and returns the
    runner (``await runner.cleanup()`` stops it) and the port it listens on."""
    app = build_app(runtime, resolve, run_blocking=run_blocking, authorize=authorize, stats=stats,
                    streaming=streaming)
    # handler_cancellation: a client that goes away cancels its handler, which stops a quiet follow.
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0,
                           handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    actual = port
    for address in runner.addresses:
        actual = int(address[1])
        break
    return runner, actual


# ---------------------------------------------------------------------------------------------
# A resolver from the engine's labels alone (tests; a kubelet that lost its state)


def label_resolver(runtime: ContainerRuntime, *, run_blocking: RunBlocking, node: str | None = None) -> Resolver:
    """``resolve`` from container labels: the containers labelled with the pod's namespace, name
    and container name (on ``node`` when given); of the newest pod UID, the highest restart
    count is the current container and the next lower one the previous."""

    async def resolve(namespace: str, pod: str, container: str) -> tuple[str, str | None]:
        labels = {LABEL_POD_NAMESPACE: namespace, LABEL_POD_NAME: pod}
        if node is not None:
            labels[LABEL_NODE] = node
        found = await run_blocking(runtime.list, labels)
        if not found:
            raise LogsUnavailable(f'pod "{pod}" in namespace "{namespace}" is not known to this kubelet', 404)
        mine = [c for c in found if c.labels.get(LABEL_ROLE) == ROLE_CONTAINER
                and c.labels.get(LABEL_CONTAINER_NAME) == container]
        if not mine:
            raise waiting_to_start(pod, container)
        newest_uid = max(mine, key=_created).pod_uid
        ordered = sorted((c for c in mine if c.pod_uid == newest_uid),
                         key=lambda c: (c.restart_count, _created(c)), reverse=True)
        return ordered[0].id, (ordered[1].id if len(ordered) > 1 else None)

    return resolve


def _created(c: ContainerInfo) -> datetime:
    return c.created_at or datetime.min.replace(tzinfo=timezone.utc)


__all__ = ["LogsUnavailable", "LogOptions", "Resolver", "build_app", "interrupt_follow", "label_resolver",
           "parse_rfc3339", "start_kubelet_server", "waiting_to_start"]
