"""The real ``kubectl`` (v1.32) against a real minik8s apiserver over real etcd.

kubectl runs with its default flags (client-side apply, strict field validation, discovery,
tables for ``get``); only ``KUBECONFIG`` points it at the test apiserver. Every test asserts
what real Kubernetes prints and stores.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

DEPLOY = "nginx-deployment"
SVC = "nginx-service"


def manifest(ns: str, *, replicas: int = 3, image: str = "nginx:1.14.2", env: bool = False,
             https_port: bool = True) -> str:
    """A Namespace, the Kubernetes docs' nginx Deployment and a Service, in one file."""
    ports = "        - containerPort: 80\n"
    if https_port:
        ports += "        - containerPort: 443\n          name: https\n"
    env_block = "        env:\n        - name: GREETING\n          value: hello\n" if env else ""
    return f"""\
apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {DEPLOY}
  namespace: {ns}
  labels:
    app: nginx
spec:
  replicas: {replicas}
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
        image: {image}
{env_block}        ports:
{ports}---
apiVersion: v1
kind: Service
metadata:
  name: {SVC}
  namespace: {ns}
  labels:
    app: nginx
spec:
  selector:
    app: nginx
  ports:
  - protocol: TCP
    port: 80
    targetPort: 80
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def get_json(kubectl: Kubectl, *args: str) -> dict:  # type: ignore[type-arg]
    return json.loads(kubectl.ok("get", *args, "-o", "json"))


@pytest.fixture
def app(kubectl: Kubectl, unique_ns: str, tmp_path: Path) -> tuple[str, Path]:
    """The nginx manifest applied into a fresh namespace; returns (namespace, manifest path)."""
    f = write(tmp_path, "app.yaml", manifest(unique_ns))
    kubectl.ok("apply", "-f", str(f))
    return unique_ns, f


# --- apply -------------------------------------------------------------------------------

def test_apply_created_unchanged_configured(kubectl: Kubectl, unique_ns: str, tmp_path: Path) -> None:
    ns = unique_ns
    f = write(tmp_path, "app.yaml", manifest(ns))

    out = kubectl.ok("apply", "-f", str(f))
    assert out.splitlines() == [
        f"namespace/{ns} created",
        f"deployment.apps/{DEPLOY} created",
        f"service/{SVC} created",
    ]

    out = kubectl.ok("apply", "-f", str(f))
    assert out.splitlines() == [
        f"namespace/{ns} unchanged",
        f"deployment.apps/{DEPLOY} unchanged",
        f"service/{SVC} unchanged",
    ]

    created = get_json(kubectl, "deployment", DEPLOY, "-n", ns)
    c = created["spec"]["template"]["spec"]["containers"][0]
    assert created["spec"]["replicas"] == 3
    assert c["image"] == "nginx:1.14.2"
    assert [p["containerPort"] for p in c["ports"]] == [80, 443]
    assert "env" not in c

    # Edit: fewer replicas, a new image, an env var, and the https port removed.
    f.write_text(manifest(ns, replicas=2, image="nginx:1.16.1", env=True, https_port=False))
    out = kubectl.ok("apply", "-f", str(f))
    assert out.splitlines() == [
        f"namespace/{ns} unchanged",
        f"deployment.apps/{DEPLOY} configured",
        f"service/{SVC} unchanged",
    ]

    d = get_json(kubectl, "deployment", DEPLOY, "-n", ns)
    assert d["spec"]["replicas"] == 2
    containers = d["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    c = containers[0]
    assert c["name"] == "nginx"
    assert c["image"] == "nginx:1.16.1"
    assert c["env"] == [{"name": "GREETING", "value": "hello"}]
    assert c["ports"] == [{"containerPort": 80, "protocol": "TCP"}], "the removed port must really be gone"
    assert d["metadata"]["generation"] == created["metadata"]["generation"] + 1
    assert d["metadata"]["uid"] == created["metadata"]["uid"]
    last = json.loads(d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 2

    # Applying the edited file again changes nothing.
    out = kubectl.ok("apply", "-f", str(f))
    assert f"deployment.apps/{DEPLOY} unchanged" in out.splitlines()
    again = get_json(kubectl, "deployment", DEPLOY, "-n", ns)
    assert again["metadata"]["resourceVersion"] == d["metadata"]["resourceVersion"]


def test_apply_unknown_field_is_rejected_strictly(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    f = write(tmp_path, "bad.yaml", f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: typo
  namespace: {namespace}
spec:
  replicaz: 3
  selector:
    matchLabels:
      app: typo
  template:
    metadata:
      labels:
        app: typo
    spec:
      containers:
      - name: c
        image: nginx
""")
    p = kubectl("apply", "-f", str(f))
    assert p.returncode == 1, p
    assert 'strict decoding error: unknown field "spec.replicaz"' in p.stderr
    assert p.stderr.startswith("Error from server (BadRequest): "), p.stderr
    g = kubectl("get", "deployment", "typo", "-n", namespace)
    assert g.returncode == 1
    assert g.stderr.strip() == 'Error from server (NotFound): deployments.apps "typo" not found'


