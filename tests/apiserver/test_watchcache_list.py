"""The watch cache's sorted key index: lists come back sorted by key, narrowed by a namespace
prefix and by a continue key, through adds, updates and deletes (apiserver/cache.py)."""

from __future__ import annotations

import random

import orjson

from apiserver.cache import WatchCache, _prefix_end

PREFIX = b"/registry/core/pods/"


def put(cache: WatchCache, ns: str, name: str, rev: int) -> bytes:
    key = PREFIX + f"{ns}/{name}".encode()
    cache._apply("PUT", key, orjson.dumps({"metadata": {"name": name, "namespace": ns}}), rev)
    return key


def test_lists_are_sorted_and_narrowed_through_adds_updates_and_deletes() -> None:
    cache = WatchCache(None, PREFIX)  # type: ignore[arg-type]  # no storage: events are applied by hand
    rng = random.Random(7)
    live: set[bytes] = set()
    for rev in range(1, 2000):
        ns, name = rng.choice(["a", "b", "ab", "c"]), f"p{rng.randrange(300)}"
        key = PREFIX + f"{ns}/{name}".encode()
        if key in live and rng.random() < 0.4:
            cache._apply("DELETE", key, b"", rev)
            live.discard(key)
        else:
            put(cache, ns, name, rev)
            live.add(key)
    everything, rev = cache.list()
    assert [e.key for e in everything] == sorted(live) and rev == cache.revision
    in_a = [e.key for e in cache.list(PREFIX + b"a/")[0]]
    assert in_a == sorted(k for k in live if k.startswith(PREFIX + b"a/"))  # not namespace "ab"
    after = sorted(live)[len(live) // 2]
    assert [e.key for e in cache.list(after=after)[0]] == sorted(k for k in live if k > after)
    assert [e.key for e in cache.list(PREFIX + b"b/", after=PREFIX + b"a/zzz")[0]] == \
        sorted(k for k in live if k.startswith(PREFIX + b"b/"))


def test_an_update_keeps_one_key_and_a_delete_of_an_unknown_key_changes_nothing() -> None:
    cache = WatchCache(None, PREFIX)  # type: ignore[arg-type]
    put(cache, "a", "x", 1)
    put(cache, "a", "x", 2)
    cache._apply("DELETE", PREFIX + b"a/y", b"", 3)
    entries, _ = cache.list()
    assert [(e.key, e.revision) for e in entries] == [(PREFIX + b"a/x", 2)]


def test_prefix_end() -> None:
    assert _prefix_end(b"/a/") == b"/a0"
    assert _prefix_end(b"a\xff\xff") == b"b"
    assert _prefix_end(b"\xff") is None
