"""Issue 12's Job and CronJob acceptance, end to end, driven by the real kubectl.

This module's own cluster: etcd, apiserver, scheduler and controller-manager (job, cronjob,
ttlafterfinished, garbagecollector; the failure backoff shrunk to 0.2 s) as processes, a
simulated kubelet with two nodes (``bsim-0``, ``bsim-1``: their pods finish after the
``simulated.minik8s.io/exit-after`` annotation or a finite command) and one Docker kubelet
(``bdock``) on a pod network of its own, where an Indexed Job's pods really run and echo
``$JOB_COMPLETION_INDEX``.

- a CronJob ``*/1 * * * *`` is created first and checked last: a Job within about a minute;
- 5 completions at parallelism 2: exactly 5 succeeded pods, never more than 2 active at once
  (a watch over the pods counts them after every event);
- Indexed Jobs: each pod's index (annotation, label, hostname, env) on simulated nodes, and a
  real container's output on the Docker node;
- a failing Job stops at its backoffLimit: Failed, reason BackoffLimitExceeded;
- ttlSecondsAfterFinished removes a finished Job and (garbage collector) its pods;
- ``kubectl create job --image``, ``kubectl create job --from=cronjob/X``, ``kubectl wait
  --for=condition=complete``, ``kubectl get jobs,cronjobs``.

Without a Docker engine (or the image of scripts/build-images) the module fails when ``CI`` is set.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from typer.testing import CliRunner

from cli.mkctl import app as mkctl_app

from kubelet.runtime import DockerRuntime
from tests.dockertest import IMAGE
from tests.e2e.dockercluster import DockerCluster, docker_started

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

DOCKER_NODE = "bdock"
SIM_NODES = ("bsim-0", "bsim-1")
CAPACITY = "cpu=8,memory=16Gi,pods=50"
ON_SIMULATED = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": list(SIM_NODES)}]}]}}}


class Cluster(DockerCluster):
    def __init__(self, tmp: Path, rt: DockerRuntime) -> None:
        super().__init__(tmp, rt, prefix="mk-batch", label="batch", docker_nodes=(DOCKER_NODE,), capacity=CAPACITY,
                         kubelet_flags=("--no-service-proxy",), cm_flags=("--job-backoff-base", "0.2"),
                         controllers="job,cronjob,ttlafterfinished,garbagecollector,namespace",
                         simulated=[("bsim", "--count", "2")], ns_prefix="b-")

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", stdin=json.dumps(obj))

    def job(self, ns: str, name: str) -> dict[str, Any]:
        return self.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}") or {}

    def pods(self, ns: str, selector: str = "") -> list[dict[str, Any]]:
        params = {"labelSelector": selector} if selector else {}
        return list(self.http.get(f"/api/v1/namespaces/{ns}/pods", params=params).json()["items"])

    def condition(self, ns: str, name: str, kind: str) -> dict[str, Any] | None:
        for c in (self.job(ns, name).get("status") or {}).get("conditions") or []:
            if c["type"] == kind and c["status"] == "True":
                return dict(c)
        return None


def job_manifest(ns: str, name: str, *, pod_annotations: dict[str, str] | None = None,
                 command: list[str] | None = None, affinity: dict[str, Any] | None = None,
                 **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "work", "image": IMAGE}
    if command:
        container["command"] = command
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                "containers": [container], "affinity": affinity or ON_SIMULATED}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": ns},
            "spec": {**spec, "template": {"metadata": {"annotations": pod_annotations or {}}, "spec": pod_spec}}}


CRON_STARTED: dict[str, Any] = {}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with docker_started(lambda rt: Cluster(tmp_path_factory.mktemp("batch"), rt),
                        ready_nodes=(DOCKER_NODE, *SIM_NODES)) as c:
        # The CronJob goes first: the test that checks it runs last, after about a minute.
        ns = c.namespace()
        c.apply({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "every-minute", "namespace": ns},
                 "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {
                     "metadata": {"annotations": {"simulated.minik8s.io/exit-after": "1s"}},
                     "spec": {"restartPolicy": "OnFailure", "affinity": ON_SIMULATED,
                              "containers": [{"name": "hello", "image": IMAGE, "command": ["sh", "-c", "date"]}]}}}}}})
        CRON_STARTED.update(ns=ns, at=time.monotonic())
        yield c


class ActivePods:
    """Watches a namespace's pods and keeps the most that were active (not finished, not deleting) at once."""

    def __init__(self, c: Cluster, ns: str) -> None:
        self.pods: dict[str, dict[str, Any]] = {}
        self.rv = c.http.get(f"/api/v1/namespaces/{ns}/pods").json()["metadata"]["resourceVersion"]
        self.most = 0
        self.client = httpx.Client(base_url=c.url, timeout=None)
        self.thread = threading.Thread(target=self._run, args=(ns,), daemon=True)
        self.thread.start()

    def _run(self, ns: str) -> None:
        try:
            self._follow(ns)
        except httpx.HTTPError:
            pass  # closed by the test

    def _follow(self, ns: str) -> None:
        params = {"watch": "1", "resourceVersion": self.rv, "timeoutSeconds": "90"}
        with self.client.stream("GET", f"/api/v1/namespaces/{ns}/pods", params=params) as r:
            for line in r.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                pod = event["object"]
                name = pod["metadata"]["name"]
                if event["type"] == "DELETED":
                    self.pods.pop(name, None)
                else:
                    self.pods[name] = pod
                active = [p for p in self.pods.values() if (p.get("status") or {}).get("phase") not in
                          ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")]
                self.most = max(self.most, len(active))

    def close(self) -> None:
        self.client.close()


def test_five_completions_at_parallelism_two(cluster: Cluster) -> None:
    ns = cluster.namespace()
    watch = ActivePods(cluster, ns)
    try:
        cluster.apply(job_manifest(ns, "five", completions=5, parallelism=2,
                                   pod_annotations={"simulated.minik8s.io/exit-after": "1s"}))
        cluster.wait("job five Complete", lambda: cluster.condition(ns, "five", "Complete"), 90)
    finally:
        watch.close()
    job = cluster.job(ns, "five")
    assert job["status"]["succeeded"] == 5 and "failed" not in job["status"]
    assert job["status"]["completionTime"] and job["status"]["uncountedTerminatedPods"] == {}
    pods = cluster.pods(ns, f"batch.kubernetes.io/job-name=five")
    assert sorted(p["status"]["phase"] for p in pods) == ["Succeeded"] * 5
    assert all(not p["metadata"].get("finalizers") for p in pods)  # the job-tracking finalizer is gone
    assert 1 <= watch.most <= 2, watch.most
    out = cluster.kubectl_out("get", "jobs", "-n", ns)
    assert out.split("\n")[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert out.split("\n")[1].split()[:3] == ["five", "Complete", "5/5"]


def test_indexed_job_on_simulated_nodes(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.apply(job_manifest(ns, "idx", completions=3, parallelism=3, completionMode="Indexed",
                               command=["sh", "-c", "echo $JOB_COMPLETION_INDEX; sleep 1"]))
    cluster.wait("job idx Complete", lambda: cluster.condition(ns, "idx", "Complete"), 60)
    assert cluster.job(ns, "idx")["status"]["completedIndexes"] == "0-2"
    pods = cluster.pods(ns, "batch.kubernetes.io/job-name=idx")
    indexes = sorted(int(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]) for p in pods)
    assert indexes == [0, 1, 2]
    for p in pods:
        index = p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert p["metadata"]["name"].startswith(f"idx-{index}-") and p["spec"]["hostname"] == f"idx-{index}"
        env = {e["name"]: e for e in p["spec"]["containers"][0]["env"]}
        assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def test_indexed_job_in_real_containers(cluster: Cluster) -> None:
    ns = cluster.namespace()
    on_docker = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [DOCKER_NODE]}]}]}}}
    cluster.apply(job_manifest(ns, "echo", completions=2, parallelism=2, completionMode="Indexed",
                               affinity=on_docker, command=["sh", "-c", "echo index=$JOB_COMPLETION_INDEX"]))
    cluster.wait("job echo Complete", lambda: cluster.condition(ns, "echo", "Complete"), 90)
    seen = {}
    for p in cluster.pods(ns, "batch.kubernetes.io/job-name=echo"):
        assert p["spec"]["nodeName"] == DOCKER_NODE and p["status"]["phase"] == "Succeeded"
        index = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        seen[index] = cluster.kubectl_out("logs", "-n", ns, p["metadata"]["name"]).strip()
    assert seen == {"0": "index=0", "1": "index=1"}


