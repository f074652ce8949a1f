"""Job (batch/v1): runs pods of a template until a number of them succeed.

After pkg/registry/batch/job/strategy.go: ``SetDefaults_Job`` (``jobspec.default_job_spec``), the
generated selector (``batch.kubernetes.io/controller-uid`` plus the ``job-name``/``controller-uid``
labels on the template, old and new spellings, as 1.27+ does), ``ValidateJob`` with
``validateGeneratedSelector``, the update rules (selector, template, completionMode and
podFailurePolicy immutable; completions only in tandem with parallelism for Indexed Jobs; the
scheduling directives of a suspended, never started Job are mutable), ``status: {}`` on create,
``/status``, the ``kubectl get jobs`` columns and the protobuf tables ``kubectl create job`` sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.timefmt import human_duration, parse_time

from ...openapi.facts import keyed
from ...validation.fielderrors import Causes, Obj, child, dict_at, invalid, required
from ...validation.objectmeta import selector_matches
from ..base import AGE, NAME, Column, Strategy, age, meta, name_of, spec, status
from ..common.defaulting import map_at
from ..common.podtemplate import CONTAINERS_COLUMN, IMAGES_COLUMN, container_cells, template_spec
from ..common.printers import format_label_selector
from .jobspec import FIELD_IMMUTABLE, default_job_spec, template_labels_of, validate_job_spec

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
# What a suspended Job that never started may still change in its template (JobMutableSchedulingDirectives).
_MUTABLE_POD_FIELDS = ("nodeSelector", "affinity", "tolerations", "schedulingGates")

JOB_MESSAGES: dict[str, str] = {
    "Job": "metadata:1:ObjectMeta spec:2:JobSpec status:3:JobStatus",
    "JobSpec": (
        "parallelism:1:i! completions:2:i! activeDeadlineSeconds:3:i! podFailurePolicy:11:PodFailurePolicy "
        "successPolicy:16:SuccessPolicy backoffLimit:7:i! backoffLimitPerIndex:12:i! maxFailedIndexes:13:i! "
        "selector:4:LabelSelector manualSelector:5:b! template:6:PodTemplateSpec ttlSecondsAfterFinished:8:i! "
        "completionMode:9:s! suspend:10:b! podReplacementPolicy:14:s! managedBy:15:s!"),
    "JobStatus": (
        "conditions:1:*JobCondition startTime:2:Time completionTime:3:Time active:4:i succeeded:5:i "
        "failed:6:i terminating:11:i! completedIndexes:7:s failedIndexes:10:s! "
        "uncountedTerminatedPods:8:UncountedTerminatedPods ready:9:i!"),
    "JobCondition": (
        "type:1:s! status:2:s! lastProbeTime:3:Time lastTransitionTime:4:Time reason:5:s message:6:s"),
    "PodFailurePolicy": "rules:1:*PodFailurePolicyRule",
    "PodFailurePolicyRule": (
        "action:1:s! onExitCodes:2:PodFailurePolicyOnExitCodesRequirement "
        "onPodConditions:3:*PodFailurePolicyOnPodConditionsPattern"),
    "PodFailurePolicyOnExitCodesRequirement": "containerName:1:s! operator:2:s! values:3:*i",
    "PodFailurePolicyOnPodConditionsPattern": "type:1:s! status:2:s",
    "SuccessPolicy": "rules:1:*SuccessPolicyRule",
    "SuccessPolicyRule": "succeededIndexes:1:s! succeededCount:2:i!",
    "UncountedTerminatedPods": "succeeded:1:*s failed:2:*s",
    "JobTemplateSpec": "metadata:1:ObjectMeta spec:2:JobSpec",
}

JOB_TYPE_FACTS = {
    "V1JobStatus": {"conditions": keyed("type")},
}


def has_condition(obj: Mapping[str, Any], kind: str) -> bool:
    """``hasJobCondition``: the first condition of that type is True."""
    for condition in status(obj).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition.get("status") == "True"
    return False


def job_status_cell(obj: Mapping[str, Any]) -> str:
    """The STATUS column of ``printJob``."""
    if has_condition(obj, "Complete"):
        return "Complete"
    if has_condition(obj, "Failed"):
        return "Failed"
    if meta(obj).get("deletionTimestamp"):
        return "Terminating"
    if has_condition(obj, "Suspended"):
        return "Suspended"
    if has_condition(obj, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def completions_cell(obj: Mapping[str, Any]) -> str:
    succeeded = int(status(obj).get("succeeded") or 0)
    completions = spec(obj).get("completions")
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = int(spec(obj).get("parallelism") or 0)
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def duration_cell(obj: Mapping[str, Any], now: datetime) -> str:
    start = parse_time(status(obj).get("startTime"))
    if start is None:
        return ""
    end = parse_time(status(obj).get("completionTime")) or now
    return human_duration((end - start).total_seconds())


def generate_selector(obj: Obj) -> None:
    """``generateSelector``: the template gets the Job's name and uid labels (unless set), the selector its uid."""
    job_spec = map_at(obj, "spec", create=True)
    template = map_at(job_spec, "template", create=True)
    template_meta = map_at(template, "metadata", create=True)
    if job_spec is None or template_meta is None:
        return
    labels = template_meta.get("labels")
    if labels is None:
        labels = template_meta["labels"] = {}
    if not isinstance(labels, dict):
        return
    m = meta(obj)
    name, uid = str(m.get("name") or ""), str(m.get("uid") or "")
    for key, value in ((LEGACY_JOB_NAME_LABEL, name), (JOB_NAME_LABEL, name),
                       (LEGACY_CONTROLLER_UID_LABEL, uid), (CONTROLLER_UID_LABEL, uid)):
        labels.setdefault(key, value)
    selector = map_at(job_spec, "selector", create=True)
    if selector is None:
        return
    match_labels = selector.get("matchLabels")
    if match_labels is None:
        match_labels = selector["matchLabels"] = {}
    if isinstance(match_labels, dict):
        match_labels.setdefault(CONTROLLER_UID_LABEL, uid)


