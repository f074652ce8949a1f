"""The simulated kubelet against the real apiserver: as a real ``minik8s kubelet --simulated``
process (nodes, leases, pods Running and deleted, restart) and in process (a foreign node's pods
are left alone, the uid precondition). Every test uses its own node names and removes its Nodes
and Leases afterwards, so other tests sharing the apiserver never see them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
import uuid
from datetime import datetime
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import pytest

from kubelet.simulated import SimulatedKubelet, SimulatedKubeletSettings
from machinery import errors
from machinery.client import ApiClient
from tests.cluster import ApiServerProcess, ComponentProcess

T = TypeVar("T")
LEASES = ("coordination.k8s.io/v1", "leases")


async def eventually(fn: Callable[[], Awaitable[T | None]], *, what: str, timeout: float = 20.0,
                     proc: ComponentProcess | None = None) -> T:
    """Poll ``fn`` until it returns something truthy; fail with ``what`` (and the kubelet's log)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        if proc is not None and proc.proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    logs = f"\n--- kubelet log ---\n{proc.logs()[-4000:]}" if proc is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}{logs}")


@pytest.fixture
async def client(apiserver: ApiServerProcess) -> AsyncIterator[ApiClient]:
    async with ApiClient(apiserver.url, timeout=60) as c:
        yield c


async def remove_nodes(client: ApiClient, names: list[str]) -> None:
    sem = asyncio.Semaphore(32)

    async def one(name: str) -> None:
        async with sem:
            for res, ns in (("nodes", None), (LEASES, "kube-node-lease")):
                try:
                    await client.delete(res, name, namespace=ns)
                except errors.NotFoundError:
                    pass

    await asyncio.gather(*(one(n) for n in names))


def base_name() -> str:
    return f"sim{uuid.uuid4().hex[:6]}"


def start_kubelet(url: str, base: str, *args: str) -> ComponentProcess:
    return ComponentProcess.start("kubelet", "--simulated", "--server", url, "--node-name", base, *args)


def ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def get_or_none(client: ApiClient, *args: Any, **kw: Any) -> dict[str, Any] | None:
    try:
        return await client.get(*args, **kw)
    except errors.NotFoundError:
        return None


def pod(name: str, node: str, *, images: tuple[str, ...] = ("nginx:1.27",)) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "containers": [{"name": f"c{i}", "image": img} for i, img in enumerate(images)]}}


def is_running(p: dict[str, Any] | None) -> bool:
    if not p:
        return False
    status = p.get("status") or {}
    conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
    return status.get("phase") == "Running" and conds.get("Ready") == "True" and bool(status.get("podIP"))


