"""ResourceQuota and LimitRange end to end: real etcd, apiserver and controller-manager (the resource
quota controller) as separate processes, driven by the real kubectl.

No scheduler or kubelet: pods stay Pending, which is all quota needs (a pending pod counts). A
pod "finishes" by a write of its status, as a kubelet would report it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from cli.mkctl import app as mkctl_app
from machinery.kubeconfig import write_kubeconfig
from tests.cluster import ApiServerProcess, ComponentProcess, Etcd
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


class Cluster:
    def __init__(self, tmp: Path) -> None:
        self.etcd = Etcd.start()
        self.api = ApiServerProcess.start(self.etcd.url)
        self.kubeconfig = tmp / "kubeconfig"
        write_kubeconfig(self.kubeconfig, server=self.api.url)
        self.home = tmp
        self.http = httpx.Client(base_url=self.api.url, timeout=30)
        self.cm = ComponentProcess.start("controller-manager", "--server", self.api.url, "--no-leader-elect",
                                         "--controllers", "resourcequota")

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "KUBECONFIG": str(self.kubeconfig)}
        p = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=60)
        if check:
            assert p.returncode == 0, f"kubectl {' '.join(args)}: {p.stdout}\n{p.stderr}\n{self.cm.logs()[-3000:]}"
        return p

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
        return wait_for(check, timeout, what, lambda: self.cm.logs()[-3000:])

    def namespace(self) -> str:
        name = f"q-{uuid.uuid4().hex[:8]}"
        assert self.http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
        return name

    def used(self, ns: str, name: str) -> dict[str, str]:
        quota = self.http.get(f"/api/v1/namespaces/{ns}/resourcequotas/{name}").json()
        return dict((quota.get("status") or {}).get("used") or {})

    def wait_used(self, ns: str, name: str, expected: dict[str, str]) -> None:
        self.wait(f"quota {name} used {expected}", lambda: self.used(ns, name) == expected)

    def stop(self) -> None:
        self.cm.stop()
        self.http.close()
        self.api.stop()
        self.etcd.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("quota"))
    try:
        yield c
    finally:
        c.stop()


def pod(name: str, resources: dict[str, Any] | None = None) -> str:
    container: dict[str, Any] = {"name": "app", "image": "busybox"}
    if resources is not None:
        container["resources"] = resources
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [container]}})


def test_pod_quota_refuses_the_third_and_follows_deletes(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "quota", "q", "--hard=pods=2,configmaps=5", "-n", ns)
    cluster.wait_used(ns, "q", {"pods": "0", "configmaps": "0"})
    for name in ("p1", "p2"):
        cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod(name))
    assert cluster.used(ns, "q")["pods"] == "2"
    third = cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("p3"), check=False)
    assert third.returncode == 1
    assert third.stderr.strip() == ('Error from server (Forbidden): error when creating "STDIN": pods "p3" is '
                                    'forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2')
    # A delete frees the slot (the controller recalculates), a finished pod too.
    cluster.kubectl("delete", "pod", "p1", "-n", ns)
    cluster.wait_used(ns, "q", {"pods": "1", "configmaps": "0"})
    cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("p3"))
    assert cluster.used(ns, "q")["pods"] == "2"
    p2 = cluster.http.get(f"/api/v1/namespaces/{ns}/pods/p2").json()
    p2["status"]["phase"] = "Succeeded"
    assert cluster.http.put(f"/api/v1/namespaces/{ns}/pods/p2/status", json=p2).status_code == 200
    cluster.wait_used(ns, "q", {"pods": "1", "configmaps": "0"})
    # The quota's limits changing is seen too.
    cluster.kubectl("patch", "quota", "q", "-n", ns, "-p", '{"spec":{"hard":{"pods":"3"}}}')
    cluster.wait("status.hard follows spec.hard", lambda: cluster.http.get(
        f"/api/v1/namespaces/{ns}/resourcequotas/q").json()["status"]["hard"]["pods"] == "3")


def test_count_quota_of_another_group(cluster: Cluster) -> None:
    """count/deployments.apps: the controller finds the resource through discovery and follows it."""
    ns = cluster.namespace()
    cluster.kubectl("create", "quota", "deploys", "--hard=count/deployments.apps=1", "-n", ns)
    cluster.wait_used(ns, "deploys", {"count/deployments.apps": "0"})
    cluster.kubectl("create", "deployment", "d1", "--image=busybox", "-n", ns)
    second = cluster.kubectl("create", "deployment", "d2", "--image=busybox", "-n", ns, check=False)
    assert second.returncode == 1
    assert second.stderr.strip() == (
        'error: failed to create deployment: deployments.apps "d2" is forbidden: exceeded quota: deploys, '
        'requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1')
    cluster.kubectl("delete", "deployment", "d1", "-n", ns)
    cluster.wait_used(ns, "deploys", {"count/deployments.apps": "0"})


def test_parallel_creates_for_the_last_slot(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "quota", "one", "--hard=pods=1", "-n", ns)
    cluster.wait_used(ns, "one", {"pods": "0"})

    def create(i: int) -> int:
        return cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod(f"racer-{i}"), check=False).returncode

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(create, range(6)))
    assert sorted(codes) == [0, 1, 1, 1, 1, 1], codes
    assert len(cluster.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]) == 1
    assert cluster.used(ns, "one") == {"pods": "1"}


def test_two_apiservers_share_the_last_slot(cluster: Cluster) -> None:
    """The charge is a compare-and-swap in etcd: creates spread over two apiservers (each with its
    own caches) still cannot both take the last slot."""
    ns = cluster.namespace()
    cluster.kubectl("create", "quota", "two", "--hard=pods=2", "-n", ns)
    cluster.wait_used(ns, "two", {"pods": "0"})
    cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("first"))
    second = ApiServerProcess.start(cluster.etcd.url)
    try:
        async def race() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                answers = await asyncio.gather(*(
                    client.post(f"{url}/api/v1/namespaces/{ns}/pods", json=json.loads(pod(f"racer-{i}")))
                    for i, url in enumerate([cluster.api.url, second.url] * 5)))
            return [a.status_code for a in answers]

        codes = asyncio.run(race())
    finally:
        second.stop()
    assert sorted(codes) == [201] + [403] * 9, codes
    assert len(cluster.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]) == 2
    assert cluster.used(ns, "two") == {"pods": "2"}


def test_compute_quota_messages(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("create", "quota", "compute", "--hard=requests.cpu=1,requests.memory=1Gi,limits.cpu=2", "-n", ns)
    cluster.wait_used(ns, "compute", {"requests.cpu": "0", "requests.memory": "0", "limits.cpu": "0"})
    bare = cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("bare"), check=False)
    assert bare.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "bare" is forbidden: failed quota: '
        'compute: must specify limits.cpu for: app; requests.cpu for: app; requests.memory for: app')
    sized = {"requests": {"cpu": "600m", "memory": "256Mi"}, "limits": {"cpu": "1"}}
    cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("one", sized))
    big = cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("two", sized), check=False)
    assert big.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "two" is forbidden: exceeded quota: '
        'compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1')
    out = cluster.kubectl("get", "quota", "-n", ns).stdout.splitlines()
    assert out[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert out[1].split(None, 2)[0] == "compute"
    assert out[1].endswith("requests.cpu: 600m/1, requests.memory: 256Mi/1Gi   limits.cpu: 1/2")


def test_limit_range_defaults_and_bounds(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "cpu-bounds"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"},
                             "defaultRequest": {"cpu": "200m", "memory": "64Mi"},
                             "max": {"cpu": "800m"}, "min": {"cpu": "100m"}}]}}))
    cluster.kubectl("create", "-n", ns, "-f", "-", stdin=pod("defaulted"))
    got = json.loads(cluster.kubectl("get", "pod", "defaulted", "-n", ns, "-o", "json").stdout)
    assert got["spec"]["containers"][0]["resources"] == {
        "limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "200m", "memory": "64Mi"}}
    too_big = cluster.kubectl("create", "-n", ns, "-f", "-", check=False,
                              stdin=pod("too-big", {"limits": {"cpu": "1500m"}, "requests": {"cpu": "500m"}}))
    assert too_big.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "too-big" is forbidden: '
        'maximum cpu usage per Container is 800m, but limit is 1500m.')
    too_small = cluster.kubectl("create", "-n", ns, "-f", "-", check=False,
                                stdin=pod("too-small", {"requests": {"cpu": "50m"}}))
    assert too_small.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": pods "too-small" is forbidden: '
        'minimum cpu usage per Container is 100m, but request is 50m.')
    # kubectl get quota,limits: both kinds' columns in one listing
    cluster.kubectl("create", "quota", "counts", "--hard=pods=10,limits.memory=1Gi,requests.cpu=2",
                    "--scopes=NotTerminating,NotBestEffort", "-n", ns)
    cluster.wait_used(ns, "counts", {"pods": "1", "limits.memory": "128Mi", "requests.cpu": "200m"})
    out = cluster.kubectl("get", "quota,limits", "-n", ns).stdout
    blocks = [b.splitlines() for b in out.strip().split("\n\n")]
    assert blocks[0][0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    assert blocks[0][1].split()[0] == "resourcequota/counts"
    assert blocks[0][1].rstrip().endswith("pods: 1/10, requests.cpu: 200m/2   limits.memory: 128Mi/1Gi")
    assert blocks[1][0].split() == ["NAME", "CREATED", "AT"]
    assert blocks[1][1].split()[0] == "limitrange/cpu-bounds"
    # mkctl describes both as kubectl does, character for character; but kubectl lists a limit's
    # resources in Go map order (describeLimitRange ranges over a map), so that table's rows are
    # compared in any order (CI saw memory before cpu).
    for kind, name in (("limitrange", "cpu-bounds"), ("quota", "counts")):
        expected = cluster.kubectl("describe", kind, name, "-n", ns).stdout
        r = CliRunner().invoke(mkctl_app, ["--server", cluster.api.url, "-n", ns, "describe", kind, name])
        if kind == "limitrange":
            assert _rows_in_any_order(r.output) == _rows_in_any_order(expected), (r.output, expected)
        else:
            assert r.output == expected, (r.output, expected)


def _rows_in_any_order(described: str) -> tuple[list[str], list[str]]:
    """The lines up to the table's ``----`` rule as they are, then the table's rows sorted."""
    lines = described.splitlines(keepends=True)
    rule = next(i for i, line in enumerate(lines) if line.startswith("----"))
    return lines[:rule + 1], sorted(lines[rule + 1:])


def test_mkctl_create_quota(cluster: Cluster) -> None:
    ns = cluster.namespace()
    runner = CliRunner()
    r = runner.invoke(mkctl_app, ["--server", cluster.api.url, "-n", ns, "create", "quota", "be",
                                  "--hard=pods=3", "--scopes=BestEffort"])
    assert r.exit_code == 0 and r.output == "resourcequota/be created\n", r.output
    got = cluster.http.get(f"/api/v1/namespaces/{ns}/resourcequotas/be").json()
    assert got["spec"] == {"hard": {"pods": "3"}, "scopes": ["BestEffort"]}
    cluster.wait_used(ns, "be", {"pods": "0"})
    r = runner.invoke(mkctl_app, ["--server", cluster.api.url, "-n", ns, "get", "quota"])
    assert r.output.splitlines()[0].split() == ["NAME", "AGE", "REQUEST", "LIMIT"], r.output
    assert r.output.splitlines()[1].split()[0] == "be" and "pods: 0/3" in r.output
    r = runner.invoke(mkctl_app, ["--server", cluster.api.url, "-n", ns, "create", "quota", "bad", "--hard=pods=x"])
    assert r.exit_code == 1 and 'ResourceQuota "bad" is invalid' in r.output, r.output
