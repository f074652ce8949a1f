"""The real kubectl's server-side apply, managed fields and explain against minik8s (issue 9's acceptance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx-deployment
  labels:
    app: nginx
spec:
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.14.2
        ports:
        - containerPort: 80
"""


def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl.ok("get", *args, "-o", "json"))
    return out


def test_server_side_apply_created_unchanged_conflict_force(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT)
    out = kubectl.ok("apply", "--server-side", "-f", str(manifest), "-n", namespace)
    assert out.strip() == "deployment.apps/nginx-deployment serverside-applied"
    first = get(kubectl, "deployment", "nginx-deployment", "-n", namespace)
    # The same apply again changes nothing: same resourceVersion.
    kubectl.ok("apply", "--server-side", "-f", str(manifest), "-n", namespace)
    assert get(kubectl, "deployment", "nginx-deployment", "-n", namespace)["metadata"]["resourceVersion"] \
        == first["metadata"]["resourceVersion"]
    kubectl.ok("scale", "deployment/nginx-deployment", "--replicas=5", "-n", namespace)
    p = kubectl("apply", "--server-side", "-f", str(manifest), "-n", namespace)
    assert p.returncode == 1
    assert p.stderr.startswith('error: Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" '
                               "using apps/v1: .spec.replicas\nPlease review the fields above--they currently have "
                               "other managers."), p.stderr
    assert get(kubectl, "deployment", "nginx-deployment", "-n", namespace)["spec"]["replicas"] == 5
    out = kubectl.ok("apply", "--server-side", "--force-conflicts", "-f", str(manifest), "-n", namespace)
    assert out.strip() == "deployment.apps/nginx-deployment serverside-applied"
    assert get(kubectl, "deployment", "nginx-deployment", "-n", namespace)["spec"]["replicas"] == 3


def test_show_managed_fields(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT)
    kubectl.ok("apply", "--server-side", "-f", str(manifest), "-n", namespace)
    kubectl.ok("label", "deployment/nginx-deployment", "tier=web", "-n", namespace)
    hidden = yaml.safe_load(kubectl.ok("get", "deployment", "nginx-deployment", "-n", namespace, "-o", "yaml"))
    assert "managedFields" not in hidden["metadata"]  # kubectl hides them unless asked
    shown = yaml.safe_load(kubectl.ok("get", "deployment", "nginx-deployment", "-n", namespace, "-o", "yaml",
                                      "--show-managed-fields"))
    entries = {(m["manager"], m["operation"]): m for m in shown["metadata"]["managedFields"]}
    assert set(entries) == {("kubectl", "Apply"), ("kubectl-label", "Update")}
    applied = entries[("kubectl", "Apply")]
    assert applied["fieldsType"] == "FieldsV1" and applied["apiVersion"] == "apps/v1"
    assert applied["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"nginx"}']["f:ports"] == {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}
    assert entries[("kubectl-label", "Update")]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:tier": {}}}}


def test_client_side_then_server_side_apply(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    """kubectl's documented move from client-side to server-side apply works without conflicts."""
    manifest = tmp_path / "deployment.yaml"
    manifest.write_text(DEPLOYMENT)
    assert kubectl.ok("apply", "-f", str(manifest), "-n", namespace).strip() == "deployment.apps/nginx-deployment created"
    manifest.write_text(DEPLOYMENT.replace("replicas: 3", "replicas: 2"))
    out = kubectl.ok("apply", "--server-side", "-f", str(manifest), "-n", namespace)
    assert out.strip() == "deployment.apps/nginx-deployment serverside-applied"
    obj = get(kubectl, "deployment", "nginx-deployment", "-n", namespace)
    assert obj["spec"]["replicas"] == 2


def test_explain_deployment_containers(kubectl: Kubectl) -> None:
    out = kubectl.ok("explain", "deployment.spec.template.spec.containers")
    assert "GROUP:      apps" in out and "KIND:       Deployment" in out and "VERSION:    v1" in out
    assert "FIELD: containers <[]Container>" in out
    assert "List of containers belonging to the pod." in out
    assert "image\t<string>" in out and "ports\t<[]ContainerPort>" in out
    # Every served kind explains, the new ones too.
    for kind in ("secret", "serviceaccount", "replicationcontroller.spec", "configmap.data", "pod.spec.volumes"):
        assert "DESCRIPTION:" in kubectl.ok("explain", kind), kind
