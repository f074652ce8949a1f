"""``mkctl describe`` text, shaped like kubectl's describers, as pure functions.

Data flow: the command fetches the object, its events (field selector on ``involvedObject``)
and a few related objects (a Deployment's ReplicaSets, a Service's Endpoints) -> ``describe``
picks the kind's describer -> lines written with kubectl's indentation levels and tab-separated
cells -> ``tabwrite`` with kubectl describe's settings (padding 2) -> the text. Kinds without a
describer get kubectl's generic form: the metadata block, then every other field as an indented
``Title Case:`` tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

from machinery.timefmt import age_since, parse_time

from .describe_quota import describe_limit_range, describe_resource_quota
from .printing import tabwrite
from .threeway import LAST_APPLIED

Obj = Mapping[str, Any]


@dataclass
class Related:
    """Objects a describer shows besides the object itself."""

    events: Sequence[Obj] = field(default_factory=list)
    replica_sets: Sequence[Obj] = field(default_factory=list)  # a Deployment's, owned by it
    endpoints: Obj | None = None  # a Service's
    pods: Sequence[Obj] = field(default_factory=list)  # a Node's


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, level: int, text: str) -> None:
        self.lines.append("  " * level + text)

    def text(self) -> str:
        return tabwrite("\n".join(self.lines) + "\n", minwidth=0, padding=2)


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def rfc1123(value: Any) -> str:
    """Go's ``time.RFC1123Z`` (``Mon, 02 Jan 2006 15:04:05 -0700``), in local time like kubectl."""
    moment = parse_time(value)
    if moment is None:
        return "<unknown>"
    return moment.astimezone().strftime("%a, %d %b %Y %H:%M:%S %z")


def _heading(w: _Writer, level: int, title: str, items: Sequence[Any]) -> bool:
    """``Title:`` before a list of ``items``, or ``Title:\t<none>`` when there are none."""
    w.write(level, f"{title}:" if items else f"{title}:\t<none>")
    return bool(items)


def _section(w: _Writer, level: int, title: str, lines: Sequence[str]) -> None:
    """``Title:`` then each line one level deeper; ``Title:\t<none>`` when there are none."""
    if _heading(w, level, title, lines):
        for line in lines:
            w.write(level + 1, line)


def _multiline(w: _Writer, level: int, title: str, items: Sequence[str]) -> None:
    """``Title:\\tfirst`` then ``\\tnext`` per extra line; ``<none>`` when empty (printLabelsMultiline)."""
    if not items:
        w.write(level, f"{title}:\t<none>")
        return
    w.write(level, f"{title}:\t{items[0]}")
    for item in items[1:]:
        w.write(level, f"\t{item}")


def _labels(labels: Mapping[str, Any] | None) -> list[str]:
    return [f"{k}={v}" for k, v in sorted((labels or {}).items())]


def _annotations(annotations: Mapping[str, Any] | None) -> list[str]:
    out: list[str] = []
    for k, v in sorted((annotations or {}).items()):
        if k == LAST_APPLIED:
            continue
        text = str(v).strip()
        out.append(f"{k}: {text}" if "\n" not in text else f"{k}:\n" + text)
    return out


def _selector(selector: Mapping[str, Any] | None) -> str:
    """A LabelSelector (or a plain map) as ``a=b,c in (d)``; ``<none>`` when empty."""
    if not selector:
        return "<none>"
    labels = selector.get("matchLabels") if "matchLabels" in selector or "matchExpressions" in selector else selector
    parts = [f"{k}={v}" for k, v in sorted((labels or {}).items())]
    for e in selector.get("matchExpressions") or [] if labels is not selector else []:
        op, values = str(e.get("operator", "")), ",".join(e.get("values") or [])
        key = e.get("key", "")
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": str(key), "DoesNotExist": f"!{key}"}.get(op, f"{key} {op} ({values})"))
    return ",".join(parts) or "<none>"


