"""What a fetched revision may contribute: pure checks and selection over its Git tree listing.

Data flow: ``gitops.git.Mirrors.tree`` lists a revision (``TreeEntry`` rows, no content) ->
``select(entries, spec_path, limits=...)`` checks the listing alone (the path exists, no
submodule and no oversized content under it, every entry path is a normal repository path) and
names the blobs worth reading (``Selection.shas``): every manifest file (``.yaml``, ``.yml``,
``.json``, and kustomize's ``Kustomization``) anywhere in the repository, since a kustomization may refer to ``../base``, and every
symbolic link, whose blob is its target -> ``Mirrors.read_blobs`` reads exactly those ->
``resolve(selection, blobs)`` returns ``{repo-relative path: content}`` with the links followed
inside the tree -> the reconciler parses and applies it.

Nothing here touches a filesystem, a process or the network: a revision is only ever the listing
and the blob contents Git gave us, so a symbolic link in the repository is a string to interpret
here, never something the operating system follows.

Rules:
- The caps of ``Limits`` bound the content under the synced path (``LimitExceeded``); a manifest
  elsewhere that is over ``max_file_bytes`` is simply not read (a monorepo may hold big files
  that this sync never uses).
- Symbolic links are resolved like a path walk on disk, component by component, from the link's
  directory: a target that is absolute, that climbs above the repository root, that is a
  submodule, or that takes more than ``MAX_SYMLINK_HOPS`` links (or loops) is unsafe. A link to a
  *directory* is not supported: under the synced path it is ``UnsafeContent``; elsewhere it is
  ignored (so the files under it never appear). Expanding directory links would let one link
  copy a whole tree (or itself) many times over, for little use in a GitOps repository.
- A link named like a manifest appears in the result under its own path, with its target's
  content; its final target must be a manifest file of the tree. Under the synced path a link
  that cannot be resolved safely raises ``UnsafeContent``; elsewhere it is left out.
- Error messages name the path inside the repository only: never a link's target, never content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_NO_SUFFIX = "Kustomization"
# Like the kernel's ELOOP bound (40 there): a legitimate repository needs a few at most.
MAX_SYMLINK_HOPS = 10
# A link's blob is its target path: anything longer than PATH_MAX is not a real link.
MAX_LINK_BYTES = 4096

FILE_MODES = frozenset({"100644", "100755", "100664"})  # 100664: written by very old Gits
SYMLINK_MODE = "120000"
SUBMODULE_MODE = "160000"

_HEX_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
# The parts of git-check-ref-format's rules that matter for a name we put into a refspec.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class SourceError(Exception):
    """The revision cannot be synced as it is; ``str()`` is safe to show in a status."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path or '.'}: {reason}")
        self.path = path
        self.reason = reason


class UnsafeContent(SourceError):
    """Content under the synced path that must not be applied; ``path`` is inside the repository."""


class LimitExceeded(UnsafeContent):
    """Too many files, a file too big, or too many bytes in all under the synced path."""


class PathNotFound(SourceError):
    """The synced path is not a directory of this revision."""


@dataclass(frozen=True)
class Ref:
    """What to follow in the remote repository: exactly one of a branch, a tag or a full commit SHA."""

    branch: str | None = None
    tag: str | None = None
    commit: str | None = None

    def __post_init__(self) -> None:
        given = [v for v in (self.branch, self.tag, self.commit) if v is not None]
        if len(given) != 1:
            raise ValueError("a ref names exactly one of branch, tag or commit")
        if self.commit is not None:
            if not _HEX_SHA.fullmatch(self.commit):
                raise ValueError(f"commit {self.commit!r} is not a full SHA (40 lower-case hex digits)")
        elif not valid_ref_name(given[0]):
            raise ValueError(f"{self.kind} {given[0]!r} is not a valid Git ref name")

    @property
    def kind(self) -> str:
        return "branch" if self.branch is not None else "tag" if self.tag is not None else "commit"

    @property
    def name(self) -> str:
        value = self.branch if self.branch is not None else self.tag if self.tag is not None else self.commit
        assert value is not None
        return value

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


def valid_ref_name(name: str) -> bool:
    """A branch or tag name that git-check-ref-format accepts and that cannot pass for an option."""
    if not name or name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        return False
    if _BAD_REF_CHARS.search(name) or ".." in name or "@{" in name or "//" in name or name == "@":
        return False
    return not any(part.startswith(".") or part.endswith(".lock") for part in name.split("/"))


def is_sha(value: str) -> bool:
    """A full object name (SHA-1, or SHA-256 for repositories that use it), lower-case hex."""
    return _HEX_SHA.fullmatch(value) is not None


