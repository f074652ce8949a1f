// Git sync: GitSync objects (gitops.minik8s.io/v1), shown the way Argo CD shows its applications.
//
// #/gitsyncs (every namespace the user may list) or #/gitsyncs/<namespace>: one row per GitSync.
// #/gitsyncs/<namespace>/<name>: one GitSync, live:
//   the GitSync (a live collection of its namespace) -> source, revisions, conditions, the next
//   sync (status.nextSync, which gitops/preview.py publishes: create / update / prune with a diff
//   per object, or why the revision is blocked; and the revision's errors) and the last runs
//   (status.history, which gitops keeps to 10);
//   its inventory (status.inventory) -> for the kinds whose health is their live state
//   (workloads, Pods, CRDs: see LIVE) one live collection per kind and namespace, plus the pods
//   under workloads -> a tree of objects, each with its health judged from its own live state as
//   gitops/health.py judges it (other kinds: the health gitops recorded);
//   the Events of the namespace that involve this GitSync -> drift corrections as a timeline
//   (DriftCorrected / DriftDetected, which gitops/enforce.py records; status.history when the
//   user may not read Events) and the other Events.
// Actions are plain API calls (the API server's RBAC decides; its message is shown when it refuses):
//   suspend  -> merge patch spec.suspend: true (as mkctl gitops suspend)
//   resume   -> merge patch spec.suspend: false + the requestedAt annotation (mkctl gitops resume)
//   sync now -> merge patch of the gitops.minik8s.io/requestedAt annotation (mkctl gitops sync);
//               done when status.lastHandledRequestedAt carries the value (gitops writes it with
//               the status of the run that acted on the request).
// The pure part (state, outcome, health) is views/gitsyncstate.js.
import { patch, path } from "../api.js";
import { age, h, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";
import { GV, REQUESTED, DRIFT_REASONS, POD_OWNERS, LIVE, WATCH_BUDGET, conditionOf, syncState, refText, shortRevision, syncOutcome, health, HEALTH_CLASS, RESULT_CLASS, entryKey, kindRank, when, badge, eventTime, driftParts } from "./gitsyncstate.js";

// ------------------------------------------------------------------ the view

export function gitsyncs(container, args) {
  const [namespace, name] = args;
  return namespace && name ? detail(container, namespace, name) : list(container, namespace);
}

function list(container, namespace) {
  const table = h("tbody");
  const note = h("p", { class: "status-line", role: "status" });
  replaceChildren(container,
    h("h1", {}, namespace ? `Git sync in ${namespace}` : "Git sync"), note,
    h("table", { class: "list gs-list" },
      h("thead", {}, h("tr", {}, ["Namespace", "Name", "State", "Revision", "Source", "Age", "Message"]
        .map((c) => h("th", { scope: "col" }, c)))),
      table));
  const url = path(GV, "gitsyncs", namespace);
  let inf = null;
  function draw() {
    if (!inf) return;
    note.textContent = inf.status === "forbidden" || inf.status === "reconnecting" ? inf.error.message : "";
    const rows = inf.list().sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`
      .localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
    replaceChildren(table, rows.length ? rows.map((g) => {
      const m = g.metadata;
      const spec = g.spec || {};
      const st = g.status || {};
      const state = syncState(g);
      const ready = conditionOf(g, "Ready") || {};
      return h("tr", { "data-gitsync": `${m.namespace}/${m.name}` },
        h("td", {}, m.namespace),
        h("td", {}, h("a", { href: `#/gitsyncs/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.name)}` }, m.name)),
        h("td", {}, badge(state.text, state.cls, { "data-field": "state" })),
        h("td", { class: "mono", "data-field": "revision" }, st.revision || ""),
        h("td", { class: "gs-cut", title: spec.url }, `${spec.url || ""} · ${refText(spec.ref)} · ${spec.path || "."}`),
        h("td", {}, age(m.creationTimestamp)),
        h("td", { class: "gs-cut", title: ready.message || "" }, ready.message || ""));
    }) : h("tr", {}, h("td", { colspan: "7" }, inf.status === "live" ? "No GitSync objects." : "")));
  }
  const stop = subscribe(url, (i) => { inf = i; draw(); });
  const timer = setInterval(draw, 10000); // the ages
  return () => { stop(); clearInterval(timer); };
}