def test_apply_selector_not_matching_labels_is_invalid(kubectl: Kubectl, namespace: str, tmp_path: Path) -> None:
    f = write(tmp_path, "bad.yaml", f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: x
  namespace: {namespace}
spec:
  selector:
    matchLabels:
      app: foo
  template:
    metadata:
      labels:
        app: bar
    spec:
      containers:
      - name: c
        image: nginx
""")
    p = kubectl("apply", "-f", str(f))
    assert p.returncode == 1, p
    assert p.stderr.startswith('The Deployment "x" is invalid: spec.template.metadata.labels: Invalid value: '), p.stderr
    assert "`selector` does not match template `labels`" in p.stderr
    assert kubectl("get", "deployment", "x", "-n", namespace).returncode == 1


def test_get_missing_pod_not_found(kubectl: Kubectl, namespace: str) -> None:
    p = kubectl("get", "pod", "nope", "-n", namespace)
    assert p.returncode == 1
    assert p.stdout == ""
    assert p.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'


# --- get ---------------------------------------------------------------------------------

def _table(out: str) -> tuple[list[str], list[list[str]]]:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    return lines[0].split(), [ln.split() for ln in lines[1:]]


def test_get_all_namespaces(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    header, rows = _table(kubectl.ok("get", "deployments", "-A"))
    assert header == ["NAMESPACE", "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert [ns, DEPLOY] in [r[:2] for r in rows]
    mine = next(r for r in rows if r[:2] == [ns, DEPLOY])
    assert mine[2] == "0/3"

    header, rows = _table(kubectl.ok("get", "svc", "--all-namespaces"))
    assert header[:3] == ["NAMESPACE", "NAME", "TYPE"]
    assert [ns, SVC, "ClusterIP"] in [r[:3] for r in rows]


def test_get_wide(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    header, rows = _table(kubectl.ok("get", "deploy", "-n", ns, "-o", "wide"))
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert len(rows) == 1
    row = dict(zip(header, rows[0]))
    assert row["NAME"] == DEPLOY
    assert row["READY"] == "0/3"
    assert row["CONTAINERS"] == "nginx"
    assert row["IMAGES"] == "nginx:1.14.2"
    assert row["SELECTOR"] == "app=nginx"

    header, rows = _table(kubectl.ok("get", "svc", "-n", ns, "-o", "wide"))
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"]
    row = dict(zip(header, rows[0]))
    assert row["NAME"] == SVC
    assert row["TYPE"] == "ClusterIP"
    assert row["EXTERNAL-IP"] == "<none>"
    assert row["PORT(S)"] == "80/TCP"
    assert row["SELECTOR"] == "app=nginx"
    svc = get_json(kubectl, "svc", SVC, "-n", ns)
    assert row["CLUSTER-IP"] == svc["spec"]["clusterIP"]


def test_get_yaml_and_json(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    d = yaml.safe_load(kubectl.ok("get", "deployment", DEPLOY, "-n", ns, "-o", "yaml"))
    assert d["apiVersion"] == "apps/v1"
    assert d["kind"] == "Deployment"
    assert d["metadata"]["name"] == DEPLOY
    assert d["metadata"]["namespace"] == ns
    assert d["metadata"]["labels"] == {"app": "nginx"}
    assert d["metadata"]["uid"] and d["metadata"]["resourceVersion"] and d["metadata"]["creationTimestamp"]
    assert d["metadata"]["generation"] == 1
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "nginx:1.14.2"
    assert c["ports"][0] == {"containerPort": 80, "protocol": "TCP"}

    lst = yaml.safe_load(kubectl.ok("get", "deployments", "-n", ns, "-o", "yaml"))
    assert lst["kind"] == "List"
    assert [i["metadata"]["name"] for i in lst["items"]] == [DEPLOY]

    j = get_json(kubectl, "deployment", DEPLOY, "-n", ns)
    assert j == d

    s = get_json(kubectl, "service", SVC, "-n", ns)
    assert s["kind"] == "Service" and s["apiVersion"] == "v1"
    assert s["spec"]["type"] == "ClusterIP"
    assert s["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert s["spec"]["selector"] == {"app": "nginx"}


def test_get_label_selector(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    header, rows = _table(kubectl.ok("get", "deploy", "-n", ns, "-l", "app=nginx"))
    assert [r[0] for r in rows] == [DEPLOY]

    p = kubectl("get", "deploy", "-n", ns, "-l", "app=other")
    assert p.returncode == 0, p
    assert p.stdout == ""
    assert p.stderr.strip() == f"No resources found in {ns} namespace."

    items = get_json(kubectl, "deploy,svc", "-n", ns, "-l", "app=nginx")["items"]
    assert sorted(i["kind"] for i in items) == ["Deployment", "Service"]


def test_get_several_kinds_and_short_names(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    out = kubectl.ok("get", "deploy,svc", "-n", ns)
    assert f"deployment.apps/{DEPLOY}" in out
    assert f"service/{SVC}" in out
    blocks = [b for b in out.split("\n\n") if b.strip()]
    assert len(blocks) == 2
    assert blocks[0].splitlines()[0].split()[:2] == ["NAME", "READY"]
    assert blocks[1].splitlines()[0].split()[:2] == ["NAME", "TYPE"]

    for short, long in (("deploy", "deployments"), ("svc", "services")):
        assert kubectl.ok("get", short, "-n", ns, "-o", "name") == kubectl.ok("get", long, "-n", ns, "-o", "name")
    assert kubectl.ok("get", "deploy", "-n", ns, "-o", "name").strip() == f"deployment.apps/{DEPLOY}"
    assert kubectl.ok("get", "svc", "-n", ns, "-o", "name").strip() == f"service/{SVC}"

    header, rows = _table(kubectl.ok("get", "ns"))
    assert header == ["NAME", "STATUS", "AGE"]
    assert [ns, "Active"] in [r[:2] for r in rows]
    assert ["default", "Active"] in [r[:2] for r in rows]
    assert kubectl.ok("get", "ns", ns, "-o", "name").strip() == f"namespace/{ns}"


def test_get_watch_sees_scale(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    proc = kubectl.popen("get", "deploy", "-n", ns, "-w")
    lines: "queue.Queue[str]" = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.rstrip("\n"))

    t = threading.Thread(target=pump, daemon=True)
    t.start()

    def next_line(timeout: float = 15) -> str:
        try:
            return lines.get(timeout=timeout)
        except queue.Empty:
            err = proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
            raise AssertionError(f"no line from kubectl get -w within {timeout}s (exit={proc.poll()}) {err}")

    try:
        header = next_line().split()
        assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        first = next_line().split()
        assert first[:2] == [DEPLOY, "0/3"]

        assert kubectl.ok("scale", f"deploy/{DEPLOY}", "--replicas=4", "-n", ns).strip() == \
            f"deployment.apps/{DEPLOY} scaled"
        seen = next_line().split()
        assert seen[:2] == [DEPLOY, "0/4"]
        assert proc.poll() is None, "kubectl get -w must keep watching"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:
            proc.kill()
            proc.wait(5)
    assert proc.returncode is not None


# --- describe ----------------------------------------------------------------------------

def _fields(out: str) -> dict[str, str]:
    """Top-level ``Key:  value`` lines of kubectl describe output."""
    got: dict[str, str] = {}
    for line in out.splitlines():
        if line and not line[0].isspace() and ":" in line:
            k, _, v = line.partition(":")
            got.setdefault(k, v.strip())
    return got


def test_describe(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    out = kubectl.ok("describe", "deployment", DEPLOY, "-n", ns)
    f = _fields(out)
    assert f["Name"] == DEPLOY
    assert f["Namespace"] == ns
    assert f["Labels"] == "app=nginx"
    assert f["Selector"] == "app=nginx"
    assert f["Replicas"].startswith("3 desired | 0 updated | 0 total | 0 available")
    assert f["StrategyType"] == "RollingUpdate"
    assert f["RollingUpdateStrategy"] == "25% max unavailable, 25% max surge"
    assert "CreationTimestamp" in f
    assert "Pod Template:" in out
    assert "Image:      nginx:1.14.2" in out or "Image:" in out and "nginx:1.14.2" in out
    assert "nginx:" in out  # the container section

    out = kubectl.ok("describe", "svc", SVC, "-n", ns)
    f = _fields(out)
    svc = get_json(kubectl, "svc", SVC, "-n", ns)
    assert f["Name"] == SVC
    assert f["Namespace"] == ns
    assert f["Selector"] == "app=nginx"
    assert f["Type"] == "ClusterIP"
    assert f["IP"] == svc["spec"]["clusterIP"]
    assert f["Port"].split() == ["<unset>", "80/TCP"]
    assert f["TargetPort"] == "80/TCP"
    assert f["Session Affinity"] == "None"

    out = kubectl.ok("describe", "ns", ns)
    f = _fields(out)
    assert f["Name"] == ns
    assert f["Status"] == "Active"
    assert f["Labels"] == f"kubernetes.io/metadata.name={ns}"


# --- scale, label, annotate, patch ---------------------------------------------------------

def test_scale(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    out = kubectl.ok("scale", f"deploy/{DEPLOY}", "--replicas=5", "-n", ns)
    assert out.strip() == f"deployment.apps/{DEPLOY} scaled"
    d = get_json(kubectl, "deploy", DEPLOY, "-n", ns)
    assert d["spec"]["replicas"] == 5
    assert d["metadata"]["generation"] == 2
    # a precondition that does not hold is refused
    p = kubectl("scale", f"deploy/{DEPLOY}", "--replicas=1", "--current-replicas=3", "-n", ns)
    assert p.returncode == 1
    assert "Expected replicas to be 3, was 5" in p.stderr
    assert get_json(kubectl, "deploy", DEPLOY, "-n", ns)["spec"]["replicas"] == 5


def test_label_and_annotate(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    assert kubectl.ok("label", "deploy", DEPLOY, "-n", ns, "tier=web").strip() == f"deployment.apps/{DEPLOY} labeled"
    assert kubectl.ok("annotate", "deploy", DEPLOY, "-n", ns, "note=hi").strip() == \
        f"deployment.apps/{DEPLOY} annotated"
    d = get_json(kubectl, "deploy", DEPLOY, "-n", ns)
    assert d["metadata"]["labels"] == {"app": "nginx", "tier": "web"}
    assert d["metadata"]["annotations"]["note"] == "hi"

    p = kubectl("label", "deploy", DEPLOY, "-n", ns, "tier=db")
    assert p.returncode == 1
    assert "'tier' already has a value (web), and --overwrite is false" in p.stderr
    kubectl.ok("label", "deploy", DEPLOY, "-n", ns, "tier=db", "--overwrite")
    kubectl.ok("label", "deploy", DEPLOY, "-n", ns, "app-")
    kubectl.ok("annotate", "deploy", DEPLOY, "-n", ns, "note-")
    d = get_json(kubectl, "deploy", DEPLOY, "-n", ns)
    assert d["metadata"]["labels"] == {"tier": "db"}
    assert "note" not in (d["metadata"].get("annotations") or {})

    header, rows = _table(kubectl.ok("get", "deploy", "-n", ns, "-l", "tier=db"))
    assert [r[0] for r in rows] == [DEPLOY]


def test_patch_merge_json_strategic(kubectl: Kubectl, app: tuple[str, Path]) -> None:
    ns, _ = app
    out = kubectl.ok("patch", "deploy", DEPLOY, "-n", ns, "--type", "merge", "-p", '{"spec":{"replicas":7}}')
    assert out.strip() == f"deployment.apps/{DEPLOY} patched"
    assert get_json(kubectl, "deploy", DEPLOY, "-n", ns)["spec"]["replicas"] == 7

    out = kubectl.ok("patch", "deploy", DEPLOY, "-n", ns, "--type", "json",
                     "-p", '[{"op":"replace","path":"/spec/replicas","value":1}]')
    assert out.strip() == f"deployment.apps/{DEPLOY} patched"
    assert get_json(kubectl, "deploy", DEPLOY, "-n", ns)["spec"]["replicas"] == 1

    # strategic merge (the default): the container list merges by name, so other fields stay.
    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.17"}]}}}}'
    out = kubectl.ok("patch", "deploy", DEPLOY, "-n", ns, "-p", patch)
    assert out.strip() == f"deployment.apps/{DEPLOY} patched"
    c = get_json(kubectl, "deploy", DEPLOY, "-n", ns)["spec"]["template"]["spec"]["containers"]
    assert len(c) == 1
    assert c[0]["image"] == "nginx:1.17"
    assert [p["containerPort"] for p in c[0]["ports"]] == [80, 443]

    out = kubectl.ok("patch", "deploy", DEPLOY, "-n", ns, "--type", "strategic", "-p", patch)
    assert out.strip() == f"deployment.apps/{DEPLOY} patched (no change)"

    # a merge patch replaces lists wholesale
    kubectl.ok("patch", "deploy", DEPLOY, "-n", ns, "--type", "merge", "-p",
               '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"httpd:2.4"}]}}}}')
    c = get_json(kubectl, "deploy", DEPLOY, "-n", ns)["spec"]["template"]["spec"]["containers"]
    assert [(x["name"], x["image"]) for x in c] == [("web", "httpd:2.4")]
    assert "ports" not in c[0]

    # a JSON patch whose test fails is refused and changes nothing
    p = kubectl("patch", "deploy", DEPLOY, "-n", ns, "--type", "json",
                "-p", '[{"op":"test","path":"/spec/replicas","value":99},{"op":"replace","path":"/spec/replicas","value":9}]')
    assert p.returncode == 1
    assert get_json(kubectl, "deploy", DEPLOY, "-n", ns)["spec"]["replicas"] == 1


# --- namespaces, delete ------------------------------------------------------------------

def test_create_namespace(kubectl: Kubectl, unique_ns: str) -> None:
    out = kubectl.ok("create", "namespace", unique_ns)
    assert out.strip() == f"namespace/{unique_ns} created"
    ns = get_json(kubectl, "namespace", unique_ns)
    assert ns["status"]["phase"] == "Active"
    p = kubectl("create", "namespace", unique_ns)
    assert p.returncode == 1
    assert p.stderr.strip() == f'Error from server (AlreadyExists): namespaces "{unique_ns}" already exists'


def test_create_deployment_imperative(kubectl: Kubectl, namespace: str) -> None:
    # Like `create namespace`, kubectl's typed clients POST these bodies as protobuf.
    out = kubectl.ok("create", "deployment", "hello", "--image=nginx:1.25", "--replicas=2", "-n", namespace)
    assert out.strip() == "deployment.apps/hello created"
    d = get_json(kubectl, "deploy", "hello", "-n", namespace)
    assert d["spec"]["replicas"] == 2
    assert d["spec"]["selector"] == {"matchLabels": {"app": "hello"}}
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25"


def test_delete_file_removes_everything(kubectl: Kubectl, app: tuple[str, Path], http: httpx.Client) -> None:
    ns, f = app
    t0 = time.monotonic()
    p = kubectl("delete", "-f", str(f), timeout=60)
    assert p.returncode == 0, p
    assert p.stdout.splitlines() == [
        f'namespace "{ns}" deleted',
        f'deployment.apps "{DEPLOY}" deleted',
        f'service "{SVC}" deleted',
    ]
    assert time.monotonic() - t0 < 60
    # kubectl delete waits until the objects are gone
    g = kubectl("get", "ns", ns)
    assert g.returncode == 1
    assert g.stderr.strip() == f'Error from server (NotFound): namespaces "{ns}" not found'
    assert http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{DEPLOY}").status_code == 404
    assert http.get(f"/api/v1/namespaces/{ns}/services/{SVC}").status_code == 404


# --- discovery -----------------------------------------------------------------------------

def test_api_resources(kubectl: Kubectl) -> None:
    header, rows = _table(kubectl.ok("api-resources"))
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    # By name and group-version: metrics.k8s.io serves "pods" and "nodes" too.
    by_name = {(r[0], r[-3]): r for r in rows}
    assert by_name["pods", "v1"] == ["pods", "po", "v1", "true", "Pod"]
    assert by_name["deployments", "apps/v1"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert by_name["services", "v1"] == ["services", "svc", "v1", "true", "Service"]
    assert by_name["namespaces", "v1"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert by_name["replicasets", "apps/v1"] == ["replicasets", "rs", "apps/v1", "true", "ReplicaSet"]
    assert by_name["nodes", "v1"] == ["nodes", "no", "v1", "false", "Node"]
    assert by_name["nodes", "metrics.k8s.io/v1beta1"] == ["nodes", "metrics.k8s.io/v1beta1", "false", "NodeMetrics"]
    assert by_name["cronjobs", "batch/v1"] == ["cronjobs", "cj", "batch/v1", "true", "CronJob"]
    assert by_name["horizontalpodautoscalers", "autoscaling/v2"][1:] == ["hpa", "autoscaling/v2", "true",
                                                                         "HorizontalPodAutoscaler"]

    names = kubectl.ok("api-resources", "--api-group=apps", "-o", "name").split()
    assert names == ["controllerrevisions.apps", "daemonsets.apps", "deployments.apps", "replicasets.apps",
                     "statefulsets.apps"]


def test_version(kubectl: Kubectl) -> None:
    out = kubectl.ok("version")
    assert "Client Version: v1.32" in out
    server = [ln for ln in out.splitlines() if ln.startswith("Server Version: ")]
    assert len(server) == 1, out
    assert server[0].removeprefix("Server Version: ").startswith("v1.")
    v = json.loads(kubectl.ok("version", "-o", "json"))
    assert v["serverVersion"]["major"] == "1"
    assert v["serverVersion"]["gitVersion"].startswith("v1.")
