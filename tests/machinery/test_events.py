"""The event recorder writes core/v1 Events that kubectl describe finds, and folds repeats into a count."""

from __future__ import annotations

from machinery.client import ApiClient
from machinery.events import EventRecorder


async def test_events_are_recorded_and_repeats_counted(apiserver, namespace: str) -> None:  # type: ignore[no-untyped-def]
    async with ApiClient(apiserver.url) as client:
        cm = await client.create(("v1", "configmaps"), {"metadata": {"name": "subject"}}, namespace=namespace)
        rec = EventRecorder(client, "test-component", host="node-1")
        await rec.event(cm, "Warning", "Broken", "it broke")
        await rec.event(cm, "Warning", "Broken", "it broke")
        await rec.event(cm, "Normal", "Fixed", "it works")
        uid = cm["metadata"]["uid"]
        listed = await client.list(("v1", "events"), namespace=namespace,
                                   field_selector=f"involvedObject.uid={uid},involvedObject.name=subject")
        by_reason = {e["reason"]: e for e in listed["items"]}
        assert set(by_reason) == {"Broken", "Fixed"}
        assert by_reason["Broken"]["count"] == 2 and by_reason["Fixed"]["count"] == 1
        assert by_reason["Broken"]["involvedObject"]["kind"] == "ConfigMap"
        assert by_reason["Broken"]["source"] == {"component": "test-component", "host": "node-1"}
