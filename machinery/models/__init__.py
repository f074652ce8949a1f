"""Pydantic models shaped exactly like Kubernetes objects (camelCase on the wire), data only.

Type facts (group, version, kind, plural, namespaced, short names, subresources) sit on each
top-level class; ``KINDS`` lists the kinds ``machinery.client`` can name without discovery
(``Pod``, ``"pods"``, ``"deploy"``, ...). The API server serves more kinds than these, each from
its own strategy module (``apiserver/kinds``); this package imports nothing else of the project.
"""

from .apps import Deployment, ReplicaSet, Scale
from .base import K8sModel, TypeFacts
from .core import Binding, ConfigMap, Endpoints, Event, Namespace, Node, Pod, PodSpec, Service
from .meta import LabelSelector, ObjectMeta, OwnerReference
from .networking import Ingress, Lease

KINDS: tuple[type[TypeFacts], ...] = (
    Namespace, Node, Pod, Service, Endpoints, Event, ConfigMap,
    Deployment, ReplicaSet, Ingress, Lease,
)

__all__ = [
    "KINDS", "Binding", "ConfigMap", "Deployment", "Endpoints", "Event", "Ingress", "K8sModel",
    "LabelSelector", "Lease", "Namespace", "Node", "ObjectMeta", "OwnerReference", "Pod",
    "PodSpec", "ReplicaSet", "Scale", "Service", "TypeFacts",
]
