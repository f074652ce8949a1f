// Workloads: Deployments (with their ReplicaSets), StatefulSets, DaemonSets and Jobs of every namespace
// the user may list (or of one: #/workloads/<namespace>), each with its pods. A Deployment's rollout is
// drawn as its ReplicaSets side by side (the new one's ready/desired against the old ones', a stacked bar
// and a row of pod blocks each) with its Progressing condition; its history is its ReplicaSets by
// deployment.kubernetes.io/revision, with their images.
//
// Data: live collections (Deployments, ReplicaSets, pods, and one of StatefulSets / DaemonSets / Jobs at
// a time, chosen by a tab: four watch streams, within the browser's 6 connections) -> ownership by the controller
// ownerReference's uid -> one card per workload. A card is kept across redraws (its inputs and buttons
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
import { del as apiDel, get as apiGet, patch as apiPatch, path } from "../api.js";
import { condition, h, podStatus, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";

const REVISION = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE = "kubernetes.io/change-cause";
const RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";
// Annotations that belong to the rollout machinery, not to the user (kubectl's annotationsToSkip).
const SKIP = new Set(["kubectl.kubernetes.io/last-applied-configuration", REVISION,
  "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
  "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to"]);

const KINDS = [
  { kind: "Deployment", apiVersion: "apps/v1", plural: "deployments", title: "Deployments", scale: true, restart: true, undo: true },
  { kind: "StatefulSet", apiVersion: "apps/v1", plural: "statefulsets", title: "StatefulSets", scale: true, restart: true, undo: true },
  { kind: "DaemonSet", apiVersion: "apps/v1", plural: "daemonsets", title: "DaemonSets", restart: true, undo: true },
  { kind: "Job", apiVersion: "batch/v1", plural: "jobs", title: "Jobs" },
];

// ------------------------------------------------------------------------------ pure helpers
function same(a, b) { // deep equality, key order ignored (Python's == on dicts)
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same(a[k], b[k]));
}

const controllerUid = (obj) => (((obj.metadata || {}).ownerReferences || []).find((o) => o.controller) || {}).uid;

function owned(owner, objs) {
  const uid = owner.metadata.uid;
  return objs.filter((o) => ((o.metadata || {}).ownerReferences || []).some((r) => r.controller && r.uid === uid));
}

function revisionOf(obj) {
  const n = parseInt(((obj.metadata || {}).annotations || {})[REVISION] || "0", 10);
  return Number.isFinite(n) ? n : 0;
}

function templateWithoutHash(rs) {
  const template = JSON.parse(JSON.stringify((rs.spec || {}).template || {}));
  const labels = (template.metadata || {}).labels;
  if (labels) delete labels["pod-template-hash"];
  return template;
}

const images = (template) => (((template || {}).spec || {}).containers || []).map((c) => c.image).join(", ");
const num = (v) => parseInt(v || 0, 10) || 0;
const byName = (a, b) => a.metadata.name.localeCompare(b.metadata.name);

// kubectl rollout status's wording (cli/mkctl/rollout.py status_message): [message, done, stalled].
function deploymentMessage(d) {
  const meta = d.metadata, spec = d.spec || {}, st = d.status || {};
  if (num(meta.generation) > num(st.observedGeneration)) return ["Waiting for deployment spec update to be observed...", false, false];
  const progressing = condition(d, "Progressing");
  if (progressing && progressing.reason === "ProgressDeadlineExceeded") {
    return [`deployment "${meta.name}" exceeded its progress deadline`, false, true];
  }
  const replicas = spec.replicas ?? 1;
  const updated = num(st.updatedReplicas), total = num(st.replicas), available = num(st.availableReplicas);
  if (updated < replicas) return [`Waiting for rollout to finish: ${updated} out of ${replicas} new replicas have been updated...`, false, false];
  if (total > updated) return [`Waiting for rollout to finish: ${total - updated} old replicas are pending termination...`, false, false];
  if (available < updated) return [`Waiting for rollout to finish: ${available} of ${updated} updated replicas are available...`, false, false];
  return ["successfully rolled out", true, false];
}

function statefulSetMessage(s) {
  const spec = s.spec || {}, st = s.status || {};
  const observed = num(st.observedGeneration);
  if (observed === 0 || num(s.metadata.generation) > observed) return ["Waiting for statefulset spec update to be observed...", false];
  const replicas = spec.replicas ?? 1;
  if (num(st.readyReplicas) < replicas) return [`Waiting for ${replicas - num(st.readyReplicas)} pods to be ready...`, false];
  if (st.updateRevision && st.currentRevision && st.updateRevision !== st.currentRevision) {
    return [`rolling update: ${num(st.updatedReplicas)} pods at revision ${st.updateRevision}...`, false];
  }
  return [`rolled out: ${num(st.currentReplicas || st.readyReplicas)} pods at revision ${st.currentRevision || "?"}`, true];
}