@dataclass(frozen=True)
class TreeEntry:
    """One row of ``git ls-tree -r -l``: no content, only what the tree says about a path."""

    path: str  # repo-relative POSIX path
    mode: str  # "100644", "100755", "120000" (symlink), "160000" (submodule)
    type: str  # "blob" | "commit"
    sha: str
    size: int  # bytes for blobs, 0 otherwise


@dataclass(frozen=True)
class Limits:
    max_file_bytes: int = 1 << 20
    max_files: int = 2000
    max_total_bytes: int = 64 << 20


@dataclass(frozen=True)
class Selection:
    """The outcome of ``select``: what the tree holds and which blobs ``resolve`` needs."""

    path: str  # the synced directory, normalized ("" for the repository root)
    limits: Limits
    files: Mapping[str, TreeEntry]  # every regular file (any name): the targets a link may reach
    links: Mapping[str, TreeEntry]  # every symbolic link whose blob is small enough to read
    submodules: frozenset[str]
    dirs: frozenset[str]  # every directory of the tree, "" included
    wanted: Mapping[str, TreeEntry] = field(repr=False)  # path -> entry whose blob must be read

    @property
    def shas(self) -> list[str]:
        """The blobs to read, each once (two paths with one content share one blob)."""
        return sorted({e.sha for e in self.wanted.values()})

    def under(self, path: str) -> bool:
        return _under(path, self.path)


def is_manifest(path: str) -> bool:
    # "Kustomization" (no suffix) is kustomize's third name for its file; gitops.build reads it.
    return path.lower().endswith(MANIFEST_SUFFIXES) or path.rpartition("/")[2] == KUSTOMIZATION_NO_SUFFIX


def normalize_path(path: str) -> str:
    """A spec path ("./deploy", "deploy/", "", ".") as a repo-relative path ("deploy", "").

    Raises ``UnsafeContent`` for an absolute path or one that climbs out of the repository.
    """
    if "\x00" in path:
        raise UnsafeContent(path.replace("\x00", "?"), "a path cannot contain a NUL character")
    if path.startswith("/"):
        raise UnsafeContent(path, "an absolute path; give a path inside the repository")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeContent(path, "the path leaves the repository")
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def _under(path: str, directory: str) -> bool:
    return directory == "" or path == directory or path.startswith(directory + "/")


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def select(entries: Sequence[TreeEntry], path: str, *, limits: Limits) -> Selection:
    """Check a revision's listing against the synced ``path`` and choose the blobs to read."""
    root = normalize_path(path)
    files: dict[str, TreeEntry] = {}
    links: dict[str, TreeEntry] = {}
    submodules: set[str] = set()
    dirs: set[str] = {""}
    for e in entries:
        # Git's own fsck refuses "..", "." and empty names in trees, but a server can still send
        # them to a client that does not check: a path we could not have written is unsafe.
        if e.path == "" or normalize_path(e.path) != e.path:
            raise UnsafeContent(e.path, "not a normal path inside the repository")
        dirs.update(_parents(e.path))
        if e.mode in FILE_MODES and e.type == "blob":
            files[e.path] = e
        elif e.mode == SYMLINK_MODE and e.type == "blob":
            if e.size <= MAX_LINK_BYTES:
                links[e.path] = e
            elif _under(e.path, root):
                raise UnsafeContent(e.path, "a symbolic link with an overlong target")
        elif e.mode == SUBMODULE_MODE:
            submodules.add(e.path)
        elif _under(e.path, root):
            raise UnsafeContent(e.path, f"an entry of unsupported mode {e.mode}")

    _check_root(root, files=files, links=links, submodules=submodules, dirs=dirs)
    for sub in sorted(submodules):
        if _under(sub, root):
            raise UnsafeContent(sub, "a submodule; submodules are never fetched")

    under_root = [e for p, e in files.items() if _under(p, root) and is_manifest(p)]
    count = len(under_root) + sum(1 for p in links if _under(p, root))
    if count > limits.max_files:
        raise LimitExceeded(root, f"{count} manifests and links, more than the limit of {limits.max_files}")
    total = 0
    for e in sorted(under_root, key=lambda e: e.path):
        if e.size > limits.max_file_bytes:
            raise LimitExceeded(e.path, f"{e.size} bytes, more than the limit of {limits.max_file_bytes} per file")
        total += e.size
    if total > limits.max_total_bytes:
        raise LimitExceeded(root, f"{total} bytes of manifests, more than the limit of {limits.max_total_bytes}")

    wanted = {p: e for p, e in files.items() if is_manifest(p) and e.size <= limits.max_file_bytes}
    wanted.update(links)
    return Selection(path=root, limits=limits, files=files, links=links, submodules=frozenset(submodules),
                     dirs=frozenset(dirs), wanted=wanted)


