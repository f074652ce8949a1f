// Overview: nodes (Ready, CPU and memory use against allocatable), pods by phase, recent warnings.
// Nodes, pods and events are live collections; the use figures come from the metrics API
// (metrics.k8s.io has no watch: it is read again every 15 s, as kubectl top would).
import { get } from "../api.js";
import { age, condition, h, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";

const PHASES = ["Running", "Pending", "Succeeded", "Failed", "Unknown"];

function quantity(q) {
  // Enough of Kubernetes' quantities for a bar: cpu in cores, memory in bytes.
  if (q === undefined || q === null) return NaN;
  const m = String(q).match(/^([0-9.]+)([a-zA-Z]*)$/);
  if (!m) return NaN;
  const units = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2,
                  Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return parseFloat(m[1]) * (units[m[2]] ?? NaN);
}

function bar(label, used, total) {
  const share = total > 0 && used >= 0 ? Math.min(1, used / total) : 0;
  const text = Number.isFinite(used) ? `${Math.round(share * 100)}%` : "no figures";
  return h("div", { class: "bar", role: "meter", "aria-label": label, "aria-valuemin": "0", "aria-valuemax": "100",
                    "aria-valuenow": String(Math.round(share * 100)) },
    h("span", { class: "fill", style: `width:${share * 100}%` }), h("span", { class: "bar-text" }, `${label} ${text}`));
}

export function overview(container) {
  const nodesBox = h("section", { class: "card", "aria-labelledby": "ov-nodes" });
  const podsBox = h("section", { class: "card", "aria-labelledby": "ov-pods" });
  const eventsBox = h("section", { class: "card wide", "aria-labelledby": "ov-events" });
  replaceChildren(container, h("h1", {}, "Overview"), h("div", { class: "cards" }, nodesBox, podsBox, eventsBox));
  let nodeInf = null;
  let usage = new Map();

  function drawNodes() {
    if (!nodeInf) return;
    const list = nodeInf.list().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    const ready = list.filter((n) => (condition(n, "Ready") || {}).status === "True").length;
    replaceChildren(nodesBox, h("h2", { id: "ov-nodes" }, `Nodes: ${ready} of ${list.length} Ready`),
      nodeInf.status === "forbidden" ? h("p", { class: "error" }, nodeInf.error.message) : null,
      list.map((n) => {
        const alloc = (n.status || {}).allocatable || {};
        const use = usage.get(n.metadata.name) || {};
        return h("div", { class: "node-row", "data-node": n.metadata.name },
          h("a", { href: "#/nodes" }, n.metadata.name),
          bar("cpu", quantity(use.cpu), quantity(alloc.cpu)),
          bar("memory", quantity(use.memory), quantity(alloc.memory)));
      }));
  }

  const stops = [
    subscribe("/api/v1/nodes", (inf) => { nodeInf = inf; drawNodes(); }),
    subscribe("/api/v1/pods", (inf) => {
      const counts = Object.fromEntries(PHASES.map((p) => [p, 0]));
      for (const p of inf.list()) counts[(p.status || {}).phase || "Pending"] += 1;
      replaceChildren(podsBox, h("h2", { id: "ov-pods" }, `Pods: ${inf.items.size}`),
        inf.status === "forbidden" ? h("p", { class: "error" }, inf.error.message) : null,
        h("dl", { class: "phases" }, PHASES.map((p) => [h("dt", {}, p), h("dd", { "data-phase": p }, counts[p])])));
    }),
    subscribe("/api/v1/events", (inf) => {
      const warnings = inf.list().filter((e) => e.type === "Warning")
        .sort((a, b) => (b.lastTimestamp || b.eventTime || "").localeCompare(a.lastTimestamp || a.eventTime || ""))
        .slice(0, 10);
      replaceChildren(eventsBox, h("h2", { id: "ov-events" }, "Recent warnings"),
        inf.status === "forbidden" ? h("p", { class: "error" }, inf.error.message) : null,
        warnings.length ? h("ul", { class: "events" }, warnings.map((e) => h("li", {},
          h("span", { class: "age" }, age(e.lastTimestamp || e.eventTime)), " ",
          h("strong", {}, e.reason), ` ${e.involvedObject.kind.toLowerCase()}/${e.involvedObject.name}: ${e.message}`)))
          : h("p", {}, "No warnings."));
    }),
  ];
  let timer = null;
  async function refreshUsage() {
    try {
      const answer = await get("/apis/metrics.k8s.io/v1beta1/nodes");
      usage = new Map((answer.items || []).map((m) => [m.metadata.name, m.usage || {}]));
    } catch (_) {
      usage = new Map(); // no metrics API, or not allowed: the bars say "no figures"
    }
    drawNodes();
    timer = setTimeout(refreshUsage, 15000);
  }
  refreshUsage();
  return () => { stops.forEach((s) => s()); clearTimeout(timer); };
}
