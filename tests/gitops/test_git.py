"""gitops.git against real Git servers on loopback: file:// remotes, HTTP with basic auth, sshd.

- file://: fetch of a branch, a tag (lightweight and annotated), a commit SHA (with protocol v2,
  which serves any SHA, and protocol v0, which refuses and makes the mirror fall back to a full
  fetch), a rollback commit, a missing branch; the mirror is shallow; concurrent fetches of one
  mirror are serialized and those of different mirrors are not; ext:: and option-like URLs run
  nothing.
- A TCP listener that accepts and never answers (git://): the timeout kills git, whose
  connection then closes.
- ``git http-backend`` (a CGI program) behind a small http.server requiring basic auth. Plain
  HTTP is fine on loopback: what is checked is that the password reaches the server through the
  credential helper and nowhere else (argv, messages, repr, logs, files of the mirror).
- A real sshd (127.0.0.1, a generated host key, the authorized key in a temporary directory):
  the key is used, the host key is checked. Locally the SSH tests skip when sshd is missing or
  we are not root; with CI set they fail instead (.ci/run installs openssh-server).
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest

from gitops.git import Credentials, GitError, GitTimeout, Mirrors, Ref
from tests.gitops.gitrepo import PASSWORD, USER, GitHTTPServer, GitRepo, git

MAIN = Ref(branch="main")


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo.create(tmp_path)
    r.write("deploy/app.yaml", "kind: ConfigMap\n")
    r.commit("first")
    r.write("deploy/app.yaml", "kind: Secret\n")
    r.commit("second")
    return r


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where gitops.git makes its private temporary directories: it must leave none behind."""
    where = tmp_path / "scratch"
    where.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(where))
    return where


@pytest.fixture
def mirrors(tmp_path: Path, scratch: Path) -> Iterator[Mirrors]:
    yield Mirrors(tmp_path / "mirrors", default_timeout=30)
    assert list(scratch.iterdir()) == [], "a temporary directory with credentials was left behind"


def mirror_git(mirrors: Mirrors, url: str, ref: Ref, *args: str) -> str:
    return git(f"--git-dir={mirrors.mirror_path(url, ref)}", *args, cwd=mirrors.root)


async def content(mirrors: Mirrors, url: str, ref: Ref, sha: str, path: str) -> bytes:
    entries = {e.path: e for e in await mirrors.tree(url, ref, sha)}
    return (await mirrors.read_blobs(url, ref, [entries[path].sha]))[entries[path].sha]


# -- file:// --

async def test_fetch_a_branch_then_its_next_commit(repo: GitRepo, mirrors: Mirrors) -> None:
    sha = await mirrors.fetch(repo.url, MAIN)
    assert sha == repo.head()
    assert await content(mirrors, repo.url, MAIN, sha, "deploy/app.yaml") == b"kind: Secret\n"

    repo.write("deploy/app.yaml", "kind: Pod\n")
    newer = repo.commit()
    assert await mirrors.fetch(repo.url, MAIN) == newer != sha
    assert await content(mirrors, repo.url, MAIN, newer, "deploy/app.yaml") == b"kind: Pod\n"
    # The earlier commit stays readable while it is in the mirror.
    assert await content(mirrors, repo.url, MAIN, sha, "deploy/app.yaml") == b"kind: Secret\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the repository to another user")
async def test_a_repository_owned_by_another_user_is_fetched(repo: GitRepo, mirrors: Mirrors) -> None:
    # As under compose: the root reconciler reads a user's repository mounted at /repos; git
    # 2.39.4+ refuses it ("detected dubious ownership") unless it is trusted in a global config.
    head = repo.head()
    for path in [repo.root, *repo.root.rglob("*")]:
        os.lchown(path, 65534, 65534)
    assert await mirrors.fetch(repo.url, MAIN) == head


