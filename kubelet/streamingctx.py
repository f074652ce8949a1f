"""Which Docker container is a pod's container: the kubelet's answer for logs, exec, attach and port-forward.

Data flow:

    kubelet.server (containerLogs) -> resolve_logs(ns, pod, container) -> (current id, previous id)
    kubelet.streaming handlers     -> container(ns, pod, container) -> ContainerTarget
                                   -> sandbox(ns, pod)              -> PodTarget (sandbox id, its
                                      host pid, the pod IP: port-forward enters its network namespace)
    each: the pod from this kubelet's pod informer (spec: containers, initContainers,
          ephemeralContainers) -> runtime.list(pod uid label) through the kubelet's thread pool
          -> kubelet.podsync.instances: the instance with the highest restart count is the
          current one, the one before it the previous.

Errors, as the real kubelet and API server word them: a pod not on this node or a container not
in its spec is 404; a container that exists in the spec but has not run yet is 400 ``container
"c" in pod "p" is waiting to start: REASON`` (the reason from the pod's status); one that ran and
stopped is 400 ``container "c" in pod "p" is not running`` (exec and attach only; logs read it).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from kubelet import podsync
from kubelet.blocking import RunBlocking
from kubelet.cri import LABEL_POD_UID, ContainerInfo, ContainerRuntime
from kubelet.server import LogsUnavailable, waiting_to_start
from kubelet.streaming.context import ContainerTarget, PodTarget, StreamError

Obj = dict[str, Any]
SPEC_LISTS = ("containers", "initContainers", "ephemeralContainers")


class PodCache(Protocol):
    """The kubelet's pod informer, as far as this module reads it."""

    def get(self, key: str) -> Obj | None: ...


class KubeletStreamingContext:
    """The kubelet's ``kubelet.streaming.context.StreamingContext`` (and the log server's resolver)."""

    def __init__(self, runtime: ContainerRuntime, *, pods: PodCache, node_name: str, run_blocking: RunBlocking) -> None:
        self.runtime = runtime
        self.pods = pods
        self.node_name = node_name
        self._run_blocking = run_blocking

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await self._run_blocking(fn, *args, **kw)

    # ------------------------------------------------------------------ lookups
    def _pod(self, namespace: str, name: str) -> Obj:
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise StreamError(f'pod "{name}" in namespace "{namespace}" is not running on node {self.node_name}',
                              404)
        return pod

    @staticmethod
    def _spec_of(pod: Obj, container: str) -> tuple[Obj, str]:
        """The container's spec and the list it is in (``containers``, ``initContainers``, ...)."""
        spec = pod.get("spec") or {}
        for which in SPEC_LISTS:
            for c in spec.get(which) or []:
                if c.get("name") == container:
                    return c, which
        name = (pod.get("metadata") or {}).get("name")
        raise StreamError(f"container {container} is not valid for pod {name}", 404)

    async def _containers(self, pod: Obj) -> list[ContainerInfo]:
        uid = str((pod.get("metadata") or {}).get("uid"))
        found: list[ContainerInfo] = await self._run_blocking(self.runtime.list, {LABEL_POD_UID: uid})
        return found

    async def _instances(self, pod: Obj, container: str) -> tuple[Obj, list[ContainerInfo]]:
        c_spec, which = self._spec_of(pod, container)
        ins = podsync.instances(await self._containers(pod), container, init=which == "initContainers")
        if not ins:
            name = str((pod.get("metadata") or {}).get("name"))
            raise StreamError(waiting_to_start(name, container, _waiting_reason(pod, container)).message, 400)
        return c_spec, ins

    # ------------------------------------------------------------------ answers
    async def resolve_logs(self, namespace: str, name: str, container: str) -> tuple[str, str | None]:
        """(current, previous) Docker container of a pod's container, for the log server."""
        try:
            _, ins = await self._instances(self._pod(namespace, name), container)
        except StreamError as e:
            raise LogsUnavailable(e.message, e.status) from None
        return ins[-1].id, (ins[-2].id if len(ins) >= 2 else None)

    async def container(self, namespace: str, pod: str, container: str) -> ContainerTarget:
        p = self._pod(namespace, pod)
        c_spec, ins = await self._instances(p, container)
        current = ins[-1]
        if not current.running:
            raise StreamError(f'container "{container}" in pod "{pod}" is not running', 400)
        return ContainerTarget(id=current.id, name=container, pod_uid=str((p.get("metadata") or {}).get("uid")),
                               stdin=bool(c_spec.get("stdin")), tty=bool(c_spec.get("tty")))

    async def sandbox(self, namespace: str, pod: str) -> PodTarget:
        p = self._pod(namespace, pod)
        sb = podsync.running_sandbox(await self._containers(p))
        if sb is None:
            raise StreamError(f'pod "{pod}" in namespace "{namespace}" has no running sandbox', 400)
        return PodTarget(namespace=namespace, name=pod, uid=str((p.get("metadata") or {}).get("uid")),
                         sandbox_id=sb.id, sandbox_pid=sb.pid, pod_ip=sb.ip)


def _waiting_reason(pod: Obj, container: str) -> str:
    status = pod.get("status") or {}
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for st in status.get(key) or []:
            if st.get("name") == container:
                return str(((st.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating")
    return "ContainerCreating"


__all__ = ["KubeletStreamingContext", "PodCache"]
