// Workloads: Deployments (with their ReplicaSets), StatefulSets, DaemonSets and Jobs of every namespace
// the user may list (or of one: #/workloads/<namespace>), each with its pods. A Deployment's rollout is
// drawn as its ReplicaSets side by side (the new one's ready/desired against the old ones', a stacked bar
// and a row of pod blocks each) with its Progressing condition; its history is its ReplicaSets by
// deployment.kubernetes.io/revision, with their images.
//
// Data: live collections (Deployments, ReplicaSets, StatefulSets, DaemonSets, Jobs and pods: six watch
// streams, all on the page's one WebSocket) -> ownership by the controller ownerReference's uid -> one card per workload. A card is kept across redraws (its inputs and buttons
// keep their focus and what was typed); its live parts are plain data models drawn again only when the
// model changed, so streaming events do not make the page jump.
//
// Actions are plain API calls made as the logged-in user (the API server's RBAC decides; a refusal shows
// the API's own message): scale PATCHes the /scale subresource; restart merge-patches the pod template's
// kubectl.kubernetes.io/restartedAt (mkctl/kubectl rollout restart); undo does what mkctl rollout undo
// does (Deployment: GET it, LIST the namespace's ReplicaSets, a JSON patch putting the previous
// revision's template and annotations back; DaemonSet/StatefulSet: LIST ControllerRevisions, a strategic
// merge patch of the previous revision's data); delete DELETEs with propagationPolicy Background after a
// confirm step.
//
// The pure part (models, rollout wording) is views/workloadmodel.js, the API calls views/workloadcalls.js.

import { path } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";
import { get, patch, del, nowStamp, undoDeployment, undoByRevisions } from "./workloadcalls.js";
import { RESTARTED_AT, KINDS, controllerUid, num, byName, deploymentModel, otherModel } from "./workloadmodel.js";

// ------------------------------------------------------------------------------ drawing
function podBlocks(pods, label) {
  return h("div", { class: "blocks wl-blocks", "aria-label": label },
    pods.map((p) => {
      const text = `${p.ns}/${p.name}: ${p.status}`;
      return h("a", { class: `block ${p.cls}`, href: `#/pod/${encodeURIComponent(p.ns)}/${encodeURIComponent(p.name)}`,
                      title: text, "aria-label": text, "data-pod": `${p.ns}/${p.name}` });
    }));
}

// One stacked bar for the rollout: the new ReplicaSet's ready and not-ready replicas, then the old ones'.
function rolloutBar(m) {
  const newRow = m.rows.find((r) => r.role === "new");
  const newReady = newRow ? newRow.ready : 0;
  const newRest = newRow ? Math.max(0, newRow.current - newRow.ready) : 0;
  const old = m.rows.filter((r) => r.role === "old").reduce((n, r) => n + r.current, 0);
  const scale = Math.max(m.desired, newReady + newRest + old, 1);
  const pct = (n) => `width:${(100 * n) / scale}%`;
  const label = `rollout: new ${newReady} ready and ${newRest} starting, old ${old}, of ${m.desired} desired`;
  return h("div", { class: "wl-bar", role: "img", "aria-label": label, title: label },
    h("span", { class: "wl-seg new-ready", style: pct(newReady) }),
    h("span", { class: "wl-seg new", style: pct(newRest) }),
    h("span", { class: "wl-seg old", style: pct(old) }));
}

function drawDeploymentLive(ns, m) {
  return [
    h("p", { class: "wl-line" }, m.summary, " · ", m.message),
    h("p", { class: "wl-line", "data-condition": "Progressing" }, m.progressing),
    rolloutBar(m),
    m.rows.map((r) => h("div", { class: `wl-rs ${r.role}`, "data-replicaset": `${ns}/${r.name}`, "data-role": r.role,
                                "data-revision": r.revision, "data-desired": r.desired, "data-current": r.current,
                                "data-ready": r.ready, "data-image": r.image },
      h("span", { class: `wl-tag ${r.role}` }, `${r.role} · rev ${r.revision || "?"}`),
      h("span", { class: "wl-image", title: `${r.name}: ${r.image}` }, r.image),
      h("span", { class: "wl-num", title: "ready/desired" }, `${r.ready}/${r.desired}`),
      podBlocks(r.pods, `pods of ReplicaSet ${r.name}`))),
  ];
}

