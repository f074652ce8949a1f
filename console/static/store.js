// Live collections: an informer per (resource, namespace), as client-go's, in the page.
//
// list -> the objects and the list's resourceVersion -> watch from it (with bookmarks) -> every
// ADDED / MODIFIED / DELETED updates the map and notifies the subscribers (batched to one call per
// animation frame, so a burst of events redraws once). A stream that ends or breaks (the API
// server restarting, or the console's watch socket closing: every watch of the page shares that
// one WebSocket, api.js) resumes from the last resourceVersion after a back-off (0.5 s doubling to
// 8 s); a 410 Gone relists. `status` says "live", "reconnecting" or "forbidden" (the API's 403,
// with its message), so a view can say why it shows nothing.
import { ApiError, get, watch } from "./api.js";

const informers = new Map();
const connection = new Set(); // listeners of the page-wide "reconnecting" state

export function onConnection(fn) {
  connection.add(fn);
  return () => connection.delete(fn);
}

function connectionChanged() {
  const down = [...informers.values()].some((i) => i.status === "reconnecting");
  for (const fn of connection) fn(!down);
}

class Informer {
  constructor(urlPath) {
    this.urlPath = urlPath;
    this.items = new Map(); // namespace/name -> object
    this.subscribers = new Set();
    this.status = "loading";
    this.error = null;
    this.resourceVersion = "";
    this.abort = null;
    this.scheduled = false;
    this.stopped = false;
    this.run();
  }

  key(obj) {
    const m = obj.metadata || {};
    return m.namespace ? `${m.namespace}/${m.name}` : m.name;
  }

  list() {
    return [...this.items.values()];
  }

  notify() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const fn of this.subscribers) fn(this);
    });
  }

  setStatus(status, error = null) {
    const changed = this.status !== status;
    this.status = status;
    this.error = error;
    this.notify();
    if (changed) connectionChanged();
  }

  async relist() {
    const answer = await get(this.urlPath);
    this.items = new Map((answer.items || []).map((o) => {
      // A list's items carry no kind; the views want whole objects.
      const kind = (answer.kind || "").replace(/List$/, "");
      return [this.key(o), { apiVersion: answer.apiVersion, kind, ...o }];
    }));
    this.resourceVersion = answer.metadata.resourceVersion;
  }

  async run() {
    let delay = 500;
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
          this.setStatus("live");
        }
        this.abort = new AbortController();
        await watch(this.urlPath, { resourceVersion: this.resourceVersion, allowWatchBookmarks: "true",
                                    timeoutSeconds: "300" }, (ev) => this.apply(ev), this.abort.signal);
        delay = 500;
        continue; // the server ended the watch (its timeout): resume at once
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof ApiError && e.code === 410) {
          needList = true;
          continue;
        }
        if (e instanceof ApiError && (e.code === 403 || e.code === 401)) {
          this.setStatus("forbidden", e);
          return;
        }
        this.setStatus("reconnecting", e);
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 8000);
      if (this.status === "reconnecting") needList = needList || !this.resourceVersion;
    }
  }

  apply(ev) {
    if (ev.type === "ERROR") {
      const status = ev.object || {};
      throw new ApiError(status, status.code || 500, status.reason, status.message);
    }
    if (this.status !== "live") this.setStatus("live");
    const obj = ev.object;
    this.resourceVersion = obj.metadata.resourceVersion || this.resourceVersion;
    if (ev.type === "BOOKMARK") return;
    if (ev.type === "DELETED") this.items.delete(this.key(obj));
    else this.items.set(this.key(obj), obj);
    this.notify();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
    informers.delete(this.urlPath);
    connectionChanged();
  }
}

// subscribe("/api/v1/pods", fn) -> fn(informer) now and on every change; returns the unsubscribe.
// One informer per path is shared by every view. It stops as soon as its last subscriber leaves
// (after the current task, so the next view of a route change can take it over), so the API server
// streams only what some view shows. The streams hold no HTTP connection of their own (they all go
// over the page's one watch WebSocket, api.js), so the browser's 6 connections to the console stay
// free for requests, whatever the number of streams and of console tabs.
export function subscribe(urlPath, fn) {
  let inf = informers.get(urlPath);
  if (!inf) {
    inf = new Informer(urlPath);
    informers.set(urlPath, inf);
  }
  clearTimeout(inf.idle);
  inf.subscribers.add(fn);
  if (inf.status !== "loading") fn(inf);
  return () => {
    inf.subscribers.delete(fn);
    if (inf.subscribers.size === 0) inf.idle = setTimeout(() => inf.stop(), 0);
  };
}

export function stopAll() {
  for (const inf of [...informers.values()]) inf.stop();
}
