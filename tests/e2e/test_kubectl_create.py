"""The real ``kubectl`` (v1.32) imperative commands against a real minik8s apiserver.

``kubectl create namespace|deployment|configmap|service|ingress`` send their bodies as
``application/vnd.kubernetes.protobuf`` and never fall back to JSON (``run`` and ``expose``
send JSON); each test runs one command and checks the object the apiserver then stores against
what real Kubernetes stores for the same command.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import httpx
import pytest

from apiserver.protobuf import MAGIC, PROTOBUF
from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e


def get(kubectl: Kubectl, *args: str) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kubectl.ok("get", *args, "-o", "json"))
    return out


def test_create_namespace(kubectl: Kubectl, unique_ns: str) -> None:
    assert kubectl.ok("create", "namespace", unique_ns).strip() == f"namespace/{unique_ns} created"
    ns = get(kubectl, "namespace", unique_ns)
    assert ns["metadata"]["name"] == unique_ns
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": unique_ns}
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}


def test_create_deployment(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl.ok("create", "deployment", "web", "-n", namespace, "--image=nginx:1.27",
                     "--replicas=3", "--port=80")
    assert out.strip() == "deployment.apps/web created"
    d = get(kubectl, "deployment", "web", "-n", namespace)
    assert d["metadata"]["labels"] == {"app": "web"}
    spec = d["spec"]
    assert spec["template"]["metadata"]["labels"] == {"app": "web"}
    del spec["template"]["metadata"]
    assert spec == {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 10,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {"spec": {
            "containers": [{
                "name": "nginx", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 80, "protocol": "TCP"}], "resources": {},
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            }],
            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
            "securityContext": {}, "terminationGracePeriodSeconds": 30,
        }},
    }


def test_create_deployment_with_zero_replicas_and_a_command(kubectl: Kubectl, namespace: str) -> None:
    """``replicas`` is a pointer: 0 travels on the wire and must not be defaulted to 1."""
    kubectl.ok("create", "deployment", "idle", "-n", namespace, "--image=busybox", "--replicas=0",
               "--", "sh", "-c", "sleep 3600")
    d = get(kubectl, "deployment", "idle", "-n", namespace)
    assert d["spec"]["replicas"] == 0
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert (c["name"], c["image"], c["command"], c["imagePullPolicy"]) == (
        "busybox", "busybox", ["sh", "-c", "sleep 3600"], "Always")
    assert "args" not in c and "ports" not in c


def test_create_configmap(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("create", "configmap", "cfg", "-n", namespace, "--from-literal=greeting=hello",
               "--from-literal=empty=", "--from-literal=n=1")
    cm = get(kubectl, "configmap", "cfg", "-n", namespace)
    assert cm["data"] == {"greeting": "hello", "empty": "", "n": "1"}
    assert "binaryData" not in cm and "immutable" not in cm


def test_create_secret_generic_and_tls(kubectl: Kubectl, namespace: str, tmp_path: Any) -> None:
    out = kubectl.ok("create", "secret", "generic", "db", "-n", namespace, "--from-literal=user=admin",
                     "--from-literal=password=s3cr3t")
    assert out.strip() == "secret/db created"
    secret = get(kubectl, "secret", "db", "-n", namespace)
    assert secret["type"] == "Opaque"
    assert secret["data"] == {"user": "YWRtaW4=", "password": "czNjcjN0"}
    # kubectl checks that the pair is a real certificate and key.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=web",
                    "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.crt")],
                   check=True, capture_output=True)
    kubectl.ok("create", "secret", "tls", "web-tls", "-n", namespace, f"--cert={tmp_path / 'tls.crt'}",
               f"--key={tmp_path / 'tls.key'}")
    table = kubectl.ok("get", "secrets", "-n", namespace).split("\n")
    assert table[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert table[1].split()[:3] == ["db", "Opaque", "2"]
    assert table[2].split()[:3] == ["web-tls", "kubernetes.io/tls", "2"]
    p = kubectl("create", "secret", "generic", "db", "-n", namespace, "--from-literal=a=b")
    assert p.returncode != 0 and 'secrets "db" already exists' in p.stderr


def test_create_serviceaccount(kubectl: Kubectl, namespace: str) -> None:
    assert kubectl.ok("create", "serviceaccount", "builder", "-n", namespace).strip() == "serviceaccount/builder created"
    account = get(kubectl, "serviceaccount", "builder", "-n", namespace)
    assert account["kind"] == "ServiceAccount" and account["metadata"]["name"] == "builder"
    table = kubectl.ok("get", "sa", "-n", namespace).split("\n")
    assert table[0].split() == ["NAME", "SECRETS", "AGE"]
    assert table[1].split()[:2] == ["builder", "0"]


def test_create_service_clusterip(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("create", "service", "clusterip", "api", "-n", namespace, "--tcp=80:8080", "--tcp=443:https")
    svc = get(kubectl, "service", "api", "-n", namespace)
    assert svc["metadata"]["labels"] == {"app": "api"}
    spec = svc["spec"]
    assert spec["ports"] == [
        {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "443-https", "port": 443, "protocol": "TCP", "targetPort": "https"},
    ]
    assert spec["selector"] == {"app": "api"}
    assert spec["type"] == "ClusterIP"
    assert spec["sessionAffinity"] == "None"
    assert spec["clusterIP"] and spec["clusterIPs"] == [spec["clusterIP"]]


def test_create_service_nodeport(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("create", "service", "nodeport", "np", "-n", namespace, "--tcp=5678:8080")
    spec = get(kubectl, "service", "np", "-n", namespace)["spec"]
    assert spec["type"] == "NodePort"
    (port,) = spec["ports"]
    assert {k: port[k] for k in ("name", "port", "protocol", "targetPort")} == {
        "name": "5678-8080", "port": 5678, "protocol": "TCP", "targetPort": 8080}


def test_expose_deployment(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("create", "deployment", "web", "-n", namespace, "--image=nginx", "--port=8080")
    assert kubectl.ok("expose", "deployment", "web", "-n", namespace, "--port=80",
                      "--target-port=8080").strip() == "service/web exposed"
    svc = get(kubectl, "service", "web", "-n", namespace)
    assert svc["metadata"]["labels"] == {"app": "web"}
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert svc["spec"]["type"] == "ClusterIP"


def test_run_pod(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("run", "p1", "-n", namespace, "--image=busybox:1.36", "--port=8080", "--env=A=1",
               "--labels=tier=web,team=a", "--restart=Never", "--command", "--", "sleep", "3600")
    pod = get(kubectl, "pod", "p1", "-n", namespace)
    assert pod["metadata"]["labels"] == {"tier": "web", "team": "a"}
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never"
    (c,) = spec["containers"]
    assert c["name"] == "p1" and c["image"] == "busybox:1.36" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["command"] == ["sleep", "3600"] and "args" not in c
    assert c["env"] == [{"name": "A", "value": "1"}]
    assert c["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]


def test_create_ingress(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("create", "ingress", "ing", "-n", namespace, "--class=nginx",
               "--rule=foo.com/bar=svc1:80", "--rule=/*=svc2:http", "--annotation=a=b")
    ing = get(kubectl, "ingress", "ing", "-n", namespace)
    assert ing["metadata"]["annotations"] == {"a": "b"}
    assert ing["spec"] == {"ingressClassName": "nginx", "rules": [
        {"host": "foo.com", "http": {"paths": [
            {"backend": {"service": {"name": "svc1", "port": {"number": 80}}}, "path": "/bar", "pathType": "Exact"}]}},
        {"http": {"paths": [
            {"backend": {"service": {"name": "svc2", "port": {"name": "http"}}}, "path": "/", "pathType": "Prefix"}]}},
    ]}


def test_create_existing_is_already_exists(kubectl: Kubectl, namespace: str) -> None:
    kubectl.ok("create", "configmap", "twice", "-n", namespace)
    p = kubectl("create", "configmap", "twice", "-n", namespace)
    assert p.returncode == 1
    assert 'configmaps "twice" already exists' in p.stderr


def test_protobuf_errors_over_http(http: httpx.Client, namespace: str) -> None:
    """A kind we cannot decode is 415 (kubectl then says so); garbage bytes are 400."""
    widget = MAGIC + bytes.fromhex("0a0c0a0276311206") + b"Widget" + bytes.fromhex("1200")
    r = http.post(f"/api/v1/namespaces/{namespace}/configmaps", content=widget, headers={"Content-Type": PROTOBUF})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = http.post(f"/api/v1/namespaces/{namespace}/configmaps", content=b"not protobuf",
                  headers={"Content-Type": PROTOBUF})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
