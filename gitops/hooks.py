"""Webhook decisions, without I/O: who sent a request, whether its signature holds, and rate limits.

Role: the pure half of the webhook receiver (``gitops.webhook`` is the aiohttp half). A push to the
repository makes its host call ``POST /hooks/{namespace}/{name}``; the receiver reads the body
(capped), looks up the GitSync's webhook secret, and asks this module:

    authenticate(headers, body, secret) -> Verdict(ok, sender, reason, ping)
        -> ok and not ping: the receiver triggers a sync of that GitSync at once
        -> ok and ping:     GitHub checking a new hook; answered, nothing triggered
        -> not ok:          401; ``reason`` goes to the log (it never holds the secret or a signature)

    RateLimiter.retry_after(key, now) / take(key, now) -> how long a sender must wait (0: go on)

Senders are recognized by their headers, after Flux's notification-controller receivers:

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``; ``X-GitHub-Event:
  ping`` with a valid signature is a ping. The legacy SHA-1 ``X-Hub-Signature`` is not accepted.
- GitLab: ``X-Gitlab-Token: <the secret itself>``.
- generic (Flux's generic-hmac): ``X-Signature: sha256=<hex>`` or ``sha512=<hex>``, an HMAC of the
  raw body.

Every comparison is ``hmac.compare_digest``. No secret (None or empty) accepts nothing: an HMAC
with an empty key is one anybody can compute. The clock is passed in (``now``), so the buckets are
tested without sleeping.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from typing import Hashable, Literal, Mapping

Sender = Literal["github", "gitlab", "generic", ""]

# Lower-case header names (HTTP header names are case-insensitive).
GITHUB_SIGNATURE = "x-hub-signature-256"
GITHUB_LEGACY_SIGNATURE = "x-hub-signature"
GITHUB_EVENT = "x-github-event"
GITLAB_TOKEN = "x-gitlab-token"
GENERIC_SIGNATURE = "x-signature"

_SENDER_HEADERS: dict[str, Sender] = {
    GITHUB_SIGNATURE: "github",
    GITLAB_TOKEN: "gitlab",
    GENERIC_SIGNATURE: "generic",
}

# The HMAC algorithms each sender may name (hashlib's names), after Flux's receivers.
_GITHUB_ALGORITHMS = frozenset({"sha256"})
_GENERIC_ALGORITHMS = frozenset({"sha256", "sha512"})

# Without a secret the HMAC is still computed, with this key, so that "no such GitSync" and "no
# secret" take about as long as "wrong signature" and cannot be told apart by timing either.
_NO_SECRET_KEY = b"minik8s-gitops-webhook-no-secret-configured"


@dataclass(frozen=True)
class Verdict:
    """What ``authenticate`` decided. ``reason`` is for logs: it names the check that failed (or
    passed) and never holds the secret, a signature or a token."""

    ok: bool
    sender: Sender
    reason: str
    ping: bool = False


def _lowered(headers: Mapping[str, str]) -> dict[str, list[str]]:
    # items(), not keys(): a multidict (aiohttp's headers) yields every occurrence of a header.
    out: dict[str, list[str]] = {}
    for key, value in headers.items():
        out.setdefault(key.lower(), []).append(value)
    return out


def detect_sender(headers: Mapping[str, str]) -> Sender:
    """The sender that the signature headers name; "" when none, or more than one kind, is there."""
    present = {_SENDER_HEADERS[k] for k in _lowered(headers) if k in _SENDER_HEADERS}
    return present.pop() if len(present) == 1 else ""


def _parse_hex_signature(value: str, algorithms: frozenset[str]) -> tuple[str, bytes] | str:
    """(algorithm, digest) from ``alg=<hex>``, or the reason it is malformed."""
    algorithm, sep, hexdigest = value.strip().partition("=")
    algorithm = algorithm.strip().lower()
    if not sep:
        return "signature is not of the form <algorithm>=<hex>"
    if algorithm not in algorithms:
        # The algorithm name is the sender's text: it is not echoed, so logs stay clean.
        return f"signature algorithm is not one of {', '.join(sorted(algorithms))}"
    try:
        digest = bytes.fromhex(hexdigest.strip())
    except ValueError:
        return "signature is not hexadecimal"
    return algorithm, digest


def _hmac_matches(secret: bytes, algorithm: str, body: bytes, given: bytes) -> bool:
    # compare_digest on the raw digests: constant time for equal lengths, and a length mismatch
    # (public knowledge: the algorithm fixes it) only answers False.
    return hmac.compare_digest(hmac.new(secret, body, algorithm).digest(), given)


def authenticate(headers: Mapping[str, str], body: bytes, secret: bytes | None) -> Verdict:
    """Whether ``body`` with ``headers`` was signed with ``secret`` by GitHub, GitLab or a generic
    HMAC sender. ``secret`` None or empty (unknown GitSync, no secret configured, Secret missing):
    never ok. Header names are case-insensitive."""
    lowered = _lowered(headers)
    kinds = sorted({_SENDER_HEADERS[k] for k in lowered if k in _SENDER_HEADERS})
    if not kinds:
        if GITHUB_LEGACY_SIGNATURE in lowered:
            return Verdict(False, "github", "only the SHA-1 X-Hub-Signature was sent; X-Hub-Signature-256 is required")
        return Verdict(False, "", "no X-Hub-Signature-256, X-Gitlab-Token or X-Signature header")
    if len(kinds) > 1:
        # Deciding by precedence would be arbitrary: a real sender sends one kind only.
        return Verdict(False, "", f"signature headers of more than one sender ({', '.join(kinds)})")
    header = next(k for k in lowered if k in _SENDER_HEADERS)
    sender = _SENDER_HEADERS[header]
    values = lowered[header]
    if len(values) > 1:
        return Verdict(False, sender, f"header {header} given {len(values)} times")
    value = values[0]
    configured = bool(secret)
    key = secret if secret else _NO_SECRET_KEY

    if sender == "gitlab":
        try:
            # aiohttp decodes header bytes as UTF-8 with surrogateescape; this gives the bytes back.
            token = value.strip().encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return Verdict(False, sender, "X-Gitlab-Token is not text")
        matches = hmac.compare_digest(token, key)
        if not configured:
            return Verdict(False, sender, "no webhook secret configured")
        return Verdict(True, sender, "token matches") if matches else Verdict(False, sender, "token does not match")

    parsed = _parse_hex_signature(value, _GITHUB_ALGORITHMS if sender == "github" else _GENERIC_ALGORITHMS)
    if isinstance(parsed, str):
        return Verdict(False, sender, parsed)
    algorithm, digest = parsed
    matches = _hmac_matches(key, algorithm, body, digest)
    if not configured:
        return Verdict(False, sender, "no webhook secret configured")
    if not matches:
        return Verdict(False, sender, f"{algorithm} HMAC signature does not match")
    ping = sender == "github" and [v.strip().lower() for v in lowered.get(GITHUB_EVENT, [])] == ["ping"]
    return Verdict(True, sender, f"{algorithm} HMAC signature matches", ping=ping)


# ---------------------------------------------------------------------------------------------
# Rate limits


class TokenBucket:
    """A token bucket: holds up to ``burst`` tokens, gains ``rate`` per second, a request takes one.

    Time is whatever clock the caller passes as ``now`` (monotonic seconds in the receiver)."""

    __slots__ = ("burst", "rate", "tokens", "stamp")

    def __init__(self, *, burst: int, rate: float, now: float) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError("a token bucket needs burst >= 1 and rate > 0")
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:  # a clock that steps back never takes tokens away
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def retry_after(self, now: float) -> float:
        """Seconds until a token is there (0.0: one is there now). Takes nothing."""
        self._refill(now)
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> float:
        """Takes a token if there is one and answers 0.0; else takes nothing and answers the seconds
        until there is one."""
        wait = self.retry_after(now)
        if wait == 0.0:
            self.tokens -= 1.0
        return wait

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


class RateLimiter:
    """One token bucket per key (a GitSync, a client address), made on first use.

    At most ``max_keys`` buckets are kept: beyond that, buckets that have refilled completely are
    forgotten (a new one would be the same), then the least recently used. Forgetting a bucket
    that is not full forgives its key, which only happens when more keys than that are busy at
    once; memory stays bounded whatever addresses a flood comes from."""

    def __init__(self, *, burst: int, rate: float, max_keys: int = 10_000) -> None:
        self.burst = burst
        self.rate = rate
        self.max_keys = max_keys
        TokenBucket(burst=burst, rate=rate, now=0.0)  # validates the parameters now, not on first use
        self._buckets: dict[Hashable, TokenBucket] = {}

    def _bucket(self, key: Hashable, now: float) -> TokenBucket:
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = TokenBucket(burst=self.burst, rate=self.rate, now=now)
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
        self._buckets[key] = bucket  # re-inserted last: the dict's order is least recently used first
        return bucket

    def _prune(self, now: float) -> None:
        for key in [k for k, b in self._buckets.items() if b.full(now)]:
            del self._buckets[key]
        while len(self._buckets) >= self.max_keys:
            del self._buckets[next(iter(self._buckets))]

    def retry_after(self, key: Hashable, now: float) -> float:
        """Seconds until ``key`` may go on (0.0: now). Takes nothing."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.retry_after(now)

    def take(self, key: Hashable, now: float) -> float:
        """Takes a token of ``key``'s bucket (answers 0.0), or answers the seconds to wait."""
        return self._bucket(key, now).take(now)

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after_header(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


__all__ = ["GENERIC_SIGNATURE", "GITHUB_EVENT", "GITHUB_SIGNATURE", "GITLAB_TOKEN", "RateLimiter", "Sender",
           "TokenBucket", "Verdict", "authenticate", "detect_sender", "retry_after_header"]
