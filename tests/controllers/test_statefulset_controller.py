"""The StatefulSet controller in process against the real apiserver (no kubelet: the test plays it by
writing pods' status): ordered creation with claims first, revisions and status, retention-policy
owner references on scale-down, Parallel creation, adoption of an orphan member."""

from __future__ import annotations

import asyncio
from typing import Any

from controller_helpers import eventually, running
from workload_helpers import make_ready

from controllers import statefulset as stsc
from machinery import errors
from machinery.client import ApiClient

STS = ("apps/v1", "statefulsets")
PODS = ("v1", "pods")
PVCS = ("v1", "persistentvolumeclaims")
REVISIONS = ("apps/v1", "controllerrevisions")


def web(ns: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "serviceName": "nginx", "replicas": 3, "selector": {"matchLabels": {"app": "nginx"}},
        "template": {"metadata": {"labels": {"app": "nginx"}},
                     "spec": {"containers": [{"name": "nginx", "image": "img:1",
                                              "volumeMounts": [{"name": "www", "mountPath": "/www"}]}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "www"}, "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
    }
    base.update(spec)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web", "namespace": ns},
            "spec": base}


async def names(client: ApiClient, resource: tuple[str, str], ns: str) -> list[str]:
    return sorted(x["metadata"]["name"] for x in (await client.list(resource, namespace=ns))["items"])


async def get(client: ApiClient, resource: tuple[str, str], ns: str, name: str) -> dict[str, Any] | None:
    try:
        return await client.get(resource, name, namespace=ns)
    except errors.NotFoundError:
        return None


async def ready(client: ApiClient, ns: str, name: str) -> None:
    pod = await get(client, PODS, ns, name)
    assert pod is not None
    await make_ready(client, pod)


async def test_ordered_creation_claims_revisions_and_status(apiserver: Any, namespace: str) -> None:
    ns = namespace
    async with running(stsc, apiserver.url) as client:
        await client.create(STS, web(ns), namespace=ns)
        await eventually(lambda: _has(client, PODS, ns, ["web-0"]), what="web-0")
        assert await names(client, PVCS, ns) == ["www-web-0"]  # the claim before the pod
        pod = await get(client, PODS, ns, "web-0")
        assert pod is not None and pod["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "www-web-0"
        await _quiet(client, ns, ["web-0"])  # nothing more while web-0 is not Ready
        await ready(client, ns, "web-0")
        await eventually(lambda: _has(client, PODS, ns, ["web-0", "web-1"]), what="web-1")
        await _quiet(client, ns, ["web-0", "web-1"])
        await ready(client, ns, "web-1")
        await eventually(lambda: _has(client, PODS, ns, ["web-0", "web-1", "web-2"]), what="web-2")
        await ready(client, ns, "web-2")
        assert await names(client, PVCS, ns) == ["www-web-0", "www-web-1", "www-web-2"]

        async def settled() -> bool:
            s = (await client.get(STS, "web", namespace=ns)).get("status") or {}
            return s.get("readyReplicas") == 3 and s.get("updatedReplicas") == 3
        await eventually(settled, what="3 ready, updated replicas")
        sts = await client.get(STS, "web", namespace=ns)
        revisions = (await client.list(REVISIONS, namespace=ns))["items"]
        assert [r["revision"] for r in revisions] == [1]
        status = sts["status"]
        assert status["currentRevision"] == status["updateRevision"] == revisions[0]["metadata"]["name"]
        assert status["observedGeneration"] == 1 and status["collisionCount"] == 0
        assert status["availableReplicas"] == 3 and status["currentReplicas"] == 3
        assert revisions[0]["metadata"]["ownerReferences"][0]["uid"] == sts["metadata"]["uid"]
        events = (await client.list(("v1", "events"), namespace=ns))["items"]
        messages = {e["message"] for e in events}
        assert "create Pod web-0 in StatefulSet web successful" in messages
        assert "create Claim www-web-0 Pod web-0 in StatefulSet web success" in messages


async def test_scale_down_hands_claims_to_pods_under_when_scaled_delete(apiserver: Any, namespace: str) -> None:
    ns = namespace
    async with running(stsc, apiserver.url) as client:
        body = web(ns, replicas=2, podManagementPolicy="Parallel",
                   persistentVolumeClaimRetentionPolicy={"whenDeleted": "Delete", "whenScaled": "Delete"})
        created = await client.create(STS, body, namespace=ns)
        await eventually(lambda: _has(client, PODS, ns, ["web-0", "web-1"]), what="both pods at once (Parallel)")
        for name in ("web-0", "web-1"):
            await ready(client, ns, name)
        claim = await get(client, PVCS, ns, "www-web-1")
        assert claim is not None
        assert [(r["kind"], r["uid"]) for r in claim["metadata"]["ownerReferences"]] == [
            ("StatefulSet", created["metadata"]["uid"])]
        pod1 = await get(client, PODS, ns, "web-1")
        assert pod1 is not None
        await client.patch(STS, "web", {"spec": {"replicas": 1}}, namespace=ns)
        await eventually(lambda: _has(client, PODS, ns, ["web-0"]), what="web-1 deleted")

        async def handed_over() -> bool:
            c = await get(client, PVCS, ns, "www-web-1")
            refs = (c or {}).get("metadata", {}).get("ownerReferences") or []
            return [(r["kind"], r["uid"]) for r in refs] == [("Pod", pod1["metadata"]["uid"])]
        await eventually(handed_over, what="www-web-1 owned by the pod web-1 (deleted with it by the GC)")
        c0 = await get(client, PVCS, ns, "www-web-0")
        assert c0 is not None and c0["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


async def test_adopts_an_orphan_member_and_fixes_its_identity(apiserver: Any, namespace: str) -> None:
    ns = namespace
    async with running(stsc, apiserver.url) as client:
        orphan = {"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": "web-0", "namespace": ns, "labels": {"app": "nginx"}},
                  "spec": {"containers": [{"name": "nginx", "image": "img:1"}]}}
        await make_ready(client, await client.create(PODS, orphan, namespace=ns))
        body = web(ns, replicas=1, volumeClaimTemplates=[])
        body["spec"]["template"]["spec"]["containers"][0].pop("volumeMounts")
        created = await client.create(STS, body, namespace=ns)

        async def adopted() -> bool:
            pod = await get(client, PODS, ns, "web-0") or {}
            refs = pod.get("metadata", {}).get("ownerReferences") or []
            labels = pod.get("metadata", {}).get("labels") or {}
            return [r["uid"] for r in refs] == [created["metadata"]["uid"]] and \
                labels.get("statefulset.kubernetes.io/pod-name") == "web-0"
        await eventually(adopted, what="web-0 adopted with its identity label")


async def _has(client: ApiClient, resource: tuple[str, str], ns: str, want: list[str]) -> bool:
    return await names(client, resource, ns) == want


async def _quiet(client: ApiClient, ns: str, want: list[str]) -> None:
    await asyncio.sleep(0.5)
    assert await names(client, PODS, ns) == want


async def test_adopts_orphan_revisions_of_a_recreated_set(apiserver: Any, namespace: str) -> None:
    ns = namespace
    async with running(stsc, apiserver.url) as client:
        body = web(ns, replicas=0, volumeClaimTemplates=[])
        first = await client.create(STS, body, namespace=ns)

        async def revision_owned_by(uid: str) -> bool:
            items = (await client.list(REVISIONS, namespace=ns))["items"]
            return len(items) == 1 and [r["uid"] for r in items[0]["metadata"].get("ownerReferences") or []] == [uid]
        await eventually(lambda: revision_owned_by(first["metadata"]["uid"]), what="the first set's revision")
        await client.delete(STS, "web", namespace=ns)  # no garbage collector here: the test orphans by hand
        await eventually(lambda: _gone(client, ns), what="the set gone")
        rev = (await client.list(REVISIONS, namespace=ns))["items"][0]
        await client.patch(REVISIONS, rev["metadata"]["name"], {"metadata": {"ownerReferences": None}}, namespace=ns)
        second = await client.create(STS, body, namespace=ns)
        await eventually(lambda: revision_owned_by(second["metadata"]["uid"]), what="the orphan revision adopted")
        status = (await client.get(STS, "web", namespace=ns)).get("status") or {}
        assert status.get("updateRevision") in (None, rev["metadata"]["name"])


async def _gone(client: ApiClient, ns: str) -> bool:
    return await get(client, STS, ns, "web") is None
