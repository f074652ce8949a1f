"""A ``persistentVolumeClaim`` volume: which host directory it is, and whether it may be mounted.

Pure (no I/O): the manager GETs the claim and then its PersistentVolume and asks

    claim_volume_name(namespace, name, claim)  -> the bound PV's name, or SourceError while the
                                                  claim is missing, unbound or being deleted
    pv_source(pv, read_only=)                  -> PVSource(path, read_only, create, host_path_type)

As Kubernetes' kubelet (desired_state_of_world_populator): the claim must be ``Bound`` with
``spec.volumeName``; the volume's path is ``spec.local.path`` or ``spec.hostPath.path``. A
directory of the local-path provisioner (annotation ``pv.kubernetes.io/provisioned-by:
minik8s.io/local-path``) is made when missing (mode 0777, as rancher's provisioner makes it);
a static ``local`` volume must exist. Nothing here ever removes a volume's data: that is the
reclaimer's job, once its PV is Released with the Delete policy (``kubelet.localvolumes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from kubelet.volumes import SourceError
from kubelet.volumes.localpath import is_local_path_pv

Obj = Mapping[str, Any]


@dataclass(frozen=True)
class PVSource:
    path: str
    read_only: bool
    create: bool  # make the directory (0777) when missing: a local-path provisioned volume
    must_exist: bool  # a static ``local`` volume: its path must already be there
    host_path_type: str = ""  # a ``hostPath`` PV's type check ("" = none)


def claim_volume_name(namespace: str, name: str, claim: Obj | None) -> str:
    if claim is None:
        raise SourceError(f'persistentvolumeclaim "{name}" not found')
    meta, spec, status = claim.get("metadata") or {}, claim.get("spec") or {}, claim.get("status") or {}
    if meta.get("deletionTimestamp"):
        raise SourceError(f"can't start pod because PVC {namespace}/{name} is being deleted")
    phase, volume = str(status.get("phase") or ""), str(spec.get("volumeName") or "")
    if phase != "Bound" or not volume:
        raise SourceError(f"pod has unbound immediate PersistentVolumeClaims: PVC {namespace}/{name} has non-bound "
                          f"phase ({phase or 'Pending'!r}) or empty pvc.Spec.VolumeName ({volume!r})")
    return volume


def pv_source(pv: Obj | None, *, name: str, read_only: bool) -> PVSource:
    if pv is None:
        raise SourceError(f'persistentvolume "{name}" not found')
    spec = pv.get("spec") or {}
    if spec.get("local"):
        path = str((spec.get("local") or {}).get("path") or "")
        created = is_local_path_pv(pv)
        return PVSource(path=path, read_only=read_only, create=created, must_exist=not created)
    if spec.get("hostPath"):
        hp = spec.get("hostPath") or {}
        return PVSource(path=str(hp.get("path") or ""), read_only=read_only, create=is_local_path_pv(pv),
                        must_exist=False, host_path_type=str(hp.get("type") or ""))
    kinds = sorted(k for k, v in spec.items() if isinstance(v, dict) and k not in ("claimRef", "nodeAffinity",
                                                                                   "capacity"))
    raise SourceError(f"persistentvolume {name}: volume source {', '.join(kinds) or 'none'} is not supported "
                      f"by this kubelet (only local and hostPath)")


__all__ = ["PVSource", "claim_volume_name", "pv_source"]