def _object_meta(w: _Writer, obj: Obj, *, namespaced: bool = True, timestamp: bool = True) -> None:
    meta = _meta(obj)
    w.write(0, f"Name:\t{meta.get('name', '')}")
    if namespaced:
        w.write(0, f"Namespace:\t{meta.get('namespace', '')}")
    if timestamp:
        w.write(0, f"CreationTimestamp:\t{rfc1123(meta.get('creationTimestamp'))}")
    _multiline(w, 0, "Labels", _labels(meta.get("labels")))
    _multiline(w, 0, "Annotations", _annotations(meta.get("annotations")))


def _controlled_by(w: _Writer, obj: Obj) -> None:
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            w.write(0, f"Controlled By:\t{ref.get('kind')}/{ref.get('name')}")


# ------------------------------------------------------------------------------- events
def _event_interval(event: Obj, now: datetime) -> str:
    count = int(event.get("count") or 0)
    if count > 1:
        return (f"{age_since(event.get('lastTimestamp'), now)} (x{count} over "
                f"{age_since(event.get('firstTimestamp'), now)})")
    first = event.get("firstTimestamp") or event.get("eventTime") or (event.get("metadata") or {}).get(
        "creationTimestamp")
    return age_since(first, now)


def _event_sort_key(event: Obj) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")


def _events(w: _Writer, events: Sequence[Obj], now: datetime) -> None:
    if not _heading(w, 0, "Events", events):
        return
    w.write(1, "Type\tReason\tAge\tFrom\tMessage")
    w.write(1, "----\t------\t----\t----\t-------")
    for e in sorted(events, key=_event_sort_key):
        source = (e.get("source") or {}).get("component") or e.get("reportingComponent") or ""
        message = str(e.get("message") or "").strip()
        w.write(1, f"{e.get('type', '')}\t{e.get('reason', '')}\t{_event_interval(e, now)}\t{source}\t{message}")


# ------------------------------------------------------------------------------- containers
def _port_text(port: Mapping[str, Any], key: str = "containerPort") -> str:
    return f"{port.get(key, 0)}/{port.get('protocol') or 'TCP'}"


def _container_state(w: _Writer, level: int, title: str, state: Mapping[str, Any] | None) -> None:
    state = state or {}
    if "running" in state:
        w.write(level, f"{title}:\tRunning")
        w.write(level + 1, f"Started:\t{rfc1123((state['running'] or {}).get('startedAt'))}")
    elif "waiting" in state:
        w.write(level, f"{title}:\tWaiting")
        if (state["waiting"] or {}).get("reason"):
            w.write(level + 1, f"Reason:\t{state['waiting']['reason']}")
    elif "terminated" in state:
        t = state["terminated"] or {}
        w.write(level, f"{title}:\tTerminated")
        if t.get("reason"):
            w.write(level + 1, f"Reason:\t{t['reason']}")
        w.write(level + 1, f"Exit Code:\t{t.get('exitCode', 0)}")
        w.write(level + 1, f"Started:\t{rfc1123(t.get('startedAt'))}")
        w.write(level + 1, f"Finished:\t{rfc1123(t.get('finishedAt'))}")
    else:
        w.write(level, f"{title}:\tWaiting")


