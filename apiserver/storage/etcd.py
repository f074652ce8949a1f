"""The etcd implementation of ``Storage`` over aetcd: the only module that imports an etcd client.

Create is a transaction guarded by ``create_revision == 0``; update and delete are guarded by
``mod_revision == expected``. Every aetcd/gRPC failure is translated here into the typed
storage errors, so nothing above ever sees a gRPC exception.

Several endpoints (``--etcd-servers http://a:2379,http://b:2379,http://c:2379``, members of one
cluster): aetcd speaks to one address per client, so there is one client per endpoint and every
call goes to the current one. A call that finds its endpoint unreachable moves to the next one;
reads (get, list, probe, watch) are sent again there at once (each endpoint once), and so is a
write whose connection was never made (gRPC's "failed to connect": nothing was sent). A write that
was sent and lost its answer is never sent again: it may have been applied, so it is a 503.

With a value transformer (``apiserver.encryption``: Secrets encrypted at rest) every value is
transformed here on its way to etcd and back, so etcd never holds the plaintext and everything
above sees only plaintext; a value that cannot be read back is ``UnreadableValueError`` for a get
and an item or event with ``error`` set (and no value) in a list or watch.
"""

from __future__ import annotations

import asyncio
import builtins
import time
from typing import Any, AsyncIterator, Awaitable, Callable, NoReturn, Protocol, TypeVar
from urllib.parse import urlparse

import aetcd
import aetcd.exceptions as etcd_errors
from aetcd.utils import prefix_range_end

from ..metrics import etcd_observe
from .interface import (
    KeyExistsError,
    KeyNotFoundError,
    KeyValue,
    Probe,
    RevisionCompactedError,
    RevisionConflictError,
    StorageUnavailableError,
    UnreadableValueError,
    WatchEvent,
)

_T = TypeVar("_T")
# gRPC's UNAVAILABLE details that mean the request never left: no connection could be made.
_NOT_SENT = ("failed to connect to all addresses", "dns resolution failed", "connection refused",
             "no route to host", "name resolution", "connect failed")


def parse_endpoint(url: str) -> tuple[str, int]:
    """``http://127.0.0.1:2379`` (or ``host:port``) -> (host, port); the first of a comma list."""
    first = url.split(",")[0].strip()
    parsed = urlparse(first if "//" in first else f"http://{first}")
    return parsed.hostname or "127.0.0.1", parsed.port or 2379


def parse_endpoints(urls: str) -> list[tuple[str, int]]:
    """``http://a:2379,b:2379`` -> [(a, 2379), (b, 2379)]: every endpoint of a comma list, in order."""
    return [parse_endpoint(u) for u in urls.split(",") if u.strip()] or [parse_endpoint("")]


def never_sent(error: BaseException) -> bool:
    """Whether an etcd client error says no connection was made (the request cannot have been applied)."""
    text = str(error).lower()
    return isinstance(error, etcd_errors.ConnectionFailedError) and any(m in text for m in _NOT_SENT)


