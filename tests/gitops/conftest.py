"""A GitOps cluster for the gitops tests: real etcd, apiserver, controller-manager, scheduler, a
simulated node (so Deployments become available) and the real ``minik8s gitops`` process.

Tests share it (module scope of this package's tests: one cluster per test module) and isolate
themselves by namespace; each makes its own Git repository (``tests/gitops/gitrepo.py``) and its own
GitSync pointing at it by ``file://`` URL.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from machinery.kubeconfig import write_kubeconfig
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.gitops.gitrepo import GitRepo
from tests.waiting import wait_for

LEASE = ("--no-leader-elect", "--healthz-port", "0")


class GitOpsCluster:
    def __init__(self, tmp: Path) -> None:
        self.etcd = Etcd.start()
        self.api = ApiServerProcess.start(self.etcd.url)
        self.url = self.api.url
        self.webhook_port = free_port()
        self.procs = [
            ComponentProcess.start("controller-manager", "--server", self.url, *LEASE, log_level="warning"),
            ComponentProcess.start("scheduler", "--server", self.url, *LEASE, log_level="warning"),
            ComponentProcess.start("kubelet", "--simulated", "--server", self.url, "--node-name", "gitops-node",
                                   log_level="warning"),
        ]
        self.gitops = self.start_gitops(tmp)
        self.kubeconfig = tmp / "kubeconfig"
        write_kubeconfig(self.kubeconfig, server=self.url)
        self.http = httpx.Client(base_url=self.url, timeout=30)
        wait_for(lambda: self.http.get("/apis/gitops.minik8s.io/v1/gitsyncs").status_code == 200, 30,
                 "the GitSync CRD installed by minik8s gitops", self.diagnostics)

    def start_gitops(self, tmp: Path) -> ComponentProcess:
        p = ComponentProcess.start("gitops", "--server", self.url, "--cache-dir", str(tmp / "mirrors"),
                                   "--webhook-bind-address", "127.0.0.1", "--webhook-port", str(self.webhook_port),
                                   log_level="debug")
        self.procs.append(p)
        return p

    def diagnostics(self) -> str:
        return f"--- gitops (exit {self.gitops.proc.poll()}):\n{self.gitops.logs()[-6000:]}"

    def stop(self) -> None:
        self.http.close()
        for p in reversed(self.procs):
            p.stop()
        self.api.stop()
        self.etcd.stop()

    # ------------------------------------------------------------------ helpers for tests
    def gitsync(self, namespace: str, name: str, repo: GitRepo, **spec: Any) -> dict[str, Any]:
        body = {"apiVersion": "gitops.minik8s.io/v1", "kind": "GitSync",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"url": repo.url, "ref": {"branch": "main"}, **spec}}
        r = self.http.post(f"/apis/gitops.minik8s.io/v1/namespaces/{namespace}/gitsyncs", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def get_sync(self, namespace: str, name: str) -> dict[str, Any]:
        r = self.http.get(f"/apis/gitops.minik8s.io/v1/namespaces/{namespace}/gitsyncs/{name}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    def condition(self, namespace: str, name: str, type_: str) -> dict[str, Any]:
        for c in (self.get_sync(namespace, name).get("status") or {}).get("conditions") or []:
            if c.get("type") == type_:
                return dict(c)
        return {}

    def wait_applied(self, namespace: str, name: str, sha: str, timeout: float = 30.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.get_sync(namespace, name).get("status") or {}
            return status if str(status.get("lastAppliedRevision", "")).endswith(sha) else None
        return dict(wait_for(check, timeout, f"revision {sha[:7]} applied by {namespace}/{name}", self.diagnostics))

    def wait_reason(self, namespace: str, name: str, type_: str, reason: str, timeout: float = 30.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            c = self.condition(namespace, name, type_)
            return c if c.get("reason") == reason else None
        return dict(wait_for(check, timeout, f"{type_} reason {reason} on {namespace}/{name}", self.diagnostics))

    def secret(self, namespace: str, name: str, data: dict[str, bytes]) -> None:
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                "data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
        r = self.http.post(f"/api/v1/namespaces/{namespace}/secrets", json=body)
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitOpsCluster]:
    c = GitOpsCluster(tmp_path_factory.mktemp("gitops-cluster"))
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def ns(cluster: GitOpsCluster) -> Iterator[str]:
    name = f"g-{uuid.uuid4().hex[:8]}"
    r = cluster.http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    cluster.http.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo.create(tmp_path)
