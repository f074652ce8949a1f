"""The kubelet API's delegated authentication and authorization (kubelet.authn, kubelet.credential).

Pure: Kubernetes' request -> attributes mapping, the review bodies and answers, the caches' TTLs
(a fake clock and a recording stand-in for the API client's ``request``), and the decision table
of ``KubeletCredential.authorize``. Against a real secured API server and Docker kubelet:
tests/e2e/test_incluster_client.py::test_the_kubelet_api_asks_the_api_server_who_may_call (it
shares that module's cluster).
"""

from __future__ import annotations

from typing import Any

import pytest

from kubelet.authn import (
    AUTHN_NEGATIVE_TTL,
    AUTHN_TTL,
    AUTHZ_NEGATIVE_TTL,
    AUTHZ_TTL,
    DelegatedAuth,
    KubeletAttributes,
    TTLCache,
    access_review_body,
    forbidden_message,
    request_attributes,
    review_allowed,
    reviewed_user,
)
from kubelet.credential import NOT_READY, UNAUTHORIZED, Denial, KubeletCredential
from machinery import errors
from machinery.userinfo import UserInfo


@pytest.mark.parametrize(("method", "path", "verb", "subresource"), [
    ("GET", "/stats/summary", "get", "stats"),
    ("GET", "/stats", "get", "stats"),
    ("GET", "/metrics/resource", "get", "metrics"),
    ("GET", "/metrics", "get", "metrics"),
    ("GET", "/logs/syslog", "get", "log"),
    ("GET", "/spec/", "get", "spec"),
    ("GET", "/containerLogs/ns/pod/c", "get", "proxy"),
    ("POST", "/exec/ns/pod/c", "create", "proxy"),
    ("GET", "/exec/ns/pod/c", "get", "proxy"),
    ("PUT", "/pods", "update", "proxy"),
    ("PATCH", "/x", "patch", "proxy"),
    ("DELETE", "/x", "delete", "proxy"),
    ("GET", "/statsx", "get", "proxy"),  # a prefix of a word is not the subtree
    ("GET", "/portforward/ns/pod", "get", "proxy"),
])
def test_request_attributes(method: str, path: str, verb: str, subresource: str) -> None:
    assert request_attributes(method, path, "n1") == KubeletAttributes(verb=verb, subresource=subresource, name="n1")


def test_messages_and_bodies() -> None:
    user = UserInfo("system:serviceaccount:a:b", uid="u1", groups=("system:serviceaccounts", "system:authenticated"),
                    extra={"authentication.kubernetes.io/pod-name": ("p",)})
    attrs = request_attributes("GET", "/containerLogs/a/p/c", "n1")
    assert forbidden_message(user, attrs) == \
        "Forbidden (user=system:serviceaccount:a:b, verb=get, resource=nodes, subresource=proxy)"
    assert access_review_body(user, attrs)["spec"] == {
        "user": "system:serviceaccount:a:b", "uid": "u1", "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
        "resourceAttributes": {"verb": "get", "group": "", "version": "v1", "resource": "nodes",
                               "subresource": "proxy", "name": "n1"}}


@pytest.mark.parametrize(("answer", "user"), [
    ({"status": {"authenticated": True, "user": {"username": "alice", "groups": ["g"]}}},
     UserInfo("alice", groups=("g",))),
    ({"status": {"authenticated": False, "error": "invalid bearer token"}}, None),
    ({"status": {"authenticated": True, "user": {}}}, None),
    ({"status": {}}, None),
    ({}, None),
    ("not json", None),
    (None, None),
])
def test_reviewed_user(answer: Any, user: UserInfo | None) -> None:
    assert reviewed_user(answer) == user


@pytest.mark.parametrize(("answer", "allowed"), [
    ({"status": {"allowed": True}}, True),
    ({"status": {"allowed": True, "denied": True}}, False),
    ({"status": {"allowed": False, "reason": "no"}}, False),
    ({"status": {}}, False),
    (None, False),
])
def test_review_allowed(answer: Any, allowed: bool) -> None:
    assert review_allowed(answer) is allowed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_cache_expires_and_evicts_the_oldest() -> None:
    clock = Clock()
    cache: TTLCache[str, int] = TTLCache(clock=clock, size=2)
    cache.put("a", 1, 10)
    cache.put("b", 2, 20)
    assert cache.get("a") == (True, 1)
    clock.now += 10
    assert cache.get("a") == (False, None) and cache.get("b") == (True, 2)
    cache.put("c", 3, 5)
    cache.put("d", 4, 5)  # full: "b" (the oldest) goes
    assert cache.get("b") == (False, None) and len(cache) == 2


class Reviewer:
    """Stands in for the kubelet's ApiClient: answers reviews from tables, counts the calls."""

    def __init__(self, users: dict[str, UserInfo], grants: set[tuple[str, str]]) -> None:
        self.users, self.grants = users, grants
        self.calls: list[str] = []
        self.down = False

    async def request(self, method: str, path: str, *, json: Any = None, **_: Any) -> Any:
        self.calls.append(path.rsplit("/", 1)[-1])
        if self.down:
            raise errors.ServiceUnavailableError("the API server is down")
        spec = json["spec"]
        if path.endswith("tokenreviews"):
            user = self.users.get(spec["token"])
            return {"status": {"authenticated": True, "user": user.to_api()} if user else {"authenticated": False}}
        allowed = (spec["user"], spec["resourceAttributes"]["subresource"]) in self.grants
        return {"status": {"allowed": allowed}}


