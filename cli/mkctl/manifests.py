"""Reading manifests for ``apply -f`` / ``delete -f`` / ``create -f``, the way kubectl does.

Data flow: each ``-f`` value (a file, a directory, ``-`` for stdin, optionally ``-R``) ->
the files with ``.json``, ``.yaml`` or ``.yml`` extensions (directories) -> their text ->
``machinery.manifests.parse_documents`` (every document, ``List`` kinds expanded) -> ``Manifest``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, TextIO

from machinery.manifests import Manifest, ManifestError, parse_documents

_EXTENSIONS = (".json", ".yaml", ".yml")


def expand_paths(filenames: Iterable[str], *, recursive: bool = False) -> list[str]:
    """Files named by ``-f`` values, directories expanded (sorted, like kubectl's walk)."""
    out: list[str] = []
    for name in filenames:
        if name == "-":
            out.append(name)
            continue
        path = Path(name)
        if not path.exists():
            raise ManifestError(f'the path "{name}" does not exist')
        if path.is_dir():
            found = sorted(path.rglob("*") if recursive else path.iterdir())
            out += [str(p) for p in found if p.is_file() and p.suffix in _EXTENSIONS]
        else:
            out.append(str(path))
    return out


def load(filenames: Iterable[str], *, recursive: bool = False, stdin: TextIO | None = None) -> list[Manifest]:
    """All objects from the ``-f`` values, in order."""
    out: list[Manifest] = []
    for path in expand_paths(filenames, recursive=recursive):
        if path == "-":
            text = (stdin or sys.stdin).read()
            out += parse_documents(text, source="STDIN")
            continue
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise ManifestError(f"error reading {path}: {e.strerror}") from e
        out += parse_documents(text, source=path)
    return out


__all__ = ["Manifest", "ManifestError", "expand_paths", "load", "parse_documents"]
