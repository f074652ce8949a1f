"""CronJob (batch/v1): creates Jobs from a template on a cron schedule.

After pkg/registry/batch/cronjob/strategy.go and ``ValidateCronJobCreate``/``Update``: defaults
(concurrencyPolicy Allow, suspend false, history limits 3 and 1, pod template defaults in the job
template), names of at most 52 characters (the Job names get a suffix), a schedule robfig/cron
parses without ``TZ=``/``CRON_TZ=``, a known ``timeZone``, the job template's JobSpec rules (its
selector is generated per Job, so it may not be set), ``status: {}`` on create, ``/status``, the
``kubectl get cronjobs`` columns and the protobuf tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.cronschedule import ScheduleError, parse, zone
from machinery.timefmt import age_since

from ...openapi.facts import Facts
from ...validation.fielderrors import (Causes, Obj, child, enum, get_int, get_map, get_str, get_str_map, invalid,
                                       nonnegative, required)
from ...validation.objectmeta import read_labels, validate_annotations
from ..base import AGE, NAME, Column, Strategy, age, name_of, spec, status
from ..common.defaulting import map_at, set_if_unset
from ..common.podtemplate import CONTAINERS_COLUMN, IMAGES_COLUMN, container_cells, default_template
from ..common.printers import format_label_selector
from .job import JOB_MESSAGES
from .jobspec import validate_job_spec

CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
MAX_NAME_LENGTH = 52


def job_template_spec(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    template = spec(obj).get("jobTemplate")
    inner = template.get("spec") if isinstance(template, Mapping) else None
    return inner if isinstance(inner, Mapping) else {}


def _validate_schedule(cron_spec: Obj, causes: Causes) -> None:
    schedule = get_str(cron_spec, "schedule", "spec", causes)
    time_zone = cron_spec.get("timeZone")
    if not schedule:
        causes.append(required("spec.schedule"))
    elif "TZ" in schedule:
        detail = ("cannot use both timeZone field and TZ or CRON_TZ in schedule" if time_zone is not None
                  else "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
        causes.append(invalid("spec.schedule", schedule, detail))
    else:
        try:
            parse(schedule)
        except ScheduleError as e:
            causes.append(invalid("spec.schedule", schedule, str(e)))
    if time_zone is not None:
        if not isinstance(time_zone, str):
            causes.append(invalid("spec.timeZone", time_zone, "must be of type string"))
        else:
            try:
                zone(time_zone)
            except ScheduleError as e:
                causes.append(invalid("spec.timeZone", time_zone, str(e)))


def _validate_cronjob(obj: Obj) -> Causes:
    causes: Causes = []
    name = name_of(obj)
    if len(name) > MAX_NAME_LENGTH:
        causes.append(invalid("metadata.name", name, f"must be no more than {MAX_NAME_LENGTH} characters"))
    cron_spec = get_map(obj, "spec", "", causes)
    _validate_schedule(cron_spec, causes)
    causes.extend(nonnegative("spec.startingDeadlineSeconds",
                              get_int(cron_spec, "startingDeadlineSeconds", "spec", causes, bits=64)))
    causes.extend(enum("spec.concurrencyPolicy", get_str(cron_spec, "concurrencyPolicy", "spec", causes),
                       CONCURRENCY_POLICIES))
    for limit in ("successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        causes.extend(nonnegative(child("spec", limit), get_int(cron_spec, limit, "spec", causes)))
    template = get_map(cron_spec, "jobTemplate", "spec", causes)
    meta_path = "spec.jobTemplate.metadata"
    template_meta = get_map(template, "metadata", "spec.jobTemplate", causes)
    read_labels(template_meta, "labels", meta_path, causes)
    causes.extend(validate_annotations(get_str_map(template_meta, "annotations", meta_path, causes),
                                       child(meta_path, "annotations")))
    job_causes, _ = validate_job_spec(get_map(template, "spec", "spec.jobTemplate", causes), "spec.jobTemplate.spec",
                                      in_template=True)
    return causes + job_causes


class CronJobStrategy(Strategy):
    group = "batch"
    kind = "CronJob"
    plural = "cronjobs"
    singular = "cronjob"
    short_names = ("cj",)
    categories = ("all",)
    subresources = ("status",)
    model = "V1CronJob"
    initial_status: Obj = {}
    columns = (
        NAME,
        Column("Schedule", description="The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        Column("Timezone", description=(
            "The time zone name for the given schedule, see "
            "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones.")),
        Column("Suspend", type="boolean", description=(
            "This flag tells the controller to suspend subsequent executions, it does not apply to already "
            "started executions. Defaults to false.")),
        Column("Active", type="integer", description="A list of pointers to currently running jobs."),
        Column("Last Schedule", description="Information when was the last time the job was successfully scheduled."),
        AGE,
        CONTAINERS_COLUMN,
        IMAGES_COLUMN,
        Column("Selector", priority=1, description=(
            "A label query over pods that should match the pod count. Normally, the system sets this field for "
            "you.")),
    )
    type_facts = {"V1CronJobStatus": {"active": Facts(list_type="atomic")}}
    protobuf_messages = {
        **JOB_MESSAGES,
        "CronJob": "metadata:1:ObjectMeta spec:2:CronJobSpec status:3:CronJobStatus",
        "CronJobSpec": (
            "schedule:1:s timeZone:8:s! startingDeadlineSeconds:2:i! concurrencyPolicy:3:s suspend:4:b! "
            "jobTemplate:5:JobTemplateSpec successfulJobsHistoryLimit:6:i! failedJobsHistoryLimit:7:i!"),
        "CronJobStatus": "active:1:*ObjectReference lastScheduleTime:4:Time lastSuccessfulTime:5:Time",
    }

    def defaults(self, obj: Obj) -> None:
        cron_spec = map_at(obj, "spec", create=True)
        if cron_spec is None:
            return
        set_if_unset(cron_spec, "concurrencyPolicy", "Allow")
        if cron_spec.get("suspend") is None:
            cron_spec["suspend"] = False
        if cron_spec.get("successfulJobsHistoryLimit") is None:
            cron_spec["successfulJobsHistoryLimit"] = 3
        if cron_spec.get("failedJobsHistoryLimit") is None:
            cron_spec["failedJobsHistoryLimit"] = 1
        template = map_at(cron_spec, "jobTemplate")
        job_spec = map_at(template, "spec") if template is not None else None
        if job_spec is not None:
            default_template(job_spec)

    def validate(self, obj: Obj) -> Causes:
        return _validate_cronjob(obj)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        cron_spec, state = spec(obj), status(obj)
        last = state.get("lastScheduleTime")
        suspend = cron_spec.get("suspend")
        template = job_template_spec(obj)
        pod_template = template.get("template")
        pod_spec = pod_template.get("spec") if isinstance(pod_template, Mapping) else None
        names, images = container_cells(pod_spec if isinstance(pod_spec, Mapping) else {})
        return [name_of(obj), str(cron_spec.get("schedule") or ""),
                cron_spec.get("timeZone") if cron_spec.get("timeZone") is not None else "<none>",
                "<unset>" if suspend is None else ("True" if suspend else "False"),
                len(state.get("active") or []),
                age_since(last, now) if last else "<none>", age(obj, now),
                names, images, format_label_selector(template.get("selector"))]


STRATEGY = CronJobStrategy()
