"""core/v1 kinds: Namespace, Node, Pod, Service, Endpoints, Event, ConfigMap (the fields minik8s uses).

Fields that are not declared here still round-trip (see ``K8sModel``); declare a field when a
component starts reading it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from .base import K8sModel, TypeFacts
from .meta import Condition, LabelSelector, ListMeta, ObjectMeta

IntOrString = int | str


# --- shared pieces ---------------------------------------------------------------------------
class ObjectReference(K8sModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class KeyToPath(K8sModel):
    key: str
    path: str
    mode: int | None = None


# --- Pod -------------------------------------------------------------------------------------
class ContainerPort(K8sModel):
    container_port: int
    name: str | None = None
    protocol: str | None = None
    host_port: int | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")


class ObjectFieldSelector(K8sModel):
    field_path: str
    api_version: str | None = None


class KeySelector(K8sModel):
    key: str
    name: str | None = None
    optional: bool | None = None


class EnvVarSource(K8sModel):
    field_ref: ObjectFieldSelector | None = None
    config_map_key_ref: KeySelector | None = None
    secret_key_ref: KeySelector | None = None


class EnvVar(K8sModel):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ResourceRequirements(K8sModel):
    limits: dict[str, IntOrString] | None = None
    requests: dict[str, IntOrString] | None = None


class VolumeMount(K8sModel):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None


class ExecAction(K8sModel):
    command: list[str] | None = None


class HTTPHeader(K8sModel):
    name: str
    value: str


class HTTPGetAction(K8sModel):
    port: IntOrString
    path: str | None = None
    host: str | None = None
    scheme: str | None = None
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(K8sModel):
    port: IntOrString
    host: str | None = None


class Probe(K8sModel):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    initial_delay_seconds: int | None = None
    timeout_seconds: int | None = None
    period_seconds: int | None = None
    success_threshold: int | None = None
    failure_threshold: int | None = None
    termination_grace_period_seconds: int | None = None


class Container(K8sModel):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[ContainerPort] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    image_pull_policy: str | None = None
    termination_message_path: str | None = None
    termination_message_policy: str | None = None


class Volume(K8sModel):
    name: str
    empty_dir: dict[str, Any] | None = None
    config_map: dict[str, Any] | None = None
    secret: dict[str, Any] | None = None
    host_path: dict[str, Any] | None = None


class Toleration(K8sModel):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class PodSpec(K8sModel):
    containers: list[Container]
    init_containers: list[Container] | None = None
    volumes: list[Volume] | None = None
    restart_policy: str | None = None
    termination_grace_period_seconds: int | None = None
    active_deadline_seconds: int | None = None
    dns_policy: str | None = None
    node_selector: dict[str, str] | None = None
    service_account_name: str | None = None
    node_name: str | None = None
    host_network: bool | None = None
    scheduler_name: str | None = None
    affinity: dict[str, Any] | None = None
    tolerations: list[Toleration] | None = None
    priority: int | None = None


class ContainerStateWaiting(K8sModel):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(K8sModel):
    started_at: str | None = None


class ContainerStateTerminated(K8sModel):
    exit_code: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(K8sModel):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(K8sModel):
    name: str
    ready: bool = False
    restart_count: int = 0
    image: str | None = None
    image_id: str | None = Field(default=None, alias="imageID")
    container_id: str | None = Field(default=None, alias="containerID")
    state: ContainerState | None = None
    last_state: ContainerState | None = None
    started: bool | None = None


class PodIP(K8sModel):
    ip: str


class PodStatus(K8sModel):
    phase: str | None = None
    conditions: list[Condition] | None = None
    message: str | None = None
    reason: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")
    start_time: str | None = None
    container_statuses: list[ContainerStatus] | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    qos_class: str | None = None


class PodTemplateSpec(K8sModel):
    metadata: ObjectMeta | None = None
    spec: PodSpec


class Pod(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Pod"
    plural: ClassVar[str] = "pods"
    singular: ClassVar[str] = "pod"
    short_names: ClassVar[tuple[str, ...]] = ("po",)
    subresources: ClassVar[tuple[str, ...]] = ("status", "binding", "log")
    categories: ClassVar[tuple[str, ...]] = ("all",)

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Pod", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec | None = None
    status: PodStatus | None = None


class Binding(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Binding"
    plural: ClassVar[str] = "bindings"
    singular: ClassVar[str] = "binding"

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Binding", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    target: ObjectReference


# --- Namespace, Node -----------------------------------------------------------------------------
class NamespaceSpec(K8sModel):
    finalizers: list[str] | None = None


class NamespaceStatus(K8sModel):
    phase: str | None = None
    conditions: list[Condition] | None = None


class Namespace(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Namespace"
    plural: ClassVar[str] = "namespaces"
    singular: ClassVar[str] = "namespace"
    namespaced: ClassVar[bool] = False
    short_names: ClassVar[tuple[str, ...]] = ("ns",)
    subresources: ClassVar[tuple[str, ...]] = ("status", "finalize")

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Namespace", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NamespaceSpec | None = None
    status: NamespaceStatus | None = None


class Taint(K8sModel):
    key: str
    effect: str
    value: str | None = None
    time_added: str | None = None


class NodeSpec(K8sModel):
    unschedulable: bool | None = None
    taints: list[Taint] | None = None
    pod_cidr: str | None = Field(default=None, alias="podCIDR")
    provider_id: str | None = Field(default=None, alias="providerID")


class NodeAddress(K8sModel):
    type: str
    address: str


class NodeSystemInfo(K8sModel):
    machine_id: str | None = Field(default=None, alias="machineID")
    kernel_version: str | None = None
    os_image: str | None = None
    container_runtime_version: str | None = None
    kubelet_version: str | None = None
    operating_system: str | None = None
    architecture: str | None = None


class NodeStatus(K8sModel):
    capacity: dict[str, IntOrString] | None = None
    allocatable: dict[str, IntOrString] | None = None
    conditions: list[Condition] | None = None
    addresses: list[NodeAddress] | None = None
    node_info: NodeSystemInfo | None = None
    daemon_endpoints: dict[str, Any] | None = None


class Node(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Node"
    plural: ClassVar[str] = "nodes"
    singular: ClassVar[str] = "node"
    namespaced: ClassVar[bool] = False
    short_names: ClassVar[tuple[str, ...]] = ("no",)
    subresources: ClassVar[tuple[str, ...]] = ("status",)

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Node", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: NodeSpec | None = None
    status: NodeStatus | None = None


# --- Service, Endpoints --------------------------------------------------------------------------
class ServicePort(K8sModel):
    port: int
    name: str | None = None
    protocol: str | None = None
    target_port: IntOrString | None = None
    node_port: int | None = None


class ServiceSpec(K8sModel):
    ports: list[ServicePort] | None = None
    selector: dict[str, str] | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")
    cluster_ips: list[str] | None = Field(default=None, alias="clusterIPs")
    type: str | None = None
    session_affinity: str | None = None


class Service(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Service"
    plural: ClassVar[str] = "services"
    singular: ClassVar[str] = "service"
    short_names: ClassVar[tuple[str, ...]] = ("svc",)
    subresources: ClassVar[tuple[str, ...]] = ("status",)
    categories: ClassVar[tuple[str, ...]] = ("all",)

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Service", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ServiceSpec | None = None
    status: dict[str, Any] | None = None


class EndpointAddress(K8sModel):
    ip: str
    hostname: str | None = None
    node_name: str | None = None
    target_ref: ObjectReference | None = None


class EndpointPort(K8sModel):
    port: int
    name: str | None = None
    protocol: str | None = None


class EndpointSubset(K8sModel):
    addresses: list[EndpointAddress] | None = None
    not_ready_addresses: list[EndpointAddress] | None = None
    ports: list[EndpointPort] | None = None


class Endpoints(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Endpoints"
    plural: ClassVar[str] = "endpoints"
    singular: ClassVar[str] = "endpoints"
    short_names: ClassVar[tuple[str, ...]] = ("ep",)

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Endpoints", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    subsets: list[EndpointSubset] | None = None


# --- Event, ConfigMap ----------------------------------------------------------------------------
class EventSource(K8sModel):
    component: str | None = None
    host: str | None = None


class Event(K8sModel, TypeFacts):
    kind: ClassVar[str] = "Event"
    plural: ClassVar[str] = "events"
    singular: ClassVar[str] = "event"
    short_names: ClassVar[tuple[str, ...]] = ("ev",)

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="Event", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    involved_object: ObjectReference = Field(default_factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    source: EventSource | None = None
    count: int | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    event_time: str | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None


class ConfigMap(K8sModel, TypeFacts):
    kind: ClassVar[str] = "ConfigMap"
    plural: ClassVar[str] = "configmaps"
    singular: ClassVar[str] = "configmap"
    short_names: ClassVar[tuple[str, ...]] = ("cm",)

    api_version_: str = Field(default="v1", alias="apiVersion")
    kind_: str = Field(default="ConfigMap", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None


class PodList(K8sModel):
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Pod] = Field(default_factory=list)


__all__ = [
    "Binding", "ConfigMap", "Container", "ContainerPort", "ContainerStatus", "Endpoints",
    "EndpointSubset", "EnvVar", "Event", "LabelSelector", "Namespace", "Node", "NodeStatus",
    "ObjectReference", "Pod", "PodList", "PodSpec", "PodStatus", "PodTemplateSpec", "Probe",
    "ResourceRequirements", "Service", "ServicePort", "ServiceSpec", "Taint", "Toleration",
]
