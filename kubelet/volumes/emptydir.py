"""An ``emptyDir`` volume (pure decisions; the manager makes it).

    medium ""       -> a directory under the pod's directory (gone with the pod)
    medium Memory   -> a tmpfs: a Docker volume of the local driver (``type=tmpfs``) made through
                       kubelet.cri, so every container of the pod mounts the same memory; named
                       after the pod's uid and the volume, labelled with the pod, removed with it.
                       Its size (Kubernetes' SizeMemoryBackedVolumes): ``sizeLimit``, else the
                       sum of the containers' memory limits when every container has one, else
                       the tmpfs default (half the machine's memory).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from kubelet.volumes import SourceError
from machinery.quantity import QuantityError, to_bytes

Obj = Mapping[str, Any]
MEMORY = "Memory"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


def is_memory(volume: Obj) -> bool:
    return "emptyDir" in volume and (volume.get("emptyDir") or {}).get("medium") == MEMORY


def memory_volume_name(pod_uid: str, volume: str) -> str:
    return "mk8s-" + _UNSAFE.sub("-", f"{pod_uid}-{volume}")


def tmpfs_size(pod: Obj, volume: Obj) -> int | None:
    limit = (volume.get("emptyDir") or {}).get("sizeLimit")
    try:
        if limit is not None:
            return to_bytes(str(limit))
        limits = [((c.get("resources") or {}).get("limits") or {}).get("memory")
                  for c in (pod.get("spec") or {}).get("containers") or []]
        if limits and all(limits):
            return sum(to_bytes(str(m)) for m in limits)
    except QuantityError as e:
        raise SourceError(f"emptyDir sizeLimit: {e}") from None
    return None


__all__ = ["MEMORY", "is_memory", "memory_volume_name", "tmpfs_size"]