def _has_label(labels: Mapping[str, Any], key: str, expected: str, path: str) -> Causes:
    """``ValidateHasLabel``."""
    label_path = f"{path}.labels[{key}]"
    if key not in labels:
        return [required(label_path, f"must be '{expected}'")]
    if labels[key] != expected:
        return [invalid(label_path, dict(labels), f"must be '{expected}'")]
    return []


def _validate_generated_selector(obj: Obj, job_spec: Obj) -> Causes:
    if job_spec.get("manualSelector") is True:
        return []
    m = dict_at(obj, "metadata")
    uid, name = str(m.get("uid") or ""), str(m.get("name") or "")
    causes: Causes = []
    if not uid:
        causes.append(required("metadata.uid"))
    labels = template_labels_of(job_spec)
    path = "spec.template.metadata"
    for key, expected in ((LEGACY_CONTROLLER_UID_LABEL, uid), (LEGACY_JOB_NAME_LABEL, name),
                          (CONTROLLER_UID_LABEL, uid), (JOB_NAME_LABEL, name)):
        causes.extend(_has_label(labels, key, expected, path))
    selector = job_spec.get("selector")
    if isinstance(selector, dict) and not selector_matches(selector, {CONTROLLER_UID_LABEL: uid}):
        causes.append(invalid("spec.selector", selector, "`selector` not auto-generated"))
    return causes


def _scheduling_stripped(template: Any) -> Any:
    """The template without what a suspended, never started Job may change."""
    if not isinstance(template, dict):
        return template
    out = dict(template)
    template_meta = dict(dict_at(template, "metadata"))
    template_meta.pop("labels", None)
    template_meta.pop("annotations", None)
    out["metadata"] = template_meta
    pod_spec = dict(dict_at(template, "spec"))
    for key in _MUTABLE_POD_FIELDS:
        pod_spec.pop(key, None)
    out["spec"] = pod_spec
    return out


