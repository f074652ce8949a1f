"""The proxy process (``minik8s proxy``): NodePort and LoadBalancer listeners on the host.

Data flow: ``run(settings)`` -> an ``ApiClient`` (user agent ``minik8s-proxy``) -> one
``InformerFactory`` -> ``traffic.watch.ServiceWatch`` (Services + EndpointSlices) -> after each
debounced burst, once both initial lists are in, ``Proxier.sync(watch.ports())``:
``listeners.desired`` -> ``listeners.diff`` against the open relays -> close the listeners no
Service wants, hand changed ServicePorts to the relays that stay open (endpoint changes reach the
next connection at once), open the new ones (``userspace.TcpRelay`` / ``UdpRelay``). A port that
cannot be bound (in use) is logged and reported once as a Warning Event ``PortNotAvailable`` on the
Service and retried on every later sync, and at least every ``retry_interval`` seconds; the process
never stops for it. ``/healthz`` on ``health_bind_address:health_port`` answers 200 once synced.

The ClusterIP half of the Service proxy is not here: the kubelet programs it inside each pod's
network namespace (``traffic.proxy.rules`` and ``traffic.proxy.nft``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

from machinery.client import ApiClient, default_user_agent, wait_for_apiserver
from machinery.events import EventRecorder
from machinery.healthz import serve_healthz
from machinery.kubeconfig import ClientConfig
from machinery.process import run_until_signalled, until_stopped
from machinery.sharedinformers import InformerFactory
from traffic.proxy.listeners import DEFAULT_NODEPORT_ADDRESSES, Conflict, Listener, desired, diff
from traffic.proxy.userspace import Relay, RelaySettings, make_relay
from traffic.servicemap import ServicePort
from traffic.watch import ServiceWatch

log = logging.getLogger(__name__)

COMPONENT = "minik8s-proxy"

# (listener, the ServicePort that wanted it, what went wrong) -> e.g. an Event on the Service
PortProblem = Callable[[Listener, ServicePort, str], Coroutine[Any, Any, None]]


@dataclass
class ProxySettings:
    server: str | ClientConfig = "http://127.0.0.1:8080"  # a URL, or a kubeconfig's address and credential
    node_name: str = ""  # "": externalTrafficPolicy: Local cannot narrow (all endpoints are used)
    nodeport_addresses: tuple[str, ...] = DEFAULT_NODEPORT_ADDRESSES
    health_bind_address: str = "127.0.0.1"
    health_port: int = 10256  # kube-proxy's healthz port; 0: none
    relay: RelaySettings = field(default_factory=RelaySettings)
    retry_interval: float = 5.0  # seconds between retries of listeners that could not bind
    use_uvloop: bool = True


class Proxier:
    """The open relays, brought to what the ServicePorts ask for by ``sync``."""

    def __init__(self, *, nodeport_addresses: tuple[str, ...] = DEFAULT_NODEPORT_ADDRESSES,
                 relay_settings: RelaySettings = RelaySettings(), on_problem: PortProblem | None = None,
                 load_balancers: bool = True) -> None:
        self.nodeport_addresses = nodeport_addresses
        self.load_balancers = load_balancers
        self.relay_settings = relay_settings
        self.relays: dict[Listener, Relay] = {}
        self.failed: dict[Listener, str] = {}  # listener -> the error last reported for it
        self._on_problem = on_problem
        self._conflicts: set[Conflict] = set()
        self._unsupported: set[str] = set()
        self._reports: set[asyncio.Task[None]] = set()
        self.syncs = 0

    async def sync(self, ports: list[ServicePort]) -> None:
        want = desired(ports, nodeport_addresses=self.nodeport_addresses, load_balancers=self.load_balancers)
        plan = diff(want.listeners, {k: r.service_port for k, r in self.relays.items()})
        for listener in plan.close:
            await self.relays.pop(listener).close()
            log.info("closed %s", listener)
        for listener, sp in plan.retarget.items():
            self.relays[listener].retarget(sp)
            log.debug("%s -> %s: %d endpoint(s)", listener, sp.key, len(self.relays[listener].balancer.endpoints))
        for listener, sp in plan.open.items():
            relay = make_relay(listener, sp, settings=self.relay_settings)
            try:
                await relay.start()
            except OSError as e:
                await self._problem(listener, sp, f"can't open {listener} for {sp.key}: {e.strerror or e}")
                continue
            self.relays[listener] = relay
            again = " (free again)" if self.failed.pop(listener, None) is not None else ""
            log.info("opened %s%s for %s: %d endpoint(s)", listener, again, sp.key, len(relay.balancer.endpoints))
        for listener in [k for k in self.failed if k not in want.listeners]:
            del self.failed[listener]  # nobody wants it any more
        for c in set(want.conflicts) - self._conflicts:
            log.warning("%s is wanted by %s (%s) and %s; %s keeps it", c.listener, c.loser, c.reason, c.winner,
                        c.winner)
        self._conflicts = set(want.conflicts)
        for key in set(want.unsupported) - self._unsupported:
            log.warning("%s: only TCP and UDP are relayed; its NodePort/LoadBalancer is not served", key)
        self._unsupported = set(want.unsupported)
        self.syncs += 1

    async def _problem(self, listener: Listener, sp: ServicePort, message: str) -> None:
        if self.failed.get(listener) == message:
            return  # said once already; retried quietly
        self.failed[listener] = message
        log.warning("%s (will retry)", message)
        if self._on_problem is not None:  # in the background: a slow apiserver must not hold up a sync
            task = asyncio.get_running_loop().create_task(self._on_problem(listener, sp, message))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)

    async def close(self) -> None:
        for listener in list(self.relays):
            await self.relays.pop(listener).close()
        for task in list(self._reports):
            task.cancel()
        await asyncio.gather(*self._reports, return_exceptions=True)


def event_reporter(recorder: EventRecorder, watch: ServiceWatch) -> PortProblem:
    """Reports a port problem as a Warning Event ``PortNotAvailable`` on the Service."""
    async def report(listener: Listener, sp: ServicePort, message: str) -> None:
        service = watch.services.get_by_name(sp.service, sp.namespace)
        if service is not None:
            obj = {"apiVersion": "v1", "kind": "Service", **{k: v for k, v in service.items() if k == "metadata"}}
            await recorder.event(obj, "Warning", "PortNotAvailable", message)
    return report


async def main(settings: ProxySettings, *, stop: asyncio.Event | None = None) -> None:
    client = ApiClient(settings.server, user_agent=default_user_agent(COMPONENT))
    proxier: Proxier | None = None
    health = None
    factory = InformerFactory(client)
    try:
        watch = ServiceWatch(factory)
        recorder = EventRecorder(client, COMPONENT, host=settings.node_name or None)
        proxier = Proxier(nodeport_addresses=settings.nodeport_addresses, relay_settings=settings.relay,
                          on_problem=event_reporter(recorder, watch))
        ready = proxier

        def synced() -> str | None:
            return None if ready.syncs else "Services and EndpointSlices not synced yet"

        if settings.health_port:
            health = await serve_healthz(settings.health_bind_address, settings.health_port, {"synced": synced},
                                         client=client)
        await wait_for_apiserver(client)
        factory.start()
        log.info("proxy against %s: NodePorts on %s, node %s", settings.server, ",".join(settings.nodeport_addresses),
                 settings.node_name or "(none)")
        await until_stopped(_loop(watch, ready, retry_interval=settings.retry_interval), stop or asyncio.Event())
    finally:
        if proxier is not None:
            await proxier.close()
        if health is not None:
            await health.cleanup()
        await factory.stop()
        await client.close()


async def _loop(watch: ServiceWatch, proxier: Proxier, *, retry_interval: float) -> None:
    loop = asyncio.get_running_loop()
    retry: asyncio.TimerHandle | None = None
    async for _ in watch.changes():
        await proxier.sync(watch.ports())
        if proxier.failed and (retry is None or retry.cancelled() or retry.when() <= loop.time()):
            retry = loop.call_later(retry_interval, watch.notify)


def run(settings: ProxySettings) -> None:
    if settings.use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["COMPONENT", "ProxySettings", "Proxier", "event_reporter", "main", "run"]
