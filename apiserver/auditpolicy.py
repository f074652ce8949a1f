"""The audit Policy (audit.k8s.io/v1): which level, and which stages, each request is logged at.

After k8s.io/apiserver pkg/audit/policy (reader.go, checker.go) and pkg/apis/audit/validation.
Pure: ``load_policy(path)`` parses and validates a Policy file (a bad file raises
``AuditPolicyError`` naming the field, so the API server refuses to start) -> ``Policy.level_and_stages``
maps a request's ``Attributes`` to (level, omitted stages); the first rule that matches wins and a
request no rule matches is not logged (level None), as in Kubernetes. Without a policy file
``DEFAULT_POLICY`` logs every request at Metadata level and omits the RequestReceived stage.

Levels are ordered None < Metadata < Request < RequestResponse. ``capped_level`` keeps the bodies
of Secrets, ConfigMaps and TokenReviews out of the log whatever the policy says (Kubernetes leaves
that to the policy's author; here a leak is refused).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .auth.attributes import Attributes

API_VERSION = "audit.k8s.io/v1"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
# Never logged with their bodies: (group, resource).
SENSITIVE = frozenset({("", "secrets"), ("", "configmaps"), ("authentication.k8s.io", "tokenreviews")})


class AuditPolicyError(ValueError):
    """The audit policy file is unusable; the message names the problem."""


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, a: Attributes) -> bool:
        if self.group != a.api_group:
            return False
        if not self.resources:
            return True
        if self.resource_names and a.name not in self.resource_names:
            return False
        combined = a.resource_and_sub
        for res in self.resources:
            if res in (combined, "*"):
                return True
            if a.subresource and res.startswith("*/") and res[2:] == a.subresource:
                return True
            if res.endswith("/*") and res[:-2] == a.resource:
                return True
        return False


@dataclass(frozen=True)
class Rule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()

    def matches(self, a: Attributes) -> bool:
        if self.users and a.user.name not in self.users:
            return False
        if self.user_groups and not any(g in self.user_groups for g in a.user.groups):
            return False
        if self.verbs and a.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            if not a.resource_request:
                return False
            if self.namespaces and a.namespace not in self.namespaces:
                return False
            return not self.resources or any(gr.matches(a) for gr in self.resources)
        if self.non_resource_urls:
            return not a.resource_request and any(_path_matches(a.path, s) for s in self.non_resource_urls)
        return True


def _path_matches(path: str, spec: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    omit_stages: frozenset[str] = frozenset()
    default_level: str = "None"

    def level_and_stages(self, a: Attributes) -> tuple[str, frozenset[str]]:
        for rule in self.rules:
            if rule.matches(a):
                return rule.level, rule.omit_stages | self.omit_stages
        return self.default_level, self.omit_stages

    @property
    def logs_bodies(self) -> bool:
        return any(r.level in ("Request", "RequestResponse") for r in self.rules)


DEFAULT_POLICY = Policy(rules=(), omit_stages=frozenset({"RequestReceived"}), default_level="Metadata")


def capped_level(level: str, a: Attributes) -> str:
    """Secrets, ConfigMaps and TokenReviews never log bodies (Metadata at most)."""
    if LEVELS.index(level) > 1 and (a.api_group, a.resource) in SENSITIVE:
        return "Metadata"
    return level


def load_policy(path: str) -> Policy:
    if not path:
        return DEFAULT_POLICY
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as e:
        raise AuditPolicyError(f"failed to read audit policy file {path!r}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise AuditPolicyError(f"failed decoding audit policy file {path!r}: {e}") from e
    try:
        return parse_policy(doc)
    except AuditPolicyError as e:
        raise AuditPolicyError(f"invalid audit policy file {path!r}: {e}") from e


def parse_policy(doc: Any) -> Policy:
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or doc.get("apiVersion") != API_VERSION:
        got = (doc.get("apiVersion"), doc.get("kind")) if isinstance(doc, dict) else (None, None)
        raise AuditPolicyError(f'expected apiVersion "{API_VERSION}", kind "Policy"; got {got[0]!r}, {got[1]!r}')
    problems: list[str] = []
    omit = _stages(doc.get("omitStages"), "omitStages", problems)
    rules_doc = doc.get("rules")
    if not isinstance(rules_doc, list) or not rules_doc:
        raise AuditPolicyError("rules: Required value: a policy needs at least one rule")
    rules = [_rule(r, f"rules[{i}]", problems) for i, r in enumerate(rules_doc)]
    if problems:
        raise AuditPolicyError("; ".join(problems))
    return Policy(rules=tuple(r for r in rules if r is not None), omit_stages=omit)


def _strings(value: Any, path: str, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{path}: Invalid value: expected a list of strings")
        return ()
    return tuple(value)


def _stages(value: Any, path: str, problems: list[str]) -> frozenset[str]:
    stages = _strings(value, path, problems)
    for i, s in enumerate(stages):
        if s not in STAGES:
            problems.append(f'{path}[{i}]: Unsupported value: "{s}": supported values: "{", ".join(STAGES)}"')
    return frozenset(stages)


def _rule(doc: Any, path: str, problems: list[str]) -> Rule | None:
    if not isinstance(doc, dict):
        problems.append(f"{path}: Invalid value: expected an object")
        return None
    level = doc.get("level")
    if level not in LEVELS:
        problems.append(f'{path}.level: Unsupported value: {level!r}: supported values: "{", ".join(LEVELS)}"')
        return None
    groups: list[GroupResources] = []
    for j, gr in enumerate(doc.get("resources") or []):
        gpath = f"{path}.resources[{j}]"
        if not isinstance(gr, dict):
            problems.append(f"{gpath}: Invalid value: expected an object")
            continue
        groups.append(GroupResources(group=str(gr.get("group") or ""),
                                     resources=_strings(gr.get("resources"), f"{gpath}.resources", problems),
                                     resource_names=_strings(gr.get("resourceNames"), f"{gpath}.resourceNames", problems)))
    urls = _strings(doc.get("nonResourceURLs"), f"{path}.nonResourceURLs", problems)
    namespaces = _strings(doc.get("namespaces"), f"{path}.namespaces", problems)
    if urls and (groups or namespaces):
        problems.append(f"{path}.nonResourceURLs: Invalid value: rules cannot apply to both regular resources "
                        "and non-resource URLs")
    return Rule(level=level, users=_strings(doc.get("users"), f"{path}.users", problems),
                user_groups=_strings(doc.get("userGroups"), f"{path}.userGroups", problems),
                verbs=_strings(doc.get("verbs"), f"{path}.verbs", problems), resources=tuple(groups),
                namespaces=namespaces, non_resource_urls=urls,
                omit_stages=_stages(doc.get("omitStages"), f"{path}.omitStages", problems))

