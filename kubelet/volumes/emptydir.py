"""An ``emptyDir`` volume (pure decisions; the manager makes it).

    medium ""       -> a directory under the pod's directory (gone with the pod)
    medium Memory   -> a tmpfs: a Docker volume of the local driver (``type=tmpfs``) made through
                       kubelet.cri, so every container of the pod mounts the same memory; named
                       after the pod's uid and the volume, labelled with the pod, removed with it.
                       Its size (Kubernetes' SizeMemoryBackedVolumes): ``sizeLimit``, else the
                       sum of the containers' memory limits when every container has one, else
                       the tmpfs default (half the machine's memory).
    disk ``sizeLimit`` -> the kubelet measures the directory's usage now and then; over the limit,
                       the pod is evicted as Kubernetes' eviction manager does it: containers
                       stopped, phase Failed, reason ``Evicted``, message ``Usage of EmptyDir
                       volume "x" exceeds the limit "1Mi".`` (``evicted_status``).
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


def disk_limits(pod: Obj) -> list[tuple[str, int, str]]:
    """(volume name, limit in bytes, the limit as written) of every disk emptyDir with a sizeLimit."""
    out: list[tuple[str, int, str]] = []
    for v in (pod.get("spec") or {}).get("volumes") or []:
        src = v.get("emptyDir")
        if src is None or (src or {}).get("medium") == MEMORY or (src or {}).get("sizeLimit") is None:
            continue
        try:
            out.append((str(v.get("name")), to_bytes(str(src["sizeLimit"])), str(src["sizeLimit"])))
        except QuantityError:
            continue  # validation rejects it; nothing to enforce
    return out


def over_limit(limits: list[tuple[str, int, str]], usage: Mapping[str, int]) -> str | None:
    """The eviction message of the first volume whose usage exceeds its limit, else None."""
    for name, limit, text in limits:
        if usage.get(name, 0) > limit:
            return f'Usage of EmptyDir volume "{name}" exceeds the limit "{text}". '
    return None


def evicted_status(status: Mapping[str, Any], message: str) -> dict[str, Any]:
    """A stopped pod's status (``podsync.shutdown_status``) turned into the eviction manager's."""
    out = dict(status)
    out.update(reason="Evicted", message=message)
    out["conditions"] = [{**c, "message": message} if c.get("type") == "DisruptionTarget" else c
                         for c in out.get("conditions") or []]
    return out


__all__ = ["MEMORY", "disk_limits", "evicted_status", "is_memory", "memory_volume_name", "over_limit", "tmpfs_size"]
