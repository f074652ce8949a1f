"""Following a container's log from asyncio: a blocking engine iterator on a daemon thread of its own.

Data flow (``kubectl logs -f``): kubelet.server -> ``follow(runtime, id, options, write)`` ->
a daemon thread iterates ``runtime.follow_logs`` (never a pool's thread, which a quiet container
would hold forever) -> chunks handed to the event loop through a bounded ``asyncio.Queue`` (back
pressure) -> ``write``. When the client goes away the iterator is interrupted
(``interrupt_follow``: its engine connection is shut down), so the thread ends at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Awaitable, Callable, Iterator, Mapping

from .cri import ContainerRuntime

log = logging.getLogger(__name__)


def interrupt_follow(it: Iterator[bytes]) -> None:
    """Stops a ``runtime.follow_logs`` iterator from another thread.

    A generator that is blocked inside the engine read cannot be ``close()``d from another
    thread ("generator already executing"): shut its engine stream down instead (the Docker SDK's
    ``CancellableStream.close`` shuts the socket, which wakes the blocked read). Best effort."""
    try:
        close = getattr(it, "close", None)
        if close is not None:
            close()
            return
    except ValueError:
        pass  # executing in the follower thread right now
    except Exception:  # noqa: BLE001 - stopping is best effort
        return
    frame = getattr(it, "gi_frame", None)
    if frame is None:
        return
    try:
        for value in list(frame.f_locals.values()):
            if value is not it and hasattr(value, "close") and type(value).__name__ == "CancellableStream":
                value.close()
    except Exception:  # noqa: BLE001
        log.debug("could not interrupt a log follow", exc_info=True)


async def follow(runtime: ContainerRuntime, container_id: str, options: Mapping[str, Any],
                 write: Callable[[bytes], Awaitable[None]]) -> None:
    """Streams ``runtime.follow_logs(container_id, **options)`` into ``write`` until the container
    stops or ``write`` fails."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=256)
    stop = threading.Event()
    holder: dict[str, Iterator[bytes]] = {}
    opened = threading.Event()

    def put(item: bytes | BaseException | None) -> None:
        # Blocks the follower (back pressure) until the loop took the item, or the request ended.
        fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not stop.is_set():
            try:
                fut.result(timeout=0.5)
                return
            except TimeoutError:
                continue
            except Exception:  # noqa: BLE001 - the loop is gone
                return
        fut.cancel()

    def pump() -> None:
        try:
            it = runtime.follow_logs(container_id, **options)
            holder["it"] = it
            opened.set()
            if stop.is_set():
                interrupt_follow(it)
                return
            for chunk in it:
                if stop.is_set():
                    break
                if chunk:
                    put(chunk)
        except BaseException as e:  # noqa: BLE001 - handed to the loop
            if not stop.is_set():
                put(e)
        finally:
            opened.set()
            put(None)

    thread = threading.Thread(target=pump, name=f"follow-logs-{container_id[:12]}", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            await write(item)
    finally:
        stop.set()
        it = holder.get("it")
        if it is not None and thread.is_alive():
            interrupt_follow(it)  # a socket shutdown: does not block


__all__ = ["follow", "interrupt_follow"]