function daemonSetMessage(ds) {
  const st = ds.status || {};
  if (num(ds.metadata.generation) > num(st.observedGeneration)) return ["Waiting for daemon set spec update to be observed...", false];
  const desired = num(st.desiredNumberScheduled), updated = num(st.updatedNumberScheduled), available = num(st.numberAvailable);
  if (updated < desired) return [`Waiting for rollout to finish: ${updated} out of ${desired} new pods have been updated...`, false];
  if (available < desired) return [`Waiting for rollout to finish: ${available} of ${desired} updated pods are available...`, false];
  return ["successfully rolled out", true];
}

function blockClass(pod) {
  const s = podStatus(pod);
  if (s === "Running" && ((pod.status || {}).containerStatuses || []).every((c) => c.ready)) return "ok";
  if (s === "Running" || s === "Pending" || s === "ContainerCreating" || s === "PodInitializing") return "progress";
  if (s === "Succeeded" || s === "Completed") return "done";
  if (s === "Terminating") return "leaving";
  return "bad";
}

const podModel = (p) => ({ ns: p.metadata.namespace, name: p.metadata.name, status: podStatus(p), cls: blockClass(p) });

// The models: plain data, compared as JSON to decide whether a part is drawn again.
function deploymentModel(d, rss, podsOf) {
  const spec = d.spec || {}, st = d.status || {};
  const owners = owned(d, rss);
  // The new ReplicaSet: the one whose template is the Deployment's (the controller's own test); failing
  // that, once the controller has seen this generation, the one at the Deployment's revision.
  const newRs = owners.find((rs) => same(templateWithoutHash(rs), spec.template || {}))
    || (num(d.metadata.generation) <= num(st.observedGeneration) && revisionOf(d) > 0
      ? owners.find((rs) => revisionOf(rs) === revisionOf(d)) : undefined);
  const rows = owners.map((rs) => {
    const rst = rs.status || {};
    return {
      name: rs.metadata.name, role: rs === newRs ? "new" : "old", revision: revisionOf(rs),
      image: images((rs.spec || {}).template), desired: num((rs.spec || {}).replicas), current: num(rst.replicas),
      ready: num(rst.readyReplicas), available: num(rst.availableReplicas),
      cause: ((rs.metadata.annotations || {})[CHANGE_CAUSE]) || "",
      pods: podsOf(rs).map(podModel),
    };
  });
  const active = rows.filter((r) => r.role === "new" || r.desired > 0 || r.current > 0 || r.pods.length > 0)
    .sort((a, b) => (a.role === b.role ? b.revision - a.revision : a.role === "new" ? -1 : 1));
  const [message, done, stalled] = deploymentMessage(d);
  const progressing = condition(d, "Progressing");
  return {
    summary: `${num(st.readyReplicas)}/${spec.replicas ?? 1} ready · ${num(st.updatedReplicas)} up-to-date · ${num(st.availableReplicas)} available`,
    message, state: stalled ? "stalled" : done ? "rolled out" : "rolling out",
    badge: stalled ? "bad" : done ? "ok" : "warn",
    progressing: progressing ? `Progressing ${progressing.status}: ${progressing.reason || ""}${progressing.message ? ` (${progressing.message})` : ""}` : "Progressing: not reported yet",
    desired: spec.replicas ?? 1,
    rows: active,
    history: rows.filter((r) => r.revision > 0).sort((a, b) => b.revision - a.revision)
      .map(({ name, role, revision, image, cause, current }) => ({ name, role, revision, image, cause, current })),
  };
}

function otherModel(kind, obj, pods) {
  const spec = obj.spec || {}, st = obj.status || {};
  if (kind === "StatefulSet") {
    const [message, done] = statefulSetMessage(obj);
    return { summary: `${num(st.readyReplicas)}/${spec.replicas ?? 1} ready · ${num(st.updatedReplicas)} up-to-date`,
             message, state: done ? "rolled out" : "rolling out", badge: done ? "ok" : "warn",
             image: images(spec.template), pods: pods.map(podModel) };
  }
  if (kind === "DaemonSet") {
    const [message, done] = daemonSetMessage(obj);
    return { summary: `${num(st.numberReady)}/${num(st.desiredNumberScheduled)} ready · ${num(st.updatedNumberScheduled)} up-to-date · ${num(st.numberAvailable)} available`,
             message, state: done ? "rolled out" : "rolling out", badge: done ? "ok" : "warn",
             image: images(spec.template), pods: pods.map(podModel) };
  }
  const complete = condition(obj, "Complete"), failed = condition(obj, "Failed");
  const state = complete && complete.status === "True" ? "Complete" : failed && failed.status === "True" ? "Failed"
    : spec.suspend ? "Suspended" : "Running";
  return { summary: `${num(st.succeeded)}/${spec.completions ?? 1} succeeded · ${num(st.active)} active · ${num(st.failed)} failed`,
           message: failed && failed.status === "True" ? `${failed.reason || ""} ${failed.message || ""}`.trim() : "",
           state, badge: state === "Complete" ? "ok" : state === "Failed" ? "bad" : "warn",
           image: images(spec.template), pods: pods.map(podModel) };
}

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