def _env_lines(container: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for e in container.get("env") or []:
        if "value" in e:
            out.append(f"{e.get('name')}:\t{e.get('value')}")
        else:
            source = e.get("valueFrom") or {}
            what = next(iter(source), "")
            out.append(f"{e.get('name')}:\t<set to the {what}>")
    return out


def _containers(w: _Writer, title: str, containers: Sequence[Mapping[str, Any]],
                statuses: Sequence[Mapping[str, Any]] | None, *, template: bool = False) -> None:
    """kubectl's describeContainers: in a pod template the title is indented and names get one more space."""
    space = "  " if template else ""
    w.write(0, f"{space}{title}:{'' if containers else ' <none>'}")
    by_name = {s.get("name"): s for s in statuses or []}
    for c in containers:
        w.write(1, f"{' ' if template else ''}{c.get('name')}:")
        status = by_name.get(c.get("name"))
        if statuses is not None:
            w.write(2, f"Container ID:\t{(status or {}).get('containerID', '')}")
        w.write(2, f"Image:\t{c.get('image', '')}")
        if statuses is not None:
            w.write(2, f"Image ID:\t{(status or {}).get('imageID', '')}")
        ports = c.get("ports") or []
        host_ports = [_port_text(p, "hostPort") for p in ports]
        if len(ports) > 1:
            w.write(2, f"Ports:\t{', '.join(_port_text(p) for p in ports)}")
            w.write(2, f"Host Ports:\t{', '.join(host_ports)}")
        else:
            w.write(2, f"Port:\t{_port_text(ports[0]) if ports else '<none>'}")
            w.write(2, f"Host Port:\t{host_ports[0] if ports else '<none>'}")
        for part in ("command", "args"):
            if c.get(part):
                w.write(2, f"{part.capitalize()}:")
                for item in c[part]:
                    w.write(3, str(item))
        if statuses is not None:
            _container_state(w, 2, "State", (status or {}).get("state"))
            if (status or {}).get("lastState"):
                _container_state(w, 2, "Last State", (status or {})["lastState"])
            w.write(2, f"Ready:\t{'True' if (status or {}).get('ready') else 'False'}")
            w.write(2, f"Restart Count:\t{(status or {}).get('restartCount', 0)}")
        resources = c.get("resources") or {}
        for part in ("limits", "requests"):
            if resources.get(part):
                w.write(2, f"{part.capitalize()}:")
                for k, v in sorted(resources[part].items()):
                    w.write(3, f"{k}:\t{v}")
        _section(w, 2, "Environment", _env_lines(c))
        _section(w, 2, "Mounts", [f"{m.get('mountPath')} from {m.get('name')} ({'ro' if m.get('readOnly') else 'rw'})"
                                  for m in c.get("volumeMounts") or []])


def _volumes(w: _Writer, level: int, volumes: Sequence[Mapping[str, Any]]) -> None:
    if not _heading(w, level, "Volumes", volumes):
        return
    for v in volumes:
        w.write(level + 1, f"{v.get('name')}:")
        source: tuple[str, Any] = next(((k, val) for k, val in v.items() if k != "name"), ("", {}))
        w.write(level + 2, f"Type:\t{source[0]}")
        if isinstance(source[1], dict):
            for k, val in sorted(source[1].items()):
                w.write(level + 2, f"{_title(k)}:\t{val}")


def _pod_template(w: _Writer, level: int, template: Mapping[str, Any]) -> None:
    meta, spec = template.get("metadata") or {}, template.get("spec") or {}
    _multiline(w, level + 1, "Labels", _labels(meta.get("labels")))
    if meta.get("annotations"):
        _multiline(w, level + 1, "Annotations", _annotations(meta.get("annotations")))
    if spec.get("serviceAccountName"):
        w.write(level + 1, f"Service Account:\t{spec['serviceAccountName']}")
    if spec.get("initContainers"):
        _containers(w, "Init Containers", spec["initContainers"], None, template=True)
    _containers(w, "Containers", spec.get("containers") or [], None, template=True)
    _volumes(w, level + 1, spec.get("volumes") or [])
    w.write(level + 1, f"Node-Selectors:\t{_selector(spec.get('nodeSelector')) if spec.get('nodeSelector') else '<none>'}")
    w.write(level + 1, f"Tolerations:\t{_tolerations(spec.get('tolerations'))[0]}")


def _tolerations(tolerations: Sequence[Mapping[str, Any]] | None) -> list[str]:
    out: list[str] = []
    for t in tolerations or []:
        text = str(t.get("key", ""))
        if t.get("value"):
            text += f"={t['value']}"
        if t.get("effect"):
            text += f":{t['effect']}"
        if t.get("operator") == "Exists" and not t.get("value"):
            text += " op=Exists"
        if t.get("tolerationSeconds") is not None:
            text += f" for {t['tolerationSeconds']}s"
        out.append(text)
    return out or ["<none>"]


def _conditions(w: _Writer, conditions: Sequence[Mapping[str, Any]], *, reason: bool = True) -> None:
    if not conditions:
        return
    w.write(0, "Conditions:")
    if reason:
        w.write(1, "Type\tStatus\tReason")
        w.write(1, "----\t------\t------")
        for c in conditions:
            w.write(1, f"{c.get('type', '')}\t{c.get('status', '')}\t{c.get('reason', '')}")
    else:
        w.write(1, "Type\tStatus")
        w.write(1, "----\t------")
        for c in conditions:
            w.write(1, f"{c.get('type', '')}\t{c.get('status', '')}")


# ------------------------------------------------------------------------------- kinds
def _describe_deployment(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    spec, status = _spec(obj), _status(obj)
    _object_meta(w, obj)
    w.write(0, f"Selector:\t{_selector(spec.get('selector'))}")
    w.write(0, f"Replicas:\t{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
               f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
               f"{status.get('unavailableReplicas', 0)} unavailable")
    strategy = spec.get("strategy") or {}
    w.write(0, f"StrategyType:\t{strategy.get('type', 'RollingUpdate')}")
    w.write(0, f"MinReadySeconds:\t{spec.get('minReadySeconds', 0)}")
    rolling = strategy.get("rollingUpdate")
    if strategy.get("type", "RollingUpdate") == "RollingUpdate" and rolling:
        w.write(0, f"RollingUpdateStrategy:\t{rolling.get('maxUnavailable', '25%')} max unavailable, "
                   f"{rolling.get('maxSurge', '25%')} max surge")
    w.write(0, "Pod Template:")
    _pod_template(w, 0, spec.get("template") or {})
    _conditions(w, status.get("conditions") or [])
    new_rs, old = _split_replica_sets(obj, related.replica_sets)
    old_text = ", ".join(_rs_text(rs) for rs in old) if old else "<none>"
    w.write(0, f"OldReplicaSets:\t{old_text}")
    w.write(0, f"NewReplicaSet:\t{_rs_text(new_rs) if new_rs else '<none>'}")
    _events(w, related.events, now)


def _revision(rs: Obj) -> int:
    try:
        return int((_meta(rs).get("annotations") or {}).get("deployment.kubernetes.io/revision") or 0)
    except ValueError:
        return 0


def _split_replica_sets(deployment: Obj, replica_sets: Sequence[Obj]) -> tuple[Obj | None, list[Obj]]:
    """The newest ReplicaSet (highest revision) and the others that still have pods."""
    if not replica_sets:
        return None, []
    ordered = sorted(replica_sets, key=_revision)
    newest = ordered[-1]
    old = [rs for rs in ordered[:-1] if (_spec(rs).get("replicas") or 0) > 0]
    return newest, old


def _rs_text(rs: Obj) -> str:
    return f"{_meta(rs).get('name')} ({_status(rs).get('replicas', 0)}/{_spec(rs).get('replicas', 0)} replicas created)"


def _describe_replicaset(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    spec, status = _spec(obj), _status(obj)
    _object_meta(w, obj, timestamp=False)
    w.write(0, f"Selector:\t{_selector(spec.get('selector'))}")
    _controlled_by(w, obj)
    w.write(0, f"Replicas:\t{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired")
    w.write(0, f"Pods Status:\t{status.get('readyReplicas', 0)} Running / 0 Waiting / 0 Succeeded / 0 Failed")
    w.write(0, "Pod Template:")
    _pod_template(w, 0, spec.get("template") or {})
    _conditions(w, status.get("conditions") or [])
    _events(w, related.events, now)


def _describe_pod(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    meta, spec, status = _meta(obj), _spec(obj), _status(obj)
    w.write(0, f"Name:\t{meta.get('name', '')}")
    w.write(0, f"Namespace:\t{meta.get('namespace', '')}")
    w.write(0, f"Priority:\t{spec.get('priority', 0)}")
    w.write(0, f"Service Account:\t{spec.get('serviceAccountName') or 'default'}")
    node = spec.get("nodeName")
    w.write(0, f"Node:\t{node + '/' + status['hostIP'] if node and status.get('hostIP') else node or '<none>'}")
    if status.get("startTime"):
        w.write(0, f"Start Time:\t{rfc1123(status['startTime'])}")
    _multiline(w, 0, "Labels", _labels(meta.get("labels")))
    _multiline(w, 0, "Annotations", _annotations(meta.get("annotations")))
    if meta.get("deletionTimestamp"):
        w.write(0, f"Status:\tTerminating (lasts {age_since(meta['deletionTimestamp'], now)})")
        w.write(0, f"Termination Grace Period:\t{meta.get('deletionGracePeriodSeconds', 0)}s")
    else:
        w.write(0, f"Status:\t{status.get('phase') or 'Pending'}")
    if status.get("reason"):
        w.write(0, f"Reason:\t{status['reason']}")
    if status.get("message"):
        w.write(0, f"Message:\t{status['message']}")
    w.write(0, f"IP:\t{status.get('podIP', '')}")
    ips = [ip.get("ip", "") for ip in status.get("podIPs") or []]
    _multiline(w, 0, "IPs", [f"IP:  {ip}" for ip in ips])
    _controlled_by(w, obj)
    if spec.get("initContainers"):
        _containers(w, "Init Containers", spec["initContainers"], status.get("initContainerStatuses") or [])
    _containers(w, "Containers", spec.get("containers") or [], status.get("containerStatuses") or [])
    _conditions(w, status.get("conditions") or [], reason=False)
    _volumes(w, 0, spec.get("volumes") or [])
    w.write(0, f"QoS Class:\t{status.get('qosClass') or 'BestEffort'}")
    node_selector = spec.get("nodeSelector")
    w.write(0, f"Node-Selectors:\t{_selector(node_selector) if node_selector else '<none>'}")
    _multiline(w, 0, "Tolerations", [t for t in _tolerations(spec.get("tolerations")) if t != "<none>"])
    _events(w, related.events, now)


def _service_ports(w: _Writer, spec: Mapping[str, Any], endpoints: Obj | None) -> None:
    for p in spec.get("ports") or []:
        name = p.get("name") or "<unset>"
        w.write(0, f"Port:\t{name}\t{p.get('port')}/{p.get('protocol') or 'TCP'}")
        target = p.get("targetPort", p.get("port"))
        target_text = f"{target}/{p.get('protocol') or 'TCP'}" if isinstance(target, int) else str(target)
        w.write(0, f"TargetPort:\t{target_text}")
        if p.get("nodePort"):
            w.write(0, f"NodePort:\t{name}\t{p['nodePort']}/{p.get('protocol') or 'TCP'}")
        w.write(0, f"Endpoints:\t{_endpoint_text(endpoints, p)}")


def _endpoint_text(endpoints: Obj | None, port: Mapping[str, Any]) -> str:
    if not endpoints:
        return ""
    out: list[str] = []
    for subset in endpoints.get("subsets") or []:
        ports = subset.get("ports") or []
        matching = [sp for sp in ports if (sp.get("name") or "") == (port.get("name") or "")] or ports[:1]
        for address in subset.get("addresses") or []:
            for sp in matching:
                out.append(f"{address.get('ip')}:{sp.get('port')}")
    return ",".join(out[:3]) + (f" + {len(out) - 3} more..." if len(out) > 3 else "")


def _describe_service(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    spec = _spec(obj)
    _object_meta(w, obj, timestamp=False)
    w.write(0, f"Selector:\t{_selector(spec.get('selector'))}")
    w.write(0, f"Type:\t{spec.get('type') or 'ClusterIP'}")
    if spec.get("ipFamilyPolicy"):
        w.write(0, f"IP Family Policy:\t{spec['ipFamilyPolicy']}")
    if spec.get("ipFamilies"):
        w.write(0, f"IP Families:\t{','.join(spec['ipFamilies'])}")
    w.write(0, f"IP:\t{spec.get('clusterIP', '')}")
    if spec.get("clusterIPs"):
        w.write(0, f"IPs:\t{','.join(spec['clusterIPs'])}")
    if spec.get("externalName"):
        w.write(0, f"External Name:\t{spec['externalName']}")
    _service_ports(w, spec, related.endpoints)
    w.write(0, f"Session Affinity:\t{spec.get('sessionAffinity') or 'None'}")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        w.write(0, f"External Traffic Policy:\t{spec.get('externalTrafficPolicy') or 'Cluster'}")
    w.write(0, f"Internal Traffic Policy:\t{spec.get('internalTrafficPolicy') or 'Cluster'}")
    _events(w, related.events, now)


def _describe_namespace(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    _object_meta(w, obj, namespaced=False, timestamp=False)
    w.write(0, f"Status:\t{_status(obj).get('phase') or 'Active'}")
    w.lines.append("")
    w.write(0, "No resource quota.")
    w.lines.append("")
    w.write(0, "No LimitRange resource.")


def _describe_node(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    meta, spec, status = _meta(obj), _spec(obj), _status(obj)
    roles = sorted(k.split("/", 1)[1] for k in (meta.get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/") and "/" in k)
    w.write(0, f"Name:\t{meta.get('name', '')}")
    w.write(0, f"Roles:\t{','.join(r for r in roles if r) or '<none>'}")
    _multiline(w, 0, "Labels", _labels(meta.get("labels")))
    _multiline(w, 0, "Annotations", _annotations(meta.get("annotations")))
    w.write(0, f"CreationTimestamp:\t{rfc1123(meta.get('creationTimestamp'))}")
    taints = [f"{t.get('key')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect')}"
              for t in spec.get("taints") or []]
    _multiline(w, 0, "Taints", taints)
    w.write(0, f"Unschedulable:\t{'true' if spec.get('unschedulable') else 'false'}")
    conditions = status.get("conditions") or []
    if conditions:
        w.write(0, "Conditions:")
        w.write(1, "Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage")
        w.write(1, "----\t------\t-----------------\t------------------\t------\t-------")
        for c in conditions:
            w.write(1, f"{c.get('type', '')}\t{c.get('status', '')}\t{rfc1123(c.get('lastHeartbeatTime'))}\t"
                       f"{rfc1123(c.get('lastTransitionTime'))}\t{c.get('reason', '')}\t{c.get('message', '')}")
    addresses = status.get("addresses") or []
    w.write(0, "Addresses:")
    for a in addresses:
        w.write(1, f"{a.get('type')}:\t{a.get('address')}")
    for part in ("capacity", "allocatable"):
        if status.get(part):
            w.write(0, f"{part.capitalize()}:")
            for k, v in sorted(status[part].items()):
                w.write(1, f"{k}:\t{v}")
    info = status.get("nodeInfo") or {}
    if info:
        w.write(0, "System Info:")
        for key in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"):
            if key in info:
                w.write(1, f"{_title(key).replace('ID', 'ID')}:\t{info[key]}")
    w.write(0, f"PodCIDR:\t{spec.get('podCIDR', '')}")
    _multiline(w, 0, "PodCIDRs", list(spec.get("podCIDRs") or []))
    pods = related.pods
    w.write(0, f"Non-terminated Pods:\t({len(pods)} in total)")
    if pods:
        w.write(1, "Namespace\tName\tAge")
        w.write(1, "---------\t----\t---")
        for p in pods:
            w.write(1, f"{_meta(p).get('namespace')}\t{_meta(p).get('name')}\t"
                       f"{age_since(_meta(p).get('creationTimestamp'), now)}")
    _events(w, related.events, now)


def _describe_configmap(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    _object_meta(w, obj, timestamp=False)
    w.lines.append("")
    w.write(0, "Data")
    w.write(0, "====")
    for k, v in sorted((obj.get("data") or {}).items()):
        w.write(0, f"{k}:")
        w.write(0, "----")
        w.lines.extend(str(v).rstrip("\n").split("\n"))
        w.lines.append("")
    w.lines.append("")
    w.write(0, "BinaryData")
    w.write(0, "====")
    for k, v in sorted((obj.get("binaryData") or {}).items()):
        w.write(0, f"{k}: {len(str(v)) * 3 // 4} bytes")
    w.lines.append("")
    _events(w, related.events, now)


def _describe_secret(w: _Writer, obj: Obj, related: Related, now: datetime) -> None:
    """kubectl's SecretDescriber: the size of each value, never the value (kubectl shows a
    service-account-token Secret's token; here no value is ever printed)."""
    _object_meta(w, obj, timestamp=False)
    w.lines.append("")
    w.write(0, f"Type:\t{obj.get('type', '')}")
    w.lines.append("")
    w.write(0, "Data")
    w.write(0, "====")
    for k, v in sorted((obj.get("data") or {}).items()):
        w.write(0, f"{k}:\t{_decoded_size(str(v or ''))} bytes")  # kubectl shows no Events here


def _decoded_size(b64: str) -> int:
    """The length of a base64 value once decoded, without decoding it."""
    return len(b64) * 3 // 4 - b64[-2:].count("=")


# ------------------------------------------------------------------------------- generic
def _title(key: str) -> str:
    """``creationTimestamp`` -> ``Creation Timestamp`` (kubectl's generic describer)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", key)
    return spaced[:1].upper() + spaced[1:]


def _tree(w: _Writer, level: int, value: Any) -> None:
    if isinstance(value, Mapping):
        for k in sorted(value):
            v = value[k]
            if isinstance(v, (Mapping, list)) and v:
                w.write(level, f"{_title(str(k))}:")
                _tree(w, level + 1, v)
            else:
                w.write(level, f"{_title(str(k))}:\t{_scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping) and item:
                keys = sorted(item)
                first, rest = keys[0], {k: item[k] for k in keys[1:]}
                v = item[first]
                if isinstance(v, (Mapping, list)) and v:
                    w.write(level, f"{_title(first)}:")
                    _tree(w, level + 2, v)
                else:
                    w.write(level, f"{_title(first)}:\t{_scalar(v)}")
                _tree(w, level + 1, rest)
            else:
                w.write(level, _scalar(item))


def _scalar(v: Any) -> str:
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (Mapping, list)):
        return "<none>" if not v else str(v)
    return str(v)


def _describe_generic(w: _Writer, obj: Obj, related: Related, now: datetime, *, namespaced: bool) -> None:
    meta = _meta(obj)
    w.write(0, f"Name:\t{meta.get('name', '')}")
    if namespaced:
        w.write(0, f"Namespace:\t{meta.get('namespace', '')}")
    _multiline(w, 0, "Labels", _labels(meta.get("labels")))
    _multiline(w, 0, "Annotations", _annotations(meta.get("annotations")))
    w.write(0, f"API Version:\t{obj.get('apiVersion', '')}")
    w.write(0, f"Kind:\t{obj.get('kind', '')}")
    rest_meta = {k: v for k, v in meta.items() if k not in ("name", "namespace", "labels", "annotations")}
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
    _tree(w, 0, {"metadata": rest_meta, **body})
    _events(w, related.events, now)


Describer = Callable[[_Writer, Obj, Related, datetime], None]
_DESCRIBERS: dict[str, Describer] = {
    "Deployment": _describe_deployment,
    "ReplicaSet": _describe_replicaset,
    "Pod": _describe_pod,
    "Service": _describe_service,
    "Namespace": _describe_namespace,
    "Node": _describe_node,
    "ConfigMap": _describe_configmap,
    "Secret": _describe_secret,
    "ResourceQuota": lambda w, obj, related, now: describe_resource_quota(w.write, obj),
    "LimitRange": lambda w, obj, related, now: describe_limit_range(w.write, obj),
}


def describe(obj: Obj, related: Related, *, now: datetime, namespaced: bool = True) -> str:
    """The whole ``kubectl describe`` text of one object."""
    w = _Writer()
    describer = _DESCRIBERS.get(str(obj.get("kind") or ""))
    if describer is None:
        _describe_generic(w, obj, related, now, namespaced=namespaced)
    else:
        describer(w, obj, related, now)
    return w.text()


__all__ = ["Related", "describe", "rfc1123"]
