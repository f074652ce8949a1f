"""Defaulting of API objects, the values Kubernetes v1 fills in for fields a client left unset.

Role: mirror ``pkg/apis/core/v1/defaults.go``, ``pkg/apis/apps/v1/defaults.go`` and the
declarative ``+default`` markers of the v1 types for the kinds minik8s serves.
Data flow: the apiserver decodes a request body into a private dict -> ``apply_defaults(kind, obj)``
fills the unset fields in place -> ``apiserver.validation.validate_object`` checks the result ->
storage. Defaulting runs on create and on update, exactly as Kubernetes defaults every decoded body.

Defaulting never raises and never "repairs" a value of the wrong JSON type: it only fills fields
that are absent (or empty where Kubernetes treats empty as unset) inside containers of the right
type, and leaves everything else for validation to report.

Not defaults, so not here: ``status.phase: Pending`` and ``qosClass`` of pods (the pod registry sets
them), clusterIP/nodePort allocation (service registry), the DefaultTolerationSeconds and
ServiceAccount admission plugins, and the rounding of resource quantities to milli precision.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_CLIENT_IP_AFFINITY_SECONDS = 10800  # 3 hours, v1.DefaultClientIPServiceAffinitySeconds
DEFAULT_FILE_MODE = 0o644  # 420: the mode of secret/configMap/downwardAPI/projected volume files
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
NAMESPACE_FINALIZER = "kubernetes"

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
# Every volume source a Volume may name (exactly one per volume); validation checks the same list.
VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs",
    "iscsi", "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker",
    "downwardAPI", "fc", "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
    "image",
)

# A docker image reference: [domain[:port]/]path[:tag][@digest], as distribution/reference parses it.
_REF_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REF_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_IMAGE_REF_RE = re.compile(
    rf"^(?:{_REF_DOMAIN}/)?{_REF_COMPONENT}(?:/{_REF_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


def _map(parent: Obj, key: str, *, create: bool = False) -> Obj | None:
    """``parent[key]`` if it is a map; an empty map is created only when the key is absent."""
    value = parent.get(key)
    if value is None and create:
        value = parent[key] = {}
    return value if isinstance(value, dict) else None


def _maps(parent: Obj, key: str) -> list[Obj]:
    """The map items of ``parent[key]`` when it is a list (other items are validation's business)."""
    value = parent.get(key)
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _set_if_unset(obj: Obj, key: str, value: Any) -> None:
    """Go's ``if x == "" / nil``: absent, null and the empty string all count as unset."""
    if obj.get(key) in (None, ""):
        obj[key] = value


def image_tag(image: str) -> str:
    """The tag Kubernetes' parsers.ParseImageName sees: "latest" when there is neither tag nor digest,
    "" for a digest-only or unparsable reference."""
    match = _IMAGE_REF_RE.match(image)
    if match is None:
        return ""
    if match.group("tag"):
        return match.group("tag")
    return "" if match.group("digest") else "latest"


def default_pull_policy(image: Any) -> str:
    """Always for ``:latest`` (explicit or implied), IfNotPresent otherwise."""
    tag = image_tag(image) if isinstance(image, str) else ""
    return "Always" if tag == "latest" else "IfNotPresent"


def _default_http_get(handler: Obj) -> None:
    http_get = _map(handler, "httpGet")
    if http_get is not None:
        _set_if_unset(http_get, "path", "/")
        _set_if_unset(http_get, "scheme", "HTTP")


def _default_probe(probe: Obj) -> None:
    # Zero counts as unset for these int32 fields (the Go defaulter checks == 0).
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if probe.get(key) in (None, 0):
            probe[key] = value
    _default_http_get(probe)


def _default_container(container: Obj) -> None:
    _set_if_unset(container, "imagePullPolicy", default_pull_policy(container.get("image")))
    _set_if_unset(container, "terminationMessagePath", "/dev/termination-log")
    _set_if_unset(container, "terminationMessagePolicy", "File")
    for port in _maps(container, "ports"):
        _set_if_unset(port, "protocol", "TCP")
    for key in PROBES:
        probe = _map(container, key)
        if probe is not None:
            _default_probe(probe)
    lifecycle = _map(container, "lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            handler = _map(lifecycle, hook)
            if handler is not None:
                _default_http_get(handler)
    for env in _maps(container, "env"):
        value_from = _map(env, "valueFrom")
        field_ref = _map(value_from, "fieldRef") if value_from is not None else None
        if field_ref is not None:
            _set_if_unset(field_ref, "apiVersion", "v1")


def _default_volume(volume: Obj) -> None:
    if not any(volume.get(source) is not None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        body = _map(volume, source)
        if body is not None and body.get("defaultMode") is None:
            body["defaultMode"] = DEFAULT_FILE_MODE
    host_path = _map(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec plus the nested container/probe/volume defaults (templates get these too)."""
    _set_if_unset(spec, "dnsPolicy", "ClusterFirst")
    _set_if_unset(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    _set_if_unset(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for key in _CONTAINER_LISTS:
        for container in _maps(spec, key):
            _default_container(container)
    for volume in _maps(spec, "volumes"):
        _default_volume(volume)


def _requests_from_limits(container: Obj) -> None:
    """A Pod's container that sets limits but not requests requests what it limits."""
    resources = _map(container, "resources")
    limits = _map(resources, "limits") if resources is not None else None
    if resources is None or not limits:
        return
    requests = _map(resources, "requests", create=True)
    if requests is None:
        return
    for name, value in limits.items():
        requests.setdefault(name, value)


def _default_pod(obj: Obj) -> None:
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    default_pod_spec(spec)
    # SetDefaults_Pod: only real pods, never templates (so Deployments do not change on upgrade).
    for key in ("containers", "initContainers"):
        for container in _maps(spec, key):
            _requests_from_limits(container)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for container in _maps(spec, key):
                for port in _maps(container, "ports"):
                    if port.get("hostPort") in (None, 0):
                        port["hostPort"] = port.get("containerPort")


def _default_template(spec: Obj) -> None:
    template = _map(spec, "template")
    if template is None:
        return
    pod_spec = _map(template, "spec", create=True)
    if pod_spec is not None:
        default_pod_spec(pod_spec)


def _replicated_spec(obj: Obj) -> Obj | None:
    """The spec of a Deployment or ReplicaSet, with ``replicas`` defaulted to 1."""
    spec = _map(obj, "spec", create=True)
    if spec is not None and spec.get("replicas") is None:
        spec["replicas"] = 1
    return spec


def _default_deployment(obj: Obj) -> None:
    spec = _replicated_spec(obj)
    if spec is None:
        return
    strategy = _map(spec, "strategy", create=True)
    if strategy is not None:
        _set_if_unset(strategy, "type", "RollingUpdate")
        if strategy.get("type") == "RollingUpdate":
            rolling = _map(strategy, "rollingUpdate", create=True)
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = "25%"
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def _default_replica_set(obj: Obj) -> None:
    spec = _replicated_spec(obj)
    if spec is not None:
        _default_template(spec)


def _externally_accessible(spec: Obj) -> bool:
    """service.ExternallyAccessible: LoadBalancer, NodePort, or ClusterIP with external IPs."""
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def _default_service(obj: Obj) -> None:
    spec = _map(obj, "spec", create=True)
    if spec is None:
        return
    _set_if_unset(spec, "sessionAffinity", "None")
    if spec.get("sessionAffinity") == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec.get("sessionAffinity") == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}
    _set_if_unset(spec, "type", "ClusterIP")
    for port in _maps(spec, "ports"):
        _set_if_unset(port, "protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and isinstance(port.get("port"), int):
            port["targetPort"] = port["port"]
    if _externally_accessible(spec):
        _set_if_unset(spec, "externalTrafficPolicy", "Cluster")
    service_type = spec.get("type")
    if spec.get("internalTrafficPolicy") is None and service_type in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec["internalTrafficPolicy"] = "Cluster"
    if service_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    # The service registry picks IP families when it allocates; minik8s is a single-stack IPv4
    # cluster, so every non-ExternalName service gets exactly what Kubernetes would give it there.
    if service_type != "ExternalName":
        if spec.get("ipFamilyPolicy") is None:
            spec["ipFamilyPolicy"] = "SingleStack"
        if spec.get("ipFamilies") is None:
            spec["ipFamilies"] = ["IPv4"]


def _default_namespace(obj: Obj) -> None:
    metadata = _map(obj, "metadata")
    name = metadata.get("name") if metadata is not None else None
    if isinstance(name, str) and name:
        labels = _map(metadata, "labels", create=True)  # type: ignore[arg-type]
        if labels is not None:
            labels[NAMESPACE_NAME_LABEL] = name
    deleting = metadata is not None and metadata.get("deletionTimestamp") is not None
    spec = _map(obj, "spec", create=True)
    # The namespace registry guarantees the "kubernetes" finalizer; once deletion has started the
    # namespace controller removes it through /finalize, so it must not come back then.
    if spec is not None and not deleting:
        finalizers = spec.get("finalizers")
        if finalizers is None:
            spec["finalizers"] = [NAMESPACE_FINALIZER]
        elif isinstance(finalizers, list) and NAMESPACE_FINALIZER not in finalizers:
            finalizers.append(NAMESPACE_FINALIZER)
    status = _map(obj, "status", create=True)
    if status is not None:
        _set_if_unset(status, "phase", "Active")


def _default_node(obj: Obj) -> None:
    status = _map(obj, "status")
    if status is None:
        return
    capacity = _map(status, "capacity")
    if status.get("allocatable") is None and capacity is not None:
        status["allocatable"] = dict(capacity)


def _default_endpoints(obj: Obj) -> None:
    for subset in _maps(obj, "subsets"):
        for port in _maps(subset, "ports"):
            _set_if_unset(port, "protocol", "TCP")


_DEFAULTERS: dict[str, Callable[[Obj], None]] = {
    "Pod": _default_pod,
    "Deployment": _default_deployment,
    "ReplicaSet": _default_replica_set,
    "Service": _default_service,
    "Namespace": _default_namespace,
    "Node": _default_node,
    "Endpoints": _default_endpoints,
}


def apply_defaults(kind: str, obj: dict) -> None:
    """Fill Kubernetes' v1 defaults into ``obj`` in place. Kinds without defaults (ConfigMap, Event,
    Ingress, Lease) and unknown kinds are left untouched."""
    defaulter = _DEFAULTERS.get(kind)
    if defaulter is not None and isinstance(obj, dict):
        defaulter(obj)
