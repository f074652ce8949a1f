"""Server-side tables: the ``meta.k8s.io/v1`` ``Table`` form of objects, as ``kubectl get`` prints it.

Role: when a list or get request asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``
the API server answers with a ``Table`` instead of the objects. This module builds that answer
from plain object dicts, with the same columns, order, priorities and cell formats as Kubernetes'
printers (``pkg/printers/internalversion/printers.go``) and ages like apimachinery's
``duration.HumanDuration``. ``mkctl get`` renders the same tables.

Data flow: handler lists objects -> ``build_table(kind, objects, now=...)`` ->
``column_definitions(kind)`` + one ``table_row(kind, obj, now=...)`` per object -> JSON response.

Like the real server (which generates tables with ``Wide: true``), every row carries the cells of
every column, wide ones included; clients hide the columns with ``priority`` > 0 unless asked for
``-o wide``. Column names are spelled as Kubernetes sends them ("Name", "Nominated Node"); kubectl
upper-cases them when it prints the header.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from machinery.timefmt import age_since, aware, human_duration, parse_time

# ---------------------------------------------------------------------------------------------
# Column definitions
# ---------------------------------------------------------------------------------------------

_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically. "
    "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
    "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_AGE_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. "
    "It is not guaranteed to be set in happens-before order across separate operations. Clients "
    "may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the "
    "system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

# (name, type, priority, format, description); format "name" marks the object-name column.
_Column = tuple[str, str, int, str, str]

_NAME: _Column = ("Name", "string", 0, "name", _NAME_DOC)
_AGE: _Column = ("Age", "string", 0, "", _AGE_DOC)
_CONTAINERS: _Column = ("Containers", "string", 1, "", "Names of each container in the template.")
_IMAGES: _Column = ("Images", "string", 1, "", "Images referenced by each container in the template.")

_COLUMNS: dict[str, tuple[_Column, ...]] = {
    "Pod": (
        _NAME,
        ("Ready", "string", 0, "", "The aggregate readiness state of this pod for accepting traffic."),
        ("Status", "string", 0, "", "The aggregate status of the containers in this pod."),
        (
            "Restarts",
            "string",
            0,
            "",
            "The number of times the containers in this pod have been restarted and when the last "
            "container in this pod has restarted.",
        ),
        _AGE,
        ("IP", "string", 1, "", "podIP address allocated to the pod."),
        ("Node", "string", 1, "", "NodeName indicates in which node this pod is scheduled."),
        ("Nominated Node", "string", 1, "", "nominatedNodeName is set only when this pod preempts other pods on the node."),
        ("Readiness Gates", "string", 1, "", "If specified, all readiness gates will be evaluated for pod readiness."),
    ),
    "Namespace": (
        _NAME,
        ("Status", "string", 0, "", "The status of the namespace"),
        _AGE,
    ),
    "Node": (
        _NAME,
        ("Status", "string", 0, "", "The status of the node"),
        ("Roles", "string", 0, "", "The roles of the node"),
        _AGE,
        ("Version", "string", 0, "", "Kubelet Version reported by the node."),
        ("Internal-IP", "string", 1, "", "List of addresses reachable to the node."),
        ("External-IP", "string", 1, "", "List of addresses reachable to the node."),
        ("OS-Image", "string", 1, "", "OS Image reported by the node from /etc/os-release."),
        ("Kernel-Version", "string", 1, "", "Kernel Version reported by the node from 'uname -r'."),
        ("Container-Runtime", "string", 1, "", "ContainerRuntime Version reported by the node through runtime remote API."),
    ),
    "Service": (
        _NAME,
        ("Type", "string", 0, "", "type determines how the Service is exposed."),
        ("Cluster-IP", "string", 0, "", "clusterIP is the IP address of the service."),
        ("External-IP", "string", 0, "", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
        ("Port(s)", "string", 0, "", "The list of ports that are exposed by this service."),
        _AGE,
        ("Selector", "string", 1, "", "Route service traffic to pods with label keys and values matching this selector."),
    ),
    "Endpoints": (
        _NAME,
        ("Endpoints", "string", 0, "", "The set of all endpoints is the union of all subsets."),
        _AGE,
    ),
    "Deployment": (
        _NAME,
        ("Ready", "string", 0, "", "Number of the pod with ready state"),
        ("Up-to-date", "string", 0, "", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
        ("Available", "string", 0, "", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        ("Selector", "string", 1, "", "Label selector for pods."),
    ),
    "ReplicaSet": (
        _NAME,
        ("Desired", "integer", 0, "", "Replicas is the number of desired replicas."),
        ("Current", "integer", 0, "", "Replicas is the most recently observed number of replicas."),
        ("Ready", "integer", 0, "", "The number of ready replicas for this replica set."),
        _AGE,
        _CONTAINERS,
        _IMAGES,
        ("Selector", "string", 1, "", "Selector is a label query over pods that should match the replica count."),
    ),
    "Ingress": (
        _NAME,
        ("Class", "string", 0, "", "The name of the IngressClass resource that should be used for additional configuration"),
        ("Hosts", "string", 0, "", "Hosts that incoming requests are matched against before the ingress rule"),
        ("Address", "string", 0, "", "Address is a list containing ingress points for the load-balancer"),
        ("Ports", "string", 0, "", "Ports of TLS configurations that open"),
        _AGE,
    ),
    "Event": (
        ("Last Seen", "string", 0, "", "The time at which the most recent occurrence of this event was recorded."),
        ("Type", "string", 0, "", "Type of this event (Normal, Warning), new types could be added in the future"),
        ("Reason", "string", 0, "", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
        ("Object", "string", 0, "", "The object that this event is about."),
        ("Subobject", "string", 1, "", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement."),
        ("Source", "string", 1, "", "The component reporting this event."),
        ("Message", "string", 0, "", "A human-readable description of the status of this operation."),
        ("First Seen", "string", 1, "", "The time at which the event was first recorded."),
        ("Count", "string", 1, "", "The number of times this event has occurred."),
        ("Name", "string", 1, "name", _NAME_DOC),
    ),
    "ConfigMap": (
        _NAME,
        ("Data", "string", 0, "", "Data contains the configuration data."),
        _AGE,
    ),
    "Secret": (
        _NAME,
        ("Type", "string", 0, "", "Used to facilitate programmatic handling of secret data."),
        ("Data", "string", 0, "", "Data contains the secret data."),
        _AGE,
    ),
    "Lease": (
        _NAME,
        ("Holder", "string", 0, "", "holderIdentity contains the identity of the holder of a current lease."),
        _AGE,
    ),
}
_DEFAULT_COLUMNS: tuple[_Column, ...] = (_NAME, _AGE)


def column_definitions(kind: str) -> list[dict]:
    """The ``TableColumnDefinition`` list for ``kind`` (Name and Age for kinds without a printer)."""
    return [
        {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}
        for name, type_, priority, format_, description in _COLUMNS.get(kind, _DEFAULT_COLUMNS)
    ]


def _age(obj: Mapping[str, Any], now: datetime) -> str:
    return age_since(_meta(obj).get("creationTimestamp"), now)


# ---------------------------------------------------------------------------------------------
# Small shared formatters
# ---------------------------------------------------------------------------------------------


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("spec") or {}


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return _meta(obj).get("name", "")


def _format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: "a=1,b=2" sorted by key, "<none>" when empty."""
    if not labels:
        return "<none>"
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def _requirement(expression: Mapping[str, Any]) -> str:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = ",".join(sorted(expression.get("values") or []))
    if operator == "In":
        return f"{key} in ({values})"
    if operator == "NotIn":
        return f"{key} notin ({values})"
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    raise ValueError(f"unknown label selector operator {operator!r}")


