"""The console's pod view (console/static/views/pod.js) in a real browser against a secured cluster
whose node runs real containers (tests/console/dockerconsole.py): a pod's log streams into the
page as the container prints it, a command typed into the terminal runs in the container (exec over
the channel protocol, relayed by the console and the API server to the kubelet), the containers'
state and restart count are the API's, and the pod is deleted after a confirmation."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.console.conftest import logged_in, screenshot
from tests.console.dockerconsole import DockerConsole, docker_console  # noqa: F401 - the module's cluster
from tests.dockertest import IMAGE

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

# logged_in returns once the navigation shows; the view may still be loading, so every predicate
# below reads its element with ?. (a TypeError inside wait_for_function fails it at once).
TICKER = "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.3; done"
CRASHER = "echo starting; sleep 1; echo failing >&2; exit 3"


@pytest.fixture(scope="module")
def ns(docker_console: DockerConsole) -> str:  # noqa: F811 - the fixture imported above
    return docker_console.namespace("ui-pod")


@pytest.fixture(scope="module")
def ticker(docker_console: DockerConsole, ns: str) -> str:  # noqa: F811
    """Pod ``ticker``, running: it prints ``tick-<n>`` every 0.3 s."""
    docker_console.create_pod(ns, "ticker", ["sh", "-c", TICKER])
    docker_console.wait_running(ns, "ticker")
    return "ticker"


def ticks(text: str) -> list[int]:
    """The ticks of the complete lines of ``text`` (the last line may still be arriving)."""
    return [int(n) for n in re.findall(r"^tick-(\d+)\n", text, re.MULTILINE)]


def test_a_pods_log_streams_into_the_page(page: Any, docker_console: DockerConsole, ns: str,  # noqa: F811
                                          ticker: str) -> None:
    logged_in(page, docker_console.console, "admin", route=f"pod/{ns}/{ticker}")
    page.wait_for_function(r"() => /tick-\d+\n/.test((document.querySelector('#pod-log') || {}).textContent || '')",
                           timeout=30000)
    page.evaluate("() => { window.sameDocument = true; }")
    first = max(ticks(page.text_content("#pod-log") or ""))
    opened = time.monotonic()
    # Lines the container prints from now on reach the page on the stream already open.
    later = first + 6
    page.wait_for_function(f"() => document.querySelector('#pod-log')?.textContent.includes('tick-{later}\\n')",
                           timeout=15000)
    assert time.monotonic() - opened < 10
    assert page.evaluate("() => window.sameDocument === true"), "the page was reloaded"
    seen = ticks(page.text_content("#pod-log") or "")
    assert seen == list(range(seen[0], seen[-1] + 1)), f"lines lost or repeated: {seen}"
    assert "Following main live." in (page.text_content("#pod-log-status") or "")
    page.eval_on_selector("#pod-logs", "e => e.scrollIntoView({ block: 'center' })")
    page.wait_for_function(f"() => document.querySelector('#pod-log')?.textContent.includes('tick-{later + 3}\\n')")
    screenshot(page, "pod-logs")


# The terminal's lines (the scrollback's, then the screen's rows), one per line.
TERM_TEXT = "() => [...document.querySelectorAll('#pod-term-output div > div')].map((d) => d.textContent).join('\\n')"


def term_shows(page: Any, pattern: str, timeout: float = 10000) -> str:
    """Waits until the terminal's text (scrollback and screen) matches ``pattern`` (a JS regex, m flag)."""
    handle = page.wait_for_function(f"() => (({TERM_TEXT})().match(new RegExp({pattern!r}, 'm')) || [null])[0]",
                                    timeout=timeout)
    return str(handle.json_value())


def enter(page: Any, line: str) -> None:
    """Types ``line`` into the focused terminal, then Enter."""
    page.keyboard.type(line)
    page.keyboard.press("Enter")


