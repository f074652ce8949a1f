// The pod view's exec terminal (views/pod.js mounts it): sh in one of the pod's containers, in a
// pseudo-terminal, as `kubectl exec -it -- sh` gives it.
//
// "Open a shell" opens a WebSocket to .../pods/NAME/exec?command=sh&stdin=true&stdout=true&tty=true
// &container=C with Kubernetes' channel protocol v4.channel.k8s.io (relayed by the console, then the
// API server, to the kubelet): every binary message is one channel byte then data, 0 stdin, 1 stdout,
// 3 the command's end (a JSON Status), 4 the terminal's size ({"Width", "Height"}, sent on open and
// whenever the pane's size changes). stdout -> vt.js's Screen (the cursor, colours, line editing,
// full-screen programs) -> the pane: the lines that scrolled off above, then the screen's rows,
// redrawn once per animation frame. Keys pressed in the pane go to channel 0 as a terminal sends
// them (Enter "\r", Backspace DEL, arrows as ESC [ A..., Ctrl+letter as its control character);
// pasted text too. Shift+Tab leaves the pane (Tab itself goes to the shell: completion). A
// WebSocket the browser could not open is explained by the API server's answer to the same request
// as a plain GET. stop() (the view's unmount) closes the WebSocket: the shell gets a hangup.
import { ApiError, request } from "../api.js";
import { h } from "../dom.js";
import { Screen } from "../vt.js";

const SCROLLBACK_LINES = 1000;
const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 };
// What a terminal sends for the keys that are not characters.
const KEYS = {
  Enter: "\r", Backspace: "\x7f", Tab: "\t", Escape: "\x1b", ArrowUp: "\x1b[A", ArrowDown: "\x1b[B",
  ArrowRight: "\x1b[C", ArrowLeft: "\x1b[D", Home: "\x1b[H", End: "\x1b[F", Insert: "\x1b[2~", Delete: "\x1b[3~",
  PageUp: "\x1b[5~", PageDown: "\x1b[6~", F1: "\x1bOP", F2: "\x1bOQ", F3: "\x1bOR", F4: "\x1bOS",
};

