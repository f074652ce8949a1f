// The workloads view's API calls: undo as mkctl rollout undo does it, and the retry of a request the
// browser could not send (each call here may be repeated safely).
import { del as apiDel, get as apiGet, patch as apiPatch, path } from "../api.js";
import { SKIP, same, owned, revisionOf, templateWithoutHash, num } from "./workloadmodel.js";

// A request the browser could not make at all (fetch's TypeError, e.g. Chromium's ERR_NETWORK_CHANGED
// when an interface comes or goes) is tried again, twice at most; an answer of the API server is not.
// Every action here may be repeated safely: scale to n, set an annotation, put a template back, delete.
export async function retrying(call) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof TypeError) || attempt >= 3) throw e;
      await new Promise((r) => setTimeout(r, 300 * attempt));
    }
  }
}
export const get = (p) => retrying(() => apiGet(p));
export const patch = (p, body, type) => retrying(() => apiPatch(p, body, type));
export const del = (p, query) => retrying(() => apiDel(p, query));

export function nowStamp() {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

// mkctl rollout undo of a Deployment (cli/mkctl/rollout.py undo_patch), to_revision 0 = the previous one.
export async function undoDeployment(ns, name, toRevision = 0) {
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
export async function undoByRevisions(k, ns, name) {
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