def test_a_failing_job_stops_at_its_backoff_limit(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.apply(job_manifest(ns, "doomed", backoffLimit=2,
                               command=["sh", "-c", "sleep 0.2; exit 1"]))
    failed = cluster.wait("job doomed Failed", lambda: cluster.condition(ns, "doomed", "Failed"), 90)
    assert failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    job = cluster.job(ns, "doomed")
    assert job["status"]["failed"] == 3 and "completionTime" not in job["status"]
    pods = cluster.pods(ns, "batch.kubernetes.io/job-name=doomed")
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Failed"}
    assert cluster.kubectl_out("get", "job", "doomed", "-n", ns, "--no-headers").split()[1] == "Failed"


def test_deadline_with_a_pod_failure_policy(cluster: Cluster) -> None:
    """activeDeadlineSeconds ends pods that never exit; with a podFailurePolicy (only failed pods are
    replaced) the deleted pods count once the kubelet reports them Failed."""
    ns = cluster.namespace()
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    cluster.apply(job_manifest(ns, "slow", parallelism=2, completions=2, activeDeadlineSeconds=2,
                               podFailurePolicy=policy, command=["sh", "-c", "while true; do sleep 1; done"]))
    failed = cluster.wait("job slow Failed", lambda: cluster.condition(ns, "slow", "Failed"), 60)
    assert failed["reason"] == "DeadlineExceeded" and failed["message"] == "Job was active longer than specified deadline"
    job = cluster.job(ns, "slow")
    assert job["status"]["failed"] == 2 and job["spec"]["podReplacementPolicy"] == "Failed"
    cluster.wait("the deleted pods gone", lambda: not cluster.pods(ns, "batch.kubernetes.io/job-name=slow"), 30)


def test_ttl_after_finished_removes_the_job_and_its_pods(cluster: Cluster) -> None:
    ns = cluster.namespace()
    cluster.apply(job_manifest(ns, "brief", ttlSecondsAfterFinished=2,
                               pod_annotations={"simulated.minik8s.io/exit-after": "500ms"}))
    cluster.wait("job brief Complete", lambda: cluster.condition(ns, "brief", "Complete"), 60)
    # completionTime is truncated to the second: the job finished at or after it, so the TTL
    # controller may delete it no earlier than 2 s after it (a poll that saw Complete late, on a
    # busy machine, says nothing about when the job finished).
    completed = datetime.strptime(cluster.job(ns, "brief")["status"]["completionTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    cluster.wait("job brief deleted", lambda: cluster.http.get(
        f"/apis/batch/v1/namespaces/{ns}/jobs/brief").status_code == 404, 30)
    assert datetime.now(timezone.utc) >= completed + timedelta(seconds=2)
    cluster.wait("its pods collected", lambda: not cluster.pods(ns, "batch.kubernetes.io/job-name=brief"), 30)


def test_kubectl_create_job_and_wait(cluster: Cluster) -> None:
    ns = cluster.namespace()
    out = cluster.kubectl_out("create", "job", "hello", "-n", ns, f"--image={IMAGE}", "--", "sh", "-c", "echo hello")
    assert out.strip() == "job.batch/hello created"
    out = cluster.kubectl_out("wait", "--for=condition=complete", "job/hello", "-n", ns, "--timeout=90s")
    assert out.strip() == "job.batch/hello condition met"
    assert cluster.job(ns, "hello")["status"]["succeeded"] == 1
    # --from=cronjob/X: the CronJob's template, an annotation saying so, the CronJob as owner.
    cron_ns = CRON_STARTED["ns"]
    out = cluster.kubectl_out("create", "job", "by-hand", "-n", cron_ns, "--from=cronjob/every-minute")
    assert out.strip() == "job.batch/by-hand created"
    job = cluster.job(cron_ns, "by-hand")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    cluster.kubectl_out("wait", "--for=condition=complete", "job/by-hand", "-n", cron_ns, "--timeout=90s")
    # kubectl create cronjob (protobuf body) and the apiserver's refusal of TZ= in a schedule
    out = cluster.kubectl_out("create", "cronjob", "nightly", "-n", ns, f"--image={IMAGE}", "--schedule=0 3 * * *",
                          "--", "sh", "-c", "date")
    assert out.strip() == "cronjob.batch/nightly created"
    bad = cluster.kubectl("create", "cronjob", "tz", "-n", ns, f"--image={IMAGE}", "--schedule=TZ=UTC 0 3 * * *",
                          check=False, timeout=60)
    assert bad.returncode == 1 and ('spec.schedule: Invalid value: "TZ=UTC 0 3 * * *": cannot use TZ or CRON_TZ in '
                                    "schedule, use timeZone field instead") in bad.stderr, bad.stderr
    wide = cluster.kubectl_out("get", "cronjobs", "-n", cron_ns, "-o", "wide").split("\n")
    assert wide[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE",
                               "CONTAINERS", "IMAGES", "SELECTOR"]


def test_mkctl_create_job_and_get(cluster: Cluster) -> None:
    ns = cluster.namespace()

    def mkctl(*args: str) -> str:
        result = CliRunner().invoke(mkctl_app, ["--server", cluster.url, "-n", ns, *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert mkctl("create", "job", "tiny", f"--image={IMAGE}", "--", "sh", "-c", "exit 0").strip() == \
        "job.batch/tiny created"
    cluster.wait("job tiny Complete", lambda: cluster.condition(ns, "tiny", "Complete"), 90)
    job = cluster.job(ns, "tiny")
    assert job["spec"]["template"]["spec"]["containers"][0]["name"] == "tiny"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    shown = mkctl("get", "jobs").split("\n")
    assert shown[0].split() == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert shown[1].split()[:3] == ["tiny", "Complete", "1/1"]
    dry = mkctl("create", "job", "plan", f"--image={IMAGE}", "--dry-run=client", "-o", "json")
    assert json.loads(dry)["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    assert cluster.job(ns, "plan") == {}
    cron_ns = CRON_STARTED["ns"]
    result = CliRunner().invoke(mkctl_app, ["--server", cluster.url, "-n", cron_ns, "create", "job", "again",
                                            "--from=cronjob/every-minute"])
    assert result.exit_code == 0 and result.output.strip() == "job.batch/again created", result.output
    assert cluster.job(cron_ns, "again")["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    cronjobs = CliRunner().invoke(mkctl_app, ["--server", cluster.url, "-n", cron_ns, "get", "cronjobs"])
    assert cronjobs.output.split("\n")[0].split() == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST",
                                                       "SCHEDULE", "AGE"], cronjobs.output


def test_cronjob_every_minute_created_a_job(cluster: Cluster) -> None:
    """Last: the CronJob made at the start has created a Job within about a minute (plus a margin)."""
    ns = CRON_STARTED["ns"]

    def scheduled() -> list[dict[str, Any]]:
        items = cluster.http.get(f"/apis/batch/v1/namespaces/{ns}/jobs").json()["items"]
        return [j for j in items if "batch.kubernetes.io/cronjob-scheduled-timestamp" in j["metadata"].get(
            "annotations", {})]

    left = max(5.0, 75.0 - (time.monotonic() - CRON_STARTED["at"]))
    jobs = cluster.wait("a Job from the CronJob", scheduled, left)
    name = jobs[0]["metadata"]["name"]
    # On time: created within a few seconds of its scheduled minute.
    planned = datetime.fromisoformat(
        jobs[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(jobs[0]["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    assert timedelta(0) <= created - planned <= timedelta(seconds=5), (planned, created)
    assert name.startswith("every-minute-") and name.removeprefix("every-minute-").isdigit()
    cron = cluster.http.get(f"/apis/batch/v1/namespaces/{ns}/cronjobs/every-minute").json()
    assert cron["status"]["lastScheduleTime"]
    cluster.wait("the scheduled Job Complete", lambda: cluster.condition(ns, name, "Complete"), 60)
    cluster.wait("lastSuccessfulTime", lambda: cluster.http.get(
        f"/apis/batch/v1/namespaces/{ns}/cronjobs/every-minute").json()["status"].get("lastSuccessfulTime"), 30)
