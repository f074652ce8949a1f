"""The fault suite, part 2: etcd killed under a steady write load, and watchers cut off past compaction.

- etcd SIGKILLed while a writer creates ConfigMaps one after another, restarted on the same data
  4 s later: every create that got a 2xx is still there afterwards; every create that failed got a
  Kubernetes ``Status`` with code 503 or 504 (never a 500, never a dropped connection); a watch
  opened before the outage (reconnecting from its last resourceVersion as clients do) sees every
  acknowledged create; the time from etcd's restart to the next acknowledged write is recorded.
- An informer (machinery.informer, what every component uses) whose API server is SIGKILLed while
  writes go on through a second API server on the same etcd, long enough for its resourceVersion to
  be compacted: after the restart its watch gets 410 Gone, it relists, and its cache ends equal to
  the server's state (names and resourceVersions; deletions included).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from machinery.client import ApiClient
from machinery.informer import Informer
from tests.cluster import ApiServerProcess, Etcd
from tests.e2e.faults import EventRecorder, record
from tests.waiting import wait_for

pytestmark = pytest.mark.e2e


class Writer(threading.Thread):
    """Creates ConfigMaps w-0, w-1, ... one at a time until stopped; keeps every answer."""

    def __init__(self, url: str, ns: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ns = url, ns
        self.results: list[tuple[str, int, dict[str, Any] | None, float]] = []
        self.transport_errors: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as c:
            i = 0
            while not self.halt.is_set():
                name = f"w-{i}"
                i += 1
                try:
                    r = c.post(f"/api/v1/namespaces/{self.ns}/configmaps",
                               json={"metadata": {"name": name}, "data": {"i": name}})
                except httpx.HTTPError as e:
                    self.transport_errors.append(f"{name}: {type(e).__name__}: {e}")
                    continue
                try:
                    body = r.json()
                except ValueError:
                    body = None
                self.results.append((name, r.status_code, body, time.monotonic()))
                time.sleep(0.02)

    def acknowledged(self) -> set[str]:
        return {name for name, code, _, _ in self.results if 200 <= code < 300}


def test_etcd_killed_under_write_load_loses_no_acknowledged_write() -> None:
    etcd = Etcd.start()
    api = ApiServerProcess.start(etcd.url)
    ns = f"etcd-fault-{uuid.uuid4().hex[:6]}"
    try:
        with httpx.Client(base_url=api.url, timeout=30) as c:
            assert c.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
            watch = EventRecorder(api.url, f"/api/v1/namespaces/{ns}/configmaps")
            writer = Writer(api.url, ns)
            writer.start()
            wait_for(lambda: len(writer.acknowledged()) >= 20, 30, "writes before the outage")
            etcd.proc.kill()
            killed = time.monotonic()
            etcd.proc.wait(10)
            time.sleep(4)
            etcd.restart()
            restarted = time.monotonic()
            wait_for(lambda: any(code == 201 and at > restarted for _, code, _, at in writer.results), 60,
                     "an acknowledged write after etcd's restart")
            first_ok = min(at for _, code, _, at in writer.results if code == 201 and at > restarted)
            last_ok = max(at for _, code, _, at in writer.results if code == 201 and at < killed)
            record("etcd SIGKILLed, back (healthy) after 4 s -> first acknowledged write after it is healthy",
                   first_ok - restarted)
            record("etcd SIGKILLed 4 s -> writers' gap between acknowledged writes", first_ok - last_ok)
            time.sleep(1)
            writer.halt.set()
            writer.join(40)
            failures = [(name, code, body) for name, code, body, _ in writer.results if not 200 <= code < 300]
            assert failures, "no write failed: etcd's outage was not exercised"
            for name, code, body in failures:
                assert code in (503, 504), (name, code, body)
                assert body and body.get("kind") == "Status" and body.get("code") == code, (name, body)
            assert writer.transport_errors == []
            acked = writer.acknowledged()
            stored = {cm["metadata"]["name"] for cm in c.get(f"/api/v1/namespaces/{ns}/configmaps").json()["items"]}
            assert acked <= stored, f"acknowledged writes lost: {sorted(acked - stored)}"

            def watched() -> set[str]:
                names: set[str] = set()
                for etype, obj in watch.events:
                    if etype == "RELIST":
                        names |= {o["metadata"]["name"] for o in obj["items"]}
                    elif etype == "ADDED":
                        names.add(obj["metadata"]["name"])
                return names
            wait_for(lambda: acked <= watched(), 30, "the watch opened before the outage sees every acknowledged write")
            watch.stop(settle=0)
    finally:
        api.stop()
        etcd.stop()


async def test_informer_cut_off_past_compaction_relists_to_the_right_state() -> None:
    etcd = await asyncio.to_thread(Etcd.start)
    # A compacts nothing itself; B compacts every second keeping one second of history.
    a = await asyncio.to_thread(ApiServerProcess.start, etcd.url)
    b = await asyncio.to_thread(ApiServerProcess.start, etcd.url, "--compaction-interval", "1",
                                "--history-retention", "1")
    ns = f"compact-{uuid.uuid4().hex[:6]}"
    client = ApiClient(a.url)
    informer = Informer(client, "v1", "configmaps", namespace=ns)
    task = None
    try:
        async with httpx.AsyncClient(base_url=b.url, timeout=30) as hb:
            assert (await hb.post("/api/v1/namespaces", json={"metadata": {"name": ns}})).status_code == 201
            base = f"/api/v1/namespaces/{ns}/configmaps"
            for i in range(5):
                assert (await hb.post(base, json={"metadata": {"name": f"early-{i}"}})).status_code == 201
            task = informer.start()
            assert await informer.wait_synced(30)
            await asyncio.sleep(0.5)
            stale_rv = informer.resource_version
            a.proc.kill()
            await asyncio.to_thread(a.proc.wait, 10)
            for i in range(10):
                assert (await hb.post(base, json={"metadata": {"name": f"late-{i}"}})).status_code == 201
            for i in range(3):
                assert (await hb.delete(f"{base}/early-{i}")).status_code == 200
            for i in (3, 4):
                r = await hb.patch(f"{base}/early-{i}", json={"data": {"changed": "yes"}},
                                   headers={"Content-Type": "application/merge-patch+json"})
                assert r.status_code == 200

            async def compacted() -> bool:
                async with hb.stream("GET", base, params={"watch": "1", "resourceVersion": stale_rv,
                                                          "timeoutSeconds": "1"}) as r:
                    if r.status_code == 410:
                        return True
                    async for line in r.aiter_lines():
                        if line and json.loads(line).get("object", {}).get("code") == 410:
                            return True
                return False
            deadline = time.monotonic() + 30
            while not await compacted():
                assert time.monotonic() < deadline, "the informer's resourceVersion was never compacted"
                await asyncio.sleep(0.5)
            relists_before = informer.relists
            # Its log at info level: a start that is not ready in time shows why.
            a = await asyncio.to_thread(ApiServerProcess.start, etcd.url, "--log-level", "info", port=a.port)
            restarted = time.monotonic()
            live = (await hb.get(base)).json()["items"]
            want = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in live}

            def state() -> dict[str, str]:
                return {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in informer.list()}
            deadline = time.monotonic() + 60
            while state() != want:
                assert time.monotonic() < deadline, f"informer cache {state()} != server {want}"
                await asyncio.sleep(0.2)
            record("informer's API server back after its resourceVersion was compacted -> relisted, cache correct",
                   time.monotonic() - restarted)
            assert informer.relists > relists_before, "the informer did not relist"
            assert "early-0" not in state() and "late-9" in state()
    finally:
        informer.stop()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await client.close()
        a.stop()
        b.stop()
        etcd.stop()
