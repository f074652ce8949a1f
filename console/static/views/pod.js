// One pod: #/pod/<namespace>/<name>. What kubectl describe, logs -f and exec give, in one view.
//
// The pod itself and its events are live collections (store.js: the namespace's pods, and its
// events filtered by involvedObject); status, conditions and containers redraw on every change.
// Logs: GET .../pods/NAME/log?follow=true&container=C&tailLines=N read as a stream (fetch +
// ReadableStream), appended as it arrives into a fixed-size pane; a new instance of the container
// (its containerID changes: a restart, or the first start) is followed again on its own.
// Terminal: a WebSocket to .../pods/NAME/exec?command=sh&stdin=true&stdout=true&stderr=true&tty=false
// with Kubernetes' channel protocol v4.channel.k8s.io (relayed by the console, then the API server,
// to the kubelet): every binary message is one channel byte then data, 0 stdin, 1 stdout, 2 stderr,
// 3 the command's end (a JSON Status). Output goes to a pane with ANSI escapes stripped; the input
// line's Enter sends the line and "\n" on channel 0. Unmounting aborts the log stream and closes the
// WebSocket (the shell reads EOF and ends).
import { ApiError, del, path, request } from "../api.js";
import { age, h, podStatus, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";

const LOG_LINES_KEPT = 5000;
const TERM_NODES_KEPT = 2000;
const TAILS = [["100", "last 100 lines"], ["1000", "last 1000 lines"], ["", "all lines"]];
const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3 };
const DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container";

