// The console's page: login, the navigation and the hash router; each view lives in views/*.js.
//
// #/login (or any route without a session) -> the login form -> POST /console/login -> the route.
// A route change stops the previous view (its unsubscribe functions) and mounts the next one into
// <main>; views subscribe to live collections (store.js) and redraw on every change.
import { ApiError, request } from "./api.js";
import { h, replaceChildren } from "./dom.js";
import { onConnection, stopAll } from "./store.js";

// Route name -> the module in views/ that draws it (its export of the same name). A view is
// loaded on first use: view(container, args, ctx) mounts it and returns its unmount function.
const routes = {
  overview: "overview", nodes: "nodes", workloads: "workloads", pods: "pods", pod: "pod",
  services: "services", gitsyncs: "gitsyncs", events: "events", yaml: "yaml", apply: "apply",
};
const main = document.getElementById("main");
let user = null;
let unmount = null;

function loginForm(message) {
  const error = h("p", { class: "error", role: "alert" }, message || "");
  const token = h("textarea", { id: "login-token", rows: "3", autocomplete: "off", spellcheck: "false" });
  const file = h("input", { id: "login-kubeconfig", type: "file" });
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to minik8s"),
    h("p", {}, "The console acts with your own credential: the API server's RBAC decides what you see and may do."),
    h("label", { for: "login-token" }, "Bearer token"), token,
    h("label", { for: "login-kubeconfig" }, "or a kubeconfig file (its token or its embedded client certificate)"),
    file,
    h("button", { type: "submit" }, "Log in"), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = token.value.trim() ? { token: token.value.trim() }
      : file.files[0] ? { kubeconfig: await file.files[0].text() } : {};
    try {
      user = await request("POST", "/console/login", { body });
      token.value = "";
      start();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  return form;
}

function showLogin(message) {
  if (unmount) unmount();
  unmount = null;
  stopAll();
  user = null;
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  replaceChildren(main, loginForm(message));
  document.getElementById("login-token").focus();
}

let routing = 0;
async function route() {
  if (!user) return;
  const [asked, ...args] = (location.hash.replace(/^#\/?/, "") || "overview").split("/").map(decodeURIComponent);
  const name = routes[asked] ? asked : "overview";
  const ticket = ++routing;
  const view = (await import(`./views/${routes[name]}.js`))[name];
  if (ticket !== routing || !user) return; // another route (or a logout) came first
  if (unmount) unmount();
  unmount = null;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const container = h("div", { class: "view", "data-view": name });
  replaceChildren(main, container);
  unmount = view(container, args, { user });
}

function start() {
  ownLogout = false;
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = user.username;
  route();
}

window.addEventListener("hashchange", route);
// This page's own logout also closes its watch socket with 4401, which may arrive before or after
// the logout's answer: that end of the session is not news to this page.
let ownLogout = false;
window.addEventListener("console:logged-out", () => {
  if (!ownLogout) showLogin("Your session ended: log in again.");
});
document.getElementById("logout").addEventListener("click", async () => {
  ownLogout = true;
  await request("POST", "/console/logout").catch(() => {});
  showLogin();
});
onConnection((up) => {
  const el = document.getElementById("connection");
  el.textContent = up ? "" : "Reconnecting to the API server…";
  el.className = up ? "" : "warning";
});

request("GET", "/console/session").then((who) => { user = who; start(); }).catch((e) => {
  showLogin(e instanceof ApiError && e.code === 401 ? "" : e.message);
});
