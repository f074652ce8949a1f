"""The async HTTP client every minik8s component uses to talk to the API server.

Data flow: a component calls a verb (``get``, ``list``, ``create``, ``patch``, ``watch``, ...) with
a resource (a model class such as ``Pod``, a kind or plural name such as ``"Deployment"`` /
``"deployments"``, an ``(api_version, plural)`` pair, or an ``ApiResource``) -> ``ApiClient``
builds the Kubernetes path (``/api/v1/namespaces/ns/pods/x``, ``/apis/apps/v1/...``) ->
one ``aiohttp.ClientSession`` (created lazily in the event loop that first uses the client) -> the
answer comes back as a plain dict (the wire JSON), or as a typed ``machinery.errors.ApiError`` built
from the ``Status`` body with ``ApiError.from_status``. Transport failures (refused connection,
reset stream, client-side timeout) become ``ConnectionFailedError``, a ``ServiceUnavailableError``,
with the aiohttp exception as ``__cause__``: components never see aiohttp exceptions.

Why aiohttp: httpx cost about 2-2.7 ms of client CPU per request here against about 0.3 ms for
aiohttp; every component pays it per request, and it capped the scheduler near 40 pods/s.
Timeouts: a request (sending it and reading the whole answer) may take ``timeout`` seconds in all;
a watch has no total limit, only ``timeout`` to connect (it ends by ``timeoutSeconds`` server-side).
Like kubectl, redirects are not followed and ``HTTP(S)_PROXY`` / ``NO_PROXY`` apply except to
loopback servers.

Retries, after Go's net/http transport (``persistConn.shouldRetryRequest``, what client-go uses):
- a request that was never sent is sent again at once, whatever its verb (it cannot have been
  applied): aiohttp refused to write it because the pooled keep-alive connection it took was
  already closing (the server closed it while it sat idle), see ``_never_sent``;
- a safe request (GET, HEAD, OPTIONS, TRACE: Go's ``isReplayable``) whose connection the server
  closed or reset before answering is sent again once at once (a keep-alive timeout racing it);
- then a plain GET (get, list, get_scale, request GET) that fails to connect or loses its
  connection before the whole answer is retried ``get_retries`` times (0.1 s, 0.2 s, 0.4 s ...),
  since it is idempotent and a restarting apiserver is common.
A write that was sent is never sent again, even when its answer is lost (it may have been applied;
aiohttp's own resend of PUT and DELETE is turned off for that reason); read-modify-write loops use
``retry_on_conflict``; watches are resumed by the informer, not here (only their request is resent
as above). Before handing out a pooled connection, the connector polls its socket (urllib3's
``is_connection_dropped``): one the server closed while this process was busy (its FIN not yet read
by the event loop) is dropped instead of used, which keeps most writes out of the race at all.

Several addresses (``--server https://a:6443,https://b:6443``, API servers of one cluster): every
request goes to the current address. One that could not be sent there (connection refused, no
route, DNS, connect timeout, or aiohttp's "never sent"), and a GET whose connection was closed or
reset before any answer, goes to the next address at once (each address once per request); the
next address then stays current for the requests that follow. An answered request is never sent
again, and neither is a write that went out (it may have been applied). A watch whose stream breaks
also moves the client on, so the informer's next watch reconnects to the next address. A
kubeconfig's server stays one address, as in Kubernetes.

Warnings: the ``Warning`` response headers (``299 - "text"``) of the latest request are in
``last_warnings`` and are passed to ``on_warning`` as they arrive (mkctl prints them).
``last_warnings`` is per client, so with concurrent requests prefer ``on_warning``.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import ipaddress
import logging
import random
import re
import select
import ssl
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Any, AsyncGenerator, Awaitable, Callable, Literal, Mapping, Sequence, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp.helpers import get_env_proxy_for_url
from multidict import CIMultiDictProxy
from yarl import URL

from machinery import errors
from machinery.kubeconfig import ClientConfig, load_config
from machinery.models import KINDS, TypeFacts
from machinery.models.base import K8sModel

log = logging.getLogger(__name__)

T = TypeVar("T")
M = TypeVar("M", bound=K8sModel)

PatchType = Literal["merge", "json", "strategic", "apply"]
PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    # Server-side apply: the body is the whole intent of one field manager (JSON is YAML).
    "apply": "application/apply-patch+yaml",
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


def _transport_error(e: BaseException, method: str, url: str) -> ConnectionFailedError:
    what = "timed out" if isinstance(e, TimeoutError) else "failed"
    return ConnectionFailedError(message=f"{method} {url} {what}: {type(e).__name__}: {e}".rstrip(": "))


def is_connection_refused(exc: BaseException | None) -> bool:
    """Whether an exception (a ``ConnectionFailedError``'s ``__cause__``) is a refused connection.

    With several addresses (``localhost``: ::1 and 127.0.0.1) asyncio folds the refusals into one
    ``OSError("Multiple exceptions: [Errno 111] ...")`` without an errno, hence the text check.
    """
    if not isinstance(exc, aiohttp.ClientConnectorError):
        return False
    os_error = exc.os_error
    return (isinstance(os_error, ConnectionRefusedError) or os_error.errno == errno.ECONNREFUSED
            or f"[Errno {errno.ECONNREFUSED}]" in str(os_error))


def _error_from_response(code: int, body: bytes) -> errors.ApiError:
    try:
        status = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        status = None
    if not isinstance(status, dict) or status.get("kind") != "Status":
        text = body.decode(errors="replace").strip()[:500]
        status = {"message": f"the server responded with HTTP {code}" + (f": {text}" if text else "")}
    return errors.ApiError.from_status(status, code)


# Connection-level failures where a GET can safely be sent again: no connection (refused, DNS,
# connect timeout: ConnectionTimeoutError), or the connection lost before the whole answer
# (reset: ClientOSError, or ClientConnectionResetError, a ConnectionResetError that is not a
# ClientOSError; closed: ServerDisconnectedError; cut body: ClientPayloadError).
_RETRYABLE = (aiohttp.ClientOSError, aiohttp.ConnectionTimeoutError, aiohttp.ServerDisconnectedError,
              aiohttp.ClientPayloadError, ConnectionResetError)
# Everything else that means "no usable HTTP answer": other aiohttp errors (bad URL, malformed
# response) and timeouts (a total timeout surfaces as a bare TimeoutError).
_TRANSPORT = (aiohttp.ClientError, TimeoutError)
# Go's Request.isReplayable: the methods sent again when the server closed the connection before
# answering. Not PUT or DELETE, whatever RFC 9110 says: an update or delete whose answer was lost
# may have been applied, and sent again it would come back 409 or 404 for a write that worked.
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Immediate resends of one request (never sent, or replayable and closed before an answer). Go
# resends only on a reused connection, so a server that hangs up on new ones cannot loop it; the
# pool is hidden inside aiohttp here, so a bound plays that part.
_MAX_RESENDS = 3


def _never_sent(e: BaseException) -> bool:
    """Whether aiohttp wrote no byte of the request: the connection was closing before the write.

    From aiohttp's sources (3.10 to 3.14): ``StreamWriter._write`` / ``_writelines`` check
    ``transport.is_closing()`` before ``transport.write`` and raise
    ``ClientConnectionResetError("Cannot write to closing transport")`` instead of writing. Headers
    are buffered and go out with the first body chunk, and this client sends a body as one
    ``bytes`` (one write) or no body (the headers alone, one write), so that refusal means nothing
    of the request left: it is raised as is for a request without a body (``set_eof`` in
    ``ClientRequest.send``), and for one with a body ``write_bytes`` wraps it as
    ``ClientOSError("Can not write request body for ...")`` with it as ``__cause__``, which is what
    ``resp.start`` raises. The other ``ClientConnectionResetError``, ``"Connection lost"`` from
    draining a large body, comes after a write, and ``ServerDisconnectedError`` / ``ClientOSError``
    (reset by peer) come from reading the answer, after the write: none of them say "never sent".
    The check is by message: should aiohttp reword it, this fails safe (no resend of a write).
    """
    seen: set[int] = set()
    x: BaseException | None = e
    while x is not None and id(x) not in seen:
        seen.add(id(x))
        if isinstance(x, ConnectionResetError) and "closing transport" in str(x):
            return True
        x = x.__cause__ or x.__context__
    return False


def _closed_before_answer(e: BaseException) -> bool:
    """The server closed or reset the connection before any answer (Go's errServerClosedIdle and
    transportReadFromServerError): not a failure to connect, not a body cut short."""
    if isinstance(e, (aiohttp.ServerDisconnectedError, ConnectionResetError)):
        return True
    return (isinstance(e, aiohttp.ClientOSError) and not isinstance(e, aiohttp.ClientConnectorError)
            and e.errno in (errno.ECONNRESET, errno.EPIPE))


def _not_connected(e: BaseException) -> bool:
    """No connection was made at all (refused, unreachable, DNS, TLS handshake, connect timeout)."""
    return isinstance(e, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))


def may_fail_over(method: str, e: BaseException) -> bool:
    """Whether a request that failed this way may go to another API server: it was not applied."""
    return _not_connected(e) or _never_sent(e) or (method in _REPLAYABLE and _closed_before_answer(e))


def split_servers(server: str) -> list[str]:
    """``https://a:6443,https://b:6443`` -> both URLs (no trailing slash), in order."""
    return [s.strip().rstrip("/") for s in server.split(",") if s.strip()] or [server.rstrip("/")]


def _resend_reason(method: str, e: BaseException, resent: int) -> str | None:
    """Why a failed request may be sent again at once, or None (then the GET backoff applies)."""
    if resent >= _MAX_RESENDS:
        return None
    if _never_sent(e):
        return "never sent: the pooled connection was closing"
    if method in _REPLAYABLE and resent == 0 and _closed_before_answer(e):
        return "the server closed the connection before answering"
    return None


def _socket_dropped(transport: asyncio.BaseTransport | None) -> bool:
    """Whether an idle keep-alive connection is readable: EOF, a reset or stray bytes, all of
    which mean it cannot carry a request (urllib3's ``is_connection_dropped``, Apache HttpClient's
    stale check). A healthy idle HTTP/1.1 connection has nothing to read: the event loop reads
    everything as it comes, so what waits unread arrived while the loop was busy."""
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        fd = sock.fileno()
        if fd < 0:
            return True
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Connector(aiohttp.TCPConnector):
    """A ``TCPConnector`` that polls a pooled connection's socket before handing it out again.

    aiohttp only asks the transport ``is_closing()``, which turns true when the event loop has
    read the server's FIN; when the loop was busy (a long synchronous step) the FIN waits unread
    and a closed connection looks alive: the request then goes to a dead socket. Here such a
    connection is closed and the next one (or a new one) taken. Each turn of the loop drops one
    pooled connection, so it ends.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._handed_out: weakref.WeakSet[Any] = weakref.WeakSet()

    async def connect(self, *args: Any, **kwargs: Any) -> Any:
        while True:
            conn = await super().connect(*args, **kwargs)
            proto = conn.protocol
            if proto is None:
                return conn
            if proto not in self._handed_out:  # a new connection: nothing to check
                self._handed_out.add(proto)
                return conn
            if not _socket_dropped(proto.transport):
                return conn
            log.debug("dropping a pooled connection the server closed")
            conn.close()


class _Response:
    """One whole answer, read before the connection went back to the pool."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        charset = "utf-8"
        mime = self.headers.get("Content-Type", "")
        m = re.search(r"charset=\"?([\w.:-]+)", mime, re.IGNORECASE)
        if m:
            charset = m.group(1)
        try:
            return self.body.decode(charset, errors="replace")
        except LookupError:
            return self.body.decode("utf-8", errors="replace")


def _query_value(v: Any) -> str:
    if isinstance(v, bool):  # httpx's and Kubernetes' spelling, not Python's "True"
        return "true" if v else "false"
    return v if isinstance(v, str) else str(v)


def _query(params: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """Query parameters without the ``None`` ones; a list or tuple value repeats the key."""
    if not params:
        return None
    out: list[tuple[str, str]] = []
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, (list, tuple)):
            out.extend((k, _query_value(x)) for x in v)
        else:
            out.append((k, _query_value(v)))
    return out or None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _env_proxy(server: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    """``HTTP(S)_PROXY`` / ``NO_PROXY`` for the server, read once; never for a loopback server."""
    try:
        url = URL(server)
        if _is_loopback(url.host):
            return None, None
        return get_env_proxy_for_url(url)
    except (LookupError, ValueError):
        return None, None


class WatchStream:
    """The events of one watch request, as ``(type, object)``; close it (or use ``async with``).

    ``type`` is ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK``; an ``ERROR`` event raises its
    typed error (``GoneError`` for 410 Expired). The stream ends when the server ends it
    (``timeoutSeconds``); a broken connection raises ``ConnectionFailedError``.
    """

    def __init__(self, gen: AsyncGenerator[WatchEvent, None]) -> None:
        self._gen = gen

    def __aiter__(self) -> "WatchStream":
        return self

    async def __anext__(self) -> WatchEvent:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        await self._gen.aclose()

    async def __aenter__(self) -> "WatchStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def default_user_agent(component: str | None = None) -> str:
    """``<component>/<version> (<os>/<arch>) minik8s``: the program's name unless a component names itself."""
    import platform
    import sys

    name = component or (sys.argv[0].rsplit("/", 1)[-1] if sys.argv and sys.argv[0] else "") or "minik8s"
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine() or "unknown")
    return f"{name}/v0.1.0 ({platform.system().lower()}/{machine}) minik8s"


class ApiClient:
    """Dict-level Kubernetes verbs over one ``aiohttp.ClientSession`` (see the module docstring).

    ``namespace=None`` means: for ``list``/``watch`` all namespaces; for the other verbs on a
    namespaced resource the body's ``metadata.namespace``, else the config's namespace.

    The client may be built outside an event loop; its session is made in the loop that sends the
    first request (and made again if the client is later used from another loop).
    """

    def __init__(self, config: ClientConfig | str | None = None, *, timeout: float = 30.0,
                 get_retries: int = 3, on_warning: Callable[[str], None] | None = None,
                 user_agent: str | None = None) -> None:
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
        self._servers = split_servers(config.server)
        self._current = 0  # the address requests go to; moves on when one cannot be reached
        # The user agent up to its first '/' is the field manager of this client's writes
        # (metadata.managedFields), as for Kubernetes' components ("kube-scheduler/v1.32.0 ...").
        self._headers = {"Accept": "application/json", "User-Agent": user_agent or default_user_agent(),
                         **config.auth_headers}
        basic = config.basic_auth
        # aiohttp refuses an auth argument next to an explicit Authorization header.
        has_authorization = any(k.lower() == "authorization" for k in self._headers)
        self._auth = aiohttp.BasicAuth(*basic) if basic and not has_authorization else None
        # Built once, here: loading the CA and client certificate is not free (and fails early).
        self._ssl: ssl.SSLContext | bool = config.verify
        self._proxies = [_env_proxy(s) for s in self._servers]
        self._request_timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @property
    def server(self) -> str:
        return self.config.server

    @property
    def _base(self) -> str:
        return self._servers[self._current]

    @property
    def _proxy(self) -> URL | None:
        return self._proxies[self._current][0]

    @property
    def _proxy_auth(self) -> aiohttp.BasicAuth | None:
        return self._proxies[self._current][1]

    def _move_on(self, used: int) -> None:
        """The address ``used`` failed: the next one becomes current (unless another request did that)."""
        if self._current == used and len(self._servers) > 1:
            self._current = (used + 1) % len(self._servers)
            log.info("API server %s unreachable; using %s", self._servers[used], self._base)

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        http = self._http
        if http is not None and self._http_loop is loop:
            return http
        if self._closed:
            raise RuntimeError("Cannot send a request, as the ApiClient has been closed.")
        if http is not None:
            # Made in another (usually finished) loop: its connections cannot be used or closed here.
            http.detach()
        # limit=0: watches hold a connection each, so a fixed pool would starve other requests.
        connector = _Connector(limit=0, ssl=self._ssl)
        http = aiohttp.ClientSession(
            connector=connector, headers=self._headers, auth=self._auth, timeout=self._request_timeout)
        if hasattr(http, "_retry_connection"):
            # aiohttp resends GET, HEAD, OPTIONS, TRACE, PUT and DELETE once on a lost connection,
            # even when the request went out: a PUT or DELETE whose answer was lost would be applied
            # twice. _send decides instead (see the module docstring); no public switch exists.
            http._retry_connection = False
        self._http = http
        self._http_loop = loop
        return http

    async def close(self) -> None:
        self._closed = True
        http, self._http = self._http, None
        if http is None:
            return
        try:
            same_loop = self._http_loop is asyncio.get_running_loop()
        except RuntimeError:
            same_loop = False
        if same_loop:
            await http.close()
        else:
            http.detach()

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
    def _url(self, path: str) -> str:
        if "://" in path:
            return path
        return self._base + (path if path.startswith("/") else "/" + path)

    def _note_warnings(self, headers: CIMultiDictProxy[str]) -> None:
        self.last_warnings = parse_warnings(headers.getall("Warning", []))
        if self.on_warning is not None:
            for w in self.last_warnings:
                self.on_warning(w)

    async def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    json: Any = None, content: bytes | None = None,
                    headers: Mapping[str, str] | None = None) -> _Response:
        if json is not None:
            content = orjson.dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        http = self._session()
        query = _query(params)
        attempt = 0  # GET retries after a backoff
        resent = 0  # immediate resends (see _resend_reason)
        moved = 0  # other addresses tried (see may_fail_over)
        while True:
            used = self._current
            try:
                async with http.request(method, self._url(path), params=query, data=content, headers=headers,
                                        allow_redirects=False, proxy=self._proxy,
                                        proxy_auth=self._proxy_auth) as r:
                    resp = _Response(r.status, r.headers, await r.read())
                break
            except _TRANSPORT as e:
                if moved < len(self._servers) - 1 and may_fail_over(method, e):
                    moved += 1
                    self._move_on(used)
                    log.debug("%s %s: %s; sending it to %s", method, path, e, self._base)
                    continue
                why = _resend_reason(method, e, resent)
                if why is not None:
                    resent += 1
                    log.debug("%s %s: %s (%s); sending it again", method, path, why, e)
                    continue
                if method != "GET" or attempt >= self.get_retries or not isinstance(e, _RETRYABLE):
                    raise _transport_error(e, method, path) from e
                delay = 0.1 * 2 ** attempt
                attempt += 1
                log.debug("GET %s failed (%s); retry %d in %.1fs", path, e, attempt, delay)
                await asyncio.sleep(delay)
        self._note_warnings(resp.headers)
        if resp.status >= 300:
            raise _error_from_response(resp.status, resp.body)
        return resp

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                      json: Any = None, content: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> Any:
        """The raw escape hatch: any path, parsed JSON back (text if the answer is not JSON)."""
        resp = await self._send(method, path, params=params, json=json, content=content, headers=headers)
        if not resp.body:
            return None
        if "json" in resp.headers.get("Content-Type", ""):
            return orjson.loads(resp.body)
        return resp.text

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        resp = await self._send(method, path, **kw)
        data = orjson.loads(resp.body) if resp.body else {}
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
                    field_validation: str | None = None, field_manager: str | None = None,
                    force: bool | None = None) -> dict[str, Any]:
        """PATCH; ``patch_type="apply"`` is server-side apply (``field_manager`` required by the
        server, ``force`` takes conflicting fields from other managers)."""
        res = resource_for(resource)
        if patch_type not in PATCH_CONTENT_TYPES:
            raise errors.BadRequestError(message=f"unknown patch type {patch_type!r}")
        params = {"dryRun": "All" if dry_run else None, "fieldValidation": field_validation,
                  "fieldManager": field_manager, "force": None if force is None else ("true" if force else "false")}
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
                     headers: Mapping[str, str] | None = None) -> AsyncGenerator[WatchEvent, None]:
        # No total timeout, and no read timeout without timeoutSeconds: a quiet watch is not a dead one.
        read = timeout_seconds + 30.0 if timeout_seconds is not None else None
        timeout = aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_read=read)
        http = self._session()
        query = _query(params)
        used = self._current
        try:
            resent = moved = 0
            while True:  # the request is sent again as any GET's (the stream itself is not resumed here)
                used = self._current
                try:
                    resp = await http.get(self._url(path), params=query, headers=headers, timeout=timeout,
                                          allow_redirects=False, proxy=self._proxy, proxy_auth=self._proxy_auth)
                    break
                except _TRANSPORT as e:
                    if moved < len(self._servers) - 1 and may_fail_over("GET", e):
                        moved += 1
                        self._move_on(used)
                        continue
                    why = _resend_reason("GET", e, resent)
                    if why is None:
                        raise
                    resent += 1
                    log.debug("watch %s: %s (%s); sending it again", path, why, e)
            async with resp:
                self._note_warnings(resp.headers)
                if resp.status >= 300:
                    raise _error_from_response(resp.status, await resp.read())
                try:
                    # Lines are split here, not with content.readline(): that one refuses lines longer
                    # than its buffer (128 KiB), and one event carries a whole object.
                    pending: list[bytes] = []
                    async for chunk in resp.content.iter_any():
                        start = 0
                        while (nl := chunk.find(b"\n", start)) >= 0:
                            line = chunk[start:nl]
                            start = nl + 1
                            if pending:
                                pending.append(line)
                                line = b"".join(pending)
                                pending.clear()
                            if line.strip():
                                yield _watch_event(line, path)
                        if start < len(chunk):
                            pending.append(chunk[start:])
                    tail = b"".join(pending)
                    if tail.strip():
                        yield _watch_event(tail, path)
                finally:
                    if not resp.content.at_eof():
                        resp.close()  # a watch given up early: drop its connection, do not pool it
        except _TRANSPORT as e:
            self._move_on(used)  # a broken watch: the informer's next one goes to the next address
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


def _watch_event(line: bytes, path: str) -> WatchEvent:
    try:
        event = orjson.loads(line)
        etype, obj = str(event["type"]), event["object"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
        text = line[:200].decode(errors="replace")
        raise errors.InternalError(message=f"malformed watch event from {path}: {text!r}") from e
    if etype == "ERROR":
        raise errors.ApiError.from_status(obj if isinstance(obj, dict) else {})
    return etype, obj


def _facts(model: type[K8sModel]) -> ApiResource:
    if not issubclass(model, TypeFacts) or not model.plural:
        raise TypeError(f"{model.__name__} is not a top-level kind (no type facts)")
    return ApiResource.of(model)


async def wait_for_apiserver(client: ApiClient, *, attempts: int = 60) -> None:
    """Until the apiserver answers ``GET /version`` (docker-compose may start a component first);
    the last attempt's error is raised."""
    for i in range(attempts):
        try:
            await client.request("GET", "/version")
            return
        except errors.ServiceUnavailableError:
            await asyncio.sleep(min(0.2 * (i + 1), 2.0))
    await client.request("GET", "/version")


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
           "ResourceLike", "WatchEvent", "WatchStream", "is_connection_refused", "parse_warnings", "resource_for",
           "retry_on_conflict"]