async def test_the_mirror_is_shallow_bare_and_keeps_no_url(repo: GitRepo, mirrors: Mirrors) -> None:
    await mirrors.fetch(repo.url, MAIN)
    assert mirror_git(mirrors, repo.url, MAIN, "rev-parse", "--is-shallow-repository") == "true"
    assert mirror_git(mirrors, repo.url, MAIN, "rev-parse", "--is-bare-repository") == "true"
    assert mirror_git(mirrors, repo.url, MAIN, "rev-list", "--count", "refs/gitops/head") == "1"
    assert mirror_git(mirrors, repo.url, MAIN, "for-each-ref", "refs/tags") == ""
    mirror = mirrors.mirror_path(repo.url, MAIN)
    assert str(repo.root) not in mirror.name
    for f in mirror.rglob("*"):
        if f.is_file() and f.parent.name != "objects" and "pack" not in f.parts:
            assert str(repo.root).encode() not in f.read_bytes(), f


async def test_fetch_tags(repo: GitRepo, mirrors: Mirrors) -> None:
    first = git("rev-parse", "HEAD~1", cwd=repo.root)
    git("tag", "v1", first, cwd=repo.root)
    git("tag", "-a", "v2", "-m", "release 2", cwd=repo.root)
    repo.write("later.yaml", "x: 1\n")
    repo.commit()

    assert await mirrors.fetch(repo.url, Ref(tag="v1")) == first
    # An annotated tag gives the commit it points to, not the tag object.
    assert await mirrors.fetch(repo.url, Ref(tag="v2")) == git("rev-parse", "HEAD~1", cwd=repo.root)
    assert mirror_git(mirrors, repo.url, Ref(tag="v2"), "for-each-ref", "refs/tags") == ""
    with pytest.raises(GitError) as info:
        await mirrors.fetch(repo.url, Ref(tag="v9"))
    assert str(info.value) == f"fetch {repo.url} (tag v9): couldn't find remote ref refs/tags/v9"


@pytest.mark.parametrize("protocol", ["2", "0"])
async def test_fetch_a_commit(repo: GitRepo, tmp_path: Path, scratch: Path, protocol: str,
                              caplog: pytest.LogCaptureFixture) -> None:
    """Protocol v2 serves any SHA; v0 refuses an unadvertised one and the mirror fetches it all."""
    caplog.set_level(logging.INFO, logger="gitops")
    mirrors = Mirrors(tmp_path / "mirrors", extra_config={"protocol.version": protocol})
    first = git("rev-parse", "HEAD~1", cwd=repo.root)
    ref = Ref(commit=first)
    assert await mirrors.fetch(repo.url, ref) == first
    assert await content(mirrors, repo.url, ref, first, "deploy/app.yaml") == b"kind: ConfigMap\n"
    assert ("refused a shallow fetch by SHA" in caplog.text) == (protocol == "0")

    with pytest.raises(GitError) as info:
        await mirrors.fetch(repo.url, Ref(commit="0" * 40))
    assert str(info.value).startswith(f"fetch {repo.url} (commit {'0' * 40}): ")


@pytest.mark.parametrize("protocol", ["2", "0"])
async def test_fetch_commit_brings_back_an_older_revision(repo: GitRepo, tmp_path: Path, scratch: Path,
                                                          protocol: str) -> None:
    mirrors = Mirrors(tmp_path / "mirrors", extra_config={"protocol.version": protocol})
    first = git("rev-parse", "HEAD~1", cwd=repo.root)
    assert await mirrors.fetch(repo.url, MAIN) == repo.head()
    with pytest.raises(GitError, match="is not in the mirror"):
        await mirrors.tree(repo.url, MAIN, first)

    await mirrors.fetch_commit(repo.url, MAIN, first)
    assert await content(mirrors, repo.url, MAIN, first, "deploy/app.yaml") == b"kind: ConfigMap\n"
    await mirrors.fetch_commit(repo.url, MAIN, first)  # already there: nothing to do
    # The branch's own ref did not move.
    assert mirror_git(mirrors, repo.url, MAIN, "rev-parse", "refs/gitops/head") == repo.head()


