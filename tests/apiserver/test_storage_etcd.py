"""Storage conformance against a real etcd: create-if-absent, CAS update/delete, list revision, watch, compaction."""

from __future__ import annotations

import uuid

import pytest

from apiserver.storage import (
    KeyExistsError,
    KeyNotFoundError,
    RevisionCompactedError,
    RevisionConflictError,
)
from apiserver.storage.etcd import EtcdStorage, parse_endpoint


@pytest.fixture
async def store(etcd):  # type: ignore[no-untyped-def]
    s = EtcdStorage(etcd.url)
    yield s
    await s.close()


def _prefix() -> bytes:
    return f"/test/{uuid.uuid4().hex}/".encode()


@pytest.mark.parametrize("url,expected", [
    ("http://127.0.0.1:2379", ("127.0.0.1", 2379)),
    ("127.0.0.1:12379", ("127.0.0.1", 12379)),
    ("http://etcd:2379,http://etcd2:2379", ("etcd", 2379)),
])
def test_parse_endpoint(url: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(url) == expected


async def test_create_get_update_delete_with_revisions(store: EtcdStorage) -> None:
    key = _prefix() + b"a"
    rev1 = await store.create(key, b"one")
    with pytest.raises(KeyExistsError):
        await store.create(key, b"again")
    got = await store.get(key)
    assert (got.value, got.mod_revision) == (b"one", rev1)
    rev2 = await store.update(key, b"two", expected_revision=rev1)
    assert rev2 > rev1
    with pytest.raises(RevisionConflictError) as conflict:
        await store.update(key, b"stale", expected_revision=rev1)
    assert conflict.value.current is not None and conflict.value.current.value == b"two"
    with pytest.raises(RevisionConflictError):
        await store.delete(key, expected_revision=rev1)
    last, rev3 = await store.delete(key, expected_revision=rev2)
    assert last.value == b"two" and rev3 > rev2
    with pytest.raises(KeyNotFoundError):
        await store.get(key)
    with pytest.raises(KeyNotFoundError):
        await store.update(key, b"x", expected_revision=rev2)
    with pytest.raises(KeyNotFoundError):
        await store.delete(key)


async def test_list_returns_items_and_the_revision_it_was_read_at(store: EtcdStorage) -> None:
    p = _prefix()
    revs = [await store.create(p + f"k{i}".encode(), b"v") for i in range(3)]
    items, rev = await store.list(p)
    assert [kv.key for kv in items] == [p + b"k0", p + b"k1", p + b"k2"]
    assert rev >= revs[-1]
    assert await store.current_revision() >= rev


async def test_a_list_larger_than_grpcs_default_4_mib_message(store: EtcdStorage) -> None:
    """One range is one gRPC response: 30,000 pods are about 100 MB, far over gRPC's default 4 MiB."""
    p = _prefix()
    big = b"x" * (1024 * 1024)  # under etcd's 1.5 MiB request limit; six of them are 6 MiB
    for i in range(6):
        await store.create(p + f"k{i}".encode(), big)
    items, _ = await store.list(p)
    assert len(items) == 6 and all(kv.value == big for kv in items)


async def test_watch_from_revision_replays_in_order_then_compaction_expires_it(store: EtcdStorage) -> None:
    p = _prefix()
    r1 = await store.create(p + b"x", b"1")
    r2 = await store.update(p + b"x", b"2", expected_revision=r1)
    _, r3 = await store.delete(p + b"x")
    seen = []
    async for ev in store.watch(p, from_revision=r1):
        seen.append((ev.type, ev.value, ev.revision))
        if len(seen) == 3:
            break
    assert seen == [("PUT", b"1", r1), ("PUT", b"2", r2), ("DELETE", b"2", r3)]
    await store.compact(r3)
    with pytest.raises(RevisionCompactedError):
        async for _ in store.watch(p, from_revision=r1):
            pass
