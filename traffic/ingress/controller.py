"""The ``minik8s ingress`` process: keep the proxy's route table and the Ingresses' status current.

Data flow: ``run(settings)`` -> an ``ApiClient`` (user agent ``minik8s-ingress``) -> wait for the
apiserver -> ``ensure_class``: the IngressClass ``--class-name`` (controller ``minik8s.io/ingress``,
marked default) is created when missing and never overwritten -> one ``InformerFactory``: the
``ServiceWatch`` (Services, EndpointSlices) plus Ingresses and IngressClasses, whose events call
``ServiceWatch.notify()`` -> after each debounced burst of changes (``ServiceWatch.changes()``,
only once all four caches have listed) ``routes.build_routes`` makes a new ``RouteTable`` and the
proxy gets it in one assignment, without a restart (with HTTPS, the certificates of the
``kubernetes.io/tls`` Secrets our Ingresses name in ``spec.tls`` too) -> the proxy starts
listening after the first table -> ``/healthz`` on ``--health-port`` is 200 from then on.

Status: after every rebuild the status task compares ``status.loadBalancer.ingress`` of every
Ingress with ``[{"ip": --publish-address}]`` (``hostname`` when it is not an IP) for ours and
writes it through ``/status`` (PUT with the cached resourceVersion) only when it differs; an
Ingress that stopped being ours loses that entry if it is exactly ours. A failed write is retried
after ``status_retry`` seconds; a conflict needs no retry of its own, since the newer object's
watch event makes another round.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any

from machinery import errors
from machinery.client import ApiClient, default_user_agent, wait_for_apiserver
from machinery.healthz import serve_healthz
from machinery.informer import Informer
from machinery.kubeconfig import ClientConfig
from machinery.process import run_until_signalled, until_stopped
from machinery.sharedinformers import InformerFactory
from traffic.watch import ServiceWatch

from .proxy import IngressProxy, ProxySettings
from .routes import CONTROLLER, DEFAULT_CLASS_ANNOTATION, DEFAULT_CLASS_NAME, RouteTable, build_routes
from .tls import TLS_SECRET_TYPE

log = logging.getLogger(__name__)

INGRESSES = ("networking.k8s.io/v1", "ingresses")
INGRESS_CLASSES = ("networking.k8s.io/v1", "ingressclasses")
SECRETS = ("v1", "secrets")


@dataclass
class IngressSettings:
    server: str | ClientConfig = "http://127.0.0.1:8080"  # a URL, or a kubeconfig's address and credential
    proxy: ProxySettings = field(default_factory=ProxySettings)
    publish_address: str = "127.0.0.1"
    class_name: str = DEFAULT_CLASS_NAME
    controller: str = CONTROLLER
    health_port: int = 10254  # 0: none
    health_bind_address: str = ""  # default: the proxy's bind address
    status_retry: float = 1.0
    debounce: float = 0.01
    max_delay: float = 0.1


def class_body(name: str, controller: str = CONTROLLER) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
            "spec": {"controller": controller}}


async def ensure_class(client: ApiClient, *, name: str, controller: str = CONTROLLER) -> bool:
    """Create the IngressClass ``name`` (marked default) unless it exists; a user's class of that
    name, changed or not, is left as it is. True when this call created it."""
    try:
        await client.get(INGRESS_CLASSES, name)
        return False
    except errors.NotFoundError:
        pass
    try:
        await client.create(INGRESS_CLASSES, class_body(name, controller))
        log.info("created IngressClass %s (controller %s, default)", name, controller)
        return True
    except errors.AlreadyExistsError:
        return False


def load_balancer_entry(address: str) -> dict[str, str]:
    try:
        ipaddress.ip_address(address)
        return {"ip": address}
    except ValueError:
        return {"hostname": address}


class IngressController:
    """Informers -> route table -> proxy, and our Ingresses' ``status.loadBalancer``."""

    def __init__(self, client: ApiClient, factory: InformerFactory, proxy: IngressProxy,
                 settings: IngressSettings) -> None:
        self.client = client
        self.proxy = proxy
        self.settings = settings
        self.watch = ServiceWatch(factory, debounce=settings.debounce, max_delay=settings.max_delay)
        self.ingresses: Informer = factory.informer(INGRESSES)
        self.classes: Informer = factory.informer(INGRESS_CLASSES)
        # Only with HTTPS: the TLS Secrets (of every namespace; the other types are not listed).
        self.secrets: Informer | None = (factory.informer(SECRETS, field_selector=f"type={TLS_SECRET_TYPE}")
                                         if settings.proxy.https_port else None)
        for inf in [self.ingresses, self.classes, *([self.secrets] if self.secrets else [])]:
            inf.add_handler(lambda _obj: self.watch.notify(), lambda _old, _new: self.watch.notify(),
                            lambda _obj: self.watch.notify())
        self.table = RouteTable()
        self.synced = asyncio.Event()
        self._status_dirty = asyncio.Event()
        self._entry = [load_balancer_entry(settings.publish_address)]

    def rebuild(self) -> RouteTable:
        table = build_routes(self.ingresses.list(), self.classes.list(), self.watch.ports(),
                             class_name=self.settings.class_name, controller=self.settings.controller)
        self.table = self.proxy.table = table
        if self.secrets is not None:
            secrets = self.secrets
            ours = [o for o in (self.ingresses.get_by_name(name, ns) for ns, name in table.ours) if o is not None]
            self.proxy.certificates.update(ours, lambda ns, name: secrets.get_by_name(name, ns))
        self._status_dirty.set()
        return table

    async def run_routes(self) -> None:
        await self.ingresses.wait_synced()
        await self.classes.wait_synced()
        if self.secrets is not None:
            await self.secrets.wait_synced()
        async for _generation in self.watch.changes():
            table = self.rebuild()
            if not self.synced.is_set():
                log.info("synced: %d Ingresses of ours, %d backends", len(table.ours), len(table.backends()))
                self.synced.set()

    async def run_status(self) -> None:
        while True:
            await self._status_dirty.wait()
            self._status_dirty.clear()
            try:
                await self.sync_status()
            except errors.ApiError as e:
                log.warning("writing Ingress status failed (retrying in %ss): %s", self.settings.status_retry, e)
                await asyncio.sleep(self.settings.status_retry)
                self._status_dirty.set()

    async def sync_status(self) -> int:
        """Write ``status.loadBalancer`` where it differs; the number of writes."""
        ours = set(self.table.ours)
        writes = 0
        for ing in self.ingresses.list():
            meta = ing.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue
            key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            current = ((ing.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if key in ours:
                wanted: list[dict[str, str]] = self._entry
            elif current == self._entry:
                wanted = []
            else:
                continue
            if current == wanted:
                continue
            body = copy.deepcopy(ing)
            body["status"] = {**(body.get("status") or {}), "loadBalancer": {"ingress": wanted} if wanted else {}}
            try:
                await self.client.update_status(INGRESSES, body, namespace=key[0])
                writes += 1
            except (errors.ConflictError, errors.NotFoundError):
                pass  # a newer version (or the deletion) is on its way through the watch
        return writes


async def main(settings: IngressSettings, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    client = ApiClient(settings.server, user_agent=default_user_agent("minik8s-ingress"))
    proxy = IngressProxy(settings.proxy)
    factory = InformerFactory(client)
    health = None
    try:
        await wait_for_apiserver(client)
        try:
            await ensure_class(client, name=settings.class_name, controller=settings.controller)
        except errors.ApiError as e:
            log.warning("cannot ensure IngressClass %s: %s", settings.class_name, e)
        controller = IngressController(client, factory, proxy, settings)
        if settings.health_port:
            health = await serve_healthz(settings.health_bind_address or settings.proxy.bind_address,
                                         settings.health_port,
                                         {"routes-synced": lambda: None if controller.synced.is_set()
                                          else "the route table is not built yet"}, client=client)
        factory.start()

        async def work() -> None:
            routes = asyncio.create_task(controller.run_routes())
            status = asyncio.create_task(controller.run_status())
            try:
                await controller.synced.wait()
                await proxy.start()
                log.info("ingress controller for class %s against %s; publishing %s", settings.class_name,
                         settings.server, settings.publish_address)
                await asyncio.gather(routes, status)
            finally:
                for t in (routes, status):
                    t.cancel()
                await asyncio.gather(routes, status, return_exceptions=True)

        await until_stopped(work(), stop)
    finally:
        await proxy.stop()
        if health is not None:
            await health.cleanup()
        await factory.stop()
        await client.close()


def run(settings: IngressSettings) -> None:
    try:  # uvloop: about a third more requests per second through the proxy
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["INGRESSES", "INGRESS_CLASSES", "IngressController", "IngressSettings", "class_body", "ensure_class",
           "load_balancer_entry", "main", "run"]
