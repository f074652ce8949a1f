"""The kubelet's half of the Service proxy: the ClusterIP table inside every pod of this node.

Data flow:
    traffic.watch.ServiceWatch (Services + EndpointSlices, synced after both lists)
      -> every debounced burst: traffic.proxy.rules.render(ports, node) -> one Ruleset
      -> for every known sandbox whose table differs: traffic.proxy.nft.apply(pid, text) in a
         worker thread (one atomic nft transaction per namespace), then conntrack entries of
         UDP flows to endpoints that left are cleared
    the kubelet, right after it starts a sandbox (before any app container) and whenever it
    sees a running sandbox it has not programmed (adopted after a restart)
      -> ``add(sandbox id, pid, pod uid)``: waits for the first sync (``sync_timeout``), applies
         a table rendered from the caches as they are then, so a new pod reaches Services from
         its first second
    pod gone -> ``forget(pod uid)``
    with ``nodeports`` (a traffic.proxy.server.Proxier on the Node's InternalIP): every burst also
      opens/retargets/closes the user-space NodePort listeners there, relaying to the Service's
      endpoints (``externalTrafficPolicy: Local``: this node's only); a port that cannot be bound is
      retried every ``retry_interval`` seconds

When this process cannot enter namespaces (not root, nft missing: traffic.proxy.nft.check) the
reason is logged once and ``disabled`` says it; pods still run, without ClusterIPs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from traffic.proxy import nft
from traffic.proxy.rules import Ruleset, render, stale_udp
from traffic.proxy.server import Proxier
from traffic.watch import ServiceWatch

log = logging.getLogger(__name__)

RunBlocking = Callable[..., Awaitable[Any]]


@dataclass
class _Netns:
    pid: int
    pod_uid: str
    applied: Ruleset | None = None


class PodServiceProxy:
    def __init__(self, watch: ServiceWatch, *, node: str, run_blocking: RunBlocking,
                 sync_timeout: float = 5.0, retry_interval: float = 5.0) -> None:
        self.watch = watch
        self.nodeports: Proxier | None = None
        self.retry_interval = retry_interval
        self.node = node
        self._run = run_blocking
        self.sync_timeout = sync_timeout
        self.disabled: str | None = nft.check()
        self.current: Ruleset | None = None
        self.applies = 0  # nft transactions run (for tests and the log)
        self._netns: dict[str, _Netns] = {}  # sandbox id -> its namespace
        self._locks: dict[str, asyncio.Lock] = {}
        if self.disabled:
            log.warning("Service ClusterIPs will not work in this node's pods: %s", self.disabled)

    def _render(self) -> Ruleset:
        return render(self.watch.ports(), node=self.node)

    async def run(self) -> None:
        """Follows the Services and EndpointSlices until cancelled."""
        loop = asyncio.get_running_loop()
        retry: asyncio.TimerHandle | None = None
        try:
            async for _ in self.watch.changes():
                ports = self.watch.ports()
                self.current = render(ports, node=self.node)
                if not self.disabled:
                    await asyncio.gather(*(self._sync_one(sid) for sid in list(self._netns)))
                if self.nodeports is not None:
                    await self.nodeports.sync(ports)
                    if self.nodeports.failed and (retry is None or retry.when() <= loop.time()):
                        retry = loop.call_later(self.retry_interval, self.watch.notify)
        finally:
            if retry is not None:
                retry.cancel()
            if self.nodeports is not None:
                await self.nodeports.close()

    def knows(self, sandbox_id: str) -> bool:
        return sandbox_id in self._netns

    async def add(self, sandbox_id: str, *, pid: int | None, pod_uid: str) -> None:
        """Programs a sandbox's namespace now (see the module docstring)."""
        if self.disabled or not pid:
            return
        self._netns.setdefault(sandbox_id, _Netns(pid=pid, pod_uid=pod_uid))
        if self.current is None and not await self.watch.wait_synced(self.sync_timeout):
            log.warning("Services not listed within %.0fs; pod %s starts without ClusterIPs for now",
                        self.sync_timeout, pod_uid)
            return
        # Rendered from the caches as they are now, not the last burst's table: that burst's
        # tables may still be going into other pods while a later change (an endpoint turning
        # ready) waits its turn, and this pod's first command must see that change.
        self.current = self._render()
        await self._sync_one(sandbox_id)

    def forget(self, pod_uid: str) -> None:
        for sid in [s for s, n in self._netns.items() if n.pod_uid == pod_uid]:
            del self._netns[sid]
            self._locks.pop(sid, None)

    async def _sync_one(self, sandbox_id: str) -> None:
        lock = self._locks.setdefault(sandbox_id, asyncio.Lock())
        async with lock:
            ns = self._netns.get(sandbox_id)
            want = self.current
            if ns is None or want is None or (ns.applied is not None and ns.applied.digest == want.digest):
                return
            try:
                await self._run(nft.apply, ns.pid, want.text)
                self.applies += 1
                stale = stale_udp(ns.applied, want)
                ns.applied = want
                if stale:
                    await self._run(nft.clear_udp, ns.pid, stale)
            except nft.NftError as e:
                # A sandbox that is gone takes its namespace with it: forget it; anything else is
                # retried on the next change or sync of that pod.
                log.warning("programming Services in sandbox %s (pid %d): %s", sandbox_id[:12], ns.pid, e)
                self._netns.pop(sandbox_id, None)
