"""The compose ``ha`` profile: three etcd members, two API servers behind HAProxy, a second scheduler
and controller-manager; killing one etcd member and one API server mid-rollout loses nothing.

The stack is test_compose's ``Stack`` (its own project, network, subnet, ports, node names and
directories; the local images through docker-compose.offline.yml, not rebuilt here) with
``--profile ha`` and the load balancer's port. Under a writer that creates ConfigMaps through the load balancer in a loop,
a Deployment's rollout starts; mid-way ``docker kill`` takes etcd member 1 (the first endpoint of
API server 1) and API server 1 (the one the default scheduler, controller-manager and kubelets
dial first). Then every ConfigMap whose create got a 2xx is there, the rollout completes (the
second scheduler and controller-manager take the leases if needed, the kubelets move to
apiserver-2), and etcd still has three members.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from cli.processes import free_port
from machinery.kubeconfig import load_config
from tests.dockertest import IMAGE
from tests.e2e.test_compose import Stack, require_engine_and_images, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

# What a rollout through the profile needs (test_compose covers the traffic components and gitops).
HA_SERVICES = ("etcd", "etcd-2", "etcd-3", "apiserver", "apiserver-2", "apiserver-lb", "scheduler", "scheduler-2",
               "controller-manager", "controller-manager-2", "node-1", "node-2")
DEPLOY = "/apis/apps/v1/namespaces/default/deployments"
CM = "/api/v1/namespaces/default/configmaps"


class HaStack(Stack):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.lb_port = free_port()
        self.env["MINIK8S_HA_API_PORT"] = str(self.lb_port)
        self.compose_cmd += ["--profile", "ha"]
        self.lb_url = f"https://127.0.0.1:{self.lb_port}"

    @functools.cached_property
    def http(self) -> httpx.Client:
        """The admin's credential (the kubeconfig `up` wrote), through the load balancer."""
        return httpx.Client(base_url=self.lb_url, timeout=20, verify=load_config(kubeconfig=str(self.kubeconfig)).verify)

    def health(self) -> dict[str, str]:
        out = {}
        for s in HA_SERVICES:
            cid = self.container(s)
            out[s] = self.docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}"
                                 "{{.State.Status}}{{end}}", cid).strip() if cid else "missing"
        out["apiserver-lb"] = "healthy" if out["apiserver-lb"] == "running" else out["apiserver-lb"]
        return out

    def etcd_members(self) -> list[str]:
        out = self.docker("exec", self.container("etcd-2"), "/usr/local/bin/etcdctl",
                          "--endpoints=http://127.0.0.1:2379", "member", "list")
        return [line for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaStack]:
    require_engine_and_images()
    s = HaStack(tmp_path_factory.mktemp("compose-ha"))
    try:
        yield s
    finally:
        s.compose("down", "-v", "--timeout", "20", check=False)
        for node in (s.node1, s.node2):
            for c in s.pod_containers(node):
                subprocess.run(["docker", "rm", "-f", c["Id"]], capture_output=True)
        subprocess.run(["docker", "network", "rm", s.network], capture_output=True)
        volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter",
                                  f"label=com.docker.compose.project={s.project}"], capture_output=True, text=True)
        for v in volumes.stdout.split():
            subprocess.run(["docker", "volume", "rm", v], capture_output=True)
        if "http" in s.__dict__:
            s.http.close()


def _deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "ha-web"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "ha-web"}},
                     "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": {"app": "ha-web"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                      {"name": "web", "image": IMAGE, "command": ["sleep", "3600"],
                                       "env": [{"name": "VERSION", "value": "1"}]}]}}}}


def _rolled_out(http: httpx.Client, version: str) -> bool:
    d = http.get(f"{DEPLOY}/ha-web").json()
    st, spec = d.get("status") or {}, d["spec"]
    env = spec["template"]["spec"]["containers"][0]["env"][0]["value"]
    return (env == version and st.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and st.get("updatedReplicas") == st.get("replicas") == st.get("availableReplicas") == spec["replicas"])


class Writer(threading.Thread):
    """Creates ConfigMaps through the load balancer until stopped; remembers which got a 2xx."""

    def __init__(self, stack: HaStack) -> None:
        super().__init__(daemon=True)
        self.stack, self.failed = stack, 0
        self.acked: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        config = load_config(kubeconfig=str(self.stack.kubeconfig))
        with httpx.Client(base_url=self.stack.lb_url, timeout=10, verify=config.verify) as http:
            i = 0
            while not self.done.is_set():
                name = f"w-{i}"
                i += 1
                try:
                    r = http.post(CM, json={"metadata": {"name": name}, "data": {"i": str(i)}})
                    if r.status_code < 300:
                        self.acked.append(name)
                    else:
                        self.failed += 1
                except httpx.HTTPError:
                    self.failed += 1
                time.sleep(0.02)


@pytest.mark.timeout(600)
def test_ha_profile_up_with_three_etcd_members(ha: HaStack) -> None:
    # The images are scripts/build-images --offline's (test_compose builds the same tag from the source);
    # `up` builds only what is missing, which keeps this test within a few minutes.
    ha.compose("up", "-d", timeout=400)
    wait_for(ha.all_healthy, 240, "the ha profile's services healthy", lambda: f"{ha.health()}\n{ha.diagnostics()}")
    members = ha.etcd_members()
    assert len(members) == 3 and all("started" in m for m in members), members
    assert ha.http.get("/readyz").text == "ok"


@pytest.mark.timeout(400)
def test_killing_an_etcd_member_and_an_api_server_mid_rollout_loses_nothing(ha: HaStack) -> None:
    http = ha.http
    r = http.post(DEPLOY, json=_deployment(3))
    assert r.status_code == 201, r.text
    wait_for(lambda: _rolled_out(http, "1"), 120, "the first rollout", ha.diagnostics)
    writer = Writer(ha)
    writer.start()
    try:
        time.sleep(2)
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "VERSION", "value": "2"}]}]}}}}
        r = http.patch(f"{DEPLOY}/ha-web", json=patch, headers={"Content-Type": "application/strategic-merge-patch+json"})
        assert r.status_code == 200, r.text
        time.sleep(1)
        started = time.monotonic()
        ha.docker("kill", ha.container("etcd"))
        ha.docker("kill", ha.container("apiserver"))
        wait_for(lambda: _rolled_out(http, "2"), 150, "the rollout after the kills",
                 lambda: f"{http.get(f'{DEPLOY}/ha-web').text}\n{ha.diagnostics()}")
        converged = time.monotonic() - started
        time.sleep(2)
    finally:
        writer.done.set()
        writer.join(20)
    assert len(writer.acked) > 50, f"only {len(writer.acked)} creates acknowledged ({writer.failed} failed)"
    names = {i["metadata"]["name"] for i in http.get(CM).json()["items"]}
    missing = [n for n in writer.acked if n not in names]
    assert not missing, f"{len(missing)} acknowledged ConfigMaps are gone: {missing[:10]}"
    print(f"ha: rollout converged {converged:.1f} s after the kills; {len(writer.acked)} creates acknowledged, "
          f"{writer.failed} refused or failed meanwhile")
