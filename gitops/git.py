"""The one module that runs ``git``: bare local mirrors of remote repositories, read without checkout.

Data flow: the reconciler asks ``Mirrors.fetch(url, ref, credentials=...)`` -> under the lock of
that (url, ref)'s mirror, ``git fetch --depth 1`` of the one ref into a bare repository under
``root`` -> the commit SHA -> ``Mirrors.tree(url, ref, sha)`` (``git ls-tree``) and
``Mirrors.read_blobs`` (one ``git cat-file --batch``) hand the revision's listing and blob
contents to ``gitops.source``, which decides what may be applied. ``fetch_commit`` brings back an
older commit (the last good revision) for a rollback.

Why it is built this way:
- Nothing is ever checked out: a revision is read from the object database only, so a symbolic
  link in a repository is never followed on disk and no file outside the mirror is ever read.
- The mirror's directory name is a hash of (url, ref): a URL may hold credentials. The mirror
  keeps no remote and no FETCH_HEAD, so no URL is written to disk either.
- Credentials never reach argv (world-readable in /proc) nor a message: HTTP(S) basic auth
  goes through environment variables read by a credential helper whose text holds no secret
  (and that answers only for the URL's own host, so a redirect elsewhere gets nothing); an SSH
  key and its known_hosts are written to a private temporary directory (0700, files 0600) that
  is removed when the call ends, and ssh always checks host keys (``StrictHostKeyChecking=yes``,
  no agent, no user or system ssh config). A ``user:password@`` in a URL is moved into the
  environment the same way, and ``GitError`` messages are scrubbed of every secret and of any
  userinfo in URLs.
- Git runs with no system or user config (its global config is a private file that only sets
  ``safe.directory``, so a file:// repository owned by another user can be read), no terminal
  prompt, C locale (its messages are parsed), only the file, git, http, https and ssh
  transports (never ``ext::``), no submodules, no hooks, and each process in its own process
  group: at the timeout the whole group (git, ssh, remote helpers, a local upload-pack) is
  killed and ``GitTimeout`` raised.
- One asyncio.Lock per mirror serializes its gits (two fetches in one repository would race on
  its lock files); different mirrors run in parallel. One process (one event loop) owns a root.

What tests/gitops/test_git.py checks against real servers on loopback: file:// remotes,
``git http-backend`` behind a basic-auth HTTP server, a real ``sshd`` with a generated host key,
and a TCP listener that never answers (timeouts).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence
from urllib.parse import quote, unquote, urlsplit

from gitops.source import Ref, TreeEntry, is_sha

__all__ = ["Credentials", "GitError", "GitTimeout", "Mirrors", "Ref", "TreeEntry"]

log = logging.getLogger(__name__)

HEAD_REF = "refs/gitops/head"  # the fetched ref's commit: keeps it from gc
ROLLBACK_REF = "refs/gitops/rollback"  # the last commit fetch_commit brought in
FALLBACK_PREFIX = "refs/gitops/full"  # refs of a full fetch (when a server refuses a SHA)

# Only what git, ssh and the HTTP stack legitimately need from the process environment: no
# GIT_* variable (GIT_DIR, GIT_SSH_COMMAND, ...) and no ssh agent socket of the caller leaks in.
_PASSTHROUGH = ("PATH", "TMPDIR", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")

_CONFIG = (
    # An allow-list of transports: "ext::" (runs a command) and other remote helpers stay off.
    "protocol.allow=never", "protocol.file.allow=always", "protocol.git.allow=always",
    "protocol.http.allow=always", "protocol.https.allow=always", "protocol.ssh.allow=always",
    "fetch.recurseSubmodules=false", "submodule.recurse=false",
    "core.hooksPath=/dev/null", "core.fsmonitor=false",
    # An automatic gc must run inside the fetch (under the lock and the timeout), not detached.
    "gc.autoDetach=false",
    "credential.helper=",  # empties the helper list: only ours below, when there are credentials
)

# Reads the secret from the environment so that argv, visible to every user in /proc, never
# holds it; answers only "get" for the URL's own host (GITOPS_GIT_HOST).
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; h=; '
    'while IFS= read -r l && test -n "$l"; do case "$l" in host=*) h=${l#host=};; esac; done; '
    'test "$h" = "$GITOPS_GIT_HOST" || exit 0; '
    "printf 'username=%s\\npassword=%s\\n' \"$GITOPS_GIT_USERNAME\" \"$GITOPS_GIT_PASSWORD\"; }; f"
)

_FETCH_FLAGS = ("--no-tags", "--no-recurse-submodules", "--no-write-fetch-head", "--quiet")

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/?#@\s]*)@")

# Git's words for a server that will not send an object by its SHA (protocol v0/v1 without
# uploadpack.allowAnySHA1InWant, and v2 for an object it does not have).
_REFUSED_SHA = ("unadvertised object", "not our ref", "no such remote ref", "want ", "couldn't find remote ref")

# (pattern in git's stderr, the short reason shown instead).
_KNOWN_FAILURES = (
    ("authentication failed", "authentication failed"),
    ("could not read username", "authentication required: no credentials given"),
    ("could not read password", "authentication required: no password given"),
    ("host key verification failed", "host key verification failed (check known_hosts)"),
    ("permission denied (publickey", "authentication failed: the SSH key was refused"),
    ("connection refused", "connection refused"),
    ("could not resolve host", "could not resolve host"),
)


@dataclass(frozen=True)
class Credentials:
    """From a Kubernetes Secret, keys as Flux uses them; ``repr`` shows no secret."""

    username: str | None = None  # HTTPS basic auth (a token goes in password)
    password: str | None = field(default=None, repr=False)
    identity: bytes | None = field(default=None, repr=False)  # SSH private key (PEM/OpenSSH)
    known_hosts: bytes | None = field(default=None, repr=False)  # required with identity

    def secrets(self) -> list[str]:
        """Every secret string, in the forms a message could carry it, for scrubbing."""
        found: list[str] = []
        if self.password:
            found += [self.password, f"{self.username or ''}:{self.password}"]
        if self.identity:
            found += [line for line in self.identity.decode("utf-8", "replace").splitlines() if len(line) >= 8]
        return found


class GitError(Exception):
    """A git operation failed; the message is safe to show (credentials scrubbed)."""


class GitTimeout(GitError):
    """A git operation took longer than its timeout; its processes were killed."""


@dataclass(frozen=True)
class _Remote:
    url: str  # what git is given: no password in it
    shown: str  # for messages: no userinfo at all where it could be a token
    host: str  # "host[:port]" as git's credential protocol names it
    username: str | None
    password: str | None


def _split_url(url: str) -> _Remote:
    """Take a password (or an HTTP token) out of the URL; git gets it from the environment."""
    shown = scrub_url(url)
    if "://" not in url:
        return _Remote(url, shown, "", None, None)  # scp-like "git@host:path" or a local path
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return _Remote(url, shown, hostport, None, None)
    user, colon, password = userinfo.partition(":")
    if parts.scheme.lower() in ("http", "https"):
        # An HTTP user may well be a token (https://TOKEN@host): none of it stays in argv.
        clean = parts._replace(netloc=hostport).geturl()
        return _Remote(clean, shown, hostport, unquote(user), unquote(password) if colon else "")
    # ssh://git@host keeps its user; a password there is useless to us (no prompts) and dropped.
    clean = parts._replace(netloc=f"{user}@{hostport}").geturl()
    return _Remote(clean, shown, hostport, None, unquote(password) if colon else None)


def scrub_url(text: str) -> str:
    """Hide userinfo in every URL of ``text``: all of it for HTTP(S), the password elsewhere."""

    def hide(m: re.Match[str]) -> str:
        scheme, userinfo = m.group(1), m.group(2)
        if scheme.lower().startswith("http"):
            return f"{scheme}***@"
        user, colon, _ = userinfo.partition(":")
        return f"{scheme}{user}:***@" if colon else m.group(0)

    return _USERINFO.sub(hide, text)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    # Longest first, so "user:password" goes whole before "password" inside it.
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        for form in {secret, secret.replace("%", "%25"), quote(secret, safe="")}:
            text = text.replace(form, "***")
    return scrub_url(text)


def _reason(stderr: str) -> str:
    lowered = stderr.lower()
    for pattern, reason in _KNOWN_FAILURES:
        if pattern in lowered:
            return reason
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    # The first complaint is the specific one; git's closing lines ("Could not read from remote
    # repository", "Please make sure you have the correct access rights") say nothing more.
    fatal = [line for line in lines if line.startswith(("fatal:", "error:"))]
    line = (fatal[0] if fatal else lines[-1]) if lines else "git failed with no message"
    line = re.sub(r"^(fatal|error): (remote error: )?", "", line)
    return line if len(line) <= 300 else line[:297] + "..."


class _Call:
    """One operation on one mirror: its environment, deadline, secrets and how it is named."""

    def __init__(self, mirror: Path, *, what: str, env: dict[str, str], deadline: float,
                 timeout: float, secrets: Sequence[str], config: Sequence[str]) -> None:
        self.mirror = mirror
        self.what = what
        self.env = env
        self.deadline = deadline
        self.timeout = timeout
        self.secrets = secrets
        self.config = config

    def error(self, reason: str) -> GitError:
        return GitError(_scrub(f"{self.what}: {reason}", self.secrets))

    async def run(self, *args: str, stdin: bytes | None = None) -> bytes:
        code, out, err = await self.try_run(*args, stdin=stdin)
        if code != 0:
            raise self.error(_reason(err))
        return out

    async def try_run(self, *args: str, stdin: bytes | None = None) -> tuple[int, bytes, str]:
        loop = asyncio.get_running_loop()
        remaining = self.deadline - loop.time()
        if remaining <= 0:
            raise GitTimeout(_scrub(f"{self.what}: timed out after {self.timeout:g}s", self.secrets))
        argv = ["git", *[a for c in self.config for a in ("-c", c)], f"--git-dir={self.mirror}", *args]
        log.debug("%s: git %s", _scrub(self.what, self.secrets), _scrub(" ".join(args), self.secrets))
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, cwd=self.mirror,
            # Its own process group, so that ssh, remote helpers and upload-pack die with it.
            start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), remaining)
        except BaseException as failure:
            _kill_group(proc.pid)
            await proc.wait()
            if isinstance(failure, TimeoutError):
                raise GitTimeout(_scrub(f"{self.what}: timed out after {self.timeout:g}s",
                                        self.secrets)) from None
            raise
        assert proc.returncode is not None
        text = err.decode("utf-8", "replace")
        if proc.returncode != 0:
            log.debug("%s: git %s exited %d: %s", _scrub(self.what, self.secrets), args[0], proc.returncode,
                      _scrub(text.strip()[-500:], self.secrets))
        return proc.returncode, out, text


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone (a group whose leader exited may be empty)


class Mirrors:
    """One bare local mirror per (url, ref) under root, shared by every GitSync on it."""

    def __init__(self, root: Path, *, default_timeout: float = 60.0,
                 extra_config: Mapping[str, str] | None = None) -> None:
        """``extra_config``: more ``git -c`` settings for every call (say ``http.sslCAInfo``)."""
        self.root = root
        self.default_timeout = default_timeout
        self.extra_config = dict(extra_config or {})
        self._locks: dict[str, asyncio.Lock] = {}

    def mirror_path(self, url: str, ref: Ref) -> Path:
        key = hashlib.sha256(f"{url}\0{ref.kind}\0{ref.name}".encode()).hexdigest()[:32]
        return self.root / key

    async def fetch(self, url: str, ref: Ref, *, credentials: Credentials | None = None,
                    timeout: float | None = None) -> str:
        """Shallow fetch (--depth 1) of the ref into its mirror; returns the commit SHA (40 hex)."""
        remote = _split_url(url)
        async with self._locked(url, ref):
            with self._call(url, ref, op="fetch", credentials=credentials, timeout=timeout) as call:
                await self._ensure_mirror(call)
                if ref.commit is not None:
                    # A commit never changes: once in the mirror there is nothing more to fetch.
                    if not await self._has_commit(call, ref.commit):
                        await self._fetch_sha(call, remote, ref, ref.commit)
                    await call.run("update-ref", HEAD_REF, ref.commit)
                else:
                    source = f"refs/heads/{ref.name}" if ref.branch is not None else f"refs/tags/{ref.name}"
                    await call.run("fetch", "--depth", "1", *_FETCH_FLAGS, "--end-of-options", remote.url,
                                   f"+{source}:{HEAD_REF}")
                sha = (await call.run("rev-parse", "--verify", "--quiet", f"{HEAD_REF}^{{commit}}")).decode().strip()
        if not is_sha(sha):
            raise GitError(f"fetch {remote.shown} ({ref.describe()}): git gave no commit")
        log.debug("fetched %s (%s): %s", remote.shown, ref.describe(), sha)
        return sha

    async def fetch_commit(self, url: str, ref: Ref, sha: str, *, credentials: Credentials | None = None,
                           timeout: float | None = None) -> None:
        """Make sure an older commit (the last good revision, for a rollback) is in the mirror."""
        remote = _split_url(url)
        if not is_sha(sha):
            raise GitError(f"fetch {remote.shown} ({ref.describe()}): {sha!r} is not a full commit SHA")
        async with self._locked(url, ref):
            with self._call(url, ref, op=f"fetch commit {sha} of", credentials=credentials,
                            timeout=timeout) as call:
                await self._ensure_mirror(call)
                if not await self._has_commit(call, sha):
                    await self._fetch_sha(call, remote, ref, sha)
                # Pinned by a ref, so that no gc drops it while it is the one to roll back to.
                await call.run("update-ref", ROLLBACK_REF, sha)

    async def tree(self, url: str, ref: Ref, sha: str, *, timeout: float | None = None) -> list[TreeEntry]:
        """Every file, link and submodule of a fetched commit (``git ls-tree -r -l -z --full-tree``)."""
        remote = _split_url(url)
        if not is_sha(sha):
            raise GitError(f"read {remote.shown} ({ref.describe()}): {sha!r} is not a full commit SHA")
        async with self._locked(url, ref):
            with self._call(url, ref, op="read", credentials=None, timeout=timeout) as call:
                if not await self._has_commit(call, sha):
                    raise call.error(f"commit {sha} is not in the mirror (fetch it first)")
                out = await call.run("ls-tree", "-r", "-l", "-z", "--full-tree", f"{sha}^{{commit}}")
        return _parse_tree(out)

    async def read_blobs(self, url: str, ref: Ref, shas: Sequence[str], *,
                         timeout: float | None = None) -> dict[str, bytes]:
        """The contents of the given blobs, by SHA, from one ``git cat-file --batch``."""
        remote = _split_url(url)
        wanted = sorted(set(shas))
        bad = [s for s in wanted if not is_sha(s)]
        if bad:
            raise GitError(f"read {remote.shown} ({ref.describe()}): {bad[0]!r} is not a full object SHA")
        if not wanted:
            return {}
        async with self._locked(url, ref):
            with self._call(url, ref, op="read", credentials=None, timeout=timeout) as call:
                if not (call.mirror / "objects").is_dir():
                    raise call.error("nothing fetched yet")
                out = await call.run("cat-file", "--batch", stdin="".join(f"{s}\n" for s in wanted).encode())
                return _parse_batch(out, wanted, call)

    # -- the parts --

    def _locked(self, url: str, ref: Ref) -> asyncio.Lock:
        name = self.mirror_path(url, ref).name
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    def _call(self, url: str, ref: Ref, *, op: str, credentials: Credentials | None,
              timeout: float | None) -> "_CallScope":
        return _CallScope(self, url, ref, op=op, credentials=credentials,
                          timeout=self.default_timeout if timeout is None else timeout)

    async def _ensure_mirror(self, call: _Call) -> None:
        mirror = call.mirror
        if (mirror / "HEAD").is_file() and (mirror / "objects").is_dir():
            return
        # A directory left half made (a process killed during init) is started over.
        shutil.rmtree(mirror, ignore_errors=True)
        mirror.mkdir(mode=0o700, parents=True)
        # --template= (empty): no sample hooks, no info/exclude; it is never a work tree.
        await call.run("init", "--bare", "--quiet", "--template=", str(mirror))

    async def _has_commit(self, call: _Call, sha: str) -> bool:
        if not (call.mirror / "objects").is_dir():
            return False
        code, _, _ = await call.try_run("cat-file", "-e", f"{sha}^{{commit}}")
        return code == 0

    async def _fetch_sha(self, call: _Call, remote: _Remote, ref: Ref, sha: str) -> None:
        code, _, err = await call.try_run("fetch", "--depth", "1", *_FETCH_FLAGS, "--end-of-options", remote.url, sha)
        if code == 0:
            return
        if not any(word in err.lower() for word in _REFUSED_SHA):
            raise call.error(_reason(err))
        # A server speaking protocol v0/v1 sends only what its refs advertise, unless it sets
        # uploadpack.allowReachableSHA1InWant or allowAnySHA1InWant: fetch the ref's whole
        # history instead (a branch) or every branch and tag (a tag or a bare commit), and look
        # for the commit there.
        log.info("%s: the server refused a shallow fetch by SHA; fetching full history instead",
                 _scrub(call.what, call.secrets))
        if ref.branch is not None:
            refspecs = [f"+refs/heads/{ref.branch}:{FALLBACK_PREFIX}/heads/{ref.branch}"]
        else:
            refspecs = [f"+refs/heads/*:{FALLBACK_PREFIX}/heads/*", f"+refs/tags/*:{FALLBACK_PREFIX}/tags/*"]
        shallow = (await call.run("rev-parse", "--is-shallow-repository")).decode().strip() == "true"
        await call.run("fetch", *(["--unshallow"] if shallow else []), *_FETCH_FLAGS, "--end-of-options",
                       remote.url, *refspecs)
        if not await self._has_commit(call, sha):
            where = f"branch {ref.branch}" if ref.branch is not None else "any branch or tag"
            raise call.error(f"commit {sha} is not on {where} of the remote")


class _CallScope:
    """Builds a ``_Call``: a private HOME, the credentials in files or env; removes them after."""

    def __init__(self, mirrors: Mirrors, url: str, ref: Ref, *, op: str,
                 credentials: Credentials | None, timeout: float) -> None:
        self.mirrors = mirrors
        self.url = url
        self.remote = _split_url(url)
        self.ref = ref
        self.op = op
        self.credentials = credentials
        self.timeout = timeout
        self.scratch: str | None = None

    def __enter__(self) -> _Call:
        creds = self.credentials or Credentials()
        remote = self.remote
        secrets = [*creds.secrets(), *([remote.password] if remote.password else [])]
        if remote.username and remote.password is not None:
            secrets.append(f"{remote.username}:{remote.password}")
        if remote.username and remote.password == "":
            secrets.append(remote.username)  # https://TOKEN@host: the user is the secret
        what = _scrub(f"{self.op} {remote.shown} ({self.ref.describe()})", secrets)
        username = creds.username if creds.password is not None else remote.username
        password = creds.password if creds.password is not None else remote.password
        for value in (username, password):
            if value is not None and any(c in value for c in "\r\n\0"):
                raise GitError(f"{what}: the username and password must be one line each")
        if creds.identity is not None and not creds.known_hosts:
            raise GitError(f"{what}: an SSH identity needs known_hosts (host keys are always checked)")

        self.mirrors.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        # 0700 (mkdtemp's mode): the key, the known hosts and ssh's own files live here.
        self.scratch = tempfile.mkdtemp(prefix="gitops-git-")
        try:
            return self._prepare(Path(self.scratch), creds, secrets=secrets, what=what,
                                 username=username, password=password)
        except BaseException:
            self.__exit__()
            raise

    def _prepare(self, scratch: Path, creds: Credentials, *, secrets: list[str], what: str,
                 username: str | None, password: str | None) -> _Call:
        remote = self.remote
        known_hosts = scratch / "known_hosts"
        _write_private(known_hosts, creds.known_hosts or b"")
        ssh = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "IdentityAgent=none", "-o", "StrictHostKeyChecking=yes",
               "-o", f"UserKnownHostsFile={known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
               "-o", "UpdateHostKeys=no"]
        if creds.identity is not None:
            identity = scratch / "identity"
            key = creds.identity if creds.identity.endswith(b"\n") else creds.identity + b"\n"
            _write_private(identity, key)
            ssh += ["-i", str(identity)]

        # A local repository (file://, say one mounted into the gitops container) belongs to whoever
        # commits to it, seldom to us: git refuses to read it ("detected dubious ownership") unless
        # safe.directory allows it, which git 2.39 reads only from the global or system config, not
        # from -c. The GitSync's URL names the repository to trust.
        gitconfig = scratch / "gitconfig"
        _write_private(gitconfig, b"[safe]\n\tdirectory = *\n")
        env = {k: v for k, v in os.environ.items() if k in _PASSTHROUGH}
        env.setdefault("PATH", os.defpath)
        env.update({
            "HOME": str(scratch), "LC_ALL": "C", "LANG": "C", "LANGUAGE": "C",
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(gitconfig),
            "GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": shlex.join(ssh), "GIT_SSH_VARIANT": "ssh",
        })
        config = [*_CONFIG, *(f"{k}={v}" for k, v in self.mirrors.extra_config.items())]
        if password is not None:
            env.update({"GITOPS_GIT_HOST": remote.host, "GITOPS_GIT_USERNAME": username or "git",
                        "GITOPS_GIT_PASSWORD": password})
            config.append(f"credential.helper={_CREDENTIAL_HELPER}")
        deadline = asyncio.get_running_loop().time() + self.timeout
        return _Call(self.mirrors.mirror_path(self.url, self.ref), what=what, env=env,
                     deadline=deadline, timeout=self.timeout, secrets=secrets, config=config)

    def __exit__(self, *exc: object) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _parse_tree(out: bytes) -> list[TreeEntry]:
    entries: list[TreeEntry] = []
    for record in out.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, sha, size = meta.decode("ascii").split()
        # A name that is not UTF-8 keeps a readable, distinct spelling instead of failing the revision.
        path = raw_path.decode("utf-8", "backslashreplace")
        entries.append(TreeEntry(path=path, mode=mode, type=kind, sha=sha, size=int(size) if size != "-" else 0))
    return entries


def _parse_batch(out: bytes, wanted: Sequence[str], call: _Call) -> dict[str, bytes]:
    blobs: dict[str, bytes] = {}
    pos = 0
    for sha in wanted:
        end = out.index(b"\n", pos)
        header = out[pos:end].decode("ascii", "replace").split()
        pos = end + 1
        if len(header) != 3 or header[0] != sha:
            raise call.error(f"object {sha} is not in the mirror")
        size = int(header[2])
        blobs[sha] = out[pos:pos + size]
        pos += size + 1  # the content is followed by a newline
    return blobs
