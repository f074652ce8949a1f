"""machinery.healthz: the /healthz endpoint components serve, over real HTTP."""

from __future__ import annotations

import asyncio
import socket

import httpx

from cli.healthcheck import check
from machinery.healthz import serve_healthz


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_healthz_answers_ok_then_names_the_failed_check() -> None:
    port = _free_port()
    broken: list[str] = []
    runner = await serve_healthz("127.0.0.1", port, {"leaderElection": lambda: broken[0] if broken else None})
    assert runner is not None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            for path in ("/healthz", "/livez", "/readyz"):
                r = await c.get(path)
                assert (r.status_code, r.text) == (200, "ok")
            r = await c.get("/healthz?verbose")
            assert r.status_code == 200 and "[+]ping ok" in r.text and "[+]leaderElection ok" in r.text
            broken.append("the lease was last renewed 99s ago")
            r = await c.get("/healthz")
            assert r.status_code == 500
            assert "[-]leaderElection failed: the lease was last renewed 99s ago" in r.text
            assert "[+]ping ok" in r.text
        # What the compose health checks run (a blocking call: in a thread, the server is on this loop).
        ok, text = await asyncio.to_thread(check, f"http://127.0.0.1:{port}/healthz")
        assert not ok and "500" in text and "leaderElection failed" in text
        broken.clear()
        assert await asyncio.to_thread(check, f"http://127.0.0.1:{port}/healthz") == (True, "ok")
    finally:
        await runner.cleanup()


async def test_a_taken_port_is_reported_not_fatal() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert await serve_healthz("127.0.0.1", s.getsockname()[1], {}) is None
