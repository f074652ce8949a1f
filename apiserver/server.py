"""Wiring of the apiserver process: etcd storage -> registry + caches -> HTTP app -> uvicorn.

``ApiServerSettings`` is everything that can be tuned (tests shrink the intervals);
``build`` returns the app with its background tasks (watch caches, compactor) started by the
app's lifespan, so the same object runs under uvicorn or in process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from . import bootstrap
from .app import create_app
from .compactor import Compactor
from .crdcontroller import CRDController
from .registry import Registry, RegistrySettings
from .resources import default_resources
from .storage.etcd import EtcdStorage

log = logging.getLogger(__name__)


@dataclass
class ApiServerSettings:
    etcd_servers: str = "http://127.0.0.1:2379"
    bind_address: str = "127.0.0.1"
    advertise_address: str = ""  # where pods reach the apiserver (default/kubernetes Endpoints)
    port: int = 8080
    compaction_interval: float = 60.0
    history_retention: float = 300.0
    bookmark_interval: float = 10.0
    service_cluster_ip_range: str = "172.28.128.0/17"  # the upper half of the default pod network
    service_node_port_range: str = "30000-32767"
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    etcd_timeout: float = 5.0
    log_level: str = "info"
    # Security (issue 14; README "Security"). ``port`` is the plain-HTTP port: with TLS configured it
    # listens on 127.0.0.1 only and skips authentication (``--insecure-port``, for tests); 0: none.
    secure_port: int = 6443                    # HTTPS on bind_address, authenticated and authorized
    tls_cert_file: str = ""                    # no TLS pair: no secure port
    tls_private_key_file: str = ""
    client_ca_file: str = ""                   # X.509 client certificates signed by this CA authenticate
    token_auth_file: str = ""                  # kube-apiserver's --token-auth-file CSV: token,user,uid,"g1,g2"
    service_account_key_file: str = ""         # PEM public key(s) that verify ServiceAccount tokens
    service_account_signing_key_file: str = ""  # PEM private key that signs them (RS256)
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    authorization_mode: str = "Node,RBAC"      # comma separated: AlwaysAllow, AlwaysDeny, Node, RBAC
    pod_security_default: str = "baseline"     # enforce level of namespaces without the label
    encryption_provider_config: str = ""       # EncryptionConfiguration file: Secrets encrypted at rest
    audit_log_path: str = ""                   # audit.k8s.io/v1 Events, one JSON per line; "-": stdout
    audit_policy_file: str = ""                # audit Policy; none: every request at Metadata level
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class ApiServer:
    app: FastAPI
    registry: Registry
    compactor: Compactor


def build(settings: ApiServerSettings) -> ApiServer:
    storage = EtcdStorage(settings.etcd_servers, timeout=settings.etcd_timeout)
    registry = Registry(storage, default_resources(), settings=RegistrySettings(
        service_cidr=settings.service_cluster_ip_range, service_node_port_range=settings.service_node_port_range,
        default_not_ready_toleration_seconds=settings.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=settings.default_unreachable_toleration_seconds))
    compactor = Compactor(storage, registry.caches, interval=settings.compaction_interval,
                          retention=settings.history_retention)
    tasks: list[asyncio.Task[None]] = []
    crds = CRDController(registry)

    async def startup() -> None:
        # The OpenAPI schemas (also what strategic merge patch reads) take about a second to build.
        await asyncio.get_running_loop().run_in_executor(None, registry.openapi.warm)
        await _start_registry(registry)
        system: dict[str, Any] = dict(port=settings.port, advertise_address=settings.advertise_address,
                      bind_address=settings.bind_address)
        await _bootstrap(registry, system)
        await crds.start()  # serve the stored CRDs before answering requests
        tasks.append(asyncio.create_task(compactor.run(), name="compactor"))
        tasks.append(asyncio.create_task(bootstrap.reconcile_forever(registry, **system), name="system-objects"))

    async def shutdown() -> None:
        for t in tasks:
            t.cancel()
        await crds.stop()
        await registry.stop()
        await storage.close()

    app = create_app(registry, server_address=f"{settings.bind_address}:{settings.port}",
                     bookmark_interval=settings.bookmark_interval, on_startup=startup, on_shutdown=shutdown)
    return ApiServer(app, registry, compactor)


async def _start_registry(registry: Registry) -> None:
    """Start the caches; while etcd is unreachable, keep trying (readyz says not ready)."""
    delay = 0.5
    while True:
        try:
            await registry.start()
            return
        except Exception as e:  # noqa: BLE001 - any etcd trouble at start-up: wait and retry
            log.warning("waiting for etcd: %s", e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _bootstrap(registry: Registry, system: dict[str, Any]) -> None:
    """The system namespaces and the default/kubernetes Service, retried while etcd is away."""
    delay = 0.5
    while True:
        try:
            await bootstrap.ensure_system_objects(registry, **system)
            return
        except Exception as e:  # noqa: BLE001 - etcd trouble at start-up: wait and retry
            log.warning("creating the system objects: %s", e)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def run(settings: ApiServerSettings) -> None:
    import uvicorn

    server = build(settings)
    # Idle connections stay open longer than clients keep them (Go's 90 s IdleConnTimeout): with
    # uvicorn's default 5 s, kubectl drain's POST after its 5 s retry pause raced the server's close (EOF).
    # WebSockets (pods/exec|attach|portforward) through wsproto: uvicorn's websockets implementation
    # refuses kubectl's port-forward subprotocol "SPDY/3.1+portforward.k8s.io" (not an HTTP token).
    uvicorn.run(server.app, host=settings.bind_address, port=settings.port, log_level=settings.log_level,
                timeout_graceful_shutdown=3, timeout_keep_alive=120, ws="wsproto")
