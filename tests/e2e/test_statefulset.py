"""Issue 12's StatefulSet acceptance, end to end on Docker: real etcd, apiserver, scheduler,
controller-manager and two Docker kubelets, driven by the real kubectl.

The shape is the Kubernetes docs' StatefulSet basics example (a headless Service ``nginx`` and a
StatefulSet ``web`` with the volumeClaimTemplate ``www``), with the local busybox image serving
``/usr/share/nginx/html`` instead of nginx. What it shows:

- ``web-0``, ``web-1``, ``web-2`` start in order: each pod is created only after the one before
  it is Running and Ready (read from a watch of the namespace's pods);
- each pod has its own claim ``www-web-N``, bound to its own volume (the default local-path class);
- a file written by ``web-1`` is still there after ``kubectl delete pod web-1`` (the new ``web-1``
  mounts the same claim);
- scaling down removes ``web-2`` before ``web-1`` and keeps every claim;
- ``kubectl rollout status|history|undo statefulset/...`` over ControllerRevisions, the rolling
  update going from the highest ordinal down, a partition; mkctl's get and rollout of a set;
- ``persistentVolumeClaimRetentionPolicy.whenScaled: Delete``: a scaled-down pod's claim is
  deleted with it (through its ownerReference and the garbage collector).

The module's Docker network is ``mk-sts-<random>`` on a free /24; containers are removed by their
node label and the network by name, before and after. Without an engine (or the image of
scripts/build-images) the module fails when ``CI`` is set and skips with the reason otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from cli.mkctl import app as mkctl_app
from kubelet.runtime import LABEL_POD_UID, LABEL_ROLE, ROLE_CONTAINER, DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started
from tests.e2e.test_workloads import PodRecorder

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

NODES = ("sts-1", "sts-2")
NODE_TIMINGS = ("--node-monitor-period", "0.5", "--node-monitor-grace-period", "15",
                "--default-toleration-seconds", "300")
HTML = "/usr/share/nginx/html"

MANIFEST = """
apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: "nginx"
  replicas: 3
  minReadySeconds: 0
  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: {image}
        command: ["httpd", "-f", "-p", "80", "-h", "{html}"]
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: {html}
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ "ReadWriteOnce" ]
      resources:
        requests:
          storage: 1Gi
