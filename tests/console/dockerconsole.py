"""The console in front of a secured cluster whose node runs real containers (logs, exec), for the
console's browser tests that need them (tests/console/test_console_pod.py).

``docker_console`` (module scope): tests/e2e/test_incluster_client.py's ``InClusterCluster`` (etcd,
a TLS API server with RBAC and the Node authorizer on a Docker test network's gateway, the
scheduler, the controller-manager's ServiceAccount and root-CA controllers, one Docker kubelet with
its node's certificate) plus ``minik8s console`` on a free loopback port. Its ``console`` is a
``ConsoleCluster`` for tests/console/conftest.py's ``logged_in`` (the admin logs in by uploading
their kubeconfig: its client certificate is embedded). On teardown everything stops: the processes,
the node's containers and volumes, the test network.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import httpx
import pytest

from tests.cluster import free_port
from tests.console.conftest import ConsoleCluster
from tests.dockertest import IMAGE, checked_runtime
from tests.e2e.test_incluster_client import InClusterCluster
from tests.waiting import wait_for


def ready(node: dict[str, Any] | None) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in ((node or {}).get("status") or {}).get("conditions") or [])


@dataclass
class DockerConsole:
    cluster: InClusterCluster
    console: ConsoleCluster

    @property
    def node(self) -> str:
        return self.cluster.node

    def namespace(self, prefix: str) -> str:
        """A new namespace, once pods may be made in it (its ServiceAccount and root CA are there)."""
        ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.cluster.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        self.cluster.wait("the default ServiceAccount",
                          lambda: self.cluster.get(f"/api/v1/namespaces/{ns}/serviceaccounts/default"))
        self.cluster.wait("kube-root-ca.crt published",
                          lambda: self.cluster.get(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"))
        return ns

    def create_pod(self, ns: str, name: str, command: Sequence[str], *, restart_policy: str = "Always",
                   ports: Sequence[dict[str, Any]] = ()) -> None:
        """Pod ``name`` with one container ``main`` running ``command`` in the busybox test image."""
        container: dict[str, Any] = {"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                     "command": list(command)}
        if ports:
            container["ports"] = list(ports)
        self.cluster.create(f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0, "restartPolicy": restart_policy,
                     "containers": [container]}})

    def pod(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.cluster.get(f"/api/v1/namespaces/{ns}/pods/{name}")

    def container_status(self, ns: str, name: str, container: str = "main") -> dict[str, Any]:
        pod = self.pod(ns, name) or {}
        return next((c for c in (pod.get("status") or {}).get("containerStatuses") or [] if c["name"] == container),
                    {})

    def wait_running(self, ns: str, name: str, timeout: float = 90) -> dict[str, Any]:
        """The pod once its container runs and is ready (the API's view)."""
        def check() -> dict[str, Any] | None:
            pod = self.pod(ns, name) or {}
            st = pod.get("status") or {}
            ok = st.get("phase") == "Running" and all(c.get("ready") for c in st.get("containerStatuses") or [{}])
            return pod if ok else None
        return dict(self.cluster.wait(f"pod {ns}/{name} running", check, timeout=timeout))


@pytest.fixture(scope="module")
def docker_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerConsole]:
    rt = checked_runtime()
    try:
        c = InClusterCluster(tmp_path_factory.mktemp("console-docker"), rt)  # stops itself when it fails
    except BaseException:
        rt.close()
        raise
    try:
        assert c.secure is not None
        c.wait("the node Ready", lambda: ready(c.get(f"/api/v1/nodes/{c.node}")), timeout=90)
        port = free_port()
        proc = c.secure.start_component("console", "--port", str(port), who="admin")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(url + "/healthz").status_code == 200, 30, "the console's /healthz",
                 lambda: proc.logs()[-2000:])
        yield DockerConsole(c, ConsoleCluster(c.secure, url, proc))
    finally:
        c.stop()
        rt.close()
