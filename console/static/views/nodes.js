// Nodes: one card per node (Ready, schedulable, taints, allocatable, Cordon / Drain) with its pods as blocks,
// plus a lane of pods no node has yet. Fed by two live collections (nodes, pods of every namespace).
import { create, patch } from "../api.js";
import { condition, h, podStatus, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";
import { yamlHref } from "./yaml.js";

// kubectl cordon / uncordon: spec.unschedulable.
export function cordon(node, unschedulable) {
  return patch(`/api/v1/nodes/${encodeURIComponent(node)}`, { spec: { unschedulable: unschedulable || null } });
}

// kubectl drain: cordon, then an Eviction for every pod on the node but DaemonSet pods and mirror
// pods (the eviction API honours PodDisruptionBudgets: a refused eviction is reported, not forced).
export async function drain(node, pods) {
  await cordon(node, true);
  const refused = [];
  for (const p of pods) {
    const owners = p.metadata.ownerReferences || [];
    if (owners.some((o) => o.kind === "DaemonSet") || (p.metadata.annotations || {})["kubernetes.io/config.mirror"]) continue;
    if (p.status && (p.status.phase === "Succeeded" || p.status.phase === "Failed")) continue;
    try {
      await create(`/api/v1/namespaces/${encodeURIComponent(p.metadata.namespace)}/pods/${encodeURIComponent(p.metadata.name)}/eviction`,
        { apiVersion: "policy/v1", kind: "Eviction", metadata: { name: p.metadata.name, namespace: p.metadata.namespace } });
    } catch (e) {
      refused.push(`${p.metadata.namespace}/${p.metadata.name}: ${e.message}`);
    }
  }
  return refused;
}

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
  return h("a", { class: `block ${blockClass(pod)}`, href: `#/pod/${m.namespace}/${m.name}`, title: label,
                  "aria-label": label, "data-pod": `${m.namespace}/${m.name}` });
}

function nodeActions(node, pods, say) {
  const name = node.metadata.name;
  const run = (what, fn) => async () => {
    say("");
    try {
      const refused = await fn();
      if (refused && refused.length) say(`${what} ${name}: not evicted: ${refused.join("; ")}`);
    } catch (e) {
      say(`${what} ${name}: ${e.message}`);
    }
  };
  const unschedulable = node.spec && node.spec.unschedulable;
  return h("div", { class: "actions" },
    h("button", { type: "button", "data-action": unschedulable ? "uncordon" : "cordon",
                  onclick: run(unschedulable ? "uncordon" : "cordon", () => cordon(name, !unschedulable)) },
      unschedulable ? "Uncordon" : "Cordon"),
    h("button", { type: "button", class: "danger", "data-action": "drain",
                  onclick: run("drain", () => (confirm(`Drain ${name}: cordon it and evict its ${pods.length} pods?`)
                    ? drain(name, pods) : null)) }, "Drain"));
}

function nodeCard(node, pods, say) {
  const ready = condition(node, "Ready");
  const state = !ready ? "Unknown" : ready.status === "True" ? "Ready" : ready.status === "False" ? "NotReady" : "Unknown";
  const alloc = (node.status || {}).allocatable || {};
  const taints = (node.spec || {}).taints || [];
  return h("section", { class: `card node ${state === "Ready" ? "" : "down"}`, "data-node": node.metadata.name,
                        "aria-label": `node ${node.metadata.name}` },
    h("h2", {}, node.metadata.name, " ", h("a", { class: "small-link", href: yamlHref("v1", "nodes", "", node.metadata.name),
                                             "aria-label": `YAML of node ${node.metadata.name}` }, "YAML"), " ", h("span", { class: `badge ${state === "Ready" ? "ok" : "bad"}` }, state),
      node.spec && node.spec.unschedulable ? h("span", { class: "badge warn" }, "SchedulingDisabled") : null),
    h("p", { class: "meta" }, `cpu ${alloc.cpu || "?"} · memory ${alloc.memory || "?"} · pods ${pods.length}/${alloc.pods || "?"}`),
    taints.length ? h("p", { class: "meta" }, "taints: ", taints.map((t) => `${t.key}${t.value ? "=" + t.value : ""}:${t.effect}`).join(", ")) : null,
    h("div", { class: "blocks", role: "list" }, pods.map(podBlock)),
    nodeActions(node, pods, say));
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
      .map((n) => nodeCard(n, byNode.get(n.metadata.name) || [], (text) => { note.textContent = text; }));
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