// ------------------------------------------------------------------------------ actions
// A request the browser could not make at all (fetch's TypeError, e.g. Chromium's ERR_NETWORK_CHANGED
// when an interface comes or goes) is tried again, twice at most; an answer of the API server is not.
// Every action here may be repeated safely: scale to n, set an annotation, put a template back, delete.
async function retrying(call) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof TypeError) || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}
const get = (p) => retrying(() => apiGet(p));
const patch = (p, body, type) => retrying(() => apiPatch(p, body, type));
const del = (p, query) => retrying(() => apiDel(p, query));

function nowStamp() {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

// mkctl rollout undo of a Deployment (cli/mkctl/rollout.py undo_patch), to_revision 0 = the previous one.
async function undoDeployment(ns, name, toRevision = 0) {
  const deploy = await get(path("apps/v1", "deployments", ns, name));
  if ((deploy.spec || {}).paused) {
    throw new Error("you cannot rollback a paused deployment; resume it first and try again");
  }
  const listed = await get(path("apps/v1", "replicasets", ns));
  const byRev = new Map();
  for (const rs of owned(deploy, listed.items || [])) if (revisionOf(rs) > 0) byRev.set(revisionOf(rs), rs);
  if (!byRev.size) throw new Error(`no rollout history found for deployment "${name}"`);
  let to = toRevision;
  if (!to) {
    const revisions = [...byRev.keys()].sort((a, b) => a - b);
    if (revisions.length < 2) throw new Error("no rollout history found");
    to = revisions[revisions.length - 2];
  }
  const target = byRev.get(to);
  if (!target) throw new Error(`unable to find specified revision ${to} in history`);
  const template = templateWithoutHash(target);
  if (same(template, (deploy.spec || {}).template)) return `skipped rollback (current template already matches revision ${to})`;
  const annotations = {};
  for (const [k, v] of Object.entries(deploy.metadata.annotations || {})) if (SKIP.has(k)) annotations[k] = v;
  for (const [k, v] of Object.entries(target.metadata.annotations || {})) if (!SKIP.has(k)) annotations[k] = v;
  await patch(path("apps/v1", "deployments", ns, name), [
    { op: "replace", path: "/spec/template", value: template },
    { op: "add", path: "/metadata/annotations", value: annotations },
  ], "json");
  return `rolled back to revision ${to}`;
}

// mkctl rollout undo of a DaemonSet or StatefulSet (revision_undo_patch): the previous ControllerRevision.
async function undoByRevisions(k, ns, name) {
  const obj = await get(path(k.apiVersion, k.plural, ns, name));
  const listed = await get(path("apps/v1", "controllerrevisions", ns));
  const ordered = owned(obj, listed.items || []).sort((a, b) => num(a.revision) - num(b.revision));
  if (ordered.length <= 1) throw new Error("no last revision to roll back to");
  const target = ordered[ordered.length - 2];
  const template = JSON.parse(JSON.stringify((((target.data || {}).spec || {}).template) || {}));
  delete template.$patch;
  if (same(template, (obj.spec || {}).template)) {
    return `skipped rollback (current template already matches revision ${target.revision})`;
  }
  await patch(path(k.apiVersion, k.plural, ns, name), target.data || {}, "strategic");
  return `rolled back to revision ${target.revision}`;
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
  // Each watch holds one of the browser's 6 HTTP/1.1 connections to the console (store.js): Deployments,
  // ReplicaSets and pods are always watched, the other kinds one at a time (a tab each), 4 streams in all.
  const tabs = sections.slice(1).map((s) => {
    const b = h("button", { type: "button", class: "wl-tab", "data-tab": s.k.kind, "aria-pressed": "false" }, s.k.title);
    b.addEventListener("click", () => show(s));
    return b;
  });
  replaceChildren(container, h("h1", {}, namespace ? `Workloads in ${namespace}` : "Workloads"), nsForm, note,
    h("div", { class: "wl-kinds" }, sections[0].el,
      h("div", { class: "wl-tabs", role: "group", "aria-label": "other kinds of workload" }, h("span", {}, "Also:"), tabs),
      sections.slice(1).map((s) => s.el)));

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

  const watchKind = (s) => subscribe(at(s.k.apiVersion, s.k.plural), (inf) => { s.inf = inf; draw(); });
  let shown = null;
  let stopShown = null;
  function show(s) {
    if (shown === s) return;
    if (stopShown) stopShown();
    if (shown) { shown.inf = null; shown.el.hidden = true; replaceChildren(shown.cards); }
    shown = s;
    s.el.hidden = false;
    s.empty.hidden = false;
    s.empty.textContent = "Loading…";
    tabs.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tab === s.k.kind)));
    stopShown = watchKind(s);
    draw();
  }
  sections.slice(1).forEach((s) => { s.el.hidden = true; });
  const stops = [
    watchKind(sections[0]),
    subscribe(at("apps/v1", "replicasets"), (inf) => { rsInf = inf; draw(); }),
    subscribe(at("v1", "pods"), (inf) => { podInf = inf; draw(); }),
  ];
  show(sections[1]);
  return () => { stops.forEach((s) => s()); if (stopShown) stopShown(); };
}
