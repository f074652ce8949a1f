"""Which pods back a Service, and on which port (pure): shared by the Endpoints and EndpointSlice
controllers, after Kubernetes' ``endpointsliceutil`` and ``podutil.FindPort``.

Data flow: a pod (and a Service's selector or port) -> whether the pod matches the selector, is
ready, belongs in the endpoints at all, and which of its ports a Service port's ``targetPort`` names.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

HEADLESS_LABEL = "service.kubernetes.io/headless"


def selector_matches(selector: dict[str, str], labels: dict[str, str] | None) -> bool:
    """A Service selector (a plain map) matches when every pair is among the labels."""
    have = labels or {}
    return all(have.get(k) == v for k, v in selector.items())


def is_pod_ready(pod: Obj) -> bool:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready":
            return bool(c.get("status") == "True")
    return False


def should_pod_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """Kubernetes' ``endpointsliceutil.ShouldPodBeInEndpoints``."""
    status = pod.get("status") or {}
    if not status.get("podIP") and not status.get("podIPs"):
        return False
    if not include_terminating and (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    phase = status.get("phase")
    policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
    if policy == "Never":
        return phase not in ("Failed", "Succeeded")
    if policy == "OnFailure":
        return phase != "Succeeded"
    return True


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The pod's port for one Service port: ``targetPort`` as a number, or a named container port."""
    target = service_port.get("targetPort")
    if target is None or target == "":
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def with_headless_label(labels: dict[str, str], service: Obj) -> dict[str, str]:
    """``labels`` with ``service.kubernetes.io/headless`` set for a headless Service, removed otherwise."""
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    else:
        labels.pop(HEADLESS_LABEL, None)
    return labels
