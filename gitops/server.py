"""The gitops process (``minik8s gitops``): install the GitSync CRD, reconcile, receive webhooks.

Data flow: ``run(settings)`` -> an ``ApiClient`` (user agent ``minik8s-gitops``) -> ``ensure_crd``
(the GitSync CRD applied, then wait for it to be served) -> with ``--repo``, ``ensure_default``
creates or updates the GitSync ``gitops-system/default`` (and its namespace) -> one
``InformerFactory`` (GitSyncs, and every type the GitSyncs apply) -> ``Reconciler`` with the git
``Mirrors`` under ``cache_dir`` -> the webhook receiver (``gitops.webhook``) on its port, whose
``/healthz`` also answers the container health check and ``/metrics`` the Prometheus scrape
(``gitops.metrics``; with a credential, the scraper's token is reviewed by the API server as
machinery.healthz does) -> the controller's workers until SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from machinery import errors
from machinery.client import ApiClient, default_user_agent, wait_for_apiserver
from machinery.events import EventRecorder
from machinery.healthz import metrics_auth, metrics_handler
from machinery.kubeconfig import ClientConfig
from machinery.process import run_until_signalled, until_stopped
from machinery.sharedinformers import InformerFactory

from .crd import API_VERSION, CRD, CRD_NAME, KIND, RESOURCE
from .git import Mirrors
from .reconciler import Reconciler, ReconcilerSettings
from .revision import Source
from .source import Limits
from .webhook import WebhookSettings, make_app, serve

log = logging.getLogger(__name__)

CRDS = ("apiextensions.k8s.io/v1", "customresourcedefinitions")
DEFAULT_NAMESPACE = "gitops-system"
DEFAULT_NAME = "default"


@dataclass
class DefaultSync:
    """What ``minik8s gitops --repo URL --path DIR --branch B`` puts in GitSync gitops-system/default."""

    url: str
    path: str = ""
    branch: str = "main"
    interval: str = "15s"


@dataclass
class GitOpsSettings:
    server: str | ClientConfig = "http://127.0.0.1:8080"  # a URL, or a kubeconfig's address and credential
    cache_dir: str = field(default_factory=lambda: str(Path(tempfile.gettempdir()) / "minik8s-gitops"))
    default_sync: DefaultSync | None = None
    reconciler: ReconcilerSettings = field(default_factory=ReconcilerSettings)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    limits: Limits = field(default_factory=Limits)
    git_timeout: float = 60.0


async def ensure_crd(client: ApiClient, *, timeout: float = 30.0) -> None:
    """Install or update the GitSync CRD (server-side apply: a no-op when it is current, so an older
    schema, which would prune the status fields this version writes, is brought up to date) and
    wait until its resource is served."""
    await client.patch(CRDS, CRD_NAME, CRD, patch_type="apply", field_manager="minik8s-gitops", force=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await client.list(RESOURCE, limit=1)
            return
        except errors.NotFoundError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def ensure_default(client: ApiClient, sync: DefaultSync) -> None:
    """Create or update GitSync gitops-system/default (server-side apply: only these fields)."""
    try:
        await client.create(("v1", "namespaces"), {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": DEFAULT_NAMESPACE}})
    except errors.AlreadyExistsError:
        pass
    body: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": DEFAULT_NAME, "namespace": DEFAULT_NAMESPACE},
        "spec": {"url": sync.url, "ref": {"branch": sync.branch}, "path": sync.path, "interval": sync.interval}}
    await client.patch(RESOURCE, DEFAULT_NAME, body, namespace=DEFAULT_NAMESPACE, patch_type="apply",
                       field_manager="minik8s-gitops-cli", force=True)


def build(settings: GitOpsSettings, client: ApiClient) -> tuple[Reconciler, InformerFactory]:
    """The parts of a gitops process, not started (tests use them directly)."""
    factory = InformerFactory(client)
    mirrors = Mirrors(Path(settings.cache_dir), default_timeout=settings.git_timeout)
    source = Source(mirrors, limits=settings.limits)
    reconciler = Reconciler(client, factory, source, settings=settings.reconciler,
                            recorder=EventRecorder(client, "minik8s-gitops"))
    return reconciler, factory


async def main(settings: GitOpsSettings, *, stop: asyncio.Event | None = None) -> None:
    client = ApiClient(settings.server, user_agent=default_user_agent("minik8s-gitops"))
    try:
        await wait_for_apiserver(client)
        await ensure_crd(client)
        if settings.default_sync is not None:
            await ensure_default(client, settings.default_sync)
        reconciler, factory = build(settings, client)
        factory.start()
        await reconciler.syncs.wait_synced()
        runner = None
        if settings.webhook.port:
            app = make_app(secret_for=reconciler.webhook_secret, trigger=reconciler.trigger, settings=settings.webhook,
                           metrics=metrics_handler(metrics_auth(client)))
            try:
                runner, _ = await serve(app, host=settings.webhook.bind_address, port=settings.webhook.port)
            except OSError as e:
                # Polling still works; only webhooks (and the health probe on that port) do not.
                log.error("cannot serve webhooks on %s:%s: %s", settings.webhook.bind_address,
                          settings.webhook.port, e)
        log.info("gitops against %s, git mirrors in %s, webhooks on %s:%s", settings.server, settings.cache_dir,
                 settings.webhook.bind_address, settings.webhook.port)
        try:
            await until_stopped(reconciler.controller.run(), stop or asyncio.Event())
        finally:
            if runner is not None:
                await runner.cleanup()
            await factory.stop()
    finally:
        await client.close()


def run(settings: GitOpsSettings) -> None:
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["DEFAULT_NAME", "DEFAULT_NAMESPACE", "DefaultSync", "GitOpsSettings", "build", "ensure_crd",
           "ensure_default", "main", "run"]
