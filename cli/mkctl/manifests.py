"""Reading manifests for ``apply -f`` / ``delete -f`` / ``create -f``, the way kubectl does.

Data flow: each ``-f`` value (a file, a directory, ``-`` for stdin, optionally ``-R``) ->
the files with ``.json``, ``.yaml`` or ``.yml`` extensions (directories) -> every YAML document
(JSON is YAML) -> objects, with ``kind: List``/``*List`` documents expanded into their items ->
``Manifest`` (the object plus the file it came from). A document that does not parse raises
``ManifestError`` with kubectl's ``error parsing FILE: ...`` text.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TextIO

import yaml

_EXTENSIONS = (".json", ".yaml", ".yml")


class ManifestError(Exception):
    """A manifest that cannot be read or parsed."""


@dataclass(frozen=True)
class Manifest:
    obj: dict[str, Any]
    source: str

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")


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


def parse_documents(text: str, *, source: str) -> list[Manifest]:
    """Every object of a (multi-document) YAML or JSON text; ``List`` kinds expanded."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as e:
        raise ManifestError(f"error parsing {source}: {_yaml_message(e)}") from e
    out: list[Manifest] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(f"error parsing {source}: a document is not an object: {str(doc)[:80]!r}")
        out += _expand(doc, source=source)
    return out


def _expand(doc: dict[str, Any], *, source: str) -> list[Manifest]:
    kind = str(doc.get("kind") or "")
    if kind.endswith("List") and isinstance(doc.get("items"), list):
        out: list[Manifest] = []
        for item in doc["items"]:
            if isinstance(item, dict):
                out += _expand(item, source=source)
        return out
    if not kind or not doc.get("apiVersion"):
        missing = "kind" if not kind else "apiVersion"
        raise ManifestError(f"error validating data from {source}: {missing} not set")
    return [Manifest(doc, source)]


def _yaml_message(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"error converting YAML to JSON: yaml: line {mark.line + 1}: {problem}"
    return f"error converting YAML to JSON: yaml: {problem}"


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
