"""What the four RBAC kinds share: rule, roleRef and subject validation, v1 defaults, printers.

After pkg/apis/rbac/validation (``validatePolicyRule``, ``validateRoleBindingSubject``), the v1
defaults (``SetDefaults_Subject``, ``SetDefaults_*Binding``: the RBAC group for User/Group subjects
and for an empty roleRef.apiGroup), pkg/apis/rbac/helpers.go ``SubjectsStrings`` (the wide columns)
and k8s.io/api/rbac/v1's field numbers and list types. Pure functions over the JSON objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ...openapi.facts import ATOMIC, Facts
from ...validation.fielderrors import (Causes, Obj, child, each, get_maps, get_opt_map, get_str, get_strs,
                                       invalid, not_supported, required)
from ...validation.formats import dns1123_subdomain_errors, path_segment_errors
from ...validation.objectmeta import validate_label_selector
from ..base import AGE, NAME, Column, age, meta, name_of

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ("ServiceAccount", "User", "Group")

CREATED_AT = Column("Created At", type="date", description=(
    "CreationTimestamp is a timestamp representing the server time when this object was created."))

TYPE_FACTS: dict[str, dict[str, Facts]] = {
    "V1Role": {"rules": Facts(list_type="atomic")},
    "V1ClusterRole": {"rules": Facts(list_type="atomic")},
    "V1PolicyRule": {name: Facts(list_type="atomic")
                     for name in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs")},
    "V1AggregationRule": {"clusterRoleSelectors": Facts(list_type="atomic")},
    "V1RoleBinding": {"subjects": Facts(list_type="atomic")},
    "V1ClusterRoleBinding": {"subjects": Facts(list_type="atomic")},
    "V1RoleRef": {"": ATOMIC},
    "V1Subject": {"": ATOMIC},
}

# Go's field numbers (k8s.io/api/rbac/v1/generated.proto).
PROTOBUF_MESSAGES: dict[str, str] = {
    "PolicyRule": "verbs:1:*s apiGroups:2:*s resources:3:*s resourceNames:4:*s nonResourceURLs:5:*s",
    "AggregationRule": "clusterRoleSelectors:1:*LabelSelector",
    "Role": "metadata:1:ObjectMeta rules:2:*PolicyRule",
    "ClusterRole": "metadata:1:ObjectMeta rules:2:*PolicyRule aggregationRule:3:AggregationRule",
    "RoleRef": "apiGroup:1:s! kind:2:s! name:3:s!",
    "Subject": "kind:1:s! apiGroup:2:s name:3:s! namespace:4:s",
    "RoleBinding": "metadata:1:ObjectMeta subjects:2:*Subject roleRef:3:RoleRef",
    "ClusterRoleBinding": "metadata:1:ObjectMeta subjects:2:*Subject roleRef:3:RoleRef",
}


def name_errors(name: str) -> list[str]:
    """minimalNameRequirements: RBAC names need only be valid path segments (``system:node``)."""
    return path_segment_errors(name)


# ---------------------------------------------------------------------------------- roles
def validate_rules(obj: Obj, *, namespaced: bool) -> Causes:
    causes: Causes = []
    for rule_path, rule in get_maps(obj, "rules", "", causes):
        causes += validate_policy_rule(rule, namespaced=namespaced, path=rule_path)
    return causes


def validate_policy_rule(rule: Obj, *, namespaced: bool, path: str) -> Causes:
    causes: Causes = []
    verbs = get_strs(rule, "verbs", path, causes)
    groups = get_strs(rule, "apiGroups", path, causes)
    resources = get_strs(rule, "resources", path, causes)
    names = get_strs(rule, "resourceNames", path, causes)
    urls = get_strs(rule, "nonResourceURLs", path, causes)
    if not verbs:
        causes.append(required(child(path, "verbs"), "verbs must contain at least one value"))
    if urls:
        if namespaced:
            causes.append(invalid(child(path, "nonResourceURLs"), urls, "namespaced rules cannot apply to non-resource URLs"))
        if groups or resources or names:
            causes.append(invalid(child(path, "nonResourceURLs"), urls,
                                  "rules cannot apply to both regular resources and non-resource URLs"))
        return causes
    if not groups:
        causes.append(required(child(path, "apiGroups"), "resource rules must supply at least one api group"))
    if not resources:
        causes.append(required(child(path, "resources"), "resource rules must supply at least one resource"))
    if names and len(resources) > 1:
        causes.append(required(child(path, "resourceNames"), "resource names cannot apply to multiple resources"))
    return causes


def validate_aggregation_rule(obj: Obj) -> Causes:
    causes: Causes = []
    rule = get_opt_map(obj, "aggregationRule", "", causes)
    if rule is None:
        return causes
    selectors = get_maps(rule, "clusterRoleSelectors", "aggregationRule", causes)
    if not selectors:
        causes.append(required("aggregationRule.clusterRoleSelectors",
                               "at least one clusterRoleSelector required if aggregationRule is non-nil"))
    for selector_path, selector in selectors:
        validate_label_selector(selector, selector_path, causes)
    return causes


# ---------------------------------------------------------------------------------- bindings
def default_binding(obj: Obj) -> None:
    """v1 defaults: roleRef.apiGroup and User/Group subjects' apiGroup are the RBAC group."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    subjects = obj.get("subjects")
    for subject in subjects if isinstance(subjects, list) else ():
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = GROUP


