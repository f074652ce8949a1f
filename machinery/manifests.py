"""Manifests as kubectl reads them: YAML or JSON text -> objects, ``List`` kinds expanded.

Data flow: a text (a file's, stdin's, a Git blob's) and the name to report it by -> every YAML
document (JSON is YAML) -> objects, with ``kind: List``/``*List`` documents expanded into their
items -> ``Manifest`` (the object plus where it came from). A document that does not parse raises
``ManifestError`` with kubectl's ``error parsing FILE: ...`` text. Pure: the callers read the text
(mkctl from files and stdin, the gitops reconciler from Git objects).

``read_documents`` is the variant that never stops at the first problem (the gitops build reports
every one): the text is cut into documents at ``---`` lines (kubectl's YAML reader does the same),
each document is parsed alone, so a bad one costs only itself, and every ``Manifest`` and
``DocumentError`` carries its 0-based document index. Its objects are JSON data, as kubectl's YAML
to JSON conversion makes them: timestamps stay strings, mapping keys become strings.
"""

from __future__ import annotations

import base64
import datetime
import json as jsonlib
from dataclasses import dataclass
from typing import Any

import yaml


class ManifestError(Exception):
    """A manifest that cannot be read or parsed."""


@dataclass(frozen=True)
class Manifest:
    obj: dict[str, Any]
    source: str
    # 0-based index of the document in its text (a List's items share the List's); set by
    # read_documents only.
    document: int = 0

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


def _yaml_message(e: yaml.YAMLError, *, line_offset: int = 0) -> str:
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    if mark is not None:
        return f"error converting YAML to JSON: yaml: line {mark.line + 1 + line_offset}: {problem}"
    return f"error converting YAML to JSON: yaml: {problem}"


@dataclass(frozen=True)
class DocumentError:
    """One problem of a text: its document (None: the whole text), the message, and which object."""

    document: int | None
    message: str
    kind: str = ""
    name: str = ""


class _JSONLoader(yaml.SafeLoader):
    """PyYAML's safe loader without timestamps: ``2024-01-01`` stays the string it is in JSON."""


_JSONLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def split_documents(text: str, *, json: bool = False) -> tuple[list[tuple[int, Any]], list[DocumentError]]:
    """Every non-empty document of a YAML (or, with ``json``, a single JSON) text with its index.

    Comments-only and empty documents are skipped but keep their index. A document that does not
    parse is a ``DocumentError`` and the next one is read all the same.
    """
    if json:
        try:
            value = jsonlib.loads(text)
        except ValueError as e:
            return [], [DocumentError(0, f"error converting JSON: {e}")]
        return ([] if value is None else [(0, _jsonable(value))]), []
    docs: list[tuple[int, Any]] = []
    errors: list[DocumentError] = []
    for index, (first_line, chunk) in enumerate(_chunks(text)):
        try:
            values = list(yaml.load_all(chunk, Loader=_JSONLoader))
        except yaml.YAMLError as e:
            errors.append(DocumentError(index, _yaml_message(e, line_offset=first_line)))
            continue
        # Several values in one chunk only come from `...` end markers: they share the index.
        docs += [(index, _jsonable(v)) for v in values if v is not None]
    return docs, errors


def _chunks(text: str) -> list[tuple[int, str]]:
    """The text cut before every ``---`` line: (first line number, text) per document."""
    lines = text.removeprefix("\ufeff").split("\n")
    chunks: list[tuple[int, list[str]]] = [(0, [])]
    for number, line in enumerate(lines):
        if line.startswith("---") and line[3:4] in ("", " ", "\t", "\r"):
            chunks.append((number, [line]))
        else:
            chunks[-1][1].append(line)
    # What precedes the first `---` is a document of its own only if it holds content: a leading
    # comment or %YAML directive belongs to the document that the `---` starts.
    if len(chunks) > 1 and all(not s.strip() or s.lstrip().startswith(("#", "%")) for s in chunks[0][1]):
        chunks[1] = (0, chunks[0][1] + chunks[1][1])
        del chunks[0]
    return [(first, "\n".join(part)) for first, part in chunks]


def _jsonable(value: Any) -> Any:
    """The value as JSON has it (sigs.k8s.io/yaml's conversion): string keys, no dates or bytes."""
    if isinstance(value, dict):
        return {_json_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, (set, frozenset)):
        return {_json_key(k): None for k in sorted(value, key=str)}
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    return jsonlib.dumps(key) if isinstance(key, (bool, type(None))) else str(key)


def read_documents(text: str, *, source: str, json: bool = False) -> tuple[list[Manifest], list[DocumentError]]:
    """Every object of a text (``List`` kinds expanded) and every problem, none stopping the rest.

    A document that is not a mapping, or an object without ``apiVersion`` or ``kind``, is an error
    (kubectl's wording: ``kind not set``); the objects of the other documents are kept.
    """
    docs, errors = split_documents(text, json=json)
    out: list[Manifest] = []
    for index, doc in docs:
        if not isinstance(doc, dict):
            errors.append(DocumentError(index, f"a document is not an object: {str(doc)[:80]!r}"))
            continue
        _collect(doc, source=source, document=index, out=out, errors=errors)
    errors.sort(key=lambda e: -1 if e.document is None else e.document)
    return out, errors


def _collect(doc: dict[str, Any], *, source: str, document: int, out: list[Manifest],
             errors: list[DocumentError]) -> None:
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        for number, item in enumerate(doc["items"]):
            if isinstance(item, dict):
                _collect(item, source=source, document=document, out=out, errors=errors)
            else:
                errors.append(DocumentError(document, f"item {number} of the {kind} is not an object"))
        return
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    kind_text, name_text = (kind if isinstance(kind, str) else ""), (name if isinstance(name, str) else "")
    for field in ("apiVersion", "kind"):
        value = doc.get(field)
        if not value:
            errors.append(DocumentError(document, f"{field} not set", kind_text, name_text))
            return
        if not isinstance(value, str):
            errors.append(DocumentError(document, f"{field} is not a string: {value!r}", kind_text, name_text))
            return
    out.append(Manifest(doc, source, document))


__all__ = ["DocumentError", "Manifest", "ManifestError", "parse_documents", "read_documents", "split_documents"]
