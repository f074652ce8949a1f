// The pod view's live logs (views/pod.js mounts it): what kubectl logs -f gives, for one container.
//
// GET .../pods/NAME/log?follow=true&container=C&tailLines=N (or previous=true: the instance before)
// read as a stream (fetch + ReadableStream, not api.js), ANSI escapes stripped, appended once a frame
// into a fixed-size pane. The view calls update(pod) on every change of the pod: a new list of
// containers, or a new instance of the followed one (its containerID changes: a restart, or the
// first start), is followed again on its own; a stream that ends or fails while the container still
// runs (the kubelet restarting) is retried after 3 s. stop() (the view's unmount) aborts the stream.
import { ApiError } from "../api.js";
import { h } from "../dom.js";
import { ansiStripper } from "./podterminal.js";

const LOG_LINES_KEPT = 5000;
const TAILS = [["100", "last 100 lines"], ["1000", "last 1000 lines"], ["", "all lines"]];

// The API's Status message of a failed plain response (fetch, not api.js: the body is a stream).
async function failureMessage(response) {
  if (response.status === 401) window.dispatchEvent(new CustomEvent("console:logged-out"));
  try {
    const body = await response.json();
    if (body && body.message) return body.message;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

// The logs of the pod at podPath. containers.select(id, onChange) is the view's container <select>,
// containers.status(name) that container's status in the pod as last seen (undefined without one).
// Returns { section, update(pod, first) on every change of the pod (first: the first time), stop() }.
export function logsPanel(podPath, containers) {
  const logSel = containers.select("pod-log-container", () => followLogs());
  const tailSelect = h("select", { id: "pod-log-tail", onchange: () => followLogs() },
    TAILS.map(([v, t]) => h("option", { value: v }, t)));
  const previous = h("input", { type: "checkbox", id: "pod-log-previous", onchange: () => followLogs() });
  const logAgain = h("button", { type: "button", id: "pod-log-again", hidden: true, onclick: () => followLogs() }, "Follow again");
  const logStatus = h("p", { class: "pod-pane-status", id: "pod-log-status", role: "status" });
  const logPane = h("pre", { class: "pod-pane", id: "pod-log", tabindex: "0", role: "log", "aria-live": "off",
                             "aria-label": "Log output" });
  let mounted = true;
  let logAbort = null;
  let logRun = 0;
  let logState = "idle"; // idle | connecting | streaming | ended | failed
  let logInstance = null; // the containerID the stream was asked for
  let logRetry = null;
  let pendingLog = "";
  let logFrame = 0;

  function flushLog() {
    logFrame = 0;
    if (!pendingLog) return;
    const atBottom = logPane.scrollHeight - logPane.scrollTop - logPane.clientHeight < 40;
    logPane.append(pendingLog);
    pendingLog = "";
    if (logPane.childNodes.length > 200) {
      const lines = logPane.textContent.split("\n");
      logPane.textContent = lines.slice(-LOG_LINES_KEPT).join("\n");
    }
    if (atBottom) logPane.scrollTop = logPane.scrollHeight;
  }

  function appendLog(text) {
    if (!text) return;
    pendingLog += text;
    if (!logFrame) logFrame = requestAnimationFrame(flushLog);
  }

  function stopLogs() {
    logRun += 1;
    clearTimeout(logRetry);
    if (logAbort) logAbort.abort();
    logAbort = null;
  }

  function instanceOf(c) {
    const cs = containers.status(c);
    return cs ? cs.containerID || "" : "";
  }

  async function followLogs() {
    stopLogs();
    const run = logRun;
    const c = logSel.select.value;
    if (!c || !mounted) return;
    const q = new URLSearchParams({ container: c });
    if (tailSelect.value) q.set("tailLines", tailSelect.value);
    if (previous.checked) q.set("previous", "true");
    else q.set("follow", "true");
    logInstance = instanceOf(c);
    logState = "connecting";
    logAgain.hidden = true;
    logStatus.textContent = "Connecting…";
    logPane.textContent = "";
    pendingLog = "";
    const ctl = new AbortController();
    logAbort = ctl;
    const strip = ansiStripper();
    try {
      const response = await fetch(`${podPath}/log?${q}`, { credentials: "same-origin", signal: ctl.signal,
                                                           headers: { Accept: "text/plain, */*" } });
      if (!response.ok) throw new ApiError(null, response.status, response.statusText, await failureMessage(response));
      if (run !== logRun) return;
      logState = "streaming";
      logStatus.textContent = previous.checked ? `The previous instance of ${c}.` : `Following ${c} live.`;
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (run !== logRun) return;
        if (done) break;
        appendLog(strip(decoder.decode(value, { stream: true })));
      }
      appendLog(strip(decoder.decode()));
      logState = "ended";
      logStatus.textContent = previous.checked ? `The previous instance of ${c}: its whole log.`
        : `The log of ${c} ended (the container stopped); a new instance is followed when it starts.`;
      logAgain.hidden = false;
      // The stream may also end with the container still running (the kubelet restarted): resume.
      if (!previous.checked) {
        logRetry = setTimeout(() => {
          const cs = containers.status(c);
          if (run === logRun && cs && cs.state && cs.state.running && instanceOf(c) === logInstance) followLogs();
        }, 3000);
      }
    } catch (e) {
      if (run !== logRun || ctl.signal.aborted) return;
      logState = "failed";
      logStatus.textContent = e.message;
      logAgain.hidden = false;
      // A running container whose log could not be read (the kubelet restarting): try again soon.
      const cs = containers.status(c);
      if (!previous.checked && cs && cs.state && cs.state.running && !(e instanceof ApiError && e.code === 403)) {
        logRetry = setTimeout(() => { if (run === logRun) followLogs(); }, 3000);
      }
    }
  }

  // A new instance of the followed container (first start, restart): follow it.
  function logsOnPodChange() {
    const c = logSel.select.value;
    if (!c || previous.checked || logState === "connecting" || logState === "streaming") return;
    const now = instanceOf(c);
    if (now && now !== logInstance) followLogs();
  }

  const section = h("section", { class: "card wide", id: "pod-logs", "aria-labelledby": "pod-logs-title" },
    h("h2", { id: "pod-logs-title" }, "Logs"),
    h("div", { class: "pod-controls" },
      logSel.label, logSel.select,
      h("label", { for: "pod-log-tail" }, "From"), tailSelect,
      h("span", {}, previous, h("label", { for: "pod-log-previous" }, " Previous instance")),
      logAgain),
    logPane, logStatus);

  return {
    section,
    update(pod, first) {
      const changed = logSel.fill(pod);
      if (first || changed) followLogs();
      else logsOnPodChange();
    },
    stop() {
      mounted = false;
      stopLogs();
      cancelAnimationFrame(logFrame);
    },
  };
}
