"""A stand-in API server for the streaming tests: real clients reach kubelet.streaming's handlers.

Role: the smallest server that ``kubectl exec|attach|cp|port-forward``, the official Python
client's ``stream()``/``portforward()`` and plain WebSocket clients accept, over real Docker pods
made through the kubelet's own runtime (a sandbox plus containers in its namespaces), without an
API server, etcd or a kubelet process.

Data flow:

    start_pod(runtime, network, ...) -> HarnessPod (sandbox + containers on the engine)
    Harness(ctx).start() -> http://127.0.0.1:PORT, an aiohttp app on its own thread and loop:
        GET /api, /apis, /api/v1                       discovery (kubectl maps "pods" with it)
        GET /api/v1/namespaces/NS/pods/NAME            a Running pod built from the HarnessPod
        GET|POST /api/v1/namespaces/NS/pods/NAME/exec|attach|portforward
            -> kubelet.streaming.exec.handle_exec / handle_attach, portforward.handle_portforward
               (the kubelet's handlers themselves: the container comes from ``?container=``)
    DockerStreamingContext: the StreamingContext of those handlers over the registered pods,
        with a thread pool of its own for run_blocking (as the kubelet has)
    Harness.kubeconfig(path) -> a kubeconfig for kubectl and the official client
"""

from __future__ import annotations

import asyncio
import functools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping, Sequence, cast

from aiohttp import web

from kubelet.cri import ContainerRuntime, ContainerRuntimeError, ContainerSpec, Sandbox
from kubelet.streaming import exec as exec_
from kubelet.streaming import portforward
from kubelet.streaming.context import ContainerTarget, PodTarget, StreamError

from tests.dockertest import IMAGE

NODE = "harness-node"


@dataclass(frozen=True)
class PodContainer:
    """One container of a harness pod (the spec fields the streaming code cares about)."""
    name: str
    command: Sequence[str]
    stdin: bool = False
    tty: bool = False
    image: str = IMAGE
    ports: Sequence[int] = ()


@dataclass
class HarnessPod:
    namespace: str
    name: str
    uid: str
    sandbox: Sandbox
    containers: list[PodContainer]
    ids: dict[str, str] = field(default_factory=dict)  # container name -> engine id
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def start_pod(runtime: ContainerRuntime, *, network: str, namespace: str, name: str,
              containers: Sequence[PodContainer], labels: Mapping[str, str]) -> HarnessPod:
    """A pod on the engine as the kubelet makes one: a sandbox, then each container started in its
    namespaces. ``labels`` go on everything (clean-up by label)."""
    uid = str(uuid.uuid4())
    sandbox = runtime.run_sandbox(pod_uid=uid, pod_name=name, namespace=namespace, node=NODE, network=network,
                                  labels=labels)
    pod = HarnessPod(namespace=namespace, name=name, uid=uid, sandbox=sandbox, containers=list(containers))
    for c in containers:
        cid = runtime.create_container(ContainerSpec(
            pod_uid=uid, pod_name=name, namespace=namespace, node=NODE, name=c.name, image=c.image,
            sandbox_id=sandbox.id, command=list(c.command), stdin=c.stdin, tty=c.tty, labels=labels))
        runtime.start(cid)
        pod.ids[c.name] = cid
    return pod


