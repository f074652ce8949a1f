"""Node lifecycle: pure health/taint/eviction decisions, then the controller in process with short durations."""

from __future__ import annotations

from controller_helpers import eventually, running
import asyncio
import time
import uuid
from contextlib import asynccontextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Awaitable, Callable

import pytest

from controllers import nodehealth, nodelifecycle
from controllers.manager import ControllerContext, ControllerManagerSettings
from machinery import errors
from machinery.client import ApiClient
from machinery.sharedinformers import InformerFactory

Obj = dict[str, Any]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
UNREACHABLE = nodehealth.TAINT_UNREACHABLE


def node(ready: str | None = "True", *, taints: list[Obj] | None = None, zone: str = "z") -> Obj:
    n: Obj = {"metadata": {"name": "n", "creationTimestamp": "2025-12-31T23:00:00Z",
                           "labels": {nodehealth.ZONE_LABEL: zone}},
              "spec": {"taints": taints} if taints else {}, "status": {"conditions": []}}
    if ready is not None:
        n["status"]["conditions"] = [
            {"type": "Ready", "status": ready, "lastHeartbeatTime": "2026-01-01T00:00:00Z", "reason": "KubeletReady"},
            {"type": "MemoryPressure", "status": "False"}]
    return n


def test_observe_uses_the_controllers_clock() -> None:
    lease = {"spec": {"renewTime": "2020-01-01T00:00:00.000000Z"}}  # an old timestamp is still a sign of life
    h = nodehealth.observe(None, node(), lease, T0)
    assert h.probe_time == T0
    h2 = nodehealth.observe(h, node(), lease, T0 + timedelta(seconds=30))
    assert h2 is h and nodehealth.is_stale(h2, T0 + timedelta(seconds=41), 40)
    h3 = nodehealth.observe(h2, node(), {"spec": {"renewTime": "2020-01-01T00:00:10.000000Z"}}, T0 + timedelta(seconds=35))
    assert h3.probe_time == T0 + timedelta(seconds=35) and not nodehealth.is_stale(h3, T0 + timedelta(seconds=41), 40)
    never = nodehealth.observe(None, node(None), None, T0)  # never posted: grace counts from creation
    assert never.probe_time == T0 - timedelta(hours=1)


def test_unknown_conditions() -> None:
    conds = nodehealth.unknown_conditions(node(), T0)
    assert conds is not None
    by_type = {c["type"]: c for c in conds}
    assert by_type["Ready"]["status"] == "Unknown" and by_type["Ready"]["reason"] == "NodeStatusUnknown"
    assert by_type["Ready"]["message"] == "Kubelet stopped posting node status."
    assert by_type["Ready"]["lastHeartbeatTime"] == "2026-01-01T00:00:00Z"  # kept
    assert by_type["DiskPressure"]["reason"] == "NodeStatusNeverUpdated"
    done = node()
    done["status"]["conditions"] = conds
    assert nodehealth.unknown_conditions(done, T0) is None


@pytest.mark.parametrize("ready,not_ready,state", [
    (3, 0, "Normal"), (2, 1, "Normal"), (1, 2, "Normal"), (2, 3, "PartialDisruption"), (1, 3, "PartialDisruption"),
    (0, 1, "FullDisruption"), (0, 0, "Normal"), (10, 3, "Normal"),
])
def test_zone_state(ready: int, not_ready: int, state: str) -> None:
    assert nodehealth.zone_state(ready, not_ready) == state


def test_desired_taints() -> None:
    ne = nodehealth.desired_taints(node("Unknown"), mode="taint", now=T0)
    assert ne == [{"key": UNREACHABLE, "effect": "NoSchedule"},
                  {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]
    tainted = node("Unknown", taints=ne)
    assert nodehealth.desired_taints(tainted, mode="taint", now=T0 + timedelta(seconds=5)) is None  # timeAdded kept
    # Kubelet reports Ready=False: swap to not-ready; Ready=True: only the user's taint stays.
    user = {"key": "dedicated", "value": "x", "effect": "NoSchedule"}
    back = node("False", taints=[user, *ne])
    assert [(t["key"], t["effect"]) for t in nodehealth.desired_taints(back, mode="taint", now=T0) or []] == [
        ("dedicated", "NoSchedule"), (nodehealth.TAINT_NOT_READY, "NoSchedule"), (nodehealth.TAINT_NOT_READY, "NoExecute")]
    assert nodehealth.desired_taints(node("True", taints=[user, *ne]), mode="taint", now=T0) == [user]
    # Master disruption: NoExecute removed, NoSchedule kept. Hold: nothing new added.
    assert nodehealth.desired_taints(tainted, mode="clear", now=T0) == [{"key": UNREACHABLE, "effect": "NoSchedule"}]
    assert nodehealth.desired_taints(node("Unknown"), mode="hold", now=T0) == [{"key": UNREACHABLE, "effect": "NoSchedule"}]


def pod(tolerations: list[Obj] | None = None) -> Obj:
    return {"metadata": {"name": "p"}, "spec": {"tolerations": tolerations or []}}


TAINT = {"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}


@pytest.mark.parametrize("tolerations,expected", [
    (None, 300.0),                                                                   # the default toleration
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5}], 5.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}], None),     # forever
    ([{"operator": "Exists"}], None),                                                # tolerates everything
    ([{"key": "other", "operator": "Exists"}], 300.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "tolerationSeconds": -3}], 0.0),
])
def test_eviction_time(tolerations: list[Obj] | None, expected: float | None) -> None:
    at = nodehealth.eviction_time(pod(tolerations), [TAINT], default_toleration_seconds=300, first_seen=T0 + timedelta(seconds=9))
    assert (None if at is None else (at - T0).total_seconds()) == expected


