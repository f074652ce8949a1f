// Nodes: one card per node (Ready, schedulable, taints, allocatable) with its pods drawn as blocks,
// plus a lane of pods no node has yet. Fed by two live collections (nodes, pods of every namespace).
import { condition, h, podStatus, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";

export function blockClass(pod) {
  const s = podStatus(pod);
  if (s === "Running" && (pod.status.containerStatuses || []).every((c) => c.ready)) return "ok";
  if (s === "Running" || s === "Pending" || s === "ContainerCreating" || s === "PodInitializing") return "progress";
  if (s === "Succeeded" || s === "Completed") return "done";
  if (s === "Terminating") return "leaving";
  return "bad";
}

export function podBlock(pod) {
  const m = pod.metadata;
  const label = `${m.namespace}/${m.name}: ${podStatus(pod)}`;
  return h("a", { class: `block ${blockClass(pod)}`, href: `#/pods/${m.namespace}/${m.name}`, title: label,
                  "aria-label": label, "data-pod": `${m.namespace}/${m.name}` });
}

function nodeCard(node, pods) {
  const ready = condition(node, "Ready");
  const state = !ready ? "Unknown" : ready.status === "True" ? "Ready" : ready.status === "False" ? "NotReady" : "Unknown";
  const alloc = (node.status || {}).allocatable || {};
  const taints = (node.spec || {}).taints || [];
  return h("section", { class: `card node ${state === "Ready" ? "" : "down"}`, "data-node": node.metadata.name,
                        "aria-label": `node ${node.metadata.name}` },
    h("h2", {}, node.metadata.name, " ", h("span", { class: `badge ${state === "Ready" ? "ok" : "bad"}` }, state),
      node.spec && node.spec.unschedulable ? h("span", { class: "badge warn" }, "SchedulingDisabled") : null),
    h("p", { class: "meta" }, `cpu ${alloc.cpu || "?"} · memory ${alloc.memory || "?"} · pods ${pods.length}/${alloc.pods || "?"}`),
    taints.length ? h("p", { class: "meta" }, "taints: ", taints.map((t) => `${t.key}${t.value ? "=" + t.value : ""}:${t.effect}`).join(", ")) : null,
    h("div", { class: "blocks", role: "list" }, pods.map(podBlock)));
}

export function nodes(container) {
  let nodeList = null;
  let podList = null;
  const body = h("div", { class: "cards" });
  const note = h("p", { class: "status-line", role: "status" });
  replaceChildren(container, h("h1", {}, "Nodes"), note, body);

  function draw() {
    if (!nodeList || !podList) return;
    if (nodeList.status === "forbidden" || podList.status === "forbidden") {
      note.textContent = (nodeList.error || podList.error).message;
    }
    const byNode = new Map();
    const unscheduled = [];
    for (const p of podList.list().sort((a, b) => (a.metadata.namespace + a.metadata.name).localeCompare(b.metadata.namespace + b.metadata.name))) {
      const n = (p.spec || {}).nodeName;
      if (!n) unscheduled.push(p);
      else byNode.set(n, [...(byNode.get(n) || []), p]);
    }
    const cards = nodeList.list().sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
      .map((n) => nodeCard(n, byNode.get(n.metadata.name) || []));
    if (unscheduled.length) {
      cards.push(h("section", { class: "card node pending", "data-node": "", "aria-label": "pods on no node yet" },
        h("h2", {}, "Not scheduled yet"), h("div", { class: "blocks", role: "list" }, unscheduled.map(podBlock))));
    }
    replaceChildren(body, cards);
  }
  const stops = [
    subscribe("/api/v1/nodes", (inf) => { nodeList = inf; draw(); }),
    subscribe("/api/v1/pods", (inf) => { podList = inf; draw(); }),
  ];
  return () => stops.forEach((s) => s());
}
