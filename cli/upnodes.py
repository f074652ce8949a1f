"""The node of ``minik8s up``: its default name and the wait until every node is Ready.

Data flow: ``cli.up`` names the node with ``default_node_name`` and after starting the kubelet calls
``wait_nodes_ready``: GET nodes and node Leases through the API server as the admin (over TLS) ->
``ready_nodes`` (pure: which are Ready with a Lease renewed by this run, which say why they are not)
-> return, or fail with the reason and the kubelet's log tail.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from machinery.timefmt import parse_time

from .processes import Interrupted, tail

SIMULATED_BASE = "minik8s-node"  # simulated nodes are SIMULATED_BASE(-i) unless --node-name says otherwise


def default_node_name() -> str:
    """This machine's host name lower-cased, as kubeadm names the node (made a valid DNS name)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", socket.gethostname().lower()).strip("-.")
    return name or SIMULATED_BASE


def ready_nodes(http: httpx.Client, want: set[str], started: float) -> tuple[set[str], dict[str, str]]:
    """(nodes of ``want`` that are Ready with a Lease renewed since ``started``,
    {node: message} for those that report NotReady since then)."""
    try:
        nodes = http.get("/api/v1/nodes")
        leases = http.get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases")
    except httpx.HTTPError:
        return set(), {}
    if nodes.status_code != 200 or leases.status_code != 200:
        return set(), {}
    fresh = set()
    for lease in leases.json().get("items") or []:
        renewed = parse_time((lease.get("spec") or {}).get("renewTime"))
        if renewed is not None and renewed.timestamp() >= started - 1:
            fresh.add((lease.get("metadata") or {}).get("name"))
    ready: set[str] = set()
    complaints: dict[str, str] = {}
    for node in nodes.json().get("items") or []:
        name = (node.get("metadata") or {}).get("name")
        if name not in want or name not in fresh:
            continue
        conditions = (node.get("status") or {}).get("conditions") or []
        cond: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        if cond.get("status") == "True":
            ready.add(name)
        elif cond.get("message"):
            complaints[name] = str(cond["message"])
    return ready, complaints


def wait_nodes_ready(http: httpx.Client, nodes: list[str], *, started: float, kubelet: subprocess.Popen[bytes],
                     log: Path, ready_timeout: float, not_ready_timeout: float,
                     cancelled: Callable[[], bool]) -> None:
    """Until every node of ``nodes`` is Ready and its Lease was renewed after ``started``
    (a Node left Ready by an earlier run proves nothing); a node that keeps saying NotReady
    for ``not_ready_timeout`` fails with its reason and the kubelet's log tail."""
    want = set(nodes)
    deadline = time.monotonic() + ready_timeout
    not_ready_since: float | None = None
    why = "no node registered yet"
    while True:
        if cancelled():
            raise Interrupted("nodes")
        if kubelet.poll() is not None:
            raise RuntimeError(f"the kubelet exited with {kubelet.returncode}:\n{tail(log)}")
        ready, complaints = ready_nodes(http, want, started)
        if ready == want:
            return
        now = time.monotonic()
        if complaints:
            why = "; ".join(f"{n}: {m}" for n, m in sorted(complaints.items()))
            not_ready_since = not_ready_since or now
            if now - not_ready_since > not_ready_timeout:
                raise RuntimeError(f"node not Ready: {why}\nkubelet log ({log}):\n{tail(log)}")
        else:
            not_ready_since = None
            if ready:
                why = f"{len(ready)} of {len(want)} nodes Ready"
        if now > deadline:
            raise RuntimeError(f"nodes not Ready after {ready_timeout:g}s ({why})\n"
                               f"kubelet log ({log}):\n{tail(log)}")
        time.sleep(0.2)