def test_untolerated_no_execute_taint_evicts_at_once() -> None:
    custom = {"key": "maintenance", "effect": "NoExecute"}
    seen = T0 + timedelta(seconds=9)
    assert nodehealth.eviction_time(pod(), [TAINT, custom], default_toleration_seconds=300, first_seen=seen) == seen
    assert nodehealth.eviction_time(pod(), [{"key": "x", "effect": "NoSchedule"}], default_toleration_seconds=300,
                                    first_seen=seen) is None


# ---------------------------------------------------------------------------------- in process
SETTINGS = dict(node_monitor_grace_period=1.5, node_monitor_period=0.2, default_toleration_seconds=1.0)


def controller(url: str) -> Any:
    return running(nodelifecycle, url, workers=2, **SETTINGS)


def micro(moment: datetime | None = None) -> str:
    return (moment or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Kubelet:
    """What a kubelet does for the controller: a node with Ready=True and a renewed Lease."""

    def __init__(self, client: ApiClient, name: str, zone: str) -> None:
        self.client, self.name, self.zone = client, name, zone
        self.renewing = False
        self._task: asyncio.Task[None] | None = None

    async def register(self) -> None:
        await self.client.create("nodes", {"apiVersion": "v1", "kind": "Node",
                                           "metadata": {"name": self.name, "labels": {nodehealth.ZONE_LABEL: self.zone}}})
        await self.post_ready()
        await self.client.create(nodelifecycle.LEASES, {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": micro()}})

    async def post_ready(self) -> None:
        live = await self.client.get("nodes", self.name)
        now = micro()
        live["status"] = {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
             "lastHeartbeatTime": now, "lastTransitionTime": now},
            {"type": "MemoryPressure", "status": "False", "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        await self.client.update_status("nodes", live)

    def start(self) -> None:
        self.renewing = True
        self._task = asyncio.create_task(self._renew())

    async def _renew(self) -> None:
        while self.renewing:
            await self.client.patch(nodelifecycle.LEASES, self.name, {"spec": {"renewTime": micro()}},
                                    namespace="kube-node-lease")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        self.renewing = False
        if self._task is not None:
            await self._task

    async def remove(self) -> None:
        await self.stop()
        for res, ns in ((nodelifecycle.LEASES, "kube-node-lease"), ("nodes", None)):
            try:
                await self.client.delete(res, self.name, namespace=ns)
            except errors.NotFoundError:
                pass


async def run_pod(client: ApiClient, ns: str, name: str, node_name: str, tolerations: list[Obj] | None = None) -> None:
    spec: Obj = {"nodeName": node_name, "containers": [{"name": "c", "image": "nginx"}]}
    if tolerations:
        spec["tolerations"] = tolerations
    await client.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}, "spec": spec})
    live = await client.get("pods", name, namespace=ns)
    live["status"] = {"phase": "Running", "podIP": "10.244.9.9",
                      "conditions": [{"type": "Ready", "status": "True"}]}
    await client.update_status("pods", live)


def cond(n: Obj, type_: str) -> Obj:
    return next(c for c in n["status"]["conditions"] if c["type"] == type_)


def no_execute(n: Obj) -> list[str]:
    return [t["key"] for t in (n.get("spec") or {}).get("taints") or [] if t["effect"] == "NoExecute"]


async def test_unreachable_node_is_tainted_and_emptied_then_comes_back(apiserver: Any, namespace: str) -> None:
    zone = f"zone-{uuid.uuid4().hex[:6]}"
    async with ApiClient(apiserver.url) as setup:
        good, bad = Kubelet(setup, f"good-{zone}", zone), Kubelet(setup, f"bad-{zone}", zone)
        try:
            for k in (good, bad):
                await k.register()
                k.start()
            # The apiserver's DefaultTolerationSeconds admission gives every pod 300 s; this one asks for 1 s.
            await run_pod(setup, namespace, "victim", bad.name, tolerations=[
                {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 1}])
            await run_pod(setup, namespace, "stays", bad.name,
                          tolerations=[{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}])
            await run_pod(setup, namespace, "safe", good.name)
            async with controller(apiserver.url) as client:
                await asyncio.sleep(0.5)
                await bad.stop()  # the kubelet goes quiet
                stopped = time.monotonic()

                async def unknown() -> bool:
                    n = await client.get("nodes", bad.name)
                    return cond(n, "Ready")["status"] == "Unknown" and UNREACHABLE in no_execute(n)
                await eventually(unknown, what="Ready=Unknown + unreachable taint")
                became_unknown = time.monotonic() - stopped
                n = await client.get("nodes", bad.name)
                ready = cond(n, "Ready")
                assert ready["reason"] == "NodeStatusUnknown" and ready["message"] == "Kubelet stopped posting node status."
                assert cond(n, "MemoryPressure")["status"] == "Unknown"
                taint = next(t for t in n["spec"]["taints"] if t["effect"] == "NoExecute")
                assert taint["timeAdded"]
                assert (await client.get("pods", "victim", namespace=namespace))["status"]["conditions"][0]["status"] == "False"

                async def evicted() -> bool:
                    p = await client.get("pods", "victim", namespace=namespace)
                    return bool(p["metadata"].get("deletionTimestamp"))
                await eventually(evicted, what="pod evicted")
                evicted_after = time.monotonic() - stopped
                victim = await client.get("pods", "victim", namespace=namespace)
                assert any(c["type"] == "DisruptionTarget" for c in victim["status"]["conditions"])
                assert not (await client.get("pods", "stays", namespace=namespace))["metadata"].get("deletionTimestamp")
                assert not (await client.get("pods", "safe", namespace=namespace))["metadata"].get("deletionTimestamp")
                assert cond(await client.get("nodes", good.name), "Ready")["status"] == "True"
                events = (await client.list("events", namespace=namespace))["items"]
                assert any(e["reason"] == "TaintManagerEviction" and e["message"] == f"Marking for deletion Pod {namespace}/victim"
                           for e in events)
                node_events = (await client.list("events", namespace="default"))["items"]
                assert any(e["reason"] == "NodeNotReady" and e["involvedObject"]["name"] == bad.name for e in node_events)
                # Grace 1.5 s (+ one 0.2 s period); toleration 1 s after the taint (timeAdded has 1 s resolution).
                assert 1.4 <= became_unknown <= 3.0, became_unknown
                assert became_unknown + 0.0 <= evicted_after <= became_unknown + 2.0, (became_unknown, evicted_after)
                print(f"\nnode Unknown after {became_unknown:.2f}s, pod evicted after {evicted_after:.2f}s")

                # The kubelet comes back: lease renewed and Ready=True posted -> taints go.
                bad.start()
                await bad.post_ready()

                async def healed() -> bool:
                    n = await client.get("nodes", bad.name)
                    return not (n.get("spec") or {}).get("taints") and cond(n, "Ready")["status"] == "True"
                await eventually(healed, what="taints removed")
                await asyncio.sleep(2.0)  # the renewed lease keeps it healthy past the grace period
                assert await healed()
        finally:
            for k in (good, bad):
                await k.remove()


async def test_nothing_is_evicted_when_every_node_is_unreachable(apiserver: Any, namespace: str) -> None:
    zone = f"zone-{uuid.uuid4().hex[:6]}"
    async with ApiClient(apiserver.url) as setup:
        kubelets = [Kubelet(setup, f"all-{i}-{zone}", zone) for i in range(2)]
        try:
            for k in kubelets:
                await k.register()
                await run_pod(setup, namespace, f"p-{k.name}", k.name)
            # Nodes of other tests (left over, nobody renews them) turn Unknown as well; nothing
            # is renewed anywhere, so the whole cluster is disrupted.
            async with controller(apiserver.url) as client:
                async def all_unknown() -> bool:
                    nodes = (await client.list("nodes"))["items"]
                    return all(cond(n, "Ready")["status"] != "True" for n in nodes if n["status"].get("conditions"))
                await eventually(all_unknown, what="every node Unknown")

                async def marked() -> bool:
                    for k in kubelets:
                        n = await client.get("nodes", k.name)
                        if cond(n, "Ready")["status"] != "Unknown" or not (n.get("spec") or {}).get("taints"):
                            return False
                        assert [(t["key"], t["effect"]) for t in n["spec"]["taints"]] == [(UNREACHABLE, "NoSchedule")]
                    return True
                await eventually(marked, what="nodes Unknown with the NoSchedule taint")
                await asyncio.sleep(2.5)  # well past the 1 s toleration
                for k in kubelets:
                    p = await client.get("pods", f"p-{k.name}", namespace=namespace)
                    assert not p["metadata"].get("deletionTimestamp")
                    assert no_execute(await client.get("nodes", k.name)) == []
        finally:
            for k in kubelets:
                await k.remove()