@pytest.fixture
def setup() -> tuple[KubeletCredential, Reviewer, Clock]:
    clock = Clock()
    reviewer = Reviewer({"alice-token": UserInfo("alice"), "bob-token": UserInfo("bob")}, {("alice", "proxy")})
    delegated = DelegatedAuth(reviewer, node_name="n1", clock=clock)  # type: ignore[arg-type]
    credential = KubeletCredential.__new__(KubeletCredential)  # no informer: the table alone
    credential.token, credential.delegated = "apiserver-token", delegated
    return credential, reviewer, clock


@pytest.mark.parametrize(("header", "method", "path", "answer"), [
    (None, "GET", "/containerLogs/a/b/c", UNAUTHORIZED),
    ("Basic eDp5", "GET", "/containerLogs/a/b/c", UNAUTHORIZED),
    ("Bearer apiserver-token", "GET", "/containerLogs/a/b/c", None),
    ("Bearer garbage", "GET", "/containerLogs/a/b/c", UNAUTHORIZED),
    ("Bearer alice-token", "GET", "/containerLogs/a/b/c", None),
    ("Bearer alice-token", "GET", "/stats/summary",
     Denial(403, "Forbidden (user=alice, verb=get, resource=nodes, subresource=stats)")),
    ("Bearer bob-token", "POST", "/exec/a/b/c",
     Denial(403, "Forbidden (user=bob, verb=create, resource=nodes, subresource=proxy)")),
])
async def test_authorize_table(setup: tuple[KubeletCredential, Reviewer, Clock], header: str | None, method: str,
                               path: str, answer: Denial | None) -> None:
    credential, reviewer, _ = setup
    assert await credential.authorize(header, method, path) == answer
    if header in (None, "Basic eDp5", "Bearer apiserver-token"):
        assert reviewer.calls == []  # decided in the kubelet
    else:
        assert reviewer.calls[0] == "tokenreviews"


async def test_reviews_are_cached_for_kubernetes_ttls(setup: tuple[KubeletCredential, Reviewer, Clock]) -> None:
    credential, reviewer, clock = setup
    for _ in range(3):
        assert await credential.authorize("Bearer alice-token", "GET", "/containerLogs/a/b/c") is None
        assert (await credential.authorize("Bearer bob-token", "GET", "/containerLogs/a/b/c") or NOT_READY).status \
            == 403
        assert await credential.authorize("Bearer garbage", "GET", "/x") == UNAUTHORIZED
    assert sorted(reviewer.calls) == ["subjectaccessreviews"] * 2 + ["tokenreviews"] * 3
    # A refused token and a denial are asked again after 30 s; a valid token and a grant are kept.
    reviewer.calls.clear()
    clock.now += max(AUTHN_NEGATIVE_TTL, AUTHZ_NEGATIVE_TTL) + 0.1
    await credential.authorize("Bearer alice-token", "GET", "/containerLogs/a/b/c")
    await credential.authorize("Bearer bob-token", "GET", "/containerLogs/a/b/c")
    await credential.authorize("Bearer garbage", "GET", "/x")
    assert sorted(reviewer.calls) == ["subjectaccessreviews", "tokenreviews"]
    reviewer.calls.clear()
    clock.now += AUTHN_TTL  # the valid token's 2 min are over; alice's grant (5 min) is not
    assert AUTHZ_TTL > AUTHN_TTL + AUTHZ_NEGATIVE_TTL + 0.1
    await credential.authorize("Bearer alice-token", "GET", "/containerLogs/a/b/c")
    assert reviewer.calls == ["tokenreviews"]


async def test_an_unreachable_api_server(setup: tuple[KubeletCredential, Reviewer, Clock]) -> None:
    credential, reviewer, _ = setup
    reviewer.down = True
    assert await credential.authorize("Bearer alice-token", "GET", "/x") == UNAUTHORIZED
    assert await credential.authorize("Bearer apiserver-token", "GET", "/x") is None  # needs no review
    reviewer.down = False
    assert await credential.authorize("Bearer alice-token", "GET", "/x") is None  # errors were not cached
    reviewer.down = True
    denial = await credential.authorize("Bearer alice-token", "GET", "/stats/summary")  # token cached, grant not
    assert denial == Denial(500, "Authorization error (user=alice, verb=get, resource=nodes, subresource=stats)")


async def test_before_the_credential_is_read(setup: tuple[KubeletCredential, Reviewer, Clock]) -> None:
    credential, _, _ = setup
    credential.token = None
    # An unknown token may be the API server's: 503 (it retries), as before delegation.
    assert await credential.authorize("Bearer garbage", "GET", "/x") == NOT_READY
    assert await credential.authorize("Bearer alice-token", "GET", "/containerLogs/a/b/c") is None
