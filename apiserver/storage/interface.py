"""The storage contract: typed results and typed errors, no etcd types leak out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Literal, Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: bytes
    value: bytes
    mod_revision: int
    error: str = ""  # set (and value empty) when the stored value cannot be read (decrypted)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: Literal["PUT", "DELETE"]
    key: bytes
    value: bytes  # for DELETE: the value before the delete
    revision: int
    error: str = ""  # set (and value empty) when the stored value cannot be read (decrypted)


@dataclass(frozen=True, slots=True)
class Probe:
    """One consistent look at a key range: etcd's current revision, the range's key count and the
    newest mod_revision among them (0 when empty). What a consistent read waits for."""

    revision: int
    count: int
    newest: int


class StorageError(Exception):
    """Base of every storage failure."""


class KeyNotFoundError(StorageError):
    pass


class KeyExistsError(StorageError):
    pass


class RevisionConflictError(StorageError):
    """The key's revision is not the expected one (someone wrote in between)."""

    def __init__(self, current: KeyValue | None) -> None:
        super().__init__("revision conflict")
        self.current = current


class RevisionCompactedError(StorageError):
    def __init__(self, compacted_revision: int) -> None:
        super().__init__(f"revision compacted below {compacted_revision}")
        self.compacted_revision = compacted_revision


class UnreadableValueError(StorageError):
    """The stored value cannot be read (no configured encryption key decrypts it)."""

    def __init__(self, key: bytes, reason: str) -> None:
        super().__init__(f"{key.decode(errors='replace')}: {reason}")
        self.key, self.reason = key, reason


class StorageUnavailableError(StorageError):
    """etcd cannot be reached or did not answer in time."""


class Storage(Protocol):
    async def get(self, key: bytes) -> KeyValue: ...

    async def list(self, prefix: bytes) -> tuple[list[KeyValue], int]: ...

    async def create(self, key: bytes, value: bytes) -> int: ...

    async def update(self, key: bytes, value: bytes, *, expected_revision: int) -> int: ...

    async def delete(self, key: bytes, *, expected_revision: int | None = None) -> tuple[KeyValue, int]: ...

    def watch(self, prefix: bytes, *, from_revision: int) -> AsyncIterator[WatchEvent]: ...

    async def current_revision(self) -> int: ...

    async def probe(self, key: bytes, *, prefix: bool) -> Probe: ...

    async def compact(self, revision: int) -> None: ...

    async def healthy(self) -> bool: ...

    async def close(self) -> None: ...
