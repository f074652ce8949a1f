// The page's only way to the cluster: the Kubernetes API, relayed by the console as the logged-in user.
// Every failure becomes an ApiError carrying the API server's own Status message (a 403 says which
// verb, resource and user were refused), so a view shows what the API said, not a generic error.

export class ApiError extends Error {
  constructor(status, code, reason, message) {
    super(message || `${code} ${reason || ""}`.trim());
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (body && body.kind === "Status") {
    return new ApiError(body, body.code || response.status, body.reason, body.message);
  }
  return new ApiError(null, response.status, response.statusText, `${response.status} ${response.statusText}`);
}

export async function request(method, path, { body, contentType, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { Accept: "application/json" };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401 && !path.startsWith("/console/")) {
    window.dispatchEvent(new CustomEvent("console:logged-out"));
  }
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

export const get = (path, query) => request("GET", path, { query });
export const del = (path, query) => request("DELETE", path, { query });
export const create = (path, body, query) => request("POST", path, { body, query });
export const replace = (path, body, query) => request("PUT", path, { body, query });
export const patch = (path, body, type = "merge", query) => request("PATCH", path, {
  body, query,
  contentType: {
    merge: "application/merge-patch+json",
    strategic: "application/strategic-merge-patch+json",
    json: "application/json-patch+json",
    apply: "application/apply-patch+yaml",
  }[type],
});

// Where a resource lives: ("v1", "pods", "default") -> /api/v1/namespaces/default/pods
export function path(apiVersion, plural, namespace, name, subresource) {
  let p = apiVersion === "v1" ? "/api/v1" : `/apis/${apiVersion}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export function objectPath(obj, plural, subresource) {
  return path(obj.apiVersion, plural, obj.metadata.namespace, obj.metadata.name, subresource);
}

// ------------------------------------------------------------------------------ watches
// Every watch of the page goes over ONE WebSocket to the console (/console/watch, console/watchmux.py):
// a fetch per watch held one of the browser's 6 HTTP/1.1 connections to the console each, so a page
// could follow 5 collections at most and a second console tab hung. The socket is opened with the
// first watch and closed when no watch has used it for IDLE_MS.
//   page -> console  {op: "watch", id, path, query} | {op: "cancel", id}
//   console -> page  {id, event} per line of the API's stream | {id, end: true} | {id, error: Status, code}
// A closed socket (the console restarting, a network failure) rejects every open watch: the informers
// (store.js) resume from their resourceVersion on a new socket. A refused handshake (no session any
// more) and the close code 4401 (a logout) dispatch "console:logged-out".
const IDLE_MS = 10000;
const LOGGED_OUT = 4401;
let mux = null; // { socket, watches: id -> {onEvent, resolve, reject}, queue: frames before "open", opened, idle }
let lastId = 0;

function loggedOut() {
  window.dispatchEvent(new CustomEvent("console:logged-out"));
}

function socketUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/console/watch`;
}

function send(m, frame) {
  const text = JSON.stringify(frame);
  if (m.opened) m.socket.send(text);
  else m.queue.push(text);
}

function connect() {
  const m = { socket: new WebSocket(socketUrl()), watches: new Map(), queue: [], opened: false, idle: null };
  m.socket.addEventListener("open", () => {
    m.opened = true;
    for (const text of m.queue) m.socket.send(text);
    m.queue = [];
  });
  m.socket.addEventListener("message", (ev) => received(m, ev.data));
  m.socket.addEventListener("close", (ev) => closed(m, ev));
  return m;
}

function settle(m, id) {
  const w = m.watches.get(id);
  m.watches.delete(id);
  if (m.watches.size === 0 && mux === m) {
    clearTimeout(m.idle);
    m.idle = setTimeout(() => {
      if (m.watches.size > 0) return;
      if (mux === m) mux = null;
      m.socket.close(1000, "no watches");
    }, IDLE_MS);
  }
  return w;
}

function received(m, data) {
  let frame;
  try { frame = JSON.parse(data); } catch (_) { return; }
  const w = m.watches.get(frame.id);
  if (!w) return; // cancelled already (its last frames were on their way)
  if (frame.event !== undefined) {
    try {
      w.onEvent(frame.event);
    } catch (e) { // the caller gave up on this stream (an ERROR event): it ends here, as a fetch's would
      settle(m, frame.id);
      send(m, { op: "cancel", id: frame.id });
      w.reject(e);
    }
  } else if (frame.error !== undefined) {
    settle(m, frame.id);
    const s = frame.error || {};
    const code = s.code || frame.code;
    if (code === 401) loggedOut();
    w.reject(s.kind === "Status" ? new ApiError(s, code, s.reason, s.message)
      : new ApiError(null, frame.code, "", `${frame.code}`));
  } else if (frame.end) {
    settle(m, frame.id);
    w.resolve();
  }
}

async function closed(m, ev) {
  if (mux === m) mux = null;
  clearTimeout(m.idle);
  const open = [...m.watches.values()];
  m.watches.clear();
  if (!open.length) return;
  let error;
  if (ev.code === LOGGED_OUT) {
    loggedOut();
    error = new ApiError(null, 401, "Unauthorized", ev.reason || "the session ended: log in again");
  } else if (!m.opened) {
    // A refused handshake: the browser does not say why, the console's session answer does.
    error = new Error("the console refused the watch connection");
    try {
      const answer = await fetch("/console/session", { credentials: "same-origin" });
      if (answer.status === 401) {
        loggedOut();
        error = await failure(answer);
      }
    } catch (_) {
      error = new Error("the console cannot be reached");
    }
  } else {
    error = new Error(`the connection to the console closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
  }
  for (const w of open) w.reject(error);
}

// A watch stream: the API's events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR) handed to onEvent as
// they arrive. Resolves when the API ends the stream, rejects with an ApiError carrying the API's
// Status when it refuses (403, 410, ...), with an Error when the connection fails, and with an
// AbortError when `signal` aborts; if onEvent throws, the stream ends with that error. The caller
// resumes or relists.
export function watch(urlPath, query, onEvent, signal) {
  return new Promise((resolve, reject) => {
    const aborted = () => (signal.reason !== undefined ? signal.reason
      : new DOMException("The watch was aborted.", "AbortError"));
    if (signal && signal.aborted) {
      reject(aborted());
      return;
    }
    if (!mux) mux = connect();
    const m = mux;
    clearTimeout(m.idle);
    const id = ++lastId;
    const stop = () => {
      if (m.watches.get(id) !== entry) return;
      settle(m, id);
      send(m, { op: "cancel", id });
      reject(aborted());
    };
    const done = () => { if (signal) signal.removeEventListener("abort", stop); };
    const entry = {
      onEvent,
      resolve: (v) => { done(); resolve(v); },
      reject: (e) => { done(); reject(e); },
    };
    m.watches.set(id, entry);
    if (signal) signal.addEventListener("abort", stop);
    send(m, { op: "watch", id, path: urlPath, query: { ...query } });
  });
}
