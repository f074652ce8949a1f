"""``minik8s up``: a whole cluster on this machine as child processes.

Data flow: etcd (local binary, data under ``--data-dir``) -> ``minik8s apiserver`` on
127.0.0.1:PORT (8080 by default: the address kubectl tries when it has no kubeconfig) ->
scheduler, controller-manager and a simulated kubelet holding ``--nodes`` nodes -> a kubeconfig
written for kubectl and mkctl -> a summary -> wait; Ctrl-C (or SIGTERM) stops every child in
reverse order, so nothing is left running.

The nodes are simulated (pods run no containers) until the Docker kubelet lands; gitops joins
with its issue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from machinery.kubeconfig import write_kubeconfig

from .processes import component_command, etcd_command, free_port, stop, wait_http


@dataclass
class UpSettings:
    port: int = 8080
    data_dir: Path = field(default_factory=lambda: Path("~/.minik8s").expanduser())
    kubeconfig: Path | None = None  # default: <data_dir>/kubeconfig, and ~/.kube/config when absent
    fresh: bool = False
    nodes: int = 1


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path


class LocalCluster:
    def __init__(self, settings: UpSettings) -> None:
        self.settings = settings
        self.children: list[Child] = []

    def _spawn(self, name: str, args: list[str]) -> Child:
        log = self.settings.data_dir / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
        child = Child(name, proc, log)
        self.children.append(child)
        return child

    def start(self) -> dict[str, str]:
        s = self.settings
        data = s.data_dir / "etcd"
        if s.fresh and data.exists():
            import shutil
            shutil.rmtree(data)
        etcd_url = f"http://127.0.0.1:{free_port()}"
        etcd = self._spawn("etcd", etcd_command(data_dir=data, client_url=etcd_url, peer_port=free_port()))
        wait_http(f"{etcd_url}/health", etcd.proc, etcd.log)
        server = f"http://127.0.0.1:{s.port}"
        api = self._spawn("apiserver", component_command("apiserver", "--etcd-servers", etcd_url, "--port", str(s.port)))
        wait_http(f"{server}/readyz", api.proc, api.log)
        self._spawn("scheduler", component_command("scheduler", "--server", server))
        self._spawn("controller-manager", component_command("controller-manager", "--server", server))
        if s.nodes > 0:
            self._spawn("kubelet", component_command("kubelet", "--simulated", "--server", server,
                                                     "--node-name", "minik8s-node", "--count", str(s.nodes)))
        kubeconfig = s.kubeconfig or s.data_dir / "kubeconfig"
        write_kubeconfig(kubeconfig, server=server)
        default = Path("~/.kube/config").expanduser()
        if s.kubeconfig is None and not default.exists():
            write_kubeconfig(default, server=server)
        return {"apiserver": server, "etcd": etcd_url, "nodes": f"{s.nodes} simulated (minik8s-node-N)",
                "kubeconfig": str(kubeconfig), "logs": str(s.data_dir / "logs")}

    def failed(self) -> Child | None:
        return next((c for c in self.children if c.proc.poll() is not None), None)

    def stop(self) -> None:
        for child in reversed(self.children):
            stop(child.proc)
        self.children.clear()


def run(settings: UpSettings) -> int:
    cluster = LocalCluster(settings)
    stopping = False

    def _terminate(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _terminate)
    try:
        info = cluster.start()
        print("minik8s is up:")
        for k, v in info.items():
            print(f"  {k + ':':12} {v}")
        print(f"\n  export KUBECONFIG={info['kubeconfig']}   # or use kubectl/mkctl as they are: "
              f"{info['apiserver']} is their default")
        print("  kubectl get namespaces\n\nPress Ctrl-C to stop.", flush=True)
        while not stopping:
            dead = cluster.failed()
            if dead:
                print(f"{dead.name} exited with {dead.proc.returncode}; see {dead.log}", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        print("stopping minik8s...", flush=True)
        cluster.stop()
    return 0
