// The Git sync view's pure part: a GitSync's state and outcome, revisions, and each inventory
// object's health judged from its own live state as gitops/health.py judges it, and two small badges
// and times the view draws with (no API calls).
import { age, h } from "../dom.js";


export const GV = "gitops.minik8s.io/v1";
export const REQUESTED = "gitops.minik8s.io/requestedAt";
export const DRIFT_REASONS = ["DriftCorrected", "DriftDetected"];
// gitops/plan.py's apply order: what others depend on first (the tree lists the inventory so).
export const ORDER = ["Namespace", "CustomResourceDefinition", "PriorityClass", "StorageClass", "ServiceAccount",
  "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Secret", "ConfigMap", "PersistentVolume",
  "PersistentVolumeClaim", "LimitRange", "ResourceQuota", "Service", "Endpoints", "DaemonSet", "Pod",
  "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
  "CronJob", "Ingress", "IngressClass"];
export const POD_OWNERS = ["ReplicaSet", "StatefulSet", "DaemonSet", "Job", "ReplicationController"];
// The kinds whose health depends on their live state (gitops/health.py): watched, in this order of
// priority, with the pods of their namespace. Any other kind is healthy once it exists, which
// gitops itself watches (it re-creates a deleted object within a second): the page shows the
// health gitops recorded in status.inventory for those, and opens no watch for them.
export const LIVE = {
  Deployment: ["apps/v1", "deployments"], StatefulSet: ["apps/v1", "statefulsets"],
  DaemonSet: ["apps/v1", "daemonsets"], Job: ["batch/v1", "jobs"], ReplicaSet: ["apps/v1", "replicasets"],
  ReplicationController: ["v1", "replicationcontrollers"], Pod: ["v1", "pods"],
  CustomResourceDefinition: ["apiextensions.k8s.io/v1", "customresourcedefinitions"],
};
// The page's watches share one WebSocket (api.js), which the console caps at 100 streams: an
// inventory spread over many namespaces keeps to this many live collections, and the kinds and
// namespaces beyond it show the health gitops recorded.
export const WATCH_BUDGET = 24;


export function conditionOf(obj, type) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === type);
}

// The GitSync's state in one word, as a badge: Suspended wins, then the Ready condition.
export function syncState(obj) {
  if ((obj.spec || {}).suspend) return { text: "Suspended", cls: "warn" };
  const c = conditionOf(obj, "Ready");
  if (!c) return { text: "Unknown", cls: "muted" };
  if (c.status === "True") return { text: "Ready", cls: "ok" };
  if (c.status === "False") return { text: "Not ready", cls: "bad" };
  return { text: "Progressing", cls: "progress" };
}

export function refText(ref) {
  ref = ref || {};
  if (ref.tag) return `tag ${ref.tag}`;
  if (ref.commit) return `commit ${ref.commit}`;
  return `branch ${ref.branch || "main"}`;
}

// main@sha1:<40 hex> -> main@sha1:abc1234 (mkctl's short_revision).
export function shortRevision(rev) {
  if (!rev) return "";
  const i = rev.lastIndexOf(":");
  return i >= 0 ? `${rev.slice(0, i + 1)}${rev.slice(i + 1, i + 8)}` : rev.slice(0, 7);
}

// mkctl gitops sync's outcome of the run that handled a request: [ok, text].
export function syncOutcome(obj) {
  const st = obj.status || {};
  const source = conditionOf(obj, "SourceReady") || {};
  if (source.status !== "True") return [false, `fetch failed: ${source.message || source.reason || "unknown"}`];
  if (st.fetchedRevision && st.lastAppliedRevision === st.fetchedRevision) {
    return [true, `applied revision ${shortRevision(st.lastAppliedRevision)}`];
  }
  const applied = conditionOf(obj, "Applied") || {};
  if (applied.status === "False") return [false, `${applied.reason}: ${applied.message}`];
  return [false, `revision ${shortRevision(st.fetchedRevision) || "<none>"} is not applied yet`];
}

export function cond(obj, type) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === type);
}

export function observed(obj) {
  const generation = (obj.metadata || {}).generation;
  const seen = (obj.status || {}).observedGeneration;
  return generation === undefined || generation === null || (seen !== undefined && seen !== null && seen >= generation);
}

