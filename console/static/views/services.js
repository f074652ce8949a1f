// Services: every Service the user may list (all namespaces, or one: #/services/<namespace>) with
// its type, ClusterIP, ports and selector, the endpoints behind it and the Ingresses in front.
//
// Three live collections (store.js) of the same scope: services (v1), EndpointSlices
// (discovery.k8s.io/v1: a slice belongs to the Service named by its label
// kubernetes.io/service-name; each endpoint is ready or not, with the pod it points at) and
// Ingresses (networking.k8s.io/v1: rules host/path -> service:port, the load balancer's address).
// A collection the user may not list shows the API's 403 message in its place; the rest still draw.
import { h, replaceChildren } from "../dom.js";
import { subscribe } from "../store.js";
import { yamlHref } from "./yaml.js";

const SERVICE_NAME = "kubernetes.io/service-name";
const byName = (a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`);

function portText(p) {
  const target = p.targetPort !== undefined && String(p.targetPort) !== String(p.port) ? `→${p.targetPort}` : "";
  const node = p.nodePort ? ` (node ${p.nodePort})` : "";
  return `${p.name ? p.name + " " : ""}${p.port}/${p.protocol || "TCP"}${target}${node}`;
}

function selectorText(sel) {
  const pairs = Object.entries(sel || {});
  return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : "none (endpoints are managed by hand)";
}

function endpointRows(slices) {
  const rows = [];
  for (const s of slices) {
    const ports = (s.ports || []).map((p) => `${p.name ? p.name + " " : ""}${p.port}/${p.protocol || "TCP"}`).join(", ");
    for (const e of s.endpoints || []) {
      const ready = !e.conditions || e.conditions.ready !== false; // unset means ready, as kube-proxy reads it
      const terminating = e.conditions && e.conditions.terminating === true;
      const ref = e.targetRef || {};
      for (const address of e.addresses || []) {
        rows.push({ address, ready, terminating, ports, pod: ref.kind === "Pod" ? ref : null, node: e.nodeName || "",
                    namespace: s.metadata.namespace });
      }
    }
  }
  return rows.sort((a, b) => (b.ready - a.ready) || a.address.localeCompare(b.address, undefined, { numeric: true }));
}

function serviceCard(svc, slices) {
  const m = svc.metadata;
  const spec = svc.spec || {};
  const lb = (((svc.status || {}).loadBalancer || {}).ingress || []).map((i) => i.ip || i.hostname).filter(Boolean);
  const rows = endpointRows(slices);
  const ready = rows.filter((r) => r.ready).length;
  const headingId = `svc-${m.namespace}-${m.name}`;
  return h("section", { class: "card service", "data-service": `${m.namespace}/${m.name}`, "aria-labelledby": headingId },
    h("h2", { id: headingId }, m.name, " ", h("span", { class: "badge type" }, spec.type || "ClusterIP"),
      " ", h("a", { class: "small-link", href: yamlHref("v1", "services", m.namespace, m.name),
                    "aria-label": `YAML of service ${m.namespace}/${m.name}` }, "YAML")),
    h("dl", { class: "facts" },
      h("dt", {}, "Namespace"), h("dd", {}, m.namespace),
      h("dt", {}, "Cluster IP"), h("dd", { "data-cluster-ip": "" }, (spec.clusterIPs || [spec.clusterIP]).filter(Boolean).join(", ") || "None"),
      lb.length ? [h("dt", {}, "Load balancer"), h("dd", {}, lb.join(", "))] : null,
      spec.externalName ? [h("dt", {}, "External name"), h("dd", {}, spec.externalName)] : null,
      h("dt", {}, "Ports"), h("dd", { "data-ports": "" }, (spec.ports || []).map(portText).join(", ") || "none"),
      h("dt", {}, "Selector"), h("dd", { "data-selector": "" }, selectorText(spec.selector))),
    h("h3", {}, `Endpoints: ${ready} ready of ${rows.length}`),
    rows.length
      ? h("ul", { class: "endpoints", "aria-label": `endpoints of ${m.name}` }, rows.map((r) => h("li", {
        "data-endpoint": r.address, "data-ready": String(r.ready), class: "endpoint" },
        h("span", { class: `badge ${r.ready ? "ok" : "bad"}` }, r.ready ? "ready" : r.terminating ? "terminating" : "not ready"),
        " ", h("code", {}, r.address), r.ports ? ` ${r.ports}` : "",
        r.pod ? [" · pod ", h("a", { href: `#/pod/${r.pod.namespace || r.namespace}/${r.pod.name}`, "data-endpoint-pod": r.pod.name },
          r.pod.name)] : "",
        r.node ? ` · ${r.node}` : "")))
      : h("p", { class: "meta", "data-no-endpoints": "" },
        spec.type === "ExternalName" ? "An ExternalName service has no endpoints."
          : Object.keys(spec.selector || {}).length ? "No endpoints: no pod matches the selector."
            : "No endpoints: this service has no selector and no EndpointSlice names it."));
}

function backendText(b) {
  if (!b) return "";
  if (b.service) {
    const p = b.service.port || {};
    return `${b.service.name}:${p.number !== undefined ? p.number : p.name || "?"}`;
  }
  if (b.resource) return `${b.resource.kind}/${b.resource.name}`;
  return "?";
}

