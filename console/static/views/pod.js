// One pod: #/pod/<namespace>/<name>. What kubectl describe, logs -f and exec give, in one view.
//
// The pod itself and its events are live collections (store.js: the namespace's pods, and its
// events filtered by involvedObject); header, status, conditions and containers redraw on every
// change, and each change goes on to the two panels this view mounts: the live logs
// (views/podlogs.js, a streamed GET .../log) and the exec terminal (views/podterminal.js, a
// WebSocket with the v4.channel.k8s.io protocol). Both choose a container with containerSelect()
// below. Unmounting stops the informers and both panels (the log stream aborted, the WebSocket
// closed).
import { del, path } from "../api.js";
import { age, h, podStatus, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";
import { logsPanel } from "./podlogs.js";
import { terminalPanel } from "./podterminal.js";

const DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container";

// A container status as one line, and the kind of state (running / waiting / terminated).
export function containerState(cs) {
  const st = (cs && cs.state) || {};
  if (st.running) return { key: "running", text: `Running (started ${age(st.running.startedAt)} ago)` };
  if (st.waiting) return { key: "waiting", reason: st.waiting.reason || "", text: `Waiting: ${st.waiting.reason || "?"}` };
  if (st.terminated) {
    const t = st.terminated;
    return { key: "terminated", reason: t.reason || "", text: `Terminated: ${t.reason || "?"} (exit code ${t.exitCode})` };
  }
  return { key: "unknown", text: "No status yet" };
}

function lastState(cs) {
  const t = ((cs && cs.lastState) || {}).terminated;
  return t ? `Terminated: ${t.reason || "?"} (exit code ${t.exitCode}) ${age(t.finishedAt)} ago` : "";
}

function ports(c) {
  return (c.ports || []).map((p) => `${p.name ? p.name + " " : ""}${p.containerPort}/${p.protocol || "TCP"}`
    + (p.hostPort ? ` (host ${p.hostPort})` : "")).join(", ");
}

function containerNames(pod) {
  const spec = pod.spec || {};
  return [...(spec.containers || []), ...(spec.initContainers || []), ...(spec.ephemeralContainers || [])]
    .map((c) => c.name);
}

function defaultContainer(pod) {
  const wanted = ((pod.metadata || {}).annotations || {})[DEFAULT_CONTAINER];
  const names = containerNames(pod);
  return names.includes(wanted) ? wanted : names[0] || "";
}

function statusOf(pod, name) {
  const st = pod.status || {};
  return [...(st.containerStatuses || []), ...(st.initContainerStatuses || []), ...(st.ephemeralContainerStatuses || [])]
    .find((c) => c.name === name);
}

// A labelled <select> of the pod's containers; keeps the chosen one while the list is redrawn.
function containerSelect(id, onChange) {
  const select = h("select", { id, onchange: onChange });
  return {
    select,
    label: h("label", { for: id }, "Container"),
    fill(pod) {
      const names = containerNames(pod);
      const now = [...select.options].map((o) => o.value);
      if (names.join("\n") === now.join("\n")) return false;
      const keep = names.includes(select.value) ? select.value : defaultContainer(pod);
      replaceChildren(select, names.map((n) => h("option", { value: n }, n)));
      select.value = keep;
      return true;
    },
  };
}

export function pod(container, args) {
  const [namespace, name] = args;
  if (!namespace || !name) {
    replaceChildren(container, h("h1", {}, "Pod"), h("p", { class: "error" }, "No pod named: the address is #/pod/<namespace>/<name>."));
    return () => {};
  }
  const podPath = path("v1", "pods", namespace, name);
  const stops = [];
  let current = null; // the pod as last seen
  let seen = false; // it existed once (so its absence means it was deleted)
  let mounted = true;

  // ---------------------------------------------------------------- header and delete
  const badge = h("span", { class: "badge", hidden: true });
  const headMeta = h("p", { class: "meta" });
  const note = h("p", { class: "status-line", role: "status" });
  const deleteButton = h("button", { type: "button", class: "danger", id: "pod-delete" }, "Delete pod");
  const confirmYes = h("button", { type: "button", class: "danger", id: "pod-delete-confirm" }, "Delete");
  const confirmNo = h("button", { type: "button", id: "pod-delete-cancel" }, "Cancel");
  const confirmBox = h("div", { class: "pod-confirm", role: "group", "aria-labelledby": "pod-confirm-text", hidden: true },
    h("span", { id: "pod-confirm-text" }, `Delete pod ${namespace}/${name}?`), confirmYes, confirmNo);
  function closeConfirm(focus = true) {
    confirmBox.hidden = true;
    deleteButton.hidden = false;
    if (focus) deleteButton.focus();
  }
  deleteButton.addEventListener("click", () => {
    deleteButton.hidden = true;
    confirmBox.hidden = false;
    confirmNo.focus();
  });
  confirmNo.addEventListener("click", () => closeConfirm());
  confirmBox.addEventListener("keydown", (ev) => { if (ev.key === "Escape") closeConfirm(); });
  confirmYes.addEventListener("click", async () => {
    confirmYes.disabled = true;
    try {
      await del(podPath);
      closeConfirm(false);
      deleteButton.disabled = true;
      note.textContent = "";
      headMeta.textContent = "Deletion requested: the pod's containers are being stopped.";
    } catch (e) {
      note.textContent = e.message;
      closeConfirm();
    } finally {
      confirmYes.disabled = false;
    }
  });

  // ---------------------------------------------------------------- status, containers, events
  const statusBody = h("div", { class: "pod-status-body" });
  const containersBody = h("tbody");
  const eventsBody = h("tbody");
  const eventsNote = h("p", { class: "meta" });

  function field(label, value) {
    return [h("dt", {}, label), h("dd", {}, value === undefined || value === null || value === "" ? "—" : value)];
  }

  function drawStatus(p) {
    const st = p.status || {};
    const spec = p.spec || {};
    const ips = (st.podIPs || []).map((x) => x.ip).join(", ") || st.podIP;
    const owner = ((p.metadata.ownerReferences || []).find((o) => o.controller) || {});
    replaceChildren(statusBody,
      h("dl", { class: "pod-fields" },
        field("Phase", h("span", { "data-phase": st.phase || "" }, st.phase || "Pending")),
        st.reason || st.message ? field("Reason", [st.reason || "", st.message ? ` ${st.message}` : ""]) : null,
        field("Pod IPs", ips),
        field("Host IP", st.hostIP),
        field("Node", spec.nodeName ? h("a", { href: "#/nodes" }, spec.nodeName) : "not scheduled yet"),
        field("QoS class", st.qosClass),
        field("Started", st.startTime ? `${age(st.startTime)} ago` : ""),
        field("Controlled by", owner.kind ? `${owner.kind}/${owner.name}` : "")),
      h("table", { class: "list pod-conditions", "aria-label": "Conditions" },
        h("thead", {}, h("tr", {}, ["Condition", "Status", "Reason", "Since"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, (st.conditions || []).map((c) => h("tr", { "data-condition": c.type },
          h("td", {}, c.type), h("td", {}, c.status), h("td", {}, c.reason || ""),
          h("td", { class: "age" }, c.lastTransitionTime ? age(c.lastTransitionTime) : ""))))));
  }

  function drawContainers(p) {
    const spec = p.spec || {};
    const rows = [
      ...(spec.initContainers || []).map((c) => [c, "init"]),
      ...(spec.containers || []).map((c) => [c, ""]),
      ...(spec.ephemeralContainers || []).map((c) => [c, "ephemeral"]),
    ];
    replaceChildren(containersBody, rows.map(([c, kind]) => {
      const cs = statusOf(p, c.name);
      const state = containerState(cs);
      const restartCount = cs ? cs.restartCount || 0 : 0;
      return h("tr", { "data-container": c.name, "data-state": state.key, "data-reason": state.reason || "",
                       "data-restarts": String(restartCount), "data-ready": String(!!(cs && cs.ready)) },
        h("th", { scope: "row" }, c.name, kind ? h("span", { class: "badge warn" }, kind) : null),
        h("td", { class: "pod-image" }, c.image || ""),
        h("td", { class: "pod-state" }, state.text, cs && cs.lastState && cs.lastState.terminated
          ? h("div", { class: "meta" }, "last: ", lastState(cs)) : null),
        h("td", { class: "pod-ready" }, cs && cs.ready ? "yes" : "no"),
        h("td", { class: "pod-restarts" }, String(restartCount)),
        h("td", {}, ports(c)));
    }));
  }

  function drawHeader(p) {
    const s = podStatus(p);
    badge.textContent = s;
    badge.className = `badge ${s === "Running" ? "ok" : s === "Pending" || s === "Succeeded" || s === "Completed"
      || s === "ContainerCreating" ? "warn" : "bad"}`;
    badge.hidden = false;
    if (!p.metadata.deletionTimestamp) {
      headMeta.textContent = `Namespace ${namespace} · created ${age(p.metadata.creationTimestamp)} ago`;
    } else {
      headMeta.textContent = "Terminating: the pod's containers are being stopped.";
      deleteButton.disabled = true;
    }
  }

  function drawGone() {
    badge.hidden = true;
    headMeta.textContent = seen ? "This pod was deleted." : `There is no pod ${name} in namespace ${namespace}.`;
    deleteButton.disabled = true;
    replaceChildren(statusBody, h("p", {}, h("a", { href: `#/pods/${namespace}` }, `Pods in ${namespace}`)));
    replaceChildren(containersBody);
  }

  let events = null;
  function drawEvents() {
    if (!events) return;
    if (events.status === "forbidden") {
      eventsNote.textContent = events.error.message;
      return;
    }
    const uid = current && current.metadata.uid;
    const when = (e) => e.lastTimestamp || e.eventTime || (e.metadata || {}).creationTimestamp || "";
    const mine = events.list().filter((e) => {
      const o = e.involvedObject || e.regarding || {};
      return o.kind === "Pod" && o.name === name && (!uid || !o.uid || o.uid === uid);
    }).sort((a, b) => when(b).localeCompare(when(a)));
    eventsNote.textContent = mine.length ? "" : "No events.";
    replaceChildren(eventsBody, mine.map((e) => h("tr", { "data-event-reason": e.reason || "" },
      h("td", {}, e.type === "Warning" ? h("span", { class: "badge bad" }, "Warning") : e.type || ""),
      h("td", {}, e.reason || ""),
      h("td", { class: "age" }, when(e) ? age(when(e)) : ""),
      h("td", {}, String((e.series && e.series.count) || e.count || 1)),
      h("td", {}, (e.source && e.source.component) || e.reportingComponent || ""),
      h("td", {}, e.message || e.note || ""))));
  }

  // ---------------------------------------------------------------- logs and terminal
  const containers = { select: containerSelect, status: (c) => statusOf(current || {}, c) };
  const logs = logsPanel(podPath, containers);
  const terminal = terminalPanel(podPath, containers);

  // ---------------------------------------------------------------- layout
  replaceChildren(container,
    h("p", { class: "meta" }, h("a", { href: `#/pods/${namespace}` }, `← Pods in ${namespace}`)),
    h("div", { class: "pod-head" },
      h("h1", {}, `Pod ${name} `, badge),
      h("div", { class: "pod-actions" },
        h("a", { href: `#/yaml/v1/pods/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}` }, "YAML"),
        deleteButton, confirmBox)),
    headMeta, note,
    h("div", { class: "cards pod-grid" },
      h("section", { class: "card", "aria-labelledby": "pod-status-title" },
        h("h2", { id: "pod-status-title" }, "Status"), statusBody),
      h("section", { class: "card pod-containers", "aria-labelledby": "pod-containers-title" },
        h("h2", { id: "pod-containers-title" }, "Containers"),
        h("table", { class: "list" },
          h("thead", {}, h("tr", {}, ["Name", "Image", "State", "Ready", "Restarts", "Ports"]
            .map((c) => h("th", { scope: "col" }, c)))),
          containersBody)),
      logs.section,
      terminal.section,
      h("section", { class: "card wide", "aria-labelledby": "pod-events-title" },
        h("h2", { id: "pod-events-title" }, "Events"),
        h("div", { class: "pod-events" },
          h("table", { class: "list" },
            h("thead", {}, h("tr", {}, ["Type", "Reason", "Age", "Count", "From", "Message"]
              .map((c) => h("th", { scope: "col" }, c)))),
            eventsBody)),
        eventsNote)));

  stops.push(subscribe(path("v1", "pods", namespace), (inf) => {
    if (!mounted) return;
    if (inf.status === "forbidden") {
      note.textContent = inf.error.message;
      return;
    }
    const p = inf.items.get(`${namespace}/${name}`);
    if (!p) {
      if (inf.status === "live") drawGone();
      current = null;
      return;
    }
    const first = !current && !seen;
    current = p;
    seen = true;
    drawHeader(p);
    drawStatus(p);
    drawContainers(p);
    logs.update(p, first);
    terminal.update(p);
    drawEvents();
  }));
  stops.push(subscribe(path("v1", "events", namespace), (inf) => { events = inf; drawEvents(); }));

  return () => {
    mounted = false;
    stops.forEach((s) => s());
    logs.stop();
    terminal.stop();
  };
}
