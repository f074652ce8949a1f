"""What issue 13's end-to-end modules share: one Docker node, long-lived pods, kubectl in the background.

Each module (test_exec, test_portforward_e2e, test_kubelet_auth) builds its own ``StreamCluster``: a
``DockerCluster`` (etcd, apiserver, scheduler, controller-manager with the namespace and EndpointSlice
controllers, one Docker kubelet
``ex13-<module>-<random>`` on a test network of its own, Ready before the module's tests start). The
module puts its long-lived pods (``pod``/``container`` manifests) into a namespace of their own with the
real ``kubectl apply`` and waits, bounded, until they run and are Ready (``populated``).

``Background`` runs a kubectl that keeps running (``port-forward``, ``attach``): two reader threads
collect its standard output and error, ``expect`` waits (bounded) for a line matching a pattern, and
``stop`` ends that process by its pid (TERM, then KILL). ``core_api`` is the official ``kubernetes``
client's CoreV1Api on the cluster, for ``kubernetes.stream.stream`` and ``portforward``.

Data flow: test -> kubectl / official client -> apiserver (pods/exec|attach|portforward, WebSocket)
-> the node's kubelet (bearer token of Secret kube-system/minik8s-kubelet-client) -> Docker.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

from kubelet.runtime import DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started
from tests.waiting import wait_for

__all__ = ["IDLE", "Background", "StreamCluster", "container", "is_ready", "pod", "stream_cluster"]

IDLE = "trap 'exit 0' TERM; while true; do sleep 1; done"


@contextmanager
def stream_cluster(tmp_path_factory: pytest.TempPathFactory, role: str) -> Iterator[StreamCluster]:
    """For a module fixture: a StreamCluster whose node ``ex13-<role>-<random>`` is Ready; stopped at the end."""
    node = f"ex13-{role}-{uuid.uuid4().hex[:6]}"
    with docker_started(lambda rt: StreamCluster(tmp_path_factory.mktemp(f"ex13-{role}"), rt, role=role, node=node),
                        ready_nodes=(node,)) as c:
        yield c


def pod(name: str, *containers: dict[str, Any], labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A Pod manifest (its namespace filled in by ``StreamCluster.populated``)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": list(containers)}}


def container(name: str, script: str = IDLE, **fields: Any) -> dict[str, Any]:
    """A container of the test image running ``sh -c script`` (default: idle until TERM)."""
    return {"name": name, "image": IMAGE, "command": ["sh", "-c", script], **fields}


def is_ready(pod: dict[str, Any] | None) -> bool:
    """Running with the Ready condition True."""
    status = (pod or {}).get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


class StreamCluster(DockerCluster):
    """A DockerCluster with one Docker node ``node``."""

    def __init__(self, tmp: Path, rt: DockerRuntime, *, role: str, node: str) -> None:
        self.node = node
        super().__init__(tmp, rt, prefix=f"mk-ex13-{role}", label=f"issue13-{role}", docker_nodes=(self.node,),
                         kubelet_flags=("--no-service-proxy",), ns_prefix="ex13-", kubectl_timeout=60, wait_timeout=60,
                         controllers="namespace,endpointslice")  # slices: services/NAME/proxy finds the pod

    def env(self) -> dict[str, str]:
        """kubectl's environment: this cluster's kubeconfig and private HOME (as ``kubectl`` uses)."""
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}

    def populated(self, *objects: dict[str, Any]) -> str:
        """A new namespace holding ``objects`` (applied with kubectl), once every Pod among them is Ready."""
        ns = self.namespace()
        items = [{**o, "metadata": {**o["metadata"], "namespace": ns}} for o in objects]
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        for o in objects:
            if o["kind"] == "Pod":
                self.ready(ns, o["metadata"]["name"])
        return ns

    def ready(self, ns: str, name: str, timeout: float = 60) -> dict[str, Any]:
        """The pod once Running and Ready (the status and the events in the failure message)."""
        def check() -> dict[str, Any] | None:
            pod = self.get(f"/api/v1/namespaces/{ns}/pods/{name}")
            return pod if is_ready(pod) else None

        def diagnose() -> str:
            status = (self.get(f"/api/v1/namespaces/{ns}/pods/{name}") or {}).get("status")
            events = self.http.get(f"/api/v1/namespaces/{ns}/events").json().get("items") or []
            return f"status: {status}\nevents: {[(e.get('reason'), e.get('message')) for e in events]}\n" \
                   f"{self.diagnostics()}"
        return dict(wait_for(check, timeout, f"pod {ns}/{name} Ready", diagnose))

    def node_endpoint(self) -> tuple[str, int]:
        """(InternalIP, kubelet port) the node publishes: where the API server reaches its kubelet."""
        status = (self.get(f"/api/v1/nodes/{self.node}") or {}).get("status") or {}
        ip = next(a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP")
        return str(ip), int(status["daemonEndpoints"]["kubeletEndpoint"]["Port"])

    def core_api(self) -> Any:
        """The official client's CoreV1Api on this cluster (its ApiClient closed by the caller's ``close``)."""
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        return client.CoreV1Api(client.ApiClient(cfg))

    def background(self, *args: str) -> "Background":
        return Background(["kubectl", *args], env=self.env(), diagnose=self.diagnostics)


class Background:
    """A long-running kubectl: its output lines as they come; stopped by its own pid."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], diagnose: Callable[[], str] = lambda: "") -> None:
        self.argv = list(argv)
        self.diagnose = diagnose
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, text=True, bufsize=1)
        self.readers = [threading.Thread(target=self._read, args=(name, pipe), daemon=True)
                        for name, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))]
        for r in self.readers:
            r.start()

    def _read(self, name: str, pipe: Any) -> None:
        for line in pipe:
            with self.cond:
                self.lines[name].append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def text(self, stream: str = "stdout") -> str:
        with self.cond:
            return "\n".join(self.lines[stream])

    def expect(self, pattern: str, *, stream: str = "stdout", timeout: float = 20, count: int = 1) -> list[re.Match[str]]:
        """The first ``count`` lines of ``stream`` that match ``pattern`` (waits at most ``timeout``)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [m for m in (rx.search(x) for x in self.lines[stream]) if m]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self.readers)):
                    raise AssertionError(
                        f"{' '.join(self.argv)}: no {count} line(s) matching {pattern!r} on {stream} "
                        f"(exit {self.proc.poll()})\nstdout:\n{chr(10).join(self.lines['stdout'])[-3000:]}\n"
                        f"stderr:\n{chr(10).join(self.lines['stderr'])[-3000:]}\n{self.diagnose()}")
                self.cond.wait(min(left, 0.5))

    def wait(self, timeout: float = 20) -> int:
        """The exit code once the process ends by itself (fails after ``timeout``)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{' '.join(self.argv)} still runs after {timeout}s\n"
                                 f"stderr:\n{self.text('stderr')[-3000:]}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for r in self.readers:
            r.join(5)

    def __enter__(self) -> "Background":
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
