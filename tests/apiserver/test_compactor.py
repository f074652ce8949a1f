"""The compactor picks the newest revision older than the retention window, never going back."""

from __future__ import annotations

from apiserver.compactor import Compactor


class FakeRevisions:
    """A storage stand-in for the two calls the compactor makes (pure logic test)."""

    def __init__(self) -> None:
        self.revision = 1
        self.compactions: list[int] = []

    async def current_revision(self) -> int:
        return self.revision

    async def compact(self, revision: int) -> None:
        self.compactions.append(revision)


async def test_compacts_to_newest_revision_older_than_retention() -> None:
    store = FakeRevisions()
    c = Compactor(store, [], interval=1, retention=10)  # type: ignore[arg-type]
    timeline = [(0, 5), (4, 9), (8, 12), (12, 20), (16, 25), (20, 30), (24, 31)]
    results = []
    for t, rev in timeline:
        store.revision = rev
        results.append(await c.compact_once(now=t))
    # at t=12 the newest sample at or before t-10=2 is (0, 5); at t=16 -> (4, 9); t=20 -> (8, 12); t=24 -> (12, 20)
    assert results == [0, 0, 0, 5, 9, 12, 20]
    assert store.compactions == [5, 9, 12, 20]
