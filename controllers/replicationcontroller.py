"""The ReplicationController controller: the ReplicaSet controller's logic, adapted to core/v1 RCs.

As in Kubernetes (pkg/controller/replication, "as if ReplicationController were an older API
version of ReplicaSet"), nothing is decided here. Data flow: the shared informer of
``v1 replicationcontrollers`` and of pods -> ``controllers.replicaset.ReplicaSetController``
with ``REPLICATION_CONTROLLER`` as its kind: its own queue (``replicationcontroller``), pods it
creates or adopts carry ``ownerReferences`` with ``apiVersion: v1, kind: ReplicationController``,
events come from ``replication-controller``, the status (ReplicaSet's fields, condition type
``ReplicaFailure``) is written to the RC's ``/status`` -> every decision reads the RC through
``rc_to_rs``, the pure conversion:

- ``spec.selector``, a plain label map, becomes ``{"matchLabels": map}``; a missing or empty map
  (which the API refuses for RCs) becomes no selector, which matches nothing;
- ``spec.template`` may be absent: an empty template then (creations fail on the server, as
  in Kubernetes, and are reported as ``FailedCreate``);
- ``replicas`` and ``minReadySeconds`` carry over; metadata and status are the RC's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from controllers.replicaset import ReplicaKind, run_kind
from machinery.client import ApiResource

if TYPE_CHECKING:
    from controllers.manager import ControllerContext

Obj = dict[str, Any]

RC_RESOURCE = ApiResource("v1", "replicationcontrollers", True, "ReplicationController")


def rc_to_rs(rc: Obj) -> Obj:
    """The RC read as a ReplicaSet (a new top-level dict; nested parts are shared, read-only)."""
    spec = rc.get("spec") or {}
    rs_spec: Obj = {k: spec[k] for k in ("replicas", "minReadySeconds") if k in spec}
    selector = spec.get("selector")
    if selector:
        rs_spec["selector"] = {"matchLabels": selector}
    rs_spec["template"] = spec.get("template") or {}
    return {**rc, "spec": rs_spec}


REPLICATION_CONTROLLER = ReplicaKind(resource=RC_RESOURCE, kind="ReplicationController",
                                     name="replicationcontroller", component="replication-controller",
                                     to_replica_set=rc_to_rs)


async def run(ctx: ControllerContext) -> None:
    """Entry point of the controller-manager (controller ``replicationcontroller``)."""
    await run_kind(ctx, REPLICATION_CONTROLLER)