def pod_object(pod: HarnessPod) -> dict[str, Any]:
    """The pod as the API server would answer it: Running, every container running and ready."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid, "resourceVersion": "1",
                     "creationTimestamp": pod.created},
        "spec": {"nodeName": NODE, "restartPolicy": "Always", "containers": [
            {"name": c.name, "image": c.image, "command": list(c.command), "stdin": c.stdin, "tty": c.tty,
             "ports": [{"containerPort": p, "protocol": "TCP"} for p in c.ports]}
            for c in pod.containers]},
        "status": {"phase": "Running", "podIP": pod.sandbox.ip, "podIPs": [{"ip": pod.sandbox.ip}],
                   "startTime": pod.created,
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [
                       {"name": c.name, "ready": True, "started": True, "restartCount": 0, "image": c.image,
                        "imageID": "", "containerID": f"docker://{pod.ids[c.name]}",
                        "state": {"running": {"startedAt": pod.created}}}
                       for c in pod.containers]},
    }


class DockerStreamingContext:
    """kubelet.streaming.context.StreamingContext over the registered pods and a real engine."""

    def __init__(self, runtime: ContainerRuntime) -> None:
        self.runtime = runtime
        self.pods: dict[tuple[str, str], HarnessPod] = {}
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="harness-runtime")

    def add(self, pod: HarnessPod) -> None:
        self.pods[(pod.namespace, pod.name)] = pod

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kw))

    def _pod(self, namespace: str, name: str) -> HarnessPod:
        pod = self.pods.get((namespace, name))
        if pod is None:
            raise StreamError(f'pods "{name}" not found', 404)
        return pod

    async def container(self, namespace: str, pod: str, container: str) -> ContainerTarget:
        p = self._pod(namespace, pod)
        if not container and len(p.containers) == 1:
            container = p.containers[0].name
        spec = next((c for c in p.containers if c.name == container), None)
        if spec is None:
            raise StreamError(f"container {container} is not valid for pod {pod}", 404)
        cid = p.ids[container]
        try:
            info = await self.run_blocking(self.runtime.inspect, cid)
        except ContainerRuntimeError as e:
            raise StreamError(f"container {container} in pod {pod}: {e}", 404) from e
        if not info.running:
            raise StreamError(f"container {container} is not running", 400)
        return ContainerTarget(id=cid, name=container, pod_uid=p.uid, stdin=spec.stdin, tty=spec.tty)

    async def sandbox(self, namespace: str, pod: str) -> PodTarget:
        p = self._pod(namespace, pod)
        return PodTarget(namespace=namespace, name=pod, uid=p.uid, sandbox_id=p.sandbox.id,
                         sandbox_pid=p.sandbox.pid, pod_ip=p.sandbox.ip)


_API_RESOURCES = {
    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1",
    "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "shortNames": ["po"],
         "verbs": ["get", "list"]},
        {"name": "pods/exec", "singularName": "", "namespaced": True, "kind": "PodExecOptions",
         "verbs": ["create", "get"]},
        {"name": "pods/attach", "singularName": "", "namespaced": True, "kind": "PodAttachOptions",
         "verbs": ["create", "get"]},
        {"name": "pods/portforward", "singularName": "", "namespaced": True, "kind": "PodPortForwardOptions",
         "verbs": ["create", "get"]},
    ],
}


def build_app(ctx: DockerStreamingContext) -> web.Application:
    async def api(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": request.host}]})

    async def apis(request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})

    async def api_v1(request: web.Request) -> web.Response:
        return web.json_response(_API_RESOURCES)

    async def get_pod(request: web.Request) -> web.Response:
        m = request.match_info
        pod = ctx.pods.get((m["namespace"], m["pod"]))
        if pod is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                      "message": f'pods "{m["pod"]}" not found', "reason": "NotFound",
                                      "details": {"name": m["pod"], "kind": "pods"}, "code": 404}, status=404)
        return web.json_response(pod_object(pod))

    def subresource(module: Any, handler: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def route(request: web.Request) -> web.StreamResponse:
            return cast(web.StreamResponse, await getattr(module, handler)(request, ctx))
        return route

    app = web.Application()
    app.router.add_get("/api", api)
    app.router.add_get("/apis", apis)
    app.router.add_get("/api/v1", api_v1)
    app.router.add_get("/api/v1/namespaces/{namespace}/pods/{pod}", get_pod)
    base = "/api/v1/namespaces/{namespace}/pods/{pod}"
    for what, module, handler in (("exec", exec_, "handle_exec"), ("attach", exec_, "handle_attach"),
                                  ("portforward", portforward, "handle_portforward")):
        app.router.add_route("*", f"{base}/{what}", subresource(module, handler))
    return app


class Harness:
    """The app served on 127.0.0.1 (a free port) from a thread with its own event loop."""

    def __init__(self, ctx: DockerStreamingContext) -> None:
        self.ctx = ctx
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stream-harness", daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> "Harness":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        self._runner = web.AppRunner(build_app(self.ctx), shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self.ctx.close()

    def kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: harness\n  cluster:\n    server: {self.url}\n"
            "contexts:\n- name: harness\n  context:\n    cluster: harness\n    user: harness\n"
            f"    namespace: {namespace}\n"
            "current-context: harness\nusers:\n- name: harness\n  user: {}\n")
        return path


__all__ = ["DockerStreamingContext", "Harness", "HarnessPod", "NODE", "PodContainer", "build_app", "pod_object",
           "start_pod"]
