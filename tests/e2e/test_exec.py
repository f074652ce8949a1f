"""Issue 13's exec, attach and cp acceptance: the real kubectl and the official client, a Docker node.

This module's own cluster (tests/e2e/streamcluster.py: etcd, apiserver, scheduler, controller-manager,
one Docker kubelet ``ex13-exec-*``) and one long-lived pod ``box`` with two containers: ``shell``
(idle; the default container by annotation) and ``ticker`` (prints ``line N`` every 0.2 s).

Data flow under test: kubectl (``v5.channel.k8s.io``) or the official client's ``stream()``
(``v4.channel.k8s.io``) --WebSocket--> apiserver ``pods/exec|attach`` --relayed--> the kubelet's
``/exec|/attach`` --> Docker exec / attach in the container.

What it proves: ``kubectl exec`` prints a command's output, returns its exit code (3) with
kubectl's message, echoes stdin through ``cat`` (stdin closed at its end), refuses an unknown
container with Kubernetes' message; ``kubectl exec -it ... sh`` in a pseudo-terminal runs commands
and follows a window resize (``stty size``) and ends with the shell's exit code; the official
client's ``stream`` returns output and, unbuffered, stdin, stderr and the return code; ``kubectl cp``
of 1 MiB of random bytes into the pod and back gives the same bytes; ``kubectl attach`` shows the
lines a running container prints, none lost.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import pty
import re
import select
import signal
import struct
import termios
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.streamcluster import StreamCluster, container, pod, stream_cluster

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.timeout(180)]

POD = "box"
TICKER = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamCluster]:
    with stream_cluster(tmp_path_factory, "exec") as c:
        yield c


@pytest.fixture(scope="module")
def ns(cluster: StreamCluster) -> str:
    """The namespace of the module's pod ``box`` (Ready)."""
    return cluster.populated(pod(POD, container("shell"), container("ticker", TICKER),
                                 annotations={"kubectl.kubernetes.io/default-container": "shell"}))


# ---------------------------------------------------------------- kubectl exec

def test_exec_prints_output(cluster: StreamCluster, ns: str) -> None:
    p = cluster.kubectl("exec", POD, "-n", ns, "--", "echo", "hi")
    assert p.stdout == "hi\n"