async def test_a_missing_branch_says_so(repo: GitRepo, mirrors: Mirrors) -> None:
    with pytest.raises(GitError) as info:
        await mirrors.fetch(repo.url, Ref(branch="nope"))
    assert str(info.value) == f"fetch {repo.url} (branch nope): couldn't find remote ref refs/heads/nope"


async def test_a_missing_repository_says_so(tmp_path: Path, mirrors: Mirrors) -> None:
    url = (tmp_path / "nothing-here").as_uri()
    with pytest.raises(GitError) as info:
        await mirrors.fetch(url, MAIN)
    message = str(info.value)
    assert message.startswith(f"fetch {url} (branch main): ") and "not appear to be a git repository" in message
    assert "\n" not in message


async def test_concurrent_fetches_of_one_mirror(repo: GitRepo, mirrors: Mirrors) -> None:
    results = await asyncio.gather(*(mirrors.fetch(repo.url, MAIN) for _ in range(10)), return_exceptions=True)
    assert results == [repo.head()] * 10


@pytest.mark.parametrize("url", [
    "ext::sh -c touch% {marker}",  # the ext transport runs a command: never allowed
    "--upload-pack=touch {marker}",  # an option, not a repository
    "-u touch {marker}",
])
async def test_urls_that_would_run_commands_run_nothing(url: str, tmp_path: Path, mirrors: Mirrors) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(GitError):
        await mirrors.fetch(url.format(marker=marker), MAIN)
    assert not marker.exists()


# -- timeouts --

@dataclass
class Silent:
    """A TCP listener that accepts and never answers; it notes when each client hangs up."""
    port: int
    connected: int = 0
    closed_at: list[float] | None = None


@pytest.fixture
async def silent() -> Any:
    state = Silent(port=0, closed_at=[])

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connected += 1
        while await reader.read(4096):
            pass  # git sends its request, then waits for an answer that never comes
        assert state.closed_at is not None
        state.closed_at.append(time.monotonic())
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    server.close()
    await server.wait_closed()


async def test_the_timeout_kills_git(silent: Silent, mirrors: Mirrors) -> None:
    url = f"git://127.0.0.1:{silent.port}/x.git"
    start = time.monotonic()
    with pytest.raises(GitTimeout) as info:
        await mirrors.fetch(url, MAIN, timeout=1)
    elapsed = time.monotonic() - start
    assert 1 <= elapsed < 2.5, elapsed
    assert str(info.value) == f"fetch {url} (branch main): timed out after 1s"
    # git is dead: its connection closed right away (a live git would hold it open).
    for _ in range(50):
        if silent.closed_at:
            break
        await asyncio.sleep(0.05)
    assert silent.connected == 1 and silent.closed_at and silent.closed_at[0] - start < 3


async def test_one_mirror_runs_one_git_at_a_time_and_mirrors_run_in_parallel(silent: Silent, mirrors: Mirrors) -> None:
    url = f"git://127.0.0.1:{silent.port}/x.git"
    start = time.monotonic()
    same = await asyncio.gather(mirrors.fetch(url, MAIN, timeout=1), mirrors.fetch(url, MAIN, timeout=1),
                                return_exceptions=True)
    serialized = time.monotonic() - start
    assert all(isinstance(r, GitTimeout) for r in same)
    assert serialized >= 2, serialized  # the second one waited for the first

    start = time.monotonic()
    different = await asyncio.gather(mirrors.fetch(url, Ref(branch="a"), timeout=1),
                                     mirrors.fetch(url, Ref(branch="b"), timeout=1), return_exceptions=True)
    parallel = time.monotonic() - start
    assert all(isinstance(r, GitTimeout) for r in different)
    assert parallel < 1.9, parallel


# -- HTTP with basic auth: git http-backend behind http.server --

@pytest.fixture
def http_repo(repo: GitRepo, tmp_path: Path) -> Iterator[tuple[str, GitHTTPServer]]:
    """(URL of the repository over HTTP on loopback, the server); plain HTTP is fine on loopback."""
    served = tmp_path / "served"
    served.mkdir()
    git("clone", "-q", "--bare", str(repo.root), str(served / "repo.git"), cwd=tmp_path)
    server = GitHTTPServer(served)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/repo.git", server
    server.shutdown()
    server.server_close()


