"""mkctl exec, attach, cp and port-forward through typer's runner against the in-test stream server
(test_streamclient.FakeStreamServer), and their pure rules (arguments, containers, pods, ports, paths)."""

from __future__ import annotations

import asyncio
import io
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from cli.mkctl import app
from cli.mkctl.cp import extract_command, make_tar, parse_file_spec, strip_path_shortcuts, untar_all, FileSpec
from cli.mkctl.exec import (DASH, choose_container, exec_target_and_command, first_active, selector_of, setup_tty)
from cli.mkctl.portforward import Forward, parse_addresses, parse_forwards, pod_ports, run_port_forward, service_ports
from cli.mkctl.session import CliError, GlobalOptions, make_session
from tests.cli.test_streamclient import TOKEN, FakeStreamServer, pod

runner = CliRunner()


@pytest.fixture(scope="module")
def fake() -> Any:
    server = FakeStreamServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kubeconfig(fake: FakeStreamServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("mkexec") / "config"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "{fake.url}"}}}}]
users: [{{name: u, user: {{token: {TOKEN}}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u, namespace: default}}}}]
current-context: x
""")
    return str(path)


def mk(kubeconfig: str, *args: str, input: str | bytes | None = None) -> Result:
    return runner.invoke(app, ["--kubeconfig", kubeconfig, *args], input=input)


def last_query(fake: FakeStreamServer) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in fake.requests[-1][1]:
        out.setdefault(k, []).append(v)
    return out


# ---------------------------------------------------------------------------- exec / attach
def test_exec_echo(fake: FakeStreamServer, kubeconfig: str) -> None:
    before = fake.discoveries
    r = mk(kubeconfig, "exec", "web", "--", "echo", "hi")
    assert (r.exit_code, r.stdout, r.stderr) == (0, "hi\n", "")
    assert fake.discoveries == before  # a pod name needs no discovery


def test_exec_exit_code(fake: FakeStreamServer, kubeconfig: str) -> None:
    r = mk(kubeconfig, "exec", "web", "--", "sh", "-c", "exit 3")
    assert r.exit_code == 3
    assert r.stderr == "oops\ncommand terminated with exit code 3\n"


def test_exec_stdin_and_tty_without_terminal(fake: FakeStreamServer, kubeconfig: str) -> None:
    r = mk(kubeconfig, "exec", "-it", "web", "--", "cat", input="line one\nline two\n")
    assert r.exit_code == 0, r.output
    assert r.stdout == "line one\nline two\n"
    assert r.stderr == "Unable to use a TTY - input is not a terminal or the right kind of file\n"
    assert last_query(fake)["stdin"] == ["true"] and "tty" not in last_query(fake)


def test_exec_defaulted_container(fake: FakeStreamServer, kubeconfig: str) -> None:
    r = mk(kubeconfig, "exec", "multi", "--", "echo", "x")
    assert r.exit_code == 0 and r.stderr == 'Defaulted container "a" out of: a, b\n'
    assert last_query(fake)["container"] == ["a"]
    r = mk(kubeconfig, "exec", "annotated", "-q", "--", "echo", "x")
    assert r.exit_code == 0 and r.stderr == "" and last_query(fake)["container"] == ["b"]


def test_exec_type_name_picks_the_most_active_pod(fake: FakeStreamServer, kubeconfig: str) -> None:
    for target in ("deploy/web", "svc/web"):
        r = mk(kubeconfig, "exec", target, "--", "echo", "x")
        assert r.exit_code == 0, r.output
        assert fake.requests[-1][0] == "/api/v1/namespaces/default/pods/app-best/exec"


@pytest.mark.parametrize("args,message", [
    (["exec", "nope", "--", "ls"], 'Error from server (NotFound): pods "nope" not found'),
    (["exec", "done", "--", "ls"], "error: cannot exec into a container in a completed pod; current phase is Succeeded"),
    (["exec", "multi", "-c", "zz", "--", "ls"], "error: container zz is not valid for pod multi out of: a, b"),
    (["exec", "web", "--", "fail"], "error: container not running"),
    (["exec", "waiting", "--", "ls"], 'error: unable to upgrade connection: container "main" in pod "waiting" is '
                                      'waiting to start: ContainerCreating'),
    (["exec", "cm/x", "--", "ls"], 'Error from server (NotFound): configmaps "x" not found'),
    (["attach", "a", "b", "c"], "error: expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw 3: [a b c]"),
])
def test_errors(fake: FakeStreamServer, kubeconfig: str, args: list[str], message: str) -> None:
    r = mk(kubeconfig, *args)
    assert r.exit_code == 1 and r.stderr.strip().endswith(message), r.output


def test_attach(fake: FakeStreamServer, kubeconfig: str) -> None:
    r = mk(kubeconfig, "attach", "web")
    assert (r.exit_code, r.stdout) == (0, "attached\n")
    assert r.stderr == "If you don't see a command prompt, try pressing enter.\n"
    assert fake.requests[-1][0].endswith("/pods/web/attach")
    assert last_query(fake) == {"container": ["main"], "stdout": ["true"], "stderr": ["true"]}


@pytest.mark.parametrize("args,expected", [
    (["web", DASH, "ls", "-l"], ("web", ["ls", "-l"])),
    (["deploy/web", DASH, "sh"], ("deploy/web", ["sh"])),
])
def test_exec_arguments(args: list[str], expected: tuple[str, list[str]]) -> None:
    assert exec_target_and_command(args) == expected


@pytest.mark.parametrize("args,message", [
    (["web", "ls"], "exec [POD] [COMMAND] is not supported anymore"),
    (["web"], "you must specify at least one command for the container"),
    ([DASH, "ls"], "expected 'exec (POD | TYPE/NAME)"),
    (["web", DASH], "you must specify at least one command for the container"),
])
def test_exec_argument_errors(args: list[str], message: str) -> None:
    with pytest.raises(CliError, match=re.escape(message)):
        exec_target_and_command(args)


@pytest.mark.parametrize("stdin,tty,terminal,quiet,expected", [
    (False, True, True, False, (False, False, None)),
    (True, True, False, False, (True, False, "Unable to use a TTY - input is not a terminal or the right kind of file")),
    (True, True, False, True, (True, False, None)),
    (True, True, True, False, (True, True, None)),
    (True, False, True, False, (True, False, None)),
])
def test_setup_tty(stdin: bool, tty: bool, terminal: bool, quiet: bool, expected: tuple[Any, ...]) -> None:
    plan = setup_tty(stdin=stdin, tty=tty, stdin_is_terminal=terminal, quiet=quiet)
    assert (plan.stdin, plan.tty, plan.warning) == expected


def test_choose_container_and_pod_order() -> None:
    init = pod("p")
    init["spec"]["initContainers"] = [{"name": "setup"}]
    assert choose_container(init, None)[1] == 'Defaulted container "main" out of: main, setup (init)'
    assert choose_container(pod("p"), None) == ({"name": "main", "image": "x", "ports": []}, None)
    unscheduled, pending, running_new = pod("u"), pod("pe", phase="Pending"), pod("rn")
    unscheduled["spec"]["nodeName"] = ""
    running_new["metadata"]["creationTimestamp"] = "2026-02-01T00:00:00Z"
    oldest = pod("ro")
    assert first_active([unscheduled, pending, running_new, oldest])["metadata"]["name"] == "ro"
    assert first_active([pod("nr", ready=False), pending])["metadata"]["name"] == "nr"
    assert first_active([]) is None


@pytest.mark.parametrize("obj,expected", [
    ({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"selector": {"matchLabels": {"b": "2", "a": "1"}}}}, "a=1,b=2"),
    ({"kind": "Service", "apiVersion": "v1", "spec": {"selector": {"app": "x"}}}, "app=x"),
    ({"kind": "ReplicationController", "apiVersion": "v1", "spec": {"selector": {"app": "y"}}}, "app=y"),
])
def test_selector_of(obj: dict[str, Any], expected: str) -> None:
    assert selector_of(obj) == expected


@pytest.mark.parametrize("obj,message", [
    ({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "s"}, "spec": {}},
     "invalid service 's': Service is defined without a selector"),
    ({"kind": "ConfigMap", "apiVersion": "v1"}, "cannot attach to *v1.ConfigMap: selector for *v1.ConfigMap not implemented"),
])
def test_selector_errors(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(CliError, match=re.escape(message)):
        selector_of(obj)


# ---------------------------------------------------------------------------- cp
def tar_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_cp_into_a_pod_directory(fake: FakeStreamServer, kubeconfig: str, tmp_path: Path) -> None:
    src = tmp_path / "data.bin"
    src.write_bytes(bytes(range(256)) * 100)
    fake.received.clear()
    r = mk(kubeconfig, "cp", str(src), "web:/tmp")
    assert r.exit_code == 0, r.output
    assert last_query(fake)["command"] == ["tar", "-xmf", "-", "-C", "/tmp"]
    with tarfile.open(fileobj=io.BytesIO(fake.received[-1])) as tar:
        assert tar.getnames() == ["data.bin"]
        assert tar.extractfile("data.bin").read() == src.read_bytes()  # type: ignore[union-attr]


def test_cp_out_of_a_pod(fake: FakeStreamServer, kubeconfig: str, tmp_path: Path) -> None:
    fake.tar_out = tar_of({"tmp/dir/a.txt": b"A", "tmp/dir/sub/b.txt": b"B"})
    try:
        r = mk(kubeconfig, "cp", "default/web:/tmp/dir", str(tmp_path / "out"))
        assert r.exit_code == 0, r.output
        assert last_query(fake)["command"] == ["tar", "cf", "-", "/tmp/dir"]
        assert (tmp_path / "out/a.txt").read_bytes() == b"A" and (tmp_path / "out/sub/b.txt").read_bytes() == b"B"
        fake.tar_out = tar_of({"tmp/blob": b"x"})
        r = mk(kubeconfig, "cp", "web:/tmp/blob", str(tmp_path))  # a file onto a directory: Go's open error
        assert (r.exit_code, r.stderr) == (1, f"error: open {tmp_path}: is a directory\n")
    finally:
        fake.tar_out = b""
    r = mk(kubeconfig, "cp", "web:/nope", str(tmp_path / "x"))
    assert r.exit_code == 1 and "tar: /nope: No such file or directory" in r.stdout
    assert r.stderr == "command terminated with exit code 1\n"


@pytest.mark.parametrize("args,message", [
    (["web:/a", "web:/b"], "error: one of src or dest must be a local file specification"),
    (["/a", "/b"], "error: one of src or dest must be a remote file specification"),
    (["web:", "/b"], "error: filepath can not be empty"),
    ([":x", "/b"], "error: filespec must match the canonical format: [[namespace/]pod:]file/path"),
    (["/does/not/exist", "web:/tmp"], "error: /does/not/exist doesn't exist in local filesystem"),
    (["only-one"], "error: source and destination are required"),
])
def test_cp_errors(fake: FakeStreamServer, kubeconfig: str, args: list[str], message: str) -> None:
    r = mk(kubeconfig, "cp", *args)
    assert r.exit_code == 1 and r.stderr.strip() == message, r.output


@pytest.mark.parametrize("arg,expected", [
    ("/tmp/x/", FileSpec("/tmp/x")), ("pod:/a/b", FileSpec("/a/b", pod="pod")),
    ("ns/pod:c", FileSpec("c", pod="pod", namespace="ns")),
])
def test_parse_file_spec(arg: str, expected: FileSpec) -> None:
    assert parse_file_spec(arg) == expected


@pytest.mark.parametrize("path,expected", [("../../a", "a"), ("..", ""), ("/x/y", "x/y"), ("a/../b", "a/../b")])
def test_strip_path_shortcuts(path: str, expected: str) -> None:
    assert strip_path_shortcuts(path) == expected


def test_tar_names_and_extraction(tmp_path: Path) -> None:
    (tmp_path / "d/e").mkdir(parents=True)
    (tmp_path / "d/f.txt").write_text("f")
    with tarfile.open(fileobj=io.BytesIO(make_tar(str(tmp_path / "d"), "/remote/new"))) as tar:
        assert sorted(tar.getnames()) == ["new/e", "new/f.txt"]
    assert extract_command("/remote/new", no_preserve=True) == [
        "tar", "--no-same-permissions", "--no-same-owner", "-xmf", "-", "-C", "/remote"]
    evil = tar_of({"tmp/x/../../../escape": b"no", "tmp/x/ok": b"ok"})
    warnings = untar_all(evil, prefix="tmp/x", dest=str(tmp_path / "o"), namespace="n", pod="p", src="/tmp/x")
    assert (tmp_path / "o/ok").read_bytes() == b"ok" and not (tmp_path / "escape").exists()
    assert warnings and "is outside target destination, skipping" in warnings[0]
    with pytest.raises(CliError, match="tar contents corrupted"):
        untar_all(tar_of({"etc/passwd": b""}), prefix="tmp/x", dest=str(tmp_path), namespace="n", pod="p", src="/tmp/x")


# ---------------------------------------------------------------------------- port-forward
@pytest.mark.parametrize("specs,expected", [
    (["8080"], [Forward(8080, 8080)]), (["18080:80", ":81"], [Forward(18080, 80), Forward(0, 81)]),
])
def test_parse_forwards(specs: list[str], expected: list[Forward]) -> None:
    assert parse_forwards(specs) == expected


@pytest.mark.parametrize("specs,message", [
    (["1:2:3"], "invalid port format '1:2:3'"), (["x:80"], "error parsing local port 'x'"),
    (["80:0"], "remote port must be > 0"), (["99999"], "value out of range"),
])
def test_parse_forward_errors(specs: list[str], message: str) -> None:
    with pytest.raises(CliError, match=re.escape(message)):
        parse_forwards(specs)


def test_service_and_pod_ports() -> None:
    target = pod("p", ports=[{"name": "http", "containerPort": 8080}])
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"name": "web", "port": 80, "targetPort": "http"},
                                                         {"port": 81, "targetPort": 9090}, {"port": 82}]}}
    assert service_ports(["web", "1000:81", "82"], svc, target) == ["80:8080", "1000:9090", "82"]
    assert pod_ports(["http", "9:http", "7"], target) == ["8080", "9:8080", "7"]
    with pytest.raises(CliError, match="Service s does not have a service port 83"):
        service_ports(["83"], svc, target)
    assert parse_addresses(["localhost"]) == [("127.0.0.1", True), ("::1", True)]
    with pytest.raises(CliError, match="foo is not a valid IP"):
        parse_addresses(["foo"])


async def test_port_forward(fake: FakeStreamServer, kubeconfig: str, capsys: pytest.CaptureFixture[str]) -> None:
    for target, spec in (("pod/web", ":8080"), ("svc/web", ":http")):
        session = make_session(GlobalOptions(kubeconfig=kubeconfig))
        stop = asyncio.Event()
        async with session.client:
            task = asyncio.create_task(run_port_forward(session, [target, spec], addresses=["127.0.0.1"], timeout=5,
                                                        stop=stop))
            port = 0
            for _ in range(200):
                m = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", capsys.readouterr().out)
                if m:
                    port = int(m.group(1))
                    break
                await asyncio.sleep(0.02)
            assert port, "no Forwarding line"

            async def request(i: int) -> bytes:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"req {i}\n".encode())
                answer = await asyncio.wait_for(reader.read(), 10)
                writer.close()
                return answer
            assert await asyncio.gather(*(request(i) for i in range(20))) == [f"REQ {i}\n".encode() for i in range(20)]
            stop.set()
            assert await asyncio.wait_for(task, 10) == 0
        assert fake.requests[-1][0].endswith(("/pods/web/portforward", "/pods/app-best/portforward"))


async def test_port_forward_goes_on_after_a_failed_connection(fake: FakeStreamServer, kubeconfig: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    session = make_session(GlobalOptions(kubeconfig=kubeconfig))
    stop = asyncio.Event()
    async with session.client:
        task = asyncio.create_task(run_port_forward(session, ["web", ":9999", ":8080"], addresses=["127.0.0.1"],
                                                    timeout=5, stop=stop))
        out = ""
        for _ in range(200):
            out += capsys.readouterr().out
            if out.count("Forwarding from") == 2:
                break
            await asyncio.sleep(0.02)
        ports = {int(r): int(loc) for loc, r in re.findall(r"127\.0\.0\.1:(\d+) -> (\d+)", out)}

        async def request(port: int) -> bytes:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping\n")
            answer = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return answer
        assert await request(ports[9999]) == b""
        assert await request(ports[8080]) == b"PING\n"
        stop.set()
        assert await asyncio.wait_for(task, 10) == 0
    captured = capsys.readouterr()
    assert f"Handling connection for {ports[8080]}" in out + captured.out
    assert (f"error: an error occurred forwarding {ports[9999]} -> 9999: connection refused to localhost:9999"
            in captured.err)
