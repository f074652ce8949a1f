"""The private test clusters of the end-to-end modules: real processes, optionally Docker nodes.

``ProcessCluster`` starts an etcd and an apiserver (tests/cluster.py) on free loopback ports,
writes a kubeconfig into the module's temporary directory (also the private ``HOME`` of the real
``kubectl``) and keeps an HTTP client on the apiserver. Components it starts (``component``:
scheduler, controller-manager; ``kubelet``: a simulated kubelet) are kept by the module, in
``procs`` or in attributes a test replaces when it restarts one; ``components()`` names them:
their log tails are the diagnostics every failed wait or kubectl call prints, and they are
stopped in reverse order before the apiserver and etcd.

``DockerCluster`` adds what the Docker modules share: a test network ``<prefix>-<random>`` on a
free /24 of the test pool (tests.dockertest.make_test_network), a scheduler and a controller-manager
with the module's flags and ``--controllers`` list, simulated kubelets and one Docker kubelet per
named node on that network (its ``--root-dir`` under the temporary directory). Stopping it removes
the nodes' containers and volumes (by the node label) and the network; what an earlier run left on
the nodes goes before it starts. ``started``/``docker_started`` are the module fixtures' frame (a
checked runtime, the nodes Ready, stop at the end). What a module checks (its objects, its waits)
stays in the module; test_workloads and test_storage use ``ProcessCluster`` alone.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import httpx

from kubelet.runtime import LABEL_NODE, DockerRuntime
from machinery.kubeconfig import write_kubeconfig
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.dockertest import checked_runtime, lower_half, make_test_network
from tests.waiting import wait_for

__all__ = ["CAPACITY", "LEASE", "DockerCluster", "ProcessCluster", "clean", "docker_started", "node_ready", "started"]

LEASE = ("--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2")
CAPACITY = "cpu=4,memory=8Gi,pods=30"


class ProcessCluster:
    """etcd + apiserver, a kubeconfig and an HTTP client; the components a module starts on them."""

    def __init__(self, tmp: Path, *, api_flags: Sequence[str] = (), capacity: str = CAPACITY, ns_prefix: str = "t-",
                 kubectl_timeout: float = 120, wait_timeout: float = 60) -> None:
        """``capacity``: the nodes' default; ``ns_prefix``: of the namespaces ``namespace`` makes."""
        self.home = tmp
        self.capacity = capacity
        self.ns_prefix = ns_prefix
        self.kubectl_timeout = kubectl_timeout
        self.wait_timeout = wait_timeout
        self.procs: list[ComponentProcess] = []
        self.etcd = Etcd.start()
        try:
            self.api = ApiServerProcess.start(self.etcd.url, *api_flags)
            self.url = self.api.url
            self.kubeconfig = tmp / "kubeconfig"
            write_kubeconfig(self.kubeconfig, server=self.url)
            self.http = httpx.Client(base_url=self.url, timeout=30)
        except BaseException:
            if getattr(self, "api", None) is not None:
                self.api.stop()
            self.etcd.stop()
            raise

    # -- components
    def components(self) -> list[ComponentProcess]:
        """The processes diagnostics reads and stop ends (a module with its own attributes overrides it)."""
        return list(self.procs)

    def component(self, name: str, *args: str) -> ComponentProcess:
        """``minik8s <name> --server <url> *args`` (the caller keeps it: in procs or an attribute)."""
        return ComponentProcess.start(name, "--server", self.url, *args)

    def kubelet(self, name: str, *extra: str, capacity: str | None = None) -> ComponentProcess:
        """A simulated kubelet for node ``name`` (or ``name-0``... with ``--count``)."""
        return self.component("kubelet", "--simulated", "--node-name", name, "--capacity", capacity or self.capacity,
                              "--lease-renew-interval", "0.5", *extra)

    def stop(self) -> None:
        for p in reversed(self.components()):
            p.stop()
        self.stop_nodes()
        if getattr(self, "http", None) is not None:
            self.http.close()
        if getattr(self, "api", None) is not None:
            self.api.stop()
        if getattr(self, "etcd", None) is not None:
            self.etcd.stop()

    def stop_nodes(self) -> None:
        """What outlives the kubelets' processes (nothing for simulated nodes)."""

    # -- helpers
    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name} {' '.join(p.args[-6:])} (exit {p.proc.poll()}):\n{p.logs()[-3000:]}"
                         for p in self.components())

    def wait(self, what: str, check: Callable[[], Any], timeout: float | None = None) -> Any:
        return wait_for(check, self.wait_timeout if timeout is None else timeout, what, self.diagnostics)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        """The real kubectl with this cluster's private HOME and KUBECONFIG; fails on a non-zero exit
        (with the components' logs) unless ``check`` is false."""
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        p = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env,
                           timeout=self.kubectl_timeout if timeout is None else timeout)
        if check:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}\n{p.stderr}\n{self.diagnostics()}"
        return p

    def kubectl_out(self, *args: str, stdin: str | None = None, timeout: float | None = None) -> str:
        """kubectl's standard output; fails on a non-zero exit."""
        return self.kubectl(*args, stdin=stdin, timeout=timeout).stdout

    def namespace(self) -> str:
        name = f"{self.ns_prefix}{uuid.uuid4().hex[:8]}"
        assert self.http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        return name


