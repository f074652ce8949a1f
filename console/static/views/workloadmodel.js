// The workloads view's pure part: which ReplicaSet is new, revisions, kubectl's rollout-status
// wording, and the plain data models that views/workloads.js draws (no DOM, no API calls).
import { condition, podStatus } from "../dom.js";

export const REVISION = "deployment.kubernetes.io/revision";
export const CHANGE_CAUSE = "kubernetes.io/change-cause";
export const RESTARTED_AT = "kubectl.kubernetes.io/restartedAt";
// Annotations that belong to the rollout machinery, not to the user (kubectl's annotationsToSkip).
export const SKIP = new Set(["kubectl.kubernetes.io/last-applied-configuration", REVISION,
  "deployment.kubernetes.io/revision-history", "deployment.kubernetes.io/desired-replicas",
  "deployment.kubernetes.io/max-replicas", "deprecated.deployment.rollback.to"]);

export const KINDS = [
  { kind: "Deployment", apiVersion: "apps/v1", plural: "deployments", title: "Deployments", scale: true, restart: true, undo: true },
  { kind: "StatefulSet", apiVersion: "apps/v1", plural: "statefulsets", title: "StatefulSets", scale: true, restart: true, undo: true },
  { kind: "DaemonSet", apiVersion: "apps/v1", plural: "daemonsets", title: "DaemonSets", restart: true, undo: true },
  { kind: "Job", apiVersion: "batch/v1", plural: "jobs", title: "Jobs" },
];

// ------------------------------------------------------------------------------ pure helpers
export function same(a, b) { // deep equality, key order ignored (Python's == on dicts)
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same(a[k], b[k]));
}

export const controllerUid = (obj) => (((obj.metadata || {}).ownerReferences || []).find((o) => o.controller) || {}).uid;

export function owned(owner, objs) {
  const uid = owner.metadata.uid;
  return objs.filter((o) => ((o.metadata || {}).ownerReferences || []).some((r) => r.controller && r.uid === uid));
}

export function revisionOf(obj) {
  const n = parseInt(((obj.metadata || {}).annotations || {})[REVISION] || "0", 10);
  return Number.isFinite(n) ? n : 0;
}

export function templateWithoutHash(rs) {
  const template = JSON.parse(JSON.stringify((rs.spec || {}).template || {}));
  const labels = (template.metadata || {}).labels;
  if (labels) delete labels["pod-template-hash"];
  return template;
}

export const images = (template) => (((template || {}).spec || {}).containers || []).map((c) => c.image).join(", ");
export const num = (v) => parseInt(v || 0, 10) || 0;
export const byName = (a, b) => a.metadata.name.localeCompare(b.metadata.name);

// kubectl rollout status's wording (cli/mkctl/rollout.py status_message): [message, done, stalled].
export function deploymentMessage(d) {
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

export function statefulSetMessage(s) {
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

export function daemonSetMessage(ds) {
  const st = ds.status || {};
  if (num(ds.metadata.generation) > num(st.observedGeneration)) return ["Waiting for daemon set spec update to be observed...", false];
  const desired = num(st.desiredNumberScheduled), updated = num(st.updatedNumberScheduled), available = num(st.numberAvailable);
  if (updated < desired) return [`Waiting for rollout to finish: ${updated} out of ${desired} new pods have been updated...`, false];
  if (available < desired) return [`Waiting for rollout to finish: ${available} of ${desired} updated pods are available...`, false];
  return ["successfully rolled out", true];
}

export function blockClass(pod) {
  const s = podStatus(pod);
  if (s === "Running" && ((pod.status || {}).containerStatuses || []).every((c) => c.ready)) return "ok";
  if (s === "Running" || s === "Pending" || s === "ContainerCreating" || s === "PodInitializing") return "progress";
  if (s === "Succeeded" || s === "Completed") return "done";
  if (s === "Terminating") return "leaving";
  return "bad";
}

export const podModel = (p) => ({ ns: p.metadata.namespace, name: p.metadata.name, status: podStatus(p), cls: blockClass(p) });

// The models: plain data, compared as JSON to decide whether a part is drawn again.
export function deploymentModel(d, rss, podsOf) {
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

export function otherModel(kind, obj, pods) {
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
