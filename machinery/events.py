"""Recording core/v1 Events about objects, as client-go's EventRecorder does.

Data flow: ``recorder.event(obj, type, reason, message)`` -> an Event named
``<object name>.<hex nanoseconds>`` (client-go's name; strictly increasing per recorder, so unique,
and cheaper than a UUID on the scheduler's hot path) in the object's namespace (``default`` for cluster-scoped
objects), with ``involvedObject`` pointing at the object, ``source.component`` and timestamps.
A repeat of the same (object, type, reason, message) within the recorder's lifetime patches the
existing Event's ``count`` and ``lastTimestamp`` instead of creating another, so a retry loop
does not flood the API. Recording never raises: an event is a hint, not part of the work.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable

from machinery import errors
from machinery.client import ApiClient

log = logging.getLogger(__name__)

EVENTS = ("v1", "events")
_MAX_REMEMBERED = 4096


def _now(clock: Callable[[], datetime]) -> str:
    return clock().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reference(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "name": meta.get("name"),
           "namespace": meta.get("namespace"), "uid": meta.get("uid"),
           "resourceVersion": meta.get("resourceVersion")}
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    def __init__(self, client: ApiClient, component: str, *, host: str | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._client = client
        self._component = component
        self._host = host
        self._clock = clock
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._last_ns = 0

    async def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        ref = reference(obj)
        namespace = ref.get("namespace") or "default"
        key = (str(ref.get("uid") or ref.get("name")), type_, reason, message)
        now = _now(self._clock)
        try:
            if key in self._seen:
                name, ns, count = self._seen[key]
                patch = {"count": count + 1, "lastTimestamp": now}
                try:
                    await self._client.patch(EVENTS, name, patch, namespace=ns, patch_type="merge")
                    self._seen[key] = (name, ns, count + 1)
                    return
                except errors.NotFoundError:
                    del self._seen[key]
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            name = f"{ref.get('name', 'object')}.{self._last_ns:x}"
            source: dict[str, str] = {"component": self._component}
            if self._host:
                source["host"] = self._host
            body = {"apiVersion": "v1", "kind": "Event",
                    "metadata": {"name": name, "namespace": namespace},
                    "involvedObject": ref, "type": type_, "reason": reason, "message": message,
                    "source": source, "count": 1, "firstTimestamp": now, "lastTimestamp": now,
                    "reportingComponent": self._component, "reportingInstance": self._host or ""}
            await self._client.create(EVENTS, body, namespace=namespace)
            self._seen[key] = (name, namespace, 1)
            if len(self._seen) > _MAX_REMEMBERED:
                del self._seen[next(iter(self._seen))]  # forget the oldest: it only costs a new Event
        except errors.ApiError as e:
            log.warning("could not record event %s %s on %s: %s", type_, reason, ref.get("name"), e)