def test_a_command_typed_in_the_terminal_runs_in_the_container(page: Any, docker_console: DockerConsole,  # noqa: F811
                                                               ns: str, ticker: str) -> None:
    logged_in(page, docker_console.console, "admin", route=f"pod/{ns}/{ticker}")
    page.wait_for_function("() => document.querySelector('#pod-term-container')?.value === 'main'", timeout=30000)
    page.eval_on_selector("#pod-terminal", "e => e.scrollIntoView({ block: 'center' })")
    # The keyboard alone: the button, then the terminal (it has the focus once connected).
    page.focus("#pod-term-start")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#pod-term-status')?.textContent.startsWith('Connected')",
                           timeout=15000)
    assert page.evaluate("() => document.activeElement.id") == "pod-term-output"
    size = page.text_content("#pod-term-status") or ""
    cols, rows = (int(n) for n in re.search(r"\((\d+)×(\d+)\)", size).groups())  # type: ignore[union-attr]

    enter(page, "echo hello-$((6*7))")
    term_shows(page, "hello-42")
    enter(page, "cat /etc/hostname")
    term_shows(page, f"^{ticker}\\s*$")
    enter(page, "ls /no-such-dir")
    assert "no-such-dir" in term_shows(page, "^ls: .*no-such-dir.*$")
    # A pseudo-terminal of the pane's size (channel 4), and Ctrl+C interrupts what runs in it.
    enter(page, "stty size")
    assert term_shows(page, "^\\d+ \\d+\\s*$").split() == [str(rows), str(cols)]
    # Ctrl+C only once the sleep is the terminal's foreground: the child shell says so before it
    # becomes the sleep (a Ctrl+C that reaches the shell first only gives a new prompt; CI saw that).
    enter(page, "sh -c 'echo sleeping-$((3*3)); exec sleep 30'")
    term_shows(page, "^sleeping-9\\s*$")
    page.keyboard.press("Control+C")
    enter(page, "echo after-$((1+1))")
    term_shows(page, "after-2", timeout=5000)  # not 30 s: the sleep was interrupted
    screenshot(page, "pod-terminal")
    # A full-screen program: busybox vi draws its screen, takes its keys, writes the file.
    enter(page, "vi /tmp/note")
    term_shows(page, "^~\\s*$")  # vi's empty lines
    page.keyboard.type("inote-from-vi")
    page.keyboard.press("Escape")
    page.wait_for_timeout(400)  # as a person types: ESC then ':' at once reads as one escape sequence
    enter(page, ":wq")
    enter(page, "cat /tmp/note")
    term_shows(page, "^note-from-vi\\s*$")
    # top redraws its whole screen in place, and q ends it.
    enter(page, "top")
    term_shows(page, "^\\s*PID\\s+PPID\\s+USER")
    page.keyboard.type("q")
    enter(page, "echo top-done")
    term_shows(page, "^top-done\\s*$")
    # A narrower window makes a narrower terminal, and the shell is told.
    page.set_viewport_size({"width": 900, "height": 800})
    enter(page, "clear; stty size")
    narrower = wait_narrower(page, cols)
    assert narrower < cols and f"({narrower}×" in (page.text_content("#pod-term-status") or "")
    # The shell's end comes back on the status channel: its exit code.
    enter(page, "exit 3")
    page.wait_for_function("() => document.querySelector('#pod-term-status')?.textContent"
                           ".includes('The session ended (exit code 3)')", timeout=10000)
    assert page.text_content("#pod-term-start") == "Open a shell"
    assert f"({narrower}×" not in size


def wait_narrower(page: Any, cols: int) -> int:
    """The columns ``stty size`` printed last, once they are fewer than ``cols``."""
    handle = page.wait_for_function(f"""() => {{
        const sizes = [...({TERM_TEXT})().matchAll(/^(\\d+) (\\d+)\\s*$/mg)];
        const last = sizes.length ? Number(sizes[sizes.length - 1][2]) : {cols};
        return last < {cols} ? last : null;
    }}""", timeout=10000)
    return int(handle.json_value())


def api_view(cs: dict[str, Any]) -> tuple[str, str, str]:
    """(state, reason, restarts) of a container status, as the page's row carries them."""
    state = cs.get("state") or {}
    key = next((k for k in ("running", "waiting", "terminated") if k in state), "unknown")
    return key, str((state.get(key) or {}).get("reason") or ""), str(cs.get("restartCount", 0))