def _leaks(text: str) -> list[str]:
    return [s for s in (PASSWORD, f"{USER}:{PASSWORD}", base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
            if s in text]


@pytest.fixture
def argv_spy(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every argv gitops.git starts a process with (what /proc shows to every user)."""
    seen: list[list[str]] = []
    real = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append([str(a) for a in args])
        return await real(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", spy)
    return seen


def _assert_no_secret_in_files(root: Path) -> None:
    for f in root.rglob("*"):
        if f.is_file():
            assert not _leaks(f.read_bytes().decode("latin-1")), f


async def test_http_basic_auth(repo: GitRepo, http_repo: tuple[str, GitHTTPServer], mirrors: Mirrors,
                               argv_spy: list[list[str]], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gitops")
    url, server = http_repo
    assert await mirrors.fetch(url, MAIN, credentials=Credentials(username=USER, password=PASSWORD)) == repo.head()
    assert server.authorization in server.authorizations  # the password did reach the server
    assert argv_spy and not any(_leaks(" ".join(argv)) for argv in argv_spy)
    assert not _leaks(caplog.text)
    _assert_no_secret_in_files(mirrors.root)


async def test_http_wrong_password(http_repo: tuple[str, GitHTTPServer], mirrors: Mirrors,
                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="gitops")
    url, _ = http_repo
    old_password = PASSWORD + "-old"
    wrong = Credentials(username=USER, password=old_password)
    with pytest.raises(GitError) as info:
        await mirrors.fetch(url, MAIN, credentials=wrong)
    assert str(info.value) == f"fetch {url} (branch main): authentication failed"
    for text in (str(info.value), repr(info.value), repr(wrong), caplog.text):
        assert not _leaks(text) and old_password not in text


async def test_http_without_credentials(http_repo: tuple[str, GitHTTPServer], mirrors: Mirrors) -> None:
    url, _ = http_repo
    with pytest.raises(GitError) as info:
        await mirrors.fetch(url, MAIN)
    assert str(info.value) == f"fetch {url} (branch main): authentication required: no credentials given"


async def test_http_credentials_in_the_url(repo: GitRepo, http_repo: tuple[str, GitHTTPServer], mirrors: Mirrors,
                                           argv_spy: list[list[str]], caplog: pytest.LogCaptureFixture) -> None:
    """A user:password@ in the URL works, and goes through the environment like Credentials."""
    caplog.set_level(logging.DEBUG, logger="gitops")
    url, _ = http_repo
    with_password = url.replace("http://", f"http://{USER}:{PASSWORD}@")
    assert await mirrors.fetch(with_password, MAIN) == repo.head()
    assert argv_spy and not any(_leaks(" ".join(argv)) for argv in argv_spy)

    wrong = url.replace("http://", f"http://{USER}:not-{PASSWORD}@")
    with pytest.raises(GitError) as info:
        await mirrors.fetch(wrong, MAIN)
    shown = url.replace("http://", "http://***@")
    assert str(info.value) == f"fetch {shown} (branch main): authentication failed"
    for text in (str(info.value), repr(info.value), caplog.text):
        assert not _leaks(text) and f"not-{PASSWORD}" not in text
    _assert_no_secret_in_files(mirrors.root)


# -- SSH: a real sshd on 127.0.0.1 --

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _keygen(path: Path) -> tuple[bytes, str]:
    """(private key, public key line) of a new ed25519 key."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)], check=True,
                   timeout=30)
    return path.read_bytes(), path.with_suffix(".pub").read_text().strip()


@dataclass
class Sshd:
    url: str
    known_hosts: bytes
    identity: bytes


@pytest.fixture
def sshd(repo: GitRepo, tmp_path: Path) -> Iterator[Sshd]:
    missing = None
    if not os.path.exists(SSHD) or not shutil.which("ssh"):
        missing = "sshd or ssh is not installed (apt-get install openssh-server)"
    elif os.geteuid() != 0:
        missing = "the sshd test runs sshd as root"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: .ci/run installs openssh-server and runs as root")
        pytest.skip(missing)
    # sshd insists on its privilege separation directory; Debian's service makes it at start.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    keys = tmp_path / "ssh"
    keys.mkdir()
    _keygen(keys / "host")
    identity, public = _keygen(keys / "client")
    (keys / "authorized_keys").write_text(public + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = keys / "sshd_config"
    config.write_text("\n".join([
        "ListenAddress 127.0.0.1", f"Port {port}", f"HostKey {keys / 'host'}",
        f"AuthorizedKeysFile {keys / 'authorized_keys'}", "StrictModes no", "UsePAM no",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
        "PidFile none", "LogLevel VERBOSE", ""]))
    log = keys / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while b"Server listening" not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, f"sshd did not start:\n{log.read_text()}"
            time.sleep(0.05)
        host_key = (keys / "host.pub").read_text().split()
        served = tmp_path / "served.git"
        git("clone", "-q", "--bare", str(repo.root), str(served), cwd=tmp_path)
        yield Sshd(url=f"ssh://{getpass.getuser()}@127.0.0.1:{port}{served}",
                   known_hosts=f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n".encode(), identity=identity)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_ssh_with_a_key_and_known_hosts(repo: GitRepo, sshd: Sshd, mirrors: Mirrors,
                                              argv_spy: list[list[str]]) -> None:
    credentials = Credentials(identity=sshd.identity, known_hosts=sshd.known_hosts)
    assert await mirrors.fetch(sshd.url, MAIN, credentials=credentials) == repo.head()
    assert "identity" not in repr(credentials) and "PRIVATE" not in repr(credentials)
    key_line = sshd.identity.decode().splitlines()[1]
    assert not any(key_line in " ".join(argv) for argv in argv_spy)


async def test_ssh_refuses_an_unknown_host_key(sshd: Sshd, mirrors: Mirrors, tmp_path: Path) -> None:
    _, other_host = _keygen(tmp_path / "other-host")
    port = urlsplit(sshd.url).port
    wrong_hosts = f"[127.0.0.1]:{port} {' '.join(other_host.split()[:2])}\n".encode()
    with pytest.raises(GitError) as info:
        await mirrors.fetch(sshd.url, MAIN, credentials=Credentials(identity=sshd.identity, known_hosts=wrong_hosts))
    assert str(info.value) == f"fetch {sshd.url} (branch main): host key verification failed (check known_hosts)"


async def test_ssh_refuses_a_host_missing_from_known_hosts(sshd: Sshd, mirrors: Mirrors) -> None:
    other = Credentials(identity=sshd.identity, known_hosts=b"[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"
                                                            b"Gk2ihE8BNxOe7kzHf5tQZq9N1mZ1XcDQeO6tZ6ZgLmq\n")
    with pytest.raises(GitError, match="host key verification failed"):
        await mirrors.fetch(sshd.url, MAIN, credentials=other)


async def test_ssh_with_a_key_the_server_does_not_know(sshd: Sshd, mirrors: Mirrors, tmp_path: Path) -> None:
    stranger, _ = _keygen(tmp_path / "stranger")
    with pytest.raises(GitError) as info:
        await mirrors.fetch(sshd.url, MAIN, credentials=Credentials(identity=stranger, known_hosts=sshd.known_hosts))
    message = str(info.value)
    assert message == f"fetch {sshd.url} (branch main): authentication failed: the SSH key was refused"
    assert not any(line in message for line in stranger.decode().splitlines()[1:-1])


async def test_an_identity_needs_known_hosts(mirrors: Mirrors, repo: GitRepo) -> None:
    with pytest.raises(GitError, match="needs known_hosts"):
        await mirrors.fetch("ssh://git@127.0.0.1:1/x.git", MAIN, credentials=Credentials(identity=b"KEY"))