// gitops/health.py in the page: [state, message], state Healthy | Progressing | Failed.
export function health(obj, kind) {
  kind = kind || obj.kind || "";
  const spec = obj.spec || {};
  const st = obj.status || {};
  const n = (v) => Number(v || 0);
  if ((obj.metadata || {}).deletionTimestamp) return ["Progressing", "being deleted"];
  if (kind === "Deployment") {
    if (!observed(obj)) return ["Progressing", "the new generation is not observed yet"];
    const p = cond(obj, "Progressing");
    if (p && p.reason === "ProgressDeadlineExceeded") return ["Failed", p.message || "progress deadline exceeded"];
    const want = spec.replicas ?? 1;
    const updated = n(st.updatedReplicas);
    const available = n(st.availableReplicas);
    if (updated < want || available < want || n(st.replicas) > updated) {
      return ["Progressing", `${available} of ${want} replicas available, ${updated} updated`];
    }
    return ["Healthy", `${available} of ${want} replicas available`];
  }
  if (["ReplicaSet", "StatefulSet", "ReplicationController"].includes(kind)) {
    const want = spec.replicas ?? 1;
    const ready = n(st.readyReplicas);
    if (!observed(obj) || ready < want) return ["Progressing", `${ready} of ${want} replicas ready`];
    return ["Healthy", `${ready} of ${want} replicas ready`];
  }
  if (kind === "DaemonSet") {
    const want = n(st.desiredNumberScheduled);
    const available = n(st.numberAvailable);
    if (!observed(obj) || available < want || n(st.updatedNumberScheduled) < want) {
      return ["Progressing", `${available} of ${want} pods available`];
    }
    return ["Healthy", `${available} of ${want} pods available`];
  }
  if (kind === "Pod") {
    if (st.phase === "Succeeded") return ["Healthy", "succeeded"];
    if (st.phase === "Failed") return ["Failed", st.message || st.reason || "pod failed"];
    const ready = cond(obj, "Ready");
    if (st.phase === "Running" && ready && ready.status === "True") return ["Healthy", "running and ready"];
    return ["Progressing", `phase ${st.phase || "Pending"}`];
  }
  if (kind === "Job") {
    for (const [name, state] of [["Complete", "Healthy"], ["Failed", "Failed"]]) {
      const c = cond(obj, name);
      if (c && c.status === "True") return [state, c.message || name.toLowerCase()];
    }
    return ["Progressing", "running"];
  }
  if (kind === "CustomResourceDefinition") {
    const c = cond(obj, "Established");
    return c && c.status === "True" ? ["Healthy", "established"] : ["Progressing", "not established yet"];
  }
  return ["Healthy", "exists"];
}

export const HEALTH_CLASS = { Healthy: "ok", Progressing: "progress", Failed: "bad", Missing: "bad", Unknown: "muted" };
export const RESULT_CLASS = { Succeeded: "ok", DriftCorrected: "progress", Progressing: "progress" };

export function entryKey(e) {
  return `${e.kind}/${e.namespace || ""}/${e.name}`;
}

export function kindRank(kind) {
  const i = ORDER.indexOf(kind);
  return i < 0 ? ORDER.length : i;
}

export function when(ts) {
  if (!ts) return h("span", { class: "age" }, "—");
  return h("time", { class: "age", datetime: ts, title: ts }, `${age(ts)} ago`);
}

export function badge(text, cls, attrs = {}) {
  return h("span", { class: `badge gs-badge ${cls}`, ...attrs }, text);
}

export function eventTime(e) {
  return e.lastTimestamp || e.eventTime || e.firstTimestamp || (e.metadata || {}).creationTimestamp || "";
}

// "Deployment.apps ns/web put back to Git (spec.replicas)" -> ["Deployment.apps ns/web", "spec.replicas"]
export function driftParts(message) {
  const m = /^(.*) put back to Git \((.*)\)$/.exec(message || "");
  if (m) return [m[1], m[2]];
  const d = /^drift from Git \(self-heal is off\): (.*)$/.exec(message || "");
  if (d) return [d[1], "not corrected: self-heal is off"];
  return ["", message || ""];
}
