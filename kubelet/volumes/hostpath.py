"""A ``hostPath`` volume's type check, as Kubernetes' hostPath plugin does it (pkg/volume/hostpath).

    ""                 no check (the engine makes a missing directory at bind time)
    DirectoryOrCreate  make the directory (0755) when missing, then it must be a directory
    Directory          must exist and be a directory
    FileOrCreate       make an empty file (0644) when missing, then it must be a file
    File | Socket | CharDevice | BlockDevice   must exist and be of that type

Errors carry Kubernetes' texts (``hostPath type check failed: /x is not a directory, it's a
File``). ``check_type`` is the decision over a file-type reader; ``ensure`` adds the two
creations and the real ``lstat``. The paths are the kubelet's own view: a kubelet in a container
checks paths that are mounted into it at the same place (under MINIK8S_ROOT_DIR in compose).
"""

from __future__ import annotations

import os
import stat
from typing import Callable

from kubelet.volumes import SourceError

TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice", "BlockDevice")
_DESCRIPTION = {"Directory": "directory", "File": "file", "Socket": "socket file", "CharDevice": "character device",
                "BlockDevice": "block device"}


def file_type(path: str) -> str | None:
    """Kubernetes' ``GetFileType`` name of what is at ``path`` (symlinks followed); None if nothing."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise SourceError(f"hostPath type check failed, unable to determine the type of {path}: {e}") from None
    if stat.S_ISDIR(mode):
        return "Directory"
    if stat.S_ISSOCK(mode):
        return "Socket"
    if stat.S_ISCHR(mode):
        return "CharDevice"
    if stat.S_ISBLK(mode):
        return "BlockDevice"
    return "File"


def check_type(path: str, path_type: str, *, kind_of: Callable[[str], str | None]) -> str | None:
    """What to create first ("Directory" / "File") or None; SourceError when the check fails.
    Call again after creating: the second answer is always None or an error."""
    if path_type == "":
        return None
    if path_type not in TYPES:
        raise SourceError(f"{path_type} is an invalid volume type")
    found = kind_of(path)
    if path_type in ("DirectoryOrCreate", "FileOrCreate"):
        if found is None:
            return "Directory" if path_type == "DirectoryOrCreate" else "File"
        path_type = path_type[:-len("OrCreate")]
    if found is None:
        raise SourceError(f"hostPath {path} doesn't exist")
    if found != path_type:
        raise SourceError(f"hostPath type check failed: {path} is not a {_DESCRIPTION[path_type]}, it's a {found}")
    return None


def ensure(path: str, path_type: str) -> None:
    """The type check on this machine, creating a DirectoryOrCreate / FileOrCreate path first."""
    create = check_type(path, path_type, kind_of=file_type)
    if create == "Directory":
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif create == "File":
        try:
            with open(path, "a"):
                pass
            os.chmod(path, 0o644)
        except OSError as e:
            raise SourceError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
    if create is not None:
        check_type(path, path_type, kind_of=file_type)


__all__ = ["TYPES", "check_type", "ensure", "file_type"]
