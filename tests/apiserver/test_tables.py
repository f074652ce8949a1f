"""Tests for apiserver.tables: columns, cells and the Table shape match Kubernetes' printers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from machinery.timefmt import human_duration
from tests.apiserver.kindtools import build_table, column_definitions, table_row

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def column_names(kind: str, *, wide: bool) -> list[str]:
    return [c["name"] for c in column_definitions(kind) if wide or c["priority"] == 0]


# --- human_duration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-2, "<invalid>"),
        (-1.5, "0s"),
        (-1, "0s"),
        (0, "0s"),
        (0.9, "0s"),
        (5, "5s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (659, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (8 * 3600 - 1, "7h59m"),
        (8 * 3600, "8h"),
        (47 * 3600 + 59 * 60, "47h"),
        (48 * 3600, "2d"),
        (51 * 3600, "2d3h"),
        (8 * 86400 - 1, "7d23h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400 - 1, "7y364d"),
        (8 * 365 * 86400, "8y"),
        (20 * 365 * 86400, "20y"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


# --- column definitions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "default", "wide"),
    [
        ("Pod", ["Name", "Ready", "Status", "Restarts", "Age"], ["IP", "Node", "Nominated Node", "Readiness Gates"]),
        ("Namespace", ["Name", "Status", "Age"], []),
        (
            "Node",
            ["Name", "Status", "Roles", "Age", "Version"],
            ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"],
        ),
        ("Service", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age"], ["Selector"]),
        ("Endpoints", ["Name", "Endpoints", "Age"], []),
        ("Deployment", ["Name", "Ready", "Up-to-date", "Available", "Age"], ["Containers", "Images", "Selector"]),
        ("ReplicaSet", ["Name", "Desired", "Current", "Ready", "Age"], ["Containers", "Images", "Selector"]),
        ("Ingress", ["Name", "Class", "Hosts", "Address", "Ports", "Age"], []),
        ("Event", ["Last Seen", "Type", "Reason", "Object", "Message"], ["Subobject", "Source", "First Seen", "Count", "Name"]),
        ("ConfigMap", ["Name", "Data", "Age"], []),
        ("Lease", ["Name", "Holder", "Age"], []),
        ("Widget", ["Name", "Age"], []),
    ],
)
def test_columns_and_priorities(kind: str, default: list[str], wide: list[str]) -> None:
    columns = column_definitions(kind)
    assert [c["name"] for c in columns if c["priority"] == 0] == default
    assert [c["name"] for c in columns if c["priority"] == 1] == wide
    assert all(set(c) == {"name", "type", "format", "description", "priority"} for c in columns)
    name_columns = [c for c in columns if c["format"] == "name"]
    assert [c["name"] for c in name_columns] == ["Name"]
    if kind != "Event":
        assert columns[0]["name"] == "Name" and columns[0]["priority"] == 0


def test_event_columns_interleave_wide_ones() -> None:
    assert column_names("Event", wide=True) == [
        "Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name",
    ]


@pytest.mark.parametrize("kind", ["Pod", "Node", "Service", "Endpoints", "Deployment", "ReplicaSet",
                                  "Ingress", "Event", "ConfigMap", "Lease", "Namespace", "Widget"])
def test_every_row_has_one_cell_per_column(kind: str) -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": ago(seconds=30)}}
    assert len(table_row(kind, obj, now=NOW)) == len(column_definitions(kind))


# --- pods --------------------------------------------------------------------------------------


def pod(*, containers: int = 1, init: int = 0, **status: object) -> dict:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(minutes=5)},
        "spec": {
            "containers": [{"name": f"c{i}", "image": "nginx"} for i in range(containers)],
            "initContainers": [{"name": f"i{i}", "image": "busybox"} for i in range(init)],
        },
        "status": status,
    }


def running(name: str = "c0", *, ready: bool = True, restarts: int = 0, **extra: object) -> dict:
    return {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(minutes=4)}}, **extra}


def waiting(name: str, reason: str, *, restarts: int = 0, **extra: object) -> dict:
    return {"name": name, "ready": False, "restartCount": restarts, "state": {"waiting": {"reason": reason}}, **extra}


def terminated(name: str, *, reason: str = "", exit_code: int = 0, signal: int = 0) -> dict:
    state = {"exitCode": exit_code, "finishedAt": ago(minutes=1)}
    if reason:
        state["reason"] = reason
    if signal:
        state["signal"] = signal
    return {"name": name, "ready": False, "restartCount": 0, "state": {"terminated": state}}


LAST_CRASH = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(minutes=3)}}


@pytest.mark.parametrize(
    ("the_pod", "ready", "status", "restarts"),
    [
        pytest.param(pod(phase="Pending"), "0/1", "Pending", "0", id="pending-unscheduled"),
        pytest.param(pod(), "0/1", "Pending", "0", id="no-status-yet"),
        pytest.param(
            pod(phase="Pending", containerStatuses=[waiting("c0", "ContainerCreating")]),
            "0/1", "ContainerCreating", "0", id="creating",
        ),
        pytest.param(
            pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]),
            "0/1", "SchedulingGated", "0", id="scheduling-gated",
        ),
        pytest.param(pod(phase="Running", containerStatuses=[running()]), "1/1", "Running", "0", id="running"),
        pytest.param(
            pod(containers=2, phase="Running", containerStatuses=[running("c0"), running("c1", ready=False)]),
            "1/2", "Running", "0", id="running-half-ready",
        ),
        pytest.param(
            pod(phase="Succeeded", containerStatuses=[terminated("c0", reason="Completed")]),
            "0/1", "Completed", "0", id="completed",
        ),
        pytest.param(
            pod(phase="Failed", containerStatuses=[terminated("c0", reason="Error", exit_code=1)]),
            "0/1", "Error", "0", id="failed",
        ),
        pytest.param(
            pod(phase="Failed", containerStatuses=[terminated("c0", exit_code=137)]),
            "0/1", "ExitCode:137", "0", id="exit-code-no-reason",
        ),
        pytest.param(
            pod(phase="Failed", containerStatuses=[terminated("c0", signal=9)]),
            "0/1", "Signal:9", "0", id="signal-no-reason",
        ),
        pytest.param(
            pod(phase="Running", containerStatuses=[waiting("c0", "CrashLoopBackOff", restarts=3, lastState=LAST_CRASH)]),
            "0/1", "CrashLoopBackOff", "3 (3m ago)", id="crashloop",
        ),
        pytest.param(
            pod(phase="Running", containerStatuses=[running(restarts=2)]),
            "1/1", "Running", "2", id="restarts-without-finish-time",
        ),
        pytest.param(
            pod(init=1, phase="Pending", initContainerStatuses=[waiting("i0", "PodInitializing")]),
            "0/1", "Init:0/1", "0", id="init-0-of-1",
        ),
        pytest.param(
            pod(init=2, phase="Pending", initContainerStatuses=[terminated("i0"), running("i1", ready=False)]),
            "0/1", "Init:1/2", "0", id="init-1-of-2",
        ),
        pytest.param(
            pod(init=1, phase="Pending", initContainerStatuses=[terminated("i0", reason="Error", exit_code=1)]),
            "0/1", "Init:Error", "0", id="init-error",
        ),
        pytest.param(
            pod(init=1, phase="Pending", initContainerStatuses=[terminated("i0", exit_code=2)]),
            "0/1", "Init:ExitCode:2", "0", id="init-exit-code",
        ),
        pytest.param(
            pod(init=1, phase="Pending", initContainerStatuses=[
                waiting("i0", "CrashLoopBackOff", restarts=4, lastState=LAST_CRASH)]),
            "0/1", "Init:CrashLoopBackOff", "4 (3m ago)", id="init-crashloop",
        ),
        pytest.param(
            pod(init=1, phase="Running", initContainerStatuses=[terminated("i0")], containerStatuses=[running()]),
            "1/1", "Running", "0", id="init-done-running",
        ),
        pytest.param(
            pod(containers=2, phase="Running",
                conditions=[{"type": "Ready", "status": "False"}],
                containerStatuses=[running("c0"), terminated("c1", reason="Completed")]),
            "1/2", "NotReady", "0", id="completed-sidecar-running-not-ready",
        ),
        pytest.param(
            pod(containers=2, phase="Running",
                conditions=[{"type": "Ready", "status": "True"}],
                containerStatuses=[running("c0"), terminated("c1", reason="Completed")]),
            "1/2", "Running", "0", id="completed-sidecar-running-ready",
        ),
    ],
)
def test_pod_cells(the_pod: dict, ready: str, status: str, restarts: str) -> None:
    cells = table_row("Pod", the_pod, now=NOW)
    assert cells[:5] == ["web", ready, status, restarts, "5m"]


def test_pod_terminating_and_node_lost() -> None:
    deleting = pod(phase="Running", containerStatuses=[running()])
    deleting["metadata"]["deletionTimestamp"] = ago(seconds=10)
    assert table_row("Pod", deleting, now=NOW)[2] == "Terminating"
    deleting["status"]["reason"] = "NodeLost"
    assert table_row("Pod", deleting, now=NOW)[2] == "Unknown"
    finished = pod(phase="Succeeded", containerStatuses=[terminated("c0", reason="Completed")])
    finished["metadata"]["deletionTimestamp"] = ago(seconds=10)
    assert table_row("Pod", finished, now=NOW)[2] == "Completed"


def test_pod_sidecar_init_container_counts_as_ready() -> None:
    the_pod = pod(phase="Running", containerStatuses=[running()])
    the_pod["spec"]["initContainers"] = [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]
    the_pod["status"]["initContainerStatuses"] = [running("proxy", started=True, restarts=1, lastState=LAST_CRASH)]
    cells = table_row("Pod", the_pod, now=NOW)
    assert cells[1:4] == ["2/2", "Running", "1 (3m ago)"]


def test_pod_wide_cells() -> None:
    bare = pod(phase="Pending")
    assert table_row("Pod", bare, now=NOW)[5:] == ["<none>", "<none>", "<none>", "<none>"]
    placed = pod(phase="Running", podIPs=[{"ip": "10.1.0.7"}], nominatedNodeName="n2",
                 conditions=[{"type": "www.example.com/gate", "status": "True"}], containerStatuses=[running()])
    placed["spec"]["nodeName"] = "n1"
    placed["spec"]["readinessGates"] = [{"conditionType": "www.example.com/gate"}, {"conditionType": "other"}]
    assert table_row("Pod", placed, now=NOW)[5:] == ["10.1.0.7", "n1", "n2", "1/2"]
    legacy = pod(phase="Running", podIP="10.1.0.8")
    assert table_row("Pod", legacy, now=NOW)[5] == "10.1.0.8"


def test_age_unknown_without_creation_timestamp() -> None:
    assert table_row("ConfigMap", {"metadata": {"name": "c"}}, now=NOW) == ["c", 0, "<unknown>"]


# --- deployments, replicasets -----------------------------------------------------------------


def workload(kind: str, *, replicas: int | None, status: dict, selector: dict | None) -> dict:
    spec: dict = {
        "selector": selector,
        "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "log", "image": "fluent"}]}},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"kind": kind, "metadata": {"name": "web", "creationTimestamp": ago(hours=51)}, "spec": spec, "status": status}


@pytest.mark.parametrize(
    ("replicas", "status", "selector", "expected"),
    [
        (3, {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}, {"matchLabels": {"app": "web"}},
         ["web", "2/3", 3, 2, "2d3h", "web,log", "nginx:1.25,fluent", "app=web"]),
        (None, {}, {"matchLabels": {"tier": "fe", "app": "web"}},
         ["web", "0/1", 0, 0, "2d3h", "web,log", "nginx:1.25,fluent", "app=web,tier=fe"]),
        (0, {}, {"matchLabels": {"app": "web"},
                 "matchExpressions": [{"key": "env", "operator": "In", "values": ["qa", "prod"]},
                                      {"key": "canary", "operator": "DoesNotExist"}]},
         ["web", "0/0", 0, 0, "2d3h", "web,log", "nginx:1.25,fluent", "app=web,!canary,env in (prod,qa)"]),
    ],
)
def test_deployment_cells(replicas: int | None, status: dict, selector: dict, expected: list) -> None:
    obj = workload("Deployment", replicas=replicas, status=status, selector=selector)
    assert table_row("Deployment", obj, now=NOW) == expected


@pytest.mark.parametrize(
    ("selector", "expected_selector"),
    [({"matchLabels": {"app": "web"}}, "app=web"), ({}, "<none>"), (None, "<none>")],
)
def test_replicaset_cells(selector: dict | None, expected_selector: str) -> None:
    obj = workload("ReplicaSet", replicas=3, status={"replicas": 3, "readyReplicas": 1}, selector=selector)
    assert table_row("ReplicaSet", obj, now=NOW) == [
        "web", 3, 3, 1, "2d3h", "web,log", "nginx:1.25,fluent", expected_selector,
    ]


# --- services, endpoints, ingress -------------------------------------------------------------


def service(spec: dict, status: dict | None = None) -> dict:
    return {"kind": "Service", "metadata": {"name": "web", "creationTimestamp": ago(seconds=45)},
            "spec": spec, "status": status or {}}


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        (service({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                  "ports": [{"port": 80, "protocol": "TCP"}], "selector": {"app": "web"}}),
         ["web", "ClusterIP", "10.96.0.10", "<none>", "80/TCP", "45s", "app=web"]),
        (service({"type": "NodePort", "clusterIPs": ["10.96.0.11"], "selector": {"b": "2", "a": "1"},
                  "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}),
         ["web", "NodePort", "10.96.0.11", "<none>", "80:30080/TCP,53/UDP", "45s", "a=1,b=2"]),
        (service({"clusterIP": "10.96.0.12", "ports": [{"port": 8080}]}),
         ["web", "ClusterIP", "10.96.0.12", "<none>", "8080/TCP", "45s", "<none>"]),
        (service({"type": "ClusterIP", "clusterIPs": ["None"], "externalIPs": ["1.2.3.4"]}),
         ["web", "ClusterIP", "None", "1.2.3.4", "<none>", "45s", "<none>"]),
        (service({"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
         ["web", "LoadBalancer", "10.96.0.13", "<pending>", "443:31443/TCP", "45s", "<none>"]),
        (service({"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"]},
                 {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}}),
         ["web", "LoadBalancer", "10.96.0.13", "5.6.7.8,lb.example.com", "<none>", "45s", "<none>"]),
        (service({"type": "ExternalName", "externalName": "db.example.com"}),
         ["web", "ExternalName", "<none>", "db.example.com", "<none>", "45s", "<none>"]),
    ],
)
def test_service_cells(svc: dict, expected: list) -> None:
    assert table_row("Service", svc, now=NOW) == expected


@pytest.mark.parametrize(
    ("subsets", "expected"),
    [
        ([], "<none>"),
        ([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}]}], "10.0.0.1:80,10.0.0.2:80"),
        ([{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 7)], "ports": [{"port": 80}]}],
         "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 3 more..."),
        ([{"addresses": [{"ip": "10.0.0.1"}]}], "10.0.0.1"),
        ([{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]}], "[fd00::1]:80,[fd00::1]:443"),
    ],
)
def test_endpoints_cells(subsets: list, expected: str) -> None:
    obj = {"metadata": {"name": "web", "creationTimestamp": ago(seconds=5)}, "subsets": subsets}
    assert table_row("Endpoints", obj, now=NOW) == ["web", expected, "5s"]


@pytest.mark.parametrize(
    ("spec", "status", "expected"),
    [
        ({"rules": [{"http": {}}]}, {}, ["ing", "<none>", "*", "", "80", "90s"]),
        ({"ingressClassName": "nginx", "rules": [{"host": "a.com"}, {"host": "b.com"}], "tls": [{"hosts": ["a.com"]}]},
         {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}},
         ["ing", "nginx", "a.com,b.com", "192.168.1.5", "80, 443", "90s"]),
        ({"rules": [{}, {"host": "a"}, {"host": "b"}, {"host": "c"}, {"host": "d"}]}, {},
         ["ing", "<none>", "a,b,c + 2 more...", "", "80", "90s"]),
    ],
)
def test_ingress_cells(spec: dict, status: dict, expected: list) -> None:
    obj = {"metadata": {"name": "ing", "creationTimestamp": ago(seconds=90)}, "spec": spec, "status": status}
    assert table_row("Ingress", obj, now=NOW) == expected


# --- nodes, namespaces, events, configmaps, leases --------------------------------------------


def node(*, ready: str | None, unschedulable: bool = False, labels: dict | None = None) -> dict:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {
        "kind": "Node",
        "metadata": {"name": "n1", "creationTimestamp": ago(days=10), "labels": labels or {}},
        "spec": {"unschedulable": unschedulable},
        "status": {
            "conditions": conditions,
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "172.18.0.2"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0-minik8s", "osImage": "Debian GNU/Linux 12",
                         "kernelVersion": "6.1.0", "containerRuntimeVersion": "docker://24.0.7"},
        },
    }


@pytest.mark.parametrize(
    ("the_node", "status", "roles"),
    [
        (node(ready="True"), "Ready", "<none>"),
        (node(ready="False"), "NotReady", "<none>"),
        (node(ready="Unknown"), "NotReady", "<none>"),
        (node(ready=None), "Unknown", "<none>"),
        (node(ready="True", unschedulable=True), "Ready,SchedulingDisabled", "<none>"),
        (node(ready="True", labels={"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/worker": ""}),
         "Ready", "control-plane,worker"),
        (node(ready="True", labels={"kubernetes.io/role": "master"}), "Ready", "master"),
    ],
)
def test_node_cells(the_node: dict, status: str, roles: str) -> None:
    assert table_row("Node", the_node, now=NOW) == [
        "n1", status, roles, "10d", "v1.32.0-minik8s",
        "172.18.0.2", "<none>", "Debian GNU/Linux 12", "6.1.0", "docker://24.0.7",
    ]


def test_node_wide_unknowns() -> None:
    bare = {"metadata": {"name": "n2", "creationTimestamp": ago(seconds=1)}}
    assert table_row("Node", bare, now=NOW) == [
        "n2", "Unknown", "<none>", "1s", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>",
    ]


@pytest.mark.parametrize(
    ("metadata", "status", "expected"),
    [
        ({}, {"phase": "Active"}, "Active"),
        ({"deletionTimestamp": ago(seconds=1)}, {"phase": "Terminating"}, "Terminating"),
        ({}, {}, "Active"),
    ],
)
def test_namespace_cells(metadata: dict, status: dict, expected: str) -> None:
    obj = {"metadata": {"name": "dev", "creationTimestamp": ago(days=400), **metadata}, "status": status}
    assert table_row("Namespace", obj, now=NOW) == ["dev", expected, "400d"]


def test_event_cells() -> None:
    event = {
        "metadata": {"name": "web.17a", "namespace": "default", "creationTimestamp": ago(seconds=70)},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
        "reason": "Pulled", "message": "  Successfully pulled image\n", "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": ago(seconds=70), "lastTimestamp": ago(seconds=20), "count": 3,
    }
    assert table_row("Event", event, now=NOW) == [
        "20s", "Normal", "Pulled", "pod/web", "spec.containers{web}", "kubelet, n1",
        "Successfully pulled image", "70s", 3, "web.17a",
    ]


def test_event_new_style_fields() -> None:
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Node"},
        "eventTime": (NOW - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingComponent": "scheduler", "type": "Warning", "reason": "X", "message": "m",
    }
    assert table_row("Event", event, now=NOW) == ["5s", "Warning", "X", "node", "", "scheduler", "m", "5s", 1, "e"]
    event["series"] = {"count": 7, "lastObservedTime": (NOW - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    cells = table_row("Event", event, now=NOW)
    assert (cells[0], cells[8]) == ("2s", 7)


def test_configmap_lease_and_unknown_cells() -> None:
    created = {"name": "x", "creationTimestamp": ago(minutes=200)}
    assert table_row("ConfigMap", {"metadata": created, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}},
                     now=NOW) == ["x", 3, "3h20m"]
    assert table_row("Lease", {"metadata": created, "spec": {"holderIdentity": "sched-1"}}, now=NOW) == [
        "x", "sched-1", "3h20m"]
    assert table_row("Lease", {"metadata": created, "spec": {}}, now=NOW) == ["x", "", "3h20m"]
    assert table_row("Widget", {"metadata": created}, now=NOW) == ["x", "3h20m"]


def test_naive_now_is_treated_as_utc() -> None:
    obj = {"metadata": {"name": "x", "creationTimestamp": ago(seconds=30)}}
    assert table_row("Widget", obj, now=NOW.replace(tzinfo=None)) == ["x", "30s"]


# --- build_table -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("include_object", "expected"),
    [
        ("None", None),
        ("Metadata", {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                      "metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(minutes=5)}}),
        ("Object", pod(phase="Pending")),
    ],
)
def test_build_table_include_object(include_object: str, expected: dict | None) -> None:
    table = build_table("Pod", [pod(phase="Pending")], now=NOW, include_object=include_object, resource_version="42")
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42"}
    assert table["columnDefinitions"] == column_definitions("Pod")
    (row,) = table["rows"]
    assert row["cells"] == table_row("Pod", pod(phase="Pending"), now=NOW)
    assert row.get("object") == expected
    assert ("object" in row) is (expected is not None)


def test_build_table_defaults_to_metadata_and_carries_continue() -> None:
    table = build_table("ConfigMap", [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
                        now=NOW, resource_version="7", continue_token="tok")
    assert table["metadata"] == {"resourceVersion": "7", "continue": "tok"}
    assert [r["object"]["kind"] for r in table["rows"]] == ["PartialObjectMetadata"] * 2
    assert [r["object"]["metadata"]["name"] for r in table["rows"]] == ["a", "b"]


def test_build_table_empty_and_invalid_include_object() -> None:
    assert build_table("Pod", [], now=NOW)["rows"] == []
    with pytest.raises(ValueError):
        build_table("Pod", [], now=NOW, include_object="Everything")


@pytest.mark.parametrize(("phase", "message"), [("Succeeded", "The pod has completed successfully."),
                                                ("Failed", "The pod failed.")])
def test_finished_pod_rows_carry_completed_condition(phase: str, message: str) -> None:
    (row,) = build_table("Pod", [pod(phase=phase)], now=NOW)["rows"]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": phase, "message": message}]
    (running_row,) = build_table("Pod", [pod(phase="Running")], now=NOW)["rows"]
    assert "conditions" not in running_row