def _selector_string(selector: Mapping[str, Any] | None) -> str:
    """``LabelSelectorAsSelector(sel).String()``: requirements sorted by key; raises if invalid."""
    if not selector:
        return ""
    pairs = [(key, f"{key}={value}") for key, value in (selector.get("matchLabels") or {}).items()]
    pairs += [(expr.get("key", ""), _requirement(expr)) for expr in selector.get("matchExpressions") or []]
    return ",".join(text for _, text in sorted(pairs, key=lambda pair: pair[0]))


def _format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """``metav1.FormatLabelSelector``: like the selector string, "<none>" when empty."""
    try:
        text = _selector_string(selector)
    except ValueError:
        return "<error>"
    return text or "<none>"


def _container_cells(pod_spec: Mapping[str, Any]) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, each comma-joined."""
    containers = pod_spec.get("containers") or []
    names = ",".join(container.get("name", "") for container in containers)
    images = ",".join(container.get("image", "") for container in containers)
    return names, images


def _template_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return (_spec(obj).get("template") or {}).get("spec") or {}


def _join_host_port(host: str, port: int) -> str:
    """``net.JoinHostPort``: brackets around IPv6 addresses."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _with_more(items: list[str], *, total: int, limit: int = 3) -> str:
    text = ",".join(items[:limit])
    return f"{text} + {total - limit} more..." if total > limit else text


