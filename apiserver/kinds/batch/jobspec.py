"""JobSpec facts shared by Job and CronJob (whose ``jobTemplate.spec`` is a JobSpec).

After ``pkg/apis/batch/v1/defaults.go`` (``SetDefaults_Job``) and
``pkg/apis/batch/validation/validation.go`` (``validateJobSpec``, the pod failure policy rules and
the pod template of a Job, whose restartPolicy must be OnFailure or Never). Pure functions over the
JSON mappings; ``job.py`` and ``cronjob.py`` call them with the path of the JobSpec.
"""

from __future__ import annotations

from typing import Any

from machinery.errors import StatusCause

from ...validation.fielderrors import (Causes, Obj, child, duplicate, enum, get_bool, get_int, get_list, get_map,
                                       get_maps, get_opt_map, get_str, get_str_map, index, invalid, nonnegative,
                                       not_supported, required)
from ...validation.formats import qualified_name_errors
from ...validation.objectmeta import read_labels, selector_matches, validate_annotations, validate_label_selector
from ...validation.podspec import validate_pod_spec
from ..common.defaulting import map_at, maps_at
from ..common.podtemplate import default_template

INT32_MAX = 2**31 - 1
MAX_PARALLELISM_INDEXED = 100_000
COMPLETION_MODES = ("NonIndexed", "Indexed")
REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")
POLICY_ACTIONS = ("FailJob", "FailIndex", "Ignore", "Count")
EXIT_CODE_OPERATORS = ("In", "NotIn")
CONDITION_STATUSES = ("True", "False", "Unknown")
JOB_RESTART_POLICIES = ("OnFailure", "Never")
FIELD_IMMUTABLE = "field is immutable"


def too_many(path: str, actual: int, limit: int) -> StatusCause:
    """``field.TooMany``."""
    return StatusCause("FieldValueTooMany", f"Too many: {actual}: must have at most {limit} items", path)


def default_job_spec(job_spec: Obj, *, meta: Obj | None = None) -> None:
    """``SetDefaults_Job`` on one JobSpec (``meta``: the Job's metadata, whose labels default to the template's)."""
    completions, parallelism = job_spec.get("completions"), job_spec.get("parallelism")
    if completions is None and parallelism is None:
        job_spec["completions"] = 1
        job_spec["parallelism"] = 1
    if job_spec.get("parallelism") is None:
        job_spec["parallelism"] = 1
    if job_spec.get("backoffLimit") is None:
        job_spec["backoffLimit"] = INT32_MAX if job_spec.get("backoffLimitPerIndex") is not None else 6
    if job_spec.get("completionMode") is None:
        job_spec["completionMode"] = "NonIndexed"
    if job_spec.get("suspend") is None:
        job_spec["suspend"] = False
    policy = map_at(job_spec, "podFailurePolicy")
    if policy is not None:
        for rule in maps_at(policy, "rules"):
            for pattern in maps_at(rule, "onPodConditions"):
                if pattern.get("status") in (None, ""):
                    pattern["status"] = "True"
    if job_spec.get("podReplacementPolicy") is None:
        job_spec["podReplacementPolicy"] = "Failed" if policy is not None else "TerminatingOrFailed"
    if job_spec.get("manualSelector") is None:
        job_spec["manualSelector"] = False
    default_template(job_spec)
    template = map_at(job_spec, "template")
    template_meta = map_at(template, "metadata") if template is not None else None
    if meta is not None and not meta.get("labels") and template_meta is not None:
        labels = template_meta.get("labels")
        if isinstance(labels, dict) and labels:
            meta["labels"] = dict(labels)


def _validate_template(job_spec: Obj, path: str, causes: Causes) -> tuple[Obj, dict[str, str]]:
    """``ValidatePodTemplateSpec`` plus the Job's restartPolicy rule; returns (pod spec, template labels)."""
    template_path = child(path, "template")
    template = get_map(job_spec, "template", path, causes)
    meta_path = child(template_path, "metadata")
    template_meta = get_map(template, "metadata", template_path, causes)
    labels = read_labels(template_meta, "labels", meta_path, causes)
    causes.extend(validate_annotations(get_str_map(template_meta, "annotations", meta_path, causes),
                                       child(meta_path, "annotations")))
    pod_spec_path = child(template_path, "spec")
    pod_spec = get_map(template, "spec", template_path, causes)
    causes.extend(validate_pod_spec(pod_spec, pod_spec_path, is_pod=False))
    restart = pod_spec.get("restartPolicy")
    if restart not in JOB_RESTART_POLICIES:
        causes.append(not_supported(child(pod_spec_path, "restartPolicy"), restart or "", JOB_RESTART_POLICIES))
    elif job_spec.get("podFailurePolicy") is not None and restart != "Never":
        causes.append(invalid(child(pod_spec_path, "restartPolicy"), restart,
                              'only "Never" is supported when podFailurePolicy is specified'))
    elif job_spec.get("backoffLimitPerIndex") is not None and restart != "Never":
        causes.append(invalid(child(pod_spec_path, "restartPolicy"), restart,
                              'only "Never" is supported when backoffLimitPerIndex is specified'))
    return pod_spec, labels


