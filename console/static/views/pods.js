// Pods: every pod the user may list (all namespaces, or one: #/pods/<namespace>), as kubectl get pods.
import { age, h, podStatus, replaceChildren, restarts } from "../dom.js";
import { subscribe } from "../store.js";
import { yamlHref } from "./yaml.js";

export function pods(container, args) {
  const [namespace] = args;
  const table = h("tbody");
  const note = h("p", { class: "status-line", role: "status" });
  replaceChildren(container, h("h1", {}, namespace ? `Pods in ${namespace}` : "Pods"), note,
    h("table", { class: "list" },
      h("thead", {}, h("tr", {}, ["Namespace", "Name", "Ready", "Status", "Restarts", "Age", "Node", "YAML"].map((c) => h("th", { scope: "col" }, c)))),
      table));
  const url = namespace ? `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods` : "/api/v1/pods";
  const stop = subscribe(url, (inf) => {
    note.textContent = inf.status === "forbidden" ? inf.error.message : "";
    const rows = inf.list().sort((a, b) => (a.metadata.namespace + "/" + a.metadata.name).localeCompare(b.metadata.namespace + "/" + b.metadata.name));
    replaceChildren(table, rows.map((p) => {
      const cs = (p.status || {}).containerStatuses || [];
      const total = ((p.spec || {}).containers || []).length;
      return h("tr", { "data-pod": `${p.metadata.namespace}/${p.metadata.name}` },
        h("td", {}, p.metadata.namespace),
        h("td", {}, h("a", { href: `#/pod/${p.metadata.namespace}/${p.metadata.name}` }, p.metadata.name)),
        h("td", {}, `${cs.filter((c) => c.ready).length}/${total}`),
        h("td", {}, podStatus(p)),
        h("td", {}, restarts(p)),
        h("td", {}, age(p.metadata.creationTimestamp)),
        h("td", {}, (p.spec || {}).nodeName || ""),
        h("td", {}, h("a", { href: yamlHref("v1", "pods", p.metadata.namespace, p.metadata.name), "data-yaml": "",
                             "aria-label": `YAML of pod ${p.metadata.namespace}/${p.metadata.name}` }, "YAML")));
    }));
  });
  return stop;
}
