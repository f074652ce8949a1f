"""The real kubectl with EndpointSlices (discovery.k8s.io/v1): apply, get, explain."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

SLICE = """\
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
- addresses: ["172.28.0.7"]
  conditions: {ready: true}
  nodeName: node-1
- addresses: ["172.28.0.8"]
  conditions: {ready: false}
"""


def test_apply_get_and_explain(kubectl: Kubectl, namespace: str) -> None:
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=SLICE)
    assert r.returncode == 0 and r.stdout.strip() == "endpointslice.discovery.k8s.io/web-1 created", r.stderr
    lines = kubectl.ok("get", "endpointslices", "-n", namespace).splitlines()
    assert lines[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert lines[1].split()[:4] == ["web-1", "IPv4", "8080", "172.28.0.7,172.28.0.8"]
    r = kubectl("apply", "-n", namespace, "-f", "-", stdin=SLICE.replace("IPv4", "IPv6"))
    assert r.returncode != 0 and "addressType: Invalid value: \"IPv6\": field is immutable" in r.stderr, r.stderr
    explained = kubectl.ok("explain", "endpointslice.endpoints.conditions")
    assert "KIND:       EndpointSlice" in explained and "ready" in explained and "terminating" in explained
