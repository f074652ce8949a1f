"""One forwarded TCP connection: bytes both ways between a client's stream and the pod.

Data flow: the port-forward session puts the client's bytes into an ``Inbox`` (without waiting, so a
slow pod never stalls the session's other connections, until one inbox holds its limit: then the
session waits, backpressure instead of unbounded memory) and marks the client's end (FIN: ``end``;
reset: ``drop``); ``forward`` writes them to the pod's socket and sends what the pod answers through
``send`` (False once the client's side of the stream is gone).

How a connection ends (containerd's PortForward, slightly kinder): when the pod closes, the client
direction gets ``close_grace`` seconds to finish; when the client half-closes (FIN), the pod's socket
is half-closed too and the pod may still answer until it closes.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Awaitable, Callable

Sender = Callable[[bytes], Awaitable[bool]]  # False: the client's side of the stream is gone


class Inbox:
    """Bytes from the client for one pod connection, with end-of-stream and reset marks."""

    def __init__(self, limit: int) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._limit = limit
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.eof = False
        self.dropped = False  # reset by the client, or the pod side is gone

    async def put(self, data: bytes) -> None:
        if self.dropped or self.eof:
            return
        self._chunks.append(data)
        self._size += len(data)
        self._ready.set()
        if self._size > self._limit:
            self._room.clear()
            await self._room.wait()

    def end(self) -> None:
        self.eof = True
        self._ready.set()

    def drop(self) -> None:
        self.dropped = True
        self._chunks.clear()
        self._size = 0
        self._ready.set()
        self._room.set()

    async def get(self) -> bytes | None:
        """The next chunk; None at the end (``eof``) or when dropped."""
        while not self._chunks and not self.eof and not self.dropped:
            self._ready.clear()
            await self._ready.wait()
        if self.dropped or not self._chunks:
            return None
        data = self._chunks.popleft()
        self._size -= len(data)
        if self._size <= self._limit:
            self._room.set()
        return data


async def _client_to_pod(inbox: Inbox, writer: asyncio.StreamWriter) -> bool:
    """Copies until the client's end; True when the client half-closed cleanly (FIN)."""
    try:
        while (data := await inbox.get()) is not None:
            writer.write(data)
            await writer.drain()
        if inbox.eof and not inbox.dropped and writer.can_write_eof():
            writer.write_eof()
            return True
    except (ConnectionError, OSError):
        pass
    return False


async def _pod_to_client(reader: asyncio.StreamReader, send: Sender, read_size: int) -> None:
    try:
        while data := await reader.read(read_size):
            if not await send(data):
                return
    except (ConnectionError, OSError):
        pass


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, inbox: Inbox, send: Sender,
                  close_grace: float, read_size: int) -> None:
    """Copies both ways until the connection is over (see the module's rules); closes the pod side."""
    up = asyncio.create_task(_client_to_pod(inbox, writer))
    down = asyncio.create_task(_pod_to_client(reader, send, read_size))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if up.done() and up.result():
            await down  # the client half-closed: the pod may still answer, and ends the connection
        else:
            await asyncio.wait({up, down}, timeout=close_grace)
    finally:
        for t in (up, down):
            t.cancel()
        await asyncio.gather(up, down, return_exceptions=True)
        inbox.drop()
        writer.close()


__all__ = ["Inbox", "Sender", "forward"]
