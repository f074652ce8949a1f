"""Steps the console's browser tests take again and again, written once: on the cluster's side a
namespace of one's own and a user allowed some verbs in it (a Role and a RoleBinding, as an admin
client makes them), and the API's own 403 message for a request (what the page must show word for
word); on the page's side a route (the hash the router reads) and waiting until an element shows a
text. The cluster and the browser themselves are conftest.py's fixtures."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def namespace(admin: httpx.Client, prefix: str) -> str:
    """A new namespace ``<prefix>-<6 hex digits>``; returns its name."""
    ns = f"{prefix}-{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    return ns


def grant(admin: httpx.Client, ns: str, user: str, role: str, rules: list[dict[str, Any]]) -> None:
    """Role ``role`` in ``ns`` with ``rules``, bound to ``user`` by RoleBinding ``<user>-reads``."""
    r = admin.post(f"{RBAC}/namespaces/{ns}/roles", json={"metadata": {"name": role}, "rules": rules})
    assert r.status_code == 201, r.text
    r = admin.post(f"{RBAC}/namespaces/{ns}/rolebindings", json={
        "metadata": {"name": f"{user}-reads"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]})
    assert r.status_code == 201, r.text


def forbidden_message(client: httpx.Client, method: str, url: str, **kw: Any) -> str:
    """The message of the API's 403 to this request (which must be refused)."""
    r = client.request(method, url, **kw)
    assert r.status_code == 403, r.text
    return str(r.json()["message"])


def go(page: Any, route: str) -> None:
    """Open ``#/<route>`` in the page already logged in."""
    page.evaluate(f"location.hash = '#/{route}'")


def shows(page: Any, selector: str, text: str, *, exact: bool = False, timeout: float = 30000) -> None:
    """Wait until the element ``selector`` has the text ``text`` (``exact``) or one containing it."""
    page.wait_for_function("([selector, text, exact]) => { const t = document.querySelector(selector)?.textContent;"
                           " return exact ? t === text : !!t && t.includes(text); }",
                           arg=[selector, text, exact], timeout=timeout)