def _cancelling() -> bool:
    """Whether the calling task is being cancelled. A cancel can come out of an etcd call as the
    call's failure: asyncio.wait_for (Python 3.11) returns the inner call's error when it finished as
    the cancel came, and aetcd's watch stream fails when cancelled. The caller must then get its
    CancelledError, neither a retry nor "etcd is unavailable", which the watch cache, the compactor
    and the allocators retry forever (CI saw a test session's event loop hang at its close on one)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _unavailable(message: str) -> BaseException:
    return asyncio.CancelledError() if _cancelling() else StorageUnavailableError(message)


class ValueTransformer(Protocol):
    """``apiserver.encryption.Transformer``: from_storage raises when a value cannot be read."""

    def to_storage(self, key: bytes, value: bytes) -> bytes: ...

    def from_storage(self, key: bytes, value: bytes) -> bytes: ...


# gRPC refuses a response over 4 MiB by default, and one range of a resource's prefix is one
# response: 30,000 pods are about 100 MB. kube-apiserver's etcd client accepts up to MaxInt32.
GRPC_OPTIONS = {"grpc.max_receive_message_length": 2**31 - 1}


class EtcdStorage:
    def __init__(self, endpoint: str, *, timeout: float = 5.0, transformer: ValueTransformer | None = None) -> None:
        self._endpoints = parse_endpoints(endpoint)
        self._clients = [aetcd.Client(host=host, port=port, timeout=timeout, options=GRPC_OPTIONS)
                         for host, port in self._endpoints]
        self._current = 0
        self._timeout = timeout
        self._transformer = transformer

    def _out(self, key: bytes, value: bytes) -> bytes:
        return value if self._transformer is None else self._transformer.to_storage(key, value)

    def _in(self, key: bytes, value: bytes) -> tuple[bytes, str]:
        """(plaintext, "") or (b"", why it cannot be read)."""
        if self._transformer is None or not value:
            return value, ""
        try:
            return self._transformer.from_storage(key, value), ""
        except Exception as e:  # noqa: BLE001 - any failure to decrypt is this key's error, never the caller's crash
            return b"", str(e) or type(e).__name__

    def _kv(self, key: bytes, value: bytes, revision: int) -> KeyValue:
        return KeyValue(key, *self._unpack(key, value, revision))

    def _unpack(self, key: bytes, value: bytes, revision: int) -> tuple[bytes, int, str]:
        plain, error = self._in(key, value)
        return plain, revision, error

    @property
    def _client(self) -> aetcd.Client:
        return self._clients[self._current]

    async def _call(self, op: Callable[[aetcd.Client], Awaitable[_T]], *, read: bool = False, operation: str = "",
                    key: bytes = b"") -> _T:
        """``_attempt``, timed as ``etcd_request_duration_seconds{operation, type}`` when ``operation``
        names it (Kubernetes' get, list, create, update, delete; ``key`` gives the type); failover
        retries are inside the measured time, as Kubernetes' client retries are."""
        if not operation:
            return await self._attempt(op, read=read)
        start = time.perf_counter()
        failed = False
        try:
            return await self._attempt(op, read=read)
        except Exception:
            failed = True
            raise
        finally:
            etcd_observe(operation, key, time.perf_counter() - start, failed=failed)

    async def _attempt(self, op: Awaitable[_T] | Callable[[aetcd.Client], Awaitable[_T]], *,
                       read: bool = False) -> _T:
        """Run one etcd call: ``op`` is a coroutine for the current endpoint, or (to fail over) a
        function of the client; ``read``: safe to send again whatever happened to the first try."""
        if not callable(op):
            return await self._translate(op)
        # One try per endpoint, and at least two: a read that timed out on a busy etcd (or a request
        # that never reached it) is sent once more, as etcd's own client retries safe calls.
        for tries_left in range(max(len(self._clients), 2) - 1, -1, -1):
            client = self._client
            try:
                return await asyncio.wait_for(op(client), self._timeout)
            except (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError, asyncio.TimeoutError) as e:
                if len(self._clients) > 1 and self._client is client:
                    self._current = (self._current + 1) % len(self._clients)  # the next call goes elsewhere
                if not tries_left or _cancelling() or not (read or never_sent(e)):
                    return await self._translate(_raise(e))
            except Exception as e:  # noqa: BLE001 - translated below, as every other failure
                return await self._translate(_raise(e))
        raise AssertionError("unreachable")

    async def _translate(self, coro: Awaitable[_T]) -> _T:
        try:
            return await asyncio.wait_for(coro, self._timeout)
        except (etcd_errors.ConnectionFailedError, etcd_errors.ConnectionTimeoutError,
                etcd_errors.InternalError, asyncio.TimeoutError) as e:
            raise _unavailable(f"etcd is unavailable: {str(e) or type(e).__name__}") from e
        except etcd_errors.RevisionCompactedError as e:
            raise RevisionCompactedError(e.compacted_revision) from e
        except etcd_errors.ClientError as e:
            raise _unavailable(f"etcd error: {e}") from e

    async def get(self, key: bytes) -> KeyValue:
        res = await self._call(lambda c: c.get(key), read=True, operation="get", key=key)
        if res is None:
            raise KeyNotFoundError(key.decode())
        kv = self._kv(res.key, res.value, res.mod_revision)
        if kv.error:
            raise UnreadableValueError(key, kv.error)
        return kv

    async def list(self, prefix: bytes) -> tuple[list[KeyValue], int]:
        res = await self._call(lambda c: c.get_prefix(prefix), read=True, operation="list", key=prefix)
        items = [self._kv(kv.key, kv.value, kv.mod_revision) for kv in res.kvs]
        return items, res.header.revision

    async def create(self, key: bytes, value: bytes) -> int:
        tx = self._client.transactions
        ok, responses = await self._call(lambda c: c.transaction(
            compare=[tx.create(key) == 0], success=[tx.put(key, self._out(key, value))], failure=[]),
            operation="create", key=key)
        if not ok:
            raise KeyExistsError(key.decode())
        return int(responses[0].response_put.header.revision)

    async def update(self, key: bytes, value: bytes, *, expected_revision: int) -> int:
        tx = self._client.transactions
        ok, responses = await self._call(lambda c: c.transaction(
            compare=[tx.mod(key) == expected_revision],
            success=[tx.put(key, self._out(key, value))],
            failure=[tx.get(key)]), operation="update", key=key)
        if not ok:
            raise self._conflict(key, responses)
        return int(responses[0].response_put.header.revision)

    async def delete(self, key: bytes, *, expected_revision: int | None = None) -> tuple[KeyValue, int]:
        tx = self._client.transactions
        compare = [tx.mod(key) == expected_revision] if expected_revision else [tx.create(key) > 0]
        ok, responses = await self._call(lambda c: c.transaction(
            compare=compare, success=[tx.get(key), tx.delete(key)], failure=[tx.get(key)]),
            operation="delete", key=key)
        if not ok:
            raise self._conflict(key, responses)
        value, meta = responses[0][0]
        revision = int(responses[1].response_delete_range.header.revision)
        return self._kv(key, value, meta.mod_revision), revision

    def _conflict(self, key: bytes, responses: builtins.list[Any]) -> Exception:
        current = responses[0] if responses else []
        if not current:
            return KeyNotFoundError(key.decode())
        value, meta = current[0]
        return RevisionConflictError(self._kv(key, value, meta.mod_revision))

    def _renew(self, client: aetcd.Client) -> None:
        """A new client for ``client``'s endpoint, after a watch on it failed.

        aetcd multiplexes every watch of a client on one stream; when that stream fails (etcd
        restarted), a watch created while it shuts down can be registered and never receive an
        event (seen about once in ten etcd restarts: a watch cache silently stuck). A fresh client
        has no such stream. The old one is closed a little later (requests in flight finish)."""
        if client not in self._clients:
            return  # another watch of the same stream renewed it already
        i = self._clients.index(client)
        host, port = self._endpoints[i]
        self._clients[i] = aetcd.Client(host=host, port=port, timeout=self._timeout, options=GRPC_OPTIONS)

        async def close_later() -> None:
            await asyncio.sleep(30)
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - a dead channel; nothing to do
                pass
        asyncio.get_running_loop().create_task(close_later())

    async def watch(self, prefix: bytes, *, from_revision: int) -> AsyncIterator[WatchEvent]:
        used: list[aetcd.Client] = []

        def start(client: aetcd.Client) -> Awaitable[Any]:
            used.append(client)
            return client.watch(prefix, range_end=prefix_range_end(prefix), start_revision=from_revision,
                                prev_kv=True)
        try:
            watch = await self._call(start, read=True)
        except StorageUnavailableError:
            for client in used:
                self._renew(client)
            raise
        try:
            async for ev in watch:
                kv = ev.kv
                if ev.kind == "DELETE":
                    prev = ev.prev_kv.value if ev.prev_kv is not None else b""
                    yield WatchEvent("DELETE", kv.key, *self._unpack(kv.key, prev, kv.mod_revision))
                else:
                    yield WatchEvent("PUT", kv.key, *self._unpack(kv.key, kv.value, kv.mod_revision))
        except etcd_errors.RevisionCompactedError as e:
            raise RevisionCompactedError(e.compacted_revision) from e
        except etcd_errors.ClientError as e:
            if not _cancelling():
                self._renew(used[-1])
            raise _unavailable(f"etcd watch failed: {e}") from e
        finally:
            try:
                await asyncio.wait_for(watch.cancel(), 2)
            except Exception:  # noqa: BLE001 - a dead connection cannot be cancelled; nothing to do
                pass

    async def current_revision(self) -> int:
        res = await self._call(lambda c: c.get_range(b"\0", b"\0\0"), read=True, operation="list")
        return int(res.header.revision)

    async def probe(self, key: bytes, *, prefix: bool) -> Probe:
        """One range request: etcd's revision, and the keys under ``key`` (or at exactly ``key``):
        how many, and the newest mod_revision (sorted by etcd, keys only, one returned)."""
        request = aetcd.rpc.RangeRequest(
            key=key, range_end=prefix_range_end(key) if prefix else key + b"\0", limit=1, keys_only=True,
            sort_order=aetcd.rpc.RangeRequest.DESCEND, sort_target=aetcd.rpc.RangeRequest.MOD)

        async def _range(client: aetcd.Client) -> Any:
            await client.connect()
            try:
                return await client.kvstub.Range(request, timeout=self._timeout, metadata=client.metadata)
            except aetcd.rpc.AioRpcError as e:
                etcd_errors._handle_exception(e)
        res = await self._call(_range, read=True, operation="list", key=key)
        newest = int(res.kvs[0].mod_revision) if res.kvs else 0
        return Probe(int(res.header.revision), int(res.count), newest)

    async def compact(self, revision: int) -> None:
        try:
            await self._call(lambda c: c.compact(revision))
        except RevisionCompactedError:
            pass  # already compacted at or past this revision
        except StorageUnavailableError as e:
            if "required revision has been compacted" not in str(e):
                raise

    async def healthy(self, *, timeout: float = 1.0) -> bool:
        """Whether an endpoint answers within ``timeout``: the current one, else any other, which
        then becomes current (so a failover to a member that is gone, or to one only the ha
        profile runs, does not keep the API server unready while another member answers)."""
        async def answers(i: int) -> int:
            await asyncio.wait_for(self._clients[i].get_range(b"\0", b"\0\0"), timeout)
            return i

        order = [self._current, *(i for i in range(len(self._clients)) if i != self._current)]
        try:
            await answers(order[0])
            return True
        except Exception:  # noqa: BLE001 - any failure means this endpoint is not healthy
            pass
        results = await asyncio.gather(*(answers(i) for i in order[1:]), return_exceptions=True)
        alive = [r for r in results if isinstance(r, int)]
        if alive:
            self._current = alive[0]
        return bool(alive)

    async def close(self) -> None:
        for client in self._clients:
            try:
                await client.close()
            except Exception:  # noqa: BLE001
                pass


async def _raise(error: BaseException) -> NoReturn:
    raise error
