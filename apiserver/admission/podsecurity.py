"""Pod Security admission's decisions (k8s.io/pod-security-admission/admission), pure.

Data flow: a namespace's labels ``pod-security.kubernetes.io/enforce|warn|audit`` (and their
``-version``) -> ``policy_for`` -> a ``Policy`` (enforce, warn and audit level) plus the 422
causes of invalid values; a pod (or a workload's pod template) + that policy -> ``evaluate`` ->
a ``Verdict``: the 403 reason when the enforce level is violated (``violates PodSecurity
"baseline:latest": privileged (container "c" must not set securityContext.privileged=true)``),
the ``Warning`` for the warn level (``would violate PodSecurity ...``) and the audit annotations
(``pod-security.kubernetes.io/audit-violations``, ``enforce-policy``).

Rules kept from Kubernetes: pods are enforced on create and on updates that change an image or
add a container (``significant_update``); pod subresources (status, binding, ...) are not
checked; workloads (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs, CronJobs,
ReplicationControllers, PodTemplates) only get warnings and audit annotations for their
template; an invalid enforce value is evaluated as ``restricted`` (fail closed) and invalid warn
or audit values as ``privileged``. Tightening a namespace's enforce level warns about the
existing pods that would violate it (``existing_pod_warnings``).

Where minik8s differs: the enforce level of an unlabelled namespace is the API server's
``--pod-security-default`` (baseline unless set), and warn and audit follow the namespace's
enforce level unless labelled themselves (Kubernetes takes them from its admission
configuration's defaults). Every version label is accepted and checked against the latest
policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence
from typing import Any

from machinery.errors import StatusCause

from .podsecuritychecks import (
    BASELINE,
    BASELINE_CHECKS,
    LEVELS,
    PRIVILEGED,
    RESTRICTED,
    forbidden_detail,
    forbidden_reason,
    ordered,
    run,
)
from .podsecurityrestricted import RESTRICTED_CHECKS

Obj = Mapping[str, Any]

PREFIX = "pod-security.kubernetes.io/"
ENFORCE_LABEL, WARN_LABEL, AUDIT_LABEL = PREFIX + "enforce", PREFIX + "warn", PREFIX + "audit"
AUDIT_VIOLATIONS = PREFIX + "audit-violations"
ENFORCE_POLICY = PREFIX + "enforce-policy"
POLICY_ERROR = PREFIX + "error"
LATEST = "latest"
MAX_PODS_TO_CHECK = 3000  # Kubernetes' namespaceMaxPodsToCheck

_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")
_LEVEL_CHECKS = {BASELINE: ordered(BASELINE_CHECKS), RESTRICTED: ordered(BASELINE_CHECKS + RESTRICTED_CHECKS)}

# Where each workload keeps its pod template (Kubernetes' DefaultPodSpecExtractor).
TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "podtemplates": ("template",),
    "replicationcontrollers": ("spec", "template"),
    "replicasets.apps": ("spec", "template"),
    "deployments.apps": ("spec", "template"),
    "statefulsets.apps": ("spec", "template"),
    "daemonsets.apps": ("spec", "template"),
    "jobs.batch": ("spec", "template"),
    "cronjobs.batch": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class LevelVersion:
    level: str
    version: str = LATEST

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True)
class Policy:
    enforce: LevelVersion
    warn: LevelVersion
    audit: LevelVersion

    @property
    def fully_privileged(self) -> bool:
        return all(lv.level == PRIVILEGED for lv in (self.enforce, self.warn, self.audit))


@dataclass
class Verdict:
    forbidden: str | None = None  # the reason after '<resource> "<name>" is forbidden: '
    warnings: list[str] = field(default_factory=list)
    audit: dict[str, str] = field(default_factory=dict)


def _invalid(label: str, value: str, message: str) -> StatusCause:
    return StatusCause("FieldValueInvalid", f'Invalid value: "{value}": {message}', f"metadata.labels[{label}]")


def policy_for(labels: Mapping[str, str] | None, *, default_level: str = BASELINE
               ) -> tuple[Policy, list[StatusCause]]:
    """The namespace's policy and the causes of its invalid label values (Kubernetes' PolicyToEvaluate)."""
    labels = labels or {}
    causes: list[StatusCause] = []
    chosen: dict[str, LevelVersion] = {}
    for mode, fallback in (("enforce", RESTRICTED), ("warn", PRIVILEGED), ("audit", PRIVILEGED)):
        label = PREFIX + mode
        base = chosen.get("enforce", LevelVersion(default_level))
        level, version = base.level, base.version
        if label in labels:
            level = labels[label]
            if level not in LEVELS:
                causes.append(_invalid(label, level, "must be one of " + ", ".join(LEVELS)))
                level = fallback  # enforce fails closed, warn and audit fail open
        if label + "-version" in labels:
            version = labels[label + "-version"]
            if version != LATEST and not _VERSION.match(version):
                causes.append(_invalid(label + "-version", version, 'must be "latest" or "v1.x"'))
                version = LATEST
        chosen[mode] = LevelVersion(level, version)
    return Policy(chosen["enforce"], chosen["warn"], chosen["audit"]), causes


def pod_failures(level: str, meta: Obj, spec: Obj) -> list[tuple[str, str]]:
    checks = _LEVEL_CHECKS.get(level)
    return run(checks, meta, spec) if checks else []


def evaluate(policy: Policy, meta: Obj, spec: Obj, *, enforce: bool, policy_errors: Sequence[StatusCause] = ()
             ) -> Verdict:
    """Kubernetes' EvaluatePod: ``enforce`` for pods, warnings and audit only for templates."""
    verdict = Verdict()
    results: dict[str, list[tuple[str, str]]] = {}  # per level: enforce, warn and audit are often one

    def failures(level: str) -> list[tuple[str, str]]:
        if level not in results:
            results[level] = pod_failures(level, meta, spec)
        return results[level]

    if policy_errors:
        verdict.audit[POLICY_ERROR] = "Failed to parse policy: " + ", ".join(str(c) for c in policy_errors)
    if enforce:
        verdict.audit[ENFORCE_POLICY] = str(policy.enforce)
        if policy.fully_privileged and not policy_errors:
            return verdict
        enforce_failures = failures(policy.enforce.level)
        if enforce_failures:
            verdict.forbidden = f'violates PodSecurity "{policy.enforce}": {forbidden_detail(enforce_failures)}'
    audit_failures = failures(policy.audit.level)
    if audit_failures:
        verdict.audit[AUDIT_VIOLATIONS] = f'would violate PodSecurity "{policy.audit}": ' \
                                          f"{forbidden_detail(audit_failures)}"
    if verdict.forbidden is None:
        warn_failures = failures(policy.warn.level)
        if warn_failures:
            verdict.warnings.append(f'would violate PodSecurity "{policy.warn}": {forbidden_detail(warn_failures)}')
    return verdict


