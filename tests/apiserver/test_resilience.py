"""The apiserver survives etcd going away: clear 503s and not-ready while it is gone, full recovery after."""

from __future__ import annotations

import json
import time

import httpx

from tests.cluster import ApiServerProcess, Etcd


def _until(fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_etcd_outage_gives_status_errors_and_recovers() -> None:
    etcd = Etcd.start()
    server = ApiServerProcess.start(etcd.url)
    try:
        with httpx.Client(base_url=server.url, timeout=20) as c:
            base = "/api/v1/namespaces/default/configmaps"
            before = c.post(base, json={"metadata": {"name": "kept"}, "data": {"a": "1"}}).json()
            etcd.proc.terminate()
            etcd.proc.wait(10)
            assert _until(lambda: c.get("/readyz").status_code == 500, 15)
            assert c.get("/livez").status_code == 200  # alive, just not ready
            r = c.post(base, json={"metadata": {"name": "lost"}, "data": {"a": "1"}})
            assert r.status_code == 503, r.text
            assert r.json()["kind"] == "Status" and r.json()["reason"] == "ServiceUnavailable"
            etcd.restart()
            assert _until(lambda: c.get("/readyz").status_code == 200, 30)
            # Nothing acknowledged was lost, nothing refused was written, and writes and watches work again.
            got = c.get(f"{base}/kept").json()
            assert got["data"] == {"a": "1"} and got["metadata"]["uid"] == before["metadata"]["uid"]
            assert c.get(f"{base}/lost").status_code == 404
            created = _until(lambda: c.post(base, json={"metadata": {"name": "after"}, "data": {}}).status_code == 201)
            assert created
            rv = c.get(base).json()["metadata"]["resourceVersion"]
            c.patch(f"{base}/after", content=b'{"data":{"b":"2"}}', headers={"content-type": "application/merge-patch+json"})
            with c.stream("GET", base, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "5"}) as s:
                first = json.loads(next(line for line in s.iter_lines() if line))
            assert first["type"] == "MODIFIED" and first["object"]["metadata"]["name"] == "after"
    finally:
        server.stop()
        etcd.stop()
