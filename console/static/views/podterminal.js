// The pod view's exec terminal (views/pod.js mounts it): sh in one of the pod's containers.
//
// "Open a shell" opens a WebSocket to .../pods/NAME/exec?command=sh&stdin=true&stdout=true&stderr=true
// &tty=false&container=C with Kubernetes' channel protocol v4.channel.k8s.io (relayed by the console,
// then the API server, to the kubelet): every binary message is one channel byte then data, 0 stdin,
// 1 stdout, 2 stderr, 3 the command's end (a JSON Status). Output goes to a pane with ANSI escapes
// stripped; the input line's Enter sends the line and "\n" on channel 0. A WebSocket the browser
// could not open is explained by the API server's answer to the same request as a plain GET.
// stop() (the view's unmount) closes the WebSocket: the shell reads EOF and ends.
import { ApiError, request } from "../api.js";
import { h } from "../dom.js";

const TERM_NODES_KEPT = 2000;
const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3 };

// Escape sequences a terminal would interpret (CSI, OSC, two-byte ESC x): dropped from the text.
const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+#][ -~]|\x1b[^\[\]()*+#]/g;
// An escape sequence cut at the end of a chunk: kept until the next chunk completes it.
const ANSI_TAIL = /\x1b(?:\[[0-?]*[ -\/]*|\][^\x07\x1b]*\x1b?|[()*+#])?$/;

// A function of one stream's chunks, in order, to their text without escapes (also used by the logs).
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

function exitText(status) {
  if (!status) return "";
  if (status.status === "Success") return " (exit code 0)";
  const cause = (((status.details || {}).causes) || []).find((c) => c.reason === "ExitCode");
  return cause ? ` (exit code ${cause.message})` : `: ${status.message || "failed"}`;
}

// The terminal of the pod at podPath. containers.select(id, onChange) is the view's container
// <select>. Returns { section, update(pod) on every change of the pod, stop() }.
export function terminalPanel(podPath, containers) {
  const termSel = containers.select("pod-term-container", () => { if (socket) endShell("Container changed: the session ended."); });
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

  const section = h("section", { class: "card wide", id: "pod-terminal", "aria-labelledby": "pod-terminal-title" },
    h("h2", { id: "pod-terminal-title" }, "Terminal"),
    h("div", { class: "pod-controls" }, termSel.label, termSel.select, termButton),
    termOut, termForm, termStatus);

  return {
    section,
    update(pod) { termSel.fill(pod); },
    stop() { endShell(); },
  };
}
