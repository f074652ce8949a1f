"""exec and attach over WebSocket: the kubelet's ``/exec`` and ``/attach`` handlers, through Docker.

Data flow (``kubectl exec -it web -- sh``; the API server relays the same messages):

    GET /exec/NS/web/CONTAINER?command=sh&stdin=1&stdout=1&tty=1 (Upgrade: websocket, v5.channel.k8s.io)
      -> checks before the upgrade (400 as text: no command, no stream, not a WebSocket;
         ctx.container: 404 unknown pod/container, 400 not running)
      -> upgrade with the first offered protocol we speak (none offered: the unnamed binary one)
      -> the empty "connected" message on the lowest writable channel
      -> TTY: the client's first size (waited for briefly), so the process starts with it
      -> runtime.exec_stream (thread pool) -> channels.ChannelSession.run: stdio <-> channels,
         resize -> runtime.exec_resize
      -> the stream ends: runtime.exec_exit_code -> the status on the error channel
         (Success, or NonZeroExitCode with the code: kubectl exits with it) -> close
      -> the client leaves first: the exec's connection is closed, so the process reads EOF on
         its stdin (a TTY gets ^Ds first: Docker keeps a TTY exec alive otherwise); nothing else is written

attach is the same against ``runtime.attach_stream`` (output from now on; stdin only when the
container was made with ``stdin: true``; resize -> runtime.resize); it ends with Success when the
container's output ends, and leaving it never stops the container.

The container may also come from the query (``?container=``): the API server's own path
``/api/v1/namespaces/NS/pods/NAME/exec`` reaches these handlers in tests (tests/kubelet/streamharness.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from aiohttp import web

from kubelet.cri import ContainerRuntimeError, RuntimeConflict, StdioStream
from machinery import remotecommand as rc

from .channels import ChannelSession, Resize, StreamOptions, discard_until_end, parse_options
from .context import ContainerTarget, StreamError, StreamingContext

log = logging.getLogger(__name__)

# After the output ends the engine may need a moment to record the exit code (dockershim polled too).
EXIT_CODE_POLLS = 20
EXIT_CODE_POLL_INTERVAL = 0.05
# How long a TTY exec waits for the client's terminal size before it starts (kubectl sends it at once).
INITIAL_SIZE_WAIT = 0.25
# How long a TTY exec whose client left may take to end after its ^Ds before its connection closes.
HANGUP_GRACE = 2.0
HANGUP_TRIES = 4
# The first resize may arrive before the engine has started the process ("not running"): retried.
RESIZE_RETRIES = 5


def _bad_request(message: str) -> web.Response:
    return web.Response(status=400, text=message)


def _names(request: web.Request) -> tuple[str, str, str]:
    m = request.match_info
    return m["namespace"], m["pod"], m.get("container") or request.query.get("container", "")


def _internal(e: Exception) -> dict[str, Any]:
    """apierrors.NewInternalError's status (what the kubelet writes when the runtime fails)."""
    status = rc.error_status(f"Internal error occurred: {e}")
    status["details"] = {"causes": [{"message": str(e)}]}
    return status


async def _prepare(request: web.Request, ctx: StreamingContext,
                   opts: StreamOptions) -> tuple[ChannelSession, ContainerTarget] | web.Response:
    """The checks Kubernetes makes before upgrading, then the upgrade and the hello message."""
    if not web.WebSocketResponse(protocols=rc.REMOTECOMMAND_PROTOCOLS).can_prepare(request).ok:
        return _bad_request("Upgrade request required")
    ns, pod, container = _names(request)
    try:
        target = await ctx.container(ns, pod, container)
    except StreamError as e:
        return web.Response(status=e.status, text=e.message)
    offered = [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",")]
    protocol = rc.choose_protocol([p for p in offered if p], rc.REMOTECOMMAND_PROTOCOLS)
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0)
    await ws.prepare(request)
    session = ChannelSession(ws, protocol, opts)
    await session.hello()
    return session, target


async def _resize_with_retries(resize: Resize, size: rc.TerminalSize) -> None:
    for attempt in range(RESIZE_RETRIES):
        try:
            await resize(size)
            return
        except RuntimeConflict:
            await asyncio.sleep(0.02 * (attempt + 1))
        except ContainerRuntimeError as e:
            log.debug("resize to %sx%s failed: %s", size.width, size.height, e)
            return


