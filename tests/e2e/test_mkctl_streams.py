"""``mkctl exec|attach|cp|port-forward`` end to end: a real cluster with a Docker node.

This module's own cluster (tests/e2e/streamcluster.py: etcd, apiserver, scheduler,
controller-manager, one Docker kubelet ``ex13-mkctl-*``) and one long-lived pod ``web`` (busybox
httpd on 8080 serving a random token, the default container by annotation; ``ticker`` prints
numbered lines) behind a Service ``web`` (port 80 -> targetPort ``http``). mkctl runs as its own
process (``python -m cli.mkctl`` with the cluster's kubeconfig); every forward it starts is stopped
by its pid. Local ports are free ones (``:REMOTE``), never fixed.

Data flow under test: mkctl (``machinery.streamclient``: v5.channel.k8s.io for exec/attach/cp,
v4.channel.k8s.io with ``?ports=`` for port-forward, one WebSocket per local connection)
--> apiserver ``pods/exec|attach|portforward`` --relayed--> the kubelet --> Docker.

What it proves: exec prints a command's output, exits with its exit code (and kubectl's message),
echoes stdin through ``cat`` (stdin closed by the v5 CLOSE message); ``exec -it ... sh`` in a
pseudo-terminal (test_exec's ``Pty``) runs commands in raw mode and follows a window resize; cp of 1 MiB of random bytes into
the pod and back gives the same bytes; attach shows a running container's lines; port-forward of
``pod/web`` and of ``svc/web`` serves 20 concurrent HTTP requests, and a forward to a port nobody
listens on prints the error while the other port keeps working.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.e2e.streamcluster import Background, StreamCluster, container, pod, stream_cluster
from tests.e2e.test_exec import Pty

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(180)]

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN = uuid.uuid4().hex
SERVE = "mkdir -p /www && printf %s \"$TOKEN\" > /www/index.html && exec httpd -f -p 8080 -h /www"
TICKER = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamCluster]:
    with stream_cluster(tmp_path_factory, "mkctl") as c:
        yield c


@pytest.fixture(scope="module")
def ns(cluster: StreamCluster) -> str:
    return cluster.populated(
        pod("web", container("httpd", SERVE, env=[{"name": "TOKEN", "value": TOKEN}],
                             ports=[{"containerPort": 8080, "name": "http"}],
                             readinessProbe={"httpGet": {"path": "/index.html", "port": 8080}, "periodSeconds": 1}),
            container("ticker", TICKER), labels={"app": "web"},
            annotations={"kubectl.kubernetes.io/default-container": "httpd"}),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}})


def mkctl_argv(cluster: StreamCluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli.mkctl", "--kubeconfig", str(cluster.kubeconfig), *args]


def mkctl(cluster: StreamCluster, *args: str, input: bytes | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(mkctl_argv(cluster, *args), input=input, capture_output=True, timeout=timeout,
                          cwd=REPO_ROOT, env={**cluster.env(), "PYTHONPATH": str(REPO_ROOT)})


def test_exec_output_exit_code_and_stdin(cluster: StreamCluster, ns: str) -> None:
    p = mkctl(cluster, "exec", "web", "-n", ns, "--", "echo", "hi")
    assert (p.returncode, p.stdout, p.stderr) == (0, b"hi\n", b""), cluster.diagnostics()
    p = mkctl(cluster, "exec", "web", "-n", ns, "--", "sh", "-c", "echo bad >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, b"", b"bad\ncommand terminated with exit code 3\n")
    data = os.urandom(100_000)
    p = mkctl(cluster, "exec", "-i", "web", "-n", ns, "-c", "ticker", "--", "cat", input=data)
    assert p.returncode == 0 and p.stdout == data, p.stderr
    p = mkctl(cluster, "exec", "deploy/none", "-n", ns, "--", "true")
    assert p.returncode == 1 and b'deployments.apps "none" not found' in p.stderr


def test_exec_tty_in_a_terminal_follows_resize(cluster: StreamCluster, ns: str) -> None:
    term = Pty(mkctl_argv(cluster, "exec", "-it", "web", "-n", ns, "--", "sh"),
               {**cluster.env(), "PYTHONPATH": str(REPO_ROOT)}, rows=24, cols=80)
    try:
        term.write("echo $((6*7))\n")
        term.expect(r"\b42\r?\n")  # raw mode: the remote terminal echoes the typed line, the output is 42
        start = len(term.out)
        term.write("stty size\n")
        term.expect(r"\b24 80\b", since=start)  # the first resize message: the terminal's size
        term.resize(37, 111)
        deadline = time.monotonic() + 15
        while True:  # SIGWINCH -> a resize message, asynchronously
            start = len(term.out)
            term.write("stty size\n")
            if term.expect(r"\b(24 80|37 111)\b", since=start).group(1) == b"37 111":
                break
            assert time.monotonic() < deadline, f"the shell never saw 37x111:\n{term.out[-2000:]!r}"
        term.write("exit 5\n")
        assert term.wait() == 5, term.out[-2000:]
    finally:
        term.close()


def test_cp_round_trip(cluster: StreamCluster, ns: str, tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    (tmp_path / "blob").write_bytes(data)
    p = mkctl(cluster, "cp", str(tmp_path / "blob"), f"{ns}/web:/tmp/blob")
    assert p.returncode == 0, p.stderr
    p = mkctl(cluster, "exec", "web", "-n", ns, "--", "md5sum", "/tmp/blob")
    assert p.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()
    p = mkctl(cluster, "cp", f"web:/tmp/blob", str(tmp_path / "back"), "-n", ns)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "back").read_bytes() == data
    p = mkctl(cluster, "cp", "web:/tmp/none", str(tmp_path / "none"), "-n", ns)
    assert p.returncode == 1 and p.stderr.endswith(b"command terminated with exit code 1\n")


def test_attach_shows_the_lines(cluster: StreamCluster, ns: str) -> None:
    with Background(mkctl_argv(cluster, "attach", "web", "-c", "ticker", "-n", ns), env={
            **cluster.env(), "PYTHONPATH": str(REPO_ROOT)}, diagnose=cluster.diagnostics) as attached:
        found = attached.expect(r"^tick (\d+)$", timeout=30, count=5)
        numbers = [int(m.group(1)) for m in found]
        assert numbers == list(range(numbers[0], numbers[0] + 5))


def forward(cluster: StreamCluster, ns: str, target: str, *specs: str) -> tuple[Background, dict[int, int]]:
    """``mkctl port-forward TARGET SPEC...`` once it listens: the process and remote -> local port."""
    pf = Background(mkctl_argv(cluster, "port-forward", target, "-n", ns, "--address", "127.0.0.1", *specs),
                    env={**cluster.env(), "PYTHONPATH": str(REPO_ROOT)}, diagnose=cluster.diagnostics)
    try:
        found = pf.expect(r"^Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)$", timeout=30, count=len(specs))
    except BaseException:
        pf.stop()
        raise
    return pf, {int(m.group(2)): int(m.group(1)) for m in found}


def concurrent_gets(port: int, count: int = 20) -> list[str]:
    def get(_: int) -> str:
        return httpx.get(f"http://127.0.0.1:{port}/index.html", timeout=20).text
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(get, range(count)))


def test_port_forward_pod_with_a_closed_port(cluster: StreamCluster, ns: str) -> None:
    pf, ports = forward(cluster, ns, "pod/web", ":8080", ":9")
    with pf:
        assert concurrent_gets(ports[8080]) == [TOKEN] * 20
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{ports[9]}/", timeout=20)
        pf.expect(rf"an error occurred forwarding {ports[9]} -> 9", stream="stderr", timeout=20)
        assert httpx.get(f"http://127.0.0.1:{ports[8080]}/index.html", timeout=20).text == TOKEN
        assert pf.proc.poll() is None
    assert pf.proc.returncode == 0


def test_port_forward_service(cluster: StreamCluster, ns: str) -> None:
    pf, ports = forward(cluster, ns, "svc/web", ":80")
    with pf:
        assert list(ports) == [8080]  # the Service's targetPort "http", a named port of the pod
        assert concurrent_gets(ports[8080]) == [TOKEN] * 20
        assert re.search(rf"Handling connection for {ports[8080]}", pf.text())
