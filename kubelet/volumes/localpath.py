"""The local-path volumes' conventions shared by the kubelet's parts (pure, no I/O).

A kubelet keeps the local-path provisioner's volumes under ``<root-dir>/local-path`` and
publishes that directory on its Node (annotation ``minik8s.io/local-path-dir``); the provisioner
(controllers.localprovisioner) creates PVs with ``spec.local.path = <that dir>/<pv>_<ns>_<claim>``,
the annotation ``pv.kubernetes.io/provisioned-by: minik8s.io/local-path`` and a node affinity
naming the node. The kubelet creates such a directory when a pod first mounts it and removes it
once the PV is Released with the Delete reclaim policy (``reclaim_path`` decides which).
"""

from __future__ import annotations

import posixpath
from typing import Any, Mapping

from kubelet.nodestatus import LOCAL_PATH_DIR_ANNOTATION

Obj = Mapping[str, Any]

PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
PROVISIONER = "minik8s.io/local-path"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def local_path_dir(root_dir: str) -> str:
    return posixpath.join(root_dir, "local-path")


def is_local_path_pv(pv: Obj) -> bool:
    return ((pv.get("metadata") or {}).get("annotations") or {}).get(PROVISIONED_BY) == PROVISIONER


def pv_path(pv: Obj) -> str:
    spec = pv.get("spec") or {}
    return str((spec.get("local") or {}).get("path") or (spec.get("hostPath") or {}).get("path") or "")


def affinity_nodes(pv: Obj) -> set[str]:
    """The node names a PV's required node affinity names (``kubernetes.io/hostname In [...]``)."""
    required = ((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {}
    out: set[str] = set()
    for term in required.get("nodeSelectorTerms") or []:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In":
                out.update(str(v) for v in expr.get("values") or [])
        for f in term.get("matchFields") or []:
            if f.get("key") == "metadata.name" and f.get("operator") == "In":
                out.update(str(v) for v in f.get("values") or [])
    return out


def within(path: str, directory: str) -> bool:
    """Whether ``path`` lies strictly inside ``directory`` (lexically, after normalising)."""
    p, d = posixpath.normpath(path), posixpath.normpath(directory)
    return p != d and p.startswith(d.rstrip("/") + "/")


def reclaim_path(pv: Obj, *, node: str, local_dir: str) -> str | None:
    """The directory to remove for a PV this node must reclaim, else None: provisioned by the
    local-path provisioner, its node affinity names ``node``, phase ``Released``, reclaim policy
    ``Delete``, and its path inside this node's local-path directory (never anything else)."""
    meta, spec, status = pv.get("metadata") or {}, pv.get("spec") or {}, pv.get("status") or {}
    if not is_local_path_pv(pv) or meta.get("deletionTimestamp"):
        return None
    if status.get("phase") != "Released" or spec.get("persistentVolumeReclaimPolicy") != "Delete":
        return None
    if node not in affinity_nodes(pv):
        return None
    path = pv_path(pv)
    return path if path and within(path, local_dir) else None


__all__ = ["HOSTNAME_LABEL", "LOCAL_PATH_DIR_ANNOTATION", "PROVISIONED_BY", "PROVISIONER", "affinity_nodes",
           "is_local_path_pv", "local_path_dir", "pv_path", "reclaim_path", "within"]
