"""What the web console's tests share: a real secured cluster with the console in front of it, and a
real browser (Debian's Chromium driven by Playwright) at 1280x800.

``console_cluster`` (module scope): etcd and a TLS API server with RBAC and token users
(tests/securecluster.py), the scheduler and the controller-manager with their own certificates,
simulated nodes ``sim-1`` and ``sim-2`` (one ``minik8s kubelet --simulated`` each, as its node), and
``minik8s console`` on a free port. ``browser`` (module scope) is Chromium; ``page`` (per test) a
fresh context and page; ``logged_in(page, cluster, who)`` logs in through the form (a token user by
token, anyone else by uploading their kubeconfig). ``screenshot(page, name)`` writes
``<artefacts>/console/<name>.png`` where artefacts is ``$MINIK8S_ARTIFACTS`` (default
``build/artifacts``, ignored by git): CI keeps them, nothing commits them.

Without Chromium or Playwright the tests fail (CI installs both: scripts/docker-up, the test extra).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.cluster import ComponentProcess, free_port
from tests.securecluster import SecureCluster
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1280, "height": 800}
NODES = ("sim-1", "sim-2")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("no chromium on PATH: scripts/docker-up installs Debian's (apt-get install chromium)")
    return found


def artefacts() -> Path:
    out = Path(os.environ.get("MINIK8S_ARTIFACTS") or ROOT / "build" / "artifacts") / "console"
    out.mkdir(parents=True, exist_ok=True)
    return out


def screenshot(page: Any, name: str) -> Path:
    path = artefacts() / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@dataclass
class ConsoleCluster:
    api: SecureCluster
    url: str  # the console
    console: ComponentProcess

    def admin(self) -> httpx.Client:
        return self.api.client("admin")


@pytest.fixture(scope="module")
def console_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleCluster]:
    c = SecureCluster.start(tmp_path_factory.mktemp("console"))
    try:
        c.start_component("controller-manager", "--no-leader-elect")
        c.start_component("scheduler", "--no-leader-elect")
        for node in NODES:
            c.start_component("kubelet", "--simulated", "--node-name", node, "--kubelet-port", "0",
                              who=f"node:{node}")
        port = free_port()
        console = c.start_component("console", "--port", str(port), who="admin")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(url + "/healthz").status_code == 200, 30, "the console's /healthz",
                 lambda: console.logs()[-2000:])
        with c.client("admin") as admin:
            def ready() -> bool:
                nodes = admin.get("/api/v1/nodes").json().get("items") or []
                return len(nodes) == len(NODES) and all(
                    any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"].get("conditions") or [])
                    for n in nodes)
            wait_for(ready, 60, "the simulated nodes Ready", lambda: "\n".join(p.logs()[-1500:] for p in c.components))
        yield ConsoleCluster(c, url, console)
    finally:
        c.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; an uncaught exception in the page's scripts fails the test that saw it."""
    context = browser.new_context(viewport=VIEWPORT)
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(f"{e.name}: {e.message}\n{e.stack}"))
    yield p
    context.close()
    assert not errors, "the page's scripts failed:\n" + "\n".join(errors)


def logged_in(page: Any, cluster: ConsoleCluster, who: str = "admin", route: str = "overview") -> Any:
    """Log in through the form, then open ``#/<route>``; returns the page."""
    page.goto(f"{cluster.url}/#/{route}")
    token = cluster.api._token(who)
    if token:
        page.fill("#login-token", token)
    else:
        page.set_input_files("#login-kubeconfig", str(cluster.api.kubeconfig(who)))
    page.click("form.login button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])", timeout=10000)
    return page
