"""What every Docker-backed test shares: the engine and image check, and free subnets.

A test that needs Docker fails loudly under CI (``CI`` set) when the engine or the local image is
missing, and is skipped with the reason elsewhere. Subnets for test networks are picked so they
overlap nothing on this machine (interfaces and existing Docker networks).
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from typing import Iterator, Mapping

import pytest

from kubelet.runtime import DEFAULT_DOCKER_URL, DockerRuntime, RuntimeUnavailable

IMAGE = os.environ.get("MINIK8S_TEST_IMAGE", "minik8s/busybox:1")


def unusable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}: run scripts/docker-up and scripts/build-images", pytrace=False)
    pytest.skip(reason)


def docker_runtime(cleanup: Mapping[str, str]) -> Iterator[DockerRuntime]:
    """A checked runtime for a fixture; on teardown removes every container carrying ``cleanup``."""
    rt = DockerRuntime(os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_URL), sandbox_image=IMAGE)
    try:
        rt.ping()
    except RuntimeUnavailable as e:
        unusable(f"no Docker engine answers ({e})")
    if not rt.image_present(IMAGE):
        unusable(f"the image {IMAGE} is missing (scripts/build-images makes it)")
    yield rt
    for c in rt.list(dict(cleanup)):
        rt.remove(c.id, force=True)
    rt.close()


def taken_networks() -> list[ipaddress.IPv4Network]:
    """Subnets on this machine's interfaces and Docker networks (never reuse or overlap them)."""
    taken: list[ipaddress.IPv4Network] = []
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            taken.append(ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network)
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True).stdout.split()
    if ids:
        out = subprocess.run(["docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", *ids],
                             capture_output=True, text=True).stdout
        for s in out.split():
            try:
                taken.append(ipaddress.IPv4Network(s))
            except ValueError:
                pass  # IPv6
    return taken
