"""The informer against real apiserver processes: events, cache, 410 relist, apiserver restarts;
handlers removed, and the shared factory releasing informers that come and go."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, AsyncIterator, Callable, Iterator

import pytest

from machinery import errors
from machinery.client import ApiClient
from machinery.informer import CacheMutationError, Informer, InformerSettings, object_key, split_key
from machinery.models import ConfigMap
from machinery.sharedinformers import InformerFactory
from tests.cluster import ApiServerProcess, Etcd, free_port

FAST = InformerSettings(watch_timeout_s=30, backoff_initial_s=0.05, backoff_max_s=0.5, detect_mutations=True)


class Recorder:
    """Handlers that note what they see, and a helper to wait for a condition on it."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    def on_add(self, obj: dict[str, Any]) -> None:
        self._note("add", obj)

    def on_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        assert object_key(old) == object_key(new)
        self._note("update", new)

    def on_delete(self, obj: dict[str, Any]) -> None:
        self._note("delete", obj)

    def _note(self, kind: str, obj: dict[str, Any]) -> None:
        self.events.append((kind, obj["metadata"]["name"]))
        self.changed.set()

    def of(self, name: str) -> list[str]:
        return [k for k, n in self.events if n == name]


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@pytest.fixture
async def client(apiserver: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver.url) as c:
        yield c


async def _running(informer: Informer) -> "asyncio.Task[None]":
    task = informer.start()
    assert await informer.wait_synced(15)
    return task


async def _stop(informer: Informer, task: "asyncio.Task[None]") -> None:
    informer.stop()
    await asyncio.wait_for(task, 10)


async def test_keys() -> None:
    assert object_key({"metadata": {"namespace": "ns", "name": "a"}}) == "ns/a"
    assert object_key({"metadata": {"name": "node-1"}}) == "node-1"
    assert split_key("ns/a") == ("ns", "a") and split_key("node-1") == (None, "node-1")


async def test_add_update_delete_and_cache_matches_list(client: ApiClient, namespace: str) -> None:
    await client.create("configmaps", cm("before", a="1"), namespace=namespace)
    informer = Informer(client, "v1", "configmaps", namespace=namespace, settings=FAST)
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    task = await _running(informer)
    try:
        assert rec.events == [("add", "before")]
        assert informer.get(f"{namespace}/before")["data"] == {"a": "1"}  # type: ignore[index]
        assert informer.get(f"{namespace}/before")["kind"] == "ConfigMap"  # type: ignore[index]

        await client.create("configmaps", cm("new"), namespace=namespace)
        await client.patch("configmaps", "before", {"data": {"a": "2"}}, namespace=namespace)
        await client.delete("configmaps", "new", namespace=namespace)
        await eventually(lambda: rec.of("new") == ["add", "delete"] and rec.of("before") == ["add", "update"])
        assert informer.get_by_name("before", namespace)["data"] == {"a": "2"}  # type: ignore[index]
        assert f"{namespace}/new" not in informer

        for i in range(5):
            await client.create("configmaps", cm(f"bulk-{i}"), namespace=namespace)
        fresh = await client.list("configmaps", namespace=namespace)
        want = {object_key(o): o["metadata"]["resourceVersion"] for o in fresh["items"]}
        await eventually(lambda: {object_key(o): o["metadata"]["resourceVersion"] for o in informer.list()} == want)
        assert informer.resource_version and int(informer.resource_version) >= int(fresh["metadata"]["resourceVersion"])
        assert informer.list(namespace) == informer.list() and informer.list("elsewhere") == []
        assert informer.relists == 1
        informer.check_mutations()
    finally:
        await _stop(informer, task)


async def test_selectors_scope_the_cache(client: ApiClient, namespace: str) -> None:
    informer = Informer.for_kind(client, ConfigMap, label_selector="team=a",
                                 field_selector=f"metadata.namespace={namespace}", settings=FAST)
    assert informer.resource.plural == "configmaps" and informer.namespace is None
    task = await _running(informer)
    try:
        await client.create("configmaps", {**cm("mine"), "metadata": {"name": "mine", "labels": {"team": "a"}}},
                            namespace=namespace)
        await client.create("configmaps", cm("theirs"), namespace=namespace)
        await eventually(lambda: informer.keys() == [f"{namespace}/mine"])
        # Leaving the selection looks like a delete to the informer.
        await client.patch("configmaps", "mine", {"metadata": {"labels": {"team": "b"}}}, namespace=namespace)
        await eventually(lambda: len(informer) == 0)
    finally:
        await _stop(informer, task)


