"""``kubectl debug`` end to end: ephemeral containers on a real Docker kubelet, driven by the real
``kubectl``.

This module's own cluster: etcd, apiserver, scheduler, controller-manager and one Docker kubelet
(node ``dbg-*``) on a test network ``mk-dbg-*``; the fixture removes the node's containers and the
network at the end. A pod ``web`` runs ``sleep 3600`` in its container ``app``.

What it proves: ``kubectl debug web --target=app -- ps`` (no attach) adds an ephemeral container
that sees the target's processes (``kubectl logs web -c <debugger>``), is never ready and never
restarted; without ``--target`` it sees only its own; ``kubectl debug --copy-to`` still makes a
running copy with the debug container; the interactive ``kubectl debug -it`` (attach through the
API server) runs ``ps`` in a terminal; deleting the pod removes its debuggers' containers.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from kubelet.runtime import LABEL_CONTAINER_NAME, LABEL_POD_NAME, DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

TARGET_PROCESS = "sleep 3600"


class DebugCluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        self.node = f"dbg-{uuid.uuid4().hex[:6]}"
        super().__init__(tmp, rt, prefix="mk-dbg", label="debug", docker_nodes=(self.node,), ns_prefix="dbg-",
                         kubectl_timeout=60, wait_timeout=40)

    def pod(self, ns: str, name: str) -> dict[str, Any]:
        return self.get(f"/api/v1/namespaces/{ns}/pods/{name}") or {}

    def ephemeral_state(self, ns: str, pod: str, container: str) -> dict[str, Any] | None:
        for st in (self.pod(ns, pod).get("status") or {}).get("ephemeralContainerStatuses") or []:
            if st.get("name") == container:
                return dict(st)
        return None

    def wait_terminated(self, ns: str, pod: str, container: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            st = self.ephemeral_state(ns, pod, container)
            return st if st and "terminated" in (st.get("state") or {}) else None
        return dict(self.wait(f"ephemeral container {container} terminated", check))

    def containers_of(self, pod: str, container: str) -> list[Any]:
        return self.rt.list({LABEL_POD_NAME: pod, LABEL_CONTAINER_NAME: container})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DebugCluster]:
    with docker_started(lambda rt: DebugCluster(tmp_path_factory.mktemp("debug"), rt)) as c:
        c.wait("node Ready", lambda: c.http.get(f"/api/v1/nodes/{c.node}").status_code == 200)
        yield c


@pytest.fixture(scope="module")
def web(cluster: DebugCluster) -> str:
    """The namespace of a Running pod ``web`` whose container ``app`` runs ``sleep 3600``."""
    ns = cluster.namespace()
    r = cluster.http.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "web"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "app", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"]}]}})
    assert r.status_code == 201, r.text
    cluster.wait("web Running", lambda: (cluster.pod(ns, "web").get("status") or {}).get("phase") == "Running")
    return ns


def debug(cluster: DebugCluster, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("debug", "web", "-n", ns, f"--image={IMAGE}", "--image-pull-policy=Never", *args)


def test_a_debugger_sees_the_targets_processes(cluster: DebugCluster, web: str) -> None:
    p = debug(cluster, web, "--target=app", "-c", "dbg-ps", "--", "ps")
    assert 'Targeting container "app"' in p.stdout + p.stderr
    status = cluster.wait_terminated(web, "web", "dbg-ps")
    assert status["state"]["terminated"]["exitCode"] == 0 and status["ready"] is False
    logs = cluster.kubectl_out("logs", "web", "-n", web, "-c", "dbg-ps")
    assert TARGET_PROCESS in logs and "ps" in logs
    pod = cluster.pod(web, "web")
    assert [c["name"] for c in pod["spec"]["ephemeralContainers"]] == ["dbg-ps"]
    assert pod["spec"]["ephemeralContainers"][0]["targetContainerName"] == "app"
    assert pod["status"]["phase"] == "Running"
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    described = cluster.kubectl_out("describe", "pod", "web", "-n", web)
    assert "Ephemeral Containers:" in described and "dbg-ps:" in described
    assert cluster.kubectl_out("get", "pod", "web", "-n", web, "--no-headers").split()[1] == "1/1"
    time.sleep(1.5)  # three sync intervals: an exited debugger is never started again
    assert len(cluster.containers_of("web", "dbg-ps")) == 1
    assert (cluster.ephemeral_state(web, "web", "dbg-ps") or {}).get("restartCount") == 0


def test_without_a_target_it_sees_only_its_own(cluster: DebugCluster, web: str) -> None:
    debug(cluster, web, "-c", "dbg-alone", "--", "ps")
    cluster.wait_terminated(web, "web", "dbg-alone")
    logs = cluster.kubectl_out("logs", "web", "-n", web, "-c", "dbg-alone")
    assert "ps" in logs and TARGET_PROCESS not in logs


def test_a_second_debugger_with_a_taken_name_is_refused(cluster: DebugCluster, web: str) -> None:
    p = cluster.kubectl("debug", "web", "-n", web, f"--image={IMAGE}", "-c", "app", "--", "ps", check=False)
    assert p.returncode != 0
    assert 'spec.ephemeralContainers[' in p.stderr and 'Duplicate value: "app"' in p.stderr


def test_copy_to_still_works(cluster: DebugCluster, web: str) -> None:
    debug(cluster, web, "--copy-to=web-copy", "-c", "dbg", "--", "sleep", "3600")
    cluster.wait("web-copy Running", lambda: (cluster.pod(web, "web-copy").get("status") or {}).get("phase")
                 == "Running")
    copy = cluster.pod(web, "web-copy")
    assert [c["name"] for c in copy["spec"]["containers"]] == ["app", "dbg"]
    assert "ephemeralContainers" not in copy["spec"]


def run_in_terminal(args: list[str], env: dict[str, str], *, send: list[tuple[str, str]],
                    timeout: float = 40) -> str:
    """Runs ``args`` on a pseudo-terminal; for each (expected, then-typed) pair waits until the
    output shows ``expected`` and types the text. Returns everything the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        for expected, typed in send:
            while expected.encode() not in seen:
                assert time.monotonic() < deadline, f"waiting for {expected!r}; the terminal showed:\n{seen.decode(errors='replace')}"
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        seen += os.read(master, 65536)
                    except OSError:  # the other side closed
                        assert expected.encode() in seen, seen.decode(errors="replace")
            os.write(master, typed.encode())
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        while select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return seen.decode(errors="replace")


def test_interactive_debug_through_attach(cluster: DebugCluster, web: str) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cluster.home), "KUBECONFIG": str(cluster.kubeconfig),
           "TERM": "dumb"}
    args = ["kubectl", "debug", "-it", "web", "-n", web, f"--image={IMAGE}", "--image-pull-policy=Never",
            "--target=app", "-c", "dbg-it", "--", "sh"]
    # kubectl prints "If you don't see a command prompt, try pressing enter." once attached.
    shown = run_in_terminal(args, env, send=[("try pressing enter", "\n"), ("#", "ps; exit\n")])
    assert TARGET_PROCESS in shown, shown
    st = cluster.wait_terminated(web, "web", "dbg-it")
    assert st["state"]["terminated"]["exitCode"] == 0


def test_deleting_the_pod_removes_its_debuggers(cluster: DebugCluster, web: str) -> None:
    cluster.kubectl("delete", "pod", "web", "-n", web, "--wait=true", "--timeout=40s", "--grace-period=1")
    cluster.wait("the debuggers' containers removed",
                 lambda: not any(cluster.containers_of("web", n) for n in ("dbg-ps", "dbg-alone", "dbg-it")))
