"""Every watch stream of one page over one WebSocket: the console's watch multiplexer.

Why: a watch is one long HTTP/1.1 response, and a browser opens at most 6 connections to a host,
so a page that followed more than 5 collections, or two console tabs, ran out of connections and
hung. The page's informers (console/static/store.js) now share one socket, whatever their number.

Data flow: the page (console/static/api.js ``watch``) opens ``GET /console/watch`` as a WebSocket
(console.server checks its session cookie and its Origin first) -> JSON text frames:
    page -> console   {"op": "watch", "id": N, "path": "/api/v1/pods", "query": {"resourceVersion": ...}}
                      {"op": "cancel", "id": N}
    console -> page   {"id": N, "event": {...}}               one per line of the API's watch stream
                      {"id": N, "end": true}                  the API ended the stream (its timeout)
                      {"id": N, "error": Status, "code": C}   the API's refusal as it sent it (403, 410,
                                                              ...); 503 when it cannot be reached or the
                                                              stream broke; 400 or 429 for a watch this
                                                              socket refuses (a path outside /api and
                                                              /apis, too many watches)
-> each watch is one task: a streaming ``GET path?watch=1&query`` sent to the API server with the
session user's own credential (as console.upstream relays), so RBAC decides what each user may
watch -> the stream's lines are passed on as they come, spliced into the frame as the API encoded
them (never decoded and encoded again) -> a cancel, the socket closing, a logout (``Sockets``) or
the console stopping cancels the task and with it the upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from console.sessions import Identity

log = logging.getLogger(__name__)

MAX_WATCHES = 100  # per socket: a page shows a few dozen collections at most
MAX_MESSAGE = 64 * 1024  # a page's message is one watch or cancel
MAX_ERROR_BODY = 1024 * 1024
HEARTBEAT_SECONDS = 30.0  # a page that vanished without closing is found (and its watches ended)
CLOSE_LOGGED_OUT = 4401  # the session ended: the page shows its login form
# A path of the Kubernetes API: /api or /apis, then segments of URL characters (percent escapes kept).
API_PATH = re.compile(r"/apis?(/[A-Za-z0-9\-._~%!$&'()*+,;=:@]+)*")


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}


def error_frame(wid: Any, code: int, error: dict[str, Any]) -> bytes:
    return orjson.dumps({"id": wid, "error": error, "code": code})


def watch_path(path: Any) -> str | None:
    """``path`` if it names something under /api or /apis (no dot segments, no query), else None."""
    if not isinstance(path, str) or not API_PATH.fullmatch(path):
        return None
    segments = path.lower().replace("%2e", ".").split("/")
    return None if "." in segments or ".." in segments else path


def watch_query(query: Any) -> dict[str, str] | None:
    """The query of a watch as strings (plus ``watch=1``), or None when it is not a flat object."""
    if query is None:
        query = {}
    if not isinstance(query, dict):
        return None
    out: dict[str, str] = {}
    for key, value in query.items():
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            out[key] = str(value)
        else:
            return None
    out["watch"] = "1"
    return out


class Gone(Exception):
    """The page's socket closed: nothing more can be sent to it."""