# ---------------------------------------------------------------------------------------------
# Pod
# ---------------------------------------------------------------------------------------------


def _is_restartable_init(container: Mapping[str, Any] | None) -> bool:
    return container is not None and container.get("restartPolicy") == "Always"


def _condition_true(conditions: list[Mapping[str, Any]], condition_type: str) -> bool:
    """The first condition of ``condition_type`` is True (False when absent)."""
    for condition in conditions:
        if condition.get("type") == condition_type:
            return condition.get("status") == "True"
    return False


def _has_condition_true(conditions: list[Mapping[str, Any]], condition_type: str) -> bool:
    return any(c.get("type") == condition_type and c.get("status") == "True" for c in conditions)


def _finished_at(container_status: Mapping[str, Any]) -> datetime | None:
    terminated = (container_status.get("lastState") or {}).get("terminated")
    return parse_time(terminated.get("finishedAt")) if terminated else None


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or current < candidate else current


def _terminated_reason(terminated: Mapping[str, Any], *, prefix: str) -> str:
    if terminated.get("reason"):
        return prefix + terminated["reason"]
    if terminated.get("signal"):
        return f"{prefix}Signal:{terminated['signal']}"
    return f"{prefix}ExitCode:{terminated.get('exitCode', 0)}"


def _init_reason(
    status: Mapping[str, Any], *, index: int, total: int
) -> str | None:
    """The STATUS an init container status imposes, or None when it lets initialization go on."""
    state = status.get("state") or {}
    terminated, waiting = state.get("terminated"), state.get("waiting")
    if terminated is not None:
        return _terminated_reason(terminated, prefix="Init:")
    if waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
        return "Init:" + waiting["reason"]
    return f"Init:{index}/{total}"


