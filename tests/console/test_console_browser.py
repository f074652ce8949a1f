"""The web console in a real browser against a real cluster (tests/console/conftest.py): the login,
the nodes view following a Deployment's pods live (each within a second of its creation) and its
cordon and drain, the overview's counts, and the page surviving an API server restart (last: it
restarts the module's API server)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from typing import Any

import httpx

from tests.console.conftest import ROOT, ConsoleCluster, logged_in, screenshot
from tests.waiting import wait_for


def deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "minik8s/busybox:1"}]}}}}


def namespace(admin: httpx.Client) -> str:
    ns = f"ui-{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    return ns


def test_a_login_is_refused_without_a_credential_the_api_server_accepts(page: Any, console_cluster: ConsoleCluster) -> None:
    page.goto(console_cluster.url)
    page.fill("#login-token", "nobody-knows-this-token")
    page.click("form.login button[type=submit]")
    alert = page.wait_for_selector("form.login [role=alert]:not(:empty)")
    assert alert.inner_text().startswith("the API server refused this credential")
    assert page.is_hidden("#nav")
    screenshot(page, "login")


def test_a_deployments_pods_appear_on_the_nodes_view_within_a_second(page: Any, console_cluster: ConsoleCluster) -> None:
    logged_in(page, console_cluster, "admin", route="nodes")
    page.wait_for_selector('[data-node="sim-1"]')
    page.wait_for_selector('[data-node="sim-2"]')
    with console_cluster.admin() as admin:
        ns = namespace(admin)
        rv = admin.get(f"/api/v1/namespaces/{ns}/pods").json()["metadata"]["resourceVersion"]
        created: dict[str, float] = {}  # pod -> when the API's own watch saw it ADDED

        def follow() -> None:
            with console_cluster.admin() as watcher, watcher.stream(
                    "GET", f"/api/v1/namespaces/{ns}/pods",
                    params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "20"}) as r:
                import json
                for line in r.iter_lines():
                    if line:
                        ev = json.loads(line)
                        if ev["type"] == "ADDED":
                            created.setdefault(f"{ns}/{ev['object']['metadata']['name']}", time.monotonic())
                        if len(created) == 4:
                            return
        t = threading.Thread(target=follow, daemon=True)
        t.start()
        time.sleep(0.3)
        assert admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, "web", 4)).status_code == 201
        shown: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while len(shown) < 4 and time.monotonic() < deadline:
            for pod in page.eval_on_selector_all(f'[data-pod^="{ns}/"]', "els => els.map(e => e.dataset.pod)"):
                shown.setdefault(pod, time.monotonic())
            time.sleep(0.02)
        t.join(10)
        assert set(shown) == set(created) and len(shown) == 4, (shown, created)
        late = {p: round(shown[p] - created[p], 3) for p in shown if shown[p] - created[p] > 1.0}
        assert not late, f"pods shown more than a second after their creation: {late}"
        # Bound by the scheduler: every block ends up in a node's card, none in the unscheduled lane.
        page.wait_for_function(f"""() => [...document.querySelectorAll('[data-pod^="{ns}/"]')]
            .every(b => b.closest('[data-node]').dataset.node.startsWith('sim-'))""", timeout=15000)
        screenshot(page, "nodes")
        # Scaled down through the API: the blocks go as the pods do, with no reload.
        r = admin.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/web/scale", json={"spec": {"replicas": 1}},
                        headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        page.wait_for_function(f"""() => document.querySelectorAll('[data-pod^="{ns}/"]').length === 1""",
                               timeout=15000)


def test_the_overview_counts_nodes_and_pods(page: Any, console_cluster: ConsoleCluster) -> None:
    logged_in(page, console_cluster, "admin", route="overview")
    heading = page.wait_for_selector("#ov-nodes")
    page.wait_for_function("() => document.querySelector('#ov-nodes').textContent.includes('2 of 2 Ready')")
    assert "Nodes: 2 of 2 Ready" in heading.inner_text()
    page.wait_for_selector("dd[data-phase=Running]")
    screenshot(page, "overview")


def test_cordon_and_drain_from_the_nodes_view(page: Any, console_cluster: ConsoleCluster) -> None:
    page.on("dialog", lambda d: d.accept())  # the drain's confirmation
    logged_in(page, console_cluster, "admin", route="nodes")
    with console_cluster.admin() as admin:
        ns = namespace(admin)
        assert admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, "spread", 4)).status_code == 201

        def on(node: str) -> list[str]:
            pods = admin.get(f"/api/v1/namespaces/{ns}/pods").json()["items"]
            return [p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == node
                    and p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        wait_for(lambda: len(on("sim-1")) + len(on("sim-2")) == 4 and on("sim-1"), 30, "4 pods Running, some on sim-1")
        page.click('[data-node="sim-1"] [data-action=drain]')
        wait_for(lambda: admin.get("/api/v1/nodes/sim-1").json()["spec"].get("unschedulable") is True, 10,
                 "sim-1 cordoned by the drain")
        page.wait_for_selector('[data-node="sim-1"] [data-action=uncordon]')
        wait_for(lambda: not on("sim-1") and len(on("sim-2")) == 4, 30, "every pod evicted to sim-2")
        page.wait_for_function(f"""() => !document.querySelector('[data-node="sim-1"] [data-pod^="{ns}/"]')""")
        page.click('[data-node="sim-1"] [data-action=uncordon]')
        wait_for(lambda: not admin.get("/api/v1/nodes/sim-1").json()["spec"].get("unschedulable"), 10,
                 "sim-1 uncordoned")
        page.wait_for_selector('[data-node="sim-1"] [data-action=cordon]')
        admin.delete(f"/apis/apps/v1/namespaces/{ns}/deployments/spread")


def restart_apiserver(c: ConsoleCluster, down_seconds: float) -> None:
    """The module's API server stopped, kept down ``down_seconds``, started again on the same ports."""
    api = c.api.apiserver
    api.stop()
    time.sleep(down_seconds)
    api.proc = subprocess.Popen(api.args, stdout=api.log.open("ab"), stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    c.api._wait_secure()


def test_the_page_says_when_the_api_server_is_away_and_resumes_after_its_restart(
        page: Any, console_cluster: ConsoleCluster) -> None:
    logged_in(page, console_cluster, "admin", route="nodes")
    page.wait_for_selector('[data-node="sim-1"]')
    stopped = threading.Thread(target=restart_apiserver, args=(console_cluster, 6.0))
    stopped.start()
    page.wait_for_function("() => document.getElementById('connection').textContent.includes('Reconnecting')",
                           timeout=10000)
    screenshot(page, "reconnecting")
    stopped.join(120)
    page.wait_for_function("() => document.getElementById('connection').textContent === ''", timeout=30000)
    with console_cluster.admin() as admin:
        ns = namespace(admin)
        assert admin.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=deployment(ns, "after", 2)).status_code == 201
    # The same page, never reloaded, follows the cluster again.
    page.wait_for_function(f"""() => document.querySelectorAll('[data-pod^="{ns}/"]').length === 2""", timeout=30000)


