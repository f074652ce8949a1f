"""RBAC's pure matching: which rules allow a request and which bindings apply to a user.

After plugin/pkg/auth/authorizer/rbac (``RuleAllows``, ``appliesTo``) and pkg/apis/rbac/v1's
helpers (``VerbMatches``, ``APIGroupMatches``, ``ResourceMatches``, ``ResourceNameMatches``,
``NonResourceURLMatches``) plus the allow reasons of ``clusterRoleBindingDescriber`` /
``roleBindingDescriber``. Data only: rules and bindings are the JSON objects Kubernetes sends.

Kubernetes' rules kept here: ``*`` matches every verb, group, resource or URL; a request for a
subresource matches ``pods/log`` exactly or ``*/log`` (``pods/*`` is no wildcard in Kubernetes);
a rule with resourceNames never matches a request without a name (create, list without a
``metadata.name`` field selector); a non-resource URL matches exactly or by a trailing ``*``;
a ServiceAccount subject of a RoleBinding without a namespace means the binding's namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from machinery.userinfo import SERVICEACCOUNT_USER_PREFIX, UserInfo

from .attributes import Attributes

Rule = Mapping[str, Any]


def _strs(rule: Rule, name: str) -> list[str]:
    value = rule.get(name)
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def verb_matches(rule: Rule, verb: str) -> bool:
    return any(v == "*" or v == verb for v in _strs(rule, "verbs"))


def api_group_matches(rule: Rule, group: str) -> bool:
    return any(g == "*" or g == group for g in _strs(rule, "apiGroups"))


def resource_matches(rule: Rule, combined: str, subresource: str) -> bool:
    for r in _strs(rule, "resources"):
        if r == "*" or r == combined:
            return True
        if subresource and r == "*/" + subresource:
            return True
    return False


def resource_name_matches(rule: Rule, name: str) -> bool:
    names = _strs(rule, "resourceNames")
    return not names or name in names


def non_resource_url_matches(rule: Rule, path: str) -> bool:
    for url in _strs(rule, "nonResourceURLs"):
        if url == "*" or url == path:
            return True
        if url.endswith("*") and path.startswith(url.rstrip("*")):
            return True
    return False


def rule_allows(a: Attributes, rule: Rule) -> bool:
    if a.resource_request:
        return (verb_matches(rule, a.verb) and api_group_matches(rule, a.api_group)
                and resource_matches(rule, a.resource_and_sub, a.subresource)
                and resource_name_matches(rule, a.name))
    return verb_matches(rule, a.verb) and non_resource_url_matches(rule, a.path)


def rules_allow(a: Attributes, rules: Iterable[Rule]) -> bool:
    return any(rule_allows(a, r) for r in rules)


def applies_to(user: UserInfo, subject: Mapping[str, Any], binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return user.name == name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return bool(namespace) and user.name == f"{SERVICEACCOUNT_USER_PREFIX}{namespace}:{name}"
    return False


def subject_keys(subject: Mapping[str, Any], binding_namespace: str) -> tuple[str, str] | None:
    """The index key under which a binding's subject is found (see ``user_keys``)."""
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind == "User":
        return ("u", name)
    if kind == "Group":
        return ("g", name)
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("u", f"{SERVICEACCOUNT_USER_PREFIX}{namespace}:{name}") if namespace else None
    return None


def user_keys(user: UserInfo) -> list[tuple[str, str]]:
    return [("u", user.name), *(("g", g) for g in user.groups)]


def describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def describe_binding(binding: Mapping[str, Any], subject: Mapping[str, Any]) -> str:
    """How Kubernetes names the grant in an allow reason."""
    meta = binding.get("metadata") or {}
    ref = binding.get("roleRef") or {}
    namespace = str(meta.get("namespace") or "")
    if namespace:
        return (f'RoleBinding "{meta.get("name")}/{namespace}" of {ref.get("kind")} "{ref.get("name")}" '
                f'to {describe_subject(subject, namespace)}')
    return (f'ClusterRoleBinding "{meta.get("name")}" of {ref.get("kind")} "{ref.get("name")}" '
            f'to {describe_subject(subject, "")}')


def split_rules(rules: Iterable[Rule]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """SelfSubjectRulesReview's shapes: (resourceRules, nonResourceRules)."""
    resource: list[dict[str, Any]] = []
    non_resource: list[dict[str, Any]] = []
    for r in rules:
        if _strs(r, "nonResourceURLs"):
            non_resource.append({"verbs": _strs(r, "verbs"), "nonResourceURLs": _strs(r, "nonResourceURLs")})
        else:
            out: dict[str, Any] = {"verbs": _strs(r, "verbs"), "apiGroups": _strs(r, "apiGroups"),
                                   "resources": _strs(r, "resources")}
            if _strs(r, "resourceNames"):
                out["resourceNames"] = _strs(r, "resourceNames")
            resource.append(out)
    return resource, non_resource


# ---------------------------------------------------------------------------------- coverage
def breakdown(rule: Rule) -> list[dict[str, Any]]:
    """BreakdownRule: one rule per verb, group, resource (and resource name) or per verb and URL."""
    out: list[dict[str, Any]] = []
    names = _strs(rule, "resourceNames")
    for group in _strs(rule, "apiGroups"):
        for resource in _strs(rule, "resources"):
            for verb in _strs(rule, "verbs"):
                base = {"verbs": [verb], "apiGroups": [group], "resources": [resource]}
                out.extend([{**base, "resourceNames": [n]} for n in names] if names else [base])
    for url in _strs(rule, "nonResourceURLs"):
        out.extend({"verbs": [verb], "nonResourceURLs": [url]} for verb in _strs(rule, "verbs"))
    return out


def _resources_cover(owner: list[str], wanted: list[str]) -> bool:
    if "*" in owner:
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _urls_cover(owner: list[str], wanted: list[str]) -> bool:
    return all(any(o == w or (o.endswith("*") and w.startswith(o.rstrip("*"))) for o in owner) for w in wanted)


def rule_covers(owner: Rule, sub: Rule) -> bool:
    """ruleCovers: whether ``owner`` grants everything the broken-down ``sub`` does."""
    o_verbs, o_groups, o_names = _strs(owner, "verbs"), _strs(owner, "apiGroups"), _strs(owner, "resourceNames")
    s_names = _strs(sub, "resourceNames")
    return (("*" in o_verbs or set(_strs(sub, "verbs")) <= set(o_verbs))
            and ("*" in o_groups or set(_strs(sub, "apiGroups")) <= set(o_groups))
            and _resources_cover(_strs(owner, "resources"), _strs(sub, "resources"))
            and _urls_cover(_strs(owner, "nonResourceURLs"), _strs(sub, "nonResourceURLs"))
            and (not o_names or bool(s_names) and set(s_names) <= set(o_names)))


def covers(owner_rules: Iterable[Rule], rules: Iterable[Rule]) -> tuple[bool, list[dict[str, Any]]]:
    """Covers: whether ``owner_rules`` grant all of ``rules``, and the broken-down rules they do not."""
    owners = list(owner_rules)
    missing = [sub for r in rules for sub in breakdown(r) if not any(rule_covers(o, sub) for o in owners)]
    return not missing, missing
