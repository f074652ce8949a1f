"""Fixtures for end-to-end tests with real external programs against the real apiserver.

``kubectl`` runs the real ``kubectl`` binary as a subprocess with its default flags; the only
thing it is given is a kubeconfig (``KUBECONFIG`` in its environment) that points at the
session's apiserver, and a private ``HOME`` so its discovery cache stays out of the user's.
``k8s_client`` is an ``ApiClient`` of the official ``kubernetes`` Python client on the same
apiserver.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@dataclass
class Kubectl:
    """Runs ``kubectl`` against the test apiserver; returns the finished process."""

    env: dict[str, str]
    cwd: Path

    def __call__(self, *args: str, timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, *args], env=self.env, cwd=self.cwd, input=stdin, text=True,
                              capture_output=True, timeout=timeout)

    def ok(self, *args: str, timeout: float = 60) -> str:
        """Runs and asserts exit code 0; returns stdout."""
        p = self(*args, timeout=timeout)
        assert p.returncode == 0, f"kubectl {' '.join(args)} -> {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}"
        return p.stdout

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([KUBECTL, *args], env=self.env, cwd=self.cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)


@pytest.fixture(scope="session")
def kubeconfig(apiserver: ApiServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("kubeconfig")
    path = d / "config"
    path.write_text(
        "apiVersion: v1\n"
        "kind: Config\n"
        "clusters:\n"
        "- name: minik8s\n"
        "  cluster:\n"
        f"    server: {apiserver.url}\n"
        "contexts:\n"
        "- name: minik8s\n"
        "  context:\n"
        "    cluster: minik8s\n"
        "    user: tester\n"
        "current-context: minik8s\n"
        "users:\n"
        "- name: tester\n"
        "  user: {}\n"
    )
    return path


@pytest.fixture(scope="session")
def kubectl_env(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("kubectl-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBE")}
    env.update(KUBECONFIG=str(kubeconfig), HOME=str(home))
    return env


@pytest.fixture
def kubectl(kubectl_env: dict[str, str], tmp_path: Path) -> Kubectl:
    return Kubectl(env=kubectl_env, cwd=tmp_path)


@pytest.fixture
def unique_ns(http: httpx.Client) -> Iterator[str]:
    """A fresh namespace name that the test itself creates (e.g. from a manifest); removed after."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    yield name
    http.delete(f"/api/v1/namespaces/{name}")


@pytest.fixture
def k8s_client(apiserver: ApiServerProcess) -> Iterator["object"]:
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = apiserver.url
    with client.ApiClient(cfg) as api:
        yield api
