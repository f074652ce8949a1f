"""Session fixtures: one real etcd, one real apiserver and the namespace controller for the run.

Tests isolate themselves by working in their own namespace (the ``namespace`` fixture), so
they can share the cluster and still run in any order. ``scripts/test`` runs the suite on
pytest-xdist workers (``--dist loadgroup``), each with its own session cluster: ``unit`` below says
what one worker runs whole (the scheduler of ``pytest_xdist_make_scheduler`` hands out those units)
and ``pytest_collection_modifyitems`` which start first. Only the namespace controller runs beside
the apiserver (so deleting a namespace completes, as in any cluster); tests of the other
controllers, the scheduler and the kubelets start those themselves.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess, ComponentProcess, Etcd
from tests.dockertest import IMAGE
from tests.securecluster import SecureCluster

# Every Docker kubelet a test starts (they inherit this environment) uses the local image as its
# pods' sandbox: the default one would be pulled from a registry, and none is reachable here.
os.environ.setdefault("MINIK8S_SANDBOX_IMAGE", IMAGE)


# ---------------------------------------------------------------------------- parallel runs
# Modules that hold one machine-wide thing (the compose stack's image builds and fixed ports, the
# default pod network "minik8s-pods" of `minik8s up` and of the Docker kubelet's own tests, port
# 8080 of the image test) run one after another, on one worker.
ONE_AT_A_TIME = ("tests/e2e/test_compose.py", "tests/e2e/test_compose_ha.py", "tests/test_images.py",
                 "tests/e2e/test_up_docker.py", "tests/kubelet/test_agent.py")
# Modules whose tests are independent units (each its own namespace and processes): spread per test.
PER_TEST = ("tests/apiserver/test_fuzz.py", "tests/bench/test_bench_quick.py")
# The longest units first (seconds per module measured on 3 workers of a 2-core machine, 2026-12-03),
# so no long module starts last and holds the run's end; the rest keep their collection order.
LONGEST_FIRST = (*ONE_AT_A_TIME, *PER_TEST, "tests/e2e/test_authn_e2e.py", "tests/test_typing.py",
                 "tests/e2e/test_official_e2e.py", "tests/e2e/test_traffic.py", "tests/e2e/test_statefulset.py",
                 "tests/e2e/test_faults_rollout.py", "tests/e2e/test_disruption.py", "tests/e2e/test_crd.py",
                 "tests/apiserver/test_fuzz_auth.py", "tests/e2e/test_autoscaling.py",
                 "tests/e2e/test_faults_storage.py", "tests/e2e/test_volumes.py", "tests/e2e/test_workloads.py",
                 "tests/e2e/test_mkctl_streams.py", "tests/gitops/test_sync.py", "tests/e2e/test_storage.py",
                 "tests/e2e/test_batch.py", "tests/machinery/test_informer.py", "tests/e2e/test_docker_kubelet.py")


def module_path(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def unit(nodeid: str) -> str:
    """The unit a worker runs whole: the shared one, one test, or (by default) the test's module."""
    path = module_path(nodeid)
    if path in ONE_AT_A_TIME:
        return "one-at-a-time"
    return nodeid if path in PER_TEST else path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(module_path(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)  # an xdist hook: no error where xdist is not loaded
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` by ``unit`` (the scheduler of ``--dist loadscope``, which keeps each unit
    on one worker and, with ``--no-loadscope-reorder``, hands them out in collection order).
    xdist's own loadgroup reads ``xdist_group`` marks into node ids, which pytest 9 ignores."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)
    return ByUnit(config, log)


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