def pod_template(group_resource: str, obj: Obj) -> tuple[Obj, Obj] | None:
    """A workload's pod template (metadata, spec), or None for other resources or no template."""
    path = TEMPLATE_PATHS.get(group_resource)
    if path is None:
        return None
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    if not isinstance(node, Mapping):
        return None
    return node.get("metadata") or {}, node.get("spec") or {}


def significant_update(new: Obj, old: Obj) -> bool:
    """A pod update Pod Security looks at: an image changed, or a container or ephemeral container came."""
    new_spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    for key in ("containers", "initContainers"):
        a, b = new_spec.get(key) or [], old_spec.get(key) or []
        if len(a) != len(b) or any(x.get("image") != y.get("image") for x, y in zip(a, b)):
            return True
    old_ephemeral = {c.get("name"): c for c in old_spec.get("ephemeralContainers") or []}
    for c in new_spec.get("ephemeralContainers") or []:
        before = old_ephemeral.get(c.get("name"))
        if before is None or before.get("image") != c.get("image"):
            return True
    return False


def enforce_tightened(new: Policy, old: Policy) -> bool:
    """Whether a namespace update asks for a stricter enforce level (existing pods are then checked)."""
    if new.enforce == old.enforce or new.enforce.level == PRIVILEGED:
        return False
    return not (new.enforce.version == old.enforce.version
                and LEVELS.index(new.enforce.level) <= LEVELS.index(old.enforce.level))


def _controller_uid(pod: Obj) -> str | None:
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") is True:
            return str(ref.get("uid"))
    return None


def existing_pod_warnings(namespace: str, enforce: LevelVersion, pods: Sequence[Obj]) -> list[str]:
    """The warnings of a namespace update whose new enforce level existing pods violate
    (Kubernetes' EvaluatePodsInNamespace): one pod per controller first, then the rest."""
    first, duplicates, seen = [], [], set()
    for pod in pods:
        uid = _controller_uid(pod)
        if uid is not None and uid in seen:
            duplicates.append(pod)
            continue
        if uid is not None:
            seen.add(uid)
        first.append(pod)
    ordered_pods = (first + duplicates)[:MAX_PODS_TO_CHECK]
    by_reason: dict[str, list[str]] = {}
    for pod in ordered_pods:
        failures = pod_failures(enforce.level, pod.get("metadata") or {}, pod.get("spec") or {})
        if failures:
            by_reason.setdefault(forbidden_reason(failures), []).append(str((pod.get("metadata") or {}).get("name")))
    warnings = []
    if len(pods) > len(ordered_pods):
        warnings.append(f"new PodSecurity enforce level only checked against the first {len(ordered_pods)} "
                        f"of {len(pods)} existing pods")
    if by_reason:
        warnings.append(f'existing pods in namespace "{namespace}" violate the new PodSecurity enforce level '
                        f'"{enforce}"')
    decorated = []
    for reason, names in by_reason.items():
        name, others = min(names), len(names) - 1
        if others == 0:
            decorated.append(f"{name}: {reason}")
        else:
            decorated.append(f"{name} (and {others} other pod{'s' if others > 1 else ''}): {reason}")
    return warnings + sorted(decorated)
