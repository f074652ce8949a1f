"""What every Docker-backed test shares: the engine and image check, free subnets, test networks.

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

from kubelet.runtime import DEFAULT_DOCKER_URL, DockerRuntime, NetworkInfo, RuntimeConflict, RuntimeUnavailable

IMAGE = os.environ.get("MINIK8S_TEST_IMAGE", "minik8s/busybox:1")


def unusable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and {reason}: run scripts/docker-up and scripts/build-images", pytrace=False)
    pytest.skip(reason)


def checked_runtime() -> DockerRuntime:
    """A runtime on the engine, once the engine answers and the test image is there."""
    rt = DockerRuntime(os.environ.get("DOCKER_HOST", DEFAULT_DOCKER_URL), sandbox_image=IMAGE)
    try:
        rt.ping()
    except RuntimeUnavailable as e:
        unusable(f"no Docker engine answers ({e})")
    if not rt.image_present(IMAGE):
        unusable(f"the image {IMAGE} is missing (scripts/build-images makes it)")
    return rt


def docker_runtime(cleanup: Mapping[str, str]) -> Iterator[DockerRuntime]:
    """A checked runtime for a fixture; on teardown removes every container carrying ``cleanup``."""
    rt = checked_runtime()
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


# The test networks' default pool: neither the cluster's pod network (172.28.0.0/16) nor the
# compose stack's (172.29.0.0/16), so the tests run beside both.
TEST_POOL = "172.30.0.0/16"


def free_subnets(pool: str = TEST_POOL) -> Iterator[str]:
    """The /24s of ``pool`` that overlap nothing on this machine right now."""
    taken = taken_networks()
    for candidate in ipaddress.IPv4Network(pool).subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for t in taken):
            yield str(candidate)


def free_subnet(pool: str = TEST_POOL) -> str:
    found = next(free_subnets(pool), None)
    assert found is not None, f"no free /24 in {pool}"
    return found


def lower_half(subnet: str) -> str:
    """The lower half of ``subnet`` (an ip range for the engine, leaving the upper half free)."""
    return str(next(ipaddress.IPv4Network(subnet).subnets(prefixlen_diff=1)))


def make_test_network(rt: DockerRuntime, name: str, labels: Mapping[str, str], *,
                      engine_lower_half: bool = False) -> NetworkInfo:
    """The Docker network ``name`` on a free /24 of the test pool, carrying ``labels``; with
    ``engine_lower_half`` the engine assigns addresses from the lower half of the /24 only."""
    for subnet in free_subnets():
        try:
            return rt.ensure_network(name, subnet, ip_range=lower_half(subnet) if engine_lower_half else None,
                                     labels=labels)
        except RuntimeConflict:
            continue  # another run took it meanwhile
    raise AssertionError(f"no free /24 in {TEST_POOL}")
