"""Well-known facts of Kubernetes types that the generated client cannot tell: the standard
descriptions, the scalar types it flattens (Time, MicroTime, IntOrString, Quantity, FieldsV1,
RawExtension, Patch) with their v3 schemas, and which fields hold them.

Pure data; ``components`` reads it.
"""

from __future__ import annotations

from typing import Any

from . import names

Schema = dict[str, Any]

API_VERSION_DESC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should "
    "convert recognized schemas to the latest internal value, and may reject unrecognized values. "
    "More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
KIND_DESC = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer "
    "this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
OBJECT_META_DESC = (
    "Standard object's metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
LIST_META_DESC = (
    "Standard list metadata. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")

# The types the generated client flattens to str/datetime/object, as Kubernetes publishes them.
SCALARS: dict[str, Schema] = {
    names.TIME: {"description": "Time is a wrapper around time.Time which supports correct marshaling to "
                 "YAML and JSON. It is represented as an RFC 3339 date-time in UTC.",
                 "type": "string", "format": "date-time"},
    names.MICRO_TIME: {"description": "MicroTime is version of Time with microsecond level precision.",
                       "type": "string", "format": "date-time"},
    names.INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string. When used in JSON or "
                       "YAML marshalling and unmarshalling, it produces or consumes the inner type.",
        "format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}],
        "x-kubernetes-int-or-string": True},
    names.QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number, serialized as a string "
                       "such as \"100m\", \"1.5Gi\" or \"2\" (<number><suffix>, suffixes Ki Mi Gi Ti Pi Ei, "
                       "m k M G T P E, or a decimal exponent such as 1e3).",
        "oneOf": [{"type": "string"}, {"type": "number"}]},
    names.FIELDS_V1: {"description": "FieldsV1 stores a set of fields in a data structure like a Trie, "
                      "in JSON format.", "type": "object"},
    names.RAW_EXTENSION: {"description": "RawExtension is used to hold extensions in external versions: "
                          "any complete object, with its apiVersion and kind.", "type": "object"},
    names.PATCH: {"description": "Patch is provided to give a concrete name and type to the Kubernetes "
                  "PATCH request body.", "type": "object"},
}

# Fields the client types as str / Dict[str, str] that are resource.Quantity in Kubernetes.
QUANTITY_FIELDS = frozenset({
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1NodeStatus", "capacity"), ("V1NodeStatus", "allocatable"),
    ("V1PersistentVolumeSpec", "capacity"), ("V1PersistentVolumeClaimStatus", "capacity"),
    ("V1PersistentVolumeClaimStatus", "allocatedResources"), ("V1ResourceQuotaSpec", "hard"),
    ("V1ResourceQuotaStatus", "hard"), ("V1ResourceQuotaStatus", "used"),
    ("V1LimitRangeItem", "max"), ("V1LimitRangeItem", "min"), ("V1LimitRangeItem", "default"),
    ("V1LimitRangeItem", "defaultRequest"), ("V1LimitRangeItem", "maxLimitRequestRatio"),
    ("V1PodSpec", "overhead"), ("V1ContainerStatus", "allocatedResources"), ("V1Overhead", "podFixed"),
    ("V1EmptyDirVolumeSource", "sizeLimit"), ("V1ResourceFieldSelector", "divisor"),
    ("V1CSIStorageCapacity", "capacity"), ("V1CSIStorageCapacity", "maximumVolumeSize"),
    ("V2MetricTarget", "value"), ("V2MetricTarget", "averageValue"),
    ("V2MetricValueStatus", "value"), ("V2MetricValueStatus", "averageValue"),
})
MICRO_TIME_FIELDS = frozenset({
    ("CoreV1Event", "eventTime"), ("EventsV1Event", "eventTime"), ("CoreV1EventSeries", "lastObservedTime"),
    ("EventsV1EventSeries", "lastObservedTime"), ("V1LeaseSpec", "acquireTime"), ("V1LeaseSpec", "renewTime"),
})
NAMED_OBJECTS = {("V1ManagedFieldsEntry", "fieldsV1"): names.FIELDS_V1,
                  ("V1WatchEvent", "object"): names.RAW_EXTENSION,
                  ("V1ControllerRevision", "data"): names.RAW_EXTENSION}
# apiextensions JSON / JSONSchemaPropsOrArray / ...OrBool: any JSON value.
ANY_JSON_MODELS = frozenset({"V1JSONSchemaProps"})
# meta/v1 kinds every group version serves (DeleteOptions and WatchEvent get one tag per group
# version of the document when it is assembled).
META_KINDS = {names.STATUS: "Status", names.DELETE_OPTIONS: "DeleteOptions",
              names.WATCH_EVENT: "WatchEvent", names.API_RESOURCE_LIST: "APIResourceList"}
META_MODELS = {"V1Status": names.STATUS, "V1DeleteOptions": names.DELETE_OPTIONS,
                "V1WatchEvent": names.WATCH_EVENT, "V1APIResourceList": names.API_RESOURCE_LIST}
