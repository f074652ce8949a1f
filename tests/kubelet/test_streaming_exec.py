"""exec and attach through the kubelet's streaming handlers, against real Docker containers.

Pure parts first (the query's options, Docker's stdio frames); then one module-scoped pod (a
sandbox and containers made by the kubelet's runtime) behind ``streamharness``'s stand-in API
server, reached by real clients: raw WebSocket clients of every channel protocol, the real
``kubectl`` (exec, exec -i, exec -it in a pseudo-terminal with a resize, cp both ways, attach) and
the official Python client's ``stream()``.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Sequence

import aiohttp
import pytest

from kubelet.cri import STDERR, STDOUT, ContainerNotFound
from kubelet.dockerstdio import DockerFrames, hijack
from kubelet.runtime import DockerRuntime
from kubelet.streaming.channels import StreamOptions, parse_options
from machinery import remotecommand as rc

from tests.dockertest import docker_runtime, make_test_network
from tests.kubelet.streamharness import DockerStreamingContext, Harness, PodContainer, start_pod

KUBECTL = "/usr/bin/kubectl"

# ---------------------------------------------------------------------------------------------- pure


@pytest.mark.parametrize("query, expected", [
    ({"stdout": "true", "stderr": "true"}, StreamOptions(stdin=False, stdout=True, stderr=True, tty=False)),
    ({"stdin": "1", "stdout": "1", "tty": "1"}, StreamOptions(stdin=True, stdout=True, stderr=False, tty=True)),
    # a TTY has no separate stderr (the kubelet drops it)
    ({"stdout": "True", "stderr": "True", "tty": "true"}, StreamOptions(False, True, False, True)),
    ({"stdin": "t", "stdout": "false"}, StreamOptions(True, False, False, False)),
])
def test_parse_options(query: dict[str, str], expected: StreamOptions) -> None:
    assert parse_options(query) == expected


@pytest.mark.parametrize("query", [{}, {"stdout": "0", "stderr": "no"}, {"tty": "true", "stderr": "true"}])
def test_parse_options_needs_a_stream(query: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="you must specify at least 1 of stdin, stdout, stderr"):
        parse_options(query)


def _frame(kind: int, data: bytes) -> bytes:
    return bytes([kind, 0, 0, 0]) + struct.pack(">I", len(data)) + data


@pytest.mark.parametrize("cut", [0, 3, 8, 9, 12, 20])
def test_docker_frames_survive_any_split(cut: int) -> None:
    raw = _frame(1, b"out") + _frame(2, b"err!") + _frame(1, b"") + _frame(1, b"more")
    frames = DockerFrames()
    got = frames.feed(raw[:cut]) + frames.feed(raw[cut:])
    merged: list[tuple[int, bytes]] = []
    for ch, data in got:  # a split may leave neighbouring chunks of one stream apart
        if merged and merged[-1][0] == ch:
            merged[-1] = (ch, merged[-1][1] + data)
        else:
            merged.append((ch, data))
    assert merged == [(STDOUT, b"out"), (STDERR, b"err!"), (STDOUT, b"more")]


# ---------------------------------------------------------------------------------- real containers

PRINTER = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"


class Pod:
    def __init__(self, harness: Harness, kubeconfig: Path, runtime: DockerRuntime, ids: dict[str, str]) -> None:
        self.harness = harness
        self.kubeconfig = kubeconfig
        self.runtime = runtime
        self.ids = ids
        self.env = dict(os.environ, KUBECONFIG=str(kubeconfig), KUBECACHEDIR=str(kubeconfig.parent / "cache"))

    def kubectl(self, *args: str, input: bytes | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([KUBECTL, *args], input=input, env=self.env, capture_output=True, timeout=timeout)

    def ws_url(self, what: str, query: str, pod: str = "web") -> str:
        return f"{self.harness.url.replace('http', 'ws', 1)}/api/v1/namespaces/default/pods/{pod}/{what}?{query}"


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    labels = {"minik8s.test": "streaming-exec-" + uuid.uuid4().hex[:8]}
    for runtime in docker_runtime(labels):
        net = make_test_network(runtime, f"mk8s-h2-exec-{uuid.uuid4().hex[:6]}", labels)
        try:
            p = start_pod(runtime, network=net.name, namespace="default", name="web", labels=labels, containers=[
                PodContainer("main", ["sleep", "3600"]),
                PodContainer("printer", ["sh", "-c", PRINTER]),
                PodContainer("reader", ["sh", "-c", "while read l; do echo got $l; done; sleep 3600"], stdin=True),
                PodContainer("tty", ["sh"], stdin=True, tty=True),
                PodContainer("once", ["sh", "-c", "read x; echo bye $x"], stdin=True)])
            ctx = DockerStreamingContext(runtime)
            ctx.add(p)
            harness = Harness(ctx).start()
            try:
                yield Pod(harness, harness.kubeconfig(tmp_path_factory.mktemp("kube") / "config"), runtime, p.ids)
            finally:
                harness.stop()
        finally:
            for c in runtime.list(labels):
                runtime.remove(c.id)
            runtime.remove_network(net.name)


async def _session(url: str, protocol: str | None, *, send: Sequence[bytes | str] = (),
                   timeout: float = 15) -> tuple[Any, dict[int, bytes], bytes | None, str | None]:
    """Runs one WebSocket session: sends ``send`` once connected, collects every channel until the
    server closes. (first message, channel -> bytes, error channel payload, chosen protocol)."""
    channels: dict[int, bytes] = {}
    first = None
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=(protocol,) if protocol else (),
                                   timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
            for m in send:
                await (ws.send_str(m) if isinstance(m, str) else ws.send_bytes(m))
            async with asyncio.timeout(timeout):
                async for msg in ws:
                    if msg.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                        continue
                    if first is None:
                        first = msg.data
                    ch, data = rc.decode(protocol, msg.data)
                    channels[ch] = channels.get(ch, b"") + data
            chosen = ws.protocol
    return first, channels, channels.get(rc.ERROR), chosen


async def _read_until(ws: aiohttp.ClientWebSocketResponse, protocol: str, needle: bytes, timeout: float = 10) -> bytes:
    out = b""
    async with asyncio.timeout(timeout):
        while needle not in out:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            ch, data = rc.decode(protocol, msg.data)
            out += data if ch == rc.STDOUT else b""
    return out


@pytest.mark.parametrize("protocol", [rc.V5, rc.V4, rc.V4_BASE64, rc.V1, rc.V1_BASE64, None])
async def test_exec_streams_and_exit_code_per_protocol(pod: Pod, protocol: str | None) -> None:
    url = pod.ws_url("exec", "container=main&command=sh&command=-c&command=echo+out;+echo+err+>%262;+exit+3"
                             "&stdout=true&stderr=true")
    first, channels, error, chosen = await _session(url, protocol)
    assert chosen == protocol
    assert first == rc.encode(protocol, rc.STDOUT, b"")  # "connected": empty message on stdout
    assert channels[rc.STDOUT] == b"out\n" and channels[rc.STDERR] == b"err\n"
    assert rc.exit_code_of(protocol, error) == (3 if rc.status_is_json(protocol) else 1)
    assert "exit code 3" in rc.status_message(protocol, error)
    if rc.status_is_json(protocol):
        status = json.loads(error or b"")
        assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"] == [
            {"reason": "ExitCode", "message": "3"}]


async def test_exec_success_status_v4(pod: Pod) -> None:
    _, channels, error, _ = await _session(pod.ws_url("exec", "container=main&command=true&stdout=1"), rc.V4)
    assert json.loads(error or b"") == {"metadata": {}, "status": "Success"}
    _, _, error, _ = await _session(pod.ws_url("exec", "container=main&command=true&stdout=1"), rc.V1)
    assert error is None  # the older protocols say nothing on success


async def test_tty_exec_starts_sized_and_keeps_stdin_sent_before_the_size(pod: Pod) -> None:
    url = pod.ws_url("exec", "container=main&command=sh&command=-c&command=read+x;+stty+size;+echo+got+$x"
                             "&stdin=1&stdout=1&tty=1")
    _, channels, error, _ = await _session(url, rc.V5, send=[
        rc.encode(rc.V5, rc.STDIN, b"hi\n"), rc.encode(rc.V5, rc.RESIZE, rc.encode_resize(rc.TerminalSize(50, 20)))])
    assert b"20 50\r\ngot hi\r\n" in channels[rc.STDOUT]
    assert rc.exit_code_of(rc.V5, error) == 0


async def test_v5_close_of_stdin_ends_cat(pod: Pod) -> None:
    data = os.urandom(100_000)
    url = pod.ws_url("exec", "container=main&command=sh&command=-c&command=cat+|+wc+-c&stdin=true&stdout=true")
    _, channels, error, _ = await _session(url, rc.V5, send=[rc.encode(rc.V5, rc.STDIN, data[:60_000]),
                                                         rc.encode(rc.V5, rc.STDIN, data[60_000:]),
                                                         rc.close_message(rc.V5, rc.STDIN)])
    assert channels[rc.STDOUT].strip() == b"100000"
    assert rc.exit_code_of(rc.V5, error) == 0


async def test_attach_with_stdin_to_a_container_that_reads(pod: Pod) -> None:
    url = pod.ws_url("attach", "container=reader&stdin=true&stdout=true&stderr=true")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=(rc.V5,)) as ws:
            await ws.send_bytes(rc.encode(rc.V5, rc.STDIN, b"hello\n"))
            await _read_until(ws, rc.V5, b"got hello")
    assert pod.runtime.inspect(pod.ids["reader"]).running  # leaving the attach leaves the container


async def test_attach_ends_with_success_when_the_container_ends(pod: Pod) -> None:
    url = pod.ws_url("attach", "container=once&stdin=1&stdout=1&stderr=1")
    _, channels, error, _ = await _session(url, rc.V4, send=[rc.encode(rc.V4, rc.STDIN, b"now\n")])
    assert channels[rc.STDOUT] == b"bye now\n"
    assert json.loads(error or b"") == rc.success_status()


async def test_client_leaving_closes_the_exec(pod: Pod) -> None:
    flag = f"/tmp/left-{uuid.uuid4().hex[:6]}"
    url = pod.ws_url("exec", f"container=main&command=sh&command=-c&command=cat;+touch+{flag}&stdin=1&stdout=1")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=(rc.V4,)) as ws:
            await ws.send_bytes(rc.encode(rc.V4, rc.STDIN, b"x\n"))
            msg = await ws.receive(timeout=10)
            while rc.decode(rc.V4, msg.data) != (rc.STDOUT, b"x\n"):
                msg = await ws.receive(timeout=10)
    # v4 has no close channel: leaving is what ends stdin, so cat ends and the shell goes on
    deadline = time.monotonic() + 10
    while pod.runtime.exec(pod.ids["main"], ["test", "-e", flag]).exit_code != 0:
        assert time.monotonic() < deadline, "the exec's stdin was not closed when the client left"
        await asyncio.sleep(0.1)


async def test_tty_exec_shell_ends_when_the_client_leaves(pod: Pod) -> None:
    pidfile = f"/tmp/sh-{uuid.uuid4().hex[:6]}"
    url = pod.ws_url("exec", "container=main&command=sh&stdin=1&stdout=1&tty=1")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=(rc.V5,)) as ws:
            await ws.send_bytes(rc.encode(rc.V5, rc.STDIN, f"echo $$ > {pidfile}; echo wr''itten\n".encode()))
            await _read_until(ws, rc.V5, b"written")
    check = ["sh", "-c", f"kill -0 $(cat {pidfile})"]
    deadline = time.monotonic() + 10
    while pod.runtime.exec(pod.ids["main"], check).exit_code == 0:
        assert time.monotonic() < deadline, "the interactive shell outlived its client"
        await asyncio.sleep(0.1)


async def test_attach_to_a_tty_container_resizes_it(pod: Pod) -> None:
    url = pod.ws_url("attach", "container=tty&stdin=1&stdout=1&tty=1")
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=(rc.V5,)) as ws:
            await ws.send_bytes(rc.encode(rc.V5, rc.RESIZE, rc.encode_resize(rc.TerminalSize(77, 33))))
            await ws.send_bytes(rc.encode(rc.V5, rc.STDIN, b"stty size\n"))
            await _read_until(ws, rc.V5, b"33 77")
    assert pod.runtime.inspect(pod.ids["tty"]).running


@pytest.mark.parametrize("path, status, text", [
    ("exec?container=main&stdout=1", 400, "you must specify at least 1 command"),
    ("exec?container=main&command=ls", 400, "you must specify at least 1 of stdin, stdout, stderr"),
    ("attach?container=main", 400, "you must specify at least 1 of stdin, stdout, stderr"),
    ("exec?container=nope&command=ls&stdout=1", 404, "container nope is not valid"),
])
async def test_bad_requests_before_the_upgrade(pod: Pod, path: str, status: int, text: str) -> None:
    url = f"{pod.harness.url}/api/v1/namespaces/default/pods/web/{path}"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as e:
            await http.ws_connect(url, protocols=(rc.V5,))
        assert e.value.status == status
        async with http.get(url) as plain:  # no upgrade at all
            assert plain.status == 400
            if status == 404:
                assert await plain.text() == "Upgrade request required"
            else:
                assert text in await plain.text()


def test_engine_errors_are_typed(pod: Pod) -> None:
    with pytest.raises(ContainerNotFound, match="No such exec instance"):
        hijack(pod.runtime.base_url, "/v1.41/exec/nosuchexec/start", body={"Detach": False, "Tty": False},
               what="exec", timeout=5)
    with pytest.raises(ContainerNotFound):
        pod.runtime.attach_stream("nosuchcontainer", stdin=False, stdout=True, stderr=True)


def test_kubectl_exec(pod: Pod) -> None:
    r = pod.kubectl("exec", "web", "-c", "main", "--", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr
    r = pod.kubectl("exec", "web", "-c", "main", "--", "sh", "-c", "echo oops >&2; exit 3")
    # kubectl 1.32 may log "Unknown stream id 1, discarding message": the server's empty hello on
    # stdout raced its stream set-up (client-go fixed it later; a real API server sends it too).
    stderr = b"".join(line for line in r.stderr.splitlines(keepends=True) if not re.match(rb"[EWI]\d{4} ", line))
    assert r.returncode == 3 and stderr == b"oops\ncommand terminated with exit code 3\n", r.stderr
    r = pod.kubectl("exec", "-i", "web", "-c", "main", "--", "cat", input=b"one\ntwo\n")
    assert (r.returncode, r.stdout) == (0, b"one\ntwo\n"), r.stderr
    r = pod.kubectl("exec", "web", "-c", "main", "--", "nosuchcmd")
    assert r.returncode != 0 and b"nosuchcmd" in r.stdout + r.stderr


class Terminal:
    """kubectl on a pseudo-terminal of its own (its controlling terminal, so a resize reaches it)."""

    def __init__(self, args: list[str], env: dict[str, str], *, rows: int, cols: int) -> None:
        self.master, slave = pty.openpty()
        self.resize(rows, cols, fd=slave)
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True,
                                     preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
        os.close(slave)
        self.out = b""

    def resize(self, rows: int, cols: int, *, fd: int | None = None) -> None:
        fcntl.ioctl(self.master if fd is None else fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def expect(self, pattern: bytes, timeout: float = 10) -> re.Match[bytes]:
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.out)
            if m:
                self.out = self.out[m.end():]
                return m
            left = deadline - time.monotonic()
            assert left > 0, f"no {pattern!r} in {self.out[-500:]!r}"
            if select.select([self.master], [], [], min(left, 0.5))[0]:
                try:
                    self.out += os.read(self.master, 65536)
                except OSError:  # the terminal closed: kubectl ended
                    assert re.search(pattern, self.out), f"no {pattern!r} in {self.out[-500:]!r}"

    def send(self, text: bytes) -> None:
        os.write(self.master, text)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)


def _shell_sees_size(term: Terminal, rows: int, cols: int, timeout: float = 15) -> None:
    """Asks the shell for its terminal's size until it is rows x cols (a resize travels
    asynchronously; kubectl attach even sends size+1 first to force a redraw)."""
    deadline = time.monotonic() + timeout
    while True:
        term.send(b"stty size; echo ma''rk\r")
        # "stty: standard input": the first size is still on its way (Docker sizes an exec after its start)
        size = term.expect(rb"(?:(\d+) (\d+)|stty: [^\r\n]*)\r\nmark",
                           timeout=max(1.0, deadline - time.monotonic())).groups()
        if size == (str(rows).encode(), str(cols).encode()):
            return
        assert time.monotonic() < deadline, f"the shell still sees {size}"
        time.sleep(0.2)


def test_kubectl_exec_tty_sees_resize(pod: Pod) -> None:
    term = Terminal([KUBECTL, "exec", "-it", "web", "-c", "main", "--", "sh"], pod.env, rows=30, cols=100)
    try:
        _shell_sees_size(term, 30, 100)
        term.resize(40, 120)  # SIGWINCH to kubectl -> the resize channel -> Docker's exec resize
        _shell_sees_size(term, 40, 120)
        term.send(b"exit 7\r")
        assert term.proc.wait(10) == 7
    finally:
        term.close()


def test_kubectl_attach_tty(pod: Pod) -> None:
    term = Terminal([KUBECTL, "attach", "-it", "web", "-c", "tty"], pod.env, rows=21, cols=91)
    try:
        _shell_sees_size(term, 21, 91)
    finally:
        term.close()  # kills kubectl: the container goes on
    assert pod.runtime.inspect(pod.ids["tty"]).running


def test_kubectl_cp_both_ways(pod: Pod, tmp_path: Path) -> None:
    data = os.urandom(200_000)
    src, back = tmp_path / "blob.bin", tmp_path / "back.bin"
    src.write_bytes(data)
    r = pod.kubectl("cp", str(src), "default/web:/tmp/blob.bin", "-c", "main")
    assert r.returncode == 0, r.stderr
    r = pod.kubectl("cp", "default/web:/tmp/blob.bin", str(back), "-c", "main")
    assert r.returncode == 0, r.stderr
    assert back.read_bytes() == data


def test_kubectl_attach_shows_lines_and_leaves_the_container_running(pod: Pod) -> None:
    proc = subprocess.Popen([KUBECTL, "attach", "web", "-c", "printer"], env=pod.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        numbers = [int(m.group(1)) for m in (re.match(rb"line (\d+)\n", x) for x in lines) if m]
        assert len(numbers) == 3 and numbers == list(range(numbers[0], numbers[0] + 3)), lines
        assert numbers[0] > 0 or proc.poll() is None
    finally:
        proc.kill()
        proc.wait(5)
    time.sleep(0.5)
    assert pod.runtime.inspect(pod.ids["printer"]).running


@pytest.mark.timeout(60)
def test_official_client_stream(pod: Pod) -> None:
    from kubernetes import client
    from kubernetes.stream import stream

    cfg = client.Configuration(host=pod.harness.url)
    api = client.CoreV1Api(client.ApiClient(cfg))
    out = stream(api.connect_get_namespaced_pod_exec, "web", "default", container="main",
                 command=["sh", "-c", "echo hi; echo there >&2"], stderr=True, stdin=False, stdout=True, tty=False)
    assert sorted(out.splitlines()) == ["hi", "there"]  # stdout and stderr, in no fixed order
    resp = stream(api.connect_get_namespaced_pod_exec, "web", "default", container="main",
                  command=["sh", "-c", "read x; echo got $x; exit 5"], stderr=True, stdin=True, stdout=True,
                  tty=False, _preload_content=False)
    resp.write_stdin("abc\n")
    resp.run_forever(timeout=10)
    assert resp.read_stdout() == "got abc\n"
    assert resp.returncode == 5
    resp.close()
