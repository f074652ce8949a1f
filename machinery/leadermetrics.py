"""``leader_election_master_status{name}``: whether this process leads its Lease, read at scrape time.

Data flow: a component with leader election calls ``report_leader(lease_name, is_leader)`` once at
start -> the gauge's child for that lease reads ``is_leader()`` when ``/metrics`` is scraped (no
timer, nothing on the election's path) -> 1 while leading, 0 as a standby; as client-go's
leaderelection metrics (component-base/metrics/prometheus/clientgo/leaderelection), where
``name`` is the Lease's name.
"""

from __future__ import annotations

from typing import Callable

from prometheus_client import Gauge

from machinery.metrics import REGISTRY

LEADER_STATUS = Gauge("leader_election_master_status",
                      "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, "
                      "1 indicates master. 'name' is the string used to identify the lease. Please make sure to "
                      "group by name.", ["name"], registry=REGISTRY)


def report_leader(name: str, is_leader: Callable[[], bool]) -> None:
    """Expose ``is_leader()`` as ``leader_election_master_status{name=...}`` (the last call per name wins)."""
    LEADER_STATUS.labels(name).set_function(lambda: 1.0 if is_leader() else 0.0)


__all__ = ["LEADER_STATUS", "report_leader"]
