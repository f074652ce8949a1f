// Events: every Event the user may list, newest first, live, filtered as you type.
//
// Route: #/events (all namespaces) or #/events/<namespace>. The namespace filter is the list's
// scope: with one, the view watches that namespace's events only (so a user allowed a single
// namespace sees its events where the all-namespaces list is the API's 403); the route follows it.
// Type (Normal / Warning), reason (a part of it) and a free text (a part of the object, as
// kind/name, or of the message) filter in the page. Every filter is a labelled field; the count
// line says how many events match. Fed by one live collection (store.js) of core v1 Events.
import { age, h, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";
import { yamlHref } from "./yaml.js";

const LIMIT = 300; // rows drawn at most (the newest); the count line says when more match

export function when(e) {
  return e.lastTimestamp || (e.series || {}).lastObservedTime || e.eventTime || e.firstTimestamp ||
    (e.metadata || {}).creationTimestamp || "";
}

function plural(kind) {
  const k = kind.toLowerCase();
  if (k === "endpoints") return k;
  if (/(s|x|ch|sh)$/.test(k)) return `${k}es`;
  if (/[^aeiou]y$/.test(k)) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}

function objectLink(o, eventNamespace) {
  const text = `${(o.kind || "?").toLowerCase()}/${o.name || "?"}`;
  if (!o.kind || !o.name) return text;
  const apiVersion = o.apiVersion || "v1";
  const ns = o.namespace || (o.kind === "Node" || o.kind === "Namespace" ? "" : eventNamespace);
  if (o.kind === "Pod" && apiVersion === "v1") {
    return h("a", { href: `#/pod/${encodeURIComponent(ns)}/${encodeURIComponent(o.name)}`, "aria-label": `${text} (the pod's page)` }, text);
  }
  return h("a", { href: yamlHref(apiVersion, plural(o.kind), ns, o.name), "aria-label": `${text} (YAML)` }, text);
}

export function events(container, args) {
  let namespace = args[0] || "";
  let typeFilter = "";
  let reasonFilter = "";
  let textFilter = "";
  let inf = null;
  let stop = null;

  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
  const nsInput = h("input", { id: "ev-namespace", type: "text", value: namespace, list: "ev-namespaces",
                               autocomplete: "off", spellcheck: "false", placeholder: "all namespaces",
                               "data-filter": "namespace" });
  const nsList = h("datalist", { id: "ev-namespaces" });
  const typeSelect = h("select", { id: "ev-type", "data-filter": "type" },
    h("option", { value: "" }, "Normal and Warning"), h("option", { value: "Normal" }, "Normal"),
    h("option", { value: "Warning" }, "Warning"));
  const reasonInput = h("input", { id: "ev-reason", type: "text", list: "ev-reasons", autocomplete: "off",
                                   spellcheck: "false", "data-filter": "reason" });
  const reasonList = h("datalist", { id: "ev-reasons" });
  const textInput = h("input", { id: "ev-text", type: "search", autocomplete: "off", spellcheck: "false",
                                 placeholder: "pod/web, image, …", "data-filter": "text" });
  const clear = h("button", { type: "button", "data-action": "clear-filters" }, "Clear filters");
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the events" },
    field("ev-namespace", "Namespace", nsInput), nsList,
    field("ev-type", "Type", typeSelect),
    field("ev-reason", "Reason", reasonInput), reasonList,
    field("ev-text", "Object or message", textInput), clear);
  const note = h("p", { class: "status-line", role: "status", "data-error": "events" });
  const count = h("p", { class: "meta count", "aria-live": "polite", "data-count": "" });
  const body = h("tbody");
  const table = h("table", { class: "list events-table" },
    h("caption", { class: "visually-hidden" }, "Events, newest first"),
    h("colgroup", {}, ["7%", "8%", "11%", "17%", "13%", "38%", "6%"].map((w) => h("col", { style: `width:${w}` }))),
    h("thead", {}, h("tr", {}, ["Last seen", "Type", "Namespace", "Object", "Reason", "Message", "Count"]
      .map((c) => h("th", { scope: "col" }, c)))),
    body);
  replaceChildren(container, h("h1", {}, "Events"), form, note, count, table);

  function matches(e) {
    if (typeFilter && e.type !== typeFilter) return false;
    if (reasonFilter && !(e.reason || "").toLowerCase().includes(reasonFilter)) return false;
    if (textFilter) {
      const o = e.involvedObject || {};
      const hay = `${(o.kind || "").toLowerCase()}/${o.name || ""} ${o.namespace || ""} ${e.message || ""}`.toLowerCase();
      if (!hay.includes(textFilter)) return false;
    }
    return true;
  }

  function draw() {
    if (!inf) return;
    note.textContent = (inf.status === "forbidden" || inf.status === "reconnecting") && inf.error ? inf.error.message : "";
    if (inf.status === "forbidden") {
      count.textContent = "";
      count.dataset.shown = "0";
      replaceChildren(body);
      return;
    }
    const all = inf.list();
    const reasons = [...new Set(all.map((e) => e.reason).filter(Boolean))].sort();
    if (reasonList.childElementCount !== reasons.length) replaceChildren(reasonList, reasons.map((r) => h("option", { value: r })));
    const namespaces = [...new Set(all.map((e) => e.metadata.namespace).filter(Boolean))].sort();
    if (!namespace && nsList.childElementCount !== namespaces.length) replaceChildren(nsList, namespaces.map((n) => h("option", { value: n })));
    const shown = all.filter(matches).sort((a, b) => ((Date.parse(when(b)) || 0) - (Date.parse(when(a)) || 0)) ||
      (b.metadata.resourceVersion || "").localeCompare(a.metadata.resourceVersion || "", undefined, { numeric: true }));
    count.dataset.shown = String(shown.length);
    count.dataset.total = String(all.length);
    count.textContent = inf.status === "loading" ? "Loading…"
      : `${shown.length === all.length ? `${all.length}` : `${shown.length} of ${all.length}`} event${all.length === 1 ? "" : "s"}` +
        `${namespace ? ` in ${namespace}` : ""}${shown.length > LIMIT ? `; the newest ${LIMIT} shown` : ""}.`;
    replaceChildren(body, shown.slice(0, LIMIT).map((e) => {
      const m = e.metadata;
      const t = when(e);
      return h("tr", { "data-event": `${m.namespace}/${m.name}`, "data-type": e.type || "", "data-reason": e.reason || "",
                       "data-namespace": m.namespace || "", class: e.type === "Warning" ? "warning-row" : "" },
        h("td", { class: "age" }, h("time", { datetime: t, title: t }, age(t))),
        h("td", {}, h("span", { class: `badge ${e.type === "Warning" ? "warn" : "ok"}` }, e.type || "Normal")),
        h("td", {}, m.namespace || ""),
        h("td", { "data-object": "" }, objectLink(e.involvedObject || {}, m.namespace)),
        h("td", {}, e.reason || ""),
        h("td", { class: "message" }, e.message || ""),
        h("td", { class: "num" }, (e.series && e.series.count) || e.count || 1));
    }));
  }

  function watchScope() {
    if (stop) stop();
    inf = null;
    replaceChildren(body);
    count.textContent = "Loading…";
    const url = namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/events` : "/api/v1/events";
    stop = subscribe(url, (i) => { inf = i; draw(); });
  }

  let nsTimer = null;
  function applyNamespace() {
    clearTimeout(nsTimer);
    const ns = nsInput.value.trim();
    if (ns === namespace) return;
    namespace = ns;
    // The address follows the scope without remounting the view (replaceState fires no hashchange).
    history.replaceState(null, "", ns ? `#/events/${encodeURIComponent(ns)}` : "#/events");
    watchScope();
  }
  nsInput.addEventListener("input", () => { clearTimeout(nsTimer); nsTimer = setTimeout(applyNamespace, 500); });
  nsInput.addEventListener("change", applyNamespace);
  nsInput.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); applyNamespace(); } });
  typeSelect.addEventListener("change", () => { typeFilter = typeSelect.value; draw(); });
  reasonInput.addEventListener("input", () => { reasonFilter = reasonInput.value.trim().toLowerCase(); draw(); });
  textInput.addEventListener("input", () => { textFilter = textInput.value.trim().toLowerCase(); draw(); });
  form.addEventListener("submit", (ev) => { ev.preventDefault(); applyNamespace(); });
  clear.addEventListener("click", () => {
    typeSelect.value = "";
    reasonInput.value = "";
    textInput.value = "";
    typeFilter = reasonFilter = textFilter = "";
    draw();
    textInput.focus();
  });

  watchScope();
  const ticker = setInterval(draw, 10000); // the ages move on
  return () => { clearInterval(ticker); clearTimeout(nsTimer); if (stop) stop(); };
}
