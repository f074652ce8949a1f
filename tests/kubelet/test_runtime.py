"""kubelet.runtime against the real Docker engine and the local image of scripts/build-images.

Everything these tests make carries the label ``io.minik8s.test-run=<run id>`` and lives on a
network of this run with an explicit, free subnet; fixtures remove them by label at the end.
Traffic stays on loopback and that network. Without an engine (or the image) the tests fail
when ``CI`` is set, and skip with the reason otherwise.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

from kubelet.runtime import (
    LABEL_CONTAINER_NAME,
    LABEL_POD_UID,
    LABEL_ROLE,
    ROLE_CONTAINER,
    ROLE_SANDBOX,
    ContainerNotFound,
    ContainerRuntime,
    ContainerSpec,
    DockerRuntime,
    ExecTimeout,
    ImageNotPresent,
    ImagePullError,
    Mount,
    NetworkInfo,
    RuntimeConflict,
    RuntimeUnavailable,
    Sandbox,
)
from tests.dockertest import IMAGE, docker_runtime, make_test_network

pytestmark = pytest.mark.docker

RUN_ID = uuid.uuid4().hex[:10]
RUN_LABEL = "io.minik8s.test-run"
RUN_LABELS = {RUN_LABEL: RUN_ID}


@pytest.fixture(scope="session")
def runtime() -> Iterator[DockerRuntime]:
    yield from docker_runtime(RUN_LABELS)


@pytest.fixture(scope="session")
def network(runtime: DockerRuntime) -> Iterator[NetworkInfo]:
    """This run's pod network, on a free /24 of the test pool."""
    name = f"minik8s-test-{RUN_ID}"
    info = make_test_network(runtime, name, RUN_LABELS)
    yield info
    for c in runtime.list(RUN_LABELS):
        runtime.remove(c.id, force=True)
    runtime.remove_network(name)


@dataclass
class Pod:
    uid: str
    name: str
    namespace: str
    node: str
    sandbox: Sandbox
    containers: list[str] = field(default_factory=list)


@pytest.fixture
def make_pod(runtime: DockerRuntime, network: NetworkInfo) -> Iterator[Callable[..., Pod]]:
    made: list[Pod] = []

    def make(name: str = "web", *, ip: str | None = None) -> Pod:
        uid = str(uuid.uuid4())
        sandbox = runtime.run_sandbox(pod_uid=uid, pod_name=name, namespace="default", node="node-a",
                                      network=network.name, ip=ip, labels=RUN_LABELS)
        pod = Pod(uid=uid, name=name, namespace="default", node="node-a", sandbox=sandbox)
        made.append(pod)
        return pod

    yield make
    for pod in made:
        for c in runtime.list({LABEL_POD_UID: pod.uid}):
            runtime.remove(c.id, force=True)


def spec(pod: Pod, name: str, *, command: list[str] | None = None, args: list[str] | None = None,
         **kw: object) -> ContainerSpec:
    return ContainerSpec(pod_uid=pod.uid, pod_name=pod.name, namespace=pod.namespace, node=pod.node,
                         name=name, image=IMAGE, sandbox_id=pod.sandbox.id, command=command, args=args,
                         labels=RUN_LABELS, **kw)  # type: ignore[arg-type]


def run(runtime: DockerRuntime, pod: Pod, name: str, script: str, **kw: object) -> str:
    cid = runtime.create_container(spec(pod, name, command=["sh", "-c", script], **kw))
    runtime.start(cid)
    pod.containers.append(cid)
    return cid