def validate_binding(obj: Obj, *, namespaced: bool) -> Causes:
    causes: Causes = []
    ref = get_opt_map(obj, "roleRef", "", causes) or {}
    api_group = get_str(ref, "apiGroup", "roleRef", causes)
    if api_group != GROUP:
        causes.append(not_supported("roleRef.apiGroup", api_group, [GROUP]))
    kind = get_str(ref, "kind", "roleRef", causes)
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if kind not in kinds:
        causes.append(not_supported("roleRef.kind", kind, kinds))
    name = get_str(ref, "name", "roleRef", causes)
    if not name:
        causes.append(required("roleRef.name"))
    else:
        causes += each("roleRef.name", name, path_segment_errors(name))
    for subject_path, subject in get_maps(obj, "subjects", "", causes):
        causes += validate_subject(subject, namespaced=namespaced, path=subject_path)
    return causes


def validate_subject(subject: Obj, *, namespaced: bool, path: str) -> Causes:
    causes: Causes = []
    name = get_str(subject, "name", path, causes)
    kind = get_str(subject, "kind", path, causes)
    api_group = get_str(subject, "apiGroup", path, causes)
    namespace = get_str(subject, "namespace", path, causes)
    if not name:
        causes.append(required(child(path, "name")))
    if kind == "ServiceAccount":
        if name:
            # ValidateServiceAccountName: a DNS subdomain.
            causes += each(child(path, "name"), name, dns1123_subdomain_errors(name))
        if api_group:
            causes.append(not_supported(child(path, "apiGroup"), api_group, [""]))
        if not namespaced and not namespace:
            causes.append(required(child(path, "namespace")))
    elif kind in ("User", "Group"):
        if not name:
            causes.append(invalid(child(path, "name"), name, f"{kind.lower()} name cannot be empty"))
        if api_group != GROUP:
            causes.append(not_supported(child(path, "apiGroup"), api_group, [GROUP]))
    else:
        causes.append(not_supported(child(path, "kind"), kind, SUBJECT_KINDS))
    return causes


def validate_role_ref_unchanged(new: Obj, old: Obj) -> Causes:
    if new.get("roleRef") != old.get("roleRef"):
        return [invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def subjects_strings(subjects: Any) -> tuple[list[str], list[str], list[str]]:
    """SubjectsStrings: users, groups and ``namespace/name`` of ServiceAccounts."""
    users: list[str] = []
    groups: list[str] = []
    sas: list[str] = []
    for s in subjects if isinstance(subjects, list) else ():
        if not isinstance(s, Mapping):
            continue
        if s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace') or ''}/{s.get('name') or ''}")
        elif s.get("kind") == "User":
            users.append(str(s.get("name") or ""))
        elif s.get("kind") == "Group":
            groups.append(str(s.get("name") or ""))
    return users, groups, sas


def binding_columns(role_ref_doc: str) -> tuple[Column, ...]:
    return (NAME, Column("Role", description=role_ref_doc), AGE,
            Column("Users", priority=1, description="Users in the roleBinding"),
            Column("Groups", priority=1, description="Groups in the roleBinding"),
            Column("ServiceAccounts", priority=1, description="ServiceAccounts in the roleBinding"))


def binding_row(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    ref = obj.get("roleRef")
    ref = ref if isinstance(ref, Mapping) else {}
    users, groups, sas = subjects_strings(obj.get("subjects"))
    return [name_of(obj), f"{ref.get('kind') or ''}/{ref.get('name') or ''}", age(obj, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


def role_row(obj: Mapping[str, Any], now: datetime) -> list[Any]:
    return [name_of(obj), str(meta(obj).get("creationTimestamp") or "")]