# ---------------------------------------------------------------------------------- as a process
async def test_three_nodes_leases_pods_delete_and_restart(apiserver: ApiServerProcess, client: ApiClient,
                                                          namespace: str) -> None:
    base = base_name()
    names = [f"{base}-{i}" for i in range(3)]
    args = ("--count", "3", "--capacity", "cpu=4,memory=8Gi,pods=20", "--lease-renew-interval", "0.5")
    proc = start_kubelet(apiserver.url, base, *args)
    try:
        async def nodes_ready() -> list[dict[str, Any]] | None:
            got = [await get_or_none(client, "nodes", n) for n in names]
            return got if all(n is not None and ready(n) for n in got) else None  # type: ignore[return-value]

        nodes = await eventually(nodes_ready, what="3 Ready nodes", proc=proc)
        cidrs, ips = {}, set()
        for node in nodes:
            name = node["metadata"]["name"]
            assert node["status"]["capacity"] == {"cpu": "4", "memory": "8Gi", "pods": "20"}
            assert node["status"]["allocatable"] == node["status"]["capacity"]
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
            assert node["metadata"]["labels"]["minik8s.io/simulated"] == "true"
            assert node["status"]["nodeInfo"]["kubeletVersion"] == "v1.32.0-minik8s"
            cond = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            assert cond["reason"] == "KubeletReady" and cond["message"] == "kubelet is posting ready status"
            cidrs[name] = ipaddress.ip_network(node["spec"]["podCIDR"])
            (internal,) = [a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP"]
            ips.add(internal)
        assert len(ips) == 3 and len(set(cidrs.values())) == 3

        # leases: one per node, owned by it, renewed every 0.5 s
        async def all_leases() -> list[dict[str, Any]] | None:
            got = [await get_or_none(client, LEASES, n, namespace="kube-node-lease") for n in names]
            return got if all(got) else None  # type: ignore[return-value]

        # a Node can show Ready a moment before its Lease is written (as with a real kubelet)
        leases = await eventually(all_leases, what="3 leases", timeout=10, proc=proc)
        for lease, node in zip(leases, nodes):
            assert lease["spec"]["holderIdentity"] == node["metadata"]["name"]
            assert lease["spec"]["leaseDurationSeconds"] == 40
            assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]

        async def renewed() -> bool:
            now = [await client.get(LEASES, n, namespace="kube-node-lease") for n in names]
            return all(b["spec"]["renewTime"] > a["spec"]["renewTime"] for a, b in zip(leases, now))

        await eventually(renewed, what="every lease renewed", timeout=5, proc=proc)

        # a pod bound to one of them runs, with an IP from that node's CIDR
        await client.create("pods", pod("web", names[1], images=("nginx:1.27", "busybox")), namespace=namespace)
        web = await eventually(lambda: _running(client, "web", namespace), what="web Running", proc=proc)
        status = web["status"]
        assert ipaddress.ip_address(status["podIP"]) in cidrs[names[1]]
        assert status["podIPs"] == [{"ip": status["podIP"]}]
        assert status["hostIP"] in ips and status["startTime"]
        assert {c["type"] for c in status["conditions"]} >= {"PodScheduled", "Initialized", "ContainersReady", "Ready"}
        assert [c["name"] for c in status["containerStatuses"]] == ["c0", "c1"]
        for cs in status["containerStatuses"]:
            assert cs["ready"] and cs["started"] and cs["restartCount"] == 0 and "running" in cs["state"]
            assert cs["imageID"] == f"simulated://{cs['image']}"
            assert cs["containerID"] == f"simulated://{web['metadata']['uid']}-{cs['name']}"
        # written once: a later pod going Running does not rewrite this one
        await client.create("pods", pod("web2", names[1]), namespace=namespace)
        web2 = await eventually(lambda: _running(client, "web2", namespace), what="web2 Running", proc=proc)
        assert web2["status"]["podIP"] != status["podIP"]
        assert (await client.get("pods", "web", namespace=namespace))["metadata"]["resourceVersion"] == \
            web["metadata"]["resourceVersion"]

        # a graceful delete (default 30 s grace) is finished by the kubelet at once
        await client.delete("pods", "web2", namespace=namespace)
        await eventually(lambda: _gone(client, "web2", namespace), what="web2 deleted", timeout=10, proc=proc)

        # restart: nodes and pods stay, web keeps its IP, and a new pod does not get it
        proc.stop()
        assert proc.proc.returncode == 0, proc.logs()[-3000:]
        proc = start_kubelet(apiserver.url, base, *args)
        await client.create("pods", pod("web3", names[1]), namespace=namespace)
        web3 = await eventually(lambda: _running(client, "web3", namespace), what="web3 Running after restart",
                                proc=proc)
        again = await client.get("pods", "web", namespace=namespace)
        assert is_running(again) and again["status"]["podIP"] == status["podIP"]
        assert again["metadata"]["resourceVersion"] == web["metadata"]["resourceVersion"]  # not rewritten
        assert web3["status"]["podIP"] not in (status["podIP"],)
        for name in names:
            node = await client.get("nodes", name)
            assert ready(node) and ipaddress.ip_network(node["spec"]["podCIDR"]) == cidrs[name]
        assert "registered 3 node(s)" in proc.logs()
    finally:
        proc.stop()
        await remove_nodes(client, names)


async def _running(client: ApiClient, name: str, namespace: str) -> dict[str, Any] | None:
    p = await get_or_none(client, "pods", name, namespace=namespace)
    return p if is_running(p) else None


async def _gone(client: ApiClient, name: str, namespace: str) -> bool:
    return await get_or_none(client, "pods", name, namespace=namespace) is None


async def test_restart_reasserts_ready(apiserver: ApiServerProcess, client: ApiClient) -> None:
    """A Node the node lifecycle controller marked Unknown is Ready again once its kubelet is back."""
    name = base_name()
    proc = start_kubelet(apiserver.url, name, "--lease-renew-interval", "0.5")
    try:
        node = await eventually(lambda: _ready_node(client, name), what="node Ready", proc=proc)
        conds = [dict(c, status="Unknown", reason="NodeStatusUnknown") if c["type"] == "Ready" else c
                 for c in node["status"]["conditions"]]
        await client.patch("nodes", name, {"status": {"conditions": conds}}, subresource="status")
        assert not ready(await client.get("nodes", name))
        await eventually(lambda: _ready_node(client, name), what="Ready re-asserted by the running kubelet",
                         timeout=5, proc=proc)
        proc.kill()
        await client.patch("nodes", name, {"status": {"conditions": conds}}, subresource="status")
        proc = start_kubelet(apiserver.url, name, "--lease-renew-interval", "0.5")
        await eventually(lambda: _ready_node(client, name), what="Ready re-asserted on restart", proc=proc)
    finally:
        proc.stop()
        await remove_nodes(client, [name])