// Escape sequences a terminal would interpret (CSI, OSC, two-byte ESC x): dropped from the text.
const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+#][ -~]|\x1b[^\[\]()*+#]/g;
// An escape sequence cut at the end of a chunk: kept until the next chunk completes it.
const ANSI_TAIL = /\x1b(?:\[[0-?]*[ -\/]*|\][^\x07\x1b]*\x1b?|[()*+#])?$/;

export function ansiStripper() {
  let carry = "";
  return (text) => {
    let s = carry + text;
    const tail = s.match(ANSI_TAIL);
    carry = tail && tail[0].length < 256 ? tail[0] : ""; // an escape never ended is text after all
    if (carry) s = s.slice(0, s.length - carry.length);
    return s.replace(ANSI, "").replace(/\r\n/g, "\n").replace(/\r/g, "");
  };
}

// A container status as one line, and the kind of state (running / waiting / terminated).
export function containerState(cs) {
  const st = (cs && cs.state) || {};
  if (st.running) return { key: "running", text: `Running (started ${age(st.running.startedAt)} ago)` };
  if (st.waiting) return { key: "waiting", reason: st.waiting.reason || "", text: `Waiting: ${st.waiting.reason || "?"}` };
  if (st.terminated) {
    const t = st.terminated;
    return { key: "terminated", reason: t.reason || "", text: `Terminated: ${t.reason || "?"} (exit code ${t.exitCode})` };
  }
  return { key: "unknown", text: "No status yet" };
}

function lastState(cs) {
  const t = ((cs && cs.lastState) || {}).terminated;
  return t ? `Terminated: ${t.reason || "?"} (exit code ${t.exitCode}) ${age(t.finishedAt)} ago` : "";
}

function ports(c) {
  return (c.ports || []).map((p) => `${p.name ? p.name + " " : ""}${p.containerPort}/${p.protocol || "TCP"}`
    + (p.hostPort ? ` (host ${p.hostPort})` : "")).join(", ");
}

function containerNames(pod) {
  const spec = pod.spec || {};
  return [...(spec.containers || []), ...(spec.initContainers || []), ...(spec.ephemeralContainers || [])]
    .map((c) => c.name);
}

function defaultContainer(pod) {
  const wanted = ((pod.metadata || {}).annotations || {})[DEFAULT_CONTAINER];
  const names = containerNames(pod);
  return names.includes(wanted) ? wanted : names[0] || "";
}

function statusOf(pod, name) {
  const st = pod.status || {};
  return [...(st.containerStatuses || []), ...(st.initContainerStatuses || []), ...(st.ephemeralContainerStatuses || [])]
    .find((c) => c.name === name);
}

// The API's Status message of a failed plain response (fetch, not api.js: the body is a stream).
async function failureMessage(response) {
  if (response.status === 401) window.dispatchEvent(new CustomEvent("console:logged-out"));
  try {
    const body = await response.json();
    if (body && body.message) return body.message;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

// A labelled <select> of the pod's containers; keeps the chosen one while the list is redrawn.
function containerSelect(id, onChange) {
  const select = h("select", { id, onchange: onChange });
  return {
    select,
    label: h("label", { for: id }, "Container"),
    fill(pod) {
      const names = containerNames(pod);
      const now = [...select.options].map((o) => o.value);
      if (names.join("\n") === now.join("\n")) return false;
      const keep = names.includes(select.value) ? select.value : defaultContainer(pod);
      replaceChildren(select, names.map((n) => h("option", { value: n }, n)));
      select.value = keep;
      return true;
    },
  };
}

export function pod(container, args) {
  const [namespace, name] = args;
  if (!namespace || !name) {
    replaceChildren(container, h("h1", {}, "Pod"), h("p", { class: "error" }, "No pod named: the address is #/pod/<namespace>/<name>."));
    return () => {};
  }
  const podPath = path("v1", "pods", namespace, name);
  const stops = [];
  let current = null; // the pod as last seen
  let seen = false; // it existed once (so its absence means it was deleted)
  let mounted = true;

  // ---------------------------------------------------------------- header and delete
  const badge = h("span", { class: "badge", hidden: true });
  const headMeta = h("p", { class: "meta" });
  const note = h("p", { class: "status-line", role: "status" });
  const deleteButton = h("button", { type: "button", class: "danger", id: "pod-delete" }, "Delete pod");
  const confirmYes = h("button", { type: "button", class: "danger", id: "pod-delete-confirm" }, "Delete");
  const confirmNo = h("button", { type: "button", id: "pod-delete-cancel" }, "Cancel");
  const confirmBox = h("div", { class: "pod-confirm", role: "group", "aria-labelledby": "pod-confirm-text", hidden: true },
    h("span", { id: "pod-confirm-text" }, `Delete pod ${namespace}/${name}?`), confirmYes, confirmNo);
  function closeConfirm(focus = true) {
    confirmBox.hidden = true;
    deleteButton.hidden = false;
    if (focus) deleteButton.focus();
  }
  deleteButton.addEventListener("click", () => {
    deleteButton.hidden = true;
    confirmBox.hidden = false;
    confirmNo.focus();
  });
  confirmNo.addEventListener("click", () => closeConfirm());
  confirmBox.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeConfirm(); });
  confirmYes.addEventListener("click", async () => {
    confirmYes.disabled = true;
    try {
      await del(podPath);
      closeConfirm(false);
      deleteButton.disabled = true;
      note.textContent = "";
      headMeta.textContent = "Deletion requested: the pod's containers are being stopped.";
    } catch (e) {
      note.textContent = e.message;
      closeConfirm();
    } finally {
      confirmYes.disabled = false;
    }
  });

  // ---------------------------------------------------------------- status, containers, events
  const statusBody = h("div", { class: "pod-status-body" });
  const containersBody = h("tbody");
  const eventsBody = h("tbody");
  const eventsNote = h("p", { class: "meta" });

  function field(label, value) {
    return [h("dt", {}, label), h("dd", {}, value === undefined || value === null || value === "" ? "—" : value)];
  }

  function drawStatus(p) {
    const st = p.status || {};
    const spec = p.spec || {};
    const ips = (st.podIPs || []).map((x) => x.ip).join(", ") || st.podIP;
    const owner = ((p.metadata.ownerReferences || []).find((o) => o.controller) || {});
    replaceChildren(statusBody,
      h("dl", { class: "pod-fields" },
        field("Phase", h("span", { "data-phase": st.phase || "" }, st.phase || "Pending")),
        st.reason || st.message ? field("Reason", [st.reason || "", st.message ? ` ${st.message}` : ""]) : null,
        field("Pod IPs", ips),
        field("Host IP", st.hostIP),
        field("Node", spec.nodeName ? h("a", { href: "#/nodes" }, spec.nodeName) : "not scheduled yet"),
        field("QoS class", st.qosClass),
        field("Started", st.startTime ? `${age(st.startTime)} ago` : ""),
        field("Controlled by", owner.kind ? `${owner.kind}/${owner.name}` : "")),
      h("table", { class: "list pod-conditions", "aria-label": "Conditions" },
        h("thead", {}, h("tr", {}, ["Condition", "Status", "Reason", "Since"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, (st.conditions || []).map((c) => h("tr", { "data-condition": c.type },
          h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason || ""),
          h("td", { class: "age" }, c.lastTransitionTime ? age(c.lastTransitionTime) : ""))))));
  }

  function drawContainers(p) {
    const spec = p.spec || {};
    const rows = [
      ...(spec.initContainers || []).map((c) => [c, "init"]),
      ...(spec.containers || []).map((c) => [c, ""]),
      ...(spec.ephemeralContainers || []).map((c) => [c, "ephemeral"]),
    ];
    replaceChildren(containersBody, rows.map(([c, kind]) => {
      const cs = statusOf(p, c.name);
      const state = containerState(cs);
      const restartCount = cs ? cs.restartCount || 0 : 0;
      return h("tr", { "data-container": c.name, "data-state": state.key, "data-reason": state.reason || "",
                       "data-restarts": String(restartCount), "data-ready": String(!!(cs && cs.ready)) },
        h("th", { scope: "row" }, c.name, kind ? h("span", { class: "badge warn" }, kind) : null),
        h("td", { class: "pod-image" }, c.image || ""),
        h("td", { class: "pod-state" }, state.text, cs && cs.lastState && cs.lastState.terminated
          ? h("div", { class: "meta" }, "last: ", lastState(cs)) : null),
        h("td", { class: "pod-ready" }, cs && cs.ready ? "yes" : "no"),
        h("td", { class: "pod-restarts" }, String(restartCount)),
        h("td", {}, ports(c)));
    }));
  }

  function drawHeader(p) {
    const s = podStatus(p);
    badge.textContent = s;
    badge.className = `badge ${s === "Running" ? "ok" : s === "Pending" || s === "Succeeded" || s === "Completed"
      || s === "ContainerCreating" ? "warn" : "bad"}`;
    badge.hidden = false;
    if (!p.metadata.deletionTimestamp) {
      headMeta.textContent = `Namespace ${namespace} · created ${age(p.metadata.creationTimestamp)} ago`;
    } else {
      headMeta.textContent = "Terminating: the pod's containers are being stopped.";
      deleteButton.disabled = true;
    }
  }

  function drawGone() {
    badge.hidden = true;
    headMeta.textContent = seen ? "This pod was deleted." : `There is no pod ${name} in namespace ${namespace}.`;
    deleteButton.disabled = true;
    replaceChildren(statusBody, h("p", {}, h("a", { href: `#/pods/${namespace}` }, `Pods in ${namespace}`)));
    replaceChildren(containersBody);
  }

  let events = null;
  function drawEvents() {
    if (!events) return;
    if (events.status === "forbidden") {
      eventsNote.textContent = events.error.message;
      return;
    }
    const uid = current && current.metadata.uid;
    const when = (e) => e.lastTimestamp || e.eventTime || (e.metadata || {}).creationTimestamp || "";
    const mine = events.list().filter((e) => {
      const o = e.involvedObject || e.regarding || {};
      return o.kind === "Pod" && o.name === name && (!uid || !o.uid || o.uid === uid);
    }).sort((a, b) => when(b).localeCompare(when(a)));
    eventsNote.textContent = mine.length ? "" : "No events.";
    replaceChildren(eventsBody, mine.map((e) => h("tr", { "data-event-reason": e.reason || "" },
      h("td", {}, e.type === "Warning" ? h("span", { class: "badge bad" }, "Warning") : e.type || ""),
      h("td", {}, e.reason || ""),
      h("td", { class: "age" }, when(e) ? age(when(e)) : ""),
      h("td", {}, String((e.series && e.series.count) || e.count || 1)),
      h("td", {}, (e.source && e.source.component) || e.reportingComponent || ""),
      h("td", {}, e.message || e.note || ""))));
  }

  // ---------------------------------------------------------------- logs
  const logSel = containerSelect("pod-log-container", () => followLogs());
  const tailSelect = h("select", { id: "pod-log-tail", onchange: () => followLogs() },
    TAILS.map(([v, t]) => h("option", { value: v }, t)));
  const previous = h("input", { type: "checkbox", id: "pod-log-previous", onchange: () => followLogs() });
  const logAgain = h("button", { type: "button", id: "pod-log-again", hidden: true, onclick: () => followLogs() }, "Follow again");
  const logStatus = h("p", { class: "pod-pane-status", id: "pod-log-status", role: "status" });
  const logPane = h("pre", { class: "pod-pane", id: "pod-log", tabindex: "0", role: "log", "aria-live": "off",
                             "aria-label": "Log output" });
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

  function instanceOf(p, c) {
    const cs = p && statusOf(p, c);
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
    logInstance = instanceOf(current, c);
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
          const cs = statusOf(current || {}, c);
          if (run === logRun && cs && cs.state && cs.state.running && instanceOf(current, c) === logInstance) followLogs();
        }, 3000);
      }
    } catch (e) {
      if (run !== logRun || ctl.signal.aborted) return;
      logState = "failed";
      logStatus.textContent = e.message;
      logAgain.hidden = false;
      // A running container whose log could not be read (the kubelet restarting): try again soon.
      const cs = statusOf(current || {}, c);
      if (!previous.checked && cs && cs.state && cs.state.running && !(e instanceof ApiError && e.code === 403)) {
        logRetry = setTimeout(() => { if (run === logRun) followLogs(); }, 3000);
      }
    }
  }

  // A new instance of the followed container (first start, restart): follow it.
  function logsOnPodChange(p) {
    const c = logSel.select.value;
    if (!c || previous.checked || logState === "connecting" || logState === "streaming") return;
    const now = instanceOf(p, c);
    if (now && now !== logInstance) followLogs();
  }

  // ---------------------------------------------------------------- terminal
  const termSel = containerSelect("pod-term-container", () => { if (socket) endShell("Container changed: the session ended."); });
  const termButton = h("button", { type: "button", id: "pod-term-start" }, "Open a shell");
  const termStatus = h("p", { class: "pod-pane-status", id: "pod-term-status", role: "status" },
    "Runs sh in the container (no terminal: one line at a time).");
  const termOut = h("pre", { class: "pod-pane", id: "pod-term-output", tabindex: "0", role: "log",
                             "aria-label": "Terminal output" });
  const termInput = h("input", { type: "text", id: "pod-term-input", autocomplete: "off", spellcheck: "false",
                                 autocapitalize: "off", disabled: true, "aria-describedby": "pod-term-status" });
  const termSend = h("button", { type: "submit", disabled: true }, "Send");
  const termForm = h("form", { class: "pod-term-input" },
    h("label", { for: "pod-term-input" }, "Command"), termInput, termSend);
  let socket = null;
  let history = [];
  let historyAt = 0;
  const encoder = new TextEncoder();

  function termAppend(text, cls) {
    if (!text) return;
    const atBottom = termOut.scrollHeight - termOut.scrollTop - termOut.clientHeight < 40;
    termOut.append(cls ? h("span", { class: cls }, text) : text);
    while (termOut.childNodes.length > TERM_NODES_KEPT) termOut.firstChild.remove();
    if (atBottom) termOut.scrollTop = termOut.scrollHeight;
  }

  function setTermOpen(open) {
    termInput.disabled = !open;
    termSend.disabled = !open;
    termButton.textContent = open ? "End the session" : "Open a shell";
  }

  function endShell(message) {
    const ws = socket;
    socket = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
    setTermOpen(false);
    if (message) termStatus.textContent = message;
  }

  function exitText(status) {
    if (!status) return "";
    if (status.status === "Success") return " (exit code 0)";
    const cause = (((status.details || {}).causes) || []).find((c) => c.reason === "ExitCode");
    return cause ? ` (exit code ${cause.message})` : `: ${status.message || "failed"}`;
  }

  // Why a WebSocket was refused: the browser does not say, the API server does to a plain GET.
  async function refusal(query) {
    try {
      await request("GET", `${podPath}/exec?${query}`);
    } catch (e) {
      if (!(e instanceof ApiError) || e.message !== "Upgrade request required") return e.message;
    }
    return "The connection to the container was refused or lost.";
  }

  function startShell() {
    endShell();
    const c = termSel.select.value;
    if (!c) return;
    const query = new URLSearchParams({ command: "sh", stdin: "true", stdout: "true", stderr: "true", tty: "false",
                                        container: c });
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${podPath}/exec?${query}`, ["v4.channel.k8s.io"]);
    ws.binaryType = "arraybuffer";
    socket = ws;
    let opened = false;
    let ended = null;
    const out = { [CHANNEL.stdout]: new TextDecoder(), [CHANNEL.stderr]: new TextDecoder() };
    const strip = { [CHANNEL.stdout]: ansiStripper(), [CHANNEL.stderr]: ansiStripper() };
    termStatus.textContent = `Connecting to ${c}…`;
    termButton.textContent = "End the session";
    ws.onopen = () => {
      if (socket !== ws) return;
      opened = true;
      setTermOpen(true);
      termStatus.textContent = `Connected: sh in ${c}. Type a command and press Enter.`;
      termInput.focus();
    };
    ws.onmessage = (ev) => {
      if (socket !== ws || typeof ev.data === "string") return;
      const data = new Uint8Array(ev.data);
      if (!data.length) return;
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === CHANNEL.stdout || channel === CHANNEL.stderr) {
        termAppend(strip[channel](out[channel].decode(payload, { stream: true })),
                   channel === CHANNEL.stderr ? "err" : null);
      } else if (channel === CHANNEL.error) {
        try { ended = JSON.parse(new TextDecoder().decode(payload)); } catch (_) { ended = { message: "failed" }; }
      }
    };
    ws.onclose = async () => {
      if (socket !== ws) return;
      socket = null;
      const typing = document.activeElement === termInput;
      setTermOpen(false);
      if (typing) termButton.focus(); // the input is disabled now: the keyboard goes on from the button
      if (!opened) {
        termStatus.textContent = await refusal(query);
        return;
      }
      termStatus.textContent = `The session ended${exitText(ended)}.`;
    };
  }

  termButton.addEventListener("click", () => {
    if (socket) endShell("The session was ended.");
    else startShell();
  });
  termForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const line = termInput.value;
    const bytes = encoder.encode(line + "\n");
    const frame = new Uint8Array(bytes.length + 1);
    frame[0] = CHANNEL.stdin;
    frame.set(bytes, 1);
    socket.send(frame);
    termAppend(`$ ${line}\n`, "cmd");
    if (line && history[history.length - 1] !== line) history.push(line);
    history = history.slice(-100);
    historyAt = history.length;
    termInput.value = "";
  });
  termInput.addEventListener("keydown", (ev) => {
    // The shell's history keys: up and down walk the lines sent before.
    if (ev.key === "ArrowUp" && historyAt > 0) {
      historyAt -= 1;
      termInput.value = history[historyAt];
      ev.preventDefault();
    } else if (ev.key === "ArrowDown" && historyAt < history.length) {
      historyAt += 1;
      termInput.value = history[historyAt] || "";
      ev.preventDefault();
    }
  });

  // ---------------------------------------------------------------- layout
  replaceChildren(container,
    h("p", { class: "meta" }, h("a", { href: `#/pods/${namespace}` }, `← Pods in ${namespace}`)),
    h("div", { class: "pod-head" },
      h("h1", {}, `Pod ${name} `, badge),
      h("div", { class: "pod-actions" },
        h("a", { href: `#/yaml/v1/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}` }, "YAML"),
        deleteButton, confirmBox)),
    headMeta, note,
    h("div", { class: "cards pod-grid" },
      h("section", { class: "card", "aria-labelledby": "pod-status-title" },
        h("h2", { id: "pod-status-title" }, "Status"), statusBody),
      h("section", { class: "card pod-containers", "aria-labelledby": "pod-containers-title" },
        h("h2", { id: "pod-containers-title" }, "Containers"),
        h("table", { class: "list" },
          h("thead", {}, h("tr", {}, ["Name", "Image", "State", "Ready", "Restarts", "Ports"]
            .map((c) => h("th", { scope: "col" }, c)))),
          containersBody)),
      h("section", { class: "card wide", id: "pod-logs", "aria-labelledby": "pod-logs-title" },
        h("h2", { id: "pod-logs-title" }, "Logs"),
        h("div", { class: "pod-controls" },
          logSel.label, logSel.select,
          h("label", { for: "pod-log-tail" }, "From"), tailSelect,
          h("span", {}, previous, h("label", { for: "pod-log-previous" }, " Previous instance")),
          logAgain),
        logPane, logStatus),
      h("section", { class: "card wide", id: "pod-terminal", "aria-labelledby": "pod-terminal-title" },
        h("h2", { id: "pod-terminal-title" }, "Terminal"),
        h("div", { class: "pod-controls" }, termSel.label, termSel.select, termButton),
        termOut, termForm, termStatus),
      h("section", { class: "card wide", "aria-labelledby": "pod-events-title" },
        h("h2", { id: "pod-events-title" }, "Events"),
        h("div", { class: "pod-events" },
          h("table", { class: "list" },
            h("thead", {}, h("tr", {}, ["Type", "Reason", "Age", "Count", "From", "Message"]
              .map((c) => h("th", { scope: "col" }, c)))),
            eventsBody)),
        eventsNote)));

  stops.push(subscribe(path("v1", "pods", namespace), (inf) => {
    if (!mounted) return;
    if (inf.status === "forbidden") {
      note.textContent = inf.error.message;
      return;
    }
    const p = inf.items.get(`${namespace}/${name}`);
    if (!p) {
      if (inf.status === "live") drawGone();
      current = null;
      return;
    }
    const first = !current && !seen;
    current = p;
    seen = true;
    drawHeader(p);
    drawStatus(p);
    drawContainers(p);
    const changed = logSel.fill(p);
    termSel.fill(p);
    if (first || changed) followLogs();
    else logsOnPodChange(p);
    drawEvents();
  }));
  stops.push(subscribe(path("v1", "events", namespace), (inf) => { events = inf; drawEvents(); }));

  return () => {
    mounted = false;
    stops.forEach((s) => s());
    stopLogs();
    cancelAnimationFrame(logFrame);
    endShell();
  };
}
