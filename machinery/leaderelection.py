"""Leader election through a ``coordination.k8s.io/v1`` Lease, like client-go's leaderelection.

Data flow: every ``retry_period`` a candidate reads the Lease -> if nobody holds it, or the
holder's ``renewTime`` is older than ``leaseDurationSeconds``, it writes itself as holder with a
compare-and-swap on the Lease's resourceVersion (so of two racing candidates exactly one wins) ->
the leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` it stops
leading (``on_stopped_leading``), because another candidate may take over once the lease expires.

``decide`` is the pure part: given the Lease (or None), who we are and the time, what to write.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from machinery import errors
from machinery.client import ApiClient

log = logging.getLogger(__name__)

MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"
LEASES = ("coordination.k8s.io/v1", "leases")


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class LeaderElectionSettings:
    lease_name: str
    namespace: str = "kube-system"
    identity: str = field(default_factory=default_identity)
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _fmt(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime(MICRO)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def decide(lease: dict[str, Any] | None, *, identity: str, now: datetime,
           lease_duration: float) -> dict[str, Any] | None:
    """The Lease body to write to hold (or keep holding) the lease; None if another holds it."""
    spec = (lease or {}).get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    renewed = _parse(spec.get("renewTime")) or _parse(spec.get("acquireTime"))
    duration = float(spec.get("leaseDurationSeconds") or lease_duration)
    expired = renewed is None or now >= renewed + timedelta(seconds=duration)
    if holder and holder != identity and not expired:
        return None
    body = copy.deepcopy(lease) if lease else {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                "metadata": {}}
    new_spec = dict(spec)
    if holder != identity:
        new_spec["acquireTime"] = _fmt(now)
        new_spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if holder else 0)
    new_spec["holderIdentity"] = identity
    new_spec["leaseDurationSeconds"] = max(1, int(round(lease_duration)))
    new_spec["renewTime"] = _fmt(now)
    body["spec"] = new_spec
    return body


class LeaderElector:
    def __init__(self, client: ApiClient, settings: LeaderElectionSettings, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._client = client
        self.settings = settings
        self._clock = clock
        self.is_leader = False
        self._last_renew: float | None = None  # loop time of the last successful renewal

    def health(self, *, tolerance_s: float = 20.0) -> str | None:
        """None while healthy; the reason when this replica leads but has not renewed its lease for
        longer than the renew deadline plus ``tolerance_s`` (Kubernetes' leader-election healthz)."""
        if not self.is_leader or self._last_renew is None:
            return None
        late = asyncio.get_running_loop().time() - self._last_renew
        if late > self.settings.renew_deadline + tolerance_s:
            return f"the lease {self.settings.lease_name} was last renewed {late:.0f}s ago"
        return None

    async def _try_acquire_or_renew(self) -> bool:
        s = self.settings
        try:
            lease: dict[str, Any] | None = await self._client.get(LEASES, s.lease_name, namespace=s.namespace)
        except errors.NotFoundError:
            lease = None
        body = decide(lease, identity=s.identity, now=self._clock(), lease_duration=s.lease_duration)
        if body is None:
            return False
        try:
            if lease is None:
                body["metadata"] = {"name": s.lease_name, "namespace": s.namespace}
                await self._client.create(LEASES, body, namespace=s.namespace)
            else:
                await self._client.update(LEASES, body, namespace=s.namespace)  # CAS on resourceVersion
        except (errors.ConflictError, errors.AlreadyExistsError):
            return False
        return True

    async def run(self, on_started_leading: Callable[[], Coroutine[Any, Any, None]],
                  on_stopped_leading: Callable[[], Awaitable[None]] | None = None) -> None:
        """Campaign forever; run ``on_started_leading`` as a task while leading, cancel it on loss."""
        s = self.settings
        work: asyncio.Task[None] | None = None
        last_renew = asyncio.get_running_loop().time()
        try:
            while True:
                try:
                    ok = await self._try_acquire_or_renew()
                except errors.ApiError as e:
                    log.warning("leader election %s: %s", s.lease_name, e)
                    ok = False
                now = asyncio.get_running_loop().time()
                if ok:
                    last_renew = self._last_renew = now
                    if not self.is_leader:
                        log.info("%s became the leader of %s", s.identity, s.lease_name)
                        self.is_leader = True
                        work = asyncio.create_task(on_started_leading(), name=f"leader:{s.lease_name}")
                elif self.is_leader and now - last_renew >= s.renew_deadline:
                    log.warning("%s lost the lease %s", s.identity, s.lease_name)
                    self.is_leader = False
                    if work:
                        work.cancel()
                        work = None
                    if on_stopped_leading:
                        await on_stopped_leading()
                await asyncio.sleep(s.retry_period)
        finally:
            if work:
                work.cancel()
            self.is_leader = False
