"""The subset of kustomize that the gitops build runs: a kustomization's fields and transformers.

Data flow: a kustomization file's parsed document -> ``parse_kustomization`` -> ``Kustomization``
(its resources, which ``gitops.build`` resolves and builds, and its transformer settings) plus
every problem in it; the built objects of its resources -> ``transform`` -> fresh objects with the
kustomization's namespace, name prefix and suffix, labels, annotations and images applied. Pure:
no files, no I/O; ``gitops.build`` knows the repository.

Supported fields, as kustomize applies them (in its order: namespace, namePrefix/nameSuffix,
labels, annotations, images):
- ``resources`` (and its deprecated alias ``bases``): resolved by ``gitops.build``;
- ``namespace``: set on every object (an existing one is replaced) except the well-known
  cluster-scoped kinds of ``CLUSTER_SCOPED``: without the API server's discovery nothing better
  is known, so the reconciler corrects the rest (a custom cluster-scoped kind) with discovery;
- ``commonLabels``: on ``metadata.labels`` of every object, on the selectors of Services,
  ReplicationControllers, Deployments, ReplicaSets, DaemonSets and StatefulSets (Jobs' and
  CronJobs' only where one is set, since theirs are generated) and on their pod templates;
- ``labels`` (``pairs``; ``includeSelectors`` as commonLabels, else ``includeTemplates`` adds
  the pod templates, else ``metadata.labels`` only);
- ``commonAnnotations``: on ``metadata.annotations`` of every object and on the workloads' pod
  templates;
- ``namePrefix``/``nameSuffix``: on every name except Namespaces, CustomResourceDefinitions and
  APIServices (kustomize skips those too). References are updated only where a pod spec names a
  ConfigMap, Secret or ServiceAccount renamed by the same kustomization in the same namespace:
  volumes (configMap, secret, projected sources), env ``valueFrom`` and ``envFrom`` of
  containers and initContainers, ``imagePullSecrets``, ``serviceAccountName``. Other references
  kustomize also updates (Ingress backends, RoleBinding subjects, a StatefulSet's serviceName,
  PVC claims, ...) are left as written;
- ``images`` (``name``, ``newName``, ``newTag``, ``digest``): containers and initContainers of
  Pods (``spec``), of pod templates (``spec.template.spec``) and of CronJobs
  (``spec.jobTemplate.spec.template.spec``) whose image without tag and digest is ``name``.
Every other field (patches, generators, transformers, helm charts, components, replacements,
vars, ...) is an error unless it is empty: nothing of a repository ever runs as a program here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Sequence

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# Kinds that take no namespace, by (API group, kind). Discovery knows better; this is what can be
# known without it.
CLUSTER_SCOPED = frozenset({
    ("", "Namespace"), ("", "Node"), ("", "PersistentVolume"), ("", "ComponentStatus"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("rbac.authorization.k8s.io", "ClusterRole"), ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"), ("storage.k8s.io", "CSIDriver"), ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("apiregistration.k8s.io", "APIService"),
    ("networking.k8s.io", "IngressClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"), ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
})

_SUPPORTED = frozenset({"apiVersion", "kind", "metadata", "resources", "bases", "namespace", "commonLabels",
                        "labels", "commonAnnotations", "namePrefix", "nameSuffix", "images"})
# The rest of kustomize's Kustomization type, so that a typo reads differently from a real field.
_KNOWN_UNSUPPORTED = frozenset({
    "patches", "patchesStrategicMerge", "patchesJson6902", "configMapGenerator", "secretGenerator",
    "generatorOptions", "generators", "transformers", "validators", "helmCharts", "helmGlobals",
    "helmChartInflationGenerator", "components", "replacements", "replicas", "vars", "openapi", "crds",
    "configurations", "imageTags", "sortOptions", "buildMetadata",
})

_REMOTE_PREFIXES = ("github.com/", "gitlab.com/", "bitbucket.org/", "git@", "git::")

# Where kustomize puts commonLabels beyond metadata.labels: (kind, group or None for any, path,
# create the path if missing, is a selector). "[]" walks every element of a list.
_SELECTOR, _TEMPLATE = True, False
_Path = tuple[str, ...]
_TEMPLATE_LABELS: _Path = ("spec", "template", "metadata", "labels")
_LABEL_FIELDS: tuple[tuple[str, str | None, _Path, bool, bool], ...] = (
    ("Service", "", ("spec", "selector"), True, _SELECTOR),
    ("ReplicationController", "", ("spec", "selector"), True, _SELECTOR),
    ("ReplicationController", "", _TEMPLATE_LABELS, True, _TEMPLATE),
    *((kind, None, path, True, role) for kind in ("Deployment", "ReplicaSet", "DaemonSet")
      for path, role in ((("spec", "selector", "matchLabels"), _SELECTOR), (_TEMPLATE_LABELS, _TEMPLATE))),
    ("StatefulSet", "apps", ("spec", "selector", "matchLabels"), True, _SELECTOR),
    ("StatefulSet", "apps", _TEMPLATE_LABELS, True, _TEMPLATE),
    ("StatefulSet", "apps", ("spec", "volumeClaimTemplates", "[]", "metadata", "labels"), True, _TEMPLATE),
    ("Job", "batch", ("spec", "selector", "matchLabels"), False, _SELECTOR),
    ("Job", "batch", _TEMPLATE_LABELS, True, _TEMPLATE),
    ("CronJob", "batch", ("spec", "jobTemplate", "spec", "selector", "matchLabels"), False, _SELECTOR),
    ("CronJob", "batch", ("spec", "jobTemplate", "metadata", "labels"), True, _TEMPLATE),
    ("CronJob", "batch", ("spec", "jobTemplate", "spec", "template", "metadata", "labels"), True, _TEMPLATE),
)
_TEMPLATE_ANNOTATIONS: tuple[tuple[str, str | None, _Path], ...] = (
    ("ReplicationController", "", ("spec", "template", "metadata", "annotations")),
    *((kind, group, ("spec", "template", "metadata", "annotations"))
      for kind, group in (("Deployment", None), ("ReplicaSet", None), ("DaemonSet", None), ("StatefulSet", "apps"),
                          ("Job", "batch"))),
    ("CronJob", "batch", ("spec", "jobTemplate", "metadata", "annotations")),
    ("CronJob", "batch", ("spec", "jobTemplate", "spec", "template", "metadata", "annotations")),
)
# kustomize never renames these: a CRD's name is <plural>.<group>, an APIService's
# <version>.<group>, and a Namespace is referred to by every namespaced object.
_KEEP_NAME = frozenset({(None, "CustomResourceDefinition"), ("apiregistration.k8s.io", "APIService"),
                        (None, "Namespace")})


@dataclass(frozen=True)
class Labels:
    """One entry of ``labels`` (``commonLabels`` is one with ``selectors``)."""

    pairs: Mapping[str, str]
    selectors: bool = False
    templates: bool = False


@dataclass(frozen=True)
class Image:
    """One entry of ``images``: which image (by name, without tag or digest) becomes what."""

    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""


@dataclass(frozen=True)
class Kustomization:
    resources: tuple[str, ...] = ()
    namespace: str = ""
    labels: tuple[Labels, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    name_prefix: str = ""
    name_suffix: str = ""
    images: tuple[Image, ...] = ()


def is_remote(resource: str) -> bool:
    """A resource that names a Git repository or a URL rather than a path of this repository."""
    return "://" in resource or resource.startswith(_REMOTE_PREFIXES)


def parse_kustomization(doc: Any) -> tuple[Kustomization, list[str]]:
    """The kustomization's settings and every problem in it (a problem field is left out)."""
    if not isinstance(doc, dict):
        return Kustomization(), ["a kustomization must be a mapping"]
    errors: list[str] = []
    for key, value in doc.items():
        if key in _SUPPORTED or value in (None, [], {}, ""):
            continue
        if key in _KNOWN_UNSUPPORTED:
            errors.append(f"kustomization field {key} is not supported by minik8s gitops")
        else:
            errors.append(f"kustomization field {key} is unknown (and not supported by minik8s gitops)")
    kind = doc.get("kind")
    if kind not in (None, "Kustomization"):
        errors.append(f"kustomization kind {kind} is not supported by minik8s gitops (only Kustomization)")
    resources = _strings(doc, "resources", errors) + _strings(doc, "bases", errors)
    labels: list[Labels] = []
    if doc.get("commonLabels") is not None:
        labels.append(Labels(_string_map(doc, "commonLabels", errors), selectors=True))
    for number, entry in enumerate(_list(doc, "labels", errors)):
        labels += _labels_entry(entry, f"labels[{number}]", errors)
    return Kustomization(
        resources=tuple(resources),
        namespace=_string(doc, "namespace", errors),
        labels=tuple(labels),
        annotations=_string_map(doc, "commonAnnotations", errors),
        name_prefix=_string(doc, "namePrefix", errors),
        name_suffix=_string(doc, "nameSuffix", errors),
        images=tuple(i for n, e in enumerate(_list(doc, "images", errors))
                     if (i := _image_entry(e, f"images[{n}]", errors)) is not None),
    ), errors


