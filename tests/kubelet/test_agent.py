"""kubelet.agent with a real Docker engine and a real apiserver: pods become containers.

The kubelet runs in process, in a thread with its own event loop (so stopping it is like a
crash: nothing is cleaned up). Each test module uses its own node name; every container it
makes carries the node label, and the fixture removes them by that label at the end.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
import time
import uuid
from typing import Any, Iterator

import httpx
import pytest

from kubelet.agent import Kubelet, KubeletSettings
from kubelet.podsync import SyncSettings
from kubelet.runtime import LABEL_NODE, LABEL_POD_UID, DockerRuntime
from machinery.client import ApiClient
from tests.cluster import ApiServerProcess
from tests.dockertest import IMAGE, docker_runtime
from tests.waiting import wait_for

pytestmark = pytest.mark.docker

NODE = f"dk-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    yield from docker_runtime({LABEL_NODE: NODE})


class InProcessKubelet:
    def __init__(self, settings: KubeletSettings) -> None:
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.kubelet: Kubelet | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "kubelet did not register"

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            async with ApiClient(self.settings.server) as client:
                self.kubelet = Kubelet(client, self.settings)
                task = asyncio.create_task(self.kubelet.run(self.stop_event))
                await self.kubelet.registered.wait()
                self.ready.set()
                await task

        asyncio.run(main())

    def kill(self) -> None:
        """Ends the kubelet (its containers stay, as after a SIGKILL, unless its settings ask for a
        graceful node shutdown)."""
        assert self.loop is not None and self.stop_event is not None
        if not self.thread.is_alive():
            return
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)


def settings(server: str, tmp: str) -> KubeletSettings:
    return KubeletSettings(server=server, node_name=NODE, capacity={"cpu": "4", "memory": "8Gi", "pods": "20"},
                           sandbox_image=IMAGE, data_dir=tmp, lease_renew_interval=1.0, runtime_check_interval=1.0,
                           sync_interval=0.3, housekeeping_interval=1.0, kubelet_port=0,
                           sync=SyncSettings(backoff_base_s=1.0, backoff_max_s=4.0, pull_backoff_base_s=1.0,
                                             pull_backoff_max_s=4.0))


@pytest.fixture(scope="module")
def kubelet(apiserver: ApiServerProcess, runtime: DockerRuntime,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessKubelet]:
    k = InProcessKubelet(settings(apiserver.url, str(tmp_path_factory.mktemp("kubelet"))))
    yield k
    k.kill()


def make_pod(http: httpx.Client, ns: str, name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": NODE, "containers": containers, **spec}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def get_pod(http: httpx.Client, ns: str, name: str) -> dict[str, Any] | None:
    r = http.get(f"/api/v1/namespaces/{ns}/pods/{name}")
    return dict(r.json()) if r.status_code == 200 else None


def running_pod(http: httpx.Client, ns: str, name: str, timeout: float = 30.0) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        p = get_pod(http, ns, name)
        return p if p and (p.get("status") or {}).get("phase") == "Running" else None

    return dict(wait_for(check, timeout=timeout, what=f"{name} Running"))


def cstatus(pod: dict[str, Any] | None, i: int = 0) -> dict[str, Any]:
    return ((pod or {}).get("status") or {}).get("containerStatuses", [{}])[i] if pod else {}


def sleeper(name: str = "app", *cmd: str) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "command": list(cmd) or ["sleep", "3600"]}


def test_node_registers_with_lease(kubelet: InProcessKubelet, http: httpx.Client) -> None:
    node = http.get(f"/api/v1/nodes/{NODE}").json()
    st = node["status"]
    assert st["capacity"]["cpu"] == "4" and st["allocatable"]["pods"] == "20"
    assert st["nodeInfo"]["containerRuntimeVersion"].startswith("docker://")
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
    ip = next(a["address"] for a in st["addresses"] if a["type"] == "InternalIP")
    assert ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("172.28.0.0/16")
    lease = wait_for(lambda: http.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{NODE}").json()
                     .get("spec"))
    assert lease["holderIdentity"] == NODE


def test_three_pods_run_with_pod_ips_and_shared_localhost(kubelet: InProcessKubelet, http: httpx.Client,
                                                          namespace: str, runtime: DockerRuntime) -> None:
    for i in range(3):
        make_pod(http, namespace, f"web-{i}", [sleeper()], terminationGracePeriodSeconds=1)
    make_pod(http, namespace, "duo", [
        {"name": "httpd", "image": IMAGE, "command": ["sh", "-c", "mkdir -p /www && echo hello-pod > /www/index.html"
                                                                  " && httpd -f -p 8080 -h /www"]},
        {"name": "client", "image": IMAGE, "command": ["sh", "-c", "sleep 3600"]}],
        terminationGracePeriodSeconds=1)
    pods = [running_pod(http, namespace, n) for n in ("web-0", "web-1", "web-2", "duo")]
    ips = {p["status"]["podIP"] for p in pods}
    assert len(ips) == 4
    assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("172.28.0.0/16") for ip in ips)
    for p in pods[:3]:
        running = [c for c in runtime.list({LABEL_POD_UID: p["metadata"]["uid"]}) if c.running]
        assert len(running) == 2  # sandbox + app
        assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"
    duo_uid = pods[3]["metadata"]["uid"]
    client = next(c for c in runtime.list({LABEL_POD_UID: duo_uid}) if c.container_name == "client")
    out = wait_for(lambda: (r := runtime.exec(client.id, ["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"],
                                              timeout=5)).exit_code == 0 and r.output, what="wget on localhost")
    assert b"hello-pod" in out


def test_crashing_container_restarts_with_backoff(kubelet: InProcessKubelet, http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, "crash", [sleeper("app", "sh", "-c", "sleep 0.3; exit 3")],
             terminationGracePeriodSeconds=0)
    p = wait_for(lambda: (q := get_pod(http, namespace, "crash")) and cstatus(q).get("restartCount", 0) >= 2 and q,
                 timeout=40, what="two restarts")
    reasons: set[str] = set()

    def crash_loop() -> bool:
        cs = cstatus(get_pod(http, namespace, "crash"))
        reasons.add(str((cs.get("state") or {}).get("waiting", {}).get("reason")))
        return "CrashLoopBackOff" in reasons

    wait_for(crash_loop, timeout=30, what="CrashLoopBackOff")
    last = cstatus(get_pod(http, namespace, "crash"))
    assert last["lastState"]["terminated"]["exitCode"] == 3
    assert p["status"]["phase"] == "Running"


def test_never_fails_and_exit_zero_succeeds(kubelet: InProcessKubelet, http: httpx.Client, namespace: str) -> None:
    make_pod(http, namespace, "never", [sleeper("app", "sh", "-c", "exit 1")], restartPolicy="Never")
    make_pod(http, namespace, "job", [sleeper("app", "sh", "-c", "echo done")], restartPolicy="OnFailure",
             initContainers=[sleeper("init", "sh", "-c", "true")])
    failed = wait_for(lambda: (q := get_pod(http, namespace, "never")) and q["status"].get("phase") == "Failed" and q,
                      what="Failed")
    assert cstatus(failed)["state"]["terminated"]["exitCode"] == 1 and cstatus(failed)["restartCount"] == 0
    ok = wait_for(lambda: (q := get_pod(http, namespace, "job")) and q["status"].get("phase") == "Succeeded" and q,
                  what="Succeeded")
    assert cstatus(ok)["state"]["terminated"]["reason"] == "Completed"
    assert ok["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_env_volumes_and_configmap(kubelet: InProcessKubelet, http: httpx.Client, namespace: str,
                                   runtime: DockerRuntime) -> None:
    r = http.post(f"/api/v1/namespaces/{namespace}/configmaps", json={
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"greeting": "hi", "f.txt": "file!"}})
    assert r.status_code == 201, r.text
    make_pod(http, namespace, "envpod", [
        {"name": "w", "image": IMAGE, "workingDir": "/data",
         "command": ["sh", "-c", "echo $MY_NAME $MY_NS $MY_IP $GREETING $(pwd) > /data/out; sleep 3600"],
         "env": [{"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                 {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                 {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                 {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}}],
         "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}},
         "volumeMounts": [{"name": "scratch", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/cfg"}]},
        {"name": "r", "image": IMAGE, "command": ["sleep", "3600"],
         "volumeMounts": [{"name": "scratch", "mountPath": "/shared"}]}],
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg"}}],
        terminationGracePeriodSeconds=0)
    p = wait_for(lambda: (q := get_pod(http, namespace, "envpod")) and q["status"].get("phase") == "Running" and q,
                 what="Running")
    reader = next(c for c in runtime.list({LABEL_POD_UID: p["metadata"]["uid"]}) if c.container_name == "r")
    out = wait_for(lambda: runtime.exec(reader.id, ["cat", "/shared/out"], timeout=5).output, what="shared file")
    assert out.decode().split() == ["envpod", namespace, p["status"]["podIP"], "hi", "/data"]
    writer = next(c for c in runtime.list({LABEL_POD_UID: p["metadata"]["uid"]}) if c.container_name == "w")
    assert runtime.exec(writer.id, ["cat", "/etc/cfg/f.txt"], timeout=5).output == b"file!"


def test_missing_image_shows_pull_errors_and_event(kubelet: InProcessKubelet, http: httpx.Client,
                                                   namespace: str) -> None:
    make_pod(http, namespace, "noimg", [{"name": "app", "image": "minik8s/does-not-exist:1"}])
    seen: set[str] = set()

    def both() -> bool:
        reason = (cstatus(get_pod(http, namespace, "noimg")).get("state") or {}).get("waiting", {}).get("reason")
        seen.add(str(reason))
        return {"ErrImagePull", "ImagePullBackOff"} <= seen

    wait_for(both, timeout=40, what="ErrImagePull and ImagePullBackOff")
    events = http.get(f"/api/v1/namespaces/{namespace}/events").json()["items"]
    assert any(e["reason"] == "Failed" and "Failed to pull image" in e["message"] and e["type"] == "Warning"
               for e in events)
    assert get_pod(http, namespace, "noimg")["status"]["phase"] == "Pending"  # type: ignore[index]


def test_graceful_delete_and_sigterm_ignoring_container(kubelet: InProcessKubelet, http: httpx.Client,
                                                        namespace: str, runtime: DockerRuntime) -> None:
    make_pod(http, namespace, "polite", [sleeper("app", "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.1; done")],
             terminationGracePeriodSeconds=20)
    make_pod(http, namespace, "stubborn", [sleeper("app", "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")],
             terminationGracePeriodSeconds=3)
    uids = {}
    for n in ("polite", "stubborn"):
        p = running_pod(http, namespace, n)
        uids[n] = p["metadata"]["uid"]
    times = {}
    for n in ("polite", "stubborn"):
        t0 = time.monotonic()
        assert http.delete(f"/api/v1/namespaces/{namespace}/pods/{n}").status_code == 200
        wait_for(lambda: get_pod(http, namespace, n) is None, timeout=30, what=f"{n} deleted")  # noqa: B023
        times[n] = time.monotonic() - t0
        # The app container is gone with the pod object; the sandbox (the pod's IP) follows it
        # after the kubelet's sandbox_linger, so Service tables drop the address first.
        assert [c for c in runtime.list({LABEL_POD_UID: uids[n]}) if c.role != "sandbox"] == []
        wait_for(lambda: runtime.list({LABEL_POD_UID: uids[n]}) == [], timeout=5,  # noqa: B023
                 what=f"{n}'s sandbox removed")
    assert times["polite"] < 10
    assert 2.5 <= times["stubborn"] < 12


def test_kubelet_restart_adopts_containers(apiserver: ApiServerProcess, kubelet: InProcessKubelet,
                                           http: httpx.Client, namespace: str, runtime: DockerRuntime,
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    make_pod(http, namespace, "keep", [sleeper()], terminationGracePeriodSeconds=0)
    make_pod(http, namespace, "flappy", [sleeper("app", "sh", "-c", "sleep 0.2; exit 1")], restartPolicy="OnFailure",
             terminationGracePeriodSeconds=0)
    keep = wait_for(lambda: (q := get_pod(http, namespace, "keep")) and q["status"].get("phase") == "Running" and q,
                    what="Running")
    wait_for(lambda: cstatus(get_pod(http, namespace, "flappy")).get("restartCount", 0) >= 1, what="a restart")
    before = {c.id for c in runtime.list({LABEL_POD_UID: keep["metadata"]["uid"]}) if c.running}
    kubelet.kill()
    restarted = InProcessKubelet(settings(apiserver.url, str(tmp_path_factory.mktemp("kubelet2"))))
    try:
        time.sleep(2.0)
        after = {c.id for c in runtime.list({LABEL_POD_UID: keep["metadata"]["uid"]}) if c.running}
        assert after == before
        now = get_pod(http, namespace, "keep")
        assert cstatus(now)["restartCount"] == 0 and now["status"]["podIP"] == keep["status"]["podIP"]  # type: ignore[index]
    finally:
        kubelet.__dict__.update(restarted.__dict__)  # the module fixture stops this one


def test_graceful_node_shutdown_stops_pods_and_marks_them_failed(
        apiserver: ApiServerProcess, runtime: DockerRuntime, http: httpx.Client, namespace: str,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """SIGTERM with a shutdown grace period: Kubernetes' graceful node shutdown. The pods' containers
    are stopped and removed, the pods end Failed with reason Terminated, the Node is NotReady."""
    node = f"{NODE}-sd"
    s = settings(apiserver.url, str(tmp_path_factory.mktemp("kubelet-sd")))
    s.node_name, s.shutdown_grace_period = node, 5.0
    k = InProcessKubelet(s)
    try:
        for name in ("sd-a", "sd-b"):
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
                    "spec": {"nodeName": node, "containers": [sleeper()]}}
            assert http.post(f"/api/v1/namespaces/{namespace}/pods", json=body).status_code == 201
        for name in ("sd-a", "sd-b"):
            running_pod(http, namespace, name)
        assert len([c for c in runtime.list({LABEL_NODE: node}) if c.running]) == 4  # 2 sandboxes + 2 apps
        k.kill()  # sets the stop event, as SIGTERM does in the process
        assert runtime.list({LABEL_NODE: node}) == []
        for name in ("sd-a", "sd-b"):
            pod = get_pod(http, namespace, name)
            assert pod is not None
            st = pod["status"]
            assert (st["phase"], st["reason"]) == ("Failed", "Terminated"), st
            assert st["message"] == "Pod was terminated in response to imminent node shutdown."
            conds = {c["type"]: c for c in st["conditions"]}
            assert conds["DisruptionTarget"]["reason"] == "TerminationByKubelet"
            assert conds["Ready"]["status"] == "False"
            assert "terminated" in st["containerStatuses"][0]["state"]
        ready = {c["type"]: c for c in http.get(f"/api/v1/nodes/{node}").json()["status"]["conditions"]}["Ready"]
        assert (ready["status"], ready["message"]) == ("False", "node is shutting down")
    finally:
        k.kill()
        for c in runtime.list({LABEL_NODE: node}):
            runtime.remove(c.id)
