"""The one module that runs ``nsenter``, ``nft`` and ``conntrack`` (DESIGN.md pattern 4).

Data flow: a process id whose network namespace is a pod's (its sandbox container's PID 1, as
the host's /proc sees it) + the text of a traffic.proxy.rules transaction ->
``nsenter -t PID -n nft -f -`` (one atomic transaction) -> ``NftError`` with nft's own message on
failure. ``clear_udp`` deletes the conntrack entries of UDP flows to a gone endpoint in that
namespace (``conntrack -D``), when the ``conntrack`` tool is installed.

Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN and the host's PID namespace: in docker-compose the
kubelet runs with ``pid: host`` and those two capabilities). ``check()`` says why not, once, so
the kubelet can report it instead of failing every pod.
"""

from __future__ import annotations

import os
import shutil
import subprocess

TIMEOUT = 10.0


class NftError(Exception):
    """nsenter or nft failed; the message is theirs."""


def check() -> str | None:
    """None when this process can program pods' namespaces, else why not."""
    missing = [tool for tool in ("nsenter", "nft") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found (install util-linux and nftables)"
    if os.geteuid() != 0:
        return "not running as root: entering pods' network namespaces needs CAP_SYS_ADMIN and CAP_NET_ADMIN"
    return None


def apply(pid: int, ruleset: str) -> None:
    """Runs one nft transaction in the network namespace of ``pid``."""
    try:
        done = subprocess.run(["nsenter", "-t", str(pid), "-n", "nft", "-f", "-"], input=ruleset.encode(),
                              capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NftError(f"nsenter -t {pid} -n nft: {e}") from e
    if done.returncode != 0:
        raise NftError(f"nsenter -t {pid} -n nft -f: {done.stderr.decode(errors='replace').strip()}")


def clear_udp(pid: int, flows: list[tuple[str, int, str]]) -> None:
    """Deletes the UDP conntrack entries to ``(vip, port)`` that were NATed to the endpoint ip."""
    if not flows or shutil.which("conntrack") is None:
        return
    for vip, port, endpoint in flows:
        subprocess.run(["nsenter", "-t", str(pid), "-n", "conntrack", "-D", "-p", "udp", "--orig-dst", vip,
                        "--orig-port-dst", str(port), "--reply-src", endpoint],
                       capture_output=True, timeout=TIMEOUT, check=False)
