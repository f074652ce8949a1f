// YAML: one object as YAML, editable, with a server-side dry run, an apply and a delete.
//
// Route: #/yaml/<apiVersion, its "/" written "~">/<plural>/<namespace, or "-" for a cluster-scoped
// object>/<name>, e.g. #/yaml/v1/pods/default/web-1, #/yaml/apps~v1/deployments/shop/web,
// #/yaml/v1/nodes/-/sim-1 (yamlHref() writes them).
//
// GET the object -> toYaml (yamltext.js; metadata.managedFields left out, as kubectl get -o yaml
// does: the API server keeps them when an update has none) -> the editor. "Dry run" and "Apply"
// read the editor (parseYaml: YAML as toYaml writes it plus ordinary hand edits, or JSON) and PUT
// the whole object (?dryRun=All for the dry run; fieldManager=minik8s-console): the API server
// validates, admits and, for Apply, stores it; its resourceVersion in the text makes a write over
// someone else's newer change a 409 (Reload, then edit again). The dry run says which fields the
// server would change; Apply shows the stored object. "Delete…" asks first, then DELETEs. Every
// failure shows the API server's own Status message (a 403 names the verb, resource and user).
import { ApiError, del, get, path, replace } from "../api.js";
import { h, replaceChildren } from "../dom.js";
import { parseYaml, toYaml } from "../yamltext.js";

const MANAGER = "minik8s-console";

export function yamlHref(apiVersion, plural, namespace, name) {
  return "#/yaml/" + [apiVersion.replace("/", "~"), plural, namespace || "-", name].map(encodeURIComponent).join("/");
}

const isMap = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

// The fields (dotted paths) that differ between two objects, at most `limit` of them.
export function changedFields(before, after, limit = 12) {
  const out = [];
  (function walk(a, b, at) {
    if (out.length > limit || JSON.stringify(a) === JSON.stringify(b)) return;
    if (at === "metadata.resourceVersion" || at === "metadata.managedFields") return;
    if (isMap(a) && isMap(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) walk(a[k], b[k], at ? `${at}.${k}` : k);
    } else {
      out.push(at || "the whole object");
    }
  })(before, after, "");
  return out;
}

// The object as kubectl prints it: apiVersion, kind, metadata first, status last, no managedFields.
function shown(obj) {
  const copy = JSON.parse(JSON.stringify(obj));
  if (copy.metadata) delete copy.metadata.managedFields;
  const { apiVersion, kind, metadata, status, ...rest } = copy;
  const ordered = { apiVersion, kind, metadata, ...rest, status };
  for (const k of Object.keys(ordered)) if (ordered[k] === undefined) delete ordered[k];
  return ordered;
}

