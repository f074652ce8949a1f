"""A StatefulSet's members and their claims, as pure functions over wire dicts.

Role: what the StatefulSet planner (``controllers.statefulsetplan``) knows about one member pod,
after Kubernetes' pkg/controller/statefulset/stateful_set_utils.go: the ordinal in a pod's name
(``<set>-<ordinal>``), the pod built for an ordinal (name, hostname and subdomain = the governing
Service, the labels ``statefulset.kubernetes.io/pod-name``, ``apps.kubernetes.io/pod-index`` and
``controller-revision-hash``, one ``persistentVolumeClaim`` volume per volumeClaimTemplate), the
claims of a member (``<template>-<set>-<ordinal>``, labelled with the selector's matchLabels) and
the ownerReferences those claims should carry under ``persistentVolumeClaimRetentionPolicy``
(``isClaimOwnerUpToDate`` / ``updateClaimOwnerRefForSetAndPod``):

    Retain on scale-down and set deletion: no reference of ours
    Retain on scale-down, Delete on set deletion: a controller reference to the set
    Delete on scale-down, Retain on set deletion: a reference to the pod, once it is scaled down
    Delete on both: the set while the pod is in range, the pod once it is scaled down

so the garbage collector deletes the claims with their owner, as in Kubernetes.

Data flow: StatefulSet + pod/claim dicts in -> names, bodies, booleans and new reference lists
out. No I/O; nothing here changes its arguments.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from controllers.history import POD_REVISION_LABEL
from controllers.ownerrefs import Obj, controller_ref, meta, name_of, pod_from_template, uid_of

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
SET_API_VERSION, SET_KIND = "apps/v1", "StatefulSet"
_MEMBER_RE = re.compile(r"^(.*)-([0-9]+)$")
_INT32_MAX = 2**31 - 1


# ============================================================================ names and ordinals
def parent_and_ordinal(pod: Mapping[str, Any]) -> tuple[str, int]:
    """``getParentNameAndOrdinal``: ("", -1) for a name that is not ``<parent>-<digits>``."""
    match = _MEMBER_RE.match(str((pod.get("metadata") or {}).get("name") or ""))
    if match is None:
        return "", -1
    ordinal = int(match.group(2))
    return match.group(1), ordinal if ordinal <= _INT32_MAX else -1


def ordinal_of(pod: Mapping[str, Any]) -> int:
    return parent_and_ordinal(pod)[1]


def is_member(sts: Obj, pod: Obj) -> bool:
    """``isMemberOf``: the pod's name says it belongs to this set."""
    return parent_and_ordinal(pod)[0] == name_of(sts)


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{name_of(sts)}-{ordinal}"


def claim_name(template_name: str, sts: Obj, ordinal: int) -> str:
    return f"{template_name}-{name_of(sts)}-{ordinal}"


def _spec(sts: Mapping[str, Any]) -> Mapping[str, Any]:
    return sts.get("spec") or {}


def start_ordinal(sts: Mapping[str, Any]) -> int:
    ordinals = _spec(sts).get("ordinals") or {}
    return int(ordinals.get("start") or 0)


def replicas_of(sts: Mapping[str, Any]) -> int:
    value = _spec(sts).get("replicas")
    return 1 if value is None else int(value)


def in_range(sts: Mapping[str, Any], ordinal: int) -> bool:
    """``podInOrdinalRange``: start <= ordinal < start + replicas."""
    start = start_ordinal(sts)
    return start <= ordinal < start + replicas_of(sts)


def pod_revision(pod: Mapping[str, Any]) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(POD_REVISION_LABEL) or "")


def claim_templates(sts: Mapping[str, Any]) -> list[Obj]:
    """The volumeClaimTemplates that can become claims (a template needs a name)."""
    out = []
    for claim in _spec(sts).get("volumeClaimTemplates") or []:
        if isinstance(claim, dict) and (claim.get("metadata") or {}).get("name"):
            out.append(claim)
    return out


# ============================================================================ member pods
def identity_labels(sts: Obj, ordinal: int) -> dict[str, str]:
    """``updateIdentity``'s labels (PodIndexLabel is on by default since 1.28)."""
    return {POD_NAME_LABEL: pod_name(sts, ordinal), POD_INDEX_LABEL: str(ordinal)}


def identity_matches(sts: Obj, pod: Obj) -> bool:
    """``identityMatches``: the right name, namespace and pod-name label."""
    parent, ordinal = parent_and_ordinal(pod)
    labels = meta(pod).get("labels") or {}
    return (ordinal >= 0 and parent == name_of(sts) and meta(pod).get("namespace") == meta(sts).get("namespace")
            and labels.get(POD_NAME_LABEL) == name_of(pod))


def new_pod(sts: Obj, ordinal: int, revision: str) -> Obj:
    """``newStatefulSetPod`` + ``setPodRevision``: the pod of ``ordinal`` from ``sts``'s template
    (``sts`` already carries the template of ``revision``, see ``history.apply_revision``)."""
    template = _spec(sts).get("template") or {}
    pod = pod_from_template(template, sts, api_version=SET_API_VERSION, kind=SET_KIND)
    name = pod_name(sts, ordinal)
    pod["metadata"]["name"] = name
    labels = pod["metadata"].setdefault("labels", {})
    labels.update(identity_labels(sts, ordinal))
    labels[POD_REVISION_LABEL] = revision
    pod_spec = pod["spec"]
    pod_spec["hostname"] = name
    service = _spec(sts).get("serviceName")
    if service:
        pod_spec["subdomain"] = service
    claims = {t["metadata"]["name"]: claim_name(t["metadata"]["name"], sts, ordinal) for t in claim_templates(sts)}
    volumes = [{"name": volume, "persistentVolumeClaim": {"claimName": claim}} for volume, claim in claims.items()]
    volumes += [v for v in pod_spec.get("volumes") or [] if not (isinstance(v, dict) and v.get("name") in claims)]
    if volumes:
        pod_spec["volumes"] = volumes
    return pod


