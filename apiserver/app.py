"""The HTTP face of the API server: Kubernetes paths and verbs onto the registry.

Data flow: request -> ``parse_path`` (group, version, namespace, resource, name, subresource)
-> the verb (GET list/get/watch, POST create/binding, PUT update, PATCH, DELETE) -> ``Registry``
-> JSON bytes (encoded once per object version by the watch cache) or a meta.k8s.io ``Table``
when the client asks for one (``kubectl get``). Every error leaves through one handler as a
Kubernetes ``Status``; no request ever answers with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware

from machinery import errors

from . import discovery, eviction, httpproxy, instrumentation, metricsapi, nodeproxy, reviews, streamproxy, tokens
from .auth.authn import Authenticator, default_authenticator
from .auth.authorizer import AlwaysAllow, Authorizer
from .cache import CacheEvent, ExpiredError, TooSlowError, Watcher
from .fieldmanager import Writer, writer_for
from .front import METHODS as RESOURCE_METHODS, ResourceFront
from .metrics import watch_events_child
from .negotiation import partial_object, response_form
from .openapi import PROTOBUF_CONTENT_TYPE, wants_protobuf
from .protobuf import PROTOBUF, ProtobufError, UnknownKindError, decode_protobuf
from .registry import Registry
from .resources import RequestInfo, Resource, parse_path
from .tables import build_table

log = logging.getLogger(__name__)

JSON = "application/json"


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # Kubernetes' JSON answers end with a newline (Go's json.Encoder); clients compare bodies as text.
    body = (data if isinstance(data, bytes) else orjson.dumps(data)) + b"\n"
    return Response(content=body, status_code=status, media_type=JSON, headers=headers)


def status_response(err: errors.ApiError) -> Response:
    headers = {"Retry-After": str(err.retry_after_seconds)} if err.retry_after_seconds else None
    return _json(err.to_status(), err.code, headers)


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "yes")


def _int_param(q: Any, name: str) -> int | None:
    raw = q.get(name)
    if raw in (None, ""):
        return None
    try:
        v = int(raw)
    except ValueError:
        raise errors.BadRequestError(message=f'invalid value for {name}: "{raw}" is not an integer')
    if v < 0:
        raise errors.BadRequestError(message=f"invalid value for {name}: must be >= 0")
    return v


def _dry_run(q: Any) -> bool:
    values = q.getlist("dryRun")
    for v in values:
        if v != "All":
            raise errors.BadRequestError(message=f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def _options_dry_run(options: dict[str, Any]) -> bool:
    """DeleteOptions.dryRun (the form client-go and kubectl send) means the same as ?dryRun=All."""
    values = options.get("dryRun") or []
    if not isinstance(values, list) or any(v != "All" for v in values):
        raise errors.BadRequestError(message=f'dryRun: Unsupported value: {values!r}: supported values: "All"')
    return bool(values)


def _as_version(res: Resource, raw: bytes, obj: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """An object as the requested version serves it. Objects are stored at the storage version;
    between versions of a custom resource (conversion None) only ``apiVersion`` differs; a builtin
    kind served at several versions converts in its strategy's ``from_storage``."""
    if obj.get("apiVersion", res.api_version) == res.api_version:
        return raw, obj
    converted = res.from_storage(obj)
    return orjson.dumps(converted), converted


def _warning_headers(warnings: list[str]) -> dict[str, str]:
    if not warnings:
        return {}
    # A header value must be printable ASCII; a field name from the client may hold anything
    # (control characters, lone surrogates), so escape it the way Go's %q would.
    text = ", ".join('299 - "' + w.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
                     for w in warnings)
    return {"Warning": text}


