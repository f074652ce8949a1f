"""The docs-examples corpus: ordinary Kubernetes YAML, applied unchanged with the real kubectl.

``tests/e2e/docs_examples/`` holds manifests written in the shape of the Kubernetes
documentation's own examples (the tasks and concepts pages: the nginx Deployment, the pi Job, the
hello CronJob, the fluentd DaemonSet, the web StatefulSet with its headless Service, the
task-pv-volume/claim/pod trio, the php-apache HPA, the zookeeper PDB, the quota and LimitRange
walkthroughs, ...), with the fields those pages use. The README's compatibility section lists
them. Each file goes to a namespace of its own (a quota or LimitRange of one page must not
decide another's), through ``kubectl apply`` with kubectl's default strict field validation, so
an unknown field or an unserved kind fails the test; then ``kubectl get -f`` must find every
object it created, at the version the file names.

Data flow: file -> ``kubectl apply -f FILE -n NS`` (session apiserver on etcd) -> every
document's ``<kind>/<name> created`` -> ``kubectl get -f FILE -n NS -o json`` -> the same kinds
and names back.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml

from tests.e2e.conftest import Kubectl

pytestmark = pytest.mark.e2e

CORPUS = Path(__file__).resolve().parent / "docs_examples"
FILES = sorted(CORPUS.glob("*.yaml"))

# The kinds issue 12 found missing when the documentation's examples were applied: the corpus must
# keep covering every one of them.
ISSUE_12_KINDS = {
    "ServiceAccount", "PersistentVolumeClaim", "StorageClass", "DaemonSet", "Secret", "Job", "StatefulSet",
    "LimitRange", "PersistentVolume", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ResourceQuota",
    "CronJob",
}


def documents(path: Path) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_corpus_covers_the_kinds_the_issue_found_missing() -> None:
    kinds = {str(d["kind"]) for f in FILES for d in documents(f)}
    assert len(FILES) >= 30
    assert ISSUE_12_KINDS <= kinds, ISSUE_12_KINDS - kinds


# Examples the default Pod Security level (baseline) refuses: their namespace is labelled
# privileged, as the documentation's readers would have to do.
PRIVILEGED = {"pod-hostpath.yaml"}


@pytest.fixture
def example_ns(http: httpx.Client, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"docs-{uuid.uuid4().hex[:8]}"
    path = request.node.callspec.params["path"]
    labels = {"pod-security.kubernetes.io/enforce": "privileged"} if path.name in PRIVILEGED else {}
    r = http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": name, "labels": labels}})
    assert r.status_code == 201, r.text
    yield name
    http.delete(f"/api/v1/namespaces/{name}")


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_example_applies_unchanged(path: Path, kubectl: Kubectl, example_ns: str, http: httpx.Client) -> None:
    docs = documents(path)
    out = kubectl.ok("apply", "-f", str(path), "-n", example_ns)
    for d in docs:
        name = d["metadata"]["name"]  # type: ignore[index]
        assert f"/{name} created" in out or f"/{name} configured" in out, out
    got = json.loads(kubectl.ok("get", "-f", str(path), "-n", example_ns, "-o", "json"))
    items = got["items"] if got.get("kind") == "List" else [got]
    assert [(i["kind"], i["metadata"]["name"]) for i in items] == \
        [(d["kind"], d["metadata"]["name"]) for d in docs]  # type: ignore[index]
    for item, d in zip(items, docs):
        assert item["apiVersion"] == d["apiVersion"]
    # Cluster-scoped examples (PersistentVolumes, StorageClasses) outlive the namespace: remove them.
    kubectl.ok("delete", "-f", str(path), "-n", example_ns, "--wait=false")
