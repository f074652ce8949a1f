"""The files of a Git revision -> the Kubernetes objects to apply, with every problem found.

Data flow: ``build(files, path)``: the repository's manifest files (repo-relative POSIX path ->
bytes; already filtered to ``.yaml``/``.yml``/``.json`` and checked by ``gitops.source``) and the
directory to build -> ``BuildResult``: the objects (``Item``: the object, its file, its document
index there) and the errors (``BuildError``). The reconciler applies nothing while ``errors`` is
non-empty, so the build goes on after every problem and reports all of them. Pure: the files come
in memory; nothing here reads a disk, a network or a clock.

What is built from ``path``:
- a kustomization there (``kustomization.yaml``, ``.yml``, ``Kustomization``): kustomize's
  build, in the subset of ``gitops.kustomize``. ``resources`` are files or directories with a
  kustomization of their own, relative to the kustomization, anywhere inside the repository
  (``../base``); one that leaves the repository, is remote, is missing, or closes a cycle is an
  error;
- none there: Flux's rule. Every manifest file under ``path``, recursively, in the order of a
  directory walk (sorted by path components), with one exception: a subdirectory holding a
  kustomization is built as one unit by it (and its other files are the kustomization's to
  include or not), where the walk reaches it.
Documents are split at ``---`` lines; empty ones are skipped but counted; a JSON file is one
document; ``List`` kinds are expanded (their items keep the List's document index). Every object
needs ``apiVersion``, ``kind`` and ``metadata.name``. The same object (API group, kind, namespace,
name) twice is an error on the second, naming the first. A path nothing is under is an error, so
that a mistyped path cannot make the reconciler prune everything: an empty kustomization
(``resources: []``) is how a repository asks for nothing.
"""

from __future__ import annotations

import copy
import posixpath
from dataclasses import dataclass, field
from typing import Any, Mapping

from gitops.kustomize import KUSTOMIZATION_FILES, is_remote, parse_kustomization, transform
from machinery.manifests import read_documents, split_documents


@dataclass(frozen=True)
class Item:
    """One object to apply: ``file`` (repo-relative) and ``document`` (0-based) say where it was written."""

    obj: dict[str, Any]
    file: str
    document: int


@dataclass(frozen=True)
class BuildError:
    """One problem: where (``document`` None: the whole file), what, and which object when known."""

    file: str
    document: int | None
    message: str
    kind: str = ""
    name: str = ""

    def __str__(self) -> str:
        where = self.file if self.document is None else f"{self.file} (document {self.document})"
        what = f"{self.kind} {self.name}".strip()
        return f"{where}: {what}: {self.message}" if what else f"{where}: {self.message}"


@dataclass(frozen=True)
class BuildResult:
    items: list[Item] = field(default_factory=list)
    errors: list[BuildError] = field(default_factory=list)


def build(files: Mapping[str, bytes], path: str) -> BuildResult:
    """The objects the directory ``path`` ("" for the root) of the repository ``files`` defines."""
    return _Build(files).run(path)


