"""CustomResourceDefinition objects: v1 defaulting, the strategy's status handling, and validation causes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from apiserver.crd import (apply_defaults, prepare_for_create, prepare_for_update, validate_crd,
                           validate_crd_status_update, validate_crd_update, warnings)

Obj = dict[str, Any]

CRON_SCHEMA: Obj = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "cronSpec": {"type": "string"}, "image": {"type": "string"}, "replicas": {"type": "integer"}}}}}

DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def crontab_crd() -> Obj:
    """The CronTab CRD of the docs' "Create a CustomResourceDefinition"."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": copy.deepcopy(CRON_SCHEMA)}}],
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
        },
    }


def created(crd: Obj) -> list[str]:
    apply_defaults(crd)
    prepare_for_create(crd)
    return [str(c) for c in validate_crd(crd)]


def versions_value(*versions: tuple[str, bool, bool]) -> str:
    """How Go prints the internal []CustomResourceDefinitionVersion (shared fields moved to the top)."""
    return "[" + ",".join(
        f'{{"Name":"{n}","Served":{str(served).lower()},"Storage":{str(storage).lower()},"Deprecated":false,'
        '"DeprecationWarning":null,"Schema":null,"Subresources":null,"AdditionalPrinterColumns":null,'
        '"SelectableFields":null}' for n, served, storage in versions) + "]"


# ============================================================================ the documented CRDs