async def test_handlers_are_isolated_and_late_handlers_get_replay(client: ApiClient, namespace: str) -> None:
    await client.create("configmaps", cm("one"), namespace=namespace)
    informer = Informer(client, "v1", "configmaps", namespace=namespace, settings=FAST)

    def broken(obj: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    informer.add_handler(on_add=broken, on_update=lambda old, new: broken(new))
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    task = await _running(informer)
    try:
        late = Recorder()
        informer.add_handler(late.on_add)
        assert late.events == [("add", "one")]
        await client.create("configmaps", cm("two"), namespace=namespace)
        await client.patch("configmaps", "one", {"data": {"x": "y"}}, namespace=namespace)
        await eventually(lambda: rec.of("two") == ["add"] and rec.of("one") == ["add", "update"])
        assert late.of("two") == ["add"]
        assert task.done() is False
    finally:
        await _stop(informer, task)


async def test_mutation_detector(client: ApiClient, namespace: str) -> None:
    await client.create("configmaps", cm("frozen", a="1"), namespace=namespace)
    informer = Informer(client, "v1", "configmaps", namespace=namespace, settings=FAST)
    task = await _running(informer)
    try:
        informer.get(f"{namespace}/frozen")["data"]["a"] = "changed"  # type: ignore[index]  # the bug
        with pytest.raises(CacheMutationError, match="frozen"):
            informer.check_mutations()
    finally:
        await _stop(informer, task)


async def test_relist_emits_the_difference(client: ApiClient, namespace: str) -> None:
    """The 410 path without waiting for compaction: a stale cache, then ``relist()``."""
    for n in ("keep", "change", "drop"):
        await client.create("configmaps", cm(n), namespace=namespace)
    informer = Informer(client, "v1", "configmaps", namespace=namespace, settings=FAST)
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    await informer.relist()
    assert informer.has_synced and sorted(n for _, n in rec.events) == ["change", "drop", "keep"]
    keep_before = informer.get(f"{namespace}/keep")
    rec.events.clear()

    await client.patch("configmaps", "change", {"data": {"v": "2"}}, namespace=namespace)
    await client.delete("configmaps", "drop", namespace=namespace)
    await client.create("configmaps", cm("born"), namespace=namespace)
    await informer.relist()
    assert sorted(rec.events) == [("add", "born"), ("delete", "drop"), ("update", "change")]
    assert informer.get(f"{namespace}/keep") is keep_before  # unchanged objects are not replaced
    assert sorted(informer.keys()) == sorted(f"{namespace}/{n}" for n in ("born", "change", "keep"))
    assert informer.relists == 2


# ------------------------------------------------------------------ private cluster for 410 and restarts
@pytest.fixture(scope="module")
def private_etcd() -> Iterator[Etcd]:
    e = Etcd.start()
    yield e
    e.stop()


@pytest.fixture(scope="module")
def compacting_apiserver(private_etcd: Etcd) -> Iterator[ApiServerProcess]:
    """Compacts etcd every 0.5 s, keeping 0.5 s of history: old resourceVersions soon answer 410."""
    s = ApiServerProcess.start(private_etcd.url, "--compaction-interval", "0.5", "--history-retention", "0.5")
    yield s
    s.stop()


async def _fresh_namespace(c: ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    await c.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


async def test_watch_from_compacted_resource_version_is_gone(compacting_apiserver: ApiServerProcess) -> None:
    async with ApiClient(compacting_apiserver.url) as c:
        ns = await _fresh_namespace(c)
        old = (await c.create("configmaps", cm("x"), namespace=ns))["metadata"]["resourceVersion"]
        for i in range(3):
            await c.patch("configmaps", "x", {"data": {"i": str(i)}}, namespace=ns)
        await asyncio.sleep(2.0)
        await c.patch("configmaps", "x", {"data": {"i": "last"}}, namespace=ns)
        await asyncio.sleep(1.5)
        with pytest.raises(errors.GoneError) as gone:
            async for _ in c.watch("configmaps", namespace=ns, resource_version=old, timeout_seconds=2):
                pass
        assert gone.value.code == 410


async def test_informer_survives_410(compacting_apiserver: ApiServerProcess) -> None:
    async with ApiClient(compacting_apiserver.url) as c:
        ns = await _fresh_namespace(c)
        for n in ("keep", "change", "drop"):
            await c.create("configmaps", cm(n), namespace=ns)
        informer = Informer(c, "v1", "configmaps", namespace=ns, settings=FAST)
        rec = Recorder()
        informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
        task = await _running(informer)
        await _stop(informer, task)  # paused: its resourceVersion goes stale while the world moves
        rec.events.clear()
        await c.patch("configmaps", "change", {"data": {"v": "2"}}, namespace=ns)
        await c.delete("configmaps", "drop", namespace=ns)
        await c.create("configmaps", cm("born"), namespace=ns)
        await asyncio.sleep(2.5)  # compaction passes the informer's resourceVersion
        await c.patch("configmaps", "keep", {"metadata": {"labels": {"bump": "1"}}}, namespace=ns)
        await asyncio.sleep(1.5)

        task = informer.start()  # resumes with a watch from the stale resourceVersion -> 410 -> relist
        try:
            await eventually(lambda: informer.relists == 2)
            await eventually(lambda: sorted(rec.events) == [("add", "born"), ("delete", "drop"),
                                                             ("update", "change"), ("update", "keep")])
            await c.create("configmaps", cm("after"), namespace=ns)
            await eventually(lambda: rec.of("after") == ["add"])
            fresh = await c.list("configmaps", namespace=ns)
            assert sorted(informer.keys()) == sorted(object_key(o) for o in fresh["items"])
        finally:
            await _stop(informer, task)


async def test_informer_reconnects_after_apiserver_restart(private_etcd: Etcd,
                                                           compacting_apiserver: ApiServerProcess) -> None:
    port = free_port()
    server = ApiServerProcess.start(private_etcd.url, port=port)
    try:
        async with ApiClient(server.url) as c, ApiClient(compacting_apiserver.url) as other:
            ns = await _fresh_namespace(c)
            informer = Informer(c, "v1", "configmaps", namespace=ns, settings=FAST)
            rec = Recorder()
            informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
            task = await _running(informer)
            try:
                await c.create("configmaps", cm("first"), namespace=ns)
                await eventually(lambda: rec.of("first") == ["add"])

                server.stop()
                # Written through another apiserver while the informer's one is down.
                await other.create("configmaps", cm("while-down"), namespace=ns)
                await asyncio.sleep(1.0)  # the informer keeps failing to reconnect, with backoff
                assert not task.done()

                server = ApiServerProcess.start(private_etcd.url, port=port)
                await eventually(lambda: rec.of("while-down") == ["add"], timeout=30)
                await c.create("configmaps", cm("after"), namespace=ns)
                await eventually(lambda: rec.of("after") == ["add"])
                assert rec.of("first") == ["add"]  # nothing replayed twice
            finally:
                await _stop(informer, task)
    finally:
        server.stop()


async def test_stop_before_sync_and_unknown_resource(client: ApiClient) -> None:
    informer = Informer(client, "example.com/v1", "widgets", settings=FAST)
    task = informer.start()
    assert not await informer.wait_synced(0.5)  # 404 forever: keeps retrying with backoff
    await _stop(informer, task)
    assert not informer.has_synced


async def test_removed_handler_gets_no_more_events(client: ApiClient, namespace: str) -> None:
    informer = Informer(client, "v1", "configmaps", namespace=namespace, settings=FAST)
    kept, removed = Recorder(), Recorder()
    informer.add_handler(kept.on_add, kept.on_update, kept.on_delete)
    registration = informer.add_handler(removed.on_add, removed.on_update, removed.on_delete)
    task = await _running(informer)
    try:
        informer.remove_handler(registration)
        informer.remove_handler(registration)  # twice: harmless
        await client.create("configmaps", cm("after"), namespace=namespace)
        await eventually(lambda: kept.of("after") == ["add"])
        assert removed.events == []
    finally:
        await _stop(informer, task)


async def test_factory_release_stops_an_informer_once_its_last_user_is_done(client: ApiClient,
                                                                             namespace: str) -> None:
    factory = InformerFactory(client, settings=FAST)
    first = factory.informer(("v1", "configmaps"), namespace=namespace)
    assert factory.informer(("v1", "configmaps"), namespace=namespace) is first  # a second user
    factory.start()
    try:
        assert await factory.wait_synced(15)
        assert not await factory.release(first) and first in factory  # one user left
        assert await factory.release(first) and first not in factory  # the last one: stopped, forgotten
        await client.create("configmaps", cm("unseen"), namespace=namespace)
        await asyncio.sleep(0.3)
        assert first.get(f"{namespace}/unseen") is None
        assert not await factory.release(first)  # unknown now: nothing happens
        again = factory.informer(("v1", "configmaps"), namespace=namespace)
        assert again is not first
        factory.start()
        assert await factory.wait_synced(15) and again.get(f"{namespace}/unseen") is not None
    finally:
        await factory.stop()


async def test_factory_wait_synced_does_not_wait_for_a_released_informer(client: ApiClient) -> None:
    factory = InformerFactory(client, settings=FAST)
    factory.informer(("v1", "namespaces"))
    never = factory.informer(("example.com/v1", "widgets"))  # 404: never lists
    factory.start()
    try:
        assert not await factory.wait_synced(0.5)
        waiting = asyncio.create_task(factory.wait_synced())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        assert await factory.release(never)
        assert await asyncio.wait_for(waiting, 5)
    finally:
        await factory.stop()
