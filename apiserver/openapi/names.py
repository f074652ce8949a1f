"""Names: the kind descriptor the builder reads, and Kubernetes' names for schemas and operations.

Role: everything the OpenAPI builder needs to call things what Kubernetes calls them.

- ``KindLike``: the duck type of a served kind (the apiserver's ``Strategy`` objects fit it).
- Schema names: a generated model of the official client (``V1PodSpec``) becomes the
  definition name Kubernetes publishes (``io.k8s.api.core.v1.PodSpec``). The client's class
  names drop the Go package, so it is recovered: meta/v1 types by name, a group prefix when the
  client kept one (``CoreV1Event``, ``EventsV1Event``), everything reachable from the core/v1
  kinds is core, and any other type belongs to the package of the kind that embeds it (API
  groups only embed core and meta types, plus the autoscaling ``Scale`` and policy ``Eviction``
  subresource bodies, pinned here).
- Custom resources: ``com.example.stable.v1.CronTab`` (the group reversed), as the CRD
  OpenAPI builder names them.
- Operation ids and tags: ``listAppsV1NamespacedDeployment``, ``apps_v1``.

Pure; reads the generated model classes (``kubernetes.client.models``) and nothing else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
TIME = f"{META}.Time"
MICRO_TIME = f"{META}.MicroTime"
FIELDS_V1 = f"{META}.FieldsV1"
PATCH = f"{META}.Patch"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
WATCH_EVENT = f"{META}.WatchEvent"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
API_RESOURCE_LIST = f"{META}.APIResourceList"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"
VERSION_INFO = "io.k8s.apimachinery.pkg.version.Info"


class KindLike(Protocol):
    """What the builder reads of a served kind (``apiserver.kinds.base.Strategy`` has it all).

    ``model`` names the generated client model (``V1Deployment``); a custom resource has none and
    gives its version's ``openAPIV3Schema`` as ``crd_schema`` instead. ``strategic_merge`` says
    whether PATCH takes application/strategic-merge-patch+json (not for custom resources).
    """

    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def plural(self) -> str: ...
    @property
    def namespaced(self) -> bool: ...
    @property
    def subresources(self) -> tuple[str, ...]: ...
    @property
    def verbs(self) -> tuple[str, ...]: ...
    @property
    def model(self) -> str | None: ...
    @property
    def crd_schema(self) -> Mapping[str, Any] | None: ...
    @property
    def strategic_merge(self) -> bool: ...
    @property
    def api_version(self) -> str: ...


# ------------------------------------------------------------------------------ packages
# meta/v1 Go types; the client names them V1<Type> like any other v1 type.
_META_TYPES = frozenset({
    "APIGroup", "APIGroupList", "APIResource", "APIResourceList", "APIVersions", "Condition",
    "DeleteOptions", "FieldSelectorRequirement", "GroupVersionForDiscovery", "LabelSelector",
    "LabelSelectorRequirement", "ListMeta", "ManagedFieldsEntry", "ObjectMeta", "OwnerReference",
    "Preconditions", "ServerAddressByClientCIDR", "ShardInfo", "Status", "StatusCause",
    "StatusDetails", "WatchEvent",
})
# Models that sit in another group's package than the kinds embedding them.
_PINNED = {"V1Scale": "autoscaling", "V1ScaleSpec": "autoscaling", "V1ScaleStatus": "autoscaling",
           "V1Eviction": "policy"}
# The core/v1 kinds: every type they reach (meta aside) is in package core.
_CORE_ROOTS = (
    "V1Pod", "V1PodList", "V1PodTemplate", "V1PodTemplateList", "V1ReplicationController",
    "V1ReplicationControllerList", "V1Service", "V1ServiceList", "V1Endpoints", "V1EndpointsList",
    "V1Node", "V1NodeList", "V1Namespace", "V1NamespaceList", "V1ConfigMap", "V1ConfigMapList",
    "V1Secret", "V1SecretList", "V1ServiceAccount", "V1ServiceAccountList", "V1PersistentVolume",
    "V1PersistentVolumeList", "V1PersistentVolumeClaim", "V1PersistentVolumeClaimList",
    "V1LimitRange", "V1LimitRangeList", "V1ResourceQuota", "V1ResourceQuotaList", "CoreV1Event",
    "CoreV1EventList", "V1Binding", "V1ComponentStatus", "V1ComponentStatusList",
    "V1ObjectReference", "V1EphemeralContainer",
)
# Go package of an API group ("" is core); the inverse gives a type's group for its GVK.
_GROUP_PACKAGES = {
    "": "core", "rbac.authorization.k8s.io": "rbac", "flowcontrol.apiserver.k8s.io": "flowcontrol",
    "internal.apiserver.k8s.io": "apiserverinternal", "admissionregistration.k8s.io": "admissionregistration",
}
_PACKAGE_GROUPS = {
    "core": "", "apps": "apps", "batch": "batch", "autoscaling": "autoscaling", "policy": "policy",
    "rbac": "rbac.authorization.k8s.io", "flowcontrol": "flowcontrol.apiserver.k8s.io",
    "apiserverinternal": "internal.apiserver.k8s.io",
}
_PACKAGE_ROOTS = {
    "meta": "io.k8s.apimachinery.pkg.apis.meta",
    "apiextensions": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "apiregistration": "io.k8s.kube-aggregator.pkg.apis.apiregistration",
}
_MODEL_NAME = re.compile(r"^([A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$")


@functools.cache
def model_class(model: str) -> Any:
    """The generated class named ``model``, or None (the client is imported on first use: it is slow)."""
    import kubernetes.client.models as client_models

    cls = getattr(client_models, model, None)
    return cls if isinstance(cls, type) and hasattr(cls, "openapi_types") else None


def group_package(group: str) -> str:
    """``apps`` -> ``apps``, ``networking.k8s.io`` -> ``networking``, ``""`` -> ``core``."""
    return _GROUP_PACKAGES.get(group) or group.split(".", 1)[0]


def package_group(package: str) -> str:
    return _PACKAGE_GROUPS.get(package, f"{package}.k8s.io")


def split_model(model: str) -> tuple[str | None, str, str] | None:
    """``CoreV1Event`` -> ("core", "v1", "Event"); ``V1PodSpec`` -> (None, "v1", "PodSpec")."""
    m = _MODEL_NAME.match(model)
    if m is None:
        return None
    prefix, version, type_name = m.groups()
    return (prefix.lower() if prefix else None), version.lower(), type_name


def _referenced_models(type_string: str) -> list[str]:
    return [t for t in re.findall(r"[A-Za-z_]\w*", type_string) if model_class(t) is not None]


@functools.cache
def core_models() -> frozenset[str]:
    """Every generated model reachable from the core/v1 kinds (meta types included)."""
    seen: set[str] = set()
    todo = [m for m in _CORE_ROOTS if model_class(m) is not None]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for type_string in model_class(model).openapi_types.values():
            todo.extend(r for r in _referenced_models(type_string) if r not in seen)
    return frozenset(seen)


def model_package(model: str, context: str) -> tuple[str, str, str] | None:
    """(Go package, version, type name) of a generated model, ``context`` the embedding kind's."""
    parts = split_model(model)
    if parts is None:
        return None
    prefix, version, type_name = parts
    if prefix is not None:
        return prefix, version, type_name
    if version == "v1" and type_name in _META_TYPES:
        return "meta", version, type_name
    if model in _PINNED:
        return _PINNED[model], version, type_name
    if model in core_models():
        return "core", version, type_name
    return context, version, type_name