def _string(doc: Mapping[str, Any], key: str, errors: list[str]) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(f"kustomization field {key} must be a string, not {value!r}")
        return ""
    return value


def _list(doc: Mapping[str, Any], key: str, errors: list[str]) -> list[Any]:
    value = doc.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"kustomization field {key} must be a list")
        return []
    return value


def _strings(doc: Mapping[str, Any], key: str, errors: list[str]) -> list[str]:
    values = _list(doc, key, errors)
    bad = [v for v in values if not isinstance(v, str) or not v]
    if bad:
        errors.append(f"kustomization field {key} must list paths (strings), not {bad[0]!r}")
    return [v for v in values if isinstance(v, str) and v]


def _string_map(doc: Mapping[str, Any], key: str, errors: list[str], *, where: str = "") -> dict[str, str]:
    value = doc.get(key)
    where = where or key
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(f"kustomization field {where} must be a mapping")
        return {}
    # A YAML `version: 1.10` is the number 1.1: quoting is the user's to do, not a guess of ours.
    bad = [k for k, v in value.items() if not isinstance(v, str)]
    if bad:
        errors.append(f"kustomization field {where}: the value of {bad[0]} must be a string (quote it)")
    return {k: v for k, v in value.items() if isinstance(v, str)}


def _labels_entry(entry: Any, where: str, errors: list[str]) -> list[Labels]:
    if not isinstance(entry, dict):
        errors.append(f"kustomization field {where} must be a mapping")
        return []
    for key in entry:
        if key not in ("pairs", "includeSelectors", "includeTemplates"):
            errors.append(f"kustomization field {where}.{key} is not supported by minik8s gitops")
    flags: dict[str, bool] = {}
    for key in ("includeSelectors", "includeTemplates"):
        value = entry.get(key, False)
        if not isinstance(value, bool):
            errors.append(f"kustomization field {where}.{key} must be true or false")
        flags[key] = value is True
    pairs = _string_map(entry, "pairs", errors, where=f"{where}.pairs")
    return [Labels(pairs, selectors=flags["includeSelectors"], templates=flags["includeTemplates"])]


