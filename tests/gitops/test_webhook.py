"""gitops.webhook: the real receiver on 127.0.0.1 (a free port), driven with aiohttp and raw sockets.

Each test builds its own receiver with its own secrets, a recording trigger and a fake clock (the
rate limits are tested by moving the clock, not by sleeping). A second client address is
127.0.0.2, which the loopback interface answers as well.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import orjson
import pytest

from gitops.webhook import WebhookSettings, make_app, serve

SECRET = b"hunter2-but-longer-5f1c"
BODY = b'{"ref":"refs/heads/main","after":"9fceb02d0ae598e95dc970b74767f19372d61af8"}'
MiB = 1 << 20


def github(body: bytes = BODY, secret: bytes = SECRET, event: str = "push") -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest(),
            "X-GitHub-Event": event, "Content-Type": "application/json"}


def gitlab(secret: bytes = SECRET) -> dict[str, str]:
    return {"X-Gitlab-Token": secret.decode(), "X-Gitlab-Event": "Push Hook"}


def generic(body: bytes = BODY, secret: bytes = SECRET, algorithm: str = "sha512") -> dict[str, str]:
    return {"X-Signature": f"{algorithm}=" + hmac.new(secret, body, getattr(hashlib, algorithm)).hexdigest()}


SENDERS: dict[str, Callable[[bytes], dict[str, str]]] = {
    "github": lambda secret: github(secret=secret),
    "gitlab": lambda secret: gitlab(secret=secret),
    "generic": lambda secret: generic(secret=secret),
}


@dataclass
class Receiver:
    url: str
    port: int
    secrets: dict[tuple[str, str], bytes | None]
    triggered: list[tuple[str, str]] = field(default_factory=list)
    looked_up: list[tuple[str, str]] = field(default_factory=list)
    now: float = 1000.0
    lookup_error: Exception | None = None

    def hook(self, namespace: str = "apps", name: str = "web") -> str:
        return f"{self.url}/hooks/{namespace}/{name}"


Factory = Callable[..., Awaitable[Receiver]]


@pytest.fixture
async def receiver() -> AsyncIterator[Factory]:
    runners = []

    async def start(**settings: Any) -> Receiver:
        r = Receiver(url="", port=0, secrets={("apps", "web"): SECRET, ("apps", "nosecret"): None})

        async def secret_for(namespace: str, name: str) -> bytes | None:
            r.looked_up.append((namespace, name))
            if r.lookup_error is not None:
                raise r.lookup_error
            return r.secrets.get((namespace, name))

        app = make_app(secret_for=secret_for, trigger=lambda ns, name: r.triggered.append((ns, name)),
                       settings=WebhookSettings(**settings),
                       clock=lambda: r.now)
        runner, port = await serve(app, host="127.0.0.1", port=0)
        runners.append(runner)
        r.url, r.port = f"http://127.0.0.1:{port}", port
        return r

    yield start
    for runner in runners:
        await runner.cleanup()


async def post(url: str, *, data: object = BODY, headers: dict[str, str] | None = None,
               source: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0) if source else None, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20)) as s:
        async with s.post(url, data=data, headers=headers or {}) as resp:
            return resp.status, await resp.read(), dict(resp.headers)


async def test_healthz(receiver: Factory) -> None:
    r = await receiver()
    async with aiohttp.ClientSession() as s, s.get(f"{r.url}/healthz") as resp:
        assert (resp.status, await resp.text()) == (200, "ok")


@pytest.mark.parametrize("sender", sorted(SENDERS))
async def test_each_sender_triggers_a_sync(receiver: Factory, sender: str) -> None:
    r = await receiver()
    status, body, _ = await post(r.hook(), headers=SENDERS[sender](SECRET))
    assert status == 202, body
    assert orjson.loads(body)["status"] == "Success"
    assert r.triggered == [("apps", "web")]


async def test_generic_sha256_and_dotted_names(receiver: Factory) -> None:
    r = await receiver()
    r.secrets[("team-a", "site.example")] = SECRET
    status, _, _ = await post(r.hook("team-a", "site.example"), headers=generic(algorithm="sha256"))
    assert status == 202
    assert r.triggered == [("team-a", "site.example")]


async def test_github_ping_answers_and_triggers_nothing(receiver: Factory) -> None:
    r = await receiver()
    status, body, _ = await post(r.hook(), headers=github(event="ping"))
    assert status == 200 and orjson.loads(body)["message"] == "pong"
    assert r.triggered == []
    # A ping with a wrong signature is refused like anything else.
    status, _, _ = await post(r.hook(), headers=github(secret=b"nope", event="ping"))
    assert status == 401


@pytest.mark.parametrize("sender", sorted(SENDERS))
async def test_wrong_signature_is_401_and_triggers_nothing(receiver: Factory, sender: str) -> None:
    r = await receiver()
    status, body, _ = await post(r.hook(), headers=SENDERS[sender](b"not-the-secret"))
    assert status == 401
    assert orjson.loads(body) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": "unauthorized", "reason": "Unauthorized", "code": 401}
    assert r.triggered == []


async def test_body_changed_after_signing_is_401(receiver: Factory) -> None:
    r = await receiver()
    status, _, _ = await post(r.hook(), data=BODY.replace(b"main", b"evil"), headers=github())
    assert status == 401 and r.triggered == []


@pytest.mark.parametrize("sender", sorted(SENDERS))
async def test_no_secret_configured_accepts_nothing(receiver: Factory, sender: str) -> None:
    r = await receiver()
    r.secrets[("apps", "empty")] = b""
    for name in ("nosecret", "empty"):
        # Signed with nothing, and with the other GitSync's secret: neither is accepted.
        for secret in (b"", SECRET):
            if sender == "gitlab" and not secret:
                continue  # an empty header value is the same as in test_unauthorized_answers_are_identical
            status, _, _ = await post(r.hook(name=name), headers=SENDERS[sender](secret))
            assert status == 401, (name, secret)
    assert r.triggered == []


async def test_unauthorized_answers_are_identical(receiver: Factory) -> None:
    """Unknown GitSync, no secret, wrong signature, no header, invalid name: the same answer."""
    r = await receiver()
    answers = [
        await post(r.hook(name="no-such-sync"), headers=github()),
        await post(r.hook("no-such-namespace", "web"), headers=gitlab()),
        await post(r.hook(name="nosecret"), headers=generic()),
        await post(r.hook(), headers=github(secret=b"wrong")),
        await post(r.hook(), headers={"Content-Type": "application/json"}),
        await post(r.hook(), headers={"X-Hub-Signature": "sha1=" + hmac.new(SECRET, BODY, "sha1").hexdigest()}),
        await post(r.hook(name="Not_A_Name"), headers=github()),
        await post(r.hook(), headers={**github(), **gitlab()}),
    ]
    first = answers[0]
    for status, body, headers in answers:
        assert status == 401
        assert body == first[1]
        assert headers["Content-Type"] == first[2]["Content-Type"]
        assert headers["Content-Length"] == first[2]["Content-Length"]
    assert r.triggered == []
    # No lookup for a request without a signature header, nor for a name that cannot exist.
    assert sorted(set(r.looked_up)) == [("apps", "no-such-sync"), ("apps", "nosecret"), ("apps", "web"),
                                         ("no-such-namespace", "web")]


async def test_lookup_failure_is_503(receiver: Factory) -> None:
    r = await receiver()
    r.lookup_error = RuntimeError(f"secret {SECRET!r} could not be decoded")
    status, body, _ = await post(r.hook(), headers=github())
    assert status == 503 and SECRET not in body
    assert r.triggered == []


async def test_get_is_405(receiver: Factory) -> None:
    r = await receiver()
    async with aiohttp.ClientSession() as s:
        for method in ("GET", "PUT", "DELETE"):
            async with s.request(method, r.hook(), headers=github()) as resp:
                assert resp.status == 405
                assert resp.headers["Allow"] == "POST"
                assert (await resp.json())["reason"] == "MethodNotAllowed"
    assert r.triggered == [] and r.looked_up == []


async def test_body_over_the_cap_is_413(receiver: Factory) -> None:
    r = await receiver()
    big = b"x" * (MiB + 1)
    status, body, _ = await post(r.hook(), data=big, headers=github(big))
    assert status == 413, body
    assert orjson.loads(body)["reason"] == "RequestEntityTooLarge"
    # Exactly the cap is fine.
    exact = b"x" * MiB
    status, _, _ = await post(r.hook(), data=exact, headers=github(exact))
    assert status == 202
    assert r.triggered == [("apps", "web")]
    assert r.looked_up == [("apps", "web")]  # the oversized request was refused before any lookup


async def test_chunked_body_over_the_cap_is_413(receiver: Factory) -> None:
    r = await receiver()
    big = b"y" * (MiB + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 50_000):
            yield big[i:i + 50_000]

    status, body, _ = await post(r.hook(), data=chunks(), headers=github(big))
    assert status == 413, body
    assert r.triggered == [] and r.looked_up == []

    small = b'{"chunked": true}'

    async def one() -> AsyncIterator[bytes]:
        yield small[:5]
        yield small[5:]

    status, _, _ = await post(r.hook(), data=one(), headers=github(small))
    assert status == 202 and r.triggered == [("apps", "web")]


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()


async def test_declared_oversize_is_refused_before_the_body_is_sent(receiver: Factory) -> None:
    r = await receiver()
    head = (f"POST /hooks/apps/web HTTP/1.1\r\nHost: x\r\nContent-Length: {2 * MiB}\r\n"
            f"X-Hub-Signature-256: sha256=00\r\n")
    # No body at all: the 413 comes without the receiver waiting for (or reading) one.
    assert (await _raw(r.port, (head + "\r\n").encode())).startswith(b"HTTP/1.1 413")
    # Expect: 100-continue gets the 413 instead of the 100.
    assert (await _raw(r.port, (head + "Expect: 100-continue\r\n\r\n").encode())).startswith(b"HTTP/1.1 413")
    assert r.looked_up == [] and r.triggered == []


async def test_expect_continue_small_body(receiver: Factory) -> None:
    r = await receiver()
    headers = "".join(f"{k}: {v}\r\n" for k, v in github().items())
    reader, writer = await asyncio.open_connection("127.0.0.1", r.port)
    try:
        writer.write((f"POST /hooks/apps/web HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n{headers}"
                      "Expect: 100-continue\r\n\r\n").encode())
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 100")
        writer.write(BODY)
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 202")
    finally:
        writer.close()
    assert r.triggered == [("apps", "web")]


async def test_per_sync_rate_limit_429_then_refill(receiver: Factory) -> None:
    r = await receiver(per_sync_burst=3, per_sync_rate=0.5)
    results = [(await post(r.hook(), headers=github()))[0] for _ in range(4)]
    assert results == [202, 202, 202, 429]
    status, body, headers = await post(r.hook(), headers=gitlab())
    assert status == 429 and headers["Retry-After"] == "2"  # one token at 0.5/s
    assert orjson.loads(body)["reason"] == "TooManyRequests"
    assert len(r.triggered) == 3
    # Another GitSync has its own bucket.
    r.secrets[("apps", "other")] = SECRET
    assert (await post(r.hook(name="other"), headers=generic()))[0] == 202
    r.now += 2.0
    assert (await post(r.hook(), headers=github()))[0] == 202
    assert (await post(r.hook(), headers=github()))[0] == 429
    assert r.triggered.count(("apps", "web")) == 4


async def test_global_rate_limit_spends_no_per_sync_token(receiver: Factory) -> None:
    r = await receiver(per_sync_burst=2, per_sync_rate=1.0, global_burst=3, global_rate=1.0)
    for name in ("a", "b"):
        r.secrets[("apps", name)] = SECRET
    assert [(await post(r.hook(name=n), headers=github()))[0] for n in ("a", "a", "b", "b")] == [202, 202, 202, 429]
    status, _, headers = await post(r.hook(name="b"), headers=github())
    assert status == 429 and headers["Retry-After"] == "1"
    r.now += 1.0
    # b was refused by the global bucket only: its own still has its second token.
    assert (await post(r.hook(name="b"), headers=github()))[0] == 202
    assert r.triggered == [("apps", "a"), ("apps", "a"), ("apps", "b"), ("apps", "b")]


async def test_bad_requests_are_cut_off_per_client_and_never_block_the_good_sender(receiver: Factory) -> None:
    r = await receiver(per_client_burst=3, per_client_rate=0.25, per_sync_burst=2, per_sync_rate=0.001)
    bad = [(await post(r.hook(), headers=github(secret=b"guess"), source="127.0.0.2"))
           for _ in range(5)]
    assert [b[0] for b in bad] == [401, 401, 401, 429, 429]
    assert bad[-1][2]["Retry-After"] == "4"
    # Any failed authentication counts against the same client: an unknown GitSync too.
    assert (await post(r.hook(name="ghost"), headers=gitlab(), source="127.0.0.2"))[0] == 429
    # The GitSync's own sender, from another address, still gets through (its bucket was not touched).
    assert (await post(r.hook(), headers=github(), source="127.0.0.1"))[0] == 202
    assert (await post(r.hook(), headers=github(), source="127.0.0.1"))[0] == 202
    # And an authenticated request from the flooding address is accepted too (shared addresses:
    # GitHub's delivery hosts, a proxy), limited only by the GitSync's bucket, which is now empty.
    r.secrets[("apps", "other")] = SECRET
    assert (await post(r.hook(name="other"), headers=generic(), source="127.0.0.2"))[0] == 202
    assert r.triggered == [("apps", "web"), ("apps", "web"), ("apps", "other")]
    # The refused client recovers with time.
    r.now += 4.0
    assert (await post(r.hook(), headers=github(secret=b"guess"), source="127.0.0.2"))[0] == 401


async def test_secret_never_in_logs(receiver: Factory, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    r = await receiver(per_client_burst=2, per_client_rate=1.0)
    r.secrets[("apps", "close")] = SECRET + b"x"
    await post(r.hook(), headers=gitlab())
    await post(r.hook(), headers=github())
    await post(r.hook(), headers=generic())
    await post(r.hook(), headers=github(event="ping"))
    await post(r.hook(name="close"), headers=gitlab())
    await post(r.hook(name="close"), headers=github())
    await post(r.hook(name="nosecret"), headers=gitlab())
    await post(r.hook(name="nosecret"), headers=gitlab())
    r.lookup_error = RuntimeError(f"bad secret {SECRET!r}")
    await post(r.hook(), headers=gitlab())
    text = "\n".join(f"{rec.getMessage()} {rec.exc_text or ''}" for rec in caplog.records)
    assert "triggers a sync of apps/web" in text
    assert "refused" in text and "rate-limited" in text and "RuntimeError" in text
    for needle in (SECRET.decode(), SECRET.hex(), github()["X-Hub-Signature-256"][7:],
                   generic()["X-Signature"][7:]):
        assert needle not in text