class _Build:
    """One build: the repository, the errors so far, each file parsed once."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = files
        self.dirs = {posixpath.dirname(f) for f in files}
        for d in list(self.dirs):
            while d:
                d = posixpath.dirname(d)
                self.dirs.add(d)
        self.errors: list[BuildError] = []
        self._parsed: dict[str, list[Item]] = {}
        self._kustomization_files: dict[str, str | None] = {}

    def run(self, path: str) -> BuildResult:
        if path in self.files:
            self.error(path, None, "the path to build is a file; it must be a directory")
        elif path not in self.dirs:
            where = f"path {path}" if path else "the repository"
            self.error(path, None, f"{where} has no .yaml, .yml or .json files (a kustomization.yaml "
                                   "with `resources: []` is how to build nothing)")
        elif (kustomization := self.kustomization_file(path)) is not None:
            return self.result(self.kustomize(kustomization, stack=()))
        else:
            return self.result(self.plain(path))
        return self.result([])

    def result(self, items: list[Item]) -> BuildResult:
        first: dict[tuple[str, str, str, str], Item] = {}
        for item in items:
            metadata = item.obj["metadata"]
            key = (str(item.obj["apiVersion"]).rpartition("/")[0], str(item.obj["kind"]),
                   str(metadata.get("namespace") or ""), str(metadata["name"]))
            if key not in first:
                first[key] = item
                continue
            other = first[key]
            also = f"{other.file} (document {other.document})" if other.file == item.file else other.file
            self.error(item.file, item.document, f"may not be defined twice: also in {also}",
                       kind=key[1], name=key[3])
        # a file included twice (by two kustomizations) reports its problems once
        return BuildResult(items=items, errors=list(dict.fromkeys(self.errors)))

    def error(self, file: str, document: int | None, message: str, *, kind: str = "", name: str = "") -> None:
        self.errors.append(BuildError(file, document, message, kind, name))

    def plain(self, path: str) -> list[Item]:
        prefix = f"{path}/" if path else ""
        under = sorted((f for f in self.files if f.startswith(prefix)), key=lambda f: f.split("/"))
        items: list[Item] = []
        units: set[str] = set()
        for file in under:
            unit = self.unit(posixpath.dirname(file), below=path)
            if unit is None:
                items += self.file_items(file)
            elif unit not in units:
                units.add(unit)
                items += self.kustomize(self.kustomization_file(unit) or "", stack=())
        return items

    def unit(self, directory: str, *, below: str) -> str | None:
        """The outermost directory from ``below`` (excluded) down to ``directory`` with a kustomization."""
        parts = directory.split("/") if directory else []
        start = len(below.split("/")) if below else 0
        for end in range(start + 1, len(parts) + 1):
            candidate = "/".join(parts[:end])
            if self.kustomization_file(candidate) is not None:
                return candidate
        return None

    def kustomization_file(self, directory: str) -> str | None:
        if directory not in self._kustomization_files:
            found = [posixpath.join(directory, n) for n in KUSTOMIZATION_FILES
                     if posixpath.join(directory, n) in self.files]
            if len(found) > 1:
                self.error(found[1], None, f"found more than one kustomization file in {directory or '.'}: "
                                           + ", ".join(found))
            self._kustomization_files[directory] = found[0] if found else None
        return self._kustomization_files[directory]

    def text(self, file: str) -> str | None:
        try:
            return self.files[file].decode("utf-8")
        except UnicodeDecodeError as e:
            self.error(file, None, f"not UTF-8 text: {e}")
            return None

    def file_items(self, file: str) -> list[Item]:
        if file not in self._parsed:
            self._parsed[file] = self.parse(file)
        # fresh objects every time: two kustomizations may include the same file and transform it
        return [Item(copy.deepcopy(i.obj), i.file, i.document) for i in self._parsed[file]]

    def parse(self, file: str) -> list[Item]:
        text = self.text(file)
        if text is None:
            return []
        manifests, errors = read_documents(text, source=file, json=file.endswith(".json"))
        for e in errors:
            self.error(file, e.document, e.message, kind=e.kind, name=e.name)
        items: list[Item] = []
        for m in manifests:
            problem = _metadata_problem(m.obj)
            if problem:
                self.error(file, m.document, problem, kind=str(m.obj["kind"]), name=m.name)
            else:
                items.append(Item(m.obj, file, m.document))
        return items

    def kustomize(self, file: str, *, stack: tuple[str, ...]) -> list[Item]:
        directory = posixpath.dirname(file)
        text = self.text(file)
        if text is None:
            return []
        docs, errors = split_documents(text)
        for e in errors:
            self.error(file, e.document, e.message)
        if errors:
            return []
        if len(docs) != 1:
            self.error(file, None, "the kustomization is empty" if not docs else
                       "a kustomization must be a single YAML document")
            return []
        document, doc = docs[0]
        kustomization, messages = parse_kustomization(doc)
        for message in messages:
            self.error(file, document, message)
        items: list[Item] = []
        for resource in kustomization.resources:
            items += self.resource(resource, file=file, document=document, stack=(*stack, directory))
        objects, problems = transform([i.obj for i in items], kustomization)
        for index, message in problems:
            item = items[index]
            self.error(item.file, item.document, message, kind=str(item.obj["kind"]),
                       name=str(item.obj["metadata"]["name"]))
        return [Item(obj, i.file, i.document) for obj, i in zip(objects, items)]

    def resource(self, resource: str, *, file: str, document: int, stack: tuple[str, ...]) -> list[Item]:
        """The objects of one entry of ``resources`` of the kustomization ``file``."""
        if is_remote(resource):
            self.error(file, document, f"resource {resource}: remote resources are not supported by minik8s gitops")
            return []
        target = posixpath.normpath(posixpath.join(stack[-1], resource))
        target = "" if target == "." else target
        if resource.startswith("/") or target == ".." or target.startswith("../"):
            self.error(file, document, f"resource {resource} leaves the repository")
            return []
        if target in self.files:
            return self.file_items(target)
        if target not in self.dirs:
            self.error(file, document, f"resource {resource} not found: {target} is neither a manifest file "
                                       "(.yaml, .yml, .json) nor a directory of the repository")
            return []
        kustomization = self.kustomization_file(target)
        if kustomization is None:
            self.error(file, document, f"resource {resource}: directory {target or '.'} has no kustomization "
                                       f"({', '.join(KUSTOMIZATION_FILES)})")
            return []
        if target in stack:
            cycle = " -> ".join(d or "." for d in (*stack[stack.index(target):], target))
            self.error(file, document, f"resource {resource}: the kustomizations include each other: {cycle}")
            return []
        return self.kustomize(kustomization, stack=stack)


def _metadata_problem(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        return "metadata is not an object"
    metadata = metadata or {}
    name = metadata.get("name")
    if not name:
        if metadata.get("generateName"):
            return "metadata.name not set (generateName cannot be used: an applied object needs a fixed name)"
        return "metadata.name not set"
    if not isinstance(name, str):
        return f"metadata.name is not a string: {name!r}"
    namespace = metadata.get("namespace")
    if namespace is not None and not isinstance(namespace, str):
        return f"metadata.namespace is not a string: {namespace!r}"
    return ""


__all__ = ["BuildError", "BuildResult", "Item", "build"]