function drawOtherLive(ns, name, m) {
  return [
    h("p", { class: "wl-line" }, m.summary, m.message ? ` · ${m.message}` : ""),
    h("div", { class: "wl-rs", "data-image": m.image },
      h("span", { class: "wl-tag" }, "pods"),
      h("span", { class: "wl-image", title: m.image }, m.image),
      h("span", { class: "wl-num" }, m.pods.length),
      podBlocks(m.pods, `pods of ${name}`)),
  ];
}

// ------------------------------------------------------------------------------ the card
let cardIds = 0;

function workloadCard(k, ns, name) {
  const id = `wl-${++cardIds}`;
  const what = `${k.kind.toLowerCase()} ${ns}/${name}`;
  const badge = h("span", { class: "badge" });
  const live = h("div", { class: "wl-live" });
  const history = h("div", { class: "wl-history" });
  const result = h("p", { class: "wl-result", role: "status", "aria-live": "polite", "data-result": "" });
  let buttons = [];
  let busy = false;
  let dirty = false; // the replicas input holds something the user typed
  let current = null; // the latest object from the watch

  async function act(label, fn) {
    if (busy) return false;
    busy = true;
    buttons = buttons.filter((b) => b.isConnected || b.dataset.action !== "rollback"); // drop redrawn rows' buttons
    buttons.forEach((b) => { b.disabled = true; });
    result.className = "wl-result";
    result.textContent = `${label}…`;
    try {
      const said = await fn();
      result.textContent = `${what}: ${said}`;
      return true;
    } catch (e) {
      result.className = "wl-result error";
      result.textContent = e.message; // the API server's own Status message
      return false;
    } finally {
      busy = false;
      buttons.forEach((b) => { b.disabled = false; });
    }
  }
  const button = (text, attrs) => { const b = h("button", { type: "button", ...attrs }, text); buttons.push(b); return b; };
  const objectPath = () => path(k.apiVersion, k.plural, ns, name);

  const controls = [];
  let replicas = null;
  if (k.scale) {
    replicas = h("input", { id: `${id}-replicas`, type: "number", min: "0", step: "1", inputmode: "numeric",
                            "data-action": "replicas" });
    replicas.addEventListener("input", () => { dirty = true; });
    const form = h("form", { class: "wl-scale", "aria-label": `scale ${what}` },
      h("label", { for: `${id}-replicas` }, "Replicas"), replicas,
      button("Scale", { type: "submit", "data-action": "scale", "aria-label": `Scale ${what}` }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const n = Number(replicas.value);
      if (replicas.value.trim() === "" || !Number.isInteger(n) || n < 0) {
        result.className = "wl-result error";
        result.textContent = "replicas: a whole number, 0 or more";
        return;
      }
      if (await act("scaling", async () => {
        await patch(path(k.apiVersion, k.plural, ns, name, "scale"), { spec: { replicas: n } }, "merge");
        return `scaled to ${n}`;
      })) dirty = false;
    });
    controls.push(form);
  }
  if (k.restart) {
    controls.push(button("Restart", { "data-action": "restart", "aria-label": `Restart the rollout of ${what}`,
      onclick: () => act("restarting", async () => {
        await patch(objectPath(), { spec: { template: { metadata: { annotations: { [RESTARTED_AT]: nowStamp() } } } } }, "merge");
        return "restarted";
      }) }));
  }
  if (k.undo) {
    controls.push(button("Undo", { "data-action": "undo", "aria-label": `Undo: roll ${what} back to its previous revision`,
      onclick: () => act("rolling back", () => (k.kind === "Deployment" ? undoDeployment(ns, name) : undoByRevisions(k, ns, name))) }));
  }
  const deleteButton = button("Delete…", { class: "danger", "data-action": "delete", "aria-label": `Delete ${what}…` });
  const confirmButton = button("Delete", { class: "danger", "data-action": "confirm-delete", "aria-label": `Yes, delete ${what}` });
  const cancelButton = button("Cancel", { "data-action": "cancel-delete" });
  const confirm = h("span", { class: "wl-confirm", role: "group", "aria-label": `confirm the deletion of ${what}`, hidden: true },
    h("span", {}, `Delete ${k.kind.toLowerCase()} ${name}?`), confirmButton, cancelButton);
  const normal = h("span", { class: "wl-normal" }, controls, deleteButton);
  function asking(on) {
    normal.hidden = on;
    confirm.hidden = !on;
    (on ? cancelButton : deleteButton).focus();
  }
  deleteButton.addEventListener("click", () => asking(true));
  cancelButton.addEventListener("click", () => asking(false));
  confirm.addEventListener("keydown", (ev) => { if (ev.key === "Escape") asking(false); });
  confirmButton.addEventListener("click", async () => {
    const ok = await act("deleting", async () => {
      await del(objectPath(), { propagationPolicy: "Background" });
      return "deleted";
    });
    if (!ok) asking(false);
  });

  const heading = h("h2", { id }, name, badge);
  const el = h("section", { class: "card workload", "data-workload": `${ns}/${k.kind.toLowerCase()}/${name}`,
                            "data-kind": k.kind, "aria-labelledby": id },
    heading, h("p", { class: "meta" }, `namespace ${ns}`), live, history,
    h("div", { class: "wl-actions", role: "group", "aria-label": `actions on ${what}` }, normal, confirm),
    result);

  function part(box, model, draw) {
    const sig = JSON.stringify(model);
    if (box.dataset.sig === sig) return;
    box.dataset.sig = sig;
    replaceChildren(box, draw(model));
  }

  function drawHistory(rows) {
    if (!rows.length) return [];
    return h("table", { class: "wl-hist", "aria-label": `rollout history of ${what}` },
      h("thead", {}, h("tr", {}, ["Revision", "Image", "ReplicaSet", "Pods", ""].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", { "data-revision": r.revision, "data-image": r.image, "data-role": r.role },
        h("td", {}, r.revision, r.role === "new" ? " (current)" : ""),
        h("td", { class: "wl-image", title: r.cause ? `change-cause: ${r.cause}` : r.image }, r.image),
        h("td", { class: "wl-rsname" }, r.name),
        h("td", {}, r.current),
        h("td", {}, r.role === "new" ? "" : (() => {
          const b = button("Roll back", { "data-action": "rollback", "data-to": r.revision,
                                          "aria-label": `Roll back ${what} to revision ${r.revision}` });
          b.disabled = busy;
          b.addEventListener("click", () => act("rolling back", () => undoDeployment(ns, name, r.revision)));
          return b;
        })())))));
  }

  return {
    el,
    update(obj, model) {
      current = obj;
      badge.className = `badge ${obj.metadata.deletionTimestamp ? "bad" : model.badge}`;
      badge.textContent = obj.metadata.deletionTimestamp ? "deleting" : model.state;
      if (k.kind === "Deployment") {
        part(live, { ...model, history: undefined }, (m) => drawDeploymentLive(ns, m));
        part(history, model.history, drawHistory);
      } else {
        part(live, model, (m) => drawOtherLive(ns, name, m));
      }
      if (replicas && !dirty && document.activeElement !== replicas) {
        replicas.value = String((current.spec || {}).replicas ?? 1);
      }
    },
  };
}