# ============================================================================ claims
def claims_for(sts: Obj, ordinal: int) -> list[Obj]:
    """``getPersistentVolumeClaims``: the claim bodies of one member (no ownerReferences yet)."""
    match_labels = (_spec(sts).get("selector") or {}).get("matchLabels") or {}
    out = []
    for template in claim_templates(sts):
        claim = copy.deepcopy(template)
        claim.pop("status", None)
        claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
        claim_meta = claim.setdefault("metadata", {})
        claim_meta["name"] = claim_name(template["metadata"]["name"], sts, ordinal)
        claim_meta["namespace"] = meta(sts).get("namespace")
        claim_meta["labels"] = {**(claim_meta.get("labels") or {}), **match_labels}
        for server_set in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            claim_meta.pop(server_set, None)
        out.append(claim)
    return out


def retention_policy(sts: Mapping[str, Any]) -> tuple[str, str]:
    """(whenDeleted, whenScaled), Retain when unset."""
    policy = _spec(sts).get("persistentVolumeClaimRetentionPolicy") or {}
    return str(policy.get("whenDeleted") or "Retain"), str(policy.get("whenScaled") or "Retain")


def _refs(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in (obj.get("metadata") or {}).get("ownerReferences") or [] if isinstance(r, dict)]


def _matches_ref(ref: Mapping[str, Any], name: str, api_version: str, kind: str) -> bool:
    return ref.get("apiVersion") == api_version and ref.get("kind") == kind and ref.get("name") == name


def _is_set_ref(ref: Mapping[str, Any], sts: Obj) -> bool:
    return _matches_ref(ref, name_of(sts), SET_API_VERSION, SET_KIND)


def _is_pod_ref(ref: Mapping[str, Any], pod_name_: str) -> bool:
    return _matches_ref(ref, pod_name_, "v1", "Pod")


def has_stale_pod_ref(claim: Obj, pod_name_: str, pod_uid: str) -> bool:
    """``hasStaleOwnerRef`` for the pod: a reference to a pod of that name with another uid
    (a pod that does not exist yet has no uid, so any such reference is stale)."""
    for ref in _refs(claim):
        if _is_pod_ref(ref, pod_name_):
            return ref.get("uid") != pod_uid
    return False


def _has_stale_set_ref(claim: Obj, sts: Obj) -> bool:
    for ref in _refs(claim):
        if _is_set_ref(ref, sts):
            return ref.get("uid") != uid_of(sts)
    return False


def _unexpected_controller(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """``hasUnexpectedController``: under a Delete policy, another controller owns the claim."""
    if retention_policy(sts) == ("Retain", "Retain"):
        return False
    for ref in _refs(claim):
        if _is_set_ref(ref, sts):
            if ref.get("uid") != uid_of(sts):
                return True
            continue
        if _is_pod_ref(ref, name_of(pod)):
            if ref.get("uid") != uid_of(pod):
                return True
            continue
        if ref.get("controller"):
            return True
    return False


def _has_ref(claim: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in _refs(claim))


def claim_refs_up_to_date(claim: Obj, sts: Obj, pod: Obj) -> bool:
    """``isClaimOwnerUpToDate``: the claim's references follow the retention policy (claims with
    stale or foreign controllers are left alone)."""
    if _has_stale_set_ref(claim, sts) or has_stale_pod_ref(claim, name_of(pod), uid_of(pod)):
        return True
    set_uid, pod_uid = uid_of(sts), uid_of(pod)
    if _unexpected_controller(claim, sts, pod):
        return not (_has_ref(claim, set_uid) or _has_ref(claim, pod_uid))
    for ref in _refs(claim):
        if ref.get("uid") in (set_uid, pod_uid) and not ref.get("controller"):
            return False
    want_set, want_pod = _wanted_refs(sts, pod)
    return _has_ref(claim, set_uid) == want_set and _has_ref(claim, pod_uid) == want_pod


def _wanted_refs(sts: Obj, pod: Obj) -> tuple[bool, bool]:
    when_deleted, when_scaled = retention_policy(sts)
    scaled_down = not in_range(sts, ordinal_of(pod))
    if when_scaled == "Delete":
        return (when_deleted == "Delete" and not scaled_down), scaled_down
    return when_deleted == "Delete", False


def claim_refs_for_policy(claim: Obj, sts: Obj, pod: Obj) -> list[dict[str, Any]]:
    """``updateClaimOwnerRefForSetAndPod``: the claim's ownerReferences under the policy."""
    unexpected = _unexpected_controller(claim, sts, pod)
    refs = [copy.deepcopy(r) for r in _refs(claim) if not (_is_set_ref(r, sts) or _is_pod_ref(r, name_of(pod)))]
    if unexpected:
        return refs
    want_set, want_pod = _wanted_refs(sts, pod)
    if want_pod and uid_of(pod):
        refs.append(controller_ref(pod, api_version="v1", kind="Pod"))
    if want_set:
        refs.append(controller_ref(sts, api_version=SET_API_VERSION, kind=SET_KIND))
    return refs


__all__ = [
    "POD_INDEX_LABEL", "POD_NAME_LABEL", "claim_name", "claim_refs_for_policy", "claim_refs_up_to_date",
    "claim_templates", "claims_for", "has_stale_pod_ref", "identity_labels", "identity_matches", "in_range",
    "is_member", "new_pod", "ordinal_of", "parent_and_ordinal", "pod_name", "pod_revision", "replicas_of",
    "retention_policy", "start_ordinal",
]
