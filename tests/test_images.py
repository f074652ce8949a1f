"""The images of ``scripts/build-images --offline``: the one minik8s image and the etcd image.

The minik8s image must run every console script with no server (``minik8s --help``, ``mkctl
version --client``), import every module of the project (so no dependency is missing from the
wheels) and have the ``git`` and ``ssh`` commands that gitops runs; the etcd image must serve with the same command and health check as the official image
in docker-compose.yml, and the apiserver of the minik8s image must serve on it. The containers run
with no network of their own (``--network none``; the apiserver joins etcd's namespace), so all
traffic stays on their loopback. Every container carries this run's label and is removed at the
end. Without an engine or the images the tests fail when ``CI`` is set, and skip otherwise.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Iterator

import pytest

from kubelet.runtime import DockerRuntime
from tests.dockertest import docker_runtime, unusable

pytestmark = pytest.mark.docker

MINIK8S_IMAGE = os.environ.get("MINIK8S_IMAGE", "minik8s/minik8s:dev")
ETCD_IMAGE = os.environ.get("MINIK8S_TEST_ETCD_IMAGE", "minik8s/etcd:v3.5.1")
RUN_LABEL = "io.minik8s.test-run"
RUN_ID = uuid.uuid4().hex[:10]
PACKAGES = ("apiserver", "machinery", "cli", "scheduler", "controllers", "kubelet", "gitops")


@pytest.fixture(scope="module")
def runtime() -> Iterator[DockerRuntime]:
    for rt in docker_runtime({RUN_LABEL: RUN_ID}):
        for image in (MINIK8S_IMAGE, ETCD_IMAGE):
            if not rt.image_present(image):
                unusable(f"the image {image} is missing (scripts/build-images --offline makes it)")
        yield rt


def docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


def run(image: str, *args: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """``docker run --rm`` of a command with no network; labelled in case it outlives the test."""
    opts = ["--rm", "--network", "none", "--label", f"{RUN_LABEL}={RUN_ID}"]
    if entrypoint:
        opts += ["--entrypoint", entrypoint]
    return docker("run", *opts, image, *args)


def start(image: str, name: str, *args: str, network: str = "none") -> str:
    out = docker("run", "-d", "--name", f"{name}-{RUN_ID}", "--network", network,
                 "--label", f"{RUN_LABEL}={RUN_ID}", image, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def wait_exec(container: str, *cmd: str, timeout: float = 20) -> str:
    """Runs ``cmd`` in ``container`` until it exits 0; its output. Fails with the container's logs."""
    deadline = time.monotonic() + timeout
    while True:
        out = docker("exec", container, *cmd)
        if out.returncode == 0:
            return out.stdout
        if time.monotonic() > deadline:
            logs = docker("logs", "--tail", "30", container)
            pytest.fail(f"{cmd} kept failing: {out.stdout}{out.stderr}\nlogs:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.3)


def test_minik8s_entrypoint_prints_every_component(runtime: DockerRuntime) -> None:
    out = run(MINIK8S_IMAGE, "--help")
    assert out.returncode == 0, out.stderr
    for command in ("apiserver", "scheduler", "controller-manager", "kubelet", "gitops", "up"):
        assert command in out.stdout


def test_mkctl_client_version(runtime: DockerRuntime) -> None:
    out = run(MINIK8S_IMAGE, "version", "--client", entrypoint="mkctl")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Client Version: v")


def test_git_and_ssh_for_gitops(runtime: DockerRuntime) -> None:
    out = run(MINIK8S_IMAGE, "--version", entrypoint="git")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("git version ")
    out = run(MINIK8S_IMAGE, "-V", entrypoint="ssh")
    assert out.returncode == 0 and "OpenSSH" in out.stderr, out.stderr


def test_every_module_imports(runtime: DockerRuntime) -> None:
    """Each component imports its dependencies lazily: import them all, so none is missing."""
    code = (
        "import importlib, pkgutil\n"
        f"for p in {PACKAGES!r}:\n"
        "    for m in pkgutil.walk_packages(importlib.import_module(p).__path__, p + '.'):\n"
        "        if not m.name.endswith('.__main__'):\n"
        "            importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    out = run(MINIK8S_IMAGE, "-c", code, entrypoint="python3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_etcd_serves_and_the_apiserver_runs_on_it(runtime: DockerRuntime) -> None:
    # docker-compose.yml's etcd command and health check, which the official image runs the same.
    etcd = start(ETCD_IMAGE, "etcd", "/usr/local/bin/etcd", "--name=etcd", "--data-dir=/etcd-data",
                 "--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=http://127.0.0.1:2379")
    health = wait_exec(etcd, "/usr/local/bin/etcdctl", "--endpoints=http://127.0.0.1:2379", "endpoint", "health")
    assert "is healthy" in health
    assert docker("exec", etcd, "etcdctl", "put", "/probe", "yes").returncode == 0
    assert docker("exec", etcd, "etcdctl", "get", "--print-value-only", "/probe").stdout.strip() == "yes"

    apiserver = start(MINIK8S_IMAGE, "apiserver", "apiserver", "--etcd-servers", "http://127.0.0.1:2379",
                      "--bind-address", "127.0.0.1", "--port", "8080", network=f"container:{etcd}")
    version = wait_exec(apiserver, "mkctl", "--server", "http://127.0.0.1:8080", "version", timeout=30)
    assert "Server Version: v" in version
    assert docker("exec", apiserver, "mkctl", "--server", "http://127.0.0.1:8080", "get", "namespaces").returncode == 0