def test_exec_returns_exit_code(cluster: StreamCluster, ns: str) -> None:
    p = cluster.kubectl("exec", POD, "-n", ns, "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert p.returncode == 3, (p.stdout, p.stderr)
    assert p.stdout == "out\n"
    assert "err\n" in p.stderr
    assert "command terminated with exit code 3" in p.stderr


def test_exec_stdin_echoed_by_cat(cluster: StreamCluster, ns: str) -> None:
    text = "".join(f"{i:05d} {os.urandom(24).hex()}\n" for i in range(2000))  # ~110 KB
    p = cluster.kubectl("exec", "-i", POD, "-n", ns, "--", "cat", stdin=text, timeout=30)
    assert p.stdout == text


def test_exec_in_named_container(cluster: StreamCluster, ns: str) -> None:
    p = cluster.kubectl("exec", POD, "-n", ns, "-c", "ticker", "--", "sh", "-c", "ps -o args | grep -c 'while true'")
    assert int(p.stdout.strip()) >= 1  # the ticker's own loop runs in that container


def test_exec_unknown_container_is_refused(cluster: StreamCluster, ns: str) -> None:
    p = cluster.kubectl("exec", POD, "-n", ns, "-c", "nope", "--", "true", check=False, timeout=30)
    assert p.returncode != 0
    assert f"container nope is not valid for pod {POD}" in p.stderr, p.stderr


# ---------------------------------------------------------------- kubectl exec -it in a pseudo-terminal

class Pty:
    """A child process on the slave side of a new pseudo-terminal (its controlling terminal)."""

    def __init__(self, argv: list[str], env: dict[str, str], *, rows: int, cols: int) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: only exec (no Python state is used after fork)
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.out = b""
        self.status: int | None = None

    def write(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def resize(self, rows: int, cols: int) -> None:
        """The terminal's new size: the kernel sends SIGWINCH to kubectl (the foreground process group)."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read(self, timeout: float) -> bool:
        """Reads what is there within ``timeout``; False at the end of the output."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:  # EIO: the slave side is closed
            if e.errno != errno.EIO:
                raise
            data = b""
        self.out += data
        return bool(data)

    def expect(self, pattern: str, *, since: int = 0, timeout: float = 20) -> re.Match[bytes]:
        rx = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while not (m := rx.search(self.out, since)):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.5)):
                raise AssertionError(f"no {pattern!r} in the terminal's output:\n{self.out[-3000:]!r}")
        return m

    def wait(self, timeout: float = 20) -> int:
        """The exit code (reading the output meanwhile, so the child never blocks on a full terminal)."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"kubectl still runs after {timeout}s:\n{self.out[-3000:]!r}")
            self._read(0.2)
        return self.status

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except ProcessLookupError:
                pass
        os.close(self.fd)


def test_exec_interactive_tty_runs_commands_and_follows_resize(cluster: StreamCluster, ns: str) -> None:
    term = Pty(["kubectl", "exec", "-it", POD, "-n", ns, "--", "sh"], cluster.env(), rows=24, cols=80)
    try:
        term.write("echo $((6*7))\n")
        term.expect(r"\b42\r?\n")  # the typed line shows 6*7, only the output shows 42
        # The initial size: kubectl sends its terminal's size before the shell reads a line.
        start = len(term.out)
        term.write("stty size\n")
        term.expect(r"\b24 80\b", since=start)

        term.resize(37, 111)

        def shows_new_size() -> bool:
            start = len(term.out)
            term.write("stty size\n")
            m = term.expect(r"\b(24 80|37 111)\b", since=start)
            return m.group(1) == b"37 111"
        deadline = time.monotonic() + 15
        while not shows_new_size():  # the resize travels asynchronously (SIGWINCH -> resize message)
            assert time.monotonic() < deadline, f"the shell never saw 37x111:\n{term.out[-2000:]!r}"
        term.write("exit 5\n")
        assert term.wait() == 5, term.out[-2000:]
    finally:
        term.close()


# ---------------------------------------------------------------- the official client's stream()

@pytest.fixture(scope="module")
def core(cluster: StreamCluster) -> Iterator[Any]:
    api = cluster.core_api()
    yield api
    api.api_client.close()


def test_official_client_stream_output(core: Any, ns: str) -> None:
    from kubernetes.stream import stream

    out = stream(core.connect_get_namespaced_pod_exec, POD, ns, container="shell", command=["echo", "hi"],
                 stdout=True, stderr=True, stdin=False, tty=False, _request_timeout=30)
    assert out == "hi\n"


def test_official_client_stream_stdin_stderr_returncode(core: Any, ns: str) -> None:
    from kubernetes.stream import stream

    resp = stream(core.connect_get_namespaced_pod_exec, POD, ns, container="shell",
                  command=["sh", "-c", "read line; echo got $line; echo oops >&2; exit 3"],
                  stdout=True, stderr=True, stdin=True, tty=False, _preload_content=False, _request_timeout=30)
    try:
        resp.write_stdin("hello\n")
        resp.run_forever(timeout=20)
        assert not resp.is_open(), "the exec did not end within 20 s"
        assert resp.read_stdout() == "got hello\n"
        assert resp.read_stderr() == "oops\n"
        assert resp.returncode == 3
    finally:
        resp.close()


# ---------------------------------------------------------------- kubectl cp

def test_cp_into_the_pod_and_back_gives_the_same_bytes(cluster: StreamCluster, ns: str, tmp_path: Path) -> None:
    data = os.urandom(1 << 20)
    (tmp_path / "blob").write_bytes(data)
    cluster.kubectl("cp", str(tmp_path / "blob"), f"{ns}/{POD}:/tmp/blob", "-c", "shell", timeout=60)
    inside = cluster.kubectl_out("exec", POD, "-n", ns, "--", "md5sum", "/tmp/blob")
    assert inside.split()[0] == hashlib.md5(data).hexdigest()
    cluster.kubectl("cp", f"{ns}/{POD}:/tmp/blob", str(tmp_path / "back"), "-c", "shell", timeout=60)
    assert (tmp_path / "back").read_bytes() == data


# ---------------------------------------------------------------- kubectl attach

def test_attach_shows_the_lines_a_container_prints(cluster: StreamCluster, ns: str) -> None:
    with cluster.background("attach", POD, "-n", ns, "-c", "ticker") as attach:
        seen = [int(m.group(1)) for m in attach.expect(r"^line (\d+)$", count=4, timeout=20)]
        assert attach.proc.poll() is None, "kubectl attach ended while the container runs"
    assert seen == list(range(seen[0], seen[0] + 4)), seen  # consecutive: nothing lost or repeated
