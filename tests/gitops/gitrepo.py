"""Real Git repositories for the gitops tests: a working repository whose commits a test makes.

``GitRepo.create(tmp_path)`` runs ``git init`` (branch ``main``) -> ``write``/``remove``/``symlink``
change its work tree -> ``commit()`` returns the new commit's SHA. ``url`` is its ``file://`` URL,
which the reconciler fetches like any remote. Only the real ``git`` command is used.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
