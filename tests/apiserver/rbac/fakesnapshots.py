"""An in-memory ``apiserver.auth.rbac.Snapshots`` for the authorizer tests: objects by group resource,
and a revision that moves with every change (as the watch caches' revisions do)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class FakeSnapshots:
    def __init__(self, objects: Mapping[str, list[dict[str, Any]]] | None = None) -> None:
        self.store: dict[str, list[dict[str, Any]]] = {k: list(v) for k, v in (objects or {}).items()}
        self.revisions: dict[str, int] = {k: 1 for k in self.store}
        self.reads = 0

    def put(self, group_resource: str, obj: dict[str, Any]) -> None:
        self.store.setdefault(group_resource, []).append(obj)
        self.revisions[group_resource] = self.revisions.get(group_resource, 0) + 1

    def revision(self, group_resource: str) -> int:
        return self.revisions.get(group_resource, 0)

    def objects(self, group_resource: str) -> Iterable[Mapping[str, Any]]:
        self.reads += 1
        return list(self.store.get(group_resource, []))