def _container_names(pod_spec: Obj) -> set[str]:
    return {str(c.get("name")) for key in ("containers", "initContainers")
            for c in (pod_spec.get(key) or []) if isinstance(c, dict)}


def _validate_exit_codes(rule: Obj, rule_path: str, containers: set[str], causes: Causes) -> None:
    path = child(rule_path, "onExitCodes")
    codes = get_map(rule, "onExitCodes", rule_path, causes)
    operator = get_str(codes, "operator", path, causes)
    causes.extend(enum(child(path, "operator"), operator, EXIT_CODE_OPERATORS))
    name = get_str(codes, "containerName", path, causes)
    if name and name not in containers:
        causes.append(invalid(child(path, "containerName"), name,
                              "must be one of the container or initContainer names in the pod template"))
    values = get_list(codes, "values", path, causes)
    values_path = child(path, "values")
    if not values:
        causes.append(required(values_path, "at least one value is required"))
    elif len(values) > 255:
        causes.append(too_many(values_path, len(values), 255))
    seen: set[int] = set()
    previous: int | None = None
    for i, value in enumerate(values):
        value_path = index(values_path, i)
        if isinstance(value, bool) or not isinstance(value, int):
            causes.append(invalid(value_path, value, "must be of type int32"))
            continue
        if operator == "In" and value == 0:
            causes.append(invalid(value_path, value, "must not be 0 for the In operator"))
        if value in seen:
            causes.append(duplicate(value_path, value))
        elif previous is not None and value < previous:
            causes.append(invalid(value_path, value, "must be ordered"))
        seen.add(value)
        previous = value


def _validate_failure_policy(job_spec: Obj, path: str, pod_spec: Obj, causes: Causes) -> None:
    policy = get_opt_map(job_spec, "podFailurePolicy", path, causes)
    if policy is None:
        return
    policy_path = child(path, "podFailurePolicy")
    rules_path = child(policy_path, "rules")
    rules = get_maps(policy, "rules", policy_path, causes)
    if len(rules) > 20:
        causes.append(too_many(rules_path, len(rules), 20))
    containers = _container_names(pod_spec)
    for rule_path, rule in rules:
        action_path = child(rule_path, "action")
        action = get_str(rule, "action", rule_path, causes)
        if not action:
            causes.append(required(action_path, 'valid values: ["FailJob" "FailIndex" "Ignore" "Count"]'))
        elif action not in POLICY_ACTIONS:
            causes.append(not_supported(action_path, action, POLICY_ACTIONS))
        elif action == "FailIndex" and job_spec.get("backoffLimitPerIndex") is None:
            causes.append(invalid(action_path, action, "requires the backoffLimitPerIndex to be set"))
        has_codes = rule.get("onExitCodes") is not None
        patterns = get_maps(rule, "onPodConditions", rule_path, causes)
        if has_codes:
            _validate_exit_codes(rule, rule_path, containers, causes)
        for pattern_path, pattern in patterns:
            kind = get_str(pattern, "type", pattern_path, causes)
            if not kind:
                causes.append(required(child(pattern_path, "type")))
            else:
                causes.extend(invalid(child(pattern_path, "type"), kind, m) for m in qualified_name_errors(kind))
            causes.extend(enum(child(pattern_path, "status"), get_str(pattern, "status", pattern_path, causes),
                               CONDITION_STATUSES))
        if has_codes and patterns:
            causes.append(invalid(rule_path, "", "specifying both OnExitCodes and OnPodConditions is not supported"))
        elif not has_codes and not patterns:
            causes.append(invalid(rule_path, "", "specifying one of OnExitCodes and OnPodConditions is required"))


def _validate_success_policy(job_spec: Obj, path: str, causes: Causes) -> None:
    """``validateSuccessPolicy``: Indexed Jobs only; rules of succeededIndexes and/or succeededCount."""
    policy = get_opt_map(job_spec, "successPolicy", path, causes)
    if policy is None:
        return
    policy_path = child(path, "successPolicy")
    if job_spec.get("completionMode") != "Indexed":
        causes.append(invalid(policy_path, policy, "requires indexed completion mode"))
        return
    rules_path = child(policy_path, "rules")
    rules = get_maps(policy, "rules", policy_path, causes)
    if not rules:
        causes.append(required(rules_path, "at least one rules must be specified when the successPolicy is specified"))
    if len(rules) > 20:
        causes.append(too_many(rules_path, len(rules), 20))
    completions = job_spec.get("completions")
    for rule_path, rule in rules:
        indexes = rule.get("succeededIndexes")
        count = get_int(rule, "succeededCount", rule_path, causes)
        if indexes is None and count is None:
            causes.append(required(rule_path, "at least one of succeededCount or succeededIndexes must be specified"))
        total: int | None = None
        if indexes is not None:
            error = _interval_error(indexes, completions)
            if error:
                causes.append(invalid(child(rule_path, "succeededIndexes"), indexes,
                                      f"error parsing succeededIndexes: {error}"))
            else:
                total = _interval_total(str(indexes))
        if count is not None:
            count_path = child(rule_path, "succeededCount")
            if count < 0:
                causes.append(invalid(count_path, count, "must be greater than or equal to 0"))
            if isinstance(completions, int) and count > completions:
                causes.append(invalid(count_path, count, f"must be less than or equal to {completions} "
                                                         "(the number of specified completions)"))
            if total is not None and count > total:
                causes.append(invalid(count_path, count, f"must be less than or equal to {total} "
                                                         "(the number of indexes in the specified succeededIndexes field)"))