def _check_root(root: str, *, files: Mapping[str, TreeEntry], links: Mapping[str, TreeEntry],
                submodules: set[str], dirs: set[str]) -> None:
    if root in dirs:
        return
    for prefix in [*_parents(root), root]:
        if prefix in links:
            raise UnsafeContent(prefix, "a symbolic link; the synced path must be a directory of the tree")
        if prefix in submodules:
            raise UnsafeContent(prefix, "a submodule; submodules are never fetched")
        if prefix in files:
            raise PathNotFound(root, f"not a directory ({prefix} is a file)")
    raise PathNotFound(root, "no such directory in this revision")


class _Unresolvable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _walk(link: str, selection: Selection, targets: Mapping[str, str]) -> str:
    """The regular file a link finally names, walking its target as a kernel would, in the tree.

    Every component is looked up from the directory reached so far: a link met on the way is
    replaced by its own target (relative to its directory), so ".." always means the parent of
    the real directory, and climbing above the root is an escape, even if the path came back.
    """
    directory: list[str] = link.split("/")[:-1]
    pending: list[str] = _components(targets[link])
    hops = 1
    seen: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not directory:
                raise _Unresolvable("a symbolic link that leaves the repository")
            directory.pop()
            continue
        here = "/".join([*directory, part])
        if here in selection.links:
            state = (here, tuple(pending))
            if state in seen:
                raise _Unresolvable("a loop of symbolic links")
            seen.add(state)
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise _Unresolvable(f"a chain of more than {MAX_SYMLINK_HOPS} symbolic links")
            pending = _components(targets[here]) + pending
        elif here in selection.dirs:
            directory.append(part)
        elif here in selection.files:
            if any(p not in ("", ".") for p in pending):
                raise _Unresolvable("a symbolic link through a file")
            return here
        elif here in selection.submodules:
            raise _Unresolvable("a symbolic link into a submodule")
        else:
            raise _Unresolvable("a symbolic link to nothing in the repository")
    raise _Unresolvable("a symbolic link to a directory (directory links are not supported)")


def _components(target: str) -> list[str]:
    if target.startswith("/"):
        raise _Unresolvable("a symbolic link to an absolute path")
    if "\x00" in target:
        raise _Unresolvable("a symbolic link with a NUL character in its target")
    return target.split("/")


def resolve(selection: Selection, blobs: Mapping[str, bytes]) -> dict[str, bytes]:
    """``{repo-relative path: content}`` of the revision's manifests, links followed in the tree.

    ``blobs`` maps a blob SHA to its content (``Mirrors.read_blobs(selection.shas)``). The result
    holds every manifest that ``select`` offered, anywhere in the repository, plus every link
    named like a manifest that resolves to one; the caps hold again for what lies under the
    synced path, links included.
    """
    limits = selection.limits
    missing = [sha for sha in selection.shas if sha not in blobs]
    if missing:
        raise ValueError(f"resolve needs the content of {len(missing)} more blob(s), e.g. {missing[0]}")

    targets: dict[str, str] = {}
    for link, e in selection.links.items():
        try:
            targets[link] = blobs[e.sha].decode("utf-8")
        except UnicodeDecodeError:
            # A target we cannot read as a path could not be followed safely anyway.
            targets[link] = "\x00"

    result: dict[str, bytes] = {}
    for p, e in selection.wanted.items():
        if p in selection.files:
            content = blobs[e.sha]
            if len(content) <= limits.max_file_bytes:
                result[p] = content
            elif selection.under(p):
                raise LimitExceeded(p, f"{len(content)} bytes, more than the limit of {limits.max_file_bytes} per file")

    for link in sorted(selection.links):
        inside = selection.under(link)
        try:
            target = _walk(link, selection, targets)
        except _Unresolvable as failure:
            if inside:
                raise UnsafeContent(link, failure.reason) from None
            continue
        if not is_manifest(link):
            continue  # a README link or the like: not ours to apply, whatever it names
        if not is_manifest(target):
            if inside:
                raise UnsafeContent(link, "a symbolic link to a file that is not a manifest (.yaml, .yml, .json)")
            continue
        if target not in result:  # offered by select unless it was over the per-file cap
            if inside:
                raise LimitExceeded(link, f"links to a file of more than {limits.max_file_bytes} bytes")
            continue
        result[link] = result[target]

    inside_paths = [p for p in result if selection.under(p)]
    if len(inside_paths) > limits.max_files:
        raise LimitExceeded(selection.path, f"{len(inside_paths)} manifests, more than the limit of {limits.max_files}")
    total = sum(len(result[p]) for p in inside_paths)
    if total > limits.max_total_bytes:
        raise LimitExceeded(selection.path, f"{total} bytes of manifests, more than the limit of {limits.max_total_bytes}")
    return result