UNLABELLED = """() => [...document.querySelectorAll('main button, main input, main select, main textarea, main a')]
  .filter(el => el.offsetParent !== null)
  .filter(el => {
    const name = (el.getAttribute('aria-label') || el.textContent || el.value || el.title || '').trim();
    const labelled = el.id && document.querySelector(`label[for="${el.id}"]`);
    const wrapped = el.closest('label');
    return !name && !labelled && !wrapped && !el.getAttribute('aria-labelledby');
  })
  .map(el => el.outerHTML.slice(0, 120))"""


# WCAG 2 contrast of every visible text against the background it is drawn on (the first opaque
# background-color of it or an ancestor, semi-transparent ones blended): 4.5:1, or 3:1 for large text
# (24px, or 18.66px bold). Disabled controls are exempt, as WCAG exempts them.
LOW_CONTRAST = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return [0, 0, 0, 0];
    const v = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [v[0], v[1], v[2], v.length > 3 ? v[3] : 1]; };
  const blend = (top, under) => top.slice(0, 3).map((c, i) => c * top[3] + under[i] * (1 - top[3]));
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let under = [255, 255, 255];
    for (const c of layers.reverse()) under = blend(c, under);
    return under;
  };
  const lum = (rgb) => { const [r, g, b] = rgb.map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length || el.closest("[disabled], [aria-disabled=true]")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
    const bg = background(el);
    const fg = blend(parse(style.color), bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < needed) out.push(`${ratio.toFixed(2)} < ${needed}: <${el.tagName.toLowerCase()} class="${el.className}"> ${el.textContent.trim().slice(0, 40)}`);
  }
  return out;
}"""


def test_every_view_has_enough_contrast(page: Any, console_cluster: ConsoleCluster) -> None:
    """Every text of every view (and the login form) is readable: WCAG AA contrast, measured in the
    browser from the computed colours, with the cluster's objects on the page."""
    page.goto(console_cluster.url)
    page.wait_for_selector("form")
    assert page.evaluate(LOW_CONTRAST) == [], "low contrast on the login form"
    # The measure finds grey on white (2.8:1).
    page.evaluate("""() => { const p = document.createElement('p'); p.id = 'probe'; p.style.color = '#999';
        p.textContent = 'probe'; document.body.append(p); }""")
    assert [x for x in page.evaluate(LOW_CONTRAST) if x.endswith("probe")], "the contrast measure missed #999 on white"
    page.evaluate("() => document.getElementById('probe').remove()")
    logged_in(page, console_cluster, "admin", route="overview")
    routes = page.eval_on_selector_all("#nav a", "els => els.map(a => a.getAttribute('href'))")
    for href in routes:
        page.goto(f"{console_cluster.url}/{href}")
        page.wait_for_selector(f'main .view[data-view="{href.split("/")[1]}"]')
        page.wait_for_timeout(500)
        assert page.evaluate(LOW_CONTRAST) == [], f"low contrast on {href}"