class Mux:
    """One page's socket: its watches by id, each a task streaming from the API server."""

    def __init__(self, ws: web.WebSocketResponse, http: aiohttp.ClientSession, base_url: str,
                 identity: Identity, *, max_watches: int = MAX_WATCHES,
                 alive: Callable[[], bool] = lambda: True) -> None:
        self.ws = ws
        self.http = http
        self.base_url = base_url
        self.identity = identity
        self.max_watches = max_watches
        self.alive = alive
        self.watches: dict[int, asyncio.Task[None]] = {}
        self._sending = asyncio.Lock()  # one frame at a time, each watch waiting for the page to read

    async def send(self, frame: bytes) -> None:
        async with self._sending:
            if self.ws.closed:
                raise Gone
            try:
                await self.ws.send_frame(frame, aiohttp.WSMsgType.TEXT)
            except ConnectionResetError as e:
                raise Gone from e

    async def refuse(self, wid: Any, code: int, reason: str, message: str) -> None:
        await self.send(error_frame(wid, code, status(code, reason, message)))

    async def run(self) -> None:
        """The page's messages until its socket closes; then every watch is cancelled."""
        try:
            async for msg in self.ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    await self.refuse(None, 400, "BadRequest", "the console's watch socket takes JSON text frames")
                    continue
                if not await self.message(msg.data):
                    break
        except Gone:
            pass
        finally:
            await self.cancel_all()

    async def message(self, text: str) -> bool:
        """One message of the page; False when the socket is to close (the session ended)."""
        try:
            op = orjson.loads(text)
        except orjson.JSONDecodeError:
            op = None
        wid = op.get("id") if isinstance(op, dict) else None
        if type(wid) is not int:
            await self.refuse(None, 400, "BadRequest", 'a message is a JSON object with an integer "id"')
            return True
        assert isinstance(op, dict)
        if op.get("op") == "cancel":
            await self.cancel(wid)
            return True
        if op.get("op") != "watch":
            await self.refuse(wid, 400, "BadRequest", 'a message\'s "op" is "watch" or "cancel"')
            return True
        if not self.alive():
            await self.ws.close(code=CLOSE_LOGGED_OUT, message=b"the session ended: log in again")
            return False
        path, query = watch_path(op.get("path")), watch_query(op.get("query"))
        if path is None:
            await self.refuse(wid, 400, "BadRequest", f"only paths under /api and /apis can be watched, not {op.get('path')!r}")
        elif query is None:
            await self.refuse(wid, 400, "BadRequest", 'a watch\'s "query" is an object of strings')
        elif wid in self.watches:
            await self.cancel(wid)
            await self.refuse(wid, 400, "BadRequest", f"watch {wid} was open already: both are ended")
        elif len(self.watches) >= self.max_watches:
            await self.refuse(wid, 429, "TooManyRequests",
                              f"this page has {len(self.watches)} watches open, the most one connection to the "
                              "console carries: cancel one first")
        else:
            task = asyncio.create_task(self.stream(wid, path, query), name=f"watch {wid} {path}")
            self.watches[wid] = task
            task.add_done_callback(lambda t: self.watches.pop(wid, None) if self.watches.get(wid) is t else None)
        return True

    async def cancel(self, wid: int) -> None:
        task = self.watches.pop(wid, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def cancel_all(self) -> None:
        tasks = list(self.watches.values())
        self.watches.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stream(self, wid: int, path: str, query: dict[str, str]) -> None:
        """One watch: the API's stream, line by line, as frames of ``wid``; then its end or its error."""
        url = URL(self.base_url + path, encoded=True).update_query(query)
        headers = {"Accept": "application/json", "Accept-Encoding": "identity", **self.identity.headers}
        try:
            try:
                upstream = await self.http.get(url, headers=headers, ssl=self.identity.ssl, auto_decompress=True,
                                               timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as e:
                await self.refuse(wid, 503, "ServiceUnavailable", f"the API server at {self.base_url} cannot be reached: {e}")
                return
            async with upstream:
                if upstream.status >= 300:
                    await self.send(error_frame(wid, upstream.status, await self.refusal(upstream)))
                    return
                try:
                    await self.relay_lines(wid, upstream)
                except (aiohttp.ClientError, ConnectionResetError, asyncio.TimeoutError) as e:
                    # The API server went away mid-stream (a restart): the page resumes from its resourceVersion.
                    log.info("watch %s ended: %s", path, e)
                    await self.refuse(wid, 503, "ServiceUnavailable", f"the watch stream from the API server broke: {e}")
                    return
            await self.send(orjson.dumps({"id": wid, "end": True}))
        except Gone:
            return

    async def relay_lines(self, wid: int, upstream: aiohttp.ClientResponse) -> None:
        prefix = b'{"id":%d,"event":' % wid
        pending: list[bytes] = []  # the start of a line not ended yet (an object may come in many chunks)
        async for chunk in upstream.content.iter_any():
            pending.append(chunk)
            if b"\n" not in chunk:
                continue
            *lines, rest = b"".join(pending).split(b"\n")
            pending = [rest] if rest else []
            for line in lines:
                if line.strip():
                    await self.send(prefix + line.strip() + b"}")
        if (last := b"".join(pending).strip()):
            await self.send(prefix + last + b"}")

    async def refusal(self, upstream: aiohttp.ClientResponse) -> dict[str, Any]:
        """The API's Status of a non-2xx answer (or one made of its status line and body)."""
        chunks: list[bytes] = []
        try:
            async for chunk in upstream.content.iter_any():
                chunks.append(chunk)
                if sum(map(len, chunks)) >= MAX_ERROR_BODY:
                    break
        except (aiohttp.ClientError, ConnectionResetError, asyncio.TimeoutError):
            pass
        body = b"".join(chunks)[:MAX_ERROR_BODY]
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict) and answer.get("kind") == "Status":
            return answer
        text = body.decode("utf-8", "replace").strip()[:500]
        return status(upstream.status, upstream.reason or "", f"the API server answered {upstream.status}"
                      + (f": {text}" if text else ""))


class Sockets:
    """The open watch sockets by session id, so a logout (or the console stopping) closes them."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[web.WebSocketResponse]] = {}

    def add(self, sid: str, ws: web.WebSocketResponse) -> None:
        self._by_session.setdefault(sid, set()).add(ws)

    def discard(self, sid: str, ws: web.WebSocketResponse) -> None:
        open_ = self._by_session.get(sid)
        if open_ is not None:
            open_.discard(ws)
            if not open_:
                del self._by_session[sid]

    async def close(self, sid: str | None, *, code: int = CLOSE_LOGGED_OUT, message: str = "logged out") -> None:
        await asyncio.gather(*(ws.close(code=code, message=message.encode())
                               for ws in list(self._by_session.get(sid or "", ()))))

    async def close_all(self) -> None:
        for sid in list(self._by_session):
            await self.close(sid, code=aiohttp.WSCloseCode.GOING_AWAY, message="the console is stopping")

    def __len__(self) -> int:
        return sum(len(s) for s in self._by_session.values())


async def serve(request: web.Request, http: aiohttp.ClientSession, base_url: str, identity: Identity, *,
                sid: str, sockets: Sockets, alive: Callable[[], bool], max_watches: int = MAX_WATCHES
                ) -> web.WebSocketResponse:
    """The page's watch socket (its session and Origin checked by the caller) until it closes."""
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    sockets.add(sid, ws)
    try:
        await Mux(ws, http, base_url, identity, max_watches=max_watches, alive=alive).run()
    finally:
        sockets.discard(sid, ws)
        await ws.close()
    return ws
