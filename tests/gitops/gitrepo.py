"""Real Git repositories for the gitops tests: a working repository whose commits a test makes.

``GitRepo.create(tmp_path)`` runs ``git init`` (branch ``main``) -> ``write``/``remove``/``symlink``
change its work tree -> ``commit()`` returns the new commit's SHA. ``url`` is its ``file://`` URL,
which the reconciler fetches like any remote. Only the real ``git`` command is used.
``GitHTTPServer`` serves bare repositories privately over HTTP on loopback (basic auth, the real
``git http-backend``), for credentials from a Secret.
"""

from __future__ import annotations

import base64
import os
import subprocess
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "HOME": os.environ.get("HOME", "/tmp"),
}


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **_ENV}, check=True,
                         capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


@dataclass
class GitRepo:
    root: Path

    @classmethod
    def create(cls, where: Path, name: str = "repo") -> "GitRepo":
        root = where / name
        root.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=root)
        return cls(root)

    @property
    def url(self) -> str:
        return self.root.as_uri()

    def write(self, path: str, text: str | bytes) -> None:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)

    def remove(self, path: str) -> None:
        git("rm", "-r", "-q", path, cwd=self.root)

    def symlink(self, path: str, target: str) -> None:
        link = self.root / path
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, link)

    def commit(self, message: str = "change") -> str:
        git("add", "-A", cwd=self.root)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.root)
        return self.head()

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.root)

    def tag(self, name: str) -> None:
        git("tag", name, cwd=self.root)


HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
USER, PASSWORD = "alice", "s3cr3t-Pa55-w0rd"


class GitHTTPHandler(BaseHTTPRequestHandler):
    """CGI for one program: runs git-http-backend per request, after checking basic auth."""

    server: "GitHTTPServer"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        self.server.authorizations.append(self.headers.get("Authorization", ""))
        if self.headers.get("Authorization") != self.server.authorization:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        split = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {"PATH": os.environ.get("PATH", os.defpath), "GIT_PROJECT_ROOT": str(self.server.project_root),
               "GIT_HTTP_EXPORT_ALL": "1", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
               "REQUEST_METHOD": self.command, "PATH_INFO": unquote(split.path), "QUERY_STRING": split.query,
               "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
               "REMOTE_ADDR": "127.0.0.1", "REMOTE_USER": USER}
        if self.headers.get("Content-Encoding"):
            env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run([HTTP_BACKEND], input=body, env=env, capture_output=True, timeout=60).stdout
        head, _, payload = out.partition(b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            else:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class GitHTTPServer(ThreadingHTTPServer):
    """A private repository over HTTP on 127.0.0.1 (basic auth USER:PASSWORD) by git-http-backend."""

    daemon_threads = True

    def __init__(self, project_root: Path) -> None:
        super().__init__(("127.0.0.1", 0), GitHTTPHandler)
        self.project_root = project_root
        self.authorization = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        self.authorizations: list[str] = []
