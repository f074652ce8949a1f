// A few lines instead of a framework: h() builds elements, age() and phase helpers format like kubectl.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// kubectl's AGE column: 45s, 3m, 2h, 4d.
export function age(timestamp) {
  if (!timestamp) return "<unknown>";
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(timestamp)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

export function condition(obj, type) {
  return ((obj.status || {}).conditions || []).find((c) => c.type === type);
}

// What kubectl get pods prints in STATUS, in short: a waiting or terminated reason wins over the phase.
export function podStatus(pod) {
  const st = pod.status || {};
  if (pod.metadata.deletionTimestamp) return "Terminating";
  for (const c of st.containerStatuses || []) {
    const s = c.state || {};
    if (s.waiting && s.waiting.reason) return s.waiting.reason;
    if (s.terminated && s.terminated.reason && st.phase !== "Succeeded") return s.terminated.reason;
  }
  return st.reason || st.phase || "Pending";
}

export function restarts(pod) {
  return ((pod.status || {}).containerStatuses || []).reduce((n, c) => n + (c.restartCount || 0), 0);
}

export function replaceChildren(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}