def wait_exited(runtime: DockerRuntime, cid: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while runtime.inspect(cid).running:
        assert time.monotonic() < deadline, f"{cid[:12]} still running after {timeout}s"
        time.sleep(0.05)


def test_docker_runtime_satisfies_the_protocol(runtime: DockerRuntime) -> None:
    assert isinstance(runtime, ContainerRuntime)
    v = runtime.version()
    assert v.name == "docker" and v.version and v.api_version


def test_network_has_the_explicit_subnet_and_is_shared(runtime: DockerRuntime, network: NetworkInfo) -> None:
    # A second kubelet on the same engine gets the same network back.
    again = runtime.ensure_network(network.name, network.subnet)
    assert again.id == network.id and again.subnet == network.subnet
    # Never reuse a network under another address range.
    other = ipaddress.IPv4Network(network.subnet)
    with pytest.raises(RuntimeConflict):
        runtime.ensure_network(network.name, str(ipaddress.IPv4Network((int(other.network_address) + 256, 24))))


def test_sandbox_gets_an_ip_in_the_subnet(runtime: DockerRuntime, network: NetworkInfo,
                                          make_pod: Callable[..., Pod]) -> None:
    t0 = time.monotonic()
    pod = make_pod("ip")
    elapsed = time.monotonic() - t0
    print(f"\nsandbox start: {elapsed * 1000:.0f} ms")
    assert ipaddress.IPv4Address(pod.sandbox.ip) in ipaddress.IPv4Network(network.subnet)
    info = runtime.inspect(pod.sandbox.id)
    assert info.running and info.ip == pod.sandbox.ip
    assert info.labels[LABEL_ROLE] == ROLE_SANDBOX and info.pod_uid == pod.uid
    assert info.labels["io.minik8s.pod.name"] == "ip" and info.labels["io.minik8s.node"] == "node-a"
    # A kubelet can pin the pod IP inside its node's pod CIDR.
    wanted = str(ipaddress.IPv4Network(network.subnet).network_address + 200)
    pinned = make_pod("pinned", ip=wanted)
    assert pinned.sandbox.ip == wanted


def test_containers_of_a_pod_share_localhost(runtime: DockerRuntime, make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("shared")
    t0 = time.monotonic()
    run(runtime, pod, "server", "mkdir -p /www && echo hello-from-httpd > /www/index.html && httpd -f -p 8080 -h /www")
    print(f"\ncontainer create+start: {(time.monotonic() - t0) * 1000:.0f} ms")
    client = run(runtime, pod, "client",
                 "for i in $(seq 50); do wget -qO- http://127.0.0.1:8080/ && exit 0; sleep 0.1; done; exit 1")
    wait_exited(runtime, client)
    info = runtime.inspect(client)
    assert info.exit_code == 0, runtime.logs(client)
    assert b"hello-from-httpd" in runtime.logs(client)
    # The same server is reachable on the pod IP from the host.
    with socket.create_connection((pod.sandbox.ip, 8080), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := s.recv(4096):
            reply += chunk
        assert b"hello-from-httpd" in reply


def test_env_workdir_limits_and_emptydir(runtime: DockerRuntime, make_pod: Callable[..., Pod], tmp_path: Path) -> None:
    pod = make_pod("settings")
    shared = tmp_path / "cache"
    shared.mkdir()
    writer = run(runtime, pod, "writer", "echo written > /cache/f; pwd; echo $GREETING",
                 env={"GREETING": "hi there"}, working_dir="/tmp", mounts=[Mount(str(shared), "/cache")],
                 mem_limit=64 * 1024 * 1024, nano_cpus=500_000_000)
    wait_exited(runtime, writer)
    assert runtime.logs(writer).decode().split("\n")[:2] == ["/tmp", "hi there"]
    reader = run(runtime, pod, "reader", "cat /cache/f", mounts=[Mount(str(shared), "/cache", read_only=True)])
    wait_exited(runtime, reader)
    assert runtime.logs(reader) == b"written\n"
    out = subprocess.run(["docker", "inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}", writer],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(64 * 1024 * 1024), "500000000"]


def test_args_replace_cmd_and_command_replaces_entrypoint(runtime: DockerRuntime, make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("argv")
    cid = runtime.create_container(spec(pod, "echo", command=["echo"], args=["a", "b"]))
    runtime.start(cid)
    wait_exited(runtime, cid)
    assert runtime.logs(cid) == b"a b\n"
    cid = runtime.create_container(spec(pod, "args-only", args=["echo", "only", "args"]))
    runtime.start(cid)
    wait_exited(runtime, cid)
    assert runtime.logs(cid) == b"only args\n"


def test_logs_tail_timestamps_and_follow(runtime: DockerRuntime, make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("logs")
    cid = run(runtime, pod, "printer", "for i in 1 2 3 4 5; do echo line-$i; done; sleep 0.2; echo oops >&2")
    wait_exited(runtime, cid)
    assert runtime.logs(cid) == b"line-1\nline-2\nline-3\nline-4\nline-5\noops\n"
    assert runtime.logs(cid, tail=2).decode().splitlines() == ["line-5", "oops"]
    stamped = runtime.logs(cid, tail=1, timestamps=True).decode().strip()
    stamp, text = stamped.split(" ", 1)
    assert text == "oops" and stamp.startswith("20") and stamp.endswith("Z")
    assert runtime.logs(cid, since=time.time() + 3600) == b""

    slow = run(runtime, pod, "slow", "for i in 1 2 3; do echo tick-$i; sleep 0.3; done")
    t0 = time.monotonic()
    seen: list[tuple[float, bytes]] = []
    for chunk in runtime.follow_logs(slow):
        seen.append((time.monotonic() - t0, chunk))
    assert b"".join(c for _, c in seen) == b"tick-1\ntick-2\ntick-3\n"
    # Streamed as written: the ticks arrive spread over the ~0.6 s the container prints them in (all
    # at once at exit would be one chunk, or several within a few ms). The container may have
    # started printing before the follow began, so the spread is measured, not the first arrival.
    assert len(seen) >= 2 and seen[-1][0] - seen[0][0] >= 0.3, seen

    # Closing a follow of a running container returns promptly.
    forever = run(runtime, pod, "forever", "while true; do echo x; sleep 0.2; done")
    stream = runtime.follow_logs(forever, tail=0)
    assert next(stream).startswith(b"x")
    stream.close()  # type: ignore[attr-defined]


def test_stop_kills_a_sigterm_ignorer_at_the_end_of_the_grace_period(runtime: DockerRuntime,
                                                                      make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("grace")
    stubborn = run(runtime, pod, "stubborn", "trap '' TERM; sleep 1000 & wait; sleep 1000 & wait")
    polite = run(runtime, pod, "polite", "trap 'exit 0' TERM; sleep 1000 & wait")
    time.sleep(0.3)  # let the shells install their traps

    t0 = time.monotonic()
    runtime.stop(polite, timeout=5)
    polite_s = time.monotonic() - t0
    info = runtime.inspect(polite)
    assert info.state == "exited" and info.exit_code == 0 and polite_s < 2, (polite_s, info)

    t0 = time.monotonic()
    runtime.stop(stubborn, timeout=2)
    stubborn_s = time.monotonic() - t0
    info = runtime.inspect(stubborn)
    print(f"\nstop: polite {polite_s:.2f} s, SIGTERM ignorer with grace 2 s: {stubborn_s:.2f} s")
    assert info.state == "exited" and info.exit_code == 137, info
    assert 1.8 <= stubborn_s < 4, stubborn_s
    assert info.finished_at is not None and info.started_at is not None


def test_stop_with_an_explicit_signal(runtime: DockerRuntime, make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("signal")
    quits = run(runtime, pod, "quits-on-usr1", "trap 'exit 3' USR1; trap '' TERM; sleep 1000 & wait")
    stubborn = run(runtime, pod, "ignores-usr1", "trap '' TERM USR1; sleep 1000 & wait; sleep 1000 & wait")
    time.sleep(0.3)
    t0 = time.monotonic()
    runtime.stop(quits, timeout=5, signal="SIGUSR1")
    assert time.monotonic() - t0 < 2 and runtime.inspect(quits).exit_code == 3
    t0 = time.monotonic()
    runtime.stop(stubborn, timeout=1, signal="SIGUSR1")
    assert 0.9 <= time.monotonic() - t0 < 3
    wait_exited(runtime, stubborn, timeout=3)
    assert runtime.inspect(stubborn).exit_code == 137
    runtime.stop(stubborn, timeout=1)  # stopping a stopped container is fine
    runtime.kill(stubborn)


def test_exec_returns_exit_code_and_output(runtime: DockerRuntime, make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("exec")
    cid = run(runtime, pod, "main", "echo ready > /tmp/ready; sleep 1000")
    time.sleep(0.2)
    ok = runtime.exec(cid, ["cat", "/tmp/ready"])
    assert ok.exit_code == 0 and ok.output == b"ready\n"
    bad = runtime.exec(cid, ["sh", "-c", "echo no >&2; exit 7"])
    assert bad.exit_code == 7 and bad.output == b"no\n"
    missing = runtime.exec(cid, ["/no/such/binary"])
    assert missing.exit_code != 0
    t0 = time.monotonic()
    with pytest.raises(ExecTimeout):
        runtime.exec(cid, ["sleep", "5"], timeout=0.5)
    assert time.monotonic() - t0 < 2
    # The engine connection still works after a timed-out exec.
    assert runtime.exec(cid, ["true"], timeout=5).exit_code == 0


def test_list_by_pod_uid_finds_exactly_the_pods_containers(runtime: DockerRuntime,
                                                           make_pod: Callable[..., Pod]) -> None:
    pod = make_pod("listed")
    other = make_pod("other")
    a = run(runtime, pod, "app", "sleep 1000")
    b = run(runtime, pod, "job", "exit 4", restart_count=2)
    run(runtime, other, "app", "sleep 1000")
    wait_exited(runtime, b)

    found = {c.id: c for c in runtime.list({LABEL_POD_UID: pod.uid})}
    assert set(found) == {pod.sandbox.id, a, b}
    assert found[pod.sandbox.id].role == ROLE_SANDBOX
    app, job = found[a], found[b]
    assert app.role == ROLE_CONTAINER and app.container_name == "app" and app.running
    assert app.exit_code is None and app.started_at is not None and app.finished_at is None
    assert app.restart_count == 0 and app.image == IMAGE and app.image_id.startswith("sha256:")
    assert job.state == "exited" and job.exit_code == 4 and job.restart_count == 2
    # (Docker may stamp StartedAt after FinishedAt for a process that exits at once.)
    assert job.finished_at is not None and job.started_at is not None
    only_apps = runtime.list({LABEL_POD_UID: pod.uid, LABEL_CONTAINER_NAME: "app"})
    assert [c.id for c in only_apps] == [a]

    runtime.remove(b)
    runtime.remove(b)  # twice is fine
    with pytest.raises(ContainerNotFound):
        runtime.remove(b, missing_ok=False)
    with pytest.raises(ContainerNotFound):
        runtime.inspect(b)
    assert b not in {c.id for c in runtime.list({LABEL_POD_UID: pod.uid})}


def test_images_present_missing_and_pull_errors(runtime: DockerRuntime, make_pod: Callable[..., Pod],
                                               network: NetworkInfo) -> None:
    assert runtime.image_present(IMAGE)
    assert runtime.image_id(IMAGE) == runtime.inspect(make_pod("img").sandbox.id).image_id
    assert not runtime.image_present("minik8s/does-not-exist:1")
    pod = make_pod("noimage")
    with pytest.raises(ImageNotPresent):
        runtime.create_container(ContainerSpec(pod_uid=pod.uid, pod_name=pod.name, namespace="default",
                                                node="node-a", name="c", image="minik8s/does-not-exist:1",
                                                sandbox_id=pod.sandbox.id, labels=RUN_LABELS))
    # A registry on a closed loopback port: the pull fails at once and no packet leaves the machine.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    with pytest.raises(ImagePullError) as err:
        runtime.pull(f"127.0.0.1:{port}/minik8s/missing:1", timeout=20)
    assert time.monotonic() - t0 < 10
    assert "127.0.0.1" in str(err.value)
    # A missing sandbox image is pulled first; here that pull fails, clearly, and nothing is left.
    other = DockerRuntime(runtime.base_url, sandbox_image=f"127.0.0.1:{port}/minik8s/sandbox:1")
    try:
        with pytest.raises(ImagePullError):
            other.run_sandbox(pod_uid=str(uuid.uuid4()), pod_name="nosandbox", namespace="default", node="node-a",
                              network=network.name, labels=RUN_LABELS)
    finally:
        other.close()


def test_runtime_unavailable_when_no_engine_answers(tmp_path: Path) -> None:
    missing = DockerRuntime(f"unix://{tmp_path}/missing.sock", timeout=2)
    with pytest.raises(RuntimeUnavailable):
        missing.ping()
    with pytest.raises(RuntimeUnavailable):
        missing.list()
    # A socket file whose owner is gone (a stopped dockerd leaves one).
    path = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    dead = DockerRuntime(f"unix://{path}", timeout=2)
    for call in (dead.ping, dead.version, lambda: dead.image_present(IMAGE), lambda: dead.pull(IMAGE)):
        with pytest.raises(RuntimeUnavailable):
            call()
