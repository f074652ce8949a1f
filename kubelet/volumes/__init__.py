"""The kubelet's volumes, after Kubernetes' volume plugins: one small module per volume type or
family, a pure part that decides what to write or mount and a thin part that does it.

Data flow (``kubelet.volumes.manager.VolumeManager`` runs it for each pod before its containers):

    pod.spec.volumes -> per volume, by type:
        emptyDir              -> emptydir: a directory under the pod's directory, or with
                                 ``medium: Memory`` a tmpfs Docker volume (kubelet.cri) shared by
                                 the pod's containers and removed with the pod
        hostPath              -> hostpath: the type check (DirectoryOrCreate, File, Socket, ...)
        persistentVolumeClaim -> pvc: claim -> bound PV -> ``local.path`` / ``hostPath.path``
                                 (a local-path provisioned directory is made when missing)
        configMap, secret,    -> projection (what files, contents and modes) -> writer (the
        downwardAPI, projected   atomic ``..data`` layout Kubernetes' AtomicWriter uses), kept
                                 current while the pod runs
    -> ``PodVolumes``: each volume's host source -> the bind mounts of one container
       (``volumeMounts``: mountPath, subPath, readOnly).

A volume that cannot be set up is a ``MountError`` (the kubelet reports the container waiting
in ContainerCreating and a ``FailedMount`` event, and tries again on the next sync).
"""

from __future__ import annotations


class MountError(Exception):
    """A volume of the pod cannot be set up yet (missing claim, failed type check, ...)."""

    def __init__(self, volume: str, message: str) -> None:
        super().__init__(f'MountVolume.SetUp failed for volume "{volume}" : {message}')
        self.volume = volume
        self.reason = message


class SourceError(Exception):
    """What a pure volume function raises; the manager wraps it in ``MountError`` with the volume."""


__all__ = ["MountError", "SourceError"]
