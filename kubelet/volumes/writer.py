"""Writes a volume's files atomically, in the layout of Kubernetes' AtomicWriter.

Data flow: payload (``kubelet.volumes.projection``: path -> contents and mode) -> ``write`` ->

    <dir>/..2026_01_02_03_04_05.123456789/<path>   the files of this version, with their modes
    <dir>/..data -> ..2026_01_02_03_04_05.123456789 swapped in one rename
    <dir>/<top-level name> -> ..data/<top-level name>

so a container that reads the volume sees either the whole old set or the whole new set, and a
removed key disappears. An unchanged payload writes nothing (``write`` answers False).
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import time
from pathlib import Path

from kubelet.volumes import SourceError
from kubelet.volumes.projection import File, Payload

DATA = "..data"


def validate(path: str) -> None:
    if not path or posixpath.isabs(path) or path.startswith(".."):
        raise SourceError(f"invalid path {path!r}: must be relative and may not start with '..'")
    if any(part in ("..", "") for part in path.split("/")):
        raise SourceError(f"invalid path {path!r}: may not contain '..' or empty elements")


def read(directory: Path) -> Payload | None:
    """The payload now visible through ``..data`` (None when there is none yet)."""
    data = directory / DATA
    if not data.is_symlink():
        return None
    out: Payload = {}
    root = directory / os.readlink(data)
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            full = Path(dirpath) / f
            out[str(full.relative_to(root))] = File(full.read_bytes(), full.stat().st_mode & 0o7777)
    return out


def write(directory: Path, payload: Payload) -> bool:
    """Makes ``directory`` show exactly ``payload``; True when anything changed."""
    for path in payload:
        validate(path)
    directory.mkdir(parents=True, exist_ok=True)
    old = read(directory)
    if old == payload:
        return False
    stamp = time.strftime("%Y_%m_%d_%H_%M_%S", time.gmtime()) + "." + str(secrets.randbelow(10**9))
    version = directory / f"..{stamp}"
    version.mkdir(mode=0o755)
    for path, f in payload.items():
        target = version / path
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        target.write_bytes(f.content)
        os.chmod(target, f.mode)
    previous = os.readlink(directory / DATA) if (directory / DATA).is_symlink() else None
    tmp = directory / "..data_tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(version.name, tmp)
    os.replace(tmp, directory / DATA)
    tops = {p.split("/", 1)[0] for p in payload}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            os.symlink(posixpath.join(DATA, top), link)
    for entry in directory.iterdir():
        if not entry.name.startswith("..") and entry.is_symlink() and entry.name not in tops:
            entry.unlink()
    if previous is not None and previous != version.name:
        shutil.rmtree(directory / previous, ignore_errors=True)
    return True


__all__ = ["DATA", "read", "validate", "write"]
