"""networking.k8s.io/v1 Ingress and coordination.k8s.io/v1 Lease."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from .base import K8sModel, TypeFacts
from .meta import ObjectMeta


class ServiceBackendPort(K8sModel):
    number: int | None = None
    name: str | None = None


class IngressServiceBackend(K8sModel):
    name: str
    port: ServiceBackendPort | None = None


class IngressBackend(K8sModel):
    service: IngressServiceBackend | None = None
    resource: dict[str, Any] | None = None


class HTTPIngressPath(K8sModel):
    path: str | None = None
    path_type: str | None = None
    backend: IngressBackend


class HTTPIngressRuleValue(K8sModel):
    paths: list[HTTPIngressPath]


class IngressRule(K8sModel):
    host: str | None = None
    http: HTTPIngressRuleValue | None = None


class IngressSpec(K8sModel):
    ingress_class_name: str | None = None
    default_backend: IngressBackend | None = None
    rules: list[IngressRule] | None = None
    tls: list[dict[str, Any]] | None = None


class Ingress(K8sModel, TypeFacts):
    group: ClassVar[str] = "networking.k8s.io"
    kind: ClassVar[str] = "Ingress"
    plural: ClassVar[str] = "ingresses"
    singular: ClassVar[str] = "ingress"
    short_names: ClassVar[tuple[str, ...]] = ("ing",)
    subresources: ClassVar[tuple[str, ...]] = ("status",)

    api_version_: str = Field(default="networking.k8s.io/v1", alias="apiVersion")
    kind_: str = Field(default="Ingress", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: IngressSpec | None = None
    status: dict[str, Any] | None = None


class LeaseSpec(K8sModel):
    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: int | None = None


class Lease(K8sModel, TypeFacts):
    group: ClassVar[str] = "coordination.k8s.io"
    kind: ClassVar[str] = "Lease"
    plural: ClassVar[str] = "leases"
    singular: ClassVar[str] = "lease"

    api_version_: str = Field(default="coordination.k8s.io/v1", alias="apiVersion")
    kind_: str = Field(default="Lease", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LeaseSpec | None = None
