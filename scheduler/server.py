"""The scheduler process: settings, informers, leader election, and the scheduling loop.

Data flow: ``run(settings)`` (the ``minik8s scheduler`` command) -> ``main(settings)`` builds an
``ApiClient``, one ``InformerFactory`` (pods, nodes) and a ``Scheduler`` whose handlers keep its
cache and queue current from the start -> with ``leader_elect`` a ``LeaderElector`` on the Lease
``kube-system/kube-scheduler`` runs ``Scheduler.run`` only while this replica leads (and cancels
it, binds in flight included, when the lease is lost); without it the loop runs at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from machinery.client import ApiClient, default_user_agent
from machinery.events import EventRecorder
from machinery.healthz import serve_healthz
from machinery.leadermetrics import report_leader
from machinery.kubeconfig import ClientConfig
from machinery.leaderelection import LeaderElectionSettings, LeaderElector, default_identity
from machinery.process import run_until_signalled, until_stopped
from machinery.sharedinformers import InformerFactory
from scheduler.scheduler import CycleSettings, Scheduler

log = logging.getLogger(__name__)

LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"


@dataclass
class SchedulerSettings:
    server: str | ClientConfig = "http://127.0.0.1:8080"  # a URL, or a kubeconfig's address and credential
    scheduler_name: str = "default-scheduler"
    leader_elect: bool = True
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    identity: str = field(default_factory=default_identity)
    bind_concurrency: int = 64  # binds in flight at once
    percentage_of_nodes_to_score: int = 0  # 0: adaptive (50% - nodes/125, at least 100 nodes)
    initial_backoff_s: float = 1.0  # an unschedulable pod's retry backoff, doubled per attempt
    max_backoff_s: float = 10.0
    max_unschedulable_s: float = 60.0  # an unschedulable pod is retried at least this often
    emit_scheduled_events: bool = True
    seed: int | None = None  # tie-breaking randomness (tests)
    healthz_bind_address: str = "127.0.0.1"
    healthz_port: int = 10259  # GET /healthz (plain HTTP); 0: none

    def cycle(self) -> CycleSettings:
        return CycleSettings(scheduler_name=self.scheduler_name, bind_concurrency=self.bind_concurrency,
                             percentage_of_nodes_to_score=self.percentage_of_nodes_to_score,
                             initial_backoff_s=self.initial_backoff_s, max_backoff_s=self.max_backoff_s,
                             max_unschedulable_s=self.max_unschedulable_s,
                             emit_scheduled_events=self.emit_scheduled_events, seed=self.seed)


def build(settings: SchedulerSettings, client: ApiClient) -> tuple[Scheduler, InformerFactory, LeaderElector | None]:
    """The parts of a scheduler process, not started (tests use them directly)."""
    factory = InformerFactory(client)
    elector = None
    if settings.leader_elect:
        elector = LeaderElector(client, LeaderElectionSettings(
            lease_name=LEASE_NAME, namespace=LEASE_NAMESPACE, identity=settings.identity,
            lease_duration=settings.lease_duration, renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period))
    recorder = EventRecorder(client, "default-scheduler", host=settings.identity)
    leader = elector
    sched = Scheduler(client, factory, settings.cycle(), recorder=recorder,
                      is_leader=(lambda: leader.is_leader) if leader is not None else (lambda: True))
    return sched, factory, elector


async def main(settings: SchedulerSettings, *, stop: asyncio.Event | None = None) -> None:
    """Run the scheduler until ``stop`` is set (or until cancelled)."""
    client = ApiClient(settings.server, user_agent=default_user_agent("kube-scheduler"))
    sched, factory, elector = build(settings, client)
    factory.start()
    log.info("scheduler %s (%s) against %s, leader election %s", settings.identity, settings.scheduler_name,
             settings.server, "on" if elector else "off")
    checks = {"leaderElection": elector.health} if elector is not None else {}
    if elector is not None:
        report_leader(LEASE_NAME, lambda: elector.is_leader)
    health = await serve_healthz(settings.healthz_bind_address, settings.healthz_port, checks, client=client) \
        if settings.healthz_port else None
    try:
        await until_stopped(elector.run(sched.run) if elector is not None else sched.run(), stop or asyncio.Event())
    finally:
        if health is not None:
            await health.cleanup()
        await factory.stop()
        await client.close()


def run(settings: SchedulerSettings) -> None:
    run_until_signalled(lambda stop: main(settings, stop=stop))


__all__ = ["LEASE_NAME", "LEASE_NAMESPACE", "SchedulerSettings", "build", "main", "run"]
