"""The local-path provisioner's decisions (pure): the default class, which claims get a volume, on
which node, and the PersistentVolume object (after rancher's local-path-provisioner).

Data flow: the executor (``controllers.localprovisioner``) passes a claim, the classes by name,
the nodes and the names of existing PVs -> ``provision(...)`` -> the PV body to create (or None:
nothing to do yet) -> the executor creates it; the binder (``controllers.persistentvolume``) then
completes the binding of the pre-bound volume.

A claim gets a volume when it is unbound, not being deleted, its class's provisioner is
``minik8s.io/local-path``, no PV ``pvc-<claim uid>`` exists yet, and its node is known: the
scheduler's ``volume.kubernetes.io/selected-node`` for a WaitForFirstConsumer class, one Ready
node (chosen by a stable hash of the claim's uid) for an Immediate class. The volume:
``spec.local.path = <node's minik8s.io/local-path-dir annotation, else /var/lib/minik8s/local-path>
/<pv>_<namespace>_<claim>``, required node affinity ``kubernetes.io/hostname In [<node>]``, the
claim's request as capacity and its access modes and volume mode, the class's reclaim policy and
mount options, ``pv.kubernetes.io/provisioned-by: minik8s.io/local-path`` and a claimRef to the
claim (pre-bound).

Expansion: a bound claim of a class with ``allowVolumeExpansion: true`` whose request grew past its
local-path volume's capacity gets the volume's capacity raised to the request (``expanded``; a
directory has no size to change, so this is all the external resizer's work amounts to); the
binder then copies the capacity into the claim's status.
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from machinery.volumematch import (ANN_DEFAULT_CLASS, ANN_PROVISIONED_BY, ANN_SELECTED_NODE,
                                   WAIT_FOR_FIRST_CONSUMER, annotations_of, capacity, is_bound_to, meta, name,
                                   requested, spec, storage_class_of)

Obj = Mapping[str, Any]

PROVISIONER = "minik8s.io/local-path"
DEFAULT_CLASS_NAME = "local-path"
LOCAL_PATH_DIR_ANNOTATION = "minik8s.io/local-path-dir"
DEFAULT_LOCAL_PATH_DIR = "/var/lib/minik8s/local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def default_class() -> dict[str, Any]:
    """The StorageClass the provisioner makes sure exists (never overwriting one of that name)."""
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": DEFAULT_CLASS_NAME, "annotations": {ANN_DEFAULT_CLASS: "true"}},
            "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER}


def volume_name(claim: Obj) -> str:
    return f"pvc-{meta(claim).get('uid')}"


def is_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def choose_node(claim: Obj, storage_class: Obj, nodes: Iterable[Obj]) -> str | None:
    """The node the volume lives on: the selected node (WaitForFirstConsumer), else a Ready node."""
    if storage_class.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
        selected = annotations_of(claim).get(ANN_SELECTED_NODE)
        return str(selected) if selected else None
    ready = sorted(name(n) for n in nodes if is_ready(n) and not (n.get("spec") or {}).get("unschedulable"))
    if not ready:
        return None
    digest = hashlib.sha256(str(meta(claim).get("uid") or "").encode()).digest()
    return ready[int.from_bytes(digest[:4], "big") % len(ready)]


def wants_volume(claim: Obj, classes: Mapping[str, Obj], existing: Collection[str]) -> Obj | None:
    """The claim's class when this provisioner should make it a volume now, else None."""
    if meta(claim).get("deletionTimestamp") or spec(claim).get("volumeName") or not meta(claim).get("uid"):
        return None
    storage_class = classes.get(storage_class_of(claim))
    if storage_class is None or storage_class.get("provisioner") != PROVISIONER:
        return None
    return None if volume_name(claim) in existing else storage_class


def local_path(claim: Obj, node: Obj | None) -> str:
    base = str(annotations_of(node).get(LOCAL_PATH_DIR_ANNOTATION) or "") if node is not None else ""
    claim_meta = meta(claim)
    leaf = f"{volume_name(claim)}_{claim_meta.get('namespace')}_{claim_meta.get('name')}"
    return posixpath.join(base or DEFAULT_LOCAL_PATH_DIR, leaf)


def volume_for(claim: Obj, storage_class: Obj, *, node_name: str, node: Obj | None) -> dict[str, Any]:
    """The PersistentVolume for ``claim`` on ``node_name`` (pre-bound to the claim)."""
    claim_meta, claim_spec = meta(claim), spec(claim)
    requests = (claim_spec.get("resources") or {}).get("requests") or {}
    body: dict[str, Any] = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume_name(claim), "annotations": {ANN_PROVISIONED_BY: PROVISIONER}},
        "spec": {
            "capacity": {"storage": requests.get("storage")},
            "accessModes": list(claim_spec.get("accessModes") or []),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": name(storage_class),
            "volumeMode": claim_spec.get("volumeMode") or "Filesystem",
            "local": {"path": local_path(claim, node)},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node_name]}]}]}},
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1", "namespace": claim_meta.get("namespace"),
                         "name": claim_meta.get("name"), "uid": claim_meta.get("uid"),
                         "resourceVersion": claim_meta.get("resourceVersion")},
        },
    }
    if storage_class.get("mountOptions"):
        body["spec"]["mountOptions"] = list(storage_class["mountOptions"])
    return body


def provision(claim: Obj, classes: Mapping[str, Obj], nodes: Mapping[str, Obj],
              existing: Collection[str]) -> dict[str, Any] | None:
    """The PV to create for ``claim`` now, or None (not ours, already done, or no node yet)."""
    storage_class = wants_volume(claim, classes, existing)
    if storage_class is None:
        return None
    node_name = choose_node(claim, storage_class, nodes.values())
    if node_name is None:
        return None
    return volume_for(claim, storage_class, node_name=node_name, node=nodes.get(node_name))


def expanded(claim: Obj, volume: Obj | None, classes: Mapping[str, Obj]) -> dict[str, Any] | None:
    """The volume with the claim's grown request as its capacity, or None (nothing to resize)."""
    if volume is None or annotations_of(volume).get(ANN_PROVISIONED_BY) != PROVISIONER:
        return None
    if spec(claim).get("volumeName") != name(volume) or not is_bound_to(volume, claim):
        return None
    storage_class = classes.get(storage_class_of(claim))
    if storage_class is None or storage_class.get("allowVolumeExpansion") is not True:
        return None
    if requested(claim) <= capacity(volume):
        return None
    request = ((spec(claim).get("resources") or {}).get("requests") or {}).get("storage")
    out = dict(volume)
    out["spec"] = {**spec(volume), "capacity": {**(spec(volume).get("capacity") or {}), "storage": request}}
    return out


__all__ = ["DEFAULT_CLASS_NAME", "DEFAULT_LOCAL_PATH_DIR", "LOCAL_PATH_DIR_ANNOTATION", "PROVISIONER",
           "choose_node", "default_class", "expanded", "local_path", "provision", "volume_for", "volume_name", "wants_volume"]
