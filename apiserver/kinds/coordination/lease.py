"""Lease (coordination.k8s.io/v1): who holds a lock and until when (leader election, node heartbeats)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...validation.fielderrors import Causes, Obj, get_int, get_map, get_str, invalid, nonnegative
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec


class LeaseStrategy(Strategy):
    group = "coordination.k8s.io"
    kind = "Lease"
    plural = "leases"
    singular = "lease"
    model = "V1Lease"
    columns = (NAME, Column("Holder", description=(
        "holderIdentity contains the identity of the holder of a current lease.")), AGE)
    protobuf_messages = {
        "Lease": "metadata:1:ObjectMeta spec:2:LeaseSpec",
        "LeaseSpec": (
            "holderIdentity:1:s! leaseDurationSeconds:2:i! acquireTime:3:MicroTime "
            "renewTime:4:MicroTime leaseTransitions:5:i! strategy:6:s! preferredHolder:7:s!"),
    }

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        lease_spec = get_map(obj, "spec", "", causes)
        duration = get_int(lease_spec, "leaseDurationSeconds", "spec", causes)
        if duration is not None and duration <= 0:
            causes.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
        causes.extend(nonnegative("spec.leaseTransitions", get_int(lease_spec, "leaseTransitions", "spec", causes)))
        for name in ("holderIdentity", "acquireTime", "renewTime", "strategy", "preferredHolder"):
            get_str(lease_spec, name, "spec", causes)
        return causes

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return [name_of(obj), spec(obj).get("holderIdentity") or "", age(obj, now)]


STRATEGY = LeaseStrategy()
