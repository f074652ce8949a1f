"""The GitOps reconciler's Prometheus metrics: Flux's names (fluxcd/pkg runtime/metrics) and a sync counter.

Data flow: every reconcile of a GitSync ends in ``Reconciler._write_status`` with the status it
computed -> ``record_sync(obj, status, suspended, seconds)``:

    gotk_reconcile_duration_seconds{kind,name,namespace}      the reconcile's duration (Flux's buckets)
    gotk_reconcile_condition{kind,name,namespace,type,status} 1 for each condition's current status
                                                              (True/False/Unknown), 0 for the others
                                                              (Flux's RecordCondition), per type
                                                              SourceReady, Applied, Healthy, Ready
    gotk_suspend_status{kind,name,namespace}                  1 while spec.suspend
    gitops_sync_total{kind,name,namespace,result}             one per reconcile; result = the Ready
                                                              condition's reason (Succeeded,
                                                              FetchFailed, ApplyFailed, ... a fixed list)

A GitSync that is gone from the cache -> ``forget_sync``: its series are removed (Flux keeps them
with status "Deleted"; removing keeps the memory of a long-running process bounded). Labels carry
GitSync names and namespaces, as Flux's do: one set per GitSync, not per object it applies. A
metric that fails is logged and never breaks a reconcile.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

from prometheus_client import Counter, Gauge, Histogram

from machinery.metrics import REGISTRY

from .crd import KIND
from .status import CONDITION_TYPES, REASONS, condition

log = logging.getLogger(__name__)

# Flux's prometheus.ExponentialBuckets(10e-9, 10, 10): 10 ns .. 10 s.
FLUX_BUCKETS = tuple(float(f"1e{e}") for e in range(-8, 2))
STATUSES = ("True", "False", "Unknown", "Deleted")  # Flux's label values
LABELS = ["kind", "name", "namespace"]

RECONCILE_DURATION = Histogram("gotk_reconcile_duration_seconds",
                               "The duration in seconds of a GitOps Toolkit resource reconciliation.",
                               LABELS, buckets=FLUX_BUCKETS, registry=REGISTRY)
RECONCILE_CONDITION = Gauge("gotk_reconcile_condition",
                            "The current condition status of a GitOps Toolkit resource reconciliation.",
                            [*LABELS, "type", "status"], registry=REGISTRY)
SUSPEND_STATUS = Gauge("gotk_suspend_status", "The current suspend status of a GitOps Toolkit resource.",
                       LABELS, registry=REGISTRY)
SYNCS = Counter("gitops_sync_total", "Reconciles of a GitSync by result (the reason of its Ready condition).",
                [*LABELS, "result"], registry=REGISTRY)


def _ref(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return KIND, str(meta.get("name") or ""), str(meta.get("namespace") or "")


def sync_result(status: Mapping[str, Any]) -> str:
    """The Ready condition's reason (one of gitops.status.REASONS), or Unknown."""
    reason = str((condition(status, "Ready") or {}).get("reason") or "")
    return reason if reason in REASONS else "Unknown"


def record_sync(obj: Mapping[str, Any], status: Mapping[str, Any], *, suspended: bool, seconds: float) -> None:
    """One finished reconcile of GitSync ``obj`` that computed ``status``."""
    try:
        ref = _ref(obj)
        RECONCILE_DURATION.labels(*ref).observe(max(0.0, seconds))
        for type_ in CONDITION_TYPES:
            c = condition(status, type_)
            if c is None:
                continue
            for s in STATUSES:
                RECONCILE_CONDITION.labels(*ref, type_, s).set(1 if c.get("status") == s else 0)
        SUSPEND_STATUS.labels(*ref).set(1 if suspended else 0)
        SYNCS.labels(*ref, sync_result(status)).inc()
    except Exception:  # noqa: BLE001 - a metric never breaks a reconcile
        log.debug("recording the metrics of a sync failed", exc_info=True)


def forget_sync(namespace: str, name: str) -> None:
    """Removes every series of GitSync ``namespace/name`` (it is gone)."""
    ref = (KIND, name, namespace)
    removals: list[tuple[Any, tuple[str, ...]]] = [(RECONCILE_DURATION, ref), (SUSPEND_STATUS, ref)]
    removals += [(RECONCILE_CONDITION, (*ref, t, s)) for t in CONDITION_TYPES for s in STATUSES]
    removals += [(SYNCS, (*ref, r)) for r in (*REASONS, "Unknown")]
    for metric, labels in removals:
        try:
            metric.remove(*labels)
        except KeyError:
            pass  # never recorded


__all__ = ["FLUX_BUCKETS", "RECONCILE_CONDITION", "RECONCILE_DURATION", "SUSPEND_STATUS", "SYNCS", "forget_sync",
           "record_sync", "sync_result"]