def package_prefix(package: str) -> str:
    return _PACKAGE_ROOTS.get(package, f"io.k8s.api.{package}")


def model_schema_name(model: str, context: str) -> str:
    """``V1PodSpec`` -> ``io.k8s.api.core.v1.PodSpec`` (``context``: the embedding kind's package)."""
    if model == "VersionInfo":
        return VERSION_INFO
    found = model_package(model, context)
    if found is None:
        return f"io.k8s.api.{context}.{model}"
    package, version, type_name = found
    return f"{package_prefix(package)}.{version}.{type_name}"


def crd_schema_name(group: str, version: str, kind: str) -> str:
    """``stable.example.com``/v1 CronTab -> ``com.example.stable.v1.CronTab``."""
    return ".".join([*reversed(group.split(".")), version, kind])


def kind_schema_name(kind: KindLike) -> str:
    """The component schema name of a served kind."""
    if kind.model is None:
        return crd_schema_name(kind.group, kind.version, kind.kind)
    return model_schema_name(kind.model, group_package(kind.group))


def list_schema_name(kind: KindLike) -> str:
    return kind_schema_name(kind) + "List"


def gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def gv_path(group: str, version: str) -> str:
    """``api/v1`` or ``apis/apps/v1``: the key of the ``/openapi/v3`` index."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


# ------------------------------------------------------------------------------ operations
def group_ident(group: str) -> str:
    """``apps`` -> ``Apps``, ``rbac.authorization.k8s.io`` -> ``RbacAuthorization``, ``""`` -> ``Core``."""
    if not group:
        return "Core"
    if group.endswith(".k8s.io"):
        group = group[: -len(".k8s.io")]
    return "".join(_capitalize(p) for p in re.split(r"[.\-]", group) if p)


def _capitalize(word: str) -> str:
    return word[:1].upper() + word[1:]


def op_prefix(group: str, version: str) -> str:
    """``AppsV1``: the part of every operationId after the verb."""
    return group_ident(group) + _capitalize(version)


def tag(group: str, version: str) -> str:
    """``apps_v1``, ``core_v1``, ``rbacAuthorization_v1``."""
    ident = group_ident(group)
    return f"{ident[:1].lower()}{ident[1:]}_{version}"


def served_group_versions(kinds: Sequence[KindLike]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k in kinds:
        if (k.group, k.version) not in out:
            out.append((k.group, k.version))
    return out
