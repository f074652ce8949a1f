"""The DaemonSet controller in process against the real apiserver (no scheduler or kubelet: pods
stay pinned to their node by affinity, and the test makes them ready): pods follow nodes that
join, change labels and leave; OnDelete; revisions, status and history truncation.

The cluster's Nodes are shared with other tests, so each DaemonSet here selects only this test's
nodes by a label of its own."""

from __future__ import annotations

import uuid
from typing import Any

from controller_helpers import eventually, running
from workload_helpers import make_ready

from controllers import daemonset as dsc
from controllers.daemonsetplan import target_node
from machinery.client import ApiClient

DS = ("apps/v1", "daemonsets")
PODS = ("v1", "pods")
NODES = ("v1", "nodes")
REVISIONS = ("apps/v1", "controllerrevisions")


def daemonset(ns: str, mark: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "agent"}},
        "template": {"metadata": {"labels": {"app": "agent"}},
                     "spec": {"nodeSelector": {"ds-test": mark},
                              "containers": [{"name": "c", "image": "img:1"}]}}}
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": ns},
            "spec": base}


async def add_node(client: ApiClient, name: str, mark: str) -> None:
    await client.create(NODES, {"apiVersion": "v1", "kind": "Node",
                                "metadata": {"name": name, "labels": {"ds-test": mark}}})


async def pods_by_node(client: ApiClient, ns: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in (await client.list(PODS, namespace=ns))["items"]:
        if not p["metadata"].get("deletionTimestamp"):
            out.setdefault(target_node(p), []).append(p)
    return out


async def test_pods_follow_nodes(apiserver: Any, namespace: str) -> None:
    ns, mark = namespace, uuid.uuid4().hex[:8]
    n1, n2, n3 = (f"ds-{mark}-{i}" for i in (1, 2, 3))
    async with running(dsc, apiserver.url) as client:
        try:
            await add_node(client, n1, mark)
            await add_node(client, n2, mark)
            await client.create(DS, daemonset(ns, mark), namespace=ns)

            async def on(nodes: list[str]) -> bool:
                found = await pods_by_node(client, ns)
                return sorted(found) == sorted(nodes) and all(len(v) == 1 for v in found.values())
            await eventually(lambda: on([n1, n2]), what="a pod for each node")
            for pods in (await pods_by_node(client, ns)).values():
                await make_ready(client, pods[0])

            async def status_is(**want: int) -> bool:
                s = (await client.get(DS, "agent", namespace=ns)).get("status") or {}
                return all(s.get(k) == v for k, v in want.items())
            await eventually(lambda: status_is(desiredNumberScheduled=2, currentNumberScheduled=2, numberReady=2,
                                               numberAvailable=2, updatedNumberScheduled=2, observedGeneration=1),
                             what="status of 2 ready pods")
            revisions = (await client.list(REVISIONS, namespace=ns))["items"]
            assert len(revisions) == 1 and revisions[0]["revision"] == 1
            pod = (await pods_by_node(client, ns))[n1][0]
            assert pod["metadata"]["labels"]["controller-revision-hash"] == \
                revisions[0]["metadata"]["labels"]["controller-revision-hash"]
            assert revisions[0]["metadata"]["name"] == f"agent-{pod['metadata']['labels']['controller-revision-hash']}"

            # A node joins; a node stops matching the nodeSelector; a node leaves.
            await add_node(client, n3, mark)
            await eventually(lambda: on([n1, n2, n3]), what="a pod for the joining node")
            await client.patch(NODES, n2, {"metadata": {"labels": {"ds-test": "other"}}})
            await eventually(lambda: on([n1, n3]), what="the pod of the node that stopped matching deleted")
            await client.delete(NODES, n3)
            await eventually(lambda: on([n1]), what="the unscheduled pod of the deleted node deleted")
            await eventually(lambda: status_is(desiredNumberScheduled=1), what="1 desired")
        finally:
            for name in (n1, n2, n3):
                try:
                    await client.delete(NODES, name)
                except Exception:  # noqa: BLE001 - already gone
                    pass


async def test_on_delete_and_history_limit(apiserver: Any, namespace: str) -> None:
    ns, mark = namespace, uuid.uuid4().hex[:8]
    node = f"ds-{mark}-1"
    async with running(dsc, apiserver.url) as client:
        try:
            await add_node(client, node, mark)
            await client.create(DS, daemonset(ns, mark, updateStrategy={"type": "OnDelete"}, revisionHistoryLimit=1),
                                namespace=ns)

            async def the_pod() -> dict[str, Any] | None:
                pods = (await pods_by_node(client, ns)).get(node) or []
                return pods[0] if len(pods) == 1 else None
            await eventually(lambda: _truthy(the_pod()), what="the pod")
            first = await the_pod()
            assert first is not None

            async def revisions() -> list[int]:
                return sorted(r["revision"] for r in (await client.list(REVISIONS, namespace=ns))["items"])
            for image, want in (("img:2", [1, 2]), ("img:3", [1, 3])):
                await client.patch(DS, "agent", {"spec": {"template": {"spec": {"containers": [
                    {"name": "c", "image": image}]}}}}, namespace=ns, patch_type="strategic")
                if image == "img:2":
                    await eventually(lambda: _equal(revisions(), want), what="revision 2")
            # revision 1 is live (the pod uses it), 2 goes beyond the limit of 1, 3 is current
            await eventually(lambda: _equal(revisions(), [1, 3]), what="revision 2 truncated")
            current = await the_pod()
            assert current is not None and current["metadata"]["uid"] == first["metadata"]["uid"]  # OnDelete
            s = (await client.get(DS, "agent", namespace=ns))["status"]
            assert s.get("updatedNumberScheduled", 0) == 0 and s["observedGeneration"] == 3
            await client.delete(PODS, first["metadata"]["name"], namespace=ns)

            async def replaced() -> bool:
                pod = await the_pod()
                return pod is not None and pod["spec"]["containers"][0]["image"] == "img:3"
            await eventually(replaced, what="the deleted pod replaced from the new template")
            pod = await the_pod()
            assert pod is not None and pod["metadata"]["labels"]["pod-template-generation"] == "3"
            assert await revisions() == [1, 3]  # one old revision is within revisionHistoryLimit 1
        finally:
            await client.delete(NODES, node)


async def _truthy(value: Any) -> bool:
    return bool(await value)


async def _equal(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