def _interval_error(text: Any, completions: Any) -> str:
    """Why ``succeededIndexes`` is not an ordered list of intervals below completions ("" if it is)."""
    if not isinstance(text, str) or not text:
        return "empty interval list"
    previous = -1
    for part in text.split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            return f'cannot convert string to integer for index: "{part}"'
        lo, hi = int(first), int(last) if dash else int(first)
        if lo > hi:
            return f"non-increasing order, previous: {lo}, current: {hi}"
        if lo <= previous:
            return f"overlapping intervals or non-increasing order, previous: {previous}, current: {lo}"
        if isinstance(completions, int) and hi >= completions:
            return f"too large index: {hi}"
        previous = hi
    return ""


def _interval_total(text: str) -> int:
    total = 0
    for part in text.split(","):
        first, _, last = part.partition("-")
        total += int(last or first) - int(first) + 1
    return total


def validate_job_spec(job_spec: Obj, path: str, *, in_template: bool = False) -> tuple[Causes, dict[str, str]]:
    """``validateJobSpec``: counts, completion mode, selector, failure policy, template; returns (causes, template labels).

    ``in_template``: a CronJob's jobTemplate, whose selector is generated later and may not be set."""
    causes: Causes = []
    for name in ("parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished", "backoffLimitPerIndex",
                 "maxFailedIndexes"):
        causes.extend(nonnegative(child(path, name), get_int(job_spec, name, path, causes)))
    causes.extend(nonnegative(child(path, "activeDeadlineSeconds"),
                              get_int(job_spec, "activeDeadlineSeconds", path, causes, bits=64)))
    for flag in ("suspend", "manualSelector"):
        get_bool(job_spec, flag, path, causes)
    mode = job_spec.get("completionMode")
    if mode is not None:
        if mode not in COMPLETION_MODES:
            causes.append(not_supported(child(path, "completionMode"), mode, COMPLETION_MODES))
        elif mode == "Indexed":
            if job_spec.get("completions") is None:
                causes.append(required(child(path, "completions"), "when completion mode is Indexed"))
            parallelism = job_spec.get("parallelism")
            if isinstance(parallelism, int) and parallelism > MAX_PARALLELISM_INDEXED:
                causes.append(invalid(child(path, "parallelism"), parallelism,
                                      "must be less than or equal to 100000 when completion mode is Indexed"))
    per_index = job_spec.get("backoffLimitPerIndex")
    if per_index is not None and mode != "Indexed":
        causes.append(invalid(child(path, "backoffLimitPerIndex"), per_index, "requires indexed completion mode"))
    max_failed = job_spec.get("maxFailedIndexes")
    if max_failed is not None:
        if per_index is None:
            causes.append(required(child(path, "backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
        completions = job_spec.get("completions")
        if isinstance(max_failed, int) and isinstance(completions, int) and max_failed > completions:
            causes.append(invalid(child(path, "maxFailedIndexes"), max_failed,
                                  "must be less than or equal to completions"))
    replacement = job_spec.get("podReplacementPolicy")
    if replacement is not None:
        if job_spec.get("podFailurePolicy") is not None and replacement != "Failed":
            causes.append(not_supported(child(path, "podReplacementPolicy"), replacement, ("Failed",)))
        elif replacement not in REPLACEMENT_POLICIES:
            causes.append(not_supported(child(path, "podReplacementPolicy"), replacement, REPLACEMENT_POLICIES))
    _validate_success_policy(job_spec, path, causes)
    pod_spec, labels = _validate_template(job_spec, path, causes)
    selector = get_opt_map(job_spec, "selector", path, causes)
    if in_template:
        if selector is not None:
            causes.append(invalid(child(path, "selector"), selector, "`selector` will be auto-generated"))
        if job_spec.get("manualSelector") is True:
            causes.append(not_supported(child(path, "manualSelector"), True, ("nil", "false")))
    elif selector is None:
        causes.append(required(child(path, "selector")))
    elif validate_label_selector(selector, child(path, "selector"), causes) and not selector_matches(selector, labels):
        causes.append(invalid(child(path, "template.metadata.labels"), labels,
                              "`selector` does not match template `labels`"))
    _validate_failure_policy(job_spec, path, pod_spec, causes)
    return causes, labels


def template_labels_of(job_spec: Obj) -> dict[str, Any]:
    template = job_spec.get("template")
    template_meta = template.get("metadata") if isinstance(template, dict) else None
    labels = template_meta.get("labels") if isinstance(template_meta, dict) else None
    return labels if isinstance(labels, dict) else {}
