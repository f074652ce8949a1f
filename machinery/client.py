"""The async HTTP client every minik8s component uses to talk to the API server.

Data flow: a component calls a verb (``get``, ``list``, ``create``, ``patch``, ``watch``, ...) with
a resource (a model class such as ``Pod``, a kind or plural name such as ``"Deployment"`` /
``"deployments"``, an ``(api_version, plural)`` pair, or an ``ApiResource``) -> ``ApiClient``
builds the Kubernetes path (``/api/v1/namespaces/ns/pods/x``, ``/apis/apps/v1/...``) ->
``httpx.AsyncClient`` -> the answer comes back as a plain dict (the wire JSON), or as a typed
``machinery.errors.ApiError`` built from the ``Status`` body with ``ApiError.from_status``.
Transport failures (refused connection, reset stream, client-side timeout) become
``ConnectionFailedError``, a ``ServiceUnavailableError``: components never see httpx exceptions.

Retries: none by default, with one exception: a plain GET (get, list, get_scale, request GET)
that fails to connect or loses its connection before an answer is retried ``get_retries`` times
(0.1 s, 0.2 s, 0.4 s ...), since it is idempotent and a restarting apiserver is common. Writes
are never retried here (a lost answer may still have been applied); read-modify-write loops use
``retry_on_conflict``; watches are resumed by the informer, not here.

Warnings: the ``Warning`` response headers (``299 - "text"``) of the latest request are in
``last_warnings`` and are passed to ``on_warning`` as they arrive (mkctl prints them).
``last_warnings`` is per client, so with concurrent requests prefer ``on_warning``.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import random
import re
from dataclasses import dataclass
from types import TracebackType
from typing import Any, AsyncIterator, Awaitable, Callable, Literal, Mapping, Sequence, TypeVar
from urllib.parse import quote

import httpx
import orjson

from machinery import errors
from machinery.kubeconfig import ClientConfig, load_config
from machinery.models import KINDS, TypeFacts
from machinery.models.base import K8sModel

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=K8sModel)

PatchType = Literal["merge", "json", "strategic"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
WatchEvent = tuple[str, dict[str, Any]]


class ConnectionFailedError(errors.ServiceUnavailableError):
    """No HTTP answer at all: connection refused or reset, or a client-side timeout.

    A ``ServiceUnavailableError`` so code that retries on 503 also retries on this.
    """


# ---------------------------------------------------------------------------------- resources
@dataclass(frozen=True)
class ApiResource:
    """Where a resource lives. ``namespaced=None``: unknown, a namespace is used only if given."""

    api_version: str
    plural: str
    namespaced: bool | None = None
    kind: str = ""

    @property
    def base_path(self) -> str:
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    @staticmethod
    def of(model: type[TypeFacts]) -> "ApiResource":
        return ApiResource(model.api_version(), model.plural, model.namespaced, model.kind)


def _known() -> dict[str, ApiResource]:
    out: dict[str, ApiResource] = {}
    for model in KINDS:
        res = ApiResource.of(model)
        names = [model.kind, model.kind.lower(), model.plural, model.singular, *model.short_names]
        if model.group:
            names += [f"{model.plural}.{model.group}", f"{model.kind}.{model.group}"]
        for n in names:
            if n:
                out.setdefault(n, res)
        out[f"{res.api_version}/{res.plural}"] = res
    return out


_KNOWN = _known()
ResourceLike = ApiResource | type[TypeFacts] | tuple[str, str] | str


def resource_for(resource: ResourceLike) -> ApiResource:
    """Resolve a model class, a kind/plural/short name, or an ``(api_version, plural)`` pair."""
    if isinstance(resource, ApiResource):
        return resource
    if isinstance(resource, tuple):
        api_version, plural = resource
        return _KNOWN.get(f"{api_version}/{plural}") or ApiResource(api_version, plural)
    if isinstance(resource, str):
        found = _KNOWN.get(resource) or _KNOWN.get(resource.lower())
        if found is None:
            raise errors.NotFoundError(message=f'the server doesn\'t have a resource type "{resource}"')
        return found
    return ApiResource.of(resource)


# ---------------------------------------------------------------------------------- warnings
_WARNING = re.compile(r'\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"')


def parse_warnings(values: list[str]) -> list[str]:
    """The texts of RFC 7234 ``Warning`` header values (as Kubernetes sends them: code 299)."""
    out: list[str] = []
    for value in values:
        for m in _WARNING.finditer(value):
            out.append(re.sub(r"\\(.)", r"\1", m.group(1)))
    return out


def _transport_error(e: Exception, method: str, url: str) -> ConnectionFailedError:
    what = "timed out" if isinstance(e, httpx.TimeoutException) else "failed"
    return ConnectionFailedError(message=f"{method} {url} {what}: {type(e).__name__}: {e}".rstrip(": "))


def _error_from_response(code: int, body: bytes) -> errors.ApiError:
    try:
        status = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        text = body.decode(errors="replace").strip()[:500]
        status = {"message": f"the server responded with HTTP {code}" + (f": {text}" if text else "")}
    return errors.ApiError.from_status(status, code)


# Connection-level failures where a GET can safely be sent again.
_RETRYABLE = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError, httpx.ReadError)


class WatchStream:
    """The events of one watch request, as ``(type, object)``; close it (or use ``async with``).

    ``type`` is ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``; an ``ERROR`` event raises its
    typed error (``GoneError`` for 410 Expired). The stream ends when the server ends it
    (``timeoutSeconds``); a broken connection raises ``ConnectionFailedError``.
    """

    def __init__(self, gen: AsyncIterator[WatchEvent]) -> None:
        self._gen = gen

    def __aiter__(self) -> "WatchStream":
        return self

    async def __anext__(self) -> WatchEvent:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> "WatchStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class ApiClient:
    """Dict-level Kubernetes verbs over one ``httpx.AsyncClient`` (see the module docstring).

    ``namespace=None`` means: for ``list``/``watch`` all namespaces; for the other verbs on a
    namespaced resource the body's ``metadata.namespace``, else the config's namespace.
    """

    def __init__(self, config: ClientConfig | str | None = None, *, timeout: float = 30.0,
                 get_retries: int = 3, on_warning: Callable[[str], None] | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if config is None:
            config = load_config()
        elif isinstance(config, str):
            config = ClientConfig(server=config.rstrip("/"))
        self.config = config
        self.namespace = config.namespace
        self.get_retries = get_retries
        self.on_warning = on_warning
        self.last_warnings: list[str] = []
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=config.server, headers={"Accept": "application/json", **config.auth_headers},
            auth=config.basic_auth, verify=config.verify, timeout=timeout, transport=transport,
            # Watches hold a connection each; do not let a fixed pool starve other requests.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20))

    @property
    def server(self) -> str:
        return self.config.server

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "ApiClient":
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # ------------------------------------------------------------------ paths
    def _namespace(self, res: ApiResource, namespace: str | None, body: Mapping[str, Any] | None = None,
                   *, all_namespaces: bool = False) -> str | None:
        if res.namespaced is False:
            return None
        if namespace:
            return namespace
        body_ns = ((body or {}).get("metadata") or {}).get("namespace")
        if body_ns:
            return str(body_ns)
        if res.namespaced is None or all_namespaces:
            return None
        return self.namespace

    @staticmethod
    def path(res: ApiResource, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        """``/apis/apps/v1/namespaces/ns/deployments/x/scale``: the Kubernetes URL of a resource."""
        path = res.base_path
        if namespace:
            path += f"/namespaces/{quote(namespace, safe='')}"
        path += f"/{res.plural}"
        if name is not None:
            if not name:
                raise errors.BadRequestError(message="resource name may not be empty")
            path += f"/{quote(name, safe='')}"
            if subresource:
                path += f"/{subresource}"
        return path

    @staticmethod
    def _name_of(body: Mapping[str, Any]) -> str:
        name = (body.get("metadata") or {}).get("name")
        if not name:
            raise errors.BadRequestError(message="the object has no metadata.name")
        return str(name)

    # ------------------------------------------------------------------ transport
    def _note_warnings(self, resp: httpx.Response) -> None:
        self.last_warnings = parse_warnings(resp.headers.get_list("warning"))
        if self.on_warning is not None:
            for w in self.last_warnings:
                self.on_warning(w)

    async def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    json: Any = None, content: bytes | None = None,
                    headers: Mapping[str, str] | None = None) -> httpx.Response:
        if json is not None:
            content = orjson.dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempt = 0
        while True:
            try:
                resp = await self._http.request(method, path, params=clean, content=content, headers=headers)
                break
            except _RETRYABLE as e:
                if method != "GET" or attempt >= self.get_retries:
                    raise _transport_error(e, method, path) from e
                delay = 0.1 * 2 ** attempt
                attempt += 1
                log.debug("GET %s failed (%s); retry %d in %.1fs", path, e, attempt, delay)
                await asyncio.sleep(delay)
            except (httpx.HTTPError, httpx.InvalidURL) as e:
                raise _transport_error(e, method, path) from e
        self._note_warnings(resp)
        if resp.status_code >= 300:
            raise _error_from_response(resp.status_code, resp.content)
        return resp

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> Any:
        """The raw escape hatch: any path, parsed JSON back (text if the answer is not JSON)."""
        resp = await self._send(method, path, params=params, json=json, content=content, headers=headers)
        if not resp.content:
            return None
        if "json" in resp.headers.get("content-type", ""):
            return orjson.loads(resp.content)
        return resp.text

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = await self._send(method, path, **kw)
        data = orjson.loads(resp.content) if resp.content else {}
        return data if isinstance(data, dict) else {"items": data}

    # ------------------------------------------------------------------ verbs
    async def get(self, resource: ResourceLike, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        res = resource_for(resource)
        return await self._json("GET", self.path(res, self._namespace(res, namespace), name))

    async def list(self, resource: ResourceLike, *, namespace: str | None = None,
                   label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, continue_: str | None = None,
                   resource_version: str | None = None) -> dict[str, Any]:
        """One page of the list (the whole list without ``limit``): ``{"metadata": ..., "items": [...]}``."""
        res = resource_for(resource)
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "limit": limit, "continue": continue_ or None, "resourceVersion": resource_version}
        return await self._json("GET", self.path(res, self._namespace(res, namespace, all_namespaces=True)),
                                params=params)

    async def create(self, resource: ResourceLike, body: Mapping[str, Any], *, namespace: str | None = None,
                     dry_run: bool = False, field_validation: str | None = None) -> dict[str, Any]:
        res = resource_for(resource)
        params = {"dryRun": "All" if dry_run else None, "fieldValidation": field_validation}
        return await self._json("POST", self.path(res, self._namespace(res, namespace, body)),
                                json=body, params=params)

    async def update(self, resource: ResourceLike, body: Mapping[str, Any], *, namespace: str | None = None,
                     dry_run: bool = False, field_validation: str | None = None) -> dict[str, Any]:
        """PUT the whole object; its ``metadata.resourceVersion`` (if set) is the precondition."""
        return await self._put(resource, body, namespace=namespace, subresource=None, dry_run=dry_run,
                               field_validation=field_validation)

    async def update_status(self, resource: ResourceLike, body: Mapping[str, Any], *,
                            namespace: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """PUT ``/status``: only the status of ``body`` is written."""
        return await self._put(resource, body, namespace=namespace, subresource="status", dry_run=dry_run,
                               field_validation=None)

    async def _put(self, resource: ResourceLike, body: Mapping[str, Any], *, namespace: str | None,
                   subresource: str | None, dry_run: bool, field_validation: str | None) -> dict[str, Any]:
        res = resource_for(resource)
        path = self.path(res, self._namespace(res, namespace, body), self._name_of(body), subresource)
        params = {"dryRun": "All" if dry_run else None, "fieldValidation": field_validation}
        return await self._json("PUT", path, json=body, params=params)

    async def patch(self, resource: ResourceLike, name: str, patch: Mapping[str, Any] | Sequence[Any], *,
                    namespace: str | None = None, patch_type: PatchType = "merge",
                    subresource: str | None = None, dry_run: bool = False,
                    field_validation: str | None = None) -> dict[str, Any]:
        res = resource_for(resource)
        if patch_type not in PATCH_CONTENT_TYPES:
            raise errors.BadRequestError(message=f"unknown patch type {patch_type!r}")
        params = {"dryRun": "All" if dry_run else None, "fieldValidation": field_validation}
        return await self._json("PATCH", self.path(res, self._namespace(res, namespace), name, subresource),
                                content=orjson.dumps(patch), params=params,
                                headers={"Content-Type": PATCH_CONTENT_TYPES[patch_type]})

    async def delete(self, resource: ResourceLike, name: str, *, namespace: str | None = None,
                     grace_period_seconds: int | None = None, propagation_policy: str | None = None,
                     preconditions: Mapping[str, str] | None = None, dry_run: bool = False) -> dict[str, Any]:
        """DELETE; returns what the server answers (the object, with deletionTimestamp if it lingers)."""
        res = resource_for(resource)
        options = self._delete_options(grace_period_seconds, propagation_policy, preconditions)
        return await self._json("DELETE", self.path(res, self._namespace(res, namespace), name),
                                json=options or None, params={"dryRun": "All" if dry_run else None})

    async def delete_collection(self, resource: ResourceLike, *, namespace: str | None = None,
                                label_selector: str | None = None, field_selector: str | None = None,
                                grace_period_seconds: int | None = None,
                                propagation_policy: str | None = None, dry_run: bool = False) -> dict[str, Any]:
        """DELETE the collection (namespace None: the default namespace); returns the deleted list."""
        res = resource_for(resource)
        options = self._delete_options(grace_period_seconds, propagation_policy, None)
        params = {"labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "dryRun": "All" if dry_run else None}
        return await self._json("DELETE", self.path(res, self._namespace(res, namespace)), params=params,
                                json=options or None)

    @staticmethod
    def _delete_options(grace: int | None, propagation: str | None,
                        preconditions: Mapping[str, str] | None) -> dict[str, Any]:
        # dryRun goes in the query, not here: this apiserver reads it only from the query.
        options: dict[str, Any] = {}
        if grace is not None:
            options["gracePeriodSeconds"] = grace
        if propagation:
            options["propagationPolicy"] = propagation
        if preconditions:
            options["preconditions"] = dict(preconditions)
        if options:
            options = {"kind": "DeleteOptions", "apiVersion": "v1", **options}
        return options

    def watch(self, resource: ResourceLike, *, namespace: str | None = None, name: str | None = None,
              label_selector: str | None = None, field_selector: str | None = None,
              resource_version: str | None = None, timeout_seconds: int | None = None,
              allow_watch_bookmarks: bool = False, accept: str | None = None) -> WatchStream:
        """``?watch=1``: events after ``resource_version`` (unset/"0": current objects as ADDED first).

        The request is sent on the first iteration; a 410 for a too old resourceVersion raises
        ``GoneError`` there, just as an ``ERROR`` event later does. ``accept`` replaces the
        ``Accept`` header, e.g. to receive each event's object as a ``meta.k8s.io`` Table.
        """
        res = resource_for(resource)
        ns = self._namespace(res, namespace, all_namespaces=name is None)
        if name:
            field_selector = ",".join(x for x in (field_selector, f"metadata.name={name}") if x)
        params = {"watch": "1", "labelSelector": label_selector or None, "fieldSelector": field_selector or None,
                  "resourceVersion": resource_version or None, "timeoutSeconds": timeout_seconds,
                  "allowWatchBookmarks": "true" if allow_watch_bookmarks else None}
        headers = {"Accept": accept} if accept else None
        return WatchStream(self._watch(self.path(res, ns), params, timeout_seconds, headers))

    async def _watch(self, path: str, params: dict[str, Any], timeout_seconds: int | None,
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[WatchEvent]:
        clean = {k: v for k, v in params.items() if v is not None}
        # No read timeout without timeoutSeconds: a quiet watch is not a dead one.
        read = timeout_seconds + 30.0 if timeout_seconds is not None else None
        timeout = httpx.Timeout(self._timeout, read=read)
        try:
            async with self._http.stream("GET", path, params=clean, timeout=timeout, headers=headers) as resp:
                self._note_warnings(resp)
                if resp.status_code >= 300:
                    raise _error_from_response(resp.status_code, await resp.aread())
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    try:
                        event = orjson.loads(line)
                        etype, obj = str(event["type"]), event["object"]
                    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                        raise errors.InternalError(message=f"malformed watch event from {path}: {line[:200]!r}") from e
                    if etype == "ERROR":
                        raise errors.ApiError.from_status(obj if isinstance(obj, dict) else {})
                    yield etype, obj
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise _transport_error(e, "GET", path) from e

    # ------------------------------------------------------------------ subresources
    async def get_scale(self, resource: ResourceLike, name: str, *, namespace: str | None = None) -> dict[str, Any]:
        res = resource_for(resource)
        return await self._json("GET", self.path(res, self._namespace(res, namespace), name, "scale"))

    async def patch_scale(self, resource: ResourceLike, name: str, replicas: int, *,
                          namespace: str | None = None) -> dict[str, Any]:
        """Set ``spec.replicas`` through ``/scale``; returns the new ``Scale``."""
        return await self.patch(resource, name, {"spec": {"replicas": replicas}}, namespace=namespace,
                                subresource="scale")

    async def bind(self, name: str, node_name: str, *, namespace: str | None = None,
                   uid: str | None = None) -> dict[str, Any]:
        """POST ``pods/{name}/binding`` (what the scheduler does); returns the ``Status``."""
        ns = namespace or self.namespace
        meta: dict[str, Any] = {"name": name, "namespace": ns}
        if uid:
            meta["uid"] = uid
        body = {"apiVersion": "v1", "kind": "Binding", "metadata": meta,
                "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        return await self._json("POST", self.path(_KNOWN["pods"], ns, name, "binding"), json=body)

    # ------------------------------------------------------------------ typed helpers
    async def get_model(self, model: type[M], name: str, *, namespace: str | None = None) -> M:
        return model.model_validate(await self.get(_facts(model), name, namespace=namespace))

    async def list_models(self, model: type[M], *, namespace: str | None = None,
                          label_selector: str | None = None, field_selector: str | None = None) -> builtins.list[M]:
        data = await self.list(_facts(model), namespace=namespace, label_selector=label_selector,
                               field_selector=field_selector)
        return [model.model_validate(item) for item in data.get("items") or []]

    async def create_model(self, obj: M, *, namespace: str | None = None) -> M:
        return type(obj).model_validate(await self.create(_facts(type(obj)), obj.to_dict(), namespace=namespace))

    async def update_model(self, obj: M, *, namespace: str | None = None) -> M:
        return type(obj).model_validate(await self.update(_facts(type(obj)), obj.to_dict(), namespace=namespace))


def _facts(model: type[K8sModel]) -> ApiResource:
    if not issubclass(model, TypeFacts) or not model.plural:
        raise TypeError(f"{model.__name__} is not a top-level kind (no type facts)")
    return ApiResource.of(model)


async def retry_on_conflict(fn: Callable[[], Awaitable[T]], *, attempts: int = 5,
                            base_delay_s: float = 0.01, max_delay_s: float = 1.0) -> T:
    """Run a read-modify-write ``fn`` again while it raises ``ConflictError`` (client-go's RetryOnConflict).

    ``fn`` must read the object afresh on every call. Between attempts it sleeps
    ``base_delay_s * 2**n`` (capped, with jitter so concurrent writers spread out); after
    ``attempts`` conflicts the last ``ConflictError`` propagates. Other errors propagate at once.
    """
    if attempts < 1:
        raise ValueError("attempts must be >= 1")
    for n in range(attempts):
        try:
            return await fn()
        except errors.ConflictError:
            if n == attempts - 1:
                raise
            delay = min(base_delay_s * 2 ** n, max_delay_s)
            await asyncio.sleep(delay * (0.5 + random.random()))
    raise AssertionError("unreachable")


__all__ = ["ApiClient", "ApiResource", "ConnectionFailedError", "PATCH_CONTENT_TYPES", "PatchType",
           "ResourceLike", "WatchEvent", "WatchStream", "parse_warnings", "resource_for", "retry_on_conflict"]
