"""Shared bits of the scheduler tests: a private cluster, Node objects with Ready status, polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, TypeVar

from machinery.client import ApiClient

T = TypeVar("T")


async def make_node(client: ApiClient, name: str, *, cpu: str = "2", memory: str = "4Gi", pods: str = "110",
                    taints: list[dict[str, str]] | None = None, labels: dict[str, str] | None = None) -> None:
    """Create a Node, then PUT its status (Ready, allocatable) as a kubelet would."""
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
                            "spec": {"taints": taints} if taints else {}}
    created = await client.create("nodes", body)
    res = {"cpu": cpu, "memory": memory, "pods": pods}
    created["status"] = {"capacity": res, "allocatable": res,
                         "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                         "message": "kubelet is posting ready status"}]}
    await client.update_status("nodes", created)


def pod_body(name: str, *, cpu: str = "500m", memory: str = "128Mi", labels: dict[str, str] | None = None,
             scheduler_name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "nginx",
                                            "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": "web"}},
            "spec": spec}


async def eventually(fn: Callable[[], Awaitable[T | None]], *, timeout: float = 20.0, interval: float = 0.1,
                     what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
