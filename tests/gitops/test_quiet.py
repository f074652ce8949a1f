"""A reconcile that changes nothing writes nothing: the reconciler in this process, against a real
etcd and apiserver, with a client that records every request it sends.

The reconciler runs in process (not as ``minik8s gitops``) so that every request is seen; its
workers are not started: the test calls ``reconcile`` itself, so it knows exactly which requests
each reconcile sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest

from gitops.server import GitOpsSettings, build, ensure_crd
from machinery.client import ApiClient
from machinery.sharedinformers import InformerFactory
from tests.cluster import ApiServerProcess, Etcd
from tests.gitops.gitrepo import GitRepo

WRITES = ("POST", "PUT", "PATCH", "DELETE")


class CountingClient(ApiClient):
    def __init__(self, server: str) -> None:
        super().__init__(server)
        self.sent: list[tuple[str, str]] = []

        self.dry_runs: list[tuple[str, str]] = []  # dryRun=All: the server stores nothing

    async def _send(self, method: str, path: str, **kw: Any) -> Any:  # type: ignore[override]
        dry = (kw.get("params") or {}).get("dryRun") == "All"
        (self.dry_runs if dry else self.sent).append((method, path))
        return await super()._send(method, path, **kw)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.sent if m in WRITES]


@pytest.fixture(scope="module")
def api() -> Iterator[ApiServerProcess]:
    etcd = Etcd.start()
    server = ApiServerProcess.start(etcd.url)
    yield server
    server.stop()
    etcd.stop()


@pytest.fixture
async def reconciler(api: ApiServerProcess, tmp_path: Path) -> AsyncIterator[tuple[Any, CountingClient, InformerFactory]]:
    client = CountingClient(api.url)
    await ensure_crd(client)
    rec, factory = build(GitOpsSettings(server=api.url, cache_dir=str(tmp_path / "mirrors")), client)
    factory.start()
    await rec.syncs.wait_synced()
    yield rec, client, factory
    await factory.stop()
    await client.close()


def _objects(n: int) -> str:
    docs = []
    for i in range(n):
        if i % 3 == 0:
            docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  index: \"{i}\"\n"
                        "  empty: \"\"\n")
        elif i % 3 == 1:
            # Defaulted and normalized by the server (protocol, targetPort, clusterIP, ...): still no drift.
            docs.append(f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\nspec:\n  selector:\n"
                        f"    app: a{i}\n  ports:\n  - port: 80\n")
        else:
            docs.append(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret-{i}\n  creationTimestamp: null\n"
                        f"stringData:\n  password: p{i}\n")
    return "---\n".join(docs)


async def settle(rec: Any, key: str, sha: str) -> dict[str, Any]:
    """Reconcile until the status says the revision is applied and ready (the caches have caught up)."""
    for _ in range(100):
        if rec.syncs.get(key) is not None:
            await rec.reconcile(key)
        await asyncio.sleep(0.1)
        status = (rec.syncs.get(key) or {}).get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        if str(status.get("lastAppliedRevision", "")).endswith(sha) and conditions.get("Ready") == "True":
            return dict(status)
    raise AssertionError(f"not applied: {(rec.syncs.get(key) or {}).get('status')}")


async def test_ten_reconciles_of_an_unchanged_revision_with_100_objects_send_no_write(
        api: ApiServerProcess, reconciler: tuple[Any, CountingClient, InformerFactory], tmp_path: Path) -> None:
    rec, client, _ = reconciler
    ns = "quiet"
    with httpx.Client(base_url=api.url) as http:
        http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        repo = GitRepo.create(tmp_path)
        repo.write("objects.yaml", _objects(100))
        sha = repo.commit()
        r = http.post(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs", json={
            "apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync", "metadata": {"name": "quiet", "namespace": ns},
            "spec": {"url": repo.url, "interval": "1h", "targetNamespace": ns}})
        assert r.status_code == 201, r.text
    key = f"{ns}/quiet"
    status = await settle(rec, key, sha)
    assert len(status["inventory"]) == 100
    applies = [w for w in client.writes() if w[0] == "PATCH" and "/gitsyncs/" not in w[1]]
    assert len(applies) >= 100  # 100 applies went out for the first revision, after 100 dry runs
    assert len([d for d in client.dry_runs if "/gitsyncs/" not in d[1]]) >= 100

    client.sent.clear()
    client.dry_runs.clear()
    for _ in range(10):
        rec.memory[key].fetch_now = True  # each of the ten fetches Git too, as a poll would
        await rec.reconcile(key)
    assert client.writes() == [], client.writes()
    # The fetches happened (git is not an API request) and nothing was read from the API either:
    # the comparison with Git runs on the informers' caches.
    assert client.sent == [], client.sent
    assert client.dry_runs == [], client.dry_runs  # nor a dry run: the next sync changes nothing

    # The same reconciles do write as soon as something differs: a managed object edited by hand.
    async with ApiClient(api.url) as other:
        await other.patch(("v1", "configmaps"), "cm-0", {"data": {"index": "edited"}}, namespace=ns,
                          field_manager="someone-else")
    for _ in range(50):
        cm = rec.watched[("v1", "configmaps")].get(f"{ns}/cm-0")
        if cm and cm["data"]["index"] == "edited":
            break
        await asyncio.sleep(0.05)
    await rec.reconcile(key)
    assert [m for m, p in client.writes() if p.endswith("/configmaps/cm-0")] == ["PATCH"]


async def _sync_and_settle(rec: Any, api: ApiServerProcess, tmp_path: Path, ns: str, **spec: Any) -> str:
    with httpx.Client(base_url=api.url) as http:
        http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        repo = GitRepo.create(tmp_path, ns)
        repo.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  k: git\n")
        sha = repo.commit()
        r = http.post(f"/apis/gitops.minik8s.io/v1/namespaces/{ns}/gitsyncs", json={
            "apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync", "metadata": {"name": "s", "namespace": ns},
            "spec": {"url": repo.url, "interval": "1h", "targetNamespace": ns, **spec}})
        assert r.status_code == 201, r.text
    key = f"{ns}/s"
    await settle(rec, key, sha)
    return key


async def _edit(api: ApiServerProcess, rec: Any, ns: str, value: str) -> None:
    async with ApiClient(api.url) as other:
        await other.patch(("v1", "configmaps"), "cm", {"data": {"k": value}}, namespace=ns, field_manager="hand")
    for _ in range(100):
        cm = rec.watched[("v1", "configmaps")].get(f"{ns}/cm")
        if cm and cm["data"]["k"] == value:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the edit never reached the informer")


async def test_repeated_fights_back_off(api: ApiServerProcess, reconciler: tuple[Any, CountingClient, InformerFactory],
                                        tmp_path: Path) -> None:
    rec, client, _ = reconciler
    key = await _sync_and_settle(rec, api, tmp_path, "fight")
    corrections = []
    for i in range(3):
        await _edit(api, rec, "fight", f"hand-{i}")
        client.sent.clear()
        result = await rec.reconcile(key)
        corrections.append(sum(1 for m, p in client.writes() if p.endswith("/configmaps/cm")))
        if i > 0:
            # The object was put back a moment ago: the next correction waits (1 s, 2 s, ... up to
            # 5 minutes) instead of fighting at the speed of the other writer.
            assert result is not None and result.requeue_after is not None and 0 < result.requeue_after <= 1.0
    assert corrections == [1, 0, 0]
    await asyncio.sleep(1.05)
    client.sent.clear()
    await rec.reconcile(key)
    assert sum(1 for m, p in client.writes() if p.endswith("/configmaps/cm")) == 1
    assert rec.memory[key].fights[next(k for k in rec.memory[key].fights)][0] == 2


async def test_self_heal_off_only_reports_drift(api: ApiServerProcess,
                                                reconciler: tuple[Any, CountingClient, InformerFactory],
                                                tmp_path: Path) -> None:
    rec, client, _ = reconciler
    key = await _sync_and_settle(rec, api, tmp_path, "report", selfHeal=False)
    await _edit(api, rec, "report", "by hand")
    client.sent.clear()
    await rec.reconcile(key)
    assert not [w for w in client.writes() if "/configmaps/" in w[1]]
    async with ApiClient(api.url) as other:
        sync = await other.get(("gitops.minik8s.io/v1", "gitsyncs"), "s", namespace="report")
        assert sync["status"]["drift"] == ["ConfigMap report/cm"]
        events = (await other.list(("v1", "events"), namespace="report"))["items"]
        assert [e["reason"] for e in events if e["reason"] == "DriftDetected"] == ["DriftDetected"]
        cm = await other.get(("v1", "configmaps"), "cm", namespace="report")
        assert cm["data"]["k"] == "by hand"


async def test_an_older_gitsync_crd_is_brought_up_to_date(api: ApiServerProcess) -> None:
    crds = ("apiextensions.k8s.io/v1", "customresourcedefinitions")
    async with ApiClient(api.url) as client:
        await ensure_crd(client)
        crd = await client.get(crds, "gitsyncs.gitops.minik8s.io")
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        del status["lastHandledRequestedAt"]  # as an earlier minik8s installed it
        await client.update(crds, crd)
        await ensure_crd(client)
        crd = await client.get(crds, "gitsyncs.gitops.minik8s.io")
        status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        assert "lastHandledRequestedAt" in status
        rv = crd["metadata"]["resourceVersion"]
        await ensure_crd(client)  # current: nothing written
        assert (await client.get(crds, "gitsyncs.gitops.minik8s.io"))["metadata"]["resourceVersion"] == rv
