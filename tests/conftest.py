"""Session fixtures: one real etcd, one real apiserver and the namespace controller for the run.

Tests isolate themselves by working in their own namespace (the ``namespace`` fixture), so
they can share the cluster and still run in any order. Only the namespace controller runs beside
the apiserver (so deleting a namespace completes, as in any cluster); tests of the other
controllers, the scheduler and the kubelets start those themselves.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess, ComponentProcess, Etcd
from tests.dockertest import IMAGE
from tests.securecluster import SecureCluster

# Every Docker kubelet a test starts (they inherit this environment) uses the local image as its
# pods' sandbox: the default one would be pulled from a registry, and none is reachable here.
os.environ.setdefault("MINIK8S_SANDBOX_IMAGE", IMAGE)


@pytest.fixture(scope="session")
def etcd() -> Iterator[Etcd]:
    e = Etcd.start()
    yield e
    e.stop()


@pytest.fixture(scope="session")
def apiserver(etcd: Etcd) -> Iterator[ApiServerProcess]:
    s = ApiServerProcess.start(etcd.url)
    namespaces = ComponentProcess.start("controller-manager", "--server", s.url, "--controllers", "namespace",
                                        "--no-leader-elect", log_level="warning")
    yield s
    namespaces.stop()
    s.stop()


@pytest.fixture
def http(apiserver: ApiServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apiserver.url, timeout=30) as c:
        yield c


@pytest.fixture
def namespace(http: httpx.Client) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:10]}"
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    yield name
    http.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="module")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    """Its own etcd and a TLS API server with Node,RBAC authorization (tests/securecluster.py)."""
    c = SecureCluster.start(tmp_path_factory.mktemp("secure"))
    yield c
    c.stop()