def clean(rt: DockerRuntime, nodes: Sequence[str]) -> None:
    """Removes the containers and volumes Docker kubelets of ``nodes`` left (best effort)."""
    for node in nodes:
        for c in rt.list({LABEL_NODE: node}):
            try:
                rt.remove(c.id, force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        for v in rt.list_volumes({LABEL_NODE: node}):
            try:
                rt.remove_volume(v.name)
            except Exception:  # noqa: BLE001 - best effort
                pass


class DockerCluster(ProcessCluster):
    """A ProcessCluster with a scheduler, a controller-manager and Docker kubelets on a test network."""

    def __init__(self, tmp: Path, rt: DockerRuntime, *, prefix: str, label: str, docker_nodes: Sequence[str],
                 capacity: str = CAPACITY, kubelet_flags: Sequence[str] = (), network_lower_half: bool = False,
                 controllers: str = "", cm_flags: Sequence[str] = (), scheduler_flags: Sequence[str] = (),
                 simulated: Sequence[Sequence[str]] = (), api_flags: Sequence[str] = (), ns_prefix: str = "t-",
                 kubectl_timeout: float = 120, wait_timeout: float = 60) -> None:
        """``prefix``/``label``: the network's name prefix and its ``io.minik8s.test`` label;
        ``network_lower_half``: the engine (and the kubelets' --pod-ip-range) use the lower half of
        the /24 only; ``simulated``: the argument lists of simulated kubelets (name first)."""
        self.rt = rt
        self.docker_nodes = tuple(docker_nodes)
        clean(rt, self.docker_nodes)  # what an earlier run left
        self.sims: dict[str, ComponentProcess] = {}
        self.network_name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.net = make_test_network(rt, self.network_name, {"io.minik8s.test": label},
                                     engine_lower_half=network_lower_half)
        try:
            super().__init__(tmp, api_flags=api_flags, capacity=capacity, ns_prefix=ns_prefix,
                             kubectl_timeout=kubectl_timeout, wait_timeout=wait_timeout)
            self.procs.append(self.component("scheduler", *LEASE, *scheduler_flags))
            self.procs.append(self.component("controller-manager", *LEASE, *cm_flags,
                                             *(("--controllers", controllers) if controllers else ())))
            for args in simulated:
                self.procs.append(self.kubelet(*args))
            self.network_lower_half = network_lower_half
            for node in self.docker_nodes:
                self.procs.append(self.docker_kubelet(node, *kubelet_flags))
        except BaseException:
            self.stop()
            raise

    def docker_kubelet(self, node: str, *flags: str, server: str | None = None) -> ComponentProcess:
        """A Docker kubelet for ``node`` on the test network (``server``: another way to the apiserver)."""
        ip_range = ("--pod-ip-range", lower_half(self.net.subnet)) if self.network_lower_half else ()
        return ComponentProcess.start(
            "kubelet", "--server", server or self.url, "--node-name", node, "--capacity", self.capacity,
            "--lease-renew-interval", "0.5", "--kubelet-port", str(free_port()), "--sync-interval", "0.5",
            "--pod-network-name", self.network_name, "--pod-network-subnet", self.net.subnet,
            *ip_range, "--root-dir", str(self.root_dir(node)), *flags)

    def root_dir(self, node: str) -> Path:
        return self.home / "kubelets" / node

    def simulated(self, name: str) -> ComponentProcess:
        """A simulated kubelet joining later (in ``sims``: a test may stop it to make its node leave)."""
        proc = self.kubelet(name)
        self.sims[name] = proc
        return proc

    def components(self) -> list[ComponentProcess]:
        return [*self.procs, *self.sims.values()]

    def stop_nodes(self) -> None:
        clean(self.rt, self.docker_nodes)
        try:
            self.rt.remove_network(self.network_name)
        except Exception:  # noqa: BLE001 - best effort
            pass

    def get(self, path: str) -> dict[str, Any] | None:
        r = self.http.get(path)
        return dict(r.json()) if r.status_code == 200 else None


def node_ready(c: ProcessCluster, node: str) -> bool:
    r = c.http.get(f"/api/v1/nodes/{node}")
    return r.status_code == 200 and any(x.get("type") == "Ready" and x.get("status") == "True"
                                        for x in (r.json().get("status") or {}).get("conditions") or [])


C = TypeVar("C", bound=ProcessCluster)
D = TypeVar("D", bound=DockerCluster)


@contextmanager
def started(cluster: Callable[[], C], what: str = "", ready: Callable[[C], Any] | None = None,
            timeout: float = 60) -> Iterator[C]:
    """For a module fixture: the cluster ``cluster()`` makes, once ``ready`` holds; stopped at the end."""
    c = cluster()
    try:
        if ready is not None:
            c.wait(what, lambda: ready(c), timeout)
        yield c
    finally:
        c.stop()


@contextmanager
def docker_started(cluster: Callable[[DockerRuntime], D], *, ready_nodes: Sequence[str] = (),
                   timeout: float = 60) -> Iterator[D]:
    """``started`` on a checked Docker runtime (tests.dockertest.checked_runtime: a CI run without
    the engine or the image fails), once ``ready_nodes`` are Ready; the runtime closed at the end."""
    rt = checked_runtime()
    try:
        with started(lambda: cluster(rt), f"the nodes {', '.join(ready_nodes)} Ready",
                     (lambda c: all(node_ready(c, n) for n in ready_nodes)) if ready_nodes else None, timeout) as c:
            yield c
    finally:
        rt.close()