export function yaml(container, args) {
  const [version = "", plural = "", ns = "-", name = ""] = args;
  const apiVersion = version.replace("~", "/");
  const namespace = ns === "-" ? "" : ns;
  const url = apiVersion && plural && name ? path(apiVersion, plural, namespace, name) : null;
  const what = `${plural}/${namespace ? namespace + "/" : ""}${name}`;
  let live = null; // the object as the server last gave it

  const title = h("h1", {}, `YAML of ${what}`);
  const meta = h("p", { class: "meta" }, url ? `${apiVersion} · ${url}` : "");
  const editor = h("textarea", { id: "yaml-text", class: "yaml-editor", "data-yaml-editor": "", spellcheck: "false",
                                 autocomplete: "off", autocapitalize: "off", wrap: "off", disabled: true,
                                 "aria-describedby": "yaml-help yaml-result" });
  const result = h("p", { id: "yaml-result", class: "yaml-result", role: "status", "aria-live": "polite",
                          "data-yaml-result": "", "data-outcome": "" });
  const dry = h("button", { type: "button", "data-action": "dry-run", disabled: true }, "Dry run");
  const apply = h("button", { type: "button", "data-action": "apply", disabled: true }, "Apply");
  const reload = h("button", { type: "button", "data-action": "reload" }, "Reload");
  const remove = h("button", { type: "button", class: "danger", "data-action": "delete", disabled: true }, "Delete…");
  const confirmYes = h("button", { type: "button", class: "danger", "data-action": "confirm-delete" }, "Yes, delete");
  const confirmNo = h("button", { type: "button", "data-action": "cancel-delete" }, "Cancel");
  const confirmText = h("span", { id: "yaml-confirm-text" });
  const confirm = h("span", { class: "yaml-confirm", role: "group", "aria-labelledby": "yaml-confirm-text", hidden: true },
    confirmText, confirmYes, confirmNo);
  const actions = h("span", { class: "yaml-actions" }, dry, apply, reload, remove);
  replaceChildren(container, title, meta,
    h("div", { class: "yaml-bar", role: "toolbar", "aria-label": "Actions on this object" }, actions, confirm),
    h("label", { for: "yaml-text" }, "The object as YAML (edit it, then Dry run or Apply)"),
    h("p", { id: "yaml-help", class: "meta" },
      "YAML or JSON. Apply replaces the whole object (PUT); status is the object's controllers' and is not changed here."),
    editor, result);

  let alive = true;
  function say(text, outcome) {
    if (!alive) return;
    result.textContent = text;
    result.dataset.outcome = outcome;
    result.className = `yaml-result ${outcome === "error" ? "error" : outcome === "ok" ? "ok" : ""}`;
  }
  function show(obj) {
    live = obj;
    editor.value = toYaml(shown(obj));
    title.textContent = `${obj.kind || plural} ${namespace ? namespace + "/" : ""}${name}`;
    editor.disabled = false;
    for (const b of [dry, apply, remove]) b.disabled = false;
  }
  function parsed() {
    const obj = parseYaml(editor.value);
    if (!isMap(obj)) throw new Error("the text must be one object (a mapping), not a list or a scalar");
    return obj;
  }
  async function load() {
    if (!url) { say("This address names no object: #/yaml/<apiVersion>/<plural>/<namespace or ->/<name>.", "error"); return; }
    say("Loading…", "busy");
    try {
      const obj = await get(url);
      if (!alive) return;
      show(obj);
      say(`Loaded at resourceVersion ${obj.metadata.resourceVersion}.`, "");
    } catch (e) {
      say(e.message, "error");
    }
  }
  async function put(dryRun) {
    let body;
    try {
      body = parsed();
    } catch (e) {
      say(e.message, "error");
      editor.focus();
      return;
    }
    say(dryRun ? "Dry run…" : "Applying…", "busy");
    const query = dryRun ? { dryRun: "All", fieldManager: MANAGER } : { fieldManager: MANAGER };
    try {
      const answer = await replace(url, body, query);
      if (!alive) return;
      if (dryRun) {
        const fields = changedFields(shown(live), shown(answer));
        say("Dry run: the API server accepts this; nothing was changed. " + (fields.length
          ? `It would change ${fields.slice(0, 12).join(", ")}${fields.length > 12 ? " and more" : ""}.`
          : "It would change nothing."), "ok");
      } else {
        show(answer);
        say(`Applied: ${answer.kind || plural} ${name} is now at resourceVersion ${answer.metadata.resourceVersion}.`, "ok");
      }
    } catch (e) {
      say(e instanceof ApiError ? e.message : String(e.message || e), "error");
    }
  }
  function askDelete(on) {
    confirm.hidden = !on;
    actions.hidden = on;
    if (on) {
      confirmText.textContent = `Delete ${(live && live.kind) || plural} ${namespace ? namespace + "/" : ""}${name}?`;
      confirmNo.focus();
    } else {
      remove.focus();
    }
  }

  dry.addEventListener("click", () => put(true));
  apply.addEventListener("click", () => put(false));
  reload.addEventListener("click", load);
  remove.addEventListener("click", () => askDelete(true));
  confirmNo.addEventListener("click", () => askDelete(false));
  confirm.addEventListener("keydown", (ev) => { if (ev.key === "Escape") askDelete(false); });
  confirmYes.addEventListener("click", async () => {
    askDelete(false);
    say("Deleting…", "busy");
    try {
      await del(url);
      say(`Deletion requested: ${(live && live.kind) || plural} ${name} is being deleted.`, "ok");
    } catch (e) {
      say(e.message, "error");
    }
  });
  load();
  return () => { alive = false; };
}