def test_the_view_shows_the_containers_state_and_restarts_as_the_api_reports_them(
        page: Any, docker_console: DockerConsole, ns: str) -> None:  # noqa: F811
    docker_console.create_pod(ns, "crasher", ["sh", "-c", CRASHER],
                              ports=[{"name": "http", "containerPort": 8080}])
    logged_in(page, docker_console.console, "admin", route=f"pod/{ns}/crasher")
    row = '[data-container="main"]'
    page.wait_for_selector(row, timeout=30000)
    docker_console.cluster.wait("a restart", lambda: docker_console.container_status(ns, "crasher")
                                .get("restartCount", 0) >= 1, timeout=90)
    shown: tuple[str, str, str] | None = None
    api: tuple[str, str, str] | None = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = api_view(docker_console.container_status(ns, "crasher"))
        shown = tuple(page.eval_on_selector(row, "e => [e.dataset.state, e.dataset.reason, e.dataset.restarts]"))
        api = api_view(docker_console.container_status(ns, "crasher"))
        if before == api == shown and int(api[2]) >= 1:
            break
        time.sleep(0.1)
    assert shown == api, f"the page shows {shown}, the API says {api}"
    state, reason, restarts = api
    cells = page.eval_on_selector(row, "e => [...e.children].map(c => c.textContent)")
    assert cells[0] == "main" and cells[1] == IMAGE and cells[5] == "http 8080/TCP", cells
    assert cells[4] == restarts
    assert cells[2].startswith({"running": "Running", "waiting": f"Waiting: {reason}",
                                "terminated": f"Terminated: {reason} (exit code 3)"}[state]), cells
    assert "last: Terminated: Error (exit code 3)" in cells[2], cells  # the instance before
    pod = docker_console.pod(ns, "crasher") or {}
    fields = page.eval_on_selector_all(".pod-fields dt", "els => Object.fromEntries(els.map(e => "
                                       "[e.textContent, e.nextElementSibling.textContent]))")
    assert fields["Node"] == docker_console.node and fields["QoS class"] == pod["status"]["qosClass"] == "BestEffort"
    assert fields["Host IP"] == pod["status"]["hostIP"]
    # The kubelet's events for this pod, live.
    page.wait_for_selector('[data-event-reason="Started"]', timeout=15000)
    screenshot(page, "pod-status")


def test_the_pod_is_deleted_after_a_confirmation(page: Any, docker_console: DockerConsole, ns: str) -> None:  # noqa: F811
    docker_console.create_pod(ns, "doomed", ["sleep", "3600"])
    logged_in(page, docker_console.console, "admin", route=f"pod/{ns}/doomed")
    page.wait_for_selector('[data-container="main"]', timeout=30000)
    page.click("#pod-delete")
    assert page.is_visible("#pod-delete-confirm")
    page.keyboard.press("Escape")  # changed our mind: nothing happens
    assert page.is_hidden("#pod-delete-confirm") and docker_console.pod(ns, "doomed") is not None
    page.click("#pod-delete")
    page.click("#pod-delete-confirm")
    docker_console.cluster.wait("the pod gone", lambda: docker_console.pod(ns, "doomed") is None, timeout=60)
    page.wait_for_function("() => document.querySelector('.view[data-view=pod]')?.textContent"
                           ".includes('This pod was deleted.')", timeout=10000)


def test_a_finished_pod_shows_its_whole_log_and_the_api_servers_refusal_of_a_shell(
        page: Any, docker_console: DockerConsole, ns: str) -> None:  # noqa: F811
    docker_console.create_pod(ns, "finished", ["sh", "-c", "echo all-done"], restart_policy="Never")
    docker_console.cluster.wait("pod finished Succeeded", lambda: ((docker_console.pod(ns, "finished") or {})
                                                                   .get("status") or {}).get("phase") == "Succeeded")
    logged_in(page, docker_console.console, "admin", route=f"pod/{ns}/finished")
    page.wait_for_function("() => document.querySelector('#pod-log')?.textContent === 'all-done\\n'", timeout=15000)
    page.wait_for_function("() => document.querySelector('#pod-log-status')?.textContent.startsWith('The log of main ended')")
    page.wait_for_function("() => document.querySelector('#pod-term-container')?.value === 'main'")
    page.click("#pod-term-start")
    # The browser says nothing of a refused WebSocket: the page shows the API server's own words.
    page.wait_for_function("() => document.querySelector('#pod-term-status')?.textContent === "
                           "'cannot exec into a container in a completed pod; current phase is Succeeded'",
                           timeout=15000)
    assert page.text_content("#pod-term-start") == "Open a shell"
