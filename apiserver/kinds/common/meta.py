"""Facts of the meta/v1 types every kind embeds, and of the subresource bodies (Scale, Binding).

Role: ObjectMeta's merge facts (ownerReferences keyed by uid, finalizers a set, ...), the atomic
structs (LabelSelector, OwnerReference, ObjectReference), and the protobuf tables of these types,
which every kind's module adds to its own (see ``Strategy.type_facts``/``protobuf_messages``).
Transcribed from the ``+listType``/``patchStrategy`` tags of k8s.io/apimachinery and k8s.io/api.
"""

from __future__ import annotations

from ...openapi.facts import ATOMIC, Facts, keyed

TYPE_FACTS: dict[str, dict[str, Facts]] = {
    "V1ObjectMeta": {
        "ownerReferences": keyed("uid"),
        "finalizers": Facts(patch_strategy="merge", list_type="set"),
        "managedFields": Facts(list_type="atomic"),
    },
    "V1OwnerReference": {"": ATOMIC},
    "V1LabelSelector": {"": ATOMIC, "matchExpressions": Facts(list_type="atomic")},
    "V1LabelSelectorRequirement": {"values": Facts(list_type="atomic")},
    "V1ObjectReference": {"": ATOMIC},
    "V1LocalObjectReference": {"": ATOMIC},
    "V1TypedLocalObjectReference": {"": ATOMIC},
    "V1DeleteOptions": {"dryRun": Facts(list_type="atomic")},
}

PROTOBUF_MESSAGES: dict[str, str] = {
    "ObjectMeta": (
        "name:1:s generateName:2:s namespace:3:s selfLink:4:s uid:5:s resourceVersion:6:s "
        "generation:7:i creationTimestamp:8:Time deletionTimestamp:9:Time "
        "deletionGracePeriodSeconds:10:i! labels:11:{s} annotations:12:{s} "
        "ownerReferences:13:*OwnerReference finalizers:14:*s managedFields:17:*ManagedFieldsEntry"),
    "OwnerReference": "apiVersion:5:s! kind:1:s! name:3:s! uid:4:s! controller:6:b! blockOwnerDeletion:7:b!",
    "ManagedFieldsEntry": (
        "manager:1:s operation:2:s apiVersion:3:s time:4:Time fieldsType:6:s fieldsV1:7:FieldsV1 "
        "subresource:8:s"),
    "LabelSelector": "matchLabels:1:{s} matchExpressions:2:*LabelSelectorRequirement",
    "LabelSelectorRequirement": "key:1:s! operator:2:s! values:3:*s",
    "ObjectReference": (
        "kind:1:s namespace:2:s name:3:s uid:4:s apiVersion:5:s resourceVersion:6:s fieldPath:7:s"),
    "TypedLocalObjectReference": "apiGroup:1:s! kind:2:s! name:3:s!",
    "Condition": (
        "type:1:s! status:2:s! observedGeneration:3:i lastTransitionTime:4:Time reason:5:s! "
        "message:6:s!"),
    "Preconditions": "uid:1:s! resourceVersion:2:s!",
    "DeleteOptions": (
        "gracePeriodSeconds:1:i! preconditions:2:Preconditions orphanDependents:3:b! "
        "propagationPolicy:4:s! dryRun:5:*s ignoreStoreReadErrorWithClusterBreakingPotential:6:b!"),
    "Scale": "metadata:1:ObjectMeta spec:2:ScaleSpec status:3:ScaleStatus",
    "ScaleSpec": "replicas:1:i",
    "ScaleStatus": "replicas:1:i! selector:2:s",
    "Binding": "metadata:1:ObjectMeta target:2:ObjectReference",
}