async def _exit_code(ctx: StreamingContext, exec_id: str) -> int | None:
    for _ in range(EXIT_CODE_POLLS):
        code: int | None = await ctx.run_blocking(ctx.runtime.exec_exit_code, exec_id)
        if code is not None:
            return code
        await asyncio.sleep(EXIT_CODE_POLL_INTERVAL)
    return None


async def _hang_up(stream: StdioStream) -> None:
    """A TTY exec whose client left: Docker keeps its process alive when the connection closes, so
    it gets EOF as a terminal gives it (^D, which ends a shell at its prompt), again until it ends
    (a ^D typed while the shell is between two lines may be flushed) or HANGUP_GRACE passes."""
    for _ in range(HANGUP_TRIES):
        try:
            stream.write(b"\x04")
        except ConnectionError:
            return
        if await discard_until_end(stream, timeout=HANGUP_GRACE / HANGUP_TRIES):
            return


async def _serve(session: ChannelSession, stream: StdioStream, ctx: StreamingContext, *,
                 resize: Resize, command: Sequence[str] | None) -> None:
    """Relays, then writes the ending status (exec: from the exit code; attach: Success)."""
    async def on_resize(size: rc.TerminalSize) -> None:
        await _resize_with_retries(resize, size)

    try:
        ended = await session.run(stream, resize=on_resize)
        if not ended:
            if stream.tty and session.opts.stdin and stream.exec_id is not None:
                await _hang_up(stream)
            return  # the client left: nobody to tell
        status = rc.success_status()
        if stream.exec_id is not None:
            try:
                code = await _exit_code(ctx, stream.exec_id)
            except ContainerRuntimeError as e:
                status = _internal(e)
            else:
                if code is None:
                    log.warning("exec %s: output ended but the process still runs", stream.exec_id[:12])
                else:
                    status = rc.exit_status(code, list(command or []))
        await session.finish(status)
    finally:
        stream.close()
        if not session.ws.closed:
            await session.ws.close()


async def _handle(request: web.Request, ctx: StreamingContext, *, command: list[str] | None) -> web.StreamResponse:
    """One exec (``command``) or attach (None) session, from the checks to the closing status."""
    try:
        opts = parse_options(request.query)
    except ValueError as e:
        return _bad_request(str(e))
    prepared = await _prepare(request, ctx, opts)
    if isinstance(prepared, web.Response):
        return prepared
    session, target = prepared
    rt = ctx.runtime
    try:
        if command is None:
            stream: StdioStream = await ctx.run_blocking(
                rt.attach_stream, target.id, stdin=opts.stdin and target.stdin, stdout=opts.stdout, stderr=opts.stderr)
        else:
            size = await session.initial_size(INITIAL_SIZE_WAIT) if opts.tty else None
            stream = await ctx.run_blocking(rt.exec_stream, target.id, command, stdin=opts.stdin, stdout=opts.stdout,
                                            stderr=opts.stderr, tty=opts.tty,
                                            size=(size.width, size.height) if size else None)
    except ContainerRuntimeError as e:
        log.info("%s %s failed: %s", "exec in" if command else "attach to", target.id[:12], e)
        await session.finish(_internal(e))
        return session.ws

    async def resize(size: rc.TerminalSize) -> None:
        if stream.exec_id is None:
            await ctx.run_blocking(rt.resize, target.id, width=size.width, height=size.height)
        else:
            await ctx.run_blocking(rt.exec_resize, stream.exec_id, width=size.width, height=size.height)

    await _serve(session, stream, ctx, resize=resize, command=command)
    return session.ws


async def handle_exec(request: web.Request, ctx: StreamingContext) -> web.StreamResponse:
    command = request.query.getall("command", [])
    if not command:
        return _bad_request("you must specify at least 1 command")
    return await _handle(request, ctx, command=command)


async def handle_attach(request: web.Request, ctx: StreamingContext) -> web.StreamResponse:
    return await _handle(request, ctx, command=None)


__all__ = ["handle_attach", "handle_exec"]
