"""The downward API's values: a pod's own fields and its containers' resources as text.

Pure (no I/O). ``kubelet.volumes.projection`` asks it for the content of each ``downwardAPI``
item, the same way Kubernetes' ``fieldpath.ExtractFieldPathAsString`` and
``resource.ExtractContainerResourceValue`` do:

    fieldRef metadata.name | namespace | uid           -> the value
    fieldRef metadata.labels | annotations             -> ``key="value"`` lines, sorted by key
    fieldRef metadata.labels['k'] | annotations['k']   -> one value ("" when absent)
    resourceFieldRef {containerName, resource, divisor} -> ceil(quantity / divisor); a limit
        the container does not set is the node's allocatable amount, a missing request the limit
    expand(subPathExpr, env)  -> ``$(VAR)`` replaced by the container's variable (Kubernetes'
        third_party/forked/golang/expansion: ``$$`` is a literal ``$``, an unknown ``$(X)`` stays)
"""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

from kubelet.volumes import SourceError
from machinery.quantity import QuantityError, parse_quantity

Obj = Mapping[str, Any]

_RESOURCES = ("limits.cpu", "limits.memory", "limits.ephemeral-storage",
              "requests.cpu", "requests.memory", "requests.ephemeral-storage")


def format_map(values: Mapping[str, Any]) -> str:
    """Kubernetes' ``fieldpath.FormatMap``: ``key="value"`` per line, sorted, values quoted."""
    return "\n".join(f"{k}={json.dumps(str(v), ensure_ascii=False)}" for k, v in sorted(values.items()))


def field_value(pod: Obj, path: str, *, node_name: str = "") -> str:
    meta = pod.get("metadata") or {}
    for which in ("labels", "annotations"):
        if path == f"metadata.{which}":
            return format_map(meta.get(which) or {})
        prefix = f"metadata.{which}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(which) or {}).get(path[len(prefix):-2], ""))
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": (pod.get("spec") or {}).get("nodeName") or node_name,
              "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName") or "default"}
    if path not in simple:
        raise SourceError(f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


def resource_value(pod: Obj, ref: Obj, *, allocatable: Mapping[str, str], default_container: str = "") -> str:
    """``resourceFieldRef`` of a downwardAPI item (``containerName`` is required in volumes)."""
    resource = str(ref.get("resource") or "")
    if resource not in _RESOURCES:
        raise SourceError(f"unsupported container resource : {resource}")
    name = str(ref.get("containerName") or default_container)
    spec = pod.get("spec") or {}
    container = next((c for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
                      if c.get("name") == name), None)
    if container is None:
        raise SourceError(f"container {name} not found")
    kind, res = resource.split(".", 1)
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if kind == "limits":
        raw = limits.get(res, allocatable.get(res, "0"))
    else:
        raw = requests.get(res, limits.get(res, "0"))
    try:
        amount = parse_quantity(str(raw))
        divisor = parse_quantity(str(ref.get("divisor") or "1"))
    except QuantityError as e:
        raise SourceError(f"resourceFieldRef {resource}: {e}") from None
    if divisor <= 0:
        raise SourceError(f"resourceFieldRef {resource}: divisor must be positive")
    if res == "cpu":
        # In milli-units first, as Kubernetes does (MilliValue), then rounded up.
        return str(math.ceil(math.ceil(amount * 1000) / math.ceil(divisor * 1000)))
    return str(math.ceil(math.ceil(amount) / math.ceil(divisor)))


def expand(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("$(", i) and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2:end]
            out.append(env[name] if name in env else text[i:end + 1])
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


__all__ = ["expand", "field_value", "format_map", "resource_value"]