def test_every_view_names_its_controls_and_keeps_focus_visible(page: Any, console_cluster: ConsoleCluster) -> None:
    """Keyboard and screen-reader basics on every view of the navigation: each visible button,
    link, input and select has an accessible name, and the navigation is reachable with Tab."""
    logged_in(page, console_cluster, "admin", route="overview")
    routes = page.eval_on_selector_all("#nav a", "els => els.map(a => a.getAttribute('href'))")
    assert len(routes) >= 7, routes
    for href in routes:
        page.goto(f"{console_cluster.url}/{href}")
        page.wait_for_selector(f'main .view[data-view="{href.split("/")[1]}"]')
        page.wait_for_timeout(500)  # the first list arrived
        assert page.evaluate(UNLABELLED) == [], f"unnamed controls on {href}"
    page.goto(f"{console_cluster.url}/#/overview")
    page.reload()  # a fresh document: Tab starts from its top, not from where the last view's focus was
    page.wait_for_selector('main .view[data-view="overview"]')
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"  # the skip link comes first
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('nav') !== null")


# console/static/vt.js, the exec terminal's screen, run in the page as the terminal runs it.
VT_CASES = """async () => {
  const { Screen } = await import('/static/vt.js');
  const { keyBytes } = await import('/static/views/podterminal.js');
  const out = {};
  const replies = [];
  let s = new Screen(10, 3, { reply: (t) => replies.push(t), scrollbackLines: 2 });
  // Wrap at the last column, scrolling into a bounded scrollback.
  s.write('0123456789abc\\r\\nline2\\r\\nline3\\r\\nline4');
  out.wrapped = s.screenText();
  out.scrollback = s.scrollback.map((l) => s.text(l));
  // A sequence cut between two writes; cursor position report.
  s.write('\\x1b[');
  s.write('2;4H*\\x1b[6n');
  out.cut = s.text(s.grid[1]);
  out.replies = replies.slice();
  // Erase to the end of the line and of the screen.
  s = new Screen(6, 3);
  s.write('aaaaaa\\r\\nbbbbbb\\r\\ncccccc\\x1b[2;3H\\x1b[K');
  out.eraseLine = s.screenText();
  s.write('\\x1b[1;4H\\x1b[J');
  out.eraseScreen = s.screenText();
  // A scroll region: a line feed at its bottom scrolls only the region; insert and delete lines.
  s = new Screen(4, 4);
  s.write('top\\r\\nr1\\r\\nr2\\r\\nbot\\x1b[2;3r\\x1b[3;1H\\nnew');
  out.region = s.screenText();
  s.write('\\x1b[r\\x1b[2;1H\\x1b[L');
  out.insertLine = s.screenText();
  s.write('\\x1b[M\\x1b[M');
  out.deleteLines = s.screenText();
  // Delete and insert characters.
  s = new Screen(8, 1);
  s.write('abcdef\\x1b[1;2H\\x1b[2P');
  out.deleteChars = s.screenText();
  s.write('\\x1b[2@');
  out.insertChars = s.screenText();
  // The alternate screen: a full-screen program's, then the shell's screen and cursor back.
  s = new Screen(10, 2);
  s.write('shell$ ');
  s.write('\\x1b[?1049h\\x1b[Hfull-screen');
  out.alternate = s.screenText();
  s.write('\\x1b[?1049l');
  out.restored = [s.screenText(), s.x, s.y];
  // Colours: red text, then inverse, each drawn as a span; the cursor cell inverted.
  s = new Screen(6, 1);
  s.write('\\x1b[31mr\\x1b[0m-\\x1b[7mi\\x1b[m<');
  out.html = [s.html(s.grid[0], s.x), s.x];
  // Fewer rows: the top goes to the scrollback and the cursor stays on its line.
  s = new Screen(5, 4);
  s.write('a\\r\\nb\\r\\nc\\r\\nd');
  s.resize(3, 2);
  out.resized = [s.screenText(), s.scrollback.map((l) => s.text(l)), s.x, s.y, s.cols, s.rows];
  const key = (k, mods = {}) => keyBytes({ key: k, ctrlKey: false, shiftKey: false, altKey: false, metaKey: false, ...mods });
  out.keys = [key('Enter'), key('Backspace'), key('c', { ctrlKey: true }), key('ArrowUp'), key('x', { altKey: true }),
              key('Tab'), key('Tab', { shiftKey: true }), key('C', { ctrlKey: true, shiftKey: true }), key('é'), key('Shift')];
  return out;
}"""