// Puts nodes into parent in this order, moving only what is out of place (a focused button stays put).
function syncChildren(parent, nodes) {
  let cursor = parent.firstChild;
  for (const n of nodes) {
    if (n === cursor) { cursor = cursor.nextSibling; continue; }
    parent.insertBefore(n, cursor);
  }
  while (cursor) { const next = cursor.nextSibling; cursor.remove(); cursor = next; }
}

// ------------------------------------------------------------------------------ the view
export function workloads(container, args) {
  const [namespace] = args;
  const at = (apiVersion, plural) => path(apiVersion, plural, namespace || undefined);
  const note = h("p", { class: "status-line", role: "status" });
  const nsInput = h("input", { id: "wl-namespace", type: "text", value: namespace || "", placeholder: "all namespaces",
                               autocomplete: "off", spellcheck: "false", "data-action": "namespace" });
  const nsForm = h("form", { class: "wl-ns", "aria-label": "namespace" },
    h("label", { for: "wl-namespace" }, "Namespace"), nsInput, h("button", { type: "submit" }, "Show"));
  nsForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const ns = nsInput.value.trim();
    location.hash = ns ? `#/workloads/${encodeURIComponent(ns)}` : "#/workloads";
  });
  const sections = KINDS.map((k) => {
    const count = h("span", { class: "wl-count" });
    const empty = h("p", { class: "meta wl-empty" }, "Loading…");
    const cards = h("div", { class: "wl-cards" });
    const el = h("section", { class: "wl-kind", "data-kind-section": k.kind, "aria-labelledby": `wl-kind-${k.plural}` },
      h("h2", { id: `wl-kind-${k.plural}`, tabindex: "-1" }, k.title, " ", count), empty, cards);
    return { k, el, count, empty, cards, inf: null };
  });
  // Every kind is watched at once (the page's watches share one WebSocket: store.js, api.js); the
  // buttons above the sections jump to a kind's section and focus its heading.
  const jumps = sections.map((s) => {
    const b = h("button", { type: "button", class: "wl-tab", "data-jump": s.k.kind }, s.k.title);
    b.addEventListener("click", () => {
      s.el.scrollIntoView({ block: "start" });
      s.el.querySelector("h2").focus({ preventScroll: true });
    });
    return b;
  });
  replaceChildren(container, h("h1", {}, namespace ? `Workloads in ${namespace}` : "Workloads"), nsForm, note,
    h("div", { class: "wl-tabs", role: "group", "aria-label": "go to a kind of workload" }, h("span", {}, "Go to:"), jumps),
    h("div", { class: "wl-kinds" }, sections.map((s) => s.el)));

  const cards = new Map(); // ns/kind/name -> card
  let rsInf = null;
  let podInf = null;

  function draw() {
    const rss = rsInf ? rsInf.list() : [];
    const podsByOwner = new Map();
    for (const p of podInf ? podInf.list() : []) {
      const uid = controllerUid(p);
      if (uid) podsByOwner.set(uid, [...(podsByOwner.get(uid) || []), p]);
    }
    const podsOf = (owner) => (podsByOwner.get(owner.metadata.uid) || []).sort(byName);
    const seen = new Set();
    for (const s of sections) {
      if (!s.inf) continue;
      const objs = s.inf.list().sort((a, b) => (a.metadata.namespace + "/" + a.metadata.name).localeCompare(b.metadata.namespace + "/" + b.metadata.name));
      s.count.textContent = s.inf.status === "forbidden" ? "" : `(${objs.length})`;
      s.empty.textContent = s.inf.status === "forbidden" ? `Not allowed: ${s.inf.error.message}`
        : objs.length ? "" : `No ${s.k.title.toLowerCase()}${namespace ? ` in ${namespace}` : ""}.`;
      s.empty.hidden = !s.empty.textContent;
      s.empty.className = s.inf.status === "forbidden" ? "meta wl-empty error" : "meta wl-empty";
      const order = objs.map((o) => {
        const key = `${o.metadata.namespace}/${s.k.kind.toLowerCase()}/${o.metadata.name}`;
        seen.add(key);
        let card = cards.get(key);
        if (!card) {
          card = workloadCard(s.k, o.metadata.namespace, o.metadata.name);
          cards.set(key, card);
        }
        const model = s.k.kind === "Deployment"
          ? deploymentModel(o, rss, podsOf)
          : otherModel(s.k.kind, o, podsOf(o));
        card.update(o, model);
        return card.el;
      });
      const focused = s.cards.contains(document.activeElement) && !order.some((c) => c.contains(document.activeElement));
      syncChildren(s.cards, order);
      if (focused) s.el.querySelector("h2").focus(); // its card went (deleted): focus stays in the section
    }
    for (const key of [...cards.keys()]) if (!seen.has(key)) cards.delete(key);
    // Each kind's refusal is said in its section; what the cards need besides (ReplicaSets, pods) here.
    const refused = [rsInf, podInf].filter((i) => i && i.status === "forbidden").map((i) => i.error.message);
    if (!namespace && sections.some((s) => s.inf && s.inf.status === "forbidden")) {
      refused.push("Some kinds may not be listed in every namespace: choose a namespace you may read above.");
    }
    note.textContent = refused.join(" · ");
  }

  const stops = [
    ...sections.map((s) => subscribe(at(s.k.apiVersion, s.k.plural), (inf) => { s.inf = inf; draw(); })),
    subscribe(at("apps/v1", "replicasets"), (inf) => { rsInf = inf; draw(); }),
    subscribe(at("v1", "pods"), (inf) => { podInf = inf; draw(); }),
  ];
  return () => stops.forEach((s) => s());
}
