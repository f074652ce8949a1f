"""Real processes for tests: an etcd from the local binary and ``minik8s apiserver``.

Both run on free loopback ports with their own data directory and are stopped (by their own
process id) when the test session ends. Nothing here is faked: a test that needs etcd fails
loudly when the binary cannot be found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cli.processes import component_command, etcd_binary, etcd_command, free_port, stop as _stop, wait_http

__all__ = ["ApiServerProcess", "ComponentProcess", "Etcd", "etcd_binary", "free_port"]

ROOT = Path(__file__).resolve().parent.parent


# Start-up takes about 4 s on a quiet machine; a loaded one (several suites side by side) has
# needed 20-40 s, so the wait is generous. A process that is not ready in time is stopped, never
# left behind (an orphaned API server retries its stopped etcd forever and loads the machine).
READY_TIMEOUT_S = 90.0


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    try:
        wait_http(url, proc, log, timeout=READY_TIMEOUT_S)
    except BaseException:
        _stop(proc)
        raise


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
        self.proc = subprocess.Popen(
            etcd_command(data_dir=self.data_dir / "data", client_url=self.url, peer_port=self.peer_port),
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
        args = component_command("apiserver", "--etcd-servers", etcd_url, "--insecure-port", str(port),
                                 *(extra if "--log-level" in extra else ("--log-level", "warning", *extra)))
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


@dataclass
class ComponentProcess:
    """Any other ``minik8s <component>`` process (scheduler, controller-manager, kubelet, ...)."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    args: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, component: str, *args: str, log_level: str = "info") -> "ComponentProcess":
        log = Path(tempfile.mkstemp(prefix=f"minik8s-{component}-", suffix=".log")[1])
        argv = component_command(component, *args, "--log-level", log_level)
        proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return cls(component, proc, log, argv)

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")