def _pod_summary(pod: Mapping[str, Any]) -> tuple[int, int, str, int, datetime | None]:
    """``printPod``'s arithmetic: (ready, total, status reason, restarts, last restart time)."""
    spec, status = _spec(pod), _status(pod)
    conditions = status.get("conditions") or []
    init_specs = {c.get("name"): c for c in spec.get("initContainers") or []}
    total = len(spec.get("containers") or []) + sum(_is_restartable_init(c) for c in init_specs.values())
    ready = 0
    phase = status.get("phase") or "Pending"
    reason = status.get("reason") or phase
    if any(c.get("type") == "PodScheduled" and c.get("reason") == "SchedulingGated" for c in conditions):
        reason = "SchedulingGated"

    restarts, sidecar_restarts = 0, 0
    last_restart: datetime | None = None
    last_sidecar_restart: datetime | None = None
    initializing = False
    for index, container in enumerate(status.get("initContainerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        last_restart = _later(last_restart, _finished_at(container))
        sidecar = _is_restartable_init(init_specs.get(container.get("name")))
        if sidecar:
            sidecar_restarts += int(container.get("restartCount") or 0)
            last_sidecar_restart = _later(last_sidecar_restart, _finished_at(container))
        terminated = (container.get("state") or {}).get("terminated")
        if terminated is not None and int(terminated.get("exitCode") or 0) == 0:
            continue
        if sidecar and container.get("started"):
            ready += bool(container.get("ready"))
            continue
        reason = _init_reason(container, index=index, total=len(init_specs))
        initializing = True
        break

    if not initializing or _condition_true(conditions, "Initialized"):
        restarts, last_restart = sidecar_restarts, last_sidecar_restart
        has_running = False
        for container in reversed(status.get("containerStatuses") or []):
            restarts += int(container.get("restartCount") or 0)
            last_restart = _later(last_restart, _finished_at(container))
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = _terminated_reason(terminated, prefix="")
            elif container.get("ready") and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition_true(conditions, "Ready") else "NotReady"

    deleting = _meta(pod).get("deletionTimestamp") is not None
    if deleting and status.get("reason") == "NodeLost":
        reason = "Unknown"
    elif deleting and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart


def _readiness_gates(pod: Mapping[str, Any]) -> str:
    gates = _spec(pod).get("readinessGates") or []
    if not gates:
        return "<none>"
    conditions = _status(pod).get("conditions") or []
    passed = sum(_condition_true(conditions, gate.get("conditionType", "")) for gate in gates)
    return f"{passed}/{len(gates)}"


def _pod_ip(pod: Mapping[str, Any]) -> str:
    status = _status(pod)
    ips = status.get("podIPs") or []
    return (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"


def _pod_cells(pod: Mapping[str, Any], now: datetime) -> list:
    ready, total, reason, restarts, last_restart = _pod_summary(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({human_duration((aware(now) - last_restart).total_seconds())} ago)"
    return [
        _name(pod),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        _age(pod, now),
        _pod_ip(pod),
        _spec(pod).get("nodeName") or "<none>",
        _status(pod).get("nominatedNodeName") or "<none>",
        _readiness_gates(pod),
    ]


# ---------------------------------------------------------------------------------------------
# Other kinds
# ---------------------------------------------------------------------------------------------


def _namespace_cells(ns: Mapping[str, Any], now: datetime) -> list:
    # The real server always sets status.phase; fall back to what it would have set.
    default = "Terminating" if _meta(ns).get("deletionTimestamp") else "Active"
    return [_name(ns), _status(ns).get("phase") or default, _age(ns, now)]


def _node_status(node: Mapping[str, Any]) -> str:
    ready = [c for c in _status(node).get("conditions") or [] if c.get("type") == "Ready"]
    words = ["Ready" if ready[-1].get("status") == "True" else "NotReady"] if ready else ["Unknown"]
    if _spec(node).get("unschedulable"):
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_roles(node: Mapping[str, Any]) -> str:
    roles: set[str] = set()
    for key, value in (_meta(node).get("labels") or {}).items():
        if key.startswith("node-role.kubernetes.io/") and key != "node-role.kubernetes.io/":
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or "<none>"


def _node_address(node: Mapping[str, Any], address_type: str) -> str:
    for address in _status(node).get("addresses") or []:
        if address.get("type") == address_type:
            return address.get("address", "")
    return "<none>"


def _node_cells(node: Mapping[str, Any], now: datetime) -> list:
    info = _status(node).get("nodeInfo") or {}
    return [
        _name(node),
        _node_status(node),
        _node_roles(node),
        _age(node, now),
        info.get("kubeletVersion", ""),
        _node_address(node, "InternalIP"),
        _node_address(node, "ExternalIP"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


def _load_balancer_addresses(status: Mapping[str, Any]) -> str:
    """``loadBalancerStatusStringer`` (wide): sorted unique IPs, else hostnames, comma-joined."""
    found = {entry.get("ip") or entry.get("hostname") for entry in (status.get("ingress") or [])}
    return ",".join(sorted(address for address in found if address))


def _service_external_ip(service: Mapping[str, Any]) -> str:
    spec = _spec(service)
    external = list(spec.get("externalIPs") or [])
    service_type = spec.get("type") or "ClusterIP"
    if service_type in ("ClusterIP", "NodePort"):
        return ",".join(external) or "<none>"
    if service_type == "LoadBalancer":
        balancer = _load_balancer_addresses(_status(service).get("loadBalancer") or {})
        return ",".join(([balancer] if balancer else []) + external) or "<pending>"
    if service_type == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def _service_ports(ports: list[Mapping[str, Any]]) -> str:
    pieces = []
    for port in ports:
        protocol = port.get("protocol") or "TCP"
        node_port = port.get("nodePort") or 0
        if node_port > 0:
            pieces.append(f"{port.get('port')}:{node_port}/{protocol}")
        else:
            pieces.append(f"{port.get('port')}/{protocol}")
    return ",".join(pieces) or "<none>"


def _service_cells(service: Mapping[str, Any], now: datetime) -> list:
    spec = _spec(service)
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [
        _name(service),
        spec.get("type") or "ClusterIP",
        cluster_ips[0] if cluster_ips else "<none>",
        _service_external_ip(service),
        _service_ports(spec.get("ports") or []),
        _age(service, now),
        _format_labels(spec.get("selector")),
    ]


def _format_endpoints(endpoints: Mapping[str, Any]) -> str:
    """``formatEndpoints``: up to three "ip:port" entries, then " + N more..."."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    entries: list[str] = []
    for subset in subsets:
        ips = [address.get("ip", "") for address in subset.get("addresses") or []]
        ports = subset.get("ports") or []
        if not ports:
            entries += ips
            continue
        for port in ports:
            entries += [_join_host_port(ip, port.get("port", 0)) for ip in ips]
    return _with_more(entries, total=len(entries))


def _endpoints_cells(endpoints: Mapping[str, Any], now: datetime) -> list:
    return [_name(endpoints), _format_endpoints(endpoints), _age(endpoints, now)]


def _replicas(obj: Mapping[str, Any]) -> int:
    replicas = _spec(obj).get("replicas")
    return 1 if replicas is None else int(replicas)  # the server defaults spec.replicas to 1


def _deployment_cells(deployment: Mapping[str, Any], now: datetime) -> list:
    status = _status(deployment)
    names, images = _container_cells(_template_spec(deployment))
    try:
        selector = _selector_string(_spec(deployment).get("selector"))
    except ValueError:
        selector = "<invalid>"
    return [
        _name(deployment),
        f"{int(status.get('readyReplicas') or 0)}/{_replicas(deployment)}",
        int(status.get("updatedReplicas") or 0),
        int(status.get("availableReplicas") or 0),
        _age(deployment, now),
        names,
        images,
        selector,
    ]


def _replicaset_cells(replicaset: Mapping[str, Any], now: datetime) -> list:
    status = _status(replicaset)
    names, images = _container_cells(_template_spec(replicaset))
    return [
        _name(replicaset),
        _replicas(replicaset),
        int(status.get("replicas") or 0),
        int(status.get("readyReplicas") or 0),
        _age(replicaset, now),
        names,
        images,
        _format_label_selector(_spec(replicaset).get("selector")),
    ]


def _ingress_hosts(rules: list[Mapping[str, Any]]) -> str:
    """``formatHosts``: the first three non-empty hosts, "*" when none, " + N more..." over rules."""
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
            break
        if rule.get("host"):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    text = ",".join(hosts)
    return f"{text} + {len(rules) - 3} more..." if more else text


def _ingress_cells(ingress: Mapping[str, Any], now: datetime) -> list:
    spec = _spec(ingress)
    return [
        _name(ingress),
        spec.get("ingressClassName") or "<none>",
        _ingress_hosts(spec.get("rules") or []),
        _load_balancer_addresses(_status(ingress).get("loadBalancer") or {}),
        "80, 443" if spec.get("tls") else "80",
        _age(ingress, now),
    ]


def _event_source(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def _event_cells(event: Mapping[str, Any], now: datetime) -> list:
    first = (
        age_since(event.get("firstTimestamp"), now)
        if event.get("firstTimestamp")
        else age_since(event.get("eventTime"), now)
    )
    last = age_since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if series is not None:
        last = age_since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        _event_source(event),
        (event.get("message") or "").strip(),
        first,
        int(count),
        _name(event),
    ]


def _configmap_cells(configmap: Mapping[str, Any], now: datetime) -> list:
    size = len(configmap.get("data") or {}) + len(configmap.get("binaryData") or {})
    return [_name(configmap), size, _age(configmap, now)]


def _secret_cells(secret: Mapping[str, Any], now: datetime) -> list:
    return [_name(secret), secret.get("type") or "Opaque", len(secret.get("data") or {}), _age(secret, now)]


def _lease_cells(lease: Mapping[str, Any], now: datetime) -> list:
    return [_name(lease), _spec(lease).get("holderIdentity") or "", _age(lease, now)]


def _default_cells(obj: Mapping[str, Any], now: datetime) -> list:
    return [_name(obj), _age(obj, now)]


_ROWS: dict[str, Callable[[Mapping[str, Any], datetime], list]] = {
    "Pod": _pod_cells,
    "Namespace": _namespace_cells,
    "Node": _node_cells,
    "Service": _service_cells,
    "Endpoints": _endpoints_cells,
    "Deployment": _deployment_cells,
    "ReplicaSet": _replicaset_cells,
    "Ingress": _ingress_cells,
    "Event": _event_cells,
    "ConfigMap": _configmap_cells,
    "Secret": _secret_cells,
    "Lease": _lease_cells,
}


def table_row(kind: str, obj: dict, *, now: datetime) -> list:
    """The cells of one object, one per column of ``column_definitions(kind)`` (wide ones too)."""
    return _ROWS.get(kind, _default_cells)(obj, now)


# ---------------------------------------------------------------------------------------------
# The Table
# ---------------------------------------------------------------------------------------------

_POD_DONE = {
    "Succeeded": "The pod has completed successfully.",
    "Failed": "The pod failed.",
}


def _row_conditions(kind: str, obj: Mapping[str, Any]) -> list[dict] | None:
    """Pods that finished carry a ``Completed`` row condition, as Kubernetes' printer adds."""
    phase = _status(obj).get("phase")
    if kind != "Pod" or phase not in _POD_DONE:
        return None
    return [{"type": "Completed", "status": "True", "reason": phase, "message": _POD_DONE[phase]}]


def _row_object(obj: dict, include_object: str) -> dict | None:
    if include_object == "None":
        return None
    if include_object == "Object":
        return obj
    if include_object == "Metadata":
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}
    raise ValueError(f"includeObject must be None, Metadata or Object, not {include_object!r}")


def _row(kind: str, obj: dict, *, now: datetime, include_object: str) -> dict:
    row: dict[str, Any] = {"cells": table_row(kind, obj, now=now)}
    conditions = _row_conditions(kind, obj)
    if conditions:
        row["conditions"] = conditions
    embedded = _row_object(obj, include_object)
    if embedded is not None:
        row["object"] = embedded
    return row


def build_table(
    kind: str,
    objects: list[dict],
    *,
    now: datetime,
    include_object: str = "Metadata",
    resource_version: str = "",
    continue_token: str = "",
) -> dict:
    """A ``meta.k8s.io/v1`` ``Table`` of ``objects``; ``include_object`` is the ``includeObject`` policy.

    ``metadata.continue`` is present only when set (it is ``omitempty`` in Kubernetes' ListMeta).
    Raises ValueError for an ``include_object`` other than "None", "Metadata" or "Object".
    """
    _row_object({}, include_object)  # validate even when there are no objects
    metadata: dict[str, str] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(kind),
        "rows": [_row(kind, obj, now=now, include_object=include_object) for obj in objects],
    }
