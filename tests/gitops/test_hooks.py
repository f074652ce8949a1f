"""gitops.hooks, pure: each sender's signature good, wrong, missing or malformed; no secret never
accepted; header names in any case; GitHub pings; token buckets and the keyed limiter on a fake
clock (no sleeping)."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from multidict import CIMultiDict

from gitops.hooks import RateLimiter, TokenBucket, Verdict, authenticate, detect_sender, retry_after_header

SECRET = b"s3cr3t-webhook-token"
BODY = b'{"ref":"refs/heads/main","after":"0123abcd"}'


def sig(algorithm: str, body: bytes = BODY, secret: bytes = SECRET) -> str:
    return f"{algorithm}=" + hmac.new(secret, body, getattr(hashlib, algorithm)).hexdigest()


def gh(body: bytes = BODY, secret: bytes = SECRET) -> str:
    return sig("sha256", body, secret)


# (case, headers, body, secret) -> (ok, sender, ping)
CASES: list[tuple[str, dict[str, str], bytes, bytes | None, tuple[bool, str, bool]]] = [
    # GitHub
    ("github ok", {"X-Hub-Signature-256": gh(), "X-GitHub-Event": "push"}, BODY, SECRET, (True, "github", False)),
    ("github ok without event", {"X-Hub-Signature-256": gh()}, BODY, SECRET, (True, "github", False)),
    ("github ok upper-case hex", {"X-Hub-Signature-256": "sha256=" + gh()[7:].upper()}, BODY, SECRET,
     (True, "github", False)),
    ("github ping", {"X-Hub-Signature-256": gh(), "X-GitHub-Event": "ping"}, BODY, SECRET, (True, "github", True)),
    ("github ping wrong signature", {"X-Hub-Signature-256": gh(secret=b"other"), "X-GitHub-Event": "ping"},
     BODY, SECRET, (False, "github", False)),
    ("github wrong secret", {"X-Hub-Signature-256": gh(secret=b"other")}, BODY, SECRET, (False, "github", False)),
    ("github body changed", {"X-Hub-Signature-256": gh()}, BODY + b" ", SECRET, (False, "github", False)),
    ("github sha512 prefix", {"X-Hub-Signature-256": sig("sha512")}, BODY, SECRET, (False, "github", False)),
    ("github sha1 prefix", {"X-Hub-Signature-256": "sha1=" + gh()[7:]}, BODY, SECRET, (False, "github", False)),
    ("github no prefix", {"X-Hub-Signature-256": gh()[7:]}, BODY, SECRET, (False, "github", False)),
    ("github not hex", {"X-Hub-Signature-256": "sha256=zz" + gh()[9:]}, BODY, SECRET, (False, "github", False)),
    ("github truncated", {"X-Hub-Signature-256": gh()[:-2]}, BODY, SECRET, (False, "github", False)),
    ("github empty", {"X-Hub-Signature-256": ""}, BODY, SECRET, (False, "github", False)),
    ("github legacy sha1 only", {"X-Hub-Signature": sig("sha1")}, BODY, SECRET, (False, "github", False)),
    ("github no secret", {"X-Hub-Signature-256": gh()}, BODY, None, (False, "github", False)),
    ("github empty secret signed with empty key", {"X-Hub-Signature-256": gh(secret=b"")}, BODY, b"",
     (False, "github", False)),
    # GitLab
    ("gitlab ok", {"X-Gitlab-Token": SECRET.decode(), "X-Gitlab-Event": "Push Hook"}, BODY, SECRET,
     (True, "gitlab", False)),
    ("gitlab wrong token", {"X-Gitlab-Token": "s3cr3t-webhook-tokeN"}, BODY, SECRET, (False, "gitlab", False)),
    ("gitlab prefix of token", {"X-Gitlab-Token": SECRET.decode()[:-1]}, BODY, SECRET, (False, "gitlab", False)),
    ("gitlab empty token", {"X-Gitlab-Token": ""}, BODY, SECRET, (False, "gitlab", False)),
    ("gitlab no secret", {"X-Gitlab-Token": SECRET.decode()}, BODY, None, (False, "gitlab", False)),
    ("gitlab empty token, empty secret", {"X-Gitlab-Token": ""}, BODY, b"", (False, "gitlab", False)),
    ("gitlab non-ascii token", {"X-Gitlab-Token": "t\u00f6ken"}, BODY, "t\u00f6ken".encode(), (True, "gitlab", False)),
    ("gitlab lone surrogate", {"X-Gitlab-Token": "\ud800"}, BODY, SECRET, (False, "gitlab", False)),
    # generic HMAC (Flux's generic-hmac)
    ("generic sha256", {"X-Signature": sig("sha256")}, BODY, SECRET, (True, "generic", False)),
    ("generic sha512", {"X-Signature": sig("sha512")}, BODY, SECRET, (True, "generic", False)),
    ("generic upper-case algorithm", {"X-Signature": "SHA256=" + sig("sha256")[7:]}, BODY, SECRET,
     (True, "generic", False)),
    ("generic sha1", {"X-Signature": sig("sha1")}, BODY, SECRET, (False, "generic", False)),
    ("generic md5", {"X-Signature": sig("md5")}, BODY, SECRET, (False, "generic", False)),
    ("generic sha256 prefix on a sha512 digest", {"X-Signature": "sha256=" + sig("sha512")[7:]}, BODY, SECRET,
     (False, "generic", False)),
    ("generic wrong secret", {"X-Signature": sig("sha512", secret=b"x")}, BODY, SECRET, (False, "generic", False)),
    ("generic no secret", {"X-Signature": sig("sha256")}, BODY, None, (False, "generic", False)),
    ("generic empty secret", {"X-Signature": sig("sha256", secret=b"")}, BODY, b"", (False, "generic", False)),
    ("generic ping header is GitHub's only", {"X-Signature": sig("sha256"), "X-GitHub-Event": "ping"}, BODY, SECRET,
     (True, "generic", False)),
    # header names in any case
    ("github lower-case names", {"x-hub-signature-256": gh(), "x-github-event": "ping"}, BODY, SECRET,
     (True, "github", True)),
    ("github upper-case names", {"X-HUB-SIGNATURE-256": gh()}, BODY, SECRET, (True, "github", False)),
    ("gitlab lower-case name", {"x-gitlab-token": SECRET.decode()}, BODY, SECRET, (True, "gitlab", False)),
    ("generic upper-case name", {"X-SIGNATURE": sig("sha512")}, BODY, SECRET, (True, "generic", False)),
    # nothing, or too much
    ("no header", {"Content-Type": "application/json"}, BODY, SECRET, (False, "", False)),
    ("no header, no secret", {}, BODY, None, (False, "", False)),
    ("two senders", {"X-Hub-Signature-256": gh(), "X-Gitlab-Token": SECRET.decode()}, BODY, SECRET,
     (False, "", False)),
    ("the same header twice, in two cases", {"X-Signature": sig("sha256"), "x-signature": sig("sha256")}, BODY,
     SECRET, (False, "generic", False)),
]


@pytest.mark.parametrize("case,headers,body,secret,expected", CASES, ids=[c[0] for c in CASES])
def test_authenticate(case: str, headers: dict[str, str], body: bytes, secret: bytes | None,
                      expected: tuple[bool, str, bool]) -> None:
    v = authenticate(headers, body, secret)
    assert (v.ok, v.sender, v.ping) == expected, v.reason
    assert v.reason
    # The reason goes to the log: never the secret nor anything the sender put in its headers.
    for value in headers.values():
        if value:
            assert value not in v.reason
    if secret:
        assert secret.decode() not in v.reason


def test_verdict_reasons_say_what_failed() -> None:
    assert "no webhook secret" in authenticate({"X-Hub-Signature-256": gh()}, BODY, None).reason
    assert "no webhook secret" in authenticate({"X-Gitlab-Token": "x"}, BODY, b"").reason
    assert "does not match" in authenticate({"X-Signature": sig("sha256", secret=b"x")}, BODY, SECRET).reason
    assert "X-Hub-Signature-256" in authenticate({"X-Hub-Signature": sig("sha1")}, BODY, SECRET).reason
    assert authenticate({"X-Hub-Signature-256": gh()}, BODY, SECRET) == Verdict(
        True, "github", "sha256 HMAC signature matches", ping=False)


def test_multidict_headers_as_aiohttp_gives_them() -> None:
    headers = CIMultiDict([("X-Hub-Signature-256", gh()), ("X-GitHub-Event", "ping")])
    assert authenticate(headers, BODY, SECRET).ping
    headers.add("x-hub-signature-256", gh(secret=b"attacker"))  # a second signature: refused, not either
    v = authenticate(headers, BODY, SECRET)
    assert not v.ok and "2 times" in v.reason


@pytest.mark.parametrize("headers,sender", [
    ({"X-Hub-Signature-256": "x"}, "github"),
    ({"x-gitlab-token": "x"}, "gitlab"),
    ({"X-Signature": "x"}, "generic"),
    ({"X-Hub-Signature": "sha1=00"}, ""),
    ({"X-Signature": "x", "X-Gitlab-Token": "x"}, ""),
    ({}, ""),
])
def test_detect_sender(headers: dict[str, str], sender: str) -> None:
    assert detect_sender(headers) == sender


# ---------------------------------------------------------------------------------------------
# Rate limits


def test_token_bucket_burst_then_refill() -> None:
    b = TokenBucket(burst=3, rate=2.0, now=100.0)
    assert [b.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take(100.0) == pytest.approx(0.5)  # one token at 2/s
    assert b.retry_after(100.25) == pytest.approx(0.25)
    assert b.take(100.5) == 0.0
    assert b.take(100.5) == pytest.approx(0.5)
    # Never more than the burst, however long it was idle.
    assert [b.take(1000.0) for _ in range(4)][-1] == pytest.approx(0.5)


def test_token_bucket_refused_take_takes_nothing_and_clock_steps_back() -> None:
    b = TokenBucket(burst=1, rate=1.0, now=0.0)
    assert b.take(0.0) == 0.0
    for _ in range(5):
        assert b.take(0.5) == pytest.approx(0.5)  # refusals do not push the wait further out
    assert b.take(0.2) == pytest.approx(0.5)  # an earlier time neither refills nor drains
    assert b.take(1.0) == 0.0


@pytest.mark.parametrize("burst,rate", [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_token_bucket_parameters(burst: int, rate: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(burst=burst, rate=rate, now=0.0)
    with pytest.raises(ValueError):
        RateLimiter(burst=burst, rate=rate)


def test_rate_limiter_keys_are_independent() -> None:
    rl = RateLimiter(burst=2, rate=1.0)
    assert rl.retry_after("a", 0.0) == 0.0  # peeking makes no bucket
    assert len(rl) == 0
    assert [rl.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]
    assert rl.retry_after("a", 0.0) == pytest.approx(1.0)
    assert rl.take(("ns", "b"), 0.0) == 0.0
    assert rl.take("a", 1.0) == 0.0


def test_rate_limiter_memory_is_bounded() -> None:
    rl = RateLimiter(burst=2, rate=1.0, max_keys=3)
    for key in ("a", "b", "c"):
        rl.take(key, 0.0)
    rl.take("a", 0.0)  # a is empty now, and the most recently used
    # At t=1 b and c have refilled (a has one token of two): they are forgotten first.
    rl.take("d", 1.0)
    assert len(rl) == 2
    assert [rl.take("a", 1.0), rl.take("a", 1.0)] == [0.0, pytest.approx(1.0)]  # a was kept
    # All busy: the least recently used goes.
    rl2 = RateLimiter(burst=1, rate=0.001, max_keys=2)
    rl2.take("x", 0.0)
    rl2.take("y", 0.0)
    rl2.take("z", 0.0)
    assert len(rl2) == 2
    assert rl2.retry_after("x", 0.0) == 0.0  # forgotten (forgiven)
    assert rl2.retry_after("y", 0.0) > 0


@pytest.mark.parametrize("seconds,header", [(0.01, "1"), (1.0, "1"), (1.2, "2"), (0.0, "1"), (59.5, "60")])
def test_retry_after_header(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header