def _image_entry(entry: Any, where: str, errors: list[str]) -> Image | None:
    if not isinstance(entry, dict):
        errors.append(f"kustomization field {where} must be a mapping")
        return None
    keys = {"name": "name", "newName": "new_name", "newTag": "new_tag", "digest": "digest"}
    for key in entry:
        if key not in keys:
            errors.append(f"kustomization field {where}.{key} is not supported by minik8s gitops")
    values: dict[str, str] = {}
    for key, attribute in keys.items():
        value = entry.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            # newTag: 1.10 is the float 1.1 in YAML
            errors.append(f"kustomization field {where}.{key} must be a string (quote it), not {value!r}")
            return None
        values[attribute] = value
    if not values.get("name"):
        errors.append(f"kustomization field {where}.name is not set")
        return None
    return Image(**values)


def transform(objects: Sequence[Mapping[str, Any]], kustomization: Kustomization,
              ) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Fresh copies of the objects with the kustomization's transformers applied, and the problems
    met, as (index of the object, message); an object with a problem is still returned."""
    out = [copy.deepcopy(dict(o)) for o in objects]
    errors: list[tuple[int, str]] = []
    k = kustomization
    for index, obj in enumerate(out):
        group, kind = _group(obj), str(obj.get("kind") or "")
        problems: list[str] = []
        if k.namespace and (group, kind) not in CLUSTER_SCOPED:
            problems += _set_entries(obj, ("metadata",), {"namespace": k.namespace}, create=True)
        for labels in k.labels:
            problems += _set_entries(obj, ("metadata", "labels"), labels.pairs, create=True)
            for field_kind, field_group, path, create, is_selector in _LABEL_FIELDS:
                if kind == field_kind and field_group in (None, group) and (
                        labels.selectors or (labels.templates and not is_selector)):
                    problems += _set_entries(obj, path, labels.pairs, create=create)
        if k.annotations:
            problems += _set_entries(obj, ("metadata", "annotations"), k.annotations, create=True)
            for field_kind, field_group, path in _TEMPLATE_ANNOTATIONS:
                if kind == field_kind and field_group in (None, group):
                    problems += _set_entries(obj, path, k.annotations, create=True)
        for image in k.images:
            for spec in _pod_specs(obj):
                _set_images(spec, image)
        errors += [(index, p) for p in dict.fromkeys(problems)]
    if k.name_prefix or k.name_suffix:
        _rename(out, k.name_prefix, k.name_suffix)
    return out, errors


def _group(obj: Mapping[str, Any]) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.rpartition("/")[0]


def _set_entries(node: Any, path: _Path, pairs: Mapping[str, str], *, create: bool, where: str = "") -> list[str]:
    """Set ``pairs`` in the mapping at ``path`` below ``node``, creating it if ``create``."""
    if not pairs:
        return []
    if not path:
        if not isinstance(node, dict):
            return [f"{where} is not a mapping"]
        node.update(pairs)
        return []
    key, rest = path[0], path[1:]
    if key == "[]":
        if not isinstance(node, list):
            return [f"{where} is not a list"]
        problems: list[str] = []
        for number, element in enumerate(node):
            problems += _set_entries(element, rest, pairs, create=create, where=f"{where}[{number}]")
        return problems
    if not isinstance(node, dict):
        return [f"{where} is not a mapping"]
    here = f"{where}.{key}" if where else key
    if node.get(key) is None:
        if not create or (rest and rest[0] == "[]"):
            return []
        node[key] = {}
    return _set_entries(node[key], rest, pairs, create=create, where=here)


def _pod_specs(obj: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if obj.get("kind") == "Pod":
        yield spec
    for path in (("template", "spec"), ("jobTemplate", "spec", "template", "spec")):
        node: Any = spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            yield node


def _containers(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("containers", "initContainers"):
        containers = spec.get(key)
        if isinstance(containers, list):
            yield from (c for c in containers if isinstance(c, dict))


def split_image(image: str) -> tuple[str, str, str]:
    """``registry:5000/app:1.0@sha256:..`` -> (``registry:5000/app``, ``1.0``, ``sha256:..``)."""
    name, _, digest = image.partition("@")
    # A colon before the last slash is a registry's port, not a tag.
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1:], digest
    return name, "", digest


def _set_images(spec: dict[str, Any], image: Image) -> None:
    for container in _containers(spec):
        value = container.get("image")
        if not isinstance(value, str):
            continue
        name, tag, digest = split_image(value)
        if name != image.name:
            continue
        # kustomize's rule: a new tag or digest replaces both the old tag and the old digest.
        if image.new_tag or image.digest:
            tag, digest = image.new_tag, image.digest
        container["image"] = ((image.new_name or name) + (f":{tag}" if tag else "")
                              + (f"@{digest}" if digest else ""))


# What a pod spec (and each of its containers) names by reference: (referenced kind, path), where
# "[]" walks every element of a list.
_REFERENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ServiceAccount", ("serviceAccountName",)),
    ("ServiceAccount", ("serviceAccount",)),
    ("Secret", ("imagePullSecrets", "[]", "name")),
    ("ConfigMap", ("volumes", "[]", "configMap", "name")),
    ("Secret", ("volumes", "[]", "secret", "secretName")),
    ("ConfigMap", ("volumes", "[]", "projected", "sources", "[]", "configMap", "name")),
    ("Secret", ("volumes", "[]", "projected", "sources", "[]", "secret", "name")),
)
_CONTAINER_REFERENCES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ConfigMap", ("env", "[]", "valueFrom", "configMapKeyRef", "name")),
    ("Secret", ("env", "[]", "valueFrom", "secretKeyRef", "name")),
    ("ConfigMap", ("envFrom", "[]", "configMapRef", "name")),
    ("Secret", ("envFrom", "[]", "secretRef", "name")),
)


def _rename(objects: list[dict[str, Any]], prefix: str, suffix: str) -> None:
    # (kind, namespace, old name) -> new name, for the kinds pod specs refer to
    renamed: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        metadata = obj.get("metadata")
        group, kind = _group(obj), str(obj.get("kind") or "")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            continue
        if (None, kind) in _KEEP_NAME or (group, kind) in _KEEP_NAME:
            continue
        old = metadata["name"]
        metadata["name"] = f"{prefix}{old}{suffix}"
        if group == "" and kind in ("ConfigMap", "Secret", "ServiceAccount"):
            renamed[(kind, _namespace(obj), old)] = metadata["name"]
    if not renamed:
        return
    for obj in objects:
        namespace = _namespace(obj)
        for spec in _pod_specs(obj):
            for kind, path in _REFERENCES:
                _rename_at(spec, path, kind, namespace, renamed)
            for container in _containers(spec):
                for kind, path in _CONTAINER_REFERENCES:
                    _rename_at(container, path, kind, namespace, renamed)


def _namespace(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return namespace if isinstance(namespace, str) else ""


def _rename_at(node: Any, path: tuple[str, ...], kind: str, namespace: str,
               renamed: Mapping[tuple[str, str, str], str]) -> None:
    key, rest = path[0], path[1:]
    if key == "[]":
        for element in node if isinstance(node, list) else ():
            _rename_at(element, rest, kind, namespace, renamed)
        return
    if not isinstance(node, dict) or key not in node:
        return
    if rest:
        _rename_at(node[key], rest, kind, namespace, renamed)
    elif isinstance(node[key], str) and (kind, namespace, node[key]) in renamed:
        node[key] = renamed[(kind, namespace, node[key])]


__all__ = ["CLUSTER_SCOPED", "KUSTOMIZATION_FILES", "Image", "Kustomization", "Labels", "is_remote",
           "parse_kustomization", "split_image", "transform"]
