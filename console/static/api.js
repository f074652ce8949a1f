// The page's only way to the cluster: the Kubernetes API, relayed by the console as the logged-in user.
// Every failure becomes an ApiError carrying the API server's own Status message (a 403 says which
// verb, resource and user were refused), so a view shows what the API said, not a generic error.

export class ApiError extends Error {
  constructor(status, code, reason, message) {
    super(message || `${code} ${reason || ""}`.trim());
    this.status = status;
    this.code = code;
    this.reason = reason;
  }
}

async function failure(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  if (body && body.kind === "Status") {
    return new ApiError(body, body.code || response.status, body.reason, body.message);
  }
  return new ApiError(null, response.status, response.statusText, `${response.status} ${response.statusText}`);
}

export async function request(method, path, { body, contentType, query } = {}) {
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const headers = { Accept: "application/json" };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = contentType || "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401 && !path.startsWith("/console/")) {
    window.dispatchEvent(new CustomEvent("console:logged-out"));
  }
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

export const get = (path, query) => request("GET", path, { query });
export const del = (path, query) => request("DELETE", path, { query });
export const create = (path, body, query) => request("POST", path, { body, query });
export const replace = (path, body, query) => request("PUT", path, { body, query });
export const patch = (path, body, type = "merge", query) => request("PATCH", path, {
  body, query,
  contentType: {
    merge: "application/merge-patch+json",
    strategic: "application/strategic-merge-patch+json",
    json: "application/json-patch+json",
    apply: "application/apply-patch+yaml",
  }[type],
});

// Where a resource lives: ("v1", "pods", "default") -> /api/v1/namespaces/default/pods
export function path(apiVersion, plural, namespace, name, subresource) {
  let p = apiVersion === "v1" ? "/api/v1" : `/apis/${apiVersion}`;
  if (namespace) p += `/namespaces/${encodeURIComponent(namespace)}`;
  p += `/${plural}`;
  if (name) p += `/${encodeURIComponent(name)}`;
  if (subresource) p += `/${subresource}`;
  return p;
}

export function objectPath(obj, plural, subresource) {
  return path(obj.apiVersion, plural, obj.metadata.namespace, obj.metadata.name, subresource);
}

// A watch stream: one JSON event per line, handed to onEvent as it arrives. Resolves when the
// server ends the stream, rejects on a failure (the caller resumes or relists).
export async function watch(urlPath, query, onEvent, signal) {
  const response = await fetch(`${urlPath}?${new URLSearchParams({ ...query, watch: "1" })}`, {
    headers: { Accept: "application/json" }, credentials: "same-origin", signal,
  });
  if (response.status === 401) window.dispatchEvent(new CustomEvent("console:logged-out"));
  if (!response.ok) throw await failure(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
}
