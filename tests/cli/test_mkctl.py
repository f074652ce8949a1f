"""mkctl through typer's CliRunner against the real apiserver (etcd-backed) of the test session."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner, Result

from cli.mkctl import app
from tests.cluster import ApiServerProcess, free_port

runner = CliRunner()

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  replicas: 2
  minReadySeconds: 3
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
        ports: [{containerPort: 80}]
        env: [{name: A, value: "1"}, {name: B, value: "2"}]
"""

SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: nginx, labels: {app: nginx}}
spec:
  selector: {app: nginx}
  ports: [{port: 80, targetPort: 80}]
"""


def mk(server: ApiServerProcess | str, *args: str, env: dict[str, str] | None = None,
       input: str | None = None) -> Result:
    url = server if isinstance(server, str) else server.url
    return runner.invoke(app, ["--server", url, *args], env=env, input=input)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def deployment(http: httpx.Client, namespace: str, name: str = "nginx") -> dict[str, Any]:
    r = http.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
    assert r.status_code == 200, r.text
    return r.json()


# ------------------------------------------------------------------------------- apply
def test_apply_create_unchanged_configured(apiserver: ApiServerProcess, http: httpx.Client, namespace: str,
                                           tmp_path: Path) -> None:
    f = write(tmp_path, "app.yaml", DEPLOYMENT + "---\n" + SERVICE)
    r = mk(apiserver, "apply", "-f", f, "-n", namespace)
    assert r.exit_code == 0, r.output
    assert r.stdout == "deployment.apps/nginx created\nservice/nginx created\n"
    live = deployment(http, namespace)
    last = json.loads(live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 2 and "annotations" not in last["metadata"]

    r = mk(apiserver, "apply", "-f", f, "-n", namespace)
    assert r.stdout == "deployment.apps/nginx unchanged\nservice/nginx unchanged\n", r.output

    # Someone else sets a field the file never had: apply keeps it.
    r2 = http.patch(f"/apis/apps/v1/namespaces/{namespace}/deployments/nginx",
                    json={"metadata": {"annotations": {"owner": "other"}}},
                    headers={"Content-Type": "application/merge-patch+json"})
    assert r2.status_code == 200, r2.text
    changed = (DEPLOYMENT.replace("replicas: 2", "replicas: 4").replace("  minReadySeconds: 3\n", "")
               .replace(', {name: B, value: "2"}', ""))
    r = mk(apiserver, "apply", "-f", write(tmp_path, "app.yaml", changed), "-n", namespace)
    assert r.exit_code == 0, r.output
    assert r.stdout == "deployment.apps/nginx configured\n"
    live = deployment(http, namespace)
    assert live["spec"]["replicas"] == 4
    assert "minReadySeconds" not in live["spec"] or live["spec"]["minReadySeconds"] == 0  # removed from the file
    assert live["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert live["metadata"]["annotations"]["owner"] == "other"
    assert mk(apiserver, "apply", "-f", str(tmp_path), "-n", namespace).stdout == "deployment.apps/nginx unchanged\n"


def test_apply_stdin_list_and_recursive_dir(apiserver: ApiServerProcess, namespace: str, tmp_path: Path) -> None:
    doc = {"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "1"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}}]}
    r = mk(apiserver, "apply", "-f", "-", "-n", namespace, input=json.dumps(doc))
    assert r.stdout == "configmap/c1 created\nconfigmap/c2 created\n", r.output
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "c3.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c3}\n")
    write(tmp_path / "sub", "ignored.txt", "not yaml: [")
    assert mk(apiserver, "apply", "-f", str(tmp_path), "-n", namespace).stderr.startswith("error: no objects")
    r = mk(apiserver, "apply", "-R", "-f", str(tmp_path), "-n", namespace)
    assert r.stdout == "configmap/c3 created\n", r.output


def test_apply_errors(apiserver: ApiServerProcess, namespace: str, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n")
    r = mk(apiserver, "apply", "-f", bad, "-n", namespace)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: error parsing {bad}: error converting YAML to JSON: yaml: line")
    invalid = write(tmp_path, "inv.yaml", DEPLOYMENT.replace("replicas: 2", "replicas: -1"))
    r = mk(apiserver, "apply", "-f", invalid, "-n", namespace)
    assert r.exit_code == 1
    assert r.stderr.startswith('The Deployment "nginx" is invalid: ') and "spec.replicas" in r.stderr, r.stderr
    unknown = write(tmp_path, "u.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    r = mk(apiserver, "apply", "-f", unknown, "-n", namespace)
    assert r.exit_code == 1 and 'no matches for kind "Widget" in version "example.com/v1"' in r.stderr
    other = write(tmp_path, "ns.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: elsewhere}\n")
    r = mk(apiserver, "apply", "-f", other, "-n", namespace)
    assert r.exit_code == 1 and "does not match the namespace" in r.stderr


# ------------------------------------------------------------------------------- get
@pytest.fixture
def applied(apiserver: ApiServerProcess, namespace: str, tmp_path: Path) -> str:
    r = mk(apiserver, "apply", "-f", write(tmp_path, "app.yaml", DEPLOYMENT + "---\n" + SERVICE), "-n", namespace)
    assert r.exit_code == 0, r.output
    return namespace


def test_get_table_formats(apiserver: ApiServerProcess, applied: str) -> None:
    ns = applied
    r = mk(apiserver, "get", "deploy", "-n", ns)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[1].split()[:2] == ["nginx", "0/2"]
    wide = mk(apiserver, "get", "deployments.apps", "nginx", "-o", "wide", "-n", ns).stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1].split()[-3:] == ["nginx", "nginx:1.25", "app=nginx"]
    both = mk(apiserver, "get", "deploy,svc", "-n", ns).stdout
    assert "deployment.apps/nginx" in both and "service/nginx" in both and "\n\n" in both
    every = mk(apiserver, "get", "deploy", "-A").stdout.splitlines()
    assert every[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert [ns, "nginx"] in [line.split()[:2] for line in every]
    assert mk(apiserver, "get", "svc", "-l", "app=nginx", "-n", ns).stdout.splitlines()[1].startswith("nginx ")
    r = mk(apiserver, "get", "svc", "-l", "app=other", "-n", ns)
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == f"No resources found in {ns} namespace.\n"
    r = mk(apiserver, "get", "pods", "--field-selector", "metadata.name=x", "-n", ns)
    assert r.stderr == f"No resources found in {ns} namespace.\n"


def test_get_object_formats(apiserver: ApiServerProcess, applied: str) -> None:
    ns = applied
    assert mk(apiserver, "get", "deploy,svc", "-o", "name", "-n", ns).stdout == \
        "deployment.apps/nginx\nservice/nginx\n"
    assert mk(apiserver, "get", "deploy/nginx", "-o", "name", "-n", ns).stdout == "deployment.apps/nginx\n"
    one = yaml.safe_load(mk(apiserver, "get", "deploy", "nginx", "-o", "yaml", "-n", ns).stdout)
    assert (one["kind"], one["metadata"]["name"], one["spec"]["replicas"]) == ("Deployment", "nginx", 2)
    assert "managedFields" not in one["metadata"]  # as kubectl, only with --show-managed-fields
    shown = yaml.safe_load(mk(apiserver, "get", "deploy", "nginx", "-o", "yaml", "-n", ns,
                              "--show-managed-fields").stdout)
    assert [m["operation"] for m in shown["metadata"]["managedFields"]] == ["Update"]
    many = json.loads(mk(apiserver, "get", "svc", "-o", "json", "-n", ns).stdout)
    assert many["kind"] == "List" and [i["kind"] for i in many["items"]] == ["Service"]
    r = mk(apiserver, "get", "deploy", "-o", "bogus", "-n", ns)
    assert r.exit_code == 1 and r.stderr.startswith("error: unable to match a printer")


def test_get_short_and_cluster_scoped_names(apiserver: ApiServerProcess, namespace: str) -> None:
    r = mk(apiserver, "get", "ns", namespace)
    assert r.exit_code == 0 and r.stdout.splitlines()[1].split()[:2] == [namespace, "Active"]
    for typed in ("po", "pod", "pods", "Pod", "svc", "ep", "ev", "cm", "rs", "ing", "no"):
        assert mk(apiserver, "get", typed, "-n", namespace).exit_code == 0, typed


def test_get_watch_sees_a_change(apiserver: ApiServerProcess, http: httpx.Client, applied: str) -> None:
    ns = applied

    def scale_later() -> None:
        time.sleep(1.0)
        http.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/nginx/scale", json={"spec": {"replicas": 5}},
                   headers={"Content-Type": "application/merge-patch+json"})

    thread = threading.Thread(target=scale_later)
    thread.start()
    started = time.monotonic()
    r = mk(apiserver, "get", "deploy", "nginx", "-w", "--watch-timeout", "3", "-n", ns)
    thread.join()
    assert r.exit_code == 0, r.output
    assert time.monotonic() - started < 10
    lines = r.stdout.splitlines()
    assert lines[0].split()[0] == "NAME"
    assert lines[1].split()[:2] == ["nginx", "0/2"]
    assert any(line.split()[:2] == ["nginx", "0/5"] for line in lines[2:]), r.stdout


def test_get_errors(apiserver: ApiServerProcess, namespace: str) -> None:
    r = mk(apiserver, "get", "pods", "nope", "-n", namespace)
    assert r.exit_code == 1 and r.stderr == 'Error from server (NotFound): pods "nope" not found\n'
    assert mk(apiserver, "get", "pods", "nope", "--ignore-not-found", "-n", namespace).exit_code == 0
    r = mk(apiserver, "get", "foo")
    assert r.exit_code == 1 and r.stderr == 'error: the server doesn\'t have a resource type "foo"\n'
    r = mk(f"http://127.0.0.1:{free_port()}", "get", "pods")
    assert r.exit_code == 1
    assert r.stderr.startswith("The connection to the server 127.0.0.1:") and "was refused" in r.stderr
    r = mk(apiserver, "get")
    assert r.exit_code == 1 and r.stderr.startswith("error: You must specify the type of resource to get.")


# ------------------------------------------------------------------------------- describe
def test_describe_with_events(apiserver: ApiServerProcess, http: httpx.Client, applied: str) -> None:
    ns = applied
    r = mk(apiserver, "describe", "deploy", "nginx", "-n", ns)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1].split() == ["Events:", "<none>"]
    uid = deployment(http, ns)["metadata"]["uid"]
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "nginx.1", "namespace": ns},
             "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx", "namespace": ns,
                                "uid": uid},
             "reason": "ScalingReplicaSet", "message": "Scaled up replica set nginx-1 to 2", "type": "Normal",
             "source": {"component": "deployment-controller"}, "count": 1,
             "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z"}
    assert http.post(f"/api/v1/namespaces/{ns}/events", json=event).status_code == 201
    # An event about another object (same name, other uid) is not shown.
    stale = {**event, "metadata": {"name": "nginx.2", "namespace": ns}, "reason": "StaleReason",
             "involvedObject": {**event["involvedObject"], "uid": "other"}}
    assert http.post(f"/api/v1/namespaces/{ns}/events", json=stale).status_code == 201
    out = mk(apiserver, "describe", "deployment/nginx", "-n", ns).stdout
    lines = out.splitlines()
    assert lines[0].split() == ["Name:", "nginx"]
    assert lines[1].split() == ["Namespace:", ns]
    assert any(line.startswith("Replicas:") and "2 desired" in line for line in lines)
    assert any(line.split() == ["StrategyType:", "RollingUpdate"] for line in lines)
    assert "Pod Template:" in lines
    assert lines[-4] == "Events:"
    assert lines[-1].split()[:2] == ["Normal", "ScalingReplicaSet"]
    assert lines[-1].rstrip().endswith("deployment-controller  Scaled up replica set nginx-1 to 2")
    assert "StaleReason" not in out
    svc = mk(apiserver, "describe", "svc", "nginx", "-n", ns).stdout
    assert any(line.split()[:2] == ["Type:", "ClusterIP"] for line in svc.splitlines())
    assert any(line.split() == ["Selector:", "app=nginx"] for line in svc.splitlines())
    nsd = mk(apiserver, "describe", "ns", ns).stdout
    assert nsd.splitlines()[0].split() == ["Name:", ns] and "Status:       Active" in nsd


def test_describe_pod_and_generic(apiserver: ApiServerProcess, namespace: str, tmp_path: Path) -> None:
    pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers: [{name: web, image: nginx}]\n"
    assert mk(apiserver, "apply", "-f", write(tmp_path, "p.yaml", pod), "-n", namespace).exit_code == 0
    out = mk(apiserver, "describe", "po", "web", "-n", namespace).stdout
    assert "Containers:\n  web:\n" in out
    assert any(line.split() == ["Image:", "nginx"] for line in out.splitlines())
    assert any(line.split() == ["Status:", "Pending"] for line in out.splitlines())
    lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l}\nspec: {holderIdentity: me}\n"
    assert mk(apiserver, "apply", "-f", write(tmp_path, "l.yaml", lease), "-n", namespace).exit_code == 0
    out = mk(apiserver, "describe", "lease", "l", "-n", namespace).stdout
    assert "Spec:\n  Holder Identity:  me\n" in out
    r = mk(apiserver, "describe", "po", "missing", "-n", namespace)
    assert r.exit_code == 1 and r.stderr == 'Error from server (NotFound): pods "missing" not found\n'


# ------------------------------------------------------------------------------- delete
def test_delete_by_name_file_selector_and_cascade(apiserver: ApiServerProcess, http: httpx.Client,
                                                  applied: str, tmp_path: Path) -> None:
    ns = applied
    r = mk(apiserver, "delete", "svc", "nginx", "-n", ns)
    assert r.exit_code == 0 and r.stdout == 'service "nginx" deleted\n', r.output
    assert http.get(f"/api/v1/namespaces/{ns}/services/nginx").status_code == 404
    r = mk(apiserver, "delete", "svc", "nginx", "-n", ns)
    assert r.exit_code == 1 and r.stderr == 'Error from server (NotFound): services "nginx" not found\n'
    assert mk(apiserver, "delete", "svc", "nginx", "--ignore-not-found", "-n", ns).exit_code == 0

    r = mk(apiserver, "delete", "deploy", "nginx", "--cascade=orphan", "--wait=false", "-n", ns)
    assert r.exit_code == 0 and r.stdout == 'deployment.apps "nginx" deleted\n', r.output

    f = write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c1, labels: {x: y}}\n---\n"
                                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c2, labels: {x: y}}\n---\n"
                                   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c3}\n")
    assert mk(apiserver, "apply", "-f", f, "-n", ns).exit_code == 0
    r = mk(apiserver, "delete", "cm", "-l", "x=y", "-n", ns)
    assert r.stdout == 'configmap "c1" deleted\nconfigmap "c2" deleted\n', r.output
    r = mk(apiserver, "delete", "-f", f, "--grace-period", "0", "--ignore-not-found", "-n", ns)
    assert r.stdout == 'configmap "c3" deleted\n', r.output
    r = mk(apiserver, "delete", "cm", "-n", ns)
    assert r.exit_code == 1 and r.stderr == "error: resource(s) were provided, but no name was specified\n"
    assert mk(apiserver, "delete", "cm", "--all", "-n", ns).stderr == "No resources found\n"


def test_delete_foreground_keeps_the_object_until_its_dependents_are_gone(
        apiserver: ApiServerProcess, http: httpx.Client, applied: str) -> None:
    ns = applied
    r = mk(apiserver, "delete", "deploy/nginx", "--cascade=foreground", "--wait=false", "-n", ns)
    assert r.exit_code == 0, r.output
    live = http.get(f"/apis/apps/v1/namespaces/{ns}/deployments/nginx").json()
    if live.get("kind") == "Deployment":  # no garbage collector finished it yet
        assert "foregroundDeletion" in live["metadata"]["finalizers"]
    r = mk(apiserver, "delete", "deploy", "x", "--cascade=sideways", "-n", ns)
    assert r.exit_code == 1 and r.stderr.startswith("error: invalid cascade value (sideways)")


# ------------------------------------------------------------------------------- other verbs
def test_create_namespace_and_deployment(apiserver: ApiServerProcess, http: httpx.Client, namespace: str) -> None:
    name = f"{namespace}-made"
    try:
        r = mk(apiserver, "create", "namespace", name)
        assert r.exit_code == 0 and r.stdout == f"namespace/{name} created\n"
        r = mk(apiserver, "create", "namespace", name)
        assert r.exit_code == 1 and r.stderr.startswith("Error from server (AlreadyExists): ")
    finally:
        http.delete(f"/api/v1/namespaces/{name}")
    r = mk(apiserver, "create", "deployment", "web", "--image", "nginx", "--replicas", "2", "-n", namespace)
    assert r.stdout == "deployment.apps/web created\n", r.output
    assert deployment(http, namespace, "web")["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"


def test_scale(apiserver: ApiServerProcess, http: httpx.Client, applied: str) -> None:
    ns = applied
    r = mk(apiserver, "scale", "deploy/nginx", "--replicas=3", "-n", ns)
    assert r.exit_code == 0 and r.stdout == "deployment.apps/nginx scaled\n", r.output
    assert deployment(http, ns)["spec"]["replicas"] == 3
    r = mk(apiserver, "scale", "deployment", "nginx", "--replicas", "1", "--current-replicas", "2", "-n", ns)
    assert r.exit_code == 1 and r.stderr == "error: Expected replicas to be 2, was 3\n"
    r = mk(apiserver, "scale", "deploy/missing", "--replicas=1", "-n", ns)
    assert r.exit_code == 1 and "NotFound" in r.stderr


def test_api_resources_and_version(apiserver: ApiServerProcess) -> None:
    r = mk(apiserver, "api-resources")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    # Keyed by name and group-version: metrics.k8s.io serves "pods" and "nodes" too, as kubectl lists them.
    rows = {(line.split()[0], line.split()[-3]): line.split() for line in lines[1:]}
    assert rows["pods", "v1"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["pods", "metrics.k8s.io/v1beta1"] == ["pods", "metrics.k8s.io/v1beta1", "true", "PodMetrics"]
    assert rows["deployments", "apps/v1"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["namespaces", "v1"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert not any(name == "pods/status" for name, _ in rows)
    assert "namespaces" not in mk(apiserver, "api-resources", "--namespaced=true").stdout
    assert mk(apiserver, "api-resources", "--api-group", "apps", "-o", "name").stdout == \
        "controllerrevisions.apps\ndaemonsets.apps\ndeployments.apps\nreplicasets.apps\nstatefulsets.apps\n"
    r = mk(apiserver, "version")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Client Version: v") and lines[1] == "Server Version: v1.32.0-minik8s"
    assert "serverVersion" in json.loads(mk(apiserver, "version", "-o", "json").stdout)


def test_logs_prints_the_server_error(apiserver: ApiServerProcess, namespace: str, tmp_path: Path) -> None:
    r = mk(apiserver, "logs", "nope", "-n", namespace)
    assert r.exit_code == 1 and r.stderr == 'Error from server (NotFound): pods "nope" not found\n'
    pod = ("apiVersion: v1\nkind: Pod\nmetadata: {name: web}\n"
           "spec:\n  containers: [{name: web, image: nginx}]\n")
    mk(apiserver, "apply", "-f", write(tmp_path, "p.yaml", pod), "-n", namespace)
    r = mk(apiserver, "logs", "web", "--tail", "5", "-c", "web", "-n", namespace)
    assert r.exit_code == 1 and r.stderr.startswith("Error from server (BadRequest): ") and "web" in r.stderr


# ------------------------------------------------------------------------------- kubeconfig
def test_kubeconfig_env_and_context(apiserver: ApiServerProcess, namespace: str, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "good",
              "clusters": [{"name": "real", "cluster": {"server": apiserver.url}},
                           {"name": "dead", "cluster": {"server": dead}}],
              "users": [{"name": "u", "user": {}}],
              "contexts": [{"name": "good", "context": {"cluster": "real", "user": "u", "namespace": namespace}},
                           {"name": "bad", "context": {"cluster": "dead", "user": "u"}}]}
    path = write(tmp_path, "kubeconfig", yaml.safe_dump(config))
    env = {"KUBECONFIG": path}
    assert runner.invoke(app, ["create", "deployment", "web", "--image", "nginx"], env=env).exit_code == 0
    r = runner.invoke(app, ["get", "deploy", "-o", "name"], env=env)  # namespace from the context
    assert r.stdout == "deployment.apps/web\n", r.output
    r = runner.invoke(app, ["--context", "bad", "get", "deploy"], env=env)
    assert r.exit_code == 1 and "was refused" in r.stderr
    r = runner.invoke(app, ["get", "deploy", "--context", "good", "-o", "name"], env={"KUBECONFIG": "/nonexistent"},
                      )
    assert r.exit_code == 1 and r.stderr == 'error: context "good" does not exist\n'
    r = runner.invoke(app, ["--kubeconfig", path, "get", "deploy", "-o", "name"])
    assert r.stdout == "deployment.apps/web\n", r.output
    r = runner.invoke(app, ["--kubeconfig", path, "--server", dead, "get", "deploy"])  # --server wins
    assert r.exit_code == 1 and "was refused" in r.stderr
