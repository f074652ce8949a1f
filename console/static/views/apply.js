// Apply: manifests pasted as text (several documents, as `kubectl apply --server-side -f` takes
// them) applied as the logged-in user, or dry-run first.
//
// The text -> documents (split at `---` lines; a List's items are documents too) -> each one's
// apiVersion, kind, metadata.name and .namespace (parseYaml, yamltext.js; all documents are read
// before anything is sent, so a YAML error applies nothing) -> its resource from discovery (GET
// /api/v1 or /apis/<group>/<version>, once per group version: the plural, namespaced or not; a
// namespaced object without a namespace goes to the namespace field's) -> GET (is it there, at which
// resourceVersion) -> PATCH .../<plural>/<name> with the document's own text as
// application/apply-patch+yaml (the API server reads the YAML; fieldManager=minik8s-console; force
// only when asked; ?dryRun=All for the dry run), in the order written -> one line per document:
// created, configured or unchanged, or the API server's own message (a conflict names the field
// managers that own the fields; a 403 the verb, resource and user), with a link to its YAML view.
import { ApiError, get, patch, path } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { parseYaml } from "../yamltext.js";
import { changedFields, yamlHref } from "./yaml.js";

const MANAGER = "minik8s-console";
const discovery = new Map(); // apiVersion -> Promise of its APIResourceList

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// The documents of a text: [{ index (from 1), line (where it starts), text, obj }], List items
// expanded; throws an Error naming the document and line of the first one that cannot be read.
export function documents(text) {
  const out = [];
  let start = 1;
  let chunk = [];
  const flush = () => {
    const body = `${chunk.join("\n")}\n`; // a block scalar at the end keeps its line break
    const line = start;
    chunk = [];
    if (!body.replace(/#.*$/gm, "").trim()) return;
    let obj;
    try {
      obj = parseYaml(body);
    } catch (e) {
      throw new Error(`document ${out.length + 1} (line ${line}): ${e.message}`);
    }
    if (!isMap(obj)) throw new Error(`document ${out.length + 1} (line ${line}): not an object`);
    if (/List$/.test(obj.kind || "") && Array.isArray(obj.items)) {
      for (const item of obj.items) out.push({ index: out.length + 1, line, text: JSON.stringify(item), obj: item });
    } else {
      out.push({ index: out.length + 1, line, text: body, obj });
    }
  };
  text.split("\n").forEach((l, i) => {
    if (/^---(\s|$)/.test(l) || /^\.\.\.\s*$/.test(l)) {
      flush();
      start = i + 2;
    } else {
      chunk.push(l);
    }
  });
  flush();
  return out;
}

async function resourceOf(apiVersion, kind) {
  if (!discovery.has(apiVersion)) {
    const p = get(apiVersion === "v1" ? "/api/v1" : `/apis/${apiVersion}`);
    discovery.set(apiVersion, p);
    p.catch(() => discovery.delete(apiVersion)); // tried again next time
  }
  let list;
  try {
    list = await discovery.get(apiVersion);
  } catch (e) {
    if (e instanceof ApiError && e.code === 404) throw new Error(`the server does not serve ${apiVersion}`);
    throw e;
  }
  const found = (list.resources || []).find((r) => r.kind === kind && !r.name.includes("/"));
  if (!found) throw new Error(`no matches for kind "${kind}" in version "${apiVersion}"`);
  return found;
}

export function apply(container) {
  const text = h("textarea", { id: "apply-text", class: "yaml-editor", spellcheck: "false", autocomplete: "off",
                               autocapitalize: "off", wrap: "off", "aria-describedby": "apply-help" });
  const nsInput = h("input", { id: "apply-namespace", type: "text", value: "default", autocomplete: "off",
                               spellcheck: "false" });
  const force = h("input", { id: "apply-force", type: "checkbox" });
  const dry = h("button", { type: "button", "data-action": "dry-run" }, "Dry run");
  const go = h("button", { type: "button", "data-action": "apply" }, "Apply");
  const summary = h("p", { id: "apply-summary", role: "status", "aria-live": "polite" });
  const results = h("ul", { id: "apply-results", class: "apply-results" });
  replaceChildren(container,
    h("h1", {}, "Apply YAML"),
    h("p", { id: "apply-help", class: "meta" },
      "Manifests as kubectl apply --server-side -f takes them: several documents separated by ---, or a List. "
      + "Each is applied with server-side apply as you (field manager minik8s-console), in the order written."),
    h("label", { for: "apply-text" }, "Manifests (YAML or JSON)"), text,
    h("div", { class: "apply-bar", role: "group", "aria-label": "Apply options" },
      h("label", { for: "apply-namespace" }, "Namespace for objects without one"), nsInput,
      h("label", { class: "apply-force" }, force, " Force conflicts (take the fields other managers own)"),
      dry, go),
    summary, results);

  let alive = true;
  let busy = false;

  function line(doc, outcome, message, href) {
    const o = doc.obj || {};
    const what = `${(o.kind || "?").toLowerCase()}${o.apiVersion && o.apiVersion.includes("/") ? `.${o.apiVersion.split("/")[0]}` : ""}`
      + `/${(o.metadata || {}).name || "?"}`;
    return h("li", { "data-doc": String(doc.index), "data-outcome": outcome, class: outcome === "error" ? "error" : "" },
      href ? h("a", { href }, what) : h("span", {}, what), ` ${message}`);
  }

  async function one(doc, dryRun) {
    const o = doc.obj;
    const meta = isMap(o.metadata) ? o.metadata : {};
    if (!o.apiVersion || !o.kind) throw new Error("apiVersion and kind are required");
    if (!meta.name) {
      throw new Error(meta.generateName ? "metadata.name is required: server-side apply cannot use generateName"
        : "metadata.name is required");
    }
    const res = await resourceOf(o.apiVersion, o.kind);
    const namespace = res.namespaced ? meta.namespace || nsInput.value.trim() || "default" : undefined;
    const url = path(o.apiVersion, res.name, namespace, meta.name);
    let before = null;
    try {
      before = await get(url);
    } catch (e) {
      if (!(e instanceof ApiError && e.code === 404)) throw e;
    }
    const query = { fieldManager: MANAGER, ...(force.checked ? { force: "true" } : {}), ...(dryRun ? { dryRun: "All" } : {}) };
    const after = await patch(url, doc.text, "apply", query);
    const verb = !before ? "created"
      : (dryRun ? changedFields(before, after).length : after.metadata.resourceVersion !== before.metadata.resourceVersion)
        ? "configured" : "unchanged";
    return [verb + (dryRun ? " (server dry run)" : ""), yamlHref(o.apiVersion, res.name, namespace, meta.name)];
  }

  async function run(dryRun) {
    if (busy) return;
    let docs;
    try {
      docs = documents(text.value);
    } catch (e) {
      summary.textContent = `Nothing was applied: ${e.message}`;
      summary.className = "error";
      replaceChildren(results);
      text.focus();
      return;
    }
    if (!docs.length) {
      summary.textContent = "There is nothing to apply: paste one or more manifests.";
      summary.className = "error";
      return;
    }
    busy = true;
    dry.disabled = go.disabled = true;
    summary.className = "";
    summary.textContent = dryRun ? "Dry run…" : "Applying…";
    replaceChildren(results);
    let failed = 0;
    for (const doc of docs) {
      let item;
      try {
        const [verb, href] = await one(doc, dryRun);
        item = line(doc, "ok", verb, dryRun ? null : href);
      } catch (e) {
        failed += 1;
        item = line(doc, "error", `(document ${doc.index}, line ${doc.line}): ${e.message}`);
      }
      if (!alive) return;
      results.append(item);
    }
    busy = false;
    dry.disabled = go.disabled = false;
    summary.className = failed ? "error" : "";
    summary.textContent = `${dryRun ? "Dry run" : "Applied"}: ${docs.length - failed} of ${docs.length} object(s)`
      + (failed ? `, ${failed} refused.` : dryRun ? "; nothing was changed." : ".");
  }

  dry.addEventListener("click", () => run(true));
  go.addEventListener("click", () => run(false));
  return () => { alive = false; };
}
