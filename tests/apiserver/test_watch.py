"""Watch semantics over a real apiserver: resume from any resourceVersion, order, exactly once, 410, bookmarks."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

import httpx
import pytest

from tests.cluster import ApiServerProcess, Etcd


def cm(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}}


def stream(http: httpx.Client, path: str, **params: Any) -> Iterator[dict[str, Any]]:
    with http.stream("GET", path, params={"watch": "1", **params}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line:
                yield json.loads(line)


def collect(http: httpx.Client, path: str, count: int, **params: Any) -> list[dict[str, Any]]:
    out = []
    for ev in stream(http, path, timeoutSeconds=5, **params):
        out.append(ev)
        if len(out) == count:
            break
    return out


def test_resume_from_every_resource_version_is_exactly_once_and_in_order(http: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    start = http.get(base).json()["metadata"]["resourceVersion"]
    history: list[tuple[str, str, str]] = []  # (type, name, resourceVersion) of every write
    for i in range(12):
        name = f"cm{i % 3}"
        if i < 3:
            r = http.post(base, json=cm(name, str(i)))
            history.append(("ADDED", name, r.json()["metadata"]["resourceVersion"]))
        elif i % 4 == 3:
            r = http.delete(f"{base}/{name}")
            got = [e for e in collect(http, base, 1, resourceVersion=history[-1][2])]
            history.append(("DELETED", name, got[0]["object"]["metadata"]["resourceVersion"]))
            r = http.post(base, json=cm(name, str(i)))
            history.append(("ADDED", name, r.json()["metadata"]["resourceVersion"]))
        else:
            r = http.patch(f"{base}/{name}", content=json.dumps({"data": {"v": str(i)}}).encode(),
                           headers={"content-type": "application/merge-patch+json"})
            history.append(("MODIFIED", name, r.json()["metadata"]["resourceVersion"]))
    rvs = [start] + [h[2] for h in history]
    assert [int(x) for x in rvs] == sorted(int(x) for x in rvs)
    for i, rv in enumerate(rvs):
        expected = history[i:]
        if not expected:
            continue
        got = collect(http, base, len(expected), resourceVersion=rv)
        assert [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"]) for e in got] \
            == expected, f"resumed from {rv}"


def test_watch_without_resource_version_starts_with_current_objects(http: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    http.post(base, json=cm("a", "1"))
    http.post(base, json=cm("b", "1"))
    got = collect(http, base, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_with_selector_sees_objects_leave_and_enter(http: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = http.post(base, json={**cm("s", "1"), "metadata": {"name": "s", "labels": {"k": "yes"}}}).json()["metadata"]["resourceVersion"]
    for labels in ({"k": "no"}, {"k": "yes"}):
        http.patch(f"{base}/s", content=json.dumps({"metadata": {"labels": labels}}).encode(),
                   headers={"content-type": "application/merge-patch+json"})
    got = collect(http, base, 2, resourceVersion=rv, labelSelector="k=yes")
    assert [e["type"] for e in got] == ["DELETED", "ADDED"]


def test_watch_single_object_by_name_and_timeout(http: httpx.Client, namespace: str) -> None:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    rv = http.post(base, json=cm("one", "1")).json()["metadata"]["resourceVersion"]
    http.post(base, json=cm("two", "1"))
    http.patch(f"{base}/one", content=b'{"data":{"v":"2"}}', headers={"content-type": "application/merge-patch+json"})
    t0 = time.monotonic()
    got = list(stream(http, base, resourceVersion=rv, fieldSelector="metadata.name=one", timeoutSeconds=1))
    assert time.monotonic() - t0 < 5  # the server ended the stream at timeoutSeconds
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("MODIFIED", "one")]


def test_bookmarks_when_allowed(etcd: Etcd) -> None:
    server = ApiServerProcess.start(etcd.url, "--bookmark-interval", "0.3")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            rv = c.get("/api/v1/namespaces/default/configmaps").json()["metadata"]["resourceVersion"]
            got = list(stream(c, "/api/v1/namespaces/default/configmaps", resourceVersion=rv,
                              allowWatchBookmarks="true", timeoutSeconds=1))
            assert got and all(e["type"] == "BOOKMARK" for e in got)
            assert int(got[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)
            assert got[-1]["object"]["kind"] == "ConfigMap"
    finally:
        server.stop()


def test_compacted_resource_version_answers_410() -> None:
    etcd = Etcd.start()
    server = ApiServerProcess.start(etcd.url, "--compaction-interval", "0.2", "--history-retention", "0.5", "--log-level", "info")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            base = "/api/v1/namespaces/default/configmaps"
            old = c.post(base, json=cm("x", "0")).json()["metadata"]["resourceVersion"]
            for i in range(1, 4):
                c.patch(f"{base}/x", content=json.dumps({"data": {"v": str(i)}}).encode(),
                        headers={"content-type": "application/merge-patch+json"})
            deadline = time.monotonic() + 15
            while True:
                got = collect(c, base, 1, resourceVersion=old)
                if got[0]["type"] == "ERROR" or time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            assert got[0]["type"] == "ERROR", got
            status = got[0]["object"]
            assert status["code"] == 410 and status["reason"] == "Expired"
            # A fresh list gives a resourceVersion that can be watched again.
            rv = c.get(base).json()["metadata"]["resourceVersion"]
            c.patch(f"{base}/x", content=b'{"data":{"v":"9"}}', headers={"content-type": "application/merge-patch+json"})
            assert collect(c, base, 1, resourceVersion=rv)[0]["type"] == "MODIFIED"
    finally:
        server.stop()
        etcd.stop()


@pytest.mark.parametrize("rv", ["abc", "-5"])
def test_malformed_resource_version_is_bad_request(http: httpx.Client, rv: str) -> None:
    r = http.get("/api/v1/configmaps", params={"watch": "1", "resourceVersion": rv})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
