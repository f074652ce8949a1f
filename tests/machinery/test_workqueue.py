"""WorkQueue: de-duplication, one worker per key, FIFO, delayed and rate-limited adds, shutdown."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from machinery.workqueue import QueueShutDown, WorkQueue


async def _get_now(q: WorkQueue[str], timeout: float = 0.5) -> str:
    return await asyncio.wait_for(q.get(), timeout)


async def _nothing_ready(q: WorkQueue[str], wait: float = 0.02) -> bool:
    try:
        key = await asyncio.wait_for(q.get(), wait)
    except asyncio.TimeoutError:
        return True
    q.done(key)
    return False


@pytest.mark.parametrize(
    ("adds", "handed_out"),
    [
        (["a"], ["a"]),
        (["a", "b", "c"], ["a", "b", "c"]),  # FIFO for distinct keys
        (["a", "a", "a"], ["a"]),  # de-duplication
        (["a", "b", "a", "c", "b"], ["a", "b", "c"]),  # a duplicate keeps its first place
        (["c", "b", "a", "b"], ["c", "b", "a"]),
    ],
)
async def test_dedup_and_fifo(adds: list[str], handed_out: list[str]) -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in adds:
        q.add(key)
    assert len(q) == q.len() == len(handed_out)
    got = []
    for _ in handed_out:
        key = await _get_now(q)
        got.append(key)
        q.done(key)
    assert got == handed_out
    assert await _nothing_ready(q)


async def test_key_readded_while_processing_waits_for_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await _get_now(q) == "a"
    assert q.is_processing("a")
    q.add("a")
    q.add("a")
    # Re-added but still held by the first worker: nobody else may get it.
    assert len(q) == 0
    assert await _nothing_ready(q)
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not second.done()
    q.done("a")
    assert await asyncio.wait_for(second, 0.5) == "a"  # handed out again, once
    q.done("a")
    assert await _nothing_ready(q)


async def test_done_without_readd_does_not_requeue() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.done(await _get_now(q))
    assert len(q) == 0 and not q.is_processing("a")


async def test_get_waits_for_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    q.add("x")
    assert await asyncio.wait_for(getter, 0.5) == "x"


async def test_cancelled_getter_does_not_swallow_a_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("a")  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await asyncio.wait_for(second, 0.5) == "a"
    assert first.cancelled()


async def test_add_after_delays_the_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_after("a", 0.05)
    assert len(q) == 0 and q.num_waiting() == 1
    assert await _get_now(q) == "a"
    assert loop.time() - start >= 0.045
    assert q.num_waiting() == 0


async def test_add_after_of_queued_key_does_not_duplicate() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add_after("a", 0.01)
    await asyncio.sleep(0.03)
    assert len(q) == 1
    q.done(await _get_now(q))
    assert await _nothing_ready(q)


@pytest.mark.parametrize(("first", "second"), [(5.0, 0.01), (0.01, 5.0)])
async def test_add_after_keeps_the_earliest_time(first: float, second: float) -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", first)
    q.add_after("a", second)
    assert q.num_waiting() == 1
    assert await _get_now(q, timeout=2.0) == "a"  # the 0.01 s request fired, not the 5 s one
    assert q.num_waiting() == 0  # and no second, later add is left pending


@pytest.mark.parametrize("delay", [0.0, -1.0])
async def test_add_after_non_positive_is_immediate(delay: float) -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("a", delay)
    assert len(q) == 1 and q.num_waiting() == 0


@pytest.mark.parametrize(
    ("base", "cap", "expected"),
    [
        (0.005, 1000.0, [0.005, 0.01, 0.02, 0.04, 0.08]),
        (0.005, 0.02, [0.005, 0.01, 0.02, 0.02, 0.02]),  # capped at the max
        (1.0, 3.0, [1.0, 2.0, 3.0, 3.0]),
        (0.0, 0.0, [0.0, 0.0]),
    ],
)
def test_backoff_doubles_up_to_max_and_forget_resets(base: float, cap: float, expected: list[float]) -> None:
    q: WorkQueue[str] = WorkQueue(base_delay_s=base, max_delay_s=cap)
    got = [q.next_backoff("k") for _ in expected]
    assert got == pytest.approx(expected)
    assert q.num_requeues("k") == len(expected)
    assert q.num_requeues("other") == 0  # per key
    q.forget("k")
    assert q.num_requeues("k") == 0
    assert q.next_backoff("k") == pytest.approx(base)


def test_backoff_does_not_overflow() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay_s=0.005, max_delay_s=60.0)
    for _ in range(2000):
        delay = q.next_backoff("k")
    assert delay == 60.0


def test_default_backoff_is_client_go_default() -> None:
    q: WorkQueue[str] = WorkQueue()
    assert q.next_backoff("k") == pytest.approx(0.005)


@pytest.mark.parametrize(("base", "cap"), [(-0.1, 1.0), (2.0, 1.0)])
def test_invalid_backoff_settings(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        WorkQueue(base_delay_s=base, max_delay_s=cap)


async def test_add_rate_limited_waits_backoff_and_counts() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay_s=0.02, max_delay_s=1.0)
    loop = asyncio.get_running_loop()
    start = loop.time()
    q.add_rate_limited("a")
    assert q.num_requeues("a") == 1
    assert len(q) == 0
    assert await _get_now(q) == "a"
    assert loop.time() - start >= 0.018


async def test_shutdown_wakes_waiting_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.shutdown()
    for g in getters:
        with pytest.raises(QueueShutDown):
            await asyncio.wait_for(g, 0.5)


async def test_shutdown_drains_queued_keys_then_raises() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("b")
    q.add_after("c", 0.01)
    q.shutdown()
    assert q.shutting_down
    q.add("d")  # ignored after shutdown
    q.add_after("e", 0.0)  # ignored too
    assert await _get_now(q) == "a"
    assert await _get_now(q) == "b"
    await asyncio.sleep(0.02)  # the pending delayed add was dropped
    with pytest.raises(QueueShutDown):
        await _get_now(q)


# A model check over random operation sequences: no key is held twice, no request is lost.
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from("abc")),
        st.tuples(st.just("get"), st.just("")),
        st.tuples(st.just("done"), st.integers(min_value=0, max_value=5)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_ops)
def test_random_operations_keep_invariants(ops: list[tuple[str, object]]) -> None:
    async def scenario() -> None:
        q: WorkQueue[str] = WorkQueue()
        held: list[str] = []
        pending: set[str] = set()  # keys added since they were last handed out

        async def take() -> None:
            key = await q.get()
            assert key not in held, "a key was handed to two workers at once"
            held.append(key)
            pending.discard(key)

        for op, arg in ops:
            if op == "add":
                q.add(str(arg))
                pending.add(str(arg))
            elif op == "get" and len(q):
                await take()
            elif op == "done" and held:
                q.done(held.pop(int(str(arg)) % len(held)))
            assert len(q) == len(set(q._queue))  # never a duplicate in the ready list
        while held:
            q.done(held.pop())
        while len(q):
            await take()
            q.done(held.pop())
        assert not pending, f"requests lost for {pending}"

    asyncio.run(scenario())
