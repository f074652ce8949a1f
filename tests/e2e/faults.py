"""What the fault suite (tests/e2e/test_faults_*.py) shares: an event recorder that outlives an API
server restart, the rollout invariants replayed from its events, a TCP relay that cuts a component
off the API server, and the log of measured convergence times.

Data flow: ``EventRecorder(url, path)`` watches a collection in a thread from a listed
resourceVersion, reconnecting from the last one it saw when the stream breaks (an API server
killed) and relisting on 410, exactly as an informer does; ``stop()`` returns the initial list and
the events (a relist appears as one ``("RELIST", {"items": [...]})`` entry). ``rollout_violations``
replays those events into pod states and names every moment a pod changed nodes (bound twice) or
more than ``replicas + max_surge`` pods were alive. ``Relay`` forwards 127.0.0.1:<port> to a target
until ``cut()`` (every connection closed, new ones refused at once) and again after ``heal()``.
``record(fault, seconds)`` prints ``FAULT <name>: <seconds> s`` (run with ``-s`` to see them) and
appends it to the file ``$MINIK8S_FAULT_TIMES`` when set: docs/faults.md is written from those.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import httpx

Event = tuple[str, dict[str, Any]]


class EventRecorder:
    """Every event of one collection (``/api/v1/namespaces/NS/pods``) from a list on, across restarts."""

    def __init__(self, url: str, path: str) -> None:
        self.url, self.path = url, path
        self.events: list[Event] = []
        self.reconnects = 0
        with httpx.Client(base_url=url, timeout=30) as c:
            listed = c.get(path).json()
        self.initial = list(listed["items"])
        self._rv = listed["metadata"]["resourceVersion"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with httpx.Client(base_url=self.url, timeout=httpx.Timeout(30, read=5)) as c:
                    with c.stream("GET", self.path, params={"watch": "1", "resourceVersion": self._rv,
                                                            "allowWatchBookmarks": "true"}) as r:
                        if r.status_code == 410:
                            self._relist(c)
                            continue
                        for line in r.iter_lines():
                            if self._stop.is_set():
                                return
                            if line:
                                self._event(json.loads(line), c)
            except (httpx.HTTPError, OSError, ValueError):
                pass  # the API server went away, the idle read timed out or a line was cut: watch again
            if not self._stop.is_set():
                self.reconnects += 1
                time.sleep(0.2)

    def _event(self, ev: dict[str, Any], c: httpx.Client) -> None:
        obj = ev.get("object") or {}
        if ev.get("type") == "ERROR":
            if obj.get("code") == 410:
                self._relist(c)
            return
        self._rv = (obj.get("metadata") or {}).get("resourceVersion") or self._rv
        if ev.get("type") != "BOOKMARK":
            self.events.append((str(ev["type"]), obj))

    def _relist(self, c: httpx.Client) -> None:
        # A 410 can come while the API server's storage is away: its list then answers 503; retry
        # (a failed list must not end the recorder: its thread would stop seeing anything).
        while not self._stop.is_set():
            r = c.get(self.path)
            if r.status_code == 200:
                listed = r.json()
                self._rv = listed["metadata"]["resourceVersion"]
                self.events.append(("RELIST", {"items": listed["items"]}))
                return
            time.sleep(0.2)

    def stop(self, settle: float = 1.0) -> list[Event]:
        time.sleep(settle)  # the last events in flight
        self._stop.set()
        self._thread.join(10)
        return list(self.events)


def rollout_violations(initial: list[dict[str, Any]], events: list[Event], *, replicas: int,
                       max_surge: int) -> tuple[list[str], int]:
    """(what broke the rules, the most pods alive at once) replaying ``events`` over ``initial``."""
    state = {p["metadata"]["uid"]: p for p in initial}
    node_of: dict[str, str] = {}
    problems: list[str] = []
    most = 0

    def note(pod: dict[str, Any]) -> None:
        uid, node = pod["metadata"]["uid"], (pod.get("spec") or {}).get("nodeName") or ""
        if node and node_of.setdefault(uid, node) != node:
            problems.append(f"pod {pod['metadata']['name']} bound twice: {node_of[uid]} then {node}")

    for p in initial:
        note(p)
    for etype, obj in events:
        if etype == "RELIST":
            state = {p["metadata"]["uid"]: p for p in obj["items"]}
            for p in obj["items"]:
                note(p)
        elif etype == "DELETED":
            state.pop(obj["metadata"]["uid"], None)
        else:
            state[obj["metadata"]["uid"]] = obj
            note(obj)
        alive = [p for p in state.values() if not p["metadata"].get("deletionTimestamp")]
        most = max(most, len(alive))
        if len(alive) > replicas + max_surge:
            problems.append(f"{len(alive)} pods alive, more than replicas {replicas} + maxSurge {max_surge}")
    return problems, most


class Relay:
    """A TCP relay on 127.0.0.1 that a test can cut (a network partition) and heal."""

    def __init__(self, target: tuple[str, int] | None = None) -> None:
        self.target = target
        self._cut = threading.Event()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._cut.is_set() or self.target is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)  # a watch may stay silent for minutes
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def heal(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        self._server.close()


def record(fault: str, seconds: float) -> None:
    line = f"FAULT {fault}: {seconds:.1f} s"
    print(line)
    path = os.environ.get("MINIK8S_FAULT_TIMES")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
