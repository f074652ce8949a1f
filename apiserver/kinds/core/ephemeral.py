"""Ephemeral containers: the rules of ``pods/{name}/ephemeralcontainers`` and of the field itself.

After Kubernetes' ``EphemeralContainersREST`` (pkg/registry/core/pod/storage), its
``podEphemeralContainersStrategy`` and ``validateEphemeralContainers`` /
``ValidatePodEphemeralContainersUpdate`` (pkg/apis/core/validation).

Data flow: a GET of the subresource answers the Pod; a PUT or PATCH (kubectl debug sends a
strategic merge patch ``{"spec": {"ephemeralContainers": [...]}}``) reaches the registry with
``subresource="ephemeralcontainers"``; the registry asks the Pod strategy, which asks here:

    merge_update(new, old)   -> the stored pod with only new's spec.ephemeralContainers
    validate_spec(spec, path) -> the field errors of spec.ephemeralContainers (every pod write)
    update_causes(new, old)  -> existing ephemeral containers may be neither removed nor changed

Pure functions over JSON mappings; no I/O.
"""

from __future__ import annotations

import copy
from typing import Any

from ...validation.containers import validate_container
from ...validation.fielderrors import (Causes, Obj, child, duplicate, forbidden, get_maps, get_str, index,
                                       not_found)

SUBRESOURCE = "ephemeralcontainers"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
FORBIDDEN_FIELD = "cannot be set for an Ephemeral Container"
# allowedEphemeralContainerFields, as JSON names: every other field of a container is Forbidden
# when set (ports, resources, probes, lifecycle, restartPolicy, resizePolicy, ...).
ALLOWED_FIELDS = frozenset({
    "name", "image", "command", "args", "workingDir", "envFrom", "env", "volumeMounts", "volumeDevices",
    "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin",
    "stdinOnce", "tty",
    "targetContainerName",  # EphemeralContainer's own field, beside the common ones
})


def _is_set(value: Any) -> bool:
    """Go's "not the zero value" for a decoded JSON field (an empty struct such as ``resources: {}``,
    which kubectl always sends, is the zero value)."""
    return value not in (None, {}, "", False, 0)


def _names(spec: Obj, list_name: str) -> list[str]:
    return [str(c.get("name")) for c in spec.get(list_name) or [] if isinstance(c, dict) and c.get("name")]


def validate_spec(spec: Obj, path: str) -> Causes:
    """validateEphemeralContainers: the common container rules, names unique across every
    container of the pod, a target that names an app or init container, the allow-list, no subPath."""
    causes: Causes = []
    ephemeral = get_maps(spec, "ephemeralContainers", path, causes)
    if not ephemeral:
        return causes
    others = set(_names(spec, "containers")) | set(_names(spec, "initContainers"))
    all_names = set(others)
    volumes = set(_names(spec, "volumes"))
    for item_path, container in ephemeral:
        allowed = {k: v for k, v in container.items() if k in ALLOWED_FIELDS}
        for field_name in sorted(k for k, v in container.items() if k not in ALLOWED_FIELDS and _is_set(v)):
            causes.append(forbidden(child(item_path, field_name), FORBIDDEN_FIELD))
        # The common rules see only the allowed fields: a forbidden one is reported once, above.
        validate_container(allowed, item_path, volumes=volumes, init=False, is_pod=True, causes=causes)
        name = container.get("name")
        if isinstance(name, str) and name:
            if name in all_names:
                causes.append(duplicate(child(item_path, "name"), name))
            all_names.add(name)
        target = get_str(container, "targetContainerName", item_path, causes)
        if target and target not in others:
            causes.append(not_found(child(item_path, "targetContainerName"), target))
        mounts = container.get("volumeMounts")
        for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
            for sub in ("subPath", "subPathExpr"):
                if isinstance(mount, dict) and mount.get(sub):
                    causes.append(forbidden(child(index(child(item_path, "volumeMounts"), i), sub), FORBIDDEN_FIELD))
    return causes


def merge_update(new: Obj, old: Obj) -> Obj:
    """dropNonEphemeralContainerUpdates: the stored pod (spec, status and metadata) with only
    ``spec.ephemeralContainers`` taken from the request (absent there: none)."""
    merged = copy.deepcopy(old)
    new_spec = new.get("spec")
    spec = merged.setdefault("spec", {})
    containers = new_spec.get("ephemeralContainers") if isinstance(new_spec, dict) else None
    if containers is None:
        spec.pop("ephemeralContainers", None)
    else:
        spec["ephemeralContainers"] = copy.deepcopy(containers)
    managed = (new.get("metadata") or {}).get("managedFields")
    if managed is not None:
        merged.setdefault("metadata", {})["managedFields"] = managed
    return merged


def _changed_fields(old: Obj, new: Obj) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(keys)


def update_causes(new: Obj, old: Obj) -> Causes:
    """ValidatePodEphemeralContainersUpdate's own part: static pods take none; existing ephemeral
    containers stay exactly as they are (matched by name: a patch need not keep their order)."""
    annotations = (old.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict) and MIRROR_POD_ANNOTATION in annotations:
        return [forbidden("", "static pods do not support ephemeral containers")]
    path = "spec.ephemeralContainers"
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    by_name = {c.get("name"): c for c in new_spec.get("ephemeralContainers") or [] if isinstance(c, dict)}
    causes: Causes = []
    for previous in old_spec.get("ephemeralContainers") or []:
        if not isinstance(previous, dict):
            continue
        name = previous.get("name")
        current = by_name.get(name)
        if current is None:
            causes.append(forbidden(path, f'existing ephemeral containers "{name}" may not be removed\n'))
        elif current != previous:
            causes.append(forbidden(path, f'existing ephemeral containers "{name}" may not be changed\n'
                                          f"changed: {_changed_fields(previous, current)}"))
    return causes


__all__ = ["ALLOWED_FIELDS", "FORBIDDEN_FIELD", "SUBRESOURCE", "merge_update", "update_causes", "validate_spec"]