"""


class Cluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        super().__init__(tmp, rt, prefix="mk-sts", label="statefulset", docker_nodes=NODES, cm_flags=NODE_TIMINGS,
                         ns_prefix="sts-", kubectl_timeout=150)

    def pod(self, ns: str, name: str) -> dict[str, Any] | None:
        return self.get(f"/api/v1/namespaces/{ns}/pods/{name}")

    def sts(self, ns: str, name: str) -> dict[str, Any]:
        return dict(self.get(f"/apis/apps/v1/namespaces/{ns}/statefulsets/{name}") or {})

    def claims(self, ns: str) -> dict[str, dict[str, Any]]:
        items = self.http.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims").json()["items"]
        return {c["metadata"]["name"]: c for c in items}

    def sh(self, ns: str, name: str, script: str) -> str:
        """``sh -c script`` in the pod's running container (through the engine: kubectl exec is not
        served), its output; fails on a non-zero exit."""
        uid = (self.pod(ns, name) or {"metadata": {}})["metadata"].get("uid")
        found = [x for x in self.rt.list({LABEL_POD_UID: str(uid), LABEL_ROLE: ROLE_CONTAINER}) if x.running]
        assert found, f"no running container of pod {ns}/{name}"
        result = self.rt.exec(found[0].id, ["sh", "-c", script], timeout=10)
        assert result.exit_code == 0, result.output
        return result.output.decode(errors="replace")

    def ready_pod(self, ns: str, name: str, *, not_uid: str = "", timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            p = self.pod(ns, name)
            if p is None or p["metadata"]["uid"] == not_uid or not running_and_ready(p):
                return None
            return p

        return dict(self.wait(f"pod {ns}/{name} Running and Ready", check, timeout))


def running_and_ready(pod: dict[str, Any]) -> bool:
    if pod["metadata"].get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
        return False
    conds = {c.get("type"): c.get("status") for c in (pod.get("status") or {}).get("conditions") or []}
    return conds.get("Ready") == "True"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with docker_started(lambda rt: Cluster(tmp_path_factory.mktemp("statefulset"), rt), ready_nodes=NODES) as c:
        yield c


@dataclass
class Web:
    ns: str
    events: list[tuple[str, dict[str, Any]]]  # the namespace's pod events until web-2 was Ready


@pytest.fixture(scope="module")
def web(cluster: Cluster) -> Iterator[Web]:
    """The docs' example applied with kubectl; its pods' events recorded from before the apply."""
    ns = cluster.namespace()
    recorder = PodRecorder(cluster, ns)  # type: ignore[arg-type]
    cluster.kubectl("apply", "-n", ns, "-f", "-", stdin=MANIFEST.format(image=IMAGE, html=HTML))
    for i in range(3):
        cluster.ready_pod(ns, f"web-{i}", timeout=120)
    yield Web(ns, recorder.stop())
    cluster.http.delete(f"/api/v1/namespaces/{ns}")


def replay(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """(event type, pod name, every pod's state just before the event) for each event."""
    state: dict[str, dict[str, Any]] = {}
    out = []
    for kind, obj in events:
        name = obj["metadata"]["name"]
        out.append((kind, name, dict(state)))
        if kind == "DELETED":
            state.pop(name, None)
        else:
            state[name] = obj
    return out


def test_pods_start_in_order_each_with_its_own_bound_claim(cluster: Cluster, web: Web) -> None:
    c, ns = cluster, web.ns
    added = [(name, before) for kind, name, before in replay(web.events) if kind == "ADDED"]
    assert [name for name, _ in added] == ["web-0", "web-1", "web-2"]
    for (name, before), previous in zip(added[1:], ["web-0", "web-1"]):
        assert previous in before and running_and_ready(before[previous]), \
            f"{name} was created before {previous} was Running and Ready"
    for i in range(3):
        pod = c.pod(ns, f"web-{i}") or {}
        assert pod["spec"]["hostname"] == f"web-{i}" and pod["spec"]["subdomain"] == "nginx"
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"web-{i}"
        assert pod["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == str(i)
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["www"]["persistentVolumeClaim"]["claimName"] == f"www-web-{i}"
    claims = c.wait("three Bound claims", lambda: (lambda cl: cl if len(cl) == 3 and all(
        x.get("status", {}).get("phase") == "Bound" for x in cl.values()) else None)(c.claims(ns)))
    assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
    assert len({x["spec"]["volumeName"] for x in claims.values()}) == 3  # each its own volume
    status = c.wait("status of 3 ready replicas", lambda: (lambda s: s if s.get("readyReplicas") == 3 else None)(
        c.sts(ns, "web").get("status") or {}))
    assert status["replicas"] == 3 and status["currentRevision"] == status["updateRevision"]
    table = c.kubectl("get", "statefulset", "web", "-n", ns).stdout.split("\n")
    assert table[0].split() == ["NAME", "READY", "AGE"] and table[1].split()[:2] == ["web", "3/3"]
    pvc_table = c.kubectl("get", "pvc", "-n", ns, "--no-headers").stdout
    assert pvc_table.count("Bound") == 3
    # The headless Service's endpoints name each pod by its hostname (what DNS serves as web-N.nginx).

    def hostnames() -> set[str] | None:
        slices = c.http.get(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                            params={"labelSelector": "kubernetes.io/service-name=nginx"}).json()["items"]
        found = {e.get("hostname") for s in slices for e in s.get("endpoints") or []}
        return found if found == {"web-0", "web-1", "web-2"} else None
    c.wait("the nginx endpoints named by the pods' hostnames", hostnames)


def test_data_survives_pod_deletion(cluster: Cluster, web: Web) -> None:
    c, ns = cluster, web.ns
    c.sh(ns, "web-1", f"echo hello-from-web-1 > {HTML}/index.html")
    old_uid = (c.pod(ns, "web-1") or {})["metadata"]["uid"]
    c.kubectl("delete", "pod", "web-1", "-n", ns)
    c.ready_pod(ns, "web-1", not_uid=old_uid, timeout=90)
    out = c.sh(ns, "web-1", f"cat {HTML}/index.html")
    assert out.strip() == "hello-from-web-1"
    # The other members have their own (empty) volumes.
    other = c.sh(ns, "web-0", f"ls {HTML}")
    assert "index.html" not in other


def test_scale_down_removes_the_highest_ordinal_first_and_keeps_claims(cluster: Cluster, web: Web) -> None:
    c, ns = cluster, web.ns
    recorder = PodRecorder(c, ns)  # type: ignore[arg-type]
    c.kubectl("scale", "statefulset", "web", "--replicas=1", "-n", ns)
    c.wait("only web-0 left", lambda: [p["metadata"]["name"] for p in c.http.get(
        f"/api/v1/namespaces/{ns}/pods").json()["items"]] == ["web-0"], 90)
    events = recorder.stop()
    deleting = [obj["metadata"]["name"] for kind, obj in events
                if kind == "MODIFIED" and obj["metadata"].get("deletionTimestamp")]
    first_seen = list(dict.fromkeys(deleting))
    assert first_seen == ["web-2", "web-1"], first_seen
    claims = c.claims(ns)
    assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
    assert all(x["status"]["phase"] == "Bound" for x in claims.values())
    # Scaling up again brings web-1 back on its old claim, with its data.
    c.kubectl("scale", "statefulset", "web", "--replicas=2", "-n", ns)
    c.ready_pod(ns, "web-1", timeout=90)
    assert c.sh(ns, "web-1", f"cat {HTML}/index.html").strip() == "hello-from-web-1"
    # Deleting the set deletes its pods (garbage collector) and keeps the claims (whenDeleted: Retain).
    c.kubectl("delete", "statefulset", "web", "-n", ns)
    c.wait("the pods gone with their set", lambda: not c.http.get(f"/api/v1/namespaces/{ns}/pods").json()["items"], 60)
    assert sorted(c.claims(ns)) == ["www-web-0", "www-web-1", "www-web-2"]


ROLL = {
    "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "roll"},
    "spec": {"serviceName": "roll", "replicas": 3, "selector": {"matchLabels": {"app": "roll"}},
             "template": {"metadata": {"labels": {"app": "roll"}},
                          "spec": {"terminationGracePeriodSeconds": 1,
                                   "containers": [{"name": "app", "image": IMAGE, "env": [{"name": "V", "value": "1"}],
                                                   "command": ["sh", "-c", "while true; do sleep 1; done"]}]}}},
}


def _env_of(pod: dict[str, Any] | None) -> str:
    return str(((pod or {}).get("spec", {}).get("containers") or [{}])[0].get("env", [{}])[0].get("value"))


def test_rollout_status_history_and_undo(cluster: Cluster) -> None:
    c = cluster
    ns = c.namespace()
    c.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(ROLL))
    out = c.kubectl("rollout", "status", "statefulset/roll", "-n", ns, "--timeout=90s").stdout
    assert "partitioned roll out complete: 3 new pods have been updated..." in out, out
    recorder = PodRecorder(c, ns)  # type: ignore[arg-type]
    c.kubectl("set", "env", "statefulset/roll", "V=2", "-n", ns)
    out = c.kubectl("rollout", "status", "statefulset/roll", "-n", ns, "--timeout=90s").stdout
    assert "partitioned roll out complete" in out, out
    events = recorder.stop()
    replaced = list(dict.fromkeys(obj["metadata"]["name"] for kind, obj in events if kind == "DELETED"))
    assert replaced == ["roll-2", "roll-1", "roll-0"], replaced  # the highest ordinal first
    assert all(_env_of(c.pod(ns, f"roll-{i}")) == "2" for i in range(3))
    history = c.kubectl("rollout", "history", "statefulset/roll", "-n", ns).stdout
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["1", "2"], history
    revisions = c.http.get(f"/apis/apps/v1/namespaces/{ns}/controllerrevisions").json()["items"]
    status = c.sts(ns, "roll")["status"]
    assert status["currentRevision"] == status["updateRevision"] in {r["metadata"]["name"] for r in revisions}
    assert {c.pod(ns, f"roll-{i}")["metadata"]["labels"]["controller-revision-hash"]  # type: ignore[index]
            for i in range(3)} == {status["updateRevision"]}
    c.kubectl("rollout", "undo", "statefulset/roll", "-n", ns)
    c.kubectl("rollout", "status", "statefulset/roll", "-n", ns, "--timeout=90s")
    c.wait("every pod back at V=1", lambda: all(_env_of(c.pod(ns, f"roll-{i}")) == "1" for i in range(3)), 60)
    history = c.kubectl("rollout", "history", "statefulset/roll", "-n", ns).stdout
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["2", "3"], history
    # A partition keeps the ordinals below it on the current revision.
    c.kubectl("patch", "statefulset/roll", "-n", ns, "-p",
              '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":2}}}}')
    c.kubectl("set", "env", "statefulset/roll", "V=3", "-n", ns)
    c.wait("roll-2 at V=3", lambda: _env_of(c.pod(ns, "roll-2")) == "3" and running_and_ready(
        c.pod(ns, "roll-2") or {"metadata": {}}), 60)
    c.ready_pod(ns, "roll-2")
    assert [_env_of(c.pod(ns, f"roll-{i}")) for i in range(3)] == ["1", "1", "3"]
    status = c.sts(ns, "roll")["status"]
    assert status["currentRevision"] != status["updateRevision"] and status.get("updatedReplicas") == 1
    c.http.delete(f"/api/v1/namespaces/{ns}")


def test_mkctl_rollout_and_claims_deleted_on_scale_down(cluster: Cluster) -> None:
    c = cluster
    ns = c.namespace()
    body = json.loads(json.dumps(ROLL))
    body["metadata"]["name"] = "mk"
    body["spec"].update(replicas=2, selector={"matchLabels": {"app": "mk"}},
                        persistentVolumeClaimRetentionPolicy={"whenDeleted": "Retain", "whenScaled": "Delete"},
                        volumeClaimTemplates=[{"metadata": {"name": "data"}, "spec": {
                            "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}}}])
    body["spec"]["template"]["metadata"]["labels"] = {"app": "mk"}
    c.kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(body))

    def mkctl(*args: str) -> str:
        result = CliRunner().invoke(mkctl_app, ["--server", c.url, "-n", ns, *args])
        assert result.exit_code == 0, f"mkctl {' '.join(args)}: {result.output}\n{c.diagnostics()}"
        return str(result.output)

    assert "partitioned roll out complete: 2 new pods have been updated..." in mkctl(
        "rollout", "status", "statefulset/mk", "--timeout", "90s")
    table = mkctl("get", "statefulsets").splitlines()
    assert table[0].split() == ["NAME", "READY", "AGE"] and table[1].split()[:2] == ["mk", "2/2"]
    c.kubectl("set", "env", "statefulset/mk", "V=2", "-n", ns)
    mkctl("rollout", "status", "statefulset/mk", "--timeout", "90s")
    assert [_env_of(c.pod(ns, f"mk-{i}")) for i in range(2)] == ["2", "2"]
    history = mkctl("rollout", "history", "statefulset/mk")
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["1", "2"], history
    mkctl("rollout", "undo", "statefulset/mk")
    c.wait("mk back at V=1", lambda: all(_env_of(c.pod(ns, f"mk-{i}")) == "1" and running_and_ready(
        c.pod(ns, f"mk-{i}") or {"metadata": {}}) for i in range(2)), 90)
    # whenScaled: Delete: the scaled-down pod's claim goes with it (the garbage collector), the other stays.
    assert sorted(c.claims(ns)) == ["data-mk-0", "data-mk-1"]
    c.kubectl("scale", "statefulset", "mk", "--replicas=1", "-n", ns)
    c.wait("data-mk-1 deleted with mk-1", lambda: sorted(c.claims(ns)) == ["data-mk-0"], 60)
    c.http.delete(f"/api/v1/namespaces/{ns}")
