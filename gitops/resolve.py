"""Which resource each built object is, and the body this GitSync applies for it.

Data flow: the objects of a revision (with file and document) and the server's resource types
(``machinery.discovery``, every served version) -> ``resolve_objects`` -> ``Resolved``: the
``Desired`` objects (``plan.prepare``: namespace decided by the type's scope and
``targetNamespace``), their ``ApiResource``, the ones whose type only a CustomResourceDefinition of
the same revision serves (``deferred``: dry-run once that CRD is Established), and a ``Failure``
for each object of a kind nobody serves (kubectl's ``no matches for kind`` text). Pure, so the
reconciler and ``mkctl gitops diff`` resolve alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from machinery.client import ApiResource
from machinery.discovery import ResourceInfo, UnknownResourceType, for_kind

from .plan import Desired, Failure, ObjKey, key_of, manifest_hash, prepare
from .spec import SyncSpec

BuiltObject = tuple[dict[str, Any], str, int]  # (object, file, document)


def crd_resources(objects: Sequence[Mapping[str, Any]]) -> list[ResourceInfo]:
    """The resource types that the CustomResourceDefinitions among ``objects`` will serve."""
    out: list[ResourceInfo] = []
    for obj in objects:
        if obj.get("kind") != "CustomResourceDefinition" or not str(obj.get("apiVersion", "")).startswith(
                "apiextensions.k8s.io/"):
            continue
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        for v in spec.get("versions") or []:
            if not v.get("served", True):
                continue
            out.append(ResourceInfo(plural=str(names.get("plural") or ""), singular=str(names.get("singular") or ""),
                                    kind=str(names.get("kind") or ""), group=str(spec.get("group") or ""),
                                    version=str(v.get("name") or ""), namespaced=spec.get("scope") != "Cluster"))
    return out


@dataclass
class Resolved:
    desired: list[Desired] = field(default_factory=list)
    resources: dict[ObjKey, ApiResource] = field(default_factory=dict)
    deferred: set[ObjKey] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)


def unknown_kinds(infos: Sequence[ResourceInfo], objects: Sequence[BuiltObject]) -> bool:
    """Whether some object's type is not in ``infos`` (then discovery is worth reading again)."""
    for obj, _, _ in objects:
        try:
            for_kind(infos, str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))
        except UnknownResourceType:
            return True
    return False


def resolve_objects(infos: Sequence[ResourceInfo], objects: Sequence[BuiltObject], *, spec: SyncSpec,
                    namespace: str, name: str) -> Resolved:
    from_crds = crd_resources([o for o, _, _ in objects])
    out = Resolved()
    for obj, file, document in objects:
        api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
        info: ResourceInfo | None = None
        deferred = False
        for candidates, is_new in ((infos, False), (from_crds, True)):
            try:
                info, deferred = for_kind(candidates, api_version, kind), is_new
                break
            except UnknownResourceType:
                continue
        if info is None:
            meta: Mapping[str, Any] = obj.get("metadata") or {}
            out.failures.append(Failure(file, document, kind, str(meta.get("name") or ""),
                                        f'no matches for kind "{kind}" in version "{api_version}"'))
            continue
        body = prepare(obj, namespaced=info.namespaced, sync_namespace=namespace, sync_name=name,
                       target_namespace=spec.target_namespace)
        d = Desired(key_of(body), body, file, document, manifest_hash(body))
        out.desired.append(d)
        out.resources[d.key] = info.api_resource
        if deferred:
            out.deferred.add(d.key)
    return out