def test_the_terminal_screen_interprets_what_programs_write(page: Any, console_cluster: ConsoleCluster) -> None:
    page.goto(console_cluster.url)
    page.wait_for_selector("form")
    r = page.evaluate(VT_CASES)
    assert r["wrapped"] == "line2\nline3\nline4"
    assert r["scrollback"] == ["0123456789", "abc"]  # the wrapped line's two rows, at most 2 kept
    assert r["cut"] == "lin*3" and r["replies"] == ["\x1b[2;5R"]
    assert r["eraseLine"] == "aaaaaa\nbb\ncccccc"
    assert r["eraseScreen"] == "aaa\n\n"
    assert r["region"] == "top\nr2\nnew\nbot"
    assert r["insertLine"] == "top\n\nr2\nnew"
    assert r["deleteLines"] == "top\nnew\n\n"
    assert r["deleteChars"] == "adef" and r["insertChars"] == "a  def"
    assert r["alternate"] == "full-scree\nn"
    assert r["restored"] == ["shell$\n", 7, 0]
    assert r["html"] == ['<span style="color:#ff7b72">r</span>-<span style="color:#11151c;background:#e6e9ef">i</span>'
                         '&lt;<span style="color:#11151c;background:#e6e9ef"> </span> ', 4]
    assert r["resized"] == ["c\nd", ["a", "b"], 1, 1, 3, 2]
    assert r["keys"] == ["\r", "\x7f", "\x03", "\x1b[A", "\x1bx", "\t", None, None, "é", None]
