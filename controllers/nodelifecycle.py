"""The node lifecycle controller: nodes whose kubelet goes quiet become Unknown, tainted, emptied.

Data flow (Kubernetes' pkg/controller/nodelifecycle and pkg/controller/tainteviction):

- informers: nodes, Leases in ``kube-node-lease`` (one per node, renewed by its kubelet), pods.
- monitor loop, every ``node_monitor_period``: for each node, ``nodehealth.observe`` notes
  when this controller last saw the lease renewed or the Ready heartbeat change. Quiet for
  longer than ``node_monitor_grace_period`` -> Ready, MemoryPressure, DiskPressure and
  PIDPressure become ``Unknown`` (reason ``NodeStatusUnknown``) through ``nodes/{name}/status``;
  a node that was Ready gets a ``NodeNotReady`` event and its pods' Ready condition set False
  (so Endpoints drop them). Then the zone states (``Normal`` / ``PartialDisruption`` /
  ``FullDisruption``) are computed and each node's taints are brought to
  ``nodehealth.desired_taints``: NoSchedule taints by condition, and the NoExecute
  ``node.kubernetes.io/unreachable`` (Ready Unknown) or ``not-ready`` (Ready False) taint with
  ``timeAdded``, removed again once the kubelet reports Ready=True. When every zone is fully
  disrupted (every node not Ready) no NoExecute taint is kept or added: evicting everything
  would not help, the fault is probably on the controller's side (Kubernetes' "master
  disruption mode").
- taint eviction, a work queue keyed by node name (enqueued when a node's taints or the pods
  on it change): for each pod on a node with NoExecute taints, ``nodehealth.eviction_time``
  (tolerations, with ``default_toleration_seconds`` standing in for the admission plugin's
  default tolerations) -> due pods get a ``TaintManagerEviction`` event, a ``DisruptionTarget``
  condition and a normal DELETE; the rest are looked at again when the earliest is due.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Callable

from controllers import nodehealth
from controllers.manager import ControllerContext
from machinery import errors
from machinery.client import retry_on_conflict
from machinery.controller import Controller, Result
from machinery.informer import object_key, split_key

log = logging.getLogger(__name__)

Obj = dict[str, Any]

NODES = ("v1", "nodes")
PODS = ("v1", "pods")
LEASES = ("coordination.k8s.io/v1", "leases")
LEASE_NAMESPACE = "kube-node-lease"
COMPONENT = "node-controller"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _no_execute(node: Obj | None) -> list[Obj]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or [] if t.get("effect") == nodehealth.NO_EXECUTE]


class NodeLifecycleController:
    def __init__(self, ctx: ControllerContext, *, clock: Callable[[], datetime] = _now) -> None:
        self.client = ctx.client
        self.settings = ctx.settings
        self.clock = clock
        self.recorder = ctx.recorder(COMPONENT)
        self.nodes = ctx.informers.informer(NODES)
        # Cluster-wide, so the garbage collector's lease informer is the same one (one watch).
        self.leases = ctx.informers.informer(LEASES)
        self.pods = ctx.informers.informer(PODS)
        self.health: dict[str, nodehealth.NodeHealth] = {}
        self.mark_retry: set[str] = set()  # nodes whose pods could not all be marked not ready
        self.master_disruption = False
        self.pods_by_node: dict[str, set[str]] = {}
        self.first_seen: dict[str, datetime] = {}  # pod uid -> first look under a NoExecute taint
        self.eviction: Controller[str] = Controller("taint-eviction", self.reconcile_evictions,
                                                    workers=ctx.settings.workers)
        self.nodes.add_handler(self._on_node, self._on_node_update, self._on_node_delete)
        self.pods.add_handler(self._on_pod, self._on_pod_update, self._on_pod_delete)

    # ------------------------------------------------------------------ handlers
    def _on_node(self, node: Obj) -> None:
        if _no_execute(node):
            self.eviction.enqueue(node["metadata"]["name"])

    def _on_node_update(self, old: Obj, new: Obj) -> None:
        if _no_execute(old) != _no_execute(new):
            self.eviction.enqueue(new["metadata"]["name"])

    def _on_node_delete(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        self.health.pop(name, None)
        self.mark_retry.discard(name)

    def _index(self, pod: Obj, add: bool) -> str | None:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            return None
        keys = self.pods_by_node.setdefault(node, set())
        if add:
            keys.add(object_key(pod))
        else:
            keys.discard(object_key(pod))
            if not keys:
                del self.pods_by_node[node]
        return str(node)

    def _on_pod(self, pod: Obj) -> None:
        node = self._index(pod, True)
        if node and _no_execute(self.nodes.get(node)):
            self.eviction.enqueue(node)

    def _on_pod_update(self, old: Obj, new: Obj) -> None:
        if (old.get("spec") or {}).get("nodeName") != (new.get("spec") or {}).get("nodeName"):
            self._index(old, False)
        self._on_pod(new)

    def _on_pod_delete(self, pod: Obj) -> None:
        self._index(pod, False)
        self.first_seen.pop(str((pod.get("metadata") or {}).get("uid")), None)

    # ------------------------------------------------------------------ node health
    async def monitor_once(self) -> None:
        """One pass of Kubernetes' ``monitorNodeHealth``: conditions, then taints."""
        now = self.clock()
        grace = self.settings.node_monitor_grace_period
        current: dict[str, Obj] = {}
        for node in self.nodes.list():
            name = node["metadata"]["name"]
            lease = self.leases.get(f"{LEASE_NAMESPACE}/{name}")
            health = nodehealth.observe(self.health.get(name), node, lease, now)
            self.health[name] = health
            was_ready = nodehealth.ready_status(node) == "True"
            if nodehealth.is_stale(health, now, grace) and nodehealth.unknown_conditions(node, now) is not None:
                try:
                    node = await self._set_unknown(name, now)
                except errors.NotFoundError:
                    continue
                if was_ready and nodehealth.ready_status(node) != "True":
                    log.info("node %s: kubelet stopped posting node status; Ready=Unknown", name)
                    await self.recorder.event(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
                    self.mark_retry.add(name)
            if name in self.mark_retry and nodehealth.ready_status(node) != "True":
                if await self._mark_pods_not_ready(name):
                    self.mark_retry.discard(name)
            elif nodehealth.ready_status(node) == "True":
                self.mark_retry.discard(name)
            current[name] = node
        await self._taint_pass(list(current.values()), now)

    async def _set_unknown(self, name: str, now: datetime) -> Obj:
        async def attempt() -> Obj:
            live = await self.client.get(NODES, name)
            conditions = nodehealth.unknown_conditions(live, now)
            if conditions is None:
                return live
            live.setdefault("status", {})["conditions"] = conditions
            return await self.client.update_status(NODES, live)
        return await retry_on_conflict(attempt)

    async def _mark_pods_not_ready(self, node_name: str) -> bool:
        """Kubernetes' ``MarkPodsNotReady``: every pod on the node gets Ready=False."""
        ok = True
        for key in sorted(self.pods_by_node.get(node_name, ())):
            pod = self.pods.get(key)
            if pod is None or (pod.get("spec") or {}).get("nodeName") != node_name:
                continue
            ready = next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
            if ready is None or ready.get("status") == "False":
                continue
            namespace, name = split_key(key)
            try:
                await retry_on_conflict(lambda: self._set_pod_not_ready(name, namespace))
                await self.recorder.event(pod, "Warning", "NodeNotReady", "Node is not ready")
            except errors.NotFoundError:
                continue
            except errors.ApiError as e:
                log.warning("could not mark pod %s not ready: %s", key, e)
                ok = False
        return ok

    async def _set_pod_not_ready(self, name: str, namespace: str | None) -> None:
        live = await self.client.get(PODS, name, namespace=namespace)
        conditions = [dict(c) for c in (live.get("status") or {}).get("conditions") or []]
        changed = False
        for c in conditions:
            if c.get("type") == "Ready" and c.get("status") != "False":
                c.update(status="False", lastTransitionTime=nodehealth.rfc3339(self.clock()))
                changed = True
        if changed:
            live["status"]["conditions"] = conditions
            await self.client.update_status(PODS, live)

    async def _taint_pass(self, nodes: list[Obj], now: datetime) -> None:
        states = nodehealth.zone_states(nodes)
        all_full = bool(states) and all(s == nodehealth.FULL_DISRUPTION for s in states.values())
        if all_full != self.master_disruption:
            self.master_disruption = all_full
            if all_full:
                log.warning("all nodes are not ready: entering master disruption mode (no evictions)")
            else:
                log.info("some nodes are ready again: leaving master disruption mode")
        for node in nodes:
            mode = nodehealth.no_execute_mode(states.get(nodehealth.zone_of(node), nodehealth.NORMAL),
                                              all_fully_disrupted=all_full, cluster_size=len(nodes))
            if nodehealth.desired_taints(node, mode=mode, now=now) is None:
                continue
            try:
                await self._set_taints(node["metadata"]["name"], mode=mode, now=now)
            except errors.NotFoundError:
                continue
            except errors.ApiError as e:
                log.warning("could not update taints of node %s: %s", node["metadata"]["name"], e)

    async def _set_taints(self, name: str, *, mode: str, now: datetime) -> None:
        async def attempt() -> None:
            live = await self.client.get(NODES, name)
            taints = nodehealth.desired_taints(live, mode=mode, now=now)
            if taints is None:
                return
            live.setdefault("spec", {})["taints"] = taints
            if not taints:
                del live["spec"]["taints"]
            await self.client.update(NODES, live)
            log.info("node %s taints: %s", name, [f"{t['key']}:{t['effect']}" for t in taints])
        await retry_on_conflict(attempt)

    async def monitor(self) -> None:
        while True:
            try:
                await self.monitor_once()
            except Exception:  # noqa: BLE001 - one failed pass must not end the monitor
                log.exception("node monitor pass failed")
            await asyncio.sleep(self.settings.node_monitor_period)

    # ------------------------------------------------------------------ taint eviction
    def _every_node_not_ready(self) -> bool:
        states = nodehealth.zone_states(self.nodes.list())
        return bool(states) and all(s == nodehealth.FULL_DISRUPTION for s in states.values())

    async def reconcile_evictions(self, node_name: str) -> Result | None:
        taints = _no_execute(self.nodes.get(node_name))
        keys = sorted(self.pods_by_node.get(node_name, ()))
        if not taints:
            for key in keys:
                pod = self.pods.get(key)
                if pod is not None:
                    self.first_seen.pop(str(pod["metadata"].get("uid")), None)
            return None
        if self._every_node_not_ready():
            # Belt and braces: the monitor clears NoExecute taints in this state anyway.
            return Result.after(self.settings.node_monitor_period)
        now = self.clock()
        next_at: datetime | None = None
        for key in keys:
            pod = self.pods.get(key)
            if pod is None or (pod.get("metadata") or {}).get("deletionTimestamp"):
                continue
            uid = str(pod["metadata"].get("uid"))
            at = nodehealth.eviction_time(pod, taints, default_toleration_seconds=self.settings.default_toleration_seconds,
                                          first_seen=self.first_seen.setdefault(uid, now))
            if at is None:
                continue
            if at <= now:
                await self._evict(pod)
            elif next_at is None or at < next_at:
                next_at = at
        if next_at is not None:
            return Result.after(max(0.0, (next_at - now).total_seconds()))
        return None

    async def _evict(self, pod: Obj) -> None:
        namespace, name = split_key(object_key(pod))
        uid = pod["metadata"]["uid"]
        log.info("evicting pod %s from node %s (NoExecute taint)", object_key(pod), pod["spec"].get("nodeName"))
        await self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {namespace}/{name}")
        try:
            await retry_on_conflict(lambda: self._add_disruption_condition(name, namespace, uid))
        except errors.NotFoundError:
            return
        except errors.ApiError as e:
            log.warning("could not set DisruptionTarget on pod %s: %s", object_key(pod), e)
        try:
            await self.client.delete(PODS, name, namespace=namespace, preconditions={"uid": uid})
        except (errors.NotFoundError, errors.ConflictError):
            pass  # gone already, or another pod under that name now

    async def _add_disruption_condition(self, name: str, namespace: str | None, uid: str) -> None:
        live = await self.client.get(PODS, name, namespace=namespace)
        if live["metadata"].get("uid") != uid:
            raise errors.NotFoundError(message=f"pod {namespace}/{name} was replaced")
        status = live.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                           "message": "Taint manager: deleting due to NoExecute taint",
                           "lastTransitionTime": nodehealth.rfc3339(self.clock())})
        status["conditions"] = conditions
        await self.client.update_status(PODS, live)

    async def run(self) -> None:
        for inf in (self.nodes, self.leases, self.pods):
            await inf.wait_synced()
        monitor = asyncio.create_task(self.monitor(), name="node-monitor")
        try:
            await self.eviction.run()
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)


async def run(ctx: ControllerContext) -> None:
    ctl = NodeLifecycleController(ctx)
    ctx.informers.start()
    await ctl.run()