def job_spec_update_causes(new_spec: Obj, old_spec: Obj, *, path: str, mutable_scheduling: bool) -> Causes:
    """``ValidateJobSpecUpdate``: what a Job (or a CronJob's template, never) may not change."""
    causes: Causes = []
    for name in ("selector", "completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy",
                 "successPolicy"):
        if new_spec.get(name) != old_spec.get(name):
            causes.append(invalid(child(path, name), new_spec.get(name), FIELD_IMMUTABLE))
    new_completions, old_completions = new_spec.get("completions"), old_spec.get("completions")
    if new_completions != old_completions:
        if new_spec.get("completionMode") != "Indexed":
            causes.append(invalid(child(path, "completions"), new_completions, FIELD_IMMUTABLE))
        elif new_completions != new_spec.get("parallelism"):
            causes.append(invalid(child(path, "completions"), new_completions,
                                  f"can only be modified in tandem with {child(path, 'parallelism')}"))
    new_template, old_template = new_spec.get("template"), old_spec.get("template")
    if mutable_scheduling:
        new_template, old_template = _scheduling_stripped(new_template), _scheduling_stripped(old_template)
    if new_template != old_template:
        causes.append(invalid(child(path, "template"), new_spec.get("template"), FIELD_IMMUTABLE))
    return causes


class JobStrategy(Strategy):
    group = "batch"
    kind = "Job"
    plural = "jobs"
    singular = "job"
    categories = ("all",)
    subresources = ("status",)
    model = "V1Job"
    initial_status: Obj = {}
    selectable_fields = ("status.successful",)
    columns = (
        NAME,
        Column("Status", description="Status of the job."),
        Column("Completions", description="The number of pods which reached phase Succeeded. The value increases "
                                          "monotonically for a given spec. However, it may decrease in reaction to "
                                          "scale down of elastic indexed jobs."),
        Column("Duration", description="Time required to complete the job."),
        AGE,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column("Selector", priority=1, description=(
            "A label query over pods that should match the pod count. Normally, the system sets this field for "
            "you.")),
    )
    type_facts = JOB_TYPE_FACTS
    protobuf_messages = JOB_MESSAGES

    def defaults(self, obj: Obj) -> None:
        job_spec = map_at(obj, "spec", create=True)
        if job_spec is not None:
            default_job_spec(job_spec, meta=map_at(obj, "metadata"))

    def prepare_for_create(self, obj: Obj, ctx: Any) -> None:
        super().prepare_for_create(obj, ctx)
        if dict_at(obj, "spec").get("manualSelector") is not True:
            generate_selector(obj)
        # Kubernetes defaults again whenever it reads the stored Job, so an unlabelled Job shows
        # the template's labels, generated ones included: store what it would show.
        job_meta = map_at(obj, "metadata")
        labels = template_labels_of(dict_at(obj, "spec"))
        if job_meta is not None and not job_meta.get("labels") and labels:
            job_meta["labels"] = dict(labels)

    def validate(self, obj: Obj) -> Causes:
        job_spec = dict_at(obj, "spec")
        causes = _validate_generated_selector(obj, job_spec)
        spec_causes, _ = validate_job_spec(job_spec, "spec")
        return causes + spec_causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        old_spec = dict_at(old, "spec")
        never_started = old_spec.get("suspend") is True and not dict_at(old, "status").get("startTime")
        return job_spec_update_causes(dict_at(new, "spec"), old_spec, path="spec", mutable_scheduling=never_started)

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        out = super().field_values(obj)
        out["status.successful"] = str(int(status(obj).get("succeeded") or 0))
        return out

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        names, images = container_cells(template_spec(obj))
        return [name_of(obj), job_status_cell(obj), completions_cell(obj), duration_cell(obj, now), age(obj, now),
                names, images, format_label_selector(spec(obj).get("selector"))]


STRATEGY = JobStrategy()