def create_app(registry: Registry, *, server_address: str = "127.0.0.1:8080",
               bookmark_interval: float = 10.0, on_startup: Any = None, on_shutdown: Any = None,
               authenticator: Authenticator | None = None, authorizer: Authorizer | None = None) -> FastAPI:
    """``authenticator`` (TokenRequest signing, TokenReview, /openid/v1/jwks) defaults to ServiceAccount
    tokens signed with the cluster's etcd key; ``authorizer`` (the SubjectAccessReviews) to AlwaysAllow."""
    table = registry.resources
    authenticator = authenticator or default_authenticator(registry)
    token_keys = authenticator.keys
    review = reviews.Reviews(authenticator=authenticator, authorizer=authorizer or AlwaysAllow())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup:
            await on_startup()
        yield
        if on_shutdown:
            await on_shutdown()

    app = FastAPI(title="minik8s apiserver", version=discovery.KUBE_VERSION["gitVersion"],
                  docs_url=None, redoc_url=None, lifespan=lifespan)

    @app.exception_handler(errors.ApiError)
    async def _api_error(_: Request, exc: errors.ApiError) -> Response:
        return status_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return status_response(errors.NotFoundError(message="the server could not find the requested resource"))
        if exc.status_code == 405:
            return status_response(errors.MethodNotAllowedError(message="the server does not allow this method on the requested resource"))
        return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": str(exc.detail), "code": exc.status_code}, exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        return status_response(errors.BadRequestError(message=f"invalid request: {exc.errors()[:3]}"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error serving %s %s", request.method, request.url.path)
        return status_response(errors.InternalError(message=f"an internal error occurred: {type(exc).__name__}"))

    # Request metrics (apiserver/instrumentation.py) and GET /metrics.
    instrumentation.install(app, table, registry)

    # ------------------------------------------------------------------ health, version, discovery
    @app.get("/healthz")
    @app.get("/livez")
    async def livez() -> Response:
        return Response("ok", media_type="text/plain")

    @app.get("/readyz")
    async def readyz() -> Response:
        if await registry.storage.healthy() and all(c.ready.is_set() for c in registry.caches.values()):
            return Response("ok", media_type="text/plain")
        return Response("[-]etcd failed: etcd is not reachable\nreadyz check failed", status_code=500,
                        media_type="text/plain")

    @app.get("/version")
    async def version() -> Response:
        return _json(discovery.KUBE_VERSION)

    # ServiceAccount issuer discovery (OIDC): the issuer and the keys that verify its tokens.
    @app.get("/.well-known/openid-configuration")
    async def openid_configuration() -> Response:
        return _json(token_keys.openid_configuration())

    @app.get("/openid/v1/jwks")
    async def jwks() -> Response:
        body = orjson.dumps(await token_keys.jwks()) + b"\n"
        return Response(content=body, media_type="application/jwk-set+json")

    # Discovery answers with and without a trailing slash, as Kubernetes does (kr8s asks "/api/").
    @app.get("/api")
    @app.get("/api/")
    async def api() -> Response:
        return _json(discovery.api_versions(server_address))

    @app.get("/apis")
    @app.get("/apis/")
    async def apis() -> Response:
        return _json(discovery.api_group_list(table))

    @app.get("/api/v1")
    @app.get("/api/v1/")
    async def core_v1() -> Response:
        return _json(discovery.api_resource_list(table, "v1"))

    @app.get("/apis/{group}")
    @app.get("/apis/{group}/")
    async def group(group: str) -> Response:
        doc = discovery.api_group(table, group)
        if doc is None:
            raise errors.NotFoundError(message="the server could not find the requested resource")
        return _json(doc)

    @app.get("/apis/{group}/{version}")
    @app.get("/apis/{group}/{version}/")
    async def group_version(group: str, version: str) -> Response:
        doc = discovery.api_resource_list(table, f"{group}/{version}")
        if doc is None:
            raise errors.NotFoundError(message="the server could not find the requested resource")
        return _json(doc)

    openapi = registry.openapi

    @app.get("/openapi/v3")
    @app.get("/openapi/v3/")
    async def openapi_v3_index() -> Response:
        return _json(openapi.v3.index())

    @app.get("/openapi/v3/{path:path}")
    async def openapi_v3(path: str, request: Request) -> Response:
        path = path.strip("/")
        doc = openapi.v3.document(path)
        if doc is None:
            raise errors.NotFoundError(message="the server could not find the requested resource")
        etag = openapi.v3.etag(path) or ""
        wanted = request.query_params.get("hash")
        if wanted and wanted != etag:
            # A stale hash (the document changed, e.g. a CRD came): send the client to the current one.
            return Response(status_code=301, headers={"Location": openapi.v3.url(path) or f"/openapi/v3/{path}"})
        headers = {"ETag": f'"{etag}"'}
        if wanted:
            headers["Cache-Control"] = "public, immutable"
        return _json(doc, headers=headers)

    @app.get("/openapi/v2")
    async def openapi_v2(request: Request) -> Response:
        headers = {"ETag": f'"{openapi.v2.etag()}"'}
        if wants_protobuf(request.headers.get("accept")):
            return Response(openapi.v2.protobuf(), media_type=PROTOBUF_CONTENT_TYPE, headers=headers)
        return _json(openapi.v2.json(), headers=headers)

    # ------------------------------------------------------------------ resources
    async def dispatch(request: Request) -> Response:
        info = parse_path(request.url.path)
        if info is None:
            raise errors.NotFoundError(message="the server could not find the requested resource")
        return await serve(request, info)

    async def serve(request: Request, info: RequestInfo) -> Response:
        res = table.lookup(info.group, info.version, info.plural)
        if res is None or (info.namespace and not res.namespaced):
            raise errors.NotFoundError(message="the server could not find the requested resource")
        if info.subresource == "token" and res.plural == "serviceaccounts" and not res.group and info.name \
                and info.namespace:
            if request.method != "POST":
                raise errors.MethodNotAllowedError(message="only POST is supported on serviceaccounts/token")
            protobuf = request.headers.get("content-type", "").split(";")[0].strip().lower() == PROTOBUF
            body = await request.body() if protobuf else await _body(request)
            return _json(await tokens.request_token(registry, res, str(info.namespace), info.name, body,
                                                    keys=token_keys), 201)
        if reviews.is_review(res) and not info.subresource:
            if request.method != "POST" or info.name:
                raise errors.MethodNotAllowedError(message=f"only create is supported on {res.group_resource}")
            return _json(await review.create(res, info.namespace, await _body(request)), 201)
        if info.subresource and info.subresource not in res.subresources:
            raise errors.NotFoundError(message="the server could not find the requested resource")
        ns = info.namespace if res.namespaced else None
        if res.namespaced and info.name and not ns:
            raise errors.NotFoundError(message="the server could not find the requested resource")
        q = request.query_params
        method = request.method
        if q.get("fieldValidation", "") not in ("", "Ignore", "Warn", "Strict"):
            raise errors.BadRequestError(
                message=f'fieldValidation: Unsupported value: "{q["fieldValidation"]}": supported values: "Ignore", "Strict", "Warn"')
        def writer(*, applying: bool = False) -> Writer:
            return writer_for(q.get("fieldManager"), request.headers.get("user-agent"), applying=applying,
                              force=q.get("force"))

        if info.name is None:
            if method == "GET":
                if _flag(q.get("watch")):
                    return await _watch(request, res, ns)
                return await _list(request, res, ns)
            if method == "POST":
                body = await _body(request)
                result = await registry.create(res, ns, body, dry_run=_dry_run(q),
                                               field_validation=q.get("fieldValidation", ""), writer=writer())
                return _object_response(request, res, result.raw, result.obj, status=201,
                                        headers=_warning_headers(result.warnings))
            if method == "DELETE":
                options = await _delete_options(request)
                deleted = await registry.delete_collection(
                    res, ns, label_selector=q.get("labelSelector", ""), field_selector=q.get("fieldSelector", ""),
                    options=options, dry_run=_dry_run(q) or _options_dry_run(options))
                return _json({"kind": res.list_kind, "apiVersion": res.api_version,
                              "metadata": {}, "items": [_as_version(res, b"", o)[1] for o in deleted]})
            raise errors.MethodNotAllowedError(message=f"{method} is not supported on a collection")
        name = info.name
        sub = info.subresource
        if sub == "log":
            if method != "GET":
                raise errors.MethodNotAllowedError(message="only GET is supported on pods/log")
            return await _log(request, res, ns, name)
        if sub == "eviction":
            if method != "POST":
                raise errors.MethodNotAllowedError(message="only POST is supported on pods/eviction")
            code, status = await eviction.evict(registry, res, ns, name, await _body(request), dry_run=_dry_run(q))
            return _json(status, code)
        if sub == "binding":
            if method != "POST":
                raise errors.MethodNotAllowedError(message="only POST is supported on pods/binding")
            await registry.bind(res, ns, name, await _body(request), writer=writer())
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}, 201)
        if sub == "scale":
            if method == "GET":
                return _json(await registry.get_scale(res, ns, name))
            if method in ("PUT", "PATCH"):
                body = await request.body() if method == "PATCH" else await _body(request)
                scale = await registry.update_scale(
                    res, ns, name, body, dry_run=_dry_run(q), writer=writer(),
                    patch_type=request.headers.get("content-type", JSON) if method == "PATCH" else None)
                return _json(scale)
            raise errors.MethodNotAllowedError(message=f"{method} is not supported on scale")
        if method == "GET":
            if _flag(q.get("watch")):
                return await _watch(request, res, ns, name=name)
            entry = await registry.get(res, ns, name, resource_version=q.get("resourceVersion", ""))
            return _object_response(request, res, entry.raw, entry.obj)
        if method == "PUT":
            body = await _body(request)
            result = await registry.update(res, ns, name, body, subresource=sub, dry_run=_dry_run(q),
                                           field_validation=q.get("fieldValidation", ""), writer=writer())
            return _object_response(request, res, result.raw, result.obj, headers=_warning_headers(result.warnings))
        if method == "PATCH":
            content_type = request.headers.get("content-type", "")
            applying = content_type.split(";")[0].strip().lower() == "application/apply-patch+yaml"
            result = await registry.patch(res, ns, name, await request.body(), content_type=content_type,
                                          subresource=sub, dry_run=_dry_run(q), writer=writer(applying=applying),
                                          field_validation=q.get("fieldValidation", ""))
            # A server-side apply that created the object answers 201, as Kubernetes does.
            return _object_response(request, res, result.raw, result.obj, status=201 if result.created else 200,
                                    headers=_warning_headers(result.warnings))
        if method == "DELETE" and sub is None:
            options = await _delete_options(request)
            obj, _gone = await registry.delete(res, ns, name, options=options,
                                               dry_run=_dry_run(q) or _options_dry_run(options))
            return _json(_as_version(res, b"", obj)[1])
        raise errors.MethodNotAllowedError(message=f"{method} is not supported here")

    async def _body(request: Request) -> Any:
        raw = await request.body()
        ctype = request.headers.get("content-type", JSON).split(";")[0].strip().lower()
        if ctype not in ("", JSON, "*/*", "application/yaml", PROTOBUF):
            raise errors.UnsupportedMediaTypeError(message=f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, {PROTOBUF}')
        if not raw:
            raise errors.BadRequestError(message="the request body is empty")
        if ctype == PROTOBUF:
            return _protobuf(raw)
        try:
            if ctype == "application/yaml":
                import yaml
                return yaml.safe_load(raw)
            return orjson.loads(raw)
        except Exception as e:  # noqa: BLE001 - any parse failure is the client's error
            raise errors.BadRequestError(message=f"the request body is not valid JSON: {e}")

    def _protobuf(raw: bytes) -> dict[str, Any]:
        try:
            return decode_protobuf(raw)
        except UnknownKindError as e:
            raise errors.UnsupportedMediaTypeError(message=str(e))
        except ProtobufError as e:
            raise errors.BadRequestError(message=f"the request body is not a valid protobuf object: {e}")

    async def _delete_options(request: Request) -> dict[str, Any]:
        q = request.query_params
        options: dict[str, Any] = {}
        raw = await request.body()
        if raw:
            try:
                is_pb = request.headers.get("content-type", "").split(";")[0].strip().lower() == PROTOBUF
                parsed = _protobuf(raw) if is_pb else orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise errors.BadRequestError(message=f"invalid DeleteOptions: {e}")
            if not isinstance(parsed, dict):
                raise errors.BadRequestError(message="invalid DeleteOptions: expected an object")
            options = parsed
        grace = _int_param(q, "gracePeriodSeconds")
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if q.get("propagationPolicy"):
            options["propagationPolicy"] = q["propagationPolicy"]
        if q.get("orphanDependents"):
            options["orphanDependents"] = _flag(q["orphanDependents"])
        g = options.get("gracePeriodSeconds")
        if g is not None and (isinstance(g, bool) or not isinstance(g, int)):
            raise errors.BadRequestError(message="invalid DeleteOptions: gracePeriodSeconds must be an integer")
        if options.get("preconditions") is not None and not isinstance(options["preconditions"], dict):
            raise errors.BadRequestError(message="invalid DeleteOptions: preconditions must be an object")
        return options

    def _object_response(request: Request, res: Resource, raw: bytes, obj: dict[str, Any], *,
                         status: int = 200, headers: dict[str, str] | None = None) -> Response:
        raw, obj = _as_version(res, raw, obj)
        form = response_form(request.headers.get("accept"), target="object")
        if form == "table":
            return _json(_table(request, res, [obj], str((obj.get("metadata") or {}).get("resourceVersion", ""))),
                         status, headers)
        if form == "partial":
            return _json(partial_object(obj), status, headers)
        return _json(raw, status, headers)

    def _table(request: Request, res: Resource, objs: list[dict[str, Any]], rv: str, cont: str = "") -> dict[str, Any]:
        include = request.query_params.get("includeObject", "Metadata")
        try:
            return build_table(res, objs, now=datetime.now(timezone.utc), include_object=include,
                               resource_version=rv, continue_token=cont)
        except ValueError as e:
            raise errors.BadRequestError(message=str(e))

    async def _list(request: Request, res: Resource, ns: str | None) -> Response:
        q = request.query_params
        result = await registry.list(res, ns, label_selector=q.get("labelSelector", ""),
                                     field_selector=q.get("fieldSelector", ""),
                                     limit=_int_param(q, "limit") or 0, continue_token=q.get("continue", ""),
                                     resource_version=q.get("resourceVersion", ""))
        rv = str(result.resource_version)
        form = response_form(request.headers.get("accept"), target="list")
        if form == "table":
            return _json(_table(request, res, [e.obj for e in result.items], rv, result.continue_token))
        meta: dict[str, Any] = {"resourceVersion": rv}
        if result.continue_token:
            meta["continue"] = result.continue_token
            if result.remaining is not None:
                meta["remainingItemCount"] = result.remaining
        if form == "partial":
            return _json({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
                          "items": [partial_object(e.obj) for e in result.items]})
        head = orjson.dumps({"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta})
        body = head[:-1] + b',"items":[' + b",".join(_as_version(res, e.raw, e.obj)[0] for e in result.items) + b"]}"
        return _json(body)

    async def _watch(request: Request, res: Resource, ns: str | None, *, name: str | None = None) -> Response:
        q = request.query_params
        field_selector = q.get("fieldSelector", "")
        if name:
            field_selector = ",".join(x for x in (field_selector, f"metadata.name={name}") if x)
        timeout = _int_param(q, "timeoutSeconds")
        bookmarks = _flag(q.get("allowWatchBookmarks"))
        form = response_form(request.headers.get("accept"), target="watch")  # a 406 before any watch starts
        try:
            watcher = await registry.watch(res, ns, label_selector=q.get("labelSelector", ""),
                                           field_selector=field_selector,
                                           resource_version=q.get("resourceVersion", ""))
        except errors.GoneError as e:
            # Like Kubernetes' cacher: a well-formed but expired watch gets a 200 and one ERROR event.
            line = orjson.dumps({"type": "ERROR", "object": e.to_status()}) + b"\n"
            return Response(content=line, media_type=JSON)
        cache = registry.cache(res)
        sent = watch_events_child(res.group, res.version, res.kind)  # apiserver_watch_events_total

        def encode(ev: CacheEvent) -> bytes:
            if form == "table":
                return orjson.dumps({"type": ev.type, "object": _table(request, res, [ev.entry.obj],
                                                                       str(ev.revision))}) + b"\n"
            if form == "partial":
                return orjson.dumps({"type": ev.type, "object": partial_object(ev.entry.obj)}) + b"\n"
            if ev.entry.obj.get("apiVersion", res.api_version) != res.api_version:
                _, converted = _as_version(res, ev.entry.raw, ev.entry.obj)
                return orjson.dumps({"type": ev.type, "object": converted}) + b"\n"
            return ev.wire_line()

        async def stream() -> AsyncIterator[bytes]:
            deadline = time.monotonic() + (timeout if timeout is not None else 1800)
            try:
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    try:
                        item = await asyncio.wait_for(watcher.queue.get(), min(remaining, bookmark_interval))
                    except asyncio.TimeoutError:
                        if bookmarks and time.monotonic() < deadline:
                            sent.inc()
                            yield orjson.dumps({"type": "BOOKMARK", "object": {
                                "kind": res.kind, "apiVersion": res.api_version,
                                "metadata": {"resourceVersion": str(cache.revision)}}}) + b"\n"
                        continue
                    if item is None:
                        return
                    sent.inc()
                    if isinstance(item, Exception):
                        yield _error_event(item)
                        return
                    yield encode(item)
            finally:
                cache.unwatch(watcher)

        return StreamingResponse(stream(), media_type=JSON,
                                 headers={"Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked"})

    async def _log(request: Request, res: Resource, ns: str | None, name: str) -> Response:
        """pods/log: proxied to the kubelet of the pod's node (apiserver/nodeproxy.py)."""
        pod = (await registry.get(res, ns, name)).obj
        q = request.query_params
        container = nodeproxy.choose_container(pod, q.get("container", ""))
        options = nodeproxy.log_options(q)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise errors.BadRequestError(message=f'pod "{name}" is not scheduled to a node yet, so it has no logs')
        nodes = table.lookup("", "v1", "nodes")
        assert nodes is not None
        node = (await registry.get(nodes, None, node_name)).obj
        address, port = nodeproxy.kubelet_location(node)
        return await nodeproxy.proxy_logs(node_name, address, port, ns or "", name, container, options,
                                          headers=await nodeproxy.kubelet_headers(registry))

    metricsapi.install(app, registry)  # metrics.k8s.io, before the generic resource routes
    streamproxy.install(app, registry)  # pods/exec|attach|portforward: WebSocket relay to the kubelet
    httpproxy.install(app, registry)  # pods/proxy, services/proxy, nodes/proxy
    for prefix in ("/api/{path:path}", "/apis/{path:path}"):
        app.add_api_route(prefix, dispatch, methods=sorted(RESOURCE_METHODS), include_in_schema=False)
    # Resource requests skip FastAPI's router and exception middlewares (apiserver/front.py); as the
    # innermost middleware it runs after every other one (authentication, audit, metrics).
    app.user_middleware.append(Middleware(ResourceFront, routes=lambda: app.router.routes, endpoint=dispatch,
                                          serve=serve, error_response=status_response))
    return app


def _error_event(exc: Exception) -> bytes:
    if isinstance(exc, ExpiredError):
        err: errors.ApiError = errors.GoneError(message=str(exc))
    elif isinstance(exc, TooSlowError):
        err = errors.GoneError(message="the watch fell too far behind and was closed; relist and watch again")
    else:
        err = errors.InternalError(message=str(exc))
    return orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n"


__all__ = ["create_app", "Watcher"]
