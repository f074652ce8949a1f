"""Every watch of a page over one WebSocket (console/watchmux.py, console/static/api.js) against a real
secured cluster (tests/console/conftest.py): the protocol spoken by an aiohttp client to the real
``minik8s console`` process (events as the API sends them, a stream's end, cancel, the API's 403
for an RBAC-limited user word for word, paths outside the API refused, no socket without a session
or from another site, a logout closing the socket); the per-socket limit and cancelled upstream
requests on an in-process console (its tasks can be counted); in a real browser, api.js ``watch()``
keeping its promise, three pages of one browser with more streams than a browser's 6 connections to
a host all live, a logout reaching the session's other pages, and a page living through the
console's restart (last: it restarts the module's console)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from aiohttp import web

from console.server import ConsoleSettings, create_app
from machinery.kubeconfig import ClientConfig
from tests.cluster import free_port
from tests.console.conftest import ROOT, ConsoleCluster, logged_in, screenshot
from tests.waiting import wait_for


async def login(url: str, body: dict[str, Any]) -> aiohttp.ClientSession:
    """A browser of the console's page: its Origin, its cookie (the jar takes an IP address's cookies)."""
    s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), headers={"Origin": url})
    r = await s.post(url + "/console/login", json=body)
    assert r.status == 200, await r.text()
    return s


def admin_login(c: ConsoleCluster) -> dict[str, Any]:
    return {"kubeconfig": Path(c.api.kubeconfig("admin")).read_text()}


def alice_login(c: ConsoleCluster) -> dict[str, Any]:
    return {"token": c.api._token("alice")}


async def frame(ws: aiohttp.ClientWebSocketResponse, timeout: float = 10) -> dict[str, Any]:
    msg = await ws.receive(timeout=timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    out: dict[str, Any] = orjson.loads(msg.data)
    return out


async def frame_of(ws: aiohttp.ClientWebSocketResponse, wid: int, timeout: float = 10) -> dict[str, Any]:
    """The next frame of watch ``wid`` (others' frames and bookmarks skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        f = await frame(ws, max(0.1, deadline - time.monotonic()))
        if f.get("id") == wid and (f.get("event") or {}).get("type") != "BOOKMARK":
            return f


async def admin_call(c: ConsoleCluster, method: str, path: str, **kw: Any) -> Any:
    def call() -> Any:
        with c.admin() as admin:
            r = admin.request(method, path, **kw)
            assert r.status_code < 300, r.text
            return r.json()
    return await asyncio.to_thread(call)


async def new_namespace(c: ConsoleCluster) -> str:
    """A new namespace, once the controller-manager has published its kube-root-ca.crt ConfigMap (so
    that ConfigMap's ADDED event is not among what a test's watch of ConfigMaps sees)."""
    ns = f"mux-{uuid.uuid4().hex[:6]}"
    await admin_call(c, "POST", "/api/v1/namespaces", json={"metadata": {"name": ns}})

    def published() -> bool:
        with c.admin() as admin:
            return admin.get(f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt").status_code == 200
    await asyncio.to_thread(wait_for, published, 30, f"kube-root-ca.crt in {ns}")
    return ns


def watch(wid: int, path: str, **query: str) -> dict[str, Any]:
    return {"op": "watch", "id": wid, "path": path, "query": {"allowWatchBookmarks": "true", **query}}


async def test_a_watch_over_the_socket_sees_what_the_api_sends_and_ends_when_it_does(
        console_cluster: ConsoleCluster) -> None:
    ns = await new_namespace(console_cluster)
    rv = (await admin_call(console_cluster, "GET", f"/api/v1/namespaces/{ns}/pods"))["metadata"]["resourceVersion"]
    async with await login(console_cluster.url, admin_login(console_cluster)) as s, \
            s.ws_connect(console_cluster.url + "/console/watch") as ws:
        await ws.send_json(watch(1, f"/api/v1/namespaces/{ns}/pods", resourceVersion=rv, timeoutSeconds="300"))
        await ws.send_json(watch(2, f"/api/v1/namespaces/{ns}/configmaps", resourceVersion=rv, timeoutSeconds="1"))
        await asyncio.sleep(0.3)
        await admin_call(console_cluster, "POST", f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": "one"}, "spec": {"containers": [{"name": "c", "image": "minik8s/busybox:1"}]}})
        f = await frame_of(ws, 1)
        assert f["event"]["type"] == "ADDED" and f["event"]["object"]["metadata"]["name"] == "one"
        assert f["event"]["object"]["kind"] == "Pod" and set(f) == {"id", "event"}
        # The API ends a watch at its timeoutSeconds: the page is told, and the socket stays open.
        assert await frame_of(ws, 2) == {"id": 2, "end": True}
        await ws.send_json(watch(3, f"/api/v1/namespaces/{ns}/pods", resourceVersion=rv))
        f = await frame_of(ws, 3)
        assert f["event"]["type"] == "ADDED" and f["event"]["object"]["metadata"]["name"] == "one"


async def test_a_cancelled_watch_sends_nothing_more(console_cluster: ConsoleCluster) -> None:
    ns = await new_namespace(console_cluster)
    rv = (await admin_call(console_cluster, "GET", f"/api/v1/namespaces/{ns}/configmaps"))["metadata"]["resourceVersion"]
    async with await login(console_cluster.url, admin_login(console_cluster)) as s, \
            s.ws_connect(console_cluster.url + "/console/watch") as ws:
        path = f"/api/v1/namespaces/{ns}/configmaps"
        await ws.send_json(watch(7, path, resourceVersion=rv))
        # The query reaches the API as the page wrote it (selectors with = , ( ) and spaces).
        await ws.send_json(watch(8, path, resourceVersion=rv, labelSelector="app in (one, two),tier!=db",
                                 fieldSelector="metadata.name!=other"))
        await asyncio.sleep(0.3)
        await ws.send_json({"op": "cancel", "id": 7})
        await ws.send_json({"op": "cancel", "id": 12345})  # an unknown id: nothing to do
        await asyncio.sleep(0.3)
        for name, labels in (("other", {"app": "one"}), ("db", {"app": "two", "tier": "db"}),
                             ("after-cancel", {"app": "two", "tier": "web"})):
            await admin_call(console_cluster, "POST", path, json={"metadata": {"name": name, "labels": labels}})
        frames = []
        with pytest.raises(asyncio.TimeoutError):
            while True:
                frames.append(await frame(ws, timeout=1.5))
        events = [(f["id"], f["event"]["object"]["metadata"]["name"]) for f in frames
                  if f["event"]["type"] != "BOOKMARK"]
        assert events == [(8, "after-cancel")]  # the cancelled watch sent nothing more


async def test_a_limited_user_gets_the_apis_403_for_a_namespace_it_may_not_read(console_cluster: ConsoleCluster) -> None:
    ns = await new_namespace(console_cluster)
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    await admin_call(console_cluster, "POST", f"{rbac}/namespaces/{ns}/roles", json={
        "metadata": {"name": "read"}, "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                                 "verbs": ["get", "list", "watch"]}]})
    await admin_call(console_cluster, "POST", f"{rbac}/namespaces/{ns}/rolebindings", json={
        "metadata": {"name": "alice-read"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
        "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]})
    with console_cluster.api.client("alice") as alice:
        wait_for(lambda: alice.get(f"/api/v1/namespaces/{ns}/configmaps").status_code == 200, 15,
                 "the RoleBinding in the authorizer's cache")
        direct = alice.get("/api/v1/namespaces/default/configmaps", params={"watch": "1"})
        assert direct.status_code == 403
    async with await login(console_cluster.url, alice_login(console_cluster)) as s, \
            s.ws_connect(console_cluster.url + "/console/watch") as ws:
        await ws.send_json(watch(1, "/api/v1/namespaces/default/configmaps"))
        f = await frame_of(ws, 1)
        assert f["code"] == 403 and f["error"] == direct.json()
        assert f["error"]["message"] == ('configmaps is forbidden: User "alice" cannot watch resource "configmaps" '
                                         'in API group "" in the namespace "default"')
        # Her own namespace, on the same socket: live.
        alice_list_rv = (await admin_call(console_cluster, "GET", f"/api/v1/namespaces/{ns}/configmaps"))
        await ws.send_json(watch(2, f"/api/v1/namespaces/{ns}/configmaps",
                                 resourceVersion=alice_list_rv["metadata"]["resourceVersion"]))
        await asyncio.sleep(0.3)
        await admin_call(console_cluster, "POST", f"/api/v1/namespaces/{ns}/configmaps",
                         json={"metadata": {"name": "hers"}})
        f = await frame_of(ws, 2)
        assert f["event"]["type"] == "ADDED" and f["event"]["object"]["metadata"]["name"] == "hers"


@pytest.mark.parametrize("message, wid, expected", [
    (watch(1, "/console/session"), 1, "only paths under /api and /apis can be watched"),
    (watch(2, "/api/v1/../../console/session"), 2, "only paths under /api and /apis can be watched"),
    (watch(3, "/api/v1/%2e%2e/pods"), 3, "only paths under /api and /apis can be watched"),
    (watch(4, "/api/v1/pods?watch=0"), 4, "only paths under /api and /apis can be watched"),
    ({"op": "watch", "id": 5, "path": "/api/v1/pods", "query": {"labelSelector": ["a"]}}, 5,
     'a watch\'s "query" is an object of strings'),
    ({"op": "list", "id": 6}, 6, 'a message\'s "op" is "watch" or "cancel"'),
    ({"op": "watch", "id": "7", "path": "/api/v1/pods"}, None, 'a message is a JSON object with an integer "id"'),
])
async def test_what_is_not_a_watch_of_the_api_is_refused_with_a_400_frame(
        console_cluster: ConsoleCluster, message: dict[str, Any], wid: int | None, expected: str) -> None:
    async with await login(console_cluster.url, admin_login(console_cluster)) as s, \
            s.ws_connect(console_cluster.url + "/console/watch") as ws:
        await ws.send_json(message)
        f = await frame(ws)
        assert f["id"] == wid and f["code"] == 400 and f["error"]["reason"] == "BadRequest"
        assert f["error"]["message"].startswith(expected), f
        await ws.send_str("not json")
        f = await frame(ws)
        assert f["id"] is None and f["code"] == 400
        assert not ws.closed  # a mistake ends no other watch


async def test_no_socket_without_a_session_or_from_another_site(console_cluster: ConsoleCluster) -> None:
    url = console_cluster.url
    async with aiohttp.ClientSession(headers={"Origin": url}) as anonymous:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await anonymous.ws_connect(url + "/console/watch")
        assert refused.value.status == 401
        r = await anonymous.get(url + "/console/watch")
        assert r.status == 401 and (await r.json())["message"] == "log in to the console first"
    async with await login(url, admin_login(console_cluster)) as s:
        for origin in ("http://evil.example", None):
            headers = {"Origin": origin} if origin else {}
            if origin is None:
                s.headers.pop("Origin")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await s.ws_connect(url + "/console/watch", headers=headers)
            assert refused.value.status == 403
        r = await s.get(url + "/console/watch", headers={"Origin": url})
        assert r.status == 400  # not an upgrade


async def test_a_logout_closes_the_sessions_sockets(console_cluster: ConsoleCluster) -> None:
    url = console_cluster.url
    async with await login(url, admin_login(console_cluster)) as s, s.ws_connect(url + "/console/watch") as ws:
        await ws.send_json(watch(1, "/api/v1/namespaces/default/configmaps"))
        await asyncio.sleep(0.3)
        assert (await s.post(url + "/console/logout")).status == 200
        while (msg := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
            pass  # the namespace's ConfigMaps as the watch began
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(url + "/console/watch")
        assert refused.value.status == 401


def running_watches() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("watch ") and not t.done()]


async def test_the_watches_of_a_socket_are_bounded_and_end_with_it(console_cluster: ConsoleCluster) -> None:
    """An in-process console (the same app as ``minik8s console``), so its upstream tasks can be counted."""
    api = console_cluster.api
    settings = ConsoleSettings(server=ClientConfig(server=api.url, ca_file=str(api.pki.ca_cert)), max_watches=3)
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    try:
        async with await login(url, admin_login(console_cluster)) as s:
            ns = await new_namespace(console_cluster)
            path = f"/api/v1/namespaces/{ns}/configmaps"
            rv = (await admin_call(console_cluster, "GET", path))["metadata"]["resourceVersion"]
            async with s.ws_connect(url + "/console/watch") as ws:
                for wid in (1, 2, 3, 4):
                    await ws.send_json(watch(wid, path, resourceVersion=rv))
                # The fourth watch's answer (events of the first three, such as the namespace's
                # kube-root-ca.crt ConfigMap being added, skipped).
                f = await frame_of(ws, 4)
                assert f["code"] == 429 and f["error"]["reason"] == "TooManyRequests"
                assert "3 watches open" in f["error"]["message"]
                assert len(running_watches()) == 3
                await ws.send_json({"op": "cancel", "id": 1})
                await ws.send_json(watch(4, path, resourceVersion=rv))
                wait_for_tasks = time.monotonic() + 5
                while {t.get_name().split()[1] for t in running_watches()} != {"2", "3", "4"}:
                    assert time.monotonic() < wait_for_tasks, running_watches()
                    await asyncio.sleep(0.05)
                # The fourth was taken: no refusal this time (events may come; no error frame).
                seen: list[dict[str, Any]] = []
                with contextlib.suppress(asyncio.TimeoutError):
                    while len(seen) < 100:
                        seen.append(await frame(ws, timeout=0.5))
                assert [f for f in seen if "error" in f] == [], seen
            deadline = time.monotonic() + 5
            while running_watches():  # the socket closed: every upstream request with it
                assert time.monotonic() < deadline, running_watches()
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()


def workloads(ns: str) -> list[tuple[str, dict[str, Any]]]:
    """A Deployment and a StatefulSet (one pod each): events on all four streams of the workloads view."""
    template = {"spec": {"containers": [{"name": "web", "image": "minik8s/busybox:1"}]}}
    return [
        ("deployments", {"metadata": {"name": "web", "namespace": ns}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, **template}}}),
        ("statefulsets", {"metadata": {"name": "db", "namespace": ns}, "spec": {
            "replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, **template}}}),
    ]


def test_two_console_pages_with_many_streams_each_stay_live(page: Any, console_cluster: ConsoleCluster) -> None:
    """Two pages of one browser on the workloads view (Deployments, ReplicaSets, pods and StatefulSets:
    4 streams each, 8 in all, more than the 6 connections a browser opens to one host) and a third on
    the overview (3 more). With a fetch per watch the second page's last streams waited for a free
    connection forever; over one WebSocket a page, every view follows the cluster."""
    with console_cluster.admin() as admin:
        ns = f"mux-{uuid.uuid4().hex[:6]}"
        assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    sockets: dict[str, list[str]] = {"first": [], "second": [], "third": []}
    page.on("websocket", lambda ws: sockets["first"].append(ws.url))
    logged_in(page, console_cluster, "admin", route=f"workloads/{ns}")
    second = page.context.new_page()  # the same browser: the same session cookie, the same connections
    second.on("websocket", lambda ws: sockets["second"].append(ws.url))
    second.goto(f"{console_cluster.url}/#/workloads/{ns}")
    third = page.context.new_page()
    third.on("websocket", lambda ws: sockets["third"].append(ws.url))
    third.goto(f"{console_cluster.url}/#/overview")
    for p in (page, second):
        p.wait_for_function("""() => [...document.querySelectorAll('[data-view=workloads] .wl-kind:not([hidden]) .wl-empty')]
            .every(e => e.textContent.startsWith('No '))""", timeout=15000)  # every list arrived
    third.wait_for_function("() => document.querySelector('#ov-nodes')?.textContent.includes('2 of 2 Ready')")
    with console_cluster.admin() as admin:
        for plural, body in workloads(ns):
            r = admin.post(f"/apis/apps/v1/namespaces/{ns}/{plural}", json=body)
            assert r.status_code == 201, r.text
    for p in (page, second):
        p.wait_for_selector(f'[data-workload="{ns}/deployment/web"] [data-replicaset^="{ns}/web-"] '
                            f'[data-pod^="{ns}/web-"]', timeout=10000)
        p.wait_for_selector(f'[data-workload="{ns}/statefulset/db"] [data-pod="{ns}/db-0"]', timeout=10000)
    third.wait_for_function("() => Number(document.querySelector('#ov-pods').textContent.split(': ')[1]) >= 2")
    screenshot(second, "two-pages-workloads")
    watch_url = console_cluster.url.replace("http://", "ws://") + "/console/watch"
    assert sockets == {"first": [watch_url], "second": [watch_url], "third": [watch_url]}


WATCH_SEMANTICS = """async (ns) => {
  const { watch, ApiError } = await import('/static/api.js');  // the page's own module (one socket)
  const out = { events: [] };
  const mine = `/api/v1/namespaces/${ns}/configmaps`;
  out.resolved = await watch(mine, { timeoutSeconds: '1' }, (ev) => out.events.push(`${ev.type} ${ev.object.metadata.name}`))
    .then(() => true, (e) => String(e));
  await watch('/api/v1/namespaces/default/configmaps', {}, () => {})
    .catch((e) => { out.refused = [e instanceof ApiError, e.code, e.message, e.status.kind]; });
  const ctl = new AbortController();
  const aborted = watch(mine, {}, () => {}, ctl.signal);
  setTimeout(() => ctl.abort(), 200);
  await aborted.catch((e) => { out.aborted = e.name; });
  await watch(mine, {}, () => { throw new Error('enough'); }).catch((e) => { out.thrown = e.message; });
  await watch('/console/session', {}, () => {}).catch((e) => { out.outside = [e.code, e.message]; });
  return out;
}"""


def test_the_pages_watch_keeps_its_promise(page: Any, console_cluster: ConsoleCluster) -> None:
    """api.js ``watch()`` over the socket, as a limited user: resolves when the API ends the stream, rejects
    with an ApiError carrying the API's 403 Status, with an AbortError on abort, with what onEvent threw."""
    with console_cluster.admin() as admin:
        ns = f"mux-{uuid.uuid4().hex[:6]}"
        assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        assert admin.post(f"{rbac}/namespaces/{ns}/roles", json={"metadata": {"name": "read"}, "rules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]}).status_code == 201
        assert admin.post(f"{rbac}/namespaces/{ns}/rolebindings", json={
            "metadata": {"name": "alice-read"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read"},
            "subjects": [{"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}]}).status_code == 201
        assert admin.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "hers"}}).status_code == 201
    with console_cluster.api.client("alice") as alice:
        wait_for(lambda: alice.get(f"/api/v1/namespaces/{ns}/configmaps").status_code == 200, 15,
                 "the RoleBinding in the authorizer's cache")
        denied = alice.get("/api/v1/namespaces/default/configmaps", params={"watch": "1"}).json()["message"]
    logged_in(page, console_cluster, "alice", route=f"pods/{ns}")
    out = page.evaluate(WATCH_SEMANTICS, ns)
    assert out["resolved"] is True and "ADDED hers" in out["events"], out
    assert out["refused"] == [True, 403, denied, "Status"]
    assert out["aborted"] == "AbortError" and out["thrown"] == "enough"
    assert out["outside"][0] == 400 and out["outside"][1].startswith("only paths under /api and /apis")


def test_a_logout_in_one_page_sends_the_sessions_other_pages_to_the_login(page: Any, console_cluster: ConsoleCluster) -> None:
    logged_in(page, console_cluster, "admin", route="nodes")
    other = page.context.new_page()  # the same session cookie
    other.goto(f"{console_cluster.url}/#/nodes")
    for p in (page, other):
        p.wait_for_selector('[data-node="sim-1"]')
    page.click("#logout")
    page.wait_for_selector("form.login")
    # The other page learns at once (its watch socket closed with 4401), not at its next request.
    other.wait_for_function("() => document.querySelector('form.login [role=alert]')?.textContent"
                            " === 'Your session ended: log in again.'", timeout=5000)
    assert page.inner_text("form.login [role=alert]") == ""  # the one that logged out says nothing more


def test_a_page_follows_the_cluster_again_after_the_console_restarts(page: Any, console_cluster: ConsoleCluster) -> None:
    """(Last in the module: it restarts the module's console.) The console stopping closes the page's
    watch socket: every stream says "Reconnecting"; the restarted console knows no session (they live
    in its memory), so the same page, never reloaded, asks for a login and then follows the cluster."""
    logged_in(page, console_cluster, "admin", route="nodes")
    page.wait_for_selector('[data-node="sim-1"]')
    console = console_cluster.console
    console.stop()
    page.wait_for_function("() => document.getElementById('connection').textContent.includes('Reconnecting')",
                           timeout=10000)
    console.proc = subprocess.Popen(console.args, stdout=console.log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for(lambda: httpx.get(console_cluster.url + "/healthz").status_code == 200, 30, "the console back",
             lambda: console.logs()[-2000:])
    page.wait_for_function("() => document.querySelector('form.login [role=alert]')?.textContent"
                           " === 'Your session ended: log in again.'", timeout=30000)
    page.set_input_files("#login-kubeconfig", str(console_cluster.api.kubeconfig("admin")))
    page.click("form.login button[type=submit]")
    page.wait_for_selector('[data-node="sim-1"]')
    assert page.evaluate("document.getElementById('connection').textContent") == ""
    with console_cluster.admin() as admin:
        ns = f"mux-{uuid.uuid4().hex[:6]}"
        assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
        r = admin.post(f"/api/v1/namespaces/{ns}/pods", json={
            "metadata": {"name": "after"}, "spec": {"containers": [{"name": "c", "image": "minik8s/busybox:1"}]}})
        assert r.status_code == 201, r.text
    page.wait_for_selector(f'[data-pod="{ns}/after"]', timeout=15000)