async def _ready_node(client: ApiClient, name: str) -> dict[str, Any] | None:
    node = await get_or_none(client, "nodes", name)
    return node if node is not None and ready(node) else None


# ---------------------------------------------------------------------------------- in process
async def test_foreign_pods_untouched_and_uid_precondition(apiserver: ApiServerProcess, client: ApiClient,
                                                           namespace: str) -> None:
    mine, theirs = base_name(), base_name()
    settings = SimulatedKubeletSettings(server=apiserver.url, node_name=mine, lease_renew_interval=0.5)
    kubelet = SimulatedKubelet(client, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(kubelet.run(stop))
    try:
        await asyncio.wait_for(kubelet.registered.wait(), 20)
        # bound to a node of another kubelet (it does not even exist): left alone, even when deleted
        await client.create("pods", pod("foreign", theirs), namespace=namespace)
        await client.create("pods", pod("local", mine), namespace=namespace)
        await eventually(lambda: _running(client, "local", namespace), what="local Running")
        # the informer delivers events in order: "foreign" came before "local" and was skipped
        foreign = await client.get("pods", "foreign", namespace=namespace)
        assert foreign["status"]["phase"] == "Pending" and "podIP" not in foreign["status"]
        await client.delete("pods", "foreign", namespace=namespace)
        await client.delete("pods", "local", namespace=namespace)
        await eventually(lambda: _gone(client, "local", namespace), what="local deleted")
        foreign = await client.get("pods", "foreign", namespace=namespace)
        assert foreign["metadata"]["deletionTimestamp"]  # still waiting for its own kubelet
        assert kubelet.ipam.allocated(mine) == {}

        # kubectl's view (the server-side Table): READY 2/2, STATUS Running, the pod IP
        await client.create("pods", pod("shown", mine, images=("nginx", "redis")), namespace=namespace)
        shown = await eventually(lambda: _running(client, "shown", namespace), what="shown Running")
        table = await client.request("GET", f"/api/v1/namespaces/{namespace}/pods/shown",
                                     headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"},
                                     params={"includeObject": "None"})
        columns = [c["name"] for c in table["columnDefinitions"]]
        row = dict(zip(columns, table["rows"][0]["cells"]))
        assert (row["Ready"], row["Status"], row["Restarts"]) == ("2/2", "Running", "0")
        if "IP" in row:
            assert row["IP"] == shown["status"]["podIP"]

        # the uid precondition: finishing the delete of an old pod never removes a new one that
        # took its name (what a reconcile working from a lagging cache would attempt)
        assert not await kubelet.finish_delete(namespace, "shown", uid="the-old-pods-uid")
        assert (await client.get("pods", "shown", namespace=namespace))["metadata"]["uid"] == shown["metadata"]["uid"]
        assert await kubelet.finish_delete(namespace, "shown", uid=shown["metadata"]["uid"])
        kubelet.pods.check_mutations()  # raises if the kubelet changed a cached pod (detector on)
        kubelet.nodes.check_mutations()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await remove_nodes(client, [mine])


async def test_finite_containers_finish_their_pods(apiserver: ApiServerProcess, client: ApiClient,
                                                  namespace: str) -> None:
    """Pods finish after the exit-after annotation or a finite command; restartPolicy decides what follows."""
    node = base_name()
    settings = SimulatedKubeletSettings(server=apiserver.url, node_name=node, lease_renew_interval=0.5)
    kubelet = SimulatedKubelet(client, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(kubelet.run(stop))

    def finite(name: str, *, policy: str, annotations: dict[str, str] | None = None,
               command: list[str] | None = None) -> dict[str, Any]:
        body = pod(name, node)
        body["metadata"]["annotations"] = annotations or {}
        body["spec"]["restartPolicy"] = policy
        if command:
            body["spec"]["containers"][0]["command"] = command
        return body

    async def phase_of(name: str, wanted: str) -> dict[str, Any] | None:
        found = await get_or_none(client, "pods", name, namespace=namespace)
        return found if found and found["status"].get("phase") == wanted else None

    try:
        await asyncio.wait_for(kubelet.registered.wait(), 20)
        started = time.monotonic()
        await client.create("pods", finite("ok", policy="Never", annotations={
            "simulated.minik8s.io/exit-after": "1s"}), namespace=namespace)
        await client.create("pods", finite("bad", policy="Never", command=["sh", "-c", "sleep 0.5; exit 3"]),
                            namespace=namespace)
        await client.create("pods", finite("retry", policy="OnFailure", annotations={
            "simulated.minik8s.io/exit-after": "200ms", "simulated.minik8s.io/exit-code": "1",
            "simulated.minik8s.io/exit-restart-delay": "200ms"}), namespace=namespace)
        ok = await eventually(lambda: phase_of("ok", "Succeeded"), what="ok Succeeded")
        # Container timestamps have a precision of one second, as the kubelet's: the run ends 1 s
        # after the recorded startedAt, which may be up to a second before the real start.
        assert time.monotonic() - started > 0.0
        terminated = ok["status"]["containerStatuses"][0]["state"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
        assert (datetime.fromisoformat(terminated["finishedAt"].replace("Z", "+00:00"))
                - datetime.fromisoformat(terminated["startedAt"].replace("Z", "+00:00"))).total_seconds() == 1.0
        ready = {c["type"]: c for c in ok["status"]["conditions"]}["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")
        bad = await eventually(lambda: phase_of("bad", "Failed"), what="bad Failed")
        assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
        assert bad["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Error"

        async def restarted() -> dict[str, Any] | None:
            found = await client.get("pods", "retry", namespace=namespace)
            statuses = found["status"].get("containerStatuses") or [{}]
            return found if int(statuses[0].get("restartCount") or 0) >= 2 else None

        retry = await eventually(restarted, what="retry restarted twice")
        assert retry["status"]["phase"] == "Running"
        assert retry["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
        kubelet.pods.check_mutations()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await remove_nodes(client, [node])


# ---------------------------------------------------------------------------------- scale
# 1000 nodes take ~35 s to register here (the apiserver's ~60 writes/s on 2 cores is the limit)
# plus as long to clean up, so the suite runs 300 (more than the 256 /24s of the default cluster
# CIDR: the pod CIDRs shrink to /25) and bench/bench_simulated.py measures 1000.
SCALE_NODES = int(os.environ.get("MINIK8S_TEST_SIMULATED_NODES", "300"))


async def test_many_nodes_in_one_process(apiserver: ApiServerProcess, client: ApiClient) -> None:
    base = base_name()
    count = SCALE_NODES
    names = [f"{base}-{i}" for i in range(count)]
    started = time.monotonic()
    proc = start_kubelet(apiserver.url, base, "--count", str(count))
    try:
        async def all_ready() -> list[dict[str, Any]]:
            await asyncio.sleep(0.5)  # listing every node is not free: do not hammer the apiserver
            listed = await client.list("nodes", label_selector="minik8s.io/simulated=true")
            ours = [n for n in listed["items"] if n["metadata"]["name"].startswith(base + "-") and ready(n)]
            return ours if len(ours) == count else []

        nodes = await eventually(all_ready, what=f"{count} Ready nodes", timeout=50, proc=proc)
        elapsed = time.monotonic() - started
        cidrs = [ipaddress.ip_network(n["spec"]["podCIDR"]) for n in nodes]
        assert len(set(cidrs)) == count
        ordered = sorted(cidrs)
        assert all(not a.overlaps(b) for a, b in zip(ordered, ordered[1:]))
        ips = {a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"}
        assert len(ips) == count
        await eventually(lambda: _logged(proc, f"registered {count} node(s)"), what="registration done",
                         timeout=30, proc=proc)
        leases = await client.list(LEASES, namespace="kube-node-lease")
        assert sum(1 for lease in leases["items"] if lease["metadata"]["name"].startswith(base + "-")) == count
        rss_mb = _rss_kib(proc.proc.pid) / 1024
        line = [x for x in proc.logs().splitlines() if f"registered {count} node(s)" in x][0]
        print(f"\n{count} simulated nodes: Ready {elapsed:.1f}s after process start (kubelet: "
              f"{line.split(': ', 1)[-1]}), RSS {rss_mb:.0f} MiB")
        assert rss_mb < 512
    finally:
        proc.stop()
        await remove_nodes(client, names)


async def _logged(proc: ComponentProcess, text: str) -> bool:
    return text in proc.logs()


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0
