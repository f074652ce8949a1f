"""Wiring of the apiserver process: etcd storage -> registry + caches -> HTTP app -> listeners.

``ApiServerSettings`` is everything that can be tuned (tests shrink the intervals);
``build`` returns the app with its background tasks (watch caches, compactor) started by the
app's lifespan, so the same object runs under uvicorn or in process.

Security wiring (issue 14): ``build`` also makes the authorizer (``--authorization-mode``), the
authenticator (client CA, token file, ServiceAccount keys) and wraps the plain app twice:
``secure_app`` authenticates and authorizes every request (only with a TLS pair), ``insecure_app``
acts as the insecure superuser; the audit log, when asked for, wraps both. ``run`` serves
``secure_app`` over HTTPS on ``bind_address:secure_port`` and ``insecure_app`` over plain HTTP on
127.0.0.1 (``--insecure-port``, for tests); without a TLS pair only the plain port, on
``bind_address``, with nothing authenticated. ``.app`` itself never asks for credentials:
in-process tests act as the superuser through it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass, field
from typing import Any, Callable

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


class SettingsError(ValueError):
    """A flag the API server cannot start with (missing file, bad pair): printed, exit 1."""


@dataclass
class ApiServer:
    app: FastAPI  # no authentication: in-process callers are the insecure superuser
    registry: Registry
    compactor: Compactor
    insecure_app: Any = None  # ASGI: the plain-HTTP listener's app (audited when asked)
    secure_app: Any = None  # ASGI: authenticated and authorized; None without a TLS pair


def tls_enabled(settings: ApiServerSettings) -> bool:
    return bool(settings.tls_cert_file or settings.tls_private_key_file)


def service_port(settings: ApiServerSettings) -> int:
    """The port default/kubernetes sends to: the secure port with TLS (as Kubernetes), else the plain one."""
    return settings.secure_port if tls_enabled(settings) else settings.port


_FILE_FLAGS = ("tls_cert_file", "tls_private_key_file", "client_ca_file", "token_auth_file",
               "service_account_key_file", "service_account_signing_key_file", "encryption_provider_config",
               "audit_policy_file")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_settings(settings: ApiServerSettings) -> None:
    """Refuse to start on a file flag that names no readable file, or a TLS pair that does not load."""
    for name in _FILE_FLAGS:
        path = getattr(settings, name)
        if not path:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise SettingsError(f"{_flag(name)}: open {path}: {e.strerror or e}") from e
    if tls_enabled(settings):
        if not (settings.tls_cert_file and settings.tls_private_key_file):
            raise SettingsError("--tls-cert-file and --tls-private-key-file must be given together")
        if settings.secure_port <= 0:
            raise SettingsError(f"--secure-port {settings.secure_port}: must be a port number (1-65535)")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ctx.load_cert_chain(settings.tls_cert_file, settings.tls_private_key_file)
        except (ssl.SSLError, ValueError) as e:
            raise SettingsError(f"--tls-cert-file/--tls-private-key-file: not a matching PEM certificate and "
                                f"key ({settings.tls_cert_file}, {settings.tls_private_key_file}): {e}") from e
        if settings.client_ca_file:
            try:
                ctx.load_verify_locations(settings.client_ca_file)
            except (ssl.SSLError, ValueError) as e:
                raise SettingsError(f"--client-ca-file: no PEM certificate in {settings.client_ca_file}: {e}") from e
    elif settings.client_ca_file:
        raise SettingsError("--client-ca-file needs --tls-cert-file and --tls-private-key-file")


def _loaded(flag: str, load: Callable[[], Any]) -> Any:
    """``load()``, its errors (a bad file's content) turned into a SettingsError naming the flag."""
    try:
        return load()
    except SettingsError:
        raise
    except (OSError, ValueError) as e:
        raise SettingsError(f"{flag}: {e}") from e


def build(settings: ApiServerSettings) -> ApiServer:
    transformer = None
    if settings.encryption_provider_config:
        from .encryption import load_transformer
        transformer = _loaded("--encryption-provider-config",
                              lambda: load_transformer(settings.encryption_provider_config))
    storage = EtcdStorage(settings.etcd_servers, timeout=settings.etcd_timeout, transformer=transformer)
    registry = Registry(storage, default_resources(), settings=RegistrySettings(
        service_cidr=settings.service_cluster_ip_range, service_node_port_range=settings.service_node_port_range,
        default_not_ready_toleration_seconds=settings.default_not_ready_toleration_seconds,
        default_unreachable_toleration_seconds=settings.default_unreachable_toleration_seconds,
        pod_security_default=settings.pod_security_default,
        service_account_token_volume=bool(settings.service_account_signing_key_file)))
    compactor = Compactor(storage, registry.caches, interval=settings.compaction_interval,
                          retention=settings.history_retention)
    tasks: list[asyncio.Task[None]] = []
    crds = CRDController(registry)

    async def startup() -> None:
        # The OpenAPI schemas (also what strategic merge patch reads) take about a second to build.
        await asyncio.get_running_loop().run_in_executor(None, registry.openapi.warm)
        await _start_registry(registry)
        system: dict[str, Any] = dict(port=service_port(settings), advertise_address=settings.advertise_address,
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

    from .auth.authn import build_authenticator
    from .auth.authz import build_authorizer
    from .auth.middleware import insecure_app, secure_app

    authorizer = _loaded("--authorization-mode", lambda: build_authorizer(settings.authorization_mode, registry))
    # Also what the API's own TokenRequest, TokenReview and SubjectAccessReviews use.
    authenticator = _loaded("--token-auth-file/--service-account-key-file/--service-account-signing-key-file",
                            lambda: build_authenticator(settings, registry))
    app = create_app(registry, server_address=f"{settings.bind_address}:{service_port(settings)}",
                     bookmark_interval=settings.bookmark_interval, on_startup=startup, on_shutdown=shutdown,
                     authenticator=authenticator, authorizer=authorizer)
    insecure: Any = insecure_app(app)
    secure: Any = None
    if tls_enabled(settings):
        secure = secure_app(app, authenticator=authenticator, authorizer=authorizer)
    if settings.audit_log_path:
        from .audit import audit_middleware
        insecure = _loaded("--audit-log-path/--audit-policy-file", lambda: audit_middleware(
            insecure, log_path=settings.audit_log_path, policy_file=settings.audit_policy_file))
        if secure is not None:
            secure = _loaded("--audit-log-path/--audit-policy-file", lambda: audit_middleware(
                secure, log_path=settings.audit_log_path, policy_file=settings.audit_policy_file))
    return ApiServer(app, registry, compactor, insecure_app=insecure, secure_app=secure)


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
    """Serve until SIGINT/SIGTERM; a bad flag raises ``SettingsError`` before anything listens."""
    from .tlsserver import TLSFiles, listener_config, serve

    check_settings(settings)
    server = build(settings)
    level = settings.log_level
    if tls_enabled(settings):
        tls = TLSFiles(settings.tls_cert_file, settings.tls_private_key_file, settings.client_ca_file)
        configs = [listener_config(server.secure_app, host=settings.bind_address, port=settings.secure_port,
                                   tls=tls, log_level=level)]
        if settings.port:
            # Unauthenticated: loopback only, whatever --bind-address says.
            configs.append(listener_config(server.insecure_app, host="127.0.0.1", port=settings.port, log_level=level))
    else:
        log.warning("no --tls-cert-file/--tls-private-key-file: serving plain HTTP on %s:%d, where every request "
                    "acts with every permission (nothing is authenticated or authorized)",
                    settings.bind_address, settings.port)
        configs = [listener_config(server.insecure_app, host=settings.bind_address, port=settings.port, log_level=level)]
    asyncio.run(serve(server.app, configs, log_level=level))
