"""Manifests as kubectl reads them: YAML or JSON text -> objects, ``List`` kinds expanded.

Data flow: a text (a file's, stdin's, a Git blob's) and the name to report it by -> every YAML
document (JSON is YAML) -> objects, with ``kind: List``/``*List`` documents expanded into their
items -> ``Manifest`` (the object plus where it came from). A document that does not parse raises
``ManifestError`` with kubectl's ``error parsing FILE: ...`` text. Pure: the callers read the text
(mkctl from files and stdin, the gitops reconciler from Git objects).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml


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


__all__ = ["Manifest", "ManifestError", "parse_documents"]
