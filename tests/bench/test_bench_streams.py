"""The pure parts of bench/bench_streams.py (the table's cells, py-spy's summary) and its HTTP client
against a real socket server on loopback: what the benchmark reports must be right before its numbers."""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator

import pytest

from bench.bench_streams import compared
from bench.forwardclients import download
from bench.pyspy import profile_summary


@pytest.mark.parametrize(("times", "kwargs", "ours", "base", "ratio"), [
    ({"a": [0.2, 0.1, 0.3], "b": [0.1, 0.1, 0.1]}, {}, "p50 200.0 / p90 300.0 ms", "p50 100.0 / p90 100.0 ms", 2.0),
    ({"a": [50.0, 100.0, 150.0], "b": [200.0]}, {"rate": True}, "100 MB/s (50-150)", "200 MB/s (200-200)", 0.5),
    ({"a": [1.0], "b": [0.0]}, {"ratio": False}, "p50 1,000.0 / p90 1,000.0 ms", "p50 0.0 / p90 0.0 ms", None),
    ({"b": [0.1]}, {}, "failed: RuntimeError: exit 1", "p50 100.0 / p90 100.0 ms", None),
])
def test_compared_cells_and_ratio(times: dict[str, list[float]], kwargs: dict[str, bool], ours: str, base: str,
                                  ratio: float | None) -> None:
    row = compared("what", times, ours="a", base="b", failed={"a": "RuntimeError: exit\n 1"}, **kwargs)
    assert (row.what, row.ours, row.base) == ("what", ours, base)
    assert row.ratio == (pytest.approx(ratio) if ratio is not None else None)


def test_profile_summary_self_and_inclusive() -> None:
    raw = "\n".join([
        "run (apiserver/server.py:10);relay (apiserver/streamproxy.py:5);send (uvicorn/ws.py:3) 6",
        "run (apiserver/server.py:10);relay (apiserver/streamproxy.py:7);relay (apiserver/streamproxy.py:9) 3",
        "run (apiserver/server.py:10);select (selectors.py:1) 1",
        "garbage line",
    ])
    out = profile_summary(raw, 2.0, top=2)
    lines = out.splitlines()
    assert lines[0].startswith("  10 samples of active threads in 2.0 s")
    assert lines[1:3] == ["     60.0 %  send (uvicorn/ws.py:3)", "     30.0 %  relay (apiserver/streamproxy.py:9)"]
    # inclusive, a function once per stack whatever its lines: run 10 of 10, relay 9 of 10
    assert lines[4:6] == ["    100.0 %  run (apiserver/server.py)", "     90.0 %  relay (apiserver/streamproxy.py)"]


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    """Answers each connection with 200 and a 1000-byte body (``/short`` claims 2000), then closes
    0.3 s later; ``/missing`` gets 404."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            request = conn.recv(4096)
            body = b"x" * 1000
            status = b"404 Not Found" if b"/missing" in request else b"200 OK"
            length = 2000 if b"/short" in request else len(body)
            conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Length: " + str(length).encode() + b"\r\n\r\n" + body)
            time.sleep(0.3)

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield listener.getsockname()[1]
    stop.set()
    t.join(2)
    listener.close()


def test_download_stops_at_content_length_and_times_the_close(server: int) -> None:
    t0 = time.monotonic()
    assert download("127.0.0.1", server, path="/", size=1000) == 0
    assert time.monotonic() - t0 < 0.25  # did not wait for the server's close
    assert 0.2 < download("127.0.0.1", server, path="/", size=1000, to_eof=True) < 2


@pytest.mark.parametrize(("path", "size", "message"), [
    ("/missing", None, "404 Not Found"),
    ("/", 999, "1000 body bytes (want 999)"),
    ("/short", 2000, "1000 body bytes (want 2000)"),
])
def test_download_refuses_a_wrong_answer(server: int, path: str, size: int | None, message: str) -> None:
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        download("127.0.0.1", server, path=path, size=size)
