"""A whole cluster on this machine for the Service traffic tests (issue 11), driven through the
real API: etcd, apiserver, scheduler, controller-manager, two Docker kubelets, ``minik8s dns``,
``minik8s proxy`` and ``minik8s ingress``, each its own process.

Addresses (all this machine's own): a Docker network on a free /24 of the test pool; Docker gives
pods its lower half (``--pod-ip-range``), the apiserver's ClusterIPs come from its upper half
(``--service-cluster-ip-range``), the kube-dns ClusterIP is that range's 11th address; the DNS
server listens on the network's gateway (an address of this host that pods reach through the
bridge) on a free port and is reached by pods through the kube-dns ClusterIP (DNAT in the pod);
NodePorts, LoadBalancer addresses and the Ingress listen on 127.0.0.1 / 127.240.0.0/16.

Pods' commands run through ``docker exec`` in their containers (the traffic starts in the pod's
own network namespace), so a test sees what an application in the pod sees.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import httpx

from kubelet.runtime import LABEL_NODE, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_ROLE, ROLE_CONTAINER, DockerRuntime
from machinery.kubeconfig import write_kubeconfig
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd, free_port
from tests.dockertest import IMAGE, free_subnets
from tests.waiting import wait_for

LEASE = ("--lease-duration", "2", "--renew-deadline", "1.5", "--retry-period", "0.2")
NODE_TIMINGS = ("--node-monitor-period", "0.5", "--node-monitor-grace-period", "15",
                "--default-toleration-seconds", "300")


class TrafficCluster:
    def __init__(self, tmp: Path, rt: DockerRuntime, *, nodes: tuple[str, ...] = ("tr-1", "tr-2")) -> None:
        self.rt = rt
        self.nodes = nodes
        self.network_name = f"mk-traffic-{uuid.uuid4().hex[:6]}"
        self.net = self._network()
        subnet = ipaddress.IPv4Network(self.net.subnet)
        lower, upper = subnet.subnets(prefixlen_diff=1)
        self.pod_range, self.service_range = str(lower), str(upper)
        self.dns_ip = str(upper.network_address + 10)
        self.gateway = str(self.net.gateway or subnet.network_address + 1)
        self.etcd = Etcd.start()
        self.procs: list[ComponentProcess] = []
        self.home = tmp
        try:
            self.api = ApiServerProcess.start(self.etcd.url, "--service-cluster-ip-range", self.service_range)
            self.url = self.api.url
            self.kubeconfig = tmp / "kubeconfig"
            write_kubeconfig(self.kubeconfig, server=self.url)
            self.http = httpx.Client(base_url=self.url, timeout=30)
            self.dns_port = free_port()
            self.ingress_port = free_port()
            self.procs.append(ComponentProcess.start("scheduler", "--server", self.url, *LEASE))
            self.procs.append(ComponentProcess.start("controller-manager", "--server", self.url, *LEASE,
                                                     *NODE_TIMINGS))
            for node in nodes:
                self.procs.append(ComponentProcess.start(
                    "kubelet", "--server", self.url, "--node-name", node, "--capacity", "cpu=4,memory=8Gi,pods=30",
                    "--lease-renew-interval", "0.5", "--kubelet-port", str(free_port()), "--sync-interval", "0.5",
                    "--pod-network-name", self.network_name, "--pod-network-subnet", self.net.subnet,
                    "--pod-ip-range", self.pod_range, "--cluster-dns", self.dns_ip,
                    "--root-dir", str(tmp / "kubelets" / node)))
            self.procs.append(ComponentProcess.start(
                "dns", "--server", self.url, "--bind-address", self.gateway, "--port", str(self.dns_port),
                "--advertise-address", self.gateway, "--cluster-ip", self.dns_ip, "--health-port", "0",
                "--upstream", f"127.0.0.1:{free_port()}"))
            self.procs.append(ComponentProcess.start("proxy", "--server", self.url, "--health-port", "0"))
            self.procs.append(ComponentProcess.start(
                "ingress", "--server", self.url, "--bind-address", "127.0.0.1", "--port", str(self.ingress_port),
                "--health-port", "0"))
        except BaseException:
            self.stop()
            raise

    def _network(self) -> Any:
        for subnet in free_subnets():
            lower = str(next(ipaddress.IPv4Network(subnet).subnets(prefixlen_diff=1)))
            try:
                return self.rt.ensure_network(self.network_name, subnet, ip_range=lower,
                                              labels={"io.minik8s.test": "traffic"})
            except Exception:  # noqa: BLE001 - taken meanwhile: the next one
                continue
        raise AssertionError("no free /24 for the traffic test network")

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        for node in self.nodes:
            for c in self.rt.list({LABEL_NODE: node}):
                try:
                    self.rt.remove(c.id, force=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        if getattr(self, "api", None) is not None:
            self.api.stop()
        self.etcd.stop()
        try:
            self.rt.remove_network(self.network_name)
        except Exception:  # noqa: BLE001 - best effort
            pass

    # -- helpers
    def diagnostics(self) -> str:
        return "\n".join(f"--- {p.name} (exit {p.proc.poll()}):\n{p.logs()[-2500:]}" for p in self.procs)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_for(check, timeout, what, self.diagnostics)

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        p = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}\n{p.stderr}"
        return p

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", stdin=manifest)

    def namespace(self) -> str:
        name = f"tr-{uuid.uuid4().hex[:8]}"
        assert self.http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        return name

    def get(self, path: str) -> dict[str, Any]:
        r = self.http.get(path)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def ready_pods(self, ns: str, selector: str) -> list[dict[str, Any]]:
        items = self.http.get(f"/api/v1/namespaces/{ns}/pods", params={"labelSelector": selector}).json()["items"]
        return [p for p in items if any(c.get("type") == "Ready" and c.get("status") == "True"
                                        for c in (p.get("status") or {}).get("conditions") or [])]

    def container(self, ns: str, pod: str) -> str:
        found = [c for c in self.rt.list({LABEL_POD_NAMESPACE: ns, LABEL_POD_NAME: pod, LABEL_ROLE: ROLE_CONTAINER})
                 if c.running]
        assert found, f"no running container of pod {ns}/{pod}"
        return found[0].id

    def sh(self, ns: str, pod: str, script: str, *, timeout: float = 10) -> tuple[int, str, float]:
        """Runs ``sh -c script`` in the pod's (first running) container: exit code, output, seconds."""
        cid = self.container(ns, pod)
        start = time.monotonic()
        result = self.rt.exec(cid, ["sh", "-c", script], timeout=timeout)
        return result.exit_code, result.output.decode(errors="replace"), time.monotonic() - start


def web_deployment(ns: str, name: str = "web", replicas: int = 2, *, image: str = IMAGE) -> str:
    """Pods that answer HTTP on 8080 with their own name (busybox httpd), port named ``http``."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: {image}
        command: ["sh", "-c", "for d in /www /www/one /www/two; do mkdir -p $d && echo $HOSTNAME > $d/index.html; done && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        ports: [{{name: http, containerPort: 8080}}]
        readinessProbe:
          exec: {{command: ["test", "-f", "/tmp/ready"]}}
          periodSeconds: 1
          failureThreshold: 1
"""


def client_pod(ns: str, name: str = "client", *, image: str = IMAGE) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {ns}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: sh
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
"""