function detail(container, ns, name) {
  const key = `${ns}/${name}`;
  const url = path(GV, "gitsyncs", ns, name);
  const stateBadge = h("span", { class: "badge gs-badge muted", "data-field": "state" }, "…");
  const syncButton = h("button", { type: "button", class: "gs-action", "data-action": "sync" }, "Sync now");
  const suspendButton = h("button", { type: "button", class: "gs-action", "data-action": "suspend" }, "Suspend");
  const note = h("p", { class: "gs-note", role: "status", "aria-live": "polite", "data-field": "action-status" });
  const card = (id, title, cls = "") => {
    const body = h("div", { class: "gs-body" });
    const section = h("section", { class: `card gs-card ${cls}`, "aria-labelledby": `gs-${id}`, "data-section": id },
      h("h2", { id: `gs-${id}` }, title), body);
    return [section, body];
  };
  const [sourceCard, sourceBody] = card("source", "Source and revision");
  const [nextCard, nextBody] = card("next", "Next sync");
  const [conditionsCard, conditionsBody] = card("conditions", "Conditions");
  const [inventoryCard, inventoryBody] = card("inventory", "Inventory", "wide");
  const [driftCard, driftBody] = card("drift", "Drift corrections");
  const [runsCard, runsBody] = card("runs", "Last runs");
  const [eventsCard, eventsBody] = card("events", "Events");
  inventoryBody.classList.add("gs-scroll", "gs-tree-box");
  driftBody.classList.add("gs-scroll");
  runsBody.classList.add("gs-scroll");
  eventsBody.classList.add("gs-scroll");
  nextBody.classList.add("gs-scroll");
  conditionsBody.classList.add("gs-scroll");
  sourceBody.classList.add("gs-scroll");
  const missing = h("p", { class: "status-line", role: "alert", "data-field": "missing" });
  replaceChildren(container,
    h("p", { class: "gs-crumbs" }, h("a", { href: "#/gitsyncs" }, "Git sync"), ` / ${ns} /`),
    h("div", { class: "gs-head" },
      h("h1", {}, `GitSync ${name}`, " ", stateBadge),
      h("div", { class: "gs-actions", role: "group", "aria-label": "Actions" }, syncButton, suspendButton)),
    note, missing,
    h("div", { class: "gs-grid" }, sourceCard, conditionsCard, inventoryCard, driftCard, runsCard, nextCard, eventsCard));

  let syncInf = null;
  let eventInf = null;
  let obj = null;
  let busy = false; // an action's request is under way
  let pending = null; // { value, what, since }: a sync request gitops has not handled yet
  const subs = new Map(); // urlPath -> unsubscribe
  const infs = new Map(); // urlPath -> informer
  let wanted = new Set();
  let drawnNext = null; // the nextSync last drawn (JSON)
  const openChanges = new Set(); // the changes whose diff the user opened
  let scheduled = false;
  let stopped = false;

  function schedule() {
    if (scheduled || stopped) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; if (!stopped) draw(); });
  }

  function say(text, error = false) {
    note.textContent = text;
    note.className = error ? "gs-note error" : "gs-note";
  }

  // ---------------------------------------------------------------- live objects of the inventory
  // The collections the inventory needs, most useful first: [urlPath, ...] (pods right after the
  // first workload of their namespace: they make its tree).
  function plan(entries) {
    const out = [];
    const add = (p) => { if (!out.includes(p)) out.push(p); };
    for (const kind of Object.keys(LIVE)) {
      for (const e of entries) {
        if (e.kind !== kind || e.apiVersion !== LIVE[kind][0]) continue;
        add(livePath(e));
        if (POD_OWNERS.includes(kind) || kind === "Deployment") add(path("v1", "pods", e.namespace));
      }
    }
    return out.slice(0, WATCH_BUDGET);
  }

  function livePath(e) {
    const [apiVersion, plural] = LIVE[e.kind];
    return path(apiVersion, plural, e.kind === "CustomResourceDefinition" ? undefined : e.namespace);
  }

  function informer(urlPath) {
    wanted.add(urlPath);
    if (!subs.has(urlPath)) {
      subs.set(urlPath, null);
      // subscribe() may call back at once: the callback only schedules a redraw.
      subs.set(urlPath, subscribe(urlPath, (inf) => { infs.set(urlPath, inf); schedule(); }));
    }
    return infs.get(urlPath);
  }

  function releaseUnwanted() {
    for (const [p, stop] of [...subs]) {
      if (!wanted.has(p)) {
        if (stop) stop();
        subs.delete(p);
        infs.delete(p);
      }
    }
  }

  // [live object or null, state, message] of an inventory entry.
  function live(entry, watched) {
    const recorded = [null, entry.health || "Unknown", entry.health ? "as gitops last saw it" : "no health recorded yet"];
    if (!LIVE[entry.kind] || entry.apiVersion !== LIVE[entry.kind][0]) return recorded;
    const p = livePath(entry);
    if (!watched.includes(p)) return [null, recorded[1], `${recorded[2]} (not watched: more namespaces than the view follows live)`];
    const inf = informer(p);
    if (!inf || inf.status === "loading") return [null, "Unknown", "loading"];
    if (inf.status === "forbidden") return [null, "Unknown", inf.error.message];
    const found = inf.items.get(entry.kind === "CustomResourceDefinition" ? entry.name : `${entry.namespace}/${entry.name}`);
    if (!found) {
      return inf.status === "live" ? [null, "Missing", "the object does not exist"] : [null, "Unknown", "reconnecting"];
    }
    return [found, ...health(found, entry.kind)];
  }

  // The pods of a workload, from the namespace's pods (when that collection is watched): owned by
  // it, or, for a Deployment, by its ReplicaSets (<deployment>-<pod-template-hash>).
  function podsOf(kind, obj, watched) {
    const m = obj.metadata || {};
    const p = path("v1", "pods", m.namespace);
    if (!m.namespace || !watched.includes(p)) return [];
    const inf = informer(p);
    if (!inf) return [];
    const mine = (pod) => ((pod.metadata || {}).ownerReferences || []).some((r) => (kind === "Deployment"
      ? r.kind === "ReplicaSet" && r.name === `${m.name}-${((pod.metadata.labels || {})["pod-template-hash"]) || ""}`
      : r.uid === m.uid));
    return inf.list().filter(mine).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
      .map((pod) => ({ kind: "Pod", obj: pod }));
  }

  function row(kind, label, state, message, attrs, cls) {
    return h("div", { class: "gs-row", ...attrs },
      h("span", { class: "gs-kind" }, kind),
      h("span", { class: "gs-name", title: label }, label),
      badge(state, cls || HEALTH_CLASS[state] || "muted", { "data-field": "health" }),
      h("span", { class: "gs-msg", title: message }, message));
  }

  function childItem(node) {
    const m = node.obj.metadata;
    const [state, message] = health(node.obj, node.kind);
    const owner = ((m.ownerReferences || [])[0] || {}).name;
    return h("li", { "data-child": `${node.kind}/${m.namespace}/${m.name}`, "data-health": state },
      row(node.kind, m.name, state, owner ? `${message} · ${owner}` : message, {}));
  }

  function drawInventory(st) {
    const entries = [...(st.inventory || [])].sort((a, b) => kindRank(a.kind) - kindRank(b.kind)
      || (a.namespace || "").localeCompare(b.namespace || "") || a.name.localeCompare(b.name));
    const watched = plan(entries);
    const items = entries.map((e) => {
      const [found, state, message] = live(e, watched);
      const label = e.namespace ? `${e.namespace}/${e.name}` : e.name;
      return h("li", { "data-inventory": entryKey(e), "data-api-version": e.apiVersion, "data-kind": e.kind,
                       "data-namespace": e.namespace || "", "data-name": e.name, "data-uid": e.uid || "",
                       "data-recorded-health": e.health || "", "data-health": state },
        row(e.kind, label, state, e.health && e.health !== state ? `${message} (gitops last saw ${e.health})` : message,
            { title: `${e.apiVersion} ${e.kind} ${label}` }),
        found ? (() => {
          const kids = podsOf(e.kind, found, watched);
          return kids.length ? h("ul", { class: "gs-tree" }, kids.map(childItem)) : null;
        })() : null);
    });
    const counts = {};
    for (const li of items) counts[li.dataset.health] = (counts[li.dataset.health] || 0) + 1;
    replaceChildren(inventoryBody,
      h("p", { class: "meta", "data-field": "inventory-summary" }, `${entries.length} object${entries.length === 1 ? "" : "s"}`,
        Object.keys(counts).length ? `: ${Object.entries(counts).map(([s, c]) => `${c} ${s}`).join(", ")}` : ""),
      h("ul", { class: "gs-tree gs-root", "aria-label": `Objects GitSync ${key} applied, with their health` },
        h("li", { "data-root": key },
          row("GitSync", key, syncState(obj).text, (conditionOf(obj, "Ready") || {}).message || "", {}, syncState(obj).cls),
          items.length ? h("ul", { class: "gs-tree" }, items) : h("p", { class: "meta" }, "Nothing applied yet."))));
  }

  // ---------------------------------------------------------------- the rest of the status
  function drawSource(spec, st) {
    const fields = [
      ["Repository", spec.url, "url"], ["Ref", refText(spec.ref), "ref"], ["Path", spec.path || ".", "path"],
      ["Interval", spec.interval || "15s", "interval"],
      ["Target namespace", spec.targetNamespace || "—", "targetNamespace"],
      ["Prune · self-heal", `${spec.prune === false ? "off" : "on"} · ${spec.selfHeal === false ? "off" : "on"}`, "policy"],
      ["Applied revision", st.lastAppliedRevision || "none yet", "lastAppliedRevision"],
    ];
    if (st.fetchedRevision && st.fetchedRevision !== st.lastAppliedRevision) fields.push(["Fetched revision", st.fetchedRevision, "fetchedRevision"]);
    if (st.lastAttemptedRevision && st.lastAttemptedRevision !== st.lastAppliedRevision) {
      fields.push(["Attempted revision", st.lastAttemptedRevision, "lastAttemptedRevision"]);
    }
    replaceChildren(sourceBody, h("dl", { class: "gs-fields" }, fields.map(([label, value, field]) => [
      h("dt", {}, label), h("dd", { "data-field": field, title: value, class: field.endsWith("Revision") ? "mono" : "" }, value)])));
  }

  function drawConditions(st) {
    const conditions = st.conditions || [];
    replaceChildren(conditionsBody, conditions.length ? h("table", { class: "list gs-conditions" },
      h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Since", "Message"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, conditions.map((c) => h("tr", { "data-condition": c.type },
        h("td", { "data-field": "type" }, c.type),
        h("td", { "data-field": "status" }, badge(c.status, c.status === "True" ? "ok" : c.status === "False" ? "bad" : "progress")),
        h("td", { "data-field": "reason" }, c.reason || ""),
        h("td", { "data-field": "lastTransitionTime" }, when(c.lastTransitionTime)),
        h("td", { "data-field": "message", class: "gs-cut", title: c.message || "" }, c.message || "")))))
      : h("p", { class: "meta" }, "Not reconciled yet (is minik8s gitops running?)."));
  }

  // status.nextSync (gitops/preview.py): the revision the next sync acts on, a summary, and per
  // change a diff of the live object against the server's dry-run answer to the apply. Redrawn
  // only when it changes; the diffs a user opened stay open while the status streams in.
  function drawNext(st) {
    const next = st.nextSync || null;
    const errors = st.errors || [];
    const text = JSON.stringify([next, errors, st.fetchedRevision || ""]);
    if (text === drawnNext) return;
    drawnNext = text;
    const lines = [];
    if (!next) {
      lines.push(h("p", { "data-field": "next-revision" }, st.fetchedRevision
        ? `Revision ${shortRevision(st.fetchedRevision)} is fetched; gitops has not published its preview yet.`
        : "Nothing fetched yet."));
    } else {
      lines.push(h("p", { "data-field": "next-revision" }, "Revision ", h("code", {}, shortRevision(next.revision)), ": ",
        h("strong", { "data-field": "next-summary" }, next.summary || "")));
      if (next.blocked) lines.push(h("p", { class: "error", "data-field": "next-blocked" }, next.blocked));
      const changes = next.changes || [];
      if (changes.length) {
        lines.push(h("ul", { class: "gs-changes", "data-field": "next-changes" }, changes.map((c) => changeItem(c))));
      } else if (!next.blocked) {
        lines.push(h("p", { class: "meta" }, "Git and the cluster agree: the next sync changes nothing."));
      }
    }
    if (errors.length) {
      const where = (e) => `${e.file || ""}${e.document !== undefined ? ` (document ${e.document})` : ""}`;
      lines.push(h("p", {}, `${errors.length} error(s) in the revision:`),
        h("ul", { class: "gs-plain", "data-field": "errors" }, errors.map((e) => h("li", {},
          `${where(e)}: ${[e.kind, e.name].filter(Boolean).join(" ")}: ${e.message}`))));
    }
    replaceChildren(nextBody, lines);
  }

  function changeItem(c) {
    const id = `${c.action} ${c.kind} ${c.namespace ? `${c.namespace}/` : ""}${c.name}`;
    const details = h("details", { class: "gs-change", "data-change": id },
      h("summary", {}, badge(c.action, c.action === "prune" ? "bad" : c.action === "create" ? "ok" : "progress"), " ",
        h("span", { class: "gs-obj" }, `${c.kind} ${c.namespace ? `${c.namespace}/` : ""}${c.name}`), " ",
        h("span", { class: "meta" }, `(${c.reason})`), c.note ? h("span", { class: "gs-change-note" }, ` ${c.note}`) : ""),
      h("pre", { class: "gs-diff", "aria-label": `diff of ${id}` }, (c.diff || "").split("\n").filter((l, i, a) => l || i < a.length - 1)
        .map((l) => h("span", { class: l.startsWith("+++") || l.startsWith("---") ? "diff-file"
          : l.startsWith("+") ? "diff-add" : l.startsWith("-") ? "diff-del" : l.startsWith("@@") ? "diff-hunk" : "" }, `${l}\n`))));
    details.open = openChanges.has(id);
    details.addEventListener("toggle", () => {
      if (details.open) openChanges.add(id); else openChanges.delete(id);
    });
    return h("li", {}, details);
  }

  function drawRuns(st) {
    const runs = st.history || [];
    replaceChildren(runsBody, runs.length ? h("table", { class: "list gs-runs" },
      h("thead", {}, h("tr", {}, ["Started", "Revision", "Result", "Took", "Writes", "Message"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, runs.map((r, i) => h("tr", { "data-run": String(i), "data-result": r.result || "" },
        h("td", {}, when(r.startedAt)),
        h("td", { class: "mono", title: r.revision || "" }, shortRevision(r.revision || "").replace(/^.*@sha1:/, "")),
        h("td", {}, badge(r.result || "?", RESULT_CLASS[r.result] || "bad")),
        h("td", {}, r.durationSeconds !== undefined ? `${Number(r.durationSeconds).toFixed(2)}s` : ""),
        h("td", {}, r.writes ?? ""),
        h("td", { class: "gs-cut", title: r.message || "" }, r.message || ""))))) : h("p", { class: "meta" }, "No run yet."));
  }

  // This GitSync's Events, newest first; null when the user may not read Events (or not yet).
  function myEvents() {
    if (!eventInf || eventInf.status === "forbidden") return null;
    const uid = obj && obj.metadata.uid;
    return eventInf.list().filter((e) => {
      const o = e.involvedObject || {};
      return o.kind === "GitSync" && o.name === name && (!uid || !o.uid || o.uid === uid);
    }).sort((a, b) => eventTime(b).localeCompare(eventTime(a)) || b.metadata.name.localeCompare(a.metadata.name));
  }

  function tick(id, reason, count, ts, what, fields, extra) {
    return h("li", { class: `gs-tick ${reason === "DriftCorrected" ? "progress" : "warn"}`, "data-drift": id,
                     "data-reason": reason, "data-count": String(count) },
      when(ts), " ", h("strong", {}, reason === "DriftCorrected" ? "put back" : "drift"), " ",
      h("span", { class: "gs-obj", "data-field": "object" }, what), " ",
      h("span", { "data-field": "fields" }, fields), extra);
  }

  // Drift corrections as a timeline: the DriftCorrected / DriftDetected Events gitops records
  // (one per object and fields; a repeat counts up), else the DriftCorrected runs of the history.
  function drawDrift(st, events) {
    let items;
    let from = null;
    if (events) {
      items = events.filter((e) => DRIFT_REASONS.includes(e.reason)).map((e) => {
        const [what, fields] = driftParts(e.message);
        const count = e.count || 1;
        return tick(e.metadata.name, e.reason, count, eventTime(e), what, fields,
          count > 1 ? h("span", { class: "meta" }, ` ×${count}, first ${age(e.firstTimestamp)} ago`) : null);
      });
    } else if (!eventInf) {
      replaceChildren(driftBody, h("p", { class: "meta" }, "Loading…"));
      return;
    } else {
      from = h("p", { class: "meta" }, `From status.history: the Events are not readable (${eventInf.error.message}).`);
      items = (st.history || []).filter((r) => r.result === "DriftCorrected")
        .map((r) => tick(`run-${r.startedAt}`, "DriftCorrected", 1, r.startedAt, "", r.message || "", null));
    }
    replaceChildren(driftBody, from, items.length
      ? h("ol", { class: "gs-timeline", "aria-label": "Drift corrections, newest first" }, items)
      : h("p", { class: "meta", "data-field": "no-drift" }, "No drift recorded: the cluster has matched Git."));
  }

  function drawEvents(events) {
    if (!events) {
      replaceChildren(eventsBody, h("p", { class: "meta" }, eventInf && eventInf.error ? eventInf.error.message : "Loading…"));
      return;
    }
    const rest = events.filter((e) => !DRIFT_REASONS.includes(e.reason)).slice(0, 30);
    replaceChildren(eventsBody, rest.length ? h("ul", { class: "events gs-events" }, rest.map((e) => h("li", {
      "data-event": e.metadata.name, "data-reason": e.reason },
      when(eventTime(e)), " ", badge(e.type || "Normal", e.type === "Warning" ? "bad" : "ok"), " ",
      h("strong", {}, e.reason), ` ${e.message}`, (e.count || 1) > 1 ? ` (×${e.count})` : "")))
      : h("p", { class: "meta" }, "No events."));
  }

  function drawActions() {
    const suspended = !!(obj && (obj.spec || {}).suspend);
    suspendButton.textContent = suspended ? "Resume" : "Suspend";
    suspendButton.dataset.action = suspended ? "resume" : "suspend";
    suspendButton.disabled = !obj || busy;
    syncButton.disabled = !obj || busy || suspended || !!pending;
    syncButton.title = suspended ? "Resume the GitSync first: a suspended GitSync is not reconciled" : "";
    if (pending && obj && (obj.status || {}).lastHandledRequestedAt === pending.value) {
      const [ok, text] = syncOutcome(obj);
      say(`${pending.what}: ${ok ? "synced" : "sync failed"}: ${text}`, !ok);
      pending = null;
      syncButton.disabled = !obj || busy || suspended;
    } else if (pending && Date.now() - pending.since > 60000) {
      say(`${pending.what}: gitops has not handled the request after a minute (is minik8s gitops running?)`, true);
      pending = null;
    }
  }

  function draw() {
    wanted = new Set();
    if (!syncInf) return;
    obj = syncInf.items.get(key) || null;
    if (!obj) {
      missing.textContent = syncInf.status === "live" ? `GitSync ${key} does not exist.`
        : syncInf.error ? syncInf.error.message : "";
      drawActions();
      releaseUnwanted();
      return;
    }
    missing.textContent = syncInf.status === "reconnecting" ? syncInf.error.message : "";
    const st = obj.status || {};
    const state = syncState(obj);
    stateBadge.textContent = state.text;
    stateBadge.className = `badge gs-badge ${state.cls}`;
    const events = myEvents();
    drawActions();
    drawSource(obj.spec || {}, st);
    drawNext(st);
    drawConditions(st);
    drawInventory(st);
    drawDrift(st, events);
    drawRuns(st);
    drawEvents(events);
    releaseUnwanted();
  }

  // ---------------------------------------------------------------- actions
  async function act(what, body, request) {
    busy = true;
    drawActions();
    say(`${what}…`);
    try {
      await patch(url, body);
      if (request) {
        pending = { value: request, what, since: Date.now() };
        say(`${what}: requested, waiting for gitops to handle it…`);
        setTimeout(schedule, 60500);
      } else {
        say(`${what}: done.`);
      }
    } catch (e) {
      say(`${what} failed: ${e.message}`, true);
    } finally {
      busy = false;
      schedule();
    }
  }
  syncButton.addEventListener("click", () => {
    const value = new Date().toISOString();
    act("Sync", { metadata: { annotations: { [REQUESTED]: value } } }, value);
  });
  suspendButton.addEventListener("click", () => {
    if (suspendButton.dataset.action === "resume") {
      const value = new Date().toISOString();
      act("Resume", { metadata: { annotations: { [REQUESTED]: value } }, spec: { suspend: false } }, value);
    } else {
      act("Suspend", { spec: { suspend: true } }, null);
    }
  });

  const stops = [
    subscribe(path(GV, "gitsyncs", ns), (inf) => { syncInf = inf; schedule(); }),
    subscribe(path("v1", "events", ns), (inf) => { eventInf = inf; schedule(); }),
  ];
  const timer = setInterval(schedule, 5000); // the ages
  return () => {
    stopped = true;
    clearInterval(timer);
    stops.forEach((s) => s());
    for (const stop of subs.values()) if (stop) stop();
    subs.clear();
  };
}