// Escape sequences a terminal would interpret (CSI, OSC, two-byte ESC x): dropped from the text.
const ANSI = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()*+#][ -~]|\x1b[^\[\]()*+#]/g;
// An escape sequence cut at the end of a chunk: kept until the next chunk completes it.
const ANSI_TAIL = /\x1b(?:\[[0-?]*[ -\/]*|\][^\x07\x1b]*\x1b?|[()*+#])?$/;

// A function of one stream's chunks, in order, to their text without escapes (the logs panel's).
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

// The bytes a key press sends, or null when the page keeps the key (Shift+Tab, the browser's own
// shortcuts with Meta or Ctrl+Shift).
export function keyBytes(ev) {
  if (ev.metaKey || (ev.ctrlKey && ev.shiftKey) || (ev.key === "Tab" && ev.shiftKey)) return null;
  if (ev.ctrlKey && !ev.altKey && ev.key.length === 1) {
    const c = ev.key.toUpperCase().charCodeAt(0);
    if (c >= 64 && c <= 95) return String.fromCharCode(c - 64); // Ctrl+C -> ETX, Ctrl+[ -> ESC ...
    if (ev.key === " ") return "\x00";
    return null;
  }
  if (KEYS[ev.key]) return (ev.altKey ? "\x1b" : "") + KEYS[ev.key];
  if (ev.key.length === 1 || [...ev.key].length === 1) return (ev.altKey ? "\x1b" : "") + ev.key;
  return null;
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
    "Runs sh in the container, in a terminal.");
  const back = h("div", { class: "term-back" }); // the lines that scrolled off the screen
  const rowsEl = h("div", { class: "term-rows" });
  const termOut = h("pre", { class: "pod-pane term", id: "pod-term-output", tabindex: "0", role: "application",
                             "aria-roledescription": "terminal", "aria-describedby": "pod-term-status",
                             "aria-label": "Terminal: what you type here goes to the shell; Shift+Tab leaves it" },
    back, rowsEl);
  let socket = null;
  let screen = null;
  let drawScheduled = false;
  let connectedTo = "";
  const encoder = new TextEncoder();

  function send(channel, text) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return;
    const bytes = encoder.encode(text);
    const frame = new Uint8Array(bytes.length + 1);
    frame[0] = channel;
    frame.set(bytes, 1);
    socket.send(frame);
  }

  // Columns and rows that fit the pane, from the width of its font's characters.
  function fit() {
    const probe = h("span", { style: "visibility:hidden;position:absolute" }, "M".repeat(20));
    termOut.append(probe);
    const box = probe.getBoundingClientRect();
    probe.remove();
    const style = getComputedStyle(termOut);
    const width = termOut.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const height = termOut.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    const lineHeight = parseFloat(style.lineHeight) || box.height;
    return [Math.max(20, Math.floor(width / (box.width / 20))), Math.max(5, Math.floor(height / lineHeight))];
  }

  function resized() {
    if (!screen) return;
    const [cols, rows] = fit();
    if (cols === screen.cols && rows === screen.rows) return;
    screen.resize(cols, rows);
    send(CHANNEL.resize, JSON.stringify({ Width: cols, Height: rows }));
    if (socket) connected();
    draw();
  }

  function connected() {
    termStatus.textContent = `Connected: sh in ${connectedTo} (${screen.cols}×${screen.rows}). What you type in the `
      + "terminal goes to the shell; Shift+Tab leaves it.";
  }
  const observer = new ResizeObserver(() => resized());

  function draw() {
    if (drawScheduled) return;
    drawScheduled = true;
    requestAnimationFrame(() => {
      drawScheduled = false;
      if (!screen) return;
      const atBottom = termOut.scrollHeight - termOut.scrollTop - termOut.clientHeight < 40;
      const cursorY = socket && screen.cursorVisible ? screen.y : -1;
      rowsEl.innerHTML = screen.grid.map((line, y) => `<div>${screen.html(line, y === cursorY ? screen.x : -1)}</div>`).join("");
      if (atBottom) termOut.scrollTop = termOut.scrollHeight;
    });
  }

  function scrolledOff(line) {
    const row = document.createElement("div");
    row.innerHTML = screen.html(line);
    back.append(row);
    while (back.childNodes.length > SCROLLBACK_LINES) back.firstChild.remove();
  }

  function setTermOpen(open) {
    termButton.textContent = open ? "End the session" : "Open a shell";
    draw();
  }

  function endShell(message) {
    const ws = socket;
    socket = null;
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
    observer.disconnect();
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
    const query = new URLSearchParams({ command: "sh", stdin: "true", stdout: "true", stderr: "false", tty: "true",
                                        container: c });
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${podPath}/exec?${query}`, ["v4.channel.k8s.io"]);
    ws.binaryType = "arraybuffer";
    socket = ws;
    back.replaceChildren();
    const [cols, rows] = fit();
    screen = new Screen(cols, rows, { reply: (text) => send(CHANNEL.stdin, text), onScroll: scrolledOff,
                                      scrollbackLines: SCROLLBACK_LINES });
    let opened = false;
    let ended = null;
    const decoder = new TextDecoder();
    termStatus.textContent = `Connecting to ${c}…`;
    termButton.textContent = "End the session";
    draw();
    ws.onopen = () => {
      if (socket !== ws) return;
      opened = true;
      send(CHANNEL.resize, JSON.stringify({ Width: screen.cols, Height: screen.rows }));
      observer.observe(termOut);
      setTermOpen(true);
      connectedTo = c;
      connected();
      termOut.focus();
    };
    ws.onmessage = (ev) => {
      if (socket !== ws || typeof ev.data === "string") return;
      const data = new Uint8Array(ev.data);
      if (!data.length) return;
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === CHANNEL.stdout || channel === CHANNEL.stderr) {
        screen.write(decoder.decode(payload, { stream: true }));
        draw();
      } else if (channel === CHANNEL.error) {
        try { ended = JSON.parse(new TextDecoder().decode(payload)); } catch (_) { ended = { message: "failed" }; }
      }
    };
    ws.onclose = async () => {
      if (socket !== ws) return;
      socket = null;
      observer.disconnect();
      setTermOpen(false);
      if (document.activeElement === termOut) termButton.focus(); // the keyboard goes on from the button
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
  termOut.addEventListener("keydown", (ev) => {
    if (!socket) return;
    const bytes = keyBytes(ev);
    if (bytes === null) return;
    ev.preventDefault();
    send(CHANNEL.stdin, bytes);
  });
  termOut.addEventListener("paste", (ev) => {
    if (!socket) return;
    ev.preventDefault();
    send(CHANNEL.stdin, (ev.clipboardData.getData("text") || "").replace(/\r?\n/g, "\r"));
  });

  const section = h("section", { class: "card wide", id: "pod-terminal", "aria-labelledby": "pod-terminal-title" },
    h("h2", { id: "pod-terminal-title" }, "Terminal"),
    h("div", { class: "pod-controls" }, termSel.label, termSel.select, termButton),
    termOut, termStatus);

  return {
    section,
    update(pod) { termSel.fill(pod); },
    stop() { endShell(); },
  };
}