def docs_variants() -> list[tuple[str, Obj]]:
    basic = crontab_crd()
    validation = crontab_crd()
    validation["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"].update({
        "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10}})
    defaulting = copy.deepcopy(validation)
    props = defaulting["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["cronSpec"]["default"] = "5 0 * * *"
    props["replicas"]["default"] = 1
    columns = crontab_crd()
    columns["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Spec", "type": "string", "description": "The cron spec defining the interval a CronJob is run",
         "jsonPath": ".spec.cronSpec"},
        {"name": "Replicas", "type": "integer", "description": "The number of jobs launched by the CronJob",
         "jsonPath": ".spec.replicas"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
    subresources = crontab_crd()
    schema = subresources["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["status"] = {"type": "object", "properties": {
        "replicas": {"type": "integer"}, "labelSelector": {"type": "string"}}}
    subresources["spec"]["versions"][0]["subresources"] = {"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.labelSelector"}}
    two_versions = crontab_crd()
    two_versions["spec"]["versions"].insert(0, {"name": "v1beta1", "served": True, "storage": False,
                                                "deprecated": True, "deprecationWarning": "use v1",
                                                "schema": {"openAPIV3Schema": copy.deepcopy(CRON_SCHEMA)}})
    selectable = crontab_crd()
    selectable["spec"]["versions"][0]["selectableFields"] = [{"jsonPath": ".spec.image"}]
    return [("basic", basic), ("validation", validation), ("defaulting", defaulting), ("printer columns", columns),
            ("status and scale subresources", subresources), ("two versions", two_versions),
            ("selectable fields", selectable)]


@pytest.mark.parametrize("name, crd", docs_variants(), ids=[d[0] for d in docs_variants()])
def test_documented_crds_are_valid(name: str, crd: Obj) -> None:
    assert created(crd) == []


def test_v1_defaults_and_create_status() -> None:
    crd = crontab_crd()
    del crd["spec"]["names"]["singular"]
    crd["status"] = {"storedVersions": ["v0"], "acceptedNames": {"kind": "X"}}
    apply_defaults(crd)
    prepare_for_create(crd)
    assert crd["spec"]["names"]["singular"] == "crontab"
    assert crd["spec"]["names"]["listKind"] == "CronTabList"
    assert crd["spec"]["conversion"] == {"strategy": "None"}
    assert crd["status"] == {"storedVersions": ["v1"]}
    assert crd["metadata"]["generation"] == 1


# ============================================================================ create failures

def mutate(fn: Callable[[Obj], object]) -> Obj:
    crd = crontab_crd()
    fn(crd)
    return crd


def _set(path: str, value: Any) -> Callable[[Obj], object]:
    def apply(crd: Obj) -> None:
        *head, last = path.split(".")
        target: Any = crd
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return apply


SPEC_SCHEMA_TYPE = "openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"

CREATE_CASES: list[tuple[str, Callable[[Obj], object], list[str]]] = [
    ("name is not plural.group", _set("metadata.name", "crontab.stable.example.com"),
     ['metadata.name: Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group']),
    ("group without a dot", lambda c: (c["spec"].update(group="example"), c["metadata"].update(name="crontabs.example")),
     ['spec.group: Invalid value: "example": should be a domain with at least one dot']),
    ("group not a DNS subdomain", lambda c: (c["spec"].update(group="Example.com"), c["metadata"].update(name="crontabs.Example.com")),
     ['spec.group: Invalid value: "Example.com": a lowercase RFC 1123 subdomain must consist of lower case '
      "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. "
      "'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
    ("scope", _set("spec.scope", "Global"), ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"']),
    ("no scope", lambda c: c["spec"].pop("scope"), ["spec.scope: Required value"]),
    ("no schema", lambda c: c["spec"]["versions"][0].pop("schema"), ["spec.versions[0].schema.openAPIV3Schema: Required value"]),
    ("a schema error of the only version is reported at spec.validation",
     lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop("type"),
     ["spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"]),
    ("no storage version", _set("spec.versions.0.storage", False),
     [f"spec.versions: Invalid value: {versions_value(('v1', True, False))}: must have exactly one version marked as storage version",
      "status.storedVersions: Invalid value: null: must have at least one stored version"]),
    ("version name", _set("spec.versions.0.name", "V1"),
     [f'spec.versions[0].name: Invalid value: "V1": {DNS1035}', f'spec.version: Invalid value: "V1": {DNS1035}']),
    ("names", lambda c: c["spec"]["names"].update(plural="CronTabs", shortNames=["c t"], categories=["all"], listKind="CronTab"),
     ['metadata.name: Invalid value: "crontabs.stable.example.com": must be spec.names.plural+"."+spec.group',
      f'spec.names.plural: Invalid value: "CronTabs": {DNS1035}',
      f'spec.names.shortNames[0]: Invalid value: "c t": {DNS1035}',
      'spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the same']),
    ("kind", _set("spec.names.kind", "Cron Tab"),
     [f'spec.names.kind: Invalid value: "Cron Tab": may have mixed case, but should otherwise match: {DNS1035}',
      f'spec.names.listKind: Invalid value: "Cron TabList": may have mixed case, but should otherwise match: {DNS1035}']),
    ("no kind", lambda c: c["spec"]["names"].pop("kind"), ["spec.names.kind: Required value", "spec.names.listKind: Required value"]),
    ("scale paths", _set("spec.versions.0.subresources", {"scale": {"specReplicasPath": "spec.replicas",
                                                                     "statusReplicasPath": ".spec.replicas",
                                                                     "labelSelectorPath": ".metadata.labels"}}),
     ['spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with .',
      'spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status',
      'spec.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either .spec or .status']),
    ("scale without paths", _set("spec.versions.0.subresources", {"scale": {}}),
     ["spec.subresources.scale.specReplicasPath: Required value", "spec.subresources.scale.statusReplicasPath: Required value"]),
    ("printer columns", _set("spec.versions.0.additionalPrinterColumns",
                             [{"name": "", "type": "datetime", "format": "ipv4", "jsonPath": "spec.x"}, {"name": "A"}]),
     ["spec.additionalPrinterColumns[0].name: Required value",
      'spec.additionalPrinterColumns[0].type: Invalid value: "datetime": must be one of boolean,date,integer,number,string',
      'spec.additionalPrinterColumns[0].format: Invalid value: "ipv4": must be one of byte,date,date-time,double,float,int32,int64,password',
      'spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.x": must be a simple json path starting with .',
      "spec.additionalPrinterColumns[1].type: Required value: must be one of boolean,date,integer,number,string",
      "spec.additionalPrinterColumns[1].JSONPath: Required value"]),
    ("selectable fields", _set("spec.versions.0.selectableFields",
                               [{"jsonPath": ".spec.nope"}, {"jsonPath": ".spec"}, {"jsonPath": ".spec.image"},
                                {"jsonPath": ".spec.image"}, {"jsonPath": ".spec.image[0]"}]),
     ['spec.selectableFields[0].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not refer to a valid field',
      'spec.selectableFields[1].jsonPath: Invalid value: ".spec": must point to a field of type string, boolean or '
      "integer. Enum string fields and strings with formats are allowed.",
      'spec.selectableFields[3].jsonPath: Duplicate value: ".spec.image"',
      'spec.selectableFields[4].jsonPath: Invalid value: ".spec.image[0]": is an invalid path: array notation is not allowed']),
    ("conversion webhook", _set("spec.conversion", {"strategy": "Webhook", "webhook": {
        "clientConfig": {"url": "https://example.com/convert"}, "conversionReviewVersions": ["v1"]}}),
     ["spec.conversion.strategy: Forbidden: minik8s serves conversion strategy None only: conversion webhooks are not supported"]),
    ("conversion strategy", _set("spec.conversion", {"strategy": "Magic"}),
     ['spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook"']),
    ("webhook settings without Webhook", _set("spec.conversion", {"strategy": "None", "webhook": {
        "clientConfig": {"url": "https://example.com"}, "conversionReviewVersions": ["v1"]}}),
     ["spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
      "spec.conversion.conversionReviewVersions: Forbidden: should not be set when strategy is not set to Webhook"]),
    ("preserveUnknownFields", _set("spec.preserveUnknownFields", True),
     ["spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields "
      "to true in spec.versions[*].schema instead"]),
    ("deprecation warning of a served version", _set("spec.versions.0.deprecationWarning", "old"),
     ['spec.versions[0].deprecationWarning: Invalid value: "old": can only be set for deprecated versions']),
]


@pytest.mark.parametrize("name, change, expected", CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
def test_create_causes(name: str, change: Callable[[Obj], object], expected: list[str]) -> None:
    assert created(mutate(change)) == expected


def two_versions(schema_v1beta1: Obj, schema_v1: Obj) -> Obj:
    crd = crontab_crd()
    crd["spec"]["versions"] = [
        {"name": "v1beta1", "served": True, "storage": False, "schema": {"openAPIV3Schema": schema_v1beta1}},
        {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema_v1}}]
    return crd


def test_schema_errors_of_differing_versions_are_reported_per_version() -> None:
    untyped = {"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}
    assert created(two_versions(untyped, copy.deepcopy(CRON_SCHEMA))) == [f"spec.versions[0].schema.{SPEC_SCHEMA_TYPE}"]


def test_schema_errors_of_identical_versions_are_reported_once_at_spec_validation() -> None:
    untyped = {"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}
    assert created(two_versions(untyped, copy.deepcopy(untyped))) == [f"spec.validation.{SPEC_SCHEMA_TYPE}"]


def test_duplicate_versions_and_two_storage_versions() -> None:
    crd = two_versions(copy.deepcopy(CRON_SCHEMA), copy.deepcopy(CRON_SCHEMA))
    crd["spec"]["versions"][0].update(name="v1", storage=True)
    value = versions_value(("v1", True, True), ("v1", True, True))
    # storedVersions holds the first storage version; Go's check forgets v1 after matching it once
    assert created(crd) == [f"spec.versions: Invalid value: {value}: must contain unique version names",
                            f"spec.versions: Invalid value: {value}: must have exactly one version marked as storage version",
                            'status.storedVersions: Invalid value: ["v1"]: must have the storage version v1']


def test_protected_groups_need_the_api_approval_annotation() -> None:
    crd = crontab_crd()
    crd["spec"]["group"] = "stable.k8s.io"
    crd["metadata"]["name"] = "crontabs.stable.k8s.io"
    assert created(copy.deepcopy(crd)) == [
        'metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval '
        'annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111']
    crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": "maybe"}
    assert created(copy.deepcopy(crd)) == [
        'metadata.annotations[api-approved.kubernetes.io]: Invalid value: "maybe": protected groups must have '
        'approval annotation "api-approved.kubernetes.io" with either a URL or a reason starting with "unapproved", '
        "see https://github.com/kubernetes/enhancements/pull/1111"]
    for value in ("https://github.com/kubernetes/kubernetes/pull/78458", "unapproved, experimental"):
        crd["metadata"]["annotations"] = {"api-approved.kubernetes.io": value}
        assert created(copy.deepcopy(crd)) == []


# ============================================================================ updates

def stored(crd: Obj) -> Obj:
    apply_defaults(crd)
    prepare_for_create(crd)
    assert validate_crd(crd) == []
    return crd


def updated(old: Obj, change: Callable[[Obj], object]) -> tuple[Obj, list[str]]:
    new = copy.deepcopy(old)
    change(new)
    apply_defaults(new)
    prepare_for_update(new, old)
    return new, [str(c) for c in validate_crd_update(new, old)]


def test_group_and_plural_are_immutable() -> None:
    old = stored(crontab_crd())
    _, causes = updated(old, lambda c: (c["spec"].update(group="other.example.com"),
                                        c["spec"]["names"].update(plural="crons")))
    assert causes == ['spec.group: Invalid value: "other.example.com": field is immutable',
                      'spec.names.plural: Invalid value: "crons": field is immutable']


def test_scope_and_kind_are_immutable_once_established() -> None:
    old = stored(crontab_crd())
    change = lambda c: (c["spec"].update(scope="Cluster"), c["spec"]["names"].update(kind="Cron", listKind="CronList"))  # noqa: E731
    assert updated(old, change)[1] == []
    old["status"]["conditions"] = [{"type": "Established", "status": "True"}]
    assert updated(old, change)[1] == ['spec.scope: Invalid value: "Cluster": field is immutable',
                                       'spec.names.kind: Invalid value: "Cron": field is immutable']


def test_a_new_storage_version_is_appended_to_stored_versions() -> None:
    old = stored(crontab_crd())
    v2 = {"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": copy.deepcopy(CRON_SCHEMA)}}
    new, causes = updated(old, lambda c: (c["spec"]["versions"][0].update(storage=False), c["spec"]["versions"].append(v2)))
    assert causes == []
    assert new["status"]["storedVersions"] == ["v1", "v2"]
    assert new["metadata"]["generation"] == 2


def test_a_stored_version_cannot_leave_spec_versions() -> None:
    old = stored(crontab_crd())
    old["status"]["storedVersions"] = ["v1beta1", "v1"]
    _, causes = updated(old, lambda c: None)
    assert causes == [
        'status.storedVersions[0]: Invalid value: "v1beta1": missing from spec.versions; v1beta1 was previously a '
        "storage version, and must remain in spec.versions until a storage migration ensures no data remains "
        "persisted in v1beta1 and removes v1beta1 from status.storedVersions"]


def test_update_keeps_the_stored_status_and_generation_without_spec_changes() -> None:
    old = stored(crontab_crd())
    new, causes = updated(old, lambda c: c.update(status={"storedVersions": []}))
    assert causes == []
    assert new["status"] == {"storedVersions": ["v1"]}
    assert new["metadata"]["generation"] == 1


def test_status_update_validates_accepted_names() -> None:
    old = stored(crontab_crd())
    new = copy.deepcopy(old)
    new["status"]["acceptedNames"] = {"plural": "crontabs", "kind": "CronTab", "listKind": "CronTab"}
    assert [str(c) for c in validate_crd_status_update(new, old)] == [
        'status.acceptedNames.listKind: Invalid value: "CronTab": kind and listKind may not be the same']


def test_warnings_name_formats_kubernetes_ignores() -> None:
    crd = crontab_crd()
    props = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    props["image"]["format"] = "docker-image"
    props["replicas"]["format"] = "int32"
    assert warnings(crd) == ['unrecognized format "docker-image"']
    assert warnings(crd, old=copy.deepcopy(crd)) == []


def test_validation_never_raises_on_garbage() -> None:
    garbage: list[Obj] = [{}, {"spec": []}, {"spec": {"versions": "x", "names": 5}}, {"metadata": 1, "status": "x"},
                          {"spec": {"versions": [1, {"name": 5, "schema": "x"}], "conversion": 3}}]
    for crd in garbage:
        apply_defaults(crd)
        assert all(cause.field for cause in validate_crd(crd))
