"""Event (core/v1): what happened to an object, reported by a component.

Events are selectable by their involved object (``kubectl describe`` lists an object's events with
``involvedObject.name=...``) and print with LAST SEEN first, as ``kubectl get events`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from machinery.timefmt import age_since

from ...validation.fielderrors import (Causes, Obj, dict_at, each, get_int, get_opt_map, get_str, invalid,
                                       required)
from ...validation.formats import qualified_name_errors
from ..base import NAME, Column, Strategy, name_of


class EventStrategy(Strategy):
    kind = "Event"
    plural = "events"
    singular = "event"
    short_names = ("ev",)
    model = "CoreV1Event"
    selectable_fields = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                         "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                         "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type")
    columns = (
        Column("Last Seen", description="The time at which the most recent occurrence of this event was recorded."),
        Column("Type", description="Type of this event (Normal, Warning), new types could be added in the future"),
        Column("Reason", description=(
            "This should be a short, machine understandable string that gives the reason for the transition "
            "into the object's current status.")),
        Column("Object", description="The object that this event is about."),
        Column("Subobject", priority=1, description=(
            "If referring to a piece of an object instead of an entire object, this string should contain a "
            "valid JSON/Go field access statement.")),
        Column("Source", priority=1, description="The component reporting this event."),
        Column("Message", description="A human-readable description of the status of this operation."),
        Column("First Seen", priority=1, description="The time at which the event was first recorded."),
        Column("Count", priority=1, description="The number of times this event has occurred."),
        Column("Name", priority=1, format="name", description=NAME.description),
    )
    protobuf_messages = {
        "Event": (
            "metadata:1:ObjectMeta involvedObject:2:ObjectReference reason:3:s message:4:s "
            "source:5:EventSource firstTimestamp:6:Time lastTimestamp:7:Time count:8:i type:9:s "
            "eventTime:10:MicroTime series:11:EventSeries action:12:s related:13:ObjectReference "
            "reportingComponent:14:s! reportingInstance:15:s!"),
        "EventSource": "component:1:s host:2:s",
        "EventSeries": "count:1:i lastObservedTime:2:MicroTime",
    }

    def field_values(self, obj: Mapping[str, Any]) -> dict[str, str]:
        values = super().field_values(obj)
        source = obj.get("source")
        values["source"] = str(source.get("component") or "") if isinstance(source, Mapping) else ""
        return values

    def validate(self, obj: Obj) -> Causes:
        return _validate_event(obj)

    def row(self, obj: Mapping[str, Any], now: datetime) -> list[Any]:
        return _event_cells(obj, now)


def _event_source(event: Mapping[str, Any]) -> str:
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return f"{component}, {instance}" if instance else component


def _event_cells(event: Mapping[str, Any], now: datetime) -> list[Any]:
    first = (
        age_since(event.get("firstTimestamp"), now)
        if event.get("firstTimestamp")
        else age_since(event.get("eventTime"), now)
    )
    last = age_since(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if series is not None:
        last = age_since(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif count == 0:
        count = 1
    involved = event.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    return [
        last,
        event.get("type", ""),
        event.get("reason", ""),
        target,
        involved.get("fieldPath", ""),
        _event_source(event),
        (event.get("message") or "").strip(),
        first,
        int(count),
        name_of(event),
    ]


def _validate_event(obj: Obj) -> Causes:
    causes: Causes = []
    involved = get_opt_map(obj, "involvedObject", "", causes)
    if involved is None:
        causes.append(required("involvedObject"))
        involved = {}
    involved_ns = get_str(involved, "namespace", "involvedObject", causes)
    for name in ("kind", "name", "apiVersion", "uid", "fieldPath", "resourceVersion"):
        get_str(involved, name, "involvedObject", causes)
    meta = dict_at(obj, "metadata")
    namespace = meta.get("namespace") if isinstance(meta.get("namespace"), str) else ""
    # core/v1 accepts any type (Kubernetes checks Normal/Warning only through events.k8s.io/v1).
    get_str(obj, "type", "", causes)
    for name in ("reason", "message", "action", "reportingComponent", "reportingInstance"):
        get_str(obj, name, "", causes)
    get_int(obj, "count", "", causes)
    if not obj.get("eventTime"):
        # Legacy (core/v1 style) events: the namespace must agree with the involved object's.
        mismatch = namespace not in ("", "default") if not involved_ns else namespace != involved_ns
        if mismatch:
            causes.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
        return causes
    if not involved_ns and namespace not in ("default", "kube-system"):
        causes.append(invalid("involvedObject.namespace", involved_ns, "does not match event.namespace"))
    controller = get_str(obj, "reportingComponent", "", [])
    if not controller:
        causes.append(required("reportingComponent"))
    else:
        causes.extend(each("reportingComponent", controller, qualified_name_errors(controller)))
    for name, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
        value = get_str(obj, name, "", [])
        if not value:
            causes.append(required(name))
        elif len(value) > limit:
            causes.append(invalid(name, "", f"can have at most {limit} characters"))
    if len(get_str(obj, "message", "", [])) > 1024:
        causes.append(invalid("message", "", "can have at most 1024 characters"))
    return causes



STRATEGY = EventStrategy()
