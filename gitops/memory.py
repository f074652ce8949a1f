"""What the reconciler keeps per GitSync between reconciles, and its settings.

Data flow: ``Reconciler.memory[key]`` holds a ``Memory``: the fetched and applied revisions and
their objects (for drift and rollback), the preview of the next sync (``gitops.preview``), the attempts of failed revisions (their backoff), the
fields owned right after each apply (to name drifted fields), the answers of our own applies (a
watch may not have brought them yet), and the drift fights per object. Nothing here is
persistent: the status holds what must survive a restart (the applied revision, the inventory).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from machinery.client import ApiResource

from .plan import Desired, ObjKey
from .resolve import Resolved
from .revision import Revision


@dataclass
class ReconcilerSettings:
    workers: int = 4
    retry_base: float = 1.0
    retry_max: float = 300.0
    health_poll: float = 1.0
    drift_backoff_base: float = 1.0
    drift_backoff_max: float = 300.0
    # A correction within this long of the previous one of the same object counts as a fight.
    drift_fight_window: float = 60.0


@dataclass
class Attempt:
    count: int
    retry_at: float
    permanent: bool  # invalid content: not retried until the revision or the spec changes


@dataclass
class Memory:
    generation: int = -1
    fetched: Revision | None = None
    next_fetch: float = 0.0
    fetch_now: bool = False
    handled_request: str = ""
    applied: Revision | None = None
    applied_objects: list[Desired] | None = None
    previous: list[Desired] | None = None  # the revision before the applied one, for a health rollback
    previous_revision: Revision | None = None
    attempts: dict[str, Attempt] = field(default_factory=dict)
    health_deadline: float | None = None
    owned: dict[ObjKey, dict[str, Any]] = field(default_factory=dict)
    answers: dict[ObjKey, dict[str, Any]] = field(default_factory=dict)  # our last apply's answer per object
    fights: dict[ObjKey, tuple[int, float]] = field(default_factory=dict)
    resources: dict[ObjKey, ApiResource] = field(default_factory=dict)
    drift_reported: frozenset[ObjKey] = frozenset()
    # The GitSync as our last status write answered: read instead of the cache while that is older.
    written: dict[str, Any] | None = None
    # gitops.preview: a revision that is not applied, resolved (or refused) once per (SHA, generation), and the
    # diffs of status.nextSync per object with the (resourceVersion, manifest hash, SHA) they were made for.
    preview_resolved: tuple[tuple[str, int], Resolved | str] | None = None
    diffs: dict[ObjKey, tuple[tuple[int, str, str], str]] = field(default_factory=dict)


def rv_of(value: Any) -> int:
    try:
        return int(str(value or "0"))
    except ValueError:
        return 0


def rv(obj: Mapping[str, Any]) -> int:
    return rv_of((obj.get("metadata") or {}).get("resourceVersion"))


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def backoff(count: int, *, base: float, maximum: float) -> float:
    """1 s, 2 s, 4 s ... for the count-th failure in a row, at most ``maximum``."""
    return min(base * 2 ** (count - 1), maximum)
