"""The pod template every workload kind embeds: defaults, merge facts, printer cells.

Role: what Pod, Deployment, ReplicaSet, ReplicationController (and the workload kinds to come)
share about ``PodSpec``/``PodTemplateSpec``: ``SetDefaults_PodSpec`` and the container, probe and
volume defaults (``pkg/apis/core/v1/defaults.go``), the ``patchStrategy``/``+listType`` facts of
PodSpec, Container and friends (transcribed from k8s.io/api core/v1 types.go), and the
"Containers"/"Images" cells of the workload tables. Their protobuf tables are in
``podspec_messages.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ...openapi.facts import ATOMIC, Facts, keyed
from ...validation.containers import PROBES
from ...validation.podspec import VOLUME_SOURCES
from ..base import Column, spec
from .defaulting import map_at, maps_at, set_if_unset

Obj = dict[str, Any]

DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS = 30
DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_FILE_MODE = 0o644  # 420: the mode of secret/configMap/downwardAPI/projected volume files
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")

CONTAINERS_COLUMN = Column("Containers", priority=1, description="Names of each container in the template.")
IMAGES_COLUMN = Column("Images", priority=1, description="Images referenced by each container in the template.")

_ATOMIC_LIST = Facts(list_type="atomic")
_CONTAINER_FACTS: dict[str, Facts] = {
    "command": _ATOMIC_LIST, "args": _ATOMIC_LIST,
    "ports": keyed("containerPort", "protocol"),
    "envFrom": _ATOMIC_LIST,
    "env": keyed("name"),
    "resizePolicy": _ATOMIC_LIST,
    "volumeMounts": keyed("mountPath"),
    "volumeDevices": keyed("devicePath"),
}
TYPE_FACTS: dict[str, dict[str, Facts]] = {
    "V1PodSpec": {
        "volumes": keyed("name", retain_keys=True),
        "initContainers": keyed("name"),
        "containers": keyed("name"),
        "ephemeralContainers": keyed("name"),
        "nodeSelector": Facts(map_type="atomic"),
        "imagePullSecrets": keyed("name"),
        "tolerations": _ATOMIC_LIST,
        "hostAliases": keyed("ip"),
        "readinessGates": _ATOMIC_LIST,
        "topologySpreadConstraints": keyed("topologyKey", "whenUnsatisfiable"),
        "schedulingGates": keyed("name"),
        "resourceClaims": keyed("name", retain_keys=True),
    },
    "V1Container": _CONTAINER_FACTS,
    "V1EphemeralContainer": _CONTAINER_FACTS,
    "V1ContainerPort": {"protocol": Facts(default="TCP")},
    "V1VolumeMount": {"bindMountOptions": Facts(list_type="set")},
    "V1ResourceRequirements": {"claims": Facts(list_type="map", map_keys=("name",))},
    "V1ExecAction": {"command": _ATOMIC_LIST},
    "V1HTTPGetAction": {"httpHeaders": _ATOMIC_LIST},
    "V1Capabilities": {"add": _ATOMIC_LIST, "drop": _ATOMIC_LIST},
    "V1PodSecurityContext": {"supplementalGroups": _ATOMIC_LIST, "sysctls": _ATOMIC_LIST},
    "V1PodDNSConfig": {"nameservers": _ATOMIC_LIST, "searches": _ATOMIC_LIST, "options": _ATOMIC_LIST},
    "V1HostAlias": {"hostnames": _ATOMIC_LIST},
    "V1TopologySpreadConstraint": {"matchLabelKeys": _ATOMIC_LIST},
    "V1NodeSelector": {"": ATOMIC, "nodeSelectorTerms": _ATOMIC_LIST},
    "V1NodeSelectorTerm": {"": ATOMIC, "matchExpressions": _ATOMIC_LIST, "matchFields": _ATOMIC_LIST},
    "V1NodeSelectorRequirement": {"values": _ATOMIC_LIST},
    "V1NodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": _ATOMIC_LIST},
    "V1PodAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": _ATOMIC_LIST,
                      "preferredDuringSchedulingIgnoredDuringExecution": _ATOMIC_LIST},
    "V1PodAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": _ATOMIC_LIST,
                          "preferredDuringSchedulingIgnoredDuringExecution": _ATOMIC_LIST},
    "V1PodAffinityTerm": {"namespaces": _ATOMIC_LIST, "matchLabelKeys": _ATOMIC_LIST,
                          "mismatchLabelKeys": _ATOMIC_LIST},
    "V1SecretVolumeSource": {"items": _ATOMIC_LIST},
    "V1ConfigMapVolumeSource": {"items": _ATOMIC_LIST},
    "V1DownwardAPIVolumeSource": {"items": _ATOMIC_LIST},
    "V1ProjectedVolumeSource": {"sources": _ATOMIC_LIST},
    "V1SecretProjection": {"items": _ATOMIC_LIST},
    "V1ConfigMapProjection": {"items": _ATOMIC_LIST},
    "V1DownwardAPIProjection": {"items": _ATOMIC_LIST},
    "V1ObjectFieldSelector": {"": ATOMIC},
    "V1ResourceFieldSelector": {"": ATOMIC},
    "V1ConfigMapKeySelector": {"": ATOMIC},
    "V1SecretKeySelector": {"": ATOMIC},
    "V1PersistentVolumeClaimSpec": {"accessModes": _ATOMIC_LIST},
}

# A docker image reference: [domain[:port]/]path[:tag][@digest], as distribution/reference parses it.
_REF_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_REF_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_IMAGE_REF_RE = re.compile(
    rf"^(?:{_REF_DOMAIN}/)?{_REF_COMPONENT}(?:/{_REF_COMPONENT})*"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?$"
)


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
    http_get = map_at(handler, "httpGet")
    if http_get is not None:
        set_if_unset(http_get, "path", "/")
        set_if_unset(http_get, "scheme", "HTTP")


def _default_probe(probe: Obj) -> None:
    # Zero counts as unset for these int32 fields (the Go defaulter checks == 0).
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)):
        if probe.get(key) in (None, 0):
            probe[key] = value
    _default_http_get(probe)


def _default_container(container: Obj) -> None:
    set_if_unset(container, "imagePullPolicy", default_pull_policy(container.get("image")))
    set_if_unset(container, "terminationMessagePath", "/dev/termination-log")
    set_if_unset(container, "terminationMessagePolicy", "File")
    for port in maps_at(container, "ports"):
        set_if_unset(port, "protocol", "TCP")
    for key in PROBES:
        probe = map_at(container, key)
        if probe is not None:
            _default_probe(probe)
    lifecycle = map_at(container, "lifecycle")
    if lifecycle is not None:
        for hook in ("postStart", "preStop"):
            handler = map_at(lifecycle, hook)
            if handler is not None:
                _default_http_get(handler)
    for env in maps_at(container, "env"):
        value_from = map_at(env, "valueFrom")
        field_ref = map_at(value_from, "fieldRef") if value_from is not None else None
        if field_ref is not None:
            set_if_unset(field_ref, "apiVersion", "v1")


def _default_volume(volume: Obj) -> None:
    if not any(volume.get(source) is not None for source in VOLUME_SOURCES):
        volume["emptyDir"] = {}
    for source in ("secret", "configMap", "downwardAPI", "projected"):
        body = map_at(volume, source)
        if body is not None and body.get("defaultMode") is None:
            body["defaultMode"] = DEFAULT_FILE_MODE
    host_path = map_at(volume, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""


def default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec plus the nested container/probe/volume defaults (templates get these too)."""
    set_if_unset(spec, "dnsPolicy", "ClusterFirst")
    set_if_unset(spec, "restartPolicy", "Always")
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS
    set_if_unset(spec, "schedulerName", DEFAULT_SCHEDULER_NAME)
    for key in _CONTAINER_LISTS:
        for container in maps_at(spec, key):
            _default_container(container)
    for volume in maps_at(spec, "volumes"):
        _default_volume(volume)


def requests_from_limits(container: Obj) -> None:
    """A Pod's container that sets limits but not requests requests what it limits."""
    resources = map_at(container, "resources")
    limits = map_at(resources, "limits") if resources is not None else None
    if resources is None or not limits:
        return
    requests = map_at(resources, "requests", create=True)
    if requests is None:
        return
    for name, value in limits.items():
        requests.setdefault(name, value)




def default_template(owner_spec: Obj) -> None:
    """A workload's ``spec.template.spec`` gets the pod spec defaults (never the Pod-only ones)."""
    template = map_at(owner_spec, "template")
    if template is None:
        return
    pod_spec = map_at(template, "spec", create=True)
    if pod_spec is not None:
        default_pod_spec(pod_spec)


def template_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    template = spec(obj).get("template")
    inner = template.get("spec") if isinstance(template, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def container_cells(pod_spec: Mapping[str, Any]) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, each comma-joined."""
    containers = [c for c in pod_spec.get("containers") or [] if isinstance(c, Mapping)]
    names = ",".join(str(c.get("name", "")) for c in containers)
    images = ",".join(str(c.get("image", "")) for c in containers)
    return names, images
