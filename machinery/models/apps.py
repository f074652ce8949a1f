"""apps/v1 kinds: Deployment, ReplicaSet, and autoscaling/v1 Scale (their ``scale`` subresource)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from .base import K8sModel, TypeFacts
from .core import IntOrString, PodTemplateSpec
from .meta import Condition, LabelSelector, ObjectMeta


class RollingUpdateDeployment(K8sModel):
    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DeploymentStrategy(K8sModel):
    type: str | None = None
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentSpec(K8sModel):
    selector: LabelSelector
    template: PodTemplateSpec
    replicas: int | None = None
    strategy: DeploymentStrategy | None = None
    min_ready_seconds: int | None = None
    revision_history_limit: int | None = None
    paused: bool | None = None
    progress_deadline_seconds: int | None = None


class DeploymentStatus(K8sModel):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    conditions: list[Condition] | None = None
    collision_count: int | None = None


class Deployment(K8sModel, TypeFacts):
    group: ClassVar[str] = "apps"
    kind: ClassVar[str] = "Deployment"
    plural: ClassVar[str] = "deployments"
    singular: ClassVar[str] = "deployment"
    short_names: ClassVar[tuple[str, ...]] = ("deploy",)
    subresources: ClassVar[tuple[str, ...]] = ("status", "scale")
    categories: ClassVar[tuple[str, ...]] = ("all",)

    api_version_: str = Field(default="apps/v1", alias="apiVersion")
    kind_: str = Field(default="Deployment", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec | None = None
    status: DeploymentStatus | None = None


class ReplicaSetSpec(K8sModel):
    selector: LabelSelector
    template: PodTemplateSpec | None = None
    replicas: int | None = None
    min_ready_seconds: int | None = None


class ReplicaSetStatus(K8sModel):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    conditions: list[Condition] | None = None


class ReplicaSet(K8sModel, TypeFacts):
    group: ClassVar[str] = "apps"
    kind: ClassVar[str] = "ReplicaSet"
    plural: ClassVar[str] = "replicasets"
    singular: ClassVar[str] = "replicaset"
    short_names: ClassVar[tuple[str, ...]] = ("rs",)
    subresources: ClassVar[tuple[str, ...]] = ("status", "scale")
    categories: ClassVar[tuple[str, ...]] = ("all",)

    api_version_: str = Field(default="apps/v1", alias="apiVersion")
    kind_: str = Field(default="ReplicaSet", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ReplicaSetSpec | None = None
    status: ReplicaSetStatus | None = None


class ScaleSpec(K8sModel):
    replicas: int | None = None


class ScaleStatus(K8sModel):
    replicas: int = 0
    selector: str | None = None


class Scale(K8sModel, TypeFacts):
    group: ClassVar[str] = "autoscaling"
    kind: ClassVar[str] = "Scale"
    plural: ClassVar[str] = "scale"

    api_version_: str = Field(default="autoscaling/v1", alias="apiVersion")
    kind_: str = Field(default="Scale", alias="kind")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    status: ScaleStatus | dict[str, Any] | None = None
