"""Pod (core/v1): the unit the scheduler places and a kubelet runs.

After pkg/registry/core/pod and the admission plugins that touch every pod:

- create: ``status`` starts ``Pending`` with its QoS class (and ``PodScheduled`` when the client
  already named a node); ``spec.ephemeralContainers`` is Forbidden (they are added through their
  own subresource); DefaultTolerationSeconds adds the ``not-ready``/``unreachable`` NoExecute
  tolerations a pod lacks (``RegistrySettings.default_*_toleration_seconds``, 300 s);
- update: the spec is immutable except images, activeDeadlineSeconds, added tolerations and a
  negative grace period becoming 1 (``ValidatePodUpdate``);
- binding: ``pods/binding`` sets ``spec.nodeName`` once, with ``PodScheduled=True``;
- delete: a pod on a node waits ``terminationGracePeriodSeconds`` for its kubelet; the kubelet
  finishes it with a grace-0 delete.

The row of ``kubectl get pods`` is in ``pod_table.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery import errors

from ...openapi.facts import Facts, keyed
from ...validation.fielderrors import Causes, Obj, forbidden, get_map, invalid
from ...validation.podspec import validate_pod_spec
from ..base import CreateContext, Strategy
from ..common.defaulting import map_at, maps_at
from ..common.podtemplate import default_pod_spec, requests_from_limits
from . import ephemeral, pod_table

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300
POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)
_ATOMIC_LIST = Facts(list_type="atomic")


def now_rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_scheduled(now: datetime) -> dict[str, Any]:
    return {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now_rfc3339(now)}


def qos_class(pod_spec: Mapping[str, Any]) -> str:
    """BestEffort / Burstable / Guaranteed from the containers' requests and limits."""
    containers = list(pod_spec.get("containers") or []) + list(pod_spec.get("initContainers") or [])
    any_set, guaranteed = False, True
    for c in containers:
        resources = c.get("resources") or {}
        req, lim = resources.get("requests") or {}, resources.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or str(req.get(r, lim[r])) != str(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def add_default_tolerations(pod_spec: Obj, *, not_ready_seconds: int, unreachable_seconds: int) -> None:
    """The DefaultTolerationSeconds admission plugin: tolerate a not-ready or unreachable node for
    a while (then the node lifecycle controller evicts), unless the pod already says otherwise."""
    tolerations = pod_spec.get("tolerations")
    if tolerations is None:
        tolerations = []
    if not isinstance(tolerations, list):
        return  # validation reports it
    present = [t for t in tolerations if isinstance(t, dict)]

    def tolerates(taint: str) -> bool:
        return any(t.get("key") in (taint, "", None) and t.get("effect") in ("NoExecute", "", None) for t in present)

    for taint, seconds in ((NOT_READY_TAINT, not_ready_seconds), (UNREACHABLE_TAINT, unreachable_seconds)):
        if not tolerates(taint):
            tolerations.append({"key": taint, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": seconds})
    pod_spec["tolerations"] = tolerations


class PodStrategy(Strategy):
    kind = "Pod"
    plural = "pods"
    singular = "pod"
    short_names = ("po",)
    categories = ("all",)
    subresources = ("status", "binding", "eviction", "log", "ephemeralcontainers", "exec", "attach", "portforward",
                    "proxy")
    spec_subresources = (ephemeral.SUBRESOURCE,)
    model = "V1Pod"
    selectable_fields = ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                         "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName")
    columns = pod_table.COLUMNS
    type_facts = {
        "V1PodStatus": {
            "conditions": keyed("type"),
            "hostIPs": Facts(patch_strategy="merge", merge_key="ip", list_type="atomic"),
            "podIPs": keyed("ip"),
            "initContainerStatuses": _ATOMIC_LIST,
            "containerStatuses": _ATOMIC_LIST,
            "ephemeralContainerStatuses": _ATOMIC_LIST,
            "resourceClaimStatuses": keyed("name", retain_keys=True),
        },
        "V1ContainerStatus": {"volumeMounts": keyed("mountPath"), "allocatedResourcesStatus": keyed("name")},
    }
    protobuf_messages = {
        "Pod": "metadata:1:ObjectMeta spec:2:PodSpec status:3:PodStatus",
        "PodStatus": (
            "observedGeneration:17:i phase:1:s conditions:2:*PodCondition message:3:s reason:4:s "
            "nominatedNodeName:11:s hostIP:5:s hostIPs:16:*HostIP podIP:6:s podIPs:12:*PodIP "
            "startTime:7:Time initContainerStatuses:10:*ContainerStatus "
            "containerStatuses:8:*ContainerStatus qosClass:9:s "
            "ephemeralContainerStatuses:13:*ContainerStatus resize:14:s "
            "resourceClaimStatuses:15:*PodResourceClaimStatus "
            "extendedResourceClaimStatus:18:PodExtendedResourceClaimStatus "
            "allocatedResources:19:{Quantity} resources:20:ResourceRequirements "
            "nodeAllocatableResourceClaimStatuses:21:*NodeAllocatableResourceClaimStatus "
            "volumeHealth:22:*PodVolumeHealth"),
        "PodCondition": (
            "type:1:s! observedGeneration:7:i status:2:s! lastProbeTime:3:Time "
            "lastTransitionTime:4:Time reason:5:s message:6:s"),
        "HostIP": "ip:1:s!",
        "PodIP": "ip:1:s!",
        "ContainerStatus": (
            "name:1:s! state:2:ContainerState lastState:3:ContainerState ready:4:b! restartCount:5:i! "
            "image:6:s! imageID:7:s! containerID:8:s started:9:b! allocatedResources:10:{Quantity} "
            "resources:11:ResourceRequirements volumeMounts:12:*VolumeMountStatus "
            "user:13:ContainerUser allocatedResourcesStatus:14:*ResourceStatus stopSignal:15:s!"),
        "ContainerState": (
            "waiting:1:ContainerStateWaiting running:2:ContainerStateRunning "
            "terminated:3:ContainerStateTerminated"),
        "ContainerStateWaiting": "reason:1:s message:2:s",
        "ContainerStateRunning": "startedAt:1:Time",
        "ContainerStateTerminated": (
            "exitCode:1:i! signal:2:i reason:3:s message:4:s startedAt:5:Time finishedAt:6:Time "
            "containerID:7:s"),
        "VolumeMountStatus": (
            "name:1:s! mountPath:2:s! readOnly:3:b recursiveReadOnly:4:s! volumeStatus:5:VolumeStatus"),
        "VolumeStatus": "image:1:ImageVolumeStatus",
        "ImageVolumeStatus": "imageRef:1:s",
        "ContainerUser": "linux:1:LinuxContainerUser",
        "LinuxContainerUser": "uid:1:i! gid:2:i! supplementalGroups:3:*i",
        "ResourceStatus": "name:1:s! resources:2:*ResourceHealth",
        "ResourceHealth": "resourceID:1:s! health:2:s message:6:s!",
        "PodResourceClaimStatus": "name:1:s! resourceClaimName:2:s!",
        "PodExtendedResourceClaimStatus": (
            "requestMappings:1:*ContainerExtendedResourceRequest resourceClaimName:2:s!"),
        "ContainerExtendedResourceRequest": "containerName:1:s! resourceName:2:s! requestName:3:s!",
        "NodeAllocatableResourceClaimStatus": (
            "resourceClaimName:1:s! containers:2:*s mapping:4:*NodeAllocatableMappedResources "
            "overhead:5:*NodeAllocatableOverheadResources"),
        "NodeAllocatableMappedResources": "name:1:s! quantity:2:Quantity",
        "NodeAllocatableOverheadResources": "name:1:s! perPod:2:Quantity perContainer:3:Quantity",
        "PodVolumeHealth": "name:1:s! healthConditions:2:*VolumeHealthCondition lastTransitionTime:3:Time",
        "VolumeHealthCondition": "status:1:s! reason:2:s! message:3:s",
    }

    def defaults(self, obj: Obj) -> None:
        pod_spec = map_at(obj, "spec", create=True)
        if pod_spec is None:
            return
        default_pod_spec(pod_spec)
        # SetDefaults_Pod: only real pods, never templates (so Deployments do not change on upgrade).
        for list_name in ("containers", "initContainers"):
            for container in maps_at(pod_spec, list_name):
                requests_from_limits(container)
        if pod_spec.get("enableServiceLinks") is None:
            pod_spec["enableServiceLinks"] = True
        if pod_spec.get("hostNetwork") is True:
            for list_name in ("containers", "initContainers"):
                for container in maps_at(pod_spec, list_name):
                    for port in maps_at(container, "ports"):
                        if port.get("hostPort") in (None, 0):
                            port["hostPort"] = port.get("containerPort")

    def prepare_for_create(self, obj: Obj, ctx: CreateContext) -> None:
        raw_spec = obj.get("spec")
        pod_spec: Obj = raw_spec if isinstance(raw_spec, dict) else {}
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(pod_spec)}
        if pod_spec.get("nodeName"):
            obj["status"]["conditions"] = [pod_scheduled(ctx.now)]
        settings = ctx.settings
        add_default_tolerations(
            pod_spec,
            not_ready_seconds=int(getattr(settings, "default_not_ready_toleration_seconds", DEFAULT_TOLERATION_SECONDS)),
            unreachable_seconds=int(getattr(settings, "default_unreachable_toleration_seconds",
                                            DEFAULT_TOLERATION_SECONDS)))

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        pod_spec = get_map(obj, "spec", "", causes)
        return causes + validate_pod_spec(pod_spec, "spec", is_pod=True) + ephemeral.validate_spec(pod_spec, "spec")

    def validate_create(self, obj: Obj) -> Causes:
        pod_spec = obj.get("spec")
        if isinstance(pod_spec, dict) and pod_spec.get("ephemeralContainers"):
            return [forbidden("spec.ephemeralContainers", "cannot be set on create")]
        return []

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return pod_update_causes(new, old)

    def prepare_for_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Obj:
        return ephemeral.merge_update(new, old)

    def validate_subresource_update(self, subresource: str, new: Obj, old: Obj) -> Causes:
        return self.validate(new) + ephemeral.update_causes(new, old)

    def grace_period_seconds(self, obj: Obj, options: Mapping[str, Any]) -> int:
        pod_spec = obj.get("spec") or {}
        phase = (obj.get("status") or {}).get("phase")
        if not pod_spec.get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0  # no kubelet has to stop anything
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = pod_spec.get("terminationGracePeriodSeconds", 30)
        try:
            return max(0, int(grace))
        except (TypeError, ValueError):
            raise errors.BadRequestError(message=f"invalid gracePeriodSeconds {grace!r}")

    def finished_by_update(self, obj: Obj) -> bool:
        """A pod being deleted gracefully stays until its kubelet deletes it with grace 0."""
        return int((obj.get("metadata") or {}).get("deletionGracePeriodSeconds") or 0) == 0

    def bind(self, current: Obj, *, node: str, now: datetime) -> Obj:
        """``pods/binding``: host and PodScheduled=True in the same write (on a private copy)."""
        name = (current.get("metadata") or {}).get("name", "")
        pod_spec = current.setdefault("spec", {})
        if current["metadata"].get("deletionTimestamp"):
            raise errors.ConflictError(message=f"pod {name} is being deleted, cannot be assigned to a host")
        if pod_spec.get("nodeName"):
            raise errors.ConflictError(message=f"pod {name} is already assigned to node \"{pod_spec['nodeName']}\"",
                                       name=name, kind="pods")
        pod_spec["nodeName"] = node
        state = current.setdefault("status", {})
        conditions = [c for c in state.get("conditions") or [] if c.get("type") != "PodScheduled"]
        state["conditions"] = [pod_scheduled(now)] + conditions
        return current

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return pod_table.pod_cells(obj, now)

    def row_conditions(self, obj: Mapping[str, Any]) -> list[Obj] | None:
        return pod_table.row_conditions(obj)


def pod_update_causes(new: Obj, old: Obj) -> Causes:
    """ValidatePodUpdate: spec is immutable except images, deadline, added tolerations, grace -> 1."""
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return []
    causes: Causes = []
    new_deadline, old_deadline = new_spec.get("activeDeadlineSeconds"), old_spec.get("activeDeadlineSeconds")
    if old_deadline is not None and new_deadline is None:
        causes.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    elif isinstance(old_deadline, int) and isinstance(new_deadline, int) and new_deadline > old_deadline:
        causes.append(invalid("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"))
    new_tolerations = new_spec.get("tolerations") or []
    old_tolerations = old_spec.get("tolerations") or []
    if isinstance(new_tolerations, list) and isinstance(old_tolerations, list):
        def same(a: Any, b: Any) -> bool:
            if not isinstance(a, dict) or not isinstance(b, dict):
                return bool(a == b)
            return ({k: v for k, v in a.items() if k != "tolerationSeconds"}
                    == {k: v for k, v in b.items() if k != "tolerationSeconds"})
        if any(not any(same(o, n) for n in new_tolerations) for o in old_tolerations):
            causes.append(forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
    # Compare everything else: copy the mutable fields from new into a copy of old.
    mutable = copy.deepcopy(old_spec)
    for list_name in ("containers", "initContainers"):
        new_list, old_list = new_spec.get(list_name), mutable.get(list_name)
        if isinstance(new_list, list) and isinstance(old_list, list) and len(new_list) == len(old_list):
            for new_c, old_c in zip(new_list, old_list):
                if isinstance(new_c, dict) and isinstance(old_c, dict) and "image" in new_c:
                    old_c["image"] = new_c["image"]
    for name in ("activeDeadlineSeconds", "tolerations"):
        if name in new_spec:
            mutable[name] = new_spec[name]
        else:
            mutable.pop(name, None)
    old_grace = old_spec.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and new_spec.get("terminationGracePeriodSeconds") == 1:
        mutable["terminationGracePeriodSeconds"] = 1
    if mutable != new_spec:
        changed = sorted(k for k in set(mutable) | set(new_spec) if mutable.get(k) != new_spec.get(k))
        causes.append(forbidden("spec", POD_UPDATE_FORBIDDEN + "\n  changed: " + ", ".join(f"spec.{k}" for k in changed)))
    return causes


STRATEGY = PodStrategy()