function ingressRows(ing) {
  const spec = ing.spec || {};
  const rows = [];
  for (const rule of spec.rules || []) {
    for (const p of ((rule.http || {}).paths || [])) {
      rows.push({ host: rule.host || "*", path: p.path || "/", pathType: p.pathType || "", backend: p.backend });
    }
  }
  if (spec.defaultBackend) rows.push({ host: "*", path: "(default)", pathType: "", backend: spec.defaultBackend });
  return rows;
}

function ingressTable(list) {
  return h("table", { class: "list ingresses" },
    h("caption", { class: "meta" }, "Rules: host and path → service:port; Address: the load balancer's"),
    h("thead", {}, h("tr", {}, ["Namespace", "Ingress", "Class", "Host", "Path", "Backend", "Address"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, list.flatMap((ing) => {
      const m = ing.metadata;
      const address = (((ing.status || {}).loadBalancer || {}).ingress || []).map((i) => i.ip || i.hostname).filter(Boolean).join(", ");
      const rows = ingressRows(ing);
      const cls = (ing.spec || {}).ingressClassName || "";
      const first = [h("td", {}, m.namespace),
        h("td", {}, h("a", { href: yamlHref("networking.k8s.io/v1", "ingresses", m.namespace, m.name),
                             "aria-label": `${m.name} (YAML)` }, m.name)),
        h("td", {}, cls)];
      if (!rows.length) rows.push({ host: "", path: "", pathType: "", backend: null });
      return rows.map((r, i) => h("tr", { "data-ingress": `${m.namespace}/${m.name}`, "data-rule": `${r.host}${r.path}` },
        i === 0 ? first : [h("td", {}), h("td", {}), h("td", {})],
        h("td", {}, r.host), h("td", {}, r.path, r.pathType ? h("span", { class: "meta" }, ` (${r.pathType})`) : ""),
        h("td", { "data-backend": "" }, backendText(r.backend)),
        h("td", { "data-address": "" }, i === 0 ? address || "none yet" : "")));
    })));
}

export function services(container, args) {
  const [namespace] = args;
  const base = namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  const servicesBox = h("div", { class: "cards", "data-list": "services" });
  const ingressBox = h("div", { "data-list": "ingresses" });
  // Why a collection shows nothing (the API's 403 message, a lost connection): one line each, in
  // one live region that keeps its height.
  const notes = {
    services: h("span", { "data-error": "services" }),
    endpointslices: h("span", { "data-error": "endpointslices" }),
    ingresses: h("span", { "data-error": "ingresses" }),
  };
  const noteBox = h("div", { class: "status-line notes", role: "status" }, Object.values(notes));
  const nsInput = h("input", { id: "svc-namespace", type: "text", value: namespace || "", autocomplete: "off",
                               spellcheck: "false", placeholder: "all namespaces" });
  const form = h("form", { class: "filters", "aria-label": "Choose the namespace" },
    h("label", { for: "svc-namespace" }, "Namespace"), nsInput, h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const ns = nsInput.value.trim();
    location.hash = ns ? `#/services/${encodeURIComponent(ns)}` : "#/services";
  });
  replaceChildren(container, h("h1", {}, namespace ? `Services in ${namespace}` : "Services"), form, noteBox,
    servicesBox, h("h2", { class: "section" }, "Ingresses"), ingressBox);

  const lists = { services: null, endpointslices: null, ingresses: null };
  function draw() {
    for (const [k, inf] of Object.entries(lists)) {
      notes[k].textContent = inf && (inf.status === "forbidden" || inf.status === "reconnecting") && inf.error
        ? inf.error.message : "";
    }
    const svcs = lists.services;
    if (svcs && svcs.status !== "forbidden") {
      const slices = new Map(); // namespace/service -> its EndpointSlices
      for (const s of lists.endpointslices ? lists.endpointslices.list() : []) {
        const owner = ((s.metadata.labels || {})[SERVICE_NAME]);
        if (!owner) continue;
        const key = `${s.metadata.namespace}/${owner}`;
        slices.set(key, [...(slices.get(key) || []), s]);
      }
      const list = svcs.list().sort(byName);
      replaceChildren(servicesBox, list.length
        ? list.map((svc) => serviceCard(svc, slices.get(`${svc.metadata.namespace}/${svc.metadata.name}`) || []))
        : h("p", { class: "meta" }, namespace ? `No services in ${namespace}.` : "No services."));
    } else if (svcs) {
      replaceChildren(servicesBox);
    }
    const ings = lists.ingresses;
    if (ings && ings.status !== "forbidden") {
      const list = ings.list().sort(byName);
      replaceChildren(ingressBox, list.length ? ingressTable(list) : h("p", { class: "meta" }, "No ingresses."));
    } else if (ings) {
      replaceChildren(ingressBox);
    }
  }
  const stops = [
    subscribe(`/api/v1${base}/services`, (inf) => { lists.services = inf; draw(); }),
    subscribe(`/apis/discovery.k8s.io/v1${base}/endpointslices`, (inf) => { lists.endpointslices = inf; draw(); }),
    subscribe(`/apis/networking.k8s.io/v1${base}/ingresses`, (inf) => { lists.ingresses = inf; draw(); }),
  ];
  return () => stops.forEach((s) => s());
}
