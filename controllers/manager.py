"""The controller-manager process: shared informers, leader election, and the controllers.

Data flow: one ``ApiClient`` and one ``InformerFactory`` for the process -> while this replica
holds the ``kube-controller-manager`` Lease, every enabled controller's ``run(ctx)`` runs as a
task: it takes the informers it needs from ``ctx.informers`` (shared: pods are watched once for
all controllers), adds handlers that enqueue keys, and runs a ``machinery.controller.Controller``
over its reconcile function -> losing the lease cancels them all (another replica takes over).

A controller module only has to expose ``async def run(ctx: ControllerContext) -> None`` and be
listed in ``CONTROLLERS``.

``GET /metrics`` on the health port (``machinery.healthz``; guarded by TokenReview and
SubjectAccessReview when the process has a credential): every controller's work queue
(``workqueue_*{name=<controller>}``, ``machinery.workqueue``), ``leader_election_master_status``
and the process and Python collectors.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from collections.abc import Callable, Coroutine
from typing import Any

from machinery.client import ApiClient, default_user_agent
from machinery.events import EventRecorder
from machinery.healthz import Check, serve_healthz
from machinery.kubeconfig import ClientConfig
from machinery.leadermetrics import report_leader
from machinery.leaderelection import LeaderElectionSettings, LeaderElector, default_identity
from machinery.process import run_until_signalled, until_stopped
from machinery.sharedinformers import InformerFactory

log = logging.getLogger(__name__)

# name -> module exposing ``async def run(ctx)``.
CONTROLLERS: dict[str, str] = {
    "replicaset": "controllers.replicaset",
    "deployment": "controllers.deployment",
    "garbagecollector": "controllers.garbagecollector",
    "disruption": "controllers.disruption",
    "podgc": "controllers.podgc",
    "nodelifecycle": "controllers.nodelifecycle",
    "endpoints": "controllers.endpoints",
    "endpointslice": "controllers.endpointslice",
    "namespace": "controllers.namespace",
    "replicationcontroller": "controllers.replicationcontroller",
    "serviceaccounts": "controllers.serviceaccounts",
    "root-ca-cert-publisher": "controllers.rootcacertpublisher",
    "servicelb": "controllers.servicelb",
    "horizontalpodautoscaling": "controllers.podautoscaler",
    "daemonset": "controllers.daemonset",
    "resourcequota": "controllers.resourcequota",
    "statefulset": "controllers.statefulset",
    "job": "controllers.job",
    "cronjob": "controllers.cronjob",
    "ttlafterfinished": "controllers.ttlafterfinished",
    "persistentvolume-binder": "controllers.persistentvolume",
    "local-path-provisioner": "controllers.localprovisioner",
    "pvc-protection": "controllers.pvcprotection",
    "pv-protection": "controllers.pvprotection",
    "clusterrole-aggregation": "controllers.clusterroleaggregation",
}


@dataclass
class ControllerManagerSettings:
    server: str | ClientConfig = "http://127.0.0.1:8080"  # a URL, or a kubeconfig's address and credential
    controllers: tuple[str, ...] = ("*",)
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = field(default_factory=default_identity)
    workers: int = 4
    # node lifecycle
    node_monitor_period: float = 5.0
    node_monitor_grace_period: float = 40.0
    default_toleration_seconds: float = 300.0
    # namespace
    namespace_deletion_grace_period: float = 5.0
    # garbage collector: how often discovery is read again (new and removed CRDs), as Kubernetes
    gc_resync_period: float = 30.0
    # pod garbage collector: --terminated-pod-gc-threshold; the pass period and the quarantine of a
    # missing node are Kubernetes' 20 s and 40 s constants, settings here so tests can shrink them
    terminated_pod_gc_threshold: int = 12500
    pod_gc_period: float = 20.0
    pod_gc_quarantine: float = 40.0
    # servicelb: the pool LoadBalancer Services get status.loadBalancer addresses from (loopback:
    # every 127/8 address is this machine's)
    load_balancer_ip_range: str = "127.240.0.0/16"
    # resource quota: how often every quota's usage is recalculated in full (--resource-quota-sync-period)
    resource_quota_sync_period: float = 300.0
    # jobs: the backoff of failed pods (10 s doubling up to 6 min, as Kubernetes)
    job_backoff_base_s: float = 10.0
    job_backoff_max_s: float = 360.0
    # horizontal pod autoscaling (Kubernetes' --horizontal-pod-autoscaler-* flags)
    horizontal_pod_autoscaler_sync_period: float = 15.0
    horizontal_pod_autoscaler_downscale_stabilization: float = 300.0
    horizontal_pod_autoscaler_tolerance: float = 0.1
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 10257  # GET /healthz (plain HTTP); 0: none
    # root CA publisher: the bundle published as ConfigMap kube-root-ca.crt (--root-ca-file; empty:
    # the kubeconfig's CA, else none)
    root_ca_file: str = ""


@dataclass
class ControllerContext:
    client: ApiClient
    informers: InformerFactory
    settings: ControllerManagerSettings

    def recorder(self, component: str) -> EventRecorder:
        return EventRecorder(self.client, component)


def enabled(settings: ControllerManagerSettings) -> list[str]:
    wanted = settings.controllers
    if "*" in wanted:
        return [n for n in CONTROLLERS if f"-{n}" not in wanted]
    return [n for n in wanted if n in CONTROLLERS]


async def run_controllers(ctx: ControllerContext) -> None:
    runners: list[Callable[[ControllerContext], Coroutine[Any, Any, None]]] = []
    for name in enabled(ctx.settings):
        runners.append(importlib.import_module(CONTROLLERS[name]).run)
    tasks = [asyncio.create_task(r(ctx), name=f"controller:{n}") for r, n in zip(runners, enabled(ctx.settings))]
    ctx.informers.start()
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main(settings: ControllerManagerSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the controllers (while leading) until ``stop`` is set (forever if None)."""
    async with ApiClient(settings.server, user_agent=default_user_agent("kube-controller-manager")) as client:
        informers = InformerFactory(client)
        ctx = ControllerContext(client, informers, settings)
        checks: dict[str, Check] = {}
        if settings.leader_elect:
            elector = LeaderElector(client, LeaderElectionSettings(
                lease_name="kube-controller-manager", identity=settings.identity,
                lease_duration=settings.lease_duration, renew_deadline=settings.renew_deadline,
                retry_period=settings.retry_period))
            work = elector.run(lambda: run_controllers(ctx))
            checks["leaderElection"] = elector.health
            leading = elector
            report_leader("kube-controller-manager", lambda: leading.is_leader)
        else:
            work = run_controllers(ctx)
        health = await serve_healthz(settings.healthz_bind_address, settings.healthz_port, checks, client=client) \
            if settings.healthz_port else None
        try:
            await until_stopped(work, stop or asyncio.Event())
        finally:
            if health is not None:
                await health.cleanup()
            await informers.stop()


def run(settings: ControllerManagerSettings) -> None:
    run_until_signalled(lambda stop: main(settings, stop=stop))
