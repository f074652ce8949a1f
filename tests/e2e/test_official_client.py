"""The official ``kubernetes`` Python client against a real minik8s apiserver over real etcd.

The client deserializes every answer into its generated models, so these tests also check
that the wire shapes are the ones Kubernetes serves; errors must arrive as ``ApiException``
with a ``Status`` body.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any, Callable

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.e2e


@pytest.fixture
def core(k8s_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(k8s_client)


@pytest.fixture
def apps(k8s_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(k8s_client)


def make_pod(name: str, *, labels: dict[str, str] | None = None, node: str | None = None) -> client.V1Pod:
    return client.V1Pod(
        api_version="v1", kind="Pod",
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(node_name=node, containers=[
            client.V1Container(name="web", image="nginx:1.25",
                               ports=[client.V1ContainerPort(container_port=80)])]),
    )


def make_deployment(name: str, *, replicas: int = 2, image: str = "nginx:1.14.2",
                    template_labels: dict[str, str] | None = None) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        api_version="apps/v1", kind="Deployment",
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=template_labels or labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="nginx", image=image)]),
            ),
        ),
    )


def api_error(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[ApiException, dict[str, Any]]:
    with pytest.raises(ApiException) as info:
        fn(*args, **kwargs)
    body = json.loads(info.value.body)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["code"] == info.value.status
    return info.value, body


def wait_until(pred: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout}s")


def gone(fn: Callable[..., Any], *args: Any) -> bool:
    try:
        fn(*args)
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


# --- Pods -----------------------------------------------------------------------------------

def test_pod_create_read_list_patch_replace_delete(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_pod(namespace, make_pod("web-1", labels={"app": "web", "tier": "a"}))
    assert isinstance(created, client.V1Pod)
    assert created.metadata.name == "web-1"
    assert created.metadata.namespace == namespace
    assert created.metadata.uid
    assert created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.status.phase == "Pending"
    assert created.spec.containers[0].ports[0].container_port == 80
    assert created.spec.containers[0].ports[0].protocol == "TCP"  # defaulted
    assert created.spec.restart_policy == "Always"
    core.create_namespaced_pod(namespace, make_pod("db-1", labels={"app": "db"}))

    got = core.read_namespaced_pod("web-1", namespace)
    assert got.metadata.uid == created.metadata.uid
    assert got.spec.containers[0].image == "nginx:1.25"

    lst = core.list_namespaced_pod(namespace)
    assert isinstance(lst, client.V1PodList)
    assert sorted(p.metadata.name for p in lst.items) == ["db-1", "web-1"]
    assert lst.metadata.resource_version
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app=web").items] == ["web-1"]
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace, label_selector="app in (db)").items] == ["db-1"]
    assert core.list_namespaced_pod(namespace, label_selector="app=none").items == []
    assert [p.metadata.name for p in core.list_namespaced_pod(
        namespace, field_selector="metadata.name=db-1").items] == ["db-1"]

    # patch: the client sends a strategic merge patch for a dict body by default
    patched = core.patch_namespaced_pod("web-1", namespace, {"metadata": {"labels": {"tier": "b", "new": "yes"}}})
    assert patched.metadata.labels == {"app": "web", "tier": "b", "new": "yes"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    # a strategic merge patch of containers merges by name and keeps the other fields
    patched = core.patch_namespaced_pod("web-1", namespace,
                                        {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}})
    assert patched.spec.containers[0].image == "nginx:1.26"
    assert patched.spec.containers[0].ports[0].container_port == 80

    patched.metadata.labels["replaced"] = "true"
    replaced = core.replace_namespaced_pod("web-1", namespace, patched)
    assert replaced.metadata.labels["replaced"] == "true"
    assert int(replaced.metadata.resource_version) > int(patched.metadata.resource_version)

    # without a node, a delete removes the pod at once
    deleted = core.delete_namespaced_pod("web-1", namespace)
    assert deleted.metadata.name == "web-1"
    e, body = api_error(core.read_namespaced_pod, "web-1", namespace)
    assert e.status == 404 and body["reason"] == "NotFound"
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["db-1"]


def test_pod_on_a_node_is_deleted_gracefully(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, make_pod("bound", node="node-a"))
    first = core.delete_namespaced_pod("bound", namespace)
    assert first.metadata.deletion_timestamp is not None
    assert first.metadata.deletion_grace_period_seconds == 30

    still = core.read_namespaced_pod("bound", namespace)
    assert still.metadata.deletion_timestamp is not None
    assert still.spec.node_name == "node-a"

    core.delete_namespaced_pod("bound", namespace, grace_period_seconds=0)
    e, body = api_error(core.read_namespaced_pod, "bound", namespace)
    assert e.status == 404 and body["reason"] == "NotFound"


def test_pod_errors(core: client.CoreV1Api, namespace: str) -> None:
    e, body = api_error(core.read_namespaced_pod, "nope", namespace)
    assert e.status == 404
    assert body["reason"] == "NotFound"
    assert body["message"] == 'pods "nope" not found'
    assert body["details"]["name"] == "nope" and body["details"]["kind"] == "pods"

    e, body = api_error(core.delete_namespaced_pod, "nope", namespace)
    assert e.status == 404 and body["reason"] == "NotFound"

    core.create_namespaced_pod(namespace, make_pod("dup"))
    e, body = api_error(core.create_namespaced_pod, namespace, make_pod("dup"))
    assert e.status == 409
    assert body["reason"] == "AlreadyExists"
    assert body["message"] == 'pods "dup" already exists'

    stale = core.read_namespaced_pod("dup", namespace)
    core.patch_namespaced_pod("dup", namespace, {"metadata": {"labels": {"v": "2"}}})
    stale.metadata.labels = {"v": "stale"}
    e, body = api_error(core.replace_namespaced_pod, "dup", namespace, stale)
    assert e.status == 409
    assert body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]

    e, body = api_error(core.create_namespaced_pod, namespace, make_pod("Bad_Name"))
    assert e.status == 422
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"')
    assert any(c["field"] == "metadata.name" for c in body["details"]["causes"])

    no_image = make_pod("noimage")
    no_image.spec.containers[0].image = None
    e, body = api_error(core.create_namespaced_pod, namespace, no_image)
    assert e.status == 422 and body["reason"] == "Invalid"
    assert any(c["field"] == "spec.containers[0].image" for c in body["details"]["causes"])


# --- Deployments ------------------------------------------------------------------------------

def test_deployment_crud_and_scale(apps: client.AppsV1Api, namespace: str) -> None:
    d = apps.create_namespaced_deployment(namespace, make_deployment("web"))
    assert isinstance(d, client.V1Deployment)
    assert d.metadata.generation == 1
    assert d.spec.replicas == 2
    assert d.spec.strategy.type == "RollingUpdate"
    assert d.spec.revision_history_limit == 10
    apps.create_namespaced_deployment(namespace, make_deployment("api"))

    got = apps.read_namespaced_deployment("web", namespace)
    assert got.metadata.uid == d.metadata.uid
    assert got.spec.selector.match_labels == {"app": "web"}

    names = sorted(x.metadata.name for x in apps.list_namespaced_deployment(namespace).items)
    assert names == ["api", "web"]
    assert [x.metadata.name for x in apps.list_namespaced_deployment(namespace, label_selector="app=api").items] == ["api"]
    assert namespace in {x.metadata.namespace for x in apps.list_deployment_for_all_namespaces().items}

    patched = apps.patch_namespaced_deployment(
        "web", namespace, {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.16.1"}]}}}})
    assert patched.spec.template.spec.containers[0].image == "nginx:1.16.1"
    assert patched.metadata.generation == 2

    patched.spec.replicas = 4
    patched.metadata.annotations = {"note": "replaced"}
    replaced = apps.replace_namespaced_deployment("web", namespace, patched)
    assert replaced.spec.replicas == 4
    assert replaced.metadata.annotations == {"note": "replaced"}
    assert replaced.metadata.generation == 3

    scale = apps.read_namespaced_deployment_scale("web", namespace)
    assert isinstance(scale, client.V1Scale)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.metadata.name == "web" and scale.metadata.namespace == namespace
    assert scale.spec.replicas == 4
    assert scale.status.selector == "app=web"

    scale = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 6}})
    assert scale.spec.replicas == 6
    after = apps.read_namespaced_deployment("web", namespace)
    assert after.spec.replicas == 6
    assert after.metadata.generation == 4, "a change of spec.replicas through /scale bumps the generation"
    assert after.spec.template.spec.containers[0].image == "nginx:1.16.1"

    scale.spec.replicas = 1
    scale = apps.replace_namespaced_deployment_scale("web", namespace, scale)
    assert scale.spec.replicas == 1
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 1

    apps.delete_namespaced_deployment("web", namespace)
    wait_until(lambda: gone(apps.read_namespaced_deployment, "web", namespace))
    assert [x.metadata.name for x in apps.list_namespaced_deployment(namespace).items] == ["api"]


def test_deployment_errors(apps: client.AppsV1Api, namespace: str) -> None:
    e, body = api_error(apps.read_namespaced_deployment, "nope", namespace)
    assert e.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'deployments.apps "nope" not found'
    e, body = api_error(apps.read_namespaced_deployment_scale, "nope", namespace)
    assert e.status == 404 and body["reason"] == "NotFound"

    apps.create_namespaced_deployment(namespace, make_deployment("web"))
    e, body = api_error(apps.create_namespaced_deployment, namespace, make_deployment("web"))
    assert e.status == 409 and body["reason"] == "AlreadyExists"
    assert body["message"] == 'deployments.apps "web" already exists'

    stale = apps.read_namespaced_deployment("web", namespace)
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 3}})
    stale.spec.replicas = 9
    e, body = api_error(apps.replace_namespaced_deployment, "web", namespace, stale)
    assert e.status == 409 and body["reason"] == "Conflict"
    assert apps.read_namespaced_deployment("web", namespace).spec.replicas == 3

    e, body = api_error(apps.create_namespaced_deployment, namespace,
                        make_deployment("mismatch", template_labels={"app": "other"}))
    assert e.status == 422 and body["reason"] == "Invalid"
    assert body["message"].startswith('Deployment.apps "mismatch" is invalid: spec.template.metadata.labels: ')
    assert any(c["field"] == "spec.template.metadata.labels" for c in body["details"]["causes"])
    assert gone(apps.read_namespaced_deployment, "mismatch", namespace)

    e, body = api_error(apps.patch_namespaced_deployment_scale, "web", namespace, {"spec": {"replicas": -1}})
    assert e.status == 422 and body["reason"] == "Invalid"


# --- Watch ------------------------------------------------------------------------------------

def _changes(core: client.CoreV1Api, namespace: str, name: str) -> None:
    core.create_namespaced_pod(namespace, make_pod(name, labels={"step": "1"}))
    core.patch_namespaced_pod(name, namespace, {"metadata": {"labels": {"step": "2"}}})
    core.delete_namespaced_pod(name, namespace)


def test_watch_from_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    _changes(core, namespace, "w1")

    events: list[tuple[str, str, dict[str, str] | None, str]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, namespace=namespace, resource_version=rv, timeout_seconds=10):
        obj = ev["object"]
        assert isinstance(obj, client.V1Pod)
        events.append((ev["type"], obj.metadata.name, obj.metadata.labels, obj.metadata.resource_version))
        if ev["type"] == "DELETED":
            w.stop()
    assert [(t, n, lbl) for t, n, lbl, _ in events] == [
        ("ADDED", "w1", {"step": "1"}),
        ("MODIFIED", "w1", {"step": "2"}),
        ("DELETED", "w1", {"step": "2"}),
    ]
    rvs = [int(r) for *_, r in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    assert rvs[0] > int(rv)


def test_watch_sees_changes_made_while_watching(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, make_pod("before"))
    rv = core.list_namespaced_pod(namespace).metadata.resource_version
    name = f"w-{uuid.uuid4().hex[:6]}"
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            time.sleep(0.5)
            _changes(core, namespace, name)
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    t = threading.Thread(target=writer, daemon=True)
    events: list[tuple[str, str]] = []
    w = watch.Watch()
    t.start()
    for ev in w.stream(core.list_namespaced_pod, namespace=namespace, resource_version=rv, timeout_seconds=15):
        events.append((ev["type"], ev["object"].metadata.name))
        if ev["type"] == "DELETED":
            w.stop()
    t.join(10)
    assert not errors, errors
    # the pod that existed before the resourceVersion is not replayed
    assert events == [("ADDED", name), ("MODIFIED", name), ("DELETED", name)]


def test_watch_without_resource_version_starts_with_current_state(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_pod(namespace, make_pod("a"))
    core.create_namespaced_pod(namespace, make_pod("b"))
    seen: list[tuple[str, str]] = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, namespace=namespace, timeout_seconds=10):
        seen.append((ev["type"], ev["object"].metadata.name))
        if len(seen) == 2:
            w.stop()
    assert sorted(seen) == [("ADDED", "a"), ("ADDED", "b")]


# --- Namespaces -------------------------------------------------------------------------------

def test_namespace_lifecycle(core: client.CoreV1Api) -> None:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"team": "x"})))
    try:
        assert isinstance(ns, client.V1Namespace)
        assert ns.status.phase == "Active"
        assert ns.metadata.labels == {"team": "x", "kubernetes.io/metadata.name": name}
        assert ns.spec.finalizers == ["kubernetes"]

        names = {n.metadata.name for n in core.list_namespace().items}
        assert {name, "default", "kube-system"} <= names
        assert [n.metadata.name for n in core.list_namespace(label_selector="team=x").items] == [name]

        e, body = api_error(core.create_namespace, client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        assert e.status == 409 and body["reason"] == "AlreadyExists"

        core.create_namespaced_pod(name, make_pod("inside"))
        core.delete_namespace(name)
        # either already gone, or Terminating until its content is removed
        try:
            terminating = core.read_namespace(name)
            assert terminating.status.phase == "Terminating"
            assert terminating.metadata.deletion_timestamp is not None
        except ApiException as ex:
            assert ex.status == 404
        wait_until(lambda: gone(core.read_namespace, name), timeout=30)
        assert name not in {n.metadata.name for n in core.list_namespace().items}
        e, body = api_error(core.read_namespace, name)
        assert e.status == 404 and body["reason"] == "NotFound"
        assert body["message"] == f'namespaces "{name}" not found'
    finally:
        try:
            core.delete_namespace(name)
        except ApiException:
            pass


def test_create_in_missing_namespace_is_not_found(core: client.CoreV1Api) -> None:
    e, body = api_error(core.create_namespaced_pod, "no-such-ns", make_pod("p"))
    assert e.status == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'namespaces "no-such-ns" not found'
