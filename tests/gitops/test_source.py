"""gitops.source: what a revision may contribute, decided from its listing and blobs alone.

Table-driven tests over hand-made trees (no Git: ``select`` and ``resolve`` are pure), then one
end-to-end test through a real repository, a real fetch and real blobs: a committed symbolic link
to a canary file outside the repository must be refused without its content leaking anywhere.
"""

from __future__ import annotations

import hashlib
import secrets
import subprocess
from pathlib import Path
from typing import Mapping

import pytest

from gitops.git import Mirrors
from gitops.source import (MAX_SYMLINK_HOPS, LimitExceeded, Limits, PathNotFound, Ref, TreeEntry, UnsafeContent,
                           normalize_path, resolve, select)
from tests.gitops.gitrepo import GitRepo


def _sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Tree:
    """A revision as ``Mirrors.tree`` and ``read_blobs`` would give it: entries plus blobs by SHA."""

    def __init__(self, files: Mapping[str, bytes | int] = {}, links: Mapping[str, str] = {},
                 submodules: tuple[str, ...] = ()) -> None:
        self.entries: list[TreeEntry] = []
        self.blobs: dict[str, bytes] = {}
        for path, content in files.items():
            data = b"x" * content if isinstance(content, int) else content
            self._add(path, "100644", data)
        for path, target in links.items():
            self._add(path, "120000", target.encode())
        for path in submodules:
            self.entries.append(TreeEntry(path=path, mode="160000", type="commit", sha="a" * 40, size=0))

    def _add(self, path: str, mode: str, data: bytes) -> None:
        sha = _sha(data)
        self.entries.append(TreeEntry(path=path, mode=mode, type="blob", sha=sha, size=len(data)))
        self.blobs[sha] = data

    def result(self, path: str, limits: Limits = Limits()) -> dict[str, bytes]:
        selection = select(self.entries, path, limits=limits)
        # Only what select asked for is handed over, as the reconciler does.
        return resolve(selection, {sha: self.blobs[sha] for sha in selection.shas})


# -- normalize_path --

@pytest.mark.parametrize("given, expected", [
    ("", ""), (".", ""), ("./", ""), ("deploy", "deploy"), ("./deploy", "deploy"), ("deploy/", "deploy"),
    ("deploy//prod/./", "deploy/prod"), ("a/../b", "b"), ("a/b/..", "a"), ("./a/./b/../c/", "a/c"),
])
def test_normalize_path(given: str, expected: str) -> None:
    assert normalize_path(given) == expected


@pytest.mark.parametrize("given", ["/", "/etc", "/deploy", "..", "../x", "a/../../x", "./../x", "a/b/../../..",
                                   "a\x00b"])
def test_normalize_path_rejects_leaving_the_repository(given: str) -> None:
    with pytest.raises(UnsafeContent) as info:
        normalize_path(given)
    assert info.value.path == given.replace("\x00", "?")


# -- select and resolve: what comes out --

MANIFESTS: dict[str, bytes | int] = {"deploy/app.yaml": b"kind: A\n", "deploy/svc.yml": b"kind: B\n", "deploy/cm.json": b"{}",
             "deploy/README.md": b"# docs\n", "base/kustomization.yaml": b"resources: []\n",
             "other/big.yaml": 5000, "Makefile": b"all:\n"}


@pytest.mark.parametrize("case, files, links, path, expected", [
    ("manifests under the path and elsewhere; other files are not read",
     MANIFESTS, {}, "deploy",
     {"deploy/app.yaml": b"kind: A\n", "deploy/svc.yml": b"kind: B\n", "deploy/cm.json": b"{}",
      "base/kustomization.yaml": b"resources: []\n", "other/big.yaml": b"x" * 5000}),
    ("the repository root", {"a.yaml": b"a", "b/c.YAML": b"c"}, {}, "./", {"a.yaml": b"a", "b/c.YAML": b"c"}),
    ("kustomize's Kustomization file has no suffix", {"k/Kustomization": b"k", "k/kustomization": b"no"}, {}, "k",
     {"k/Kustomization": b"k"}),
    ("a link to a sibling file", {"deploy/a.yaml": b"A"}, {"deploy/b.yaml": "a.yaml"}, "deploy",
     {"deploy/a.yaml": b"A", "deploy/b.yaml": b"A"}),
    ("a link into another directory of the repository", {"base/a.yaml": b"A"}, {"deploy/a.yaml": "../base/a.yaml"},
     "deploy", {"base/a.yaml": b"A", "deploy/a.yaml": b"A"}),
    ("a chain of links inside the repository", {"base/a.yaml": b"A"},
     {"deploy/1.yaml": "2.yaml", "deploy/2.yaml": "../mid/3.yaml", "mid/3.yaml": "../base/a.yaml"}, "deploy",
     {"base/a.yaml": b"A", "deploy/1.yaml": b"A", "deploy/2.yaml": b"A", "mid/3.yaml": b"A"}),
    ("a link through a directory link", {"real/a.yaml": b"A"}, {"alias": "real", "deploy/a.yaml": "../alias/a.yaml"},
     "deploy", {"real/a.yaml": b"A", "deploy/a.yaml": b"A"}),
    ("a link that climbs and comes back down inside", {"base/a.yaml": b"A"},
     {"deploy/x/a.yaml": "../../base/../base/./a.yaml"}, "deploy", {"base/a.yaml": b"A", "deploy/x/a.yaml": b"A"}),
    ("a chain as long as the limit", {"deploy/end.yaml": b"E"},
     {f"deploy/{i}.yaml": f"{i + 1}.yaml" if i < MAX_SYMLINK_HOPS - 1 else "end.yaml" for i in range(MAX_SYMLINK_HOPS)},
     "deploy", {"deploy/end.yaml": b"E", **{f"deploy/{i}.yaml": b"E" for i in range(MAX_SYMLINK_HOPS)}}),
    ("a link not named like a manifest is left out", {"deploy/a.yaml": b"A"}, {"deploy/notes": "a.yaml"}, "deploy",
     {"deploy/a.yaml": b"A"}),
    ("unsafe links outside the path are left out, not errors", {"deploy/a.yaml": b"A"},
     {"tools/python": "/usr/bin/python3", "other/up.yaml": "../../x.yaml", "other/dir": "../deploy",
      "other/loop.yaml": "loop.yaml"}, "deploy", {"deploy/a.yaml": b"A"}),
])
def test_resolve(case: str, files: Mapping[str, bytes | int], links: Mapping[str, str], path: str,
                 expected: dict[str, bytes]) -> None:
    assert Tree(files, links).result(path) == expected, case


def test_select_reads_only_manifests_and_links() -> None:
    tree = Tree(MANIFESTS, {"deploy/l.yaml": "app.yaml"})
    selection = select(tree.entries, "deploy", limits=Limits(max_file_bytes=1000))
    assert sorted(selection.wanted) == ["base/kustomization.yaml", "deploy/app.yaml", "deploy/cm.json",
                                        "deploy/l.yaml", "deploy/svc.yml"]
    # other/big.yaml (5000 bytes, outside the path) is over the cap: not offered, not an error.
    assert all(e.size <= 1000 for e in selection.wanted.values())
    assert len(selection.shas) == len(set(selection.shas)) == 5


# -- select and resolve: what is refused, and that the message names the repository path only --

TARGETS_THAT_MUST_NOT_LEAK = "etc/passwd"


@pytest.mark.parametrize("case, files, links, submodules, path, error, bad_path", [
    ("an absolute link", {}, {"deploy/passwd.yaml": "/etc/passwd"}, (), "deploy", UnsafeContent, "deploy/passwd.yaml"),
    ("a link leaving the repository", {"deploy/a.yaml": b"A"}, {"deploy/passwd.yaml": "../../etc/passwd"}, (),
     "deploy", UnsafeContent, "deploy/passwd.yaml"),
    ("a link leaving by one level only", {}, {"x.yaml": "../etc/passwd"}, (), "", UnsafeContent, "x.yaml"),
    ("a link that leaves and comes back", {"a.yaml": b"A"}, {"deploy/a.yaml": "../../repo/a.yaml"}, (), "deploy",
     UnsafeContent, "deploy/a.yaml"),
    ("a chain whose last link leaves", {}, {"deploy/1.yaml": "2.yaml", "deploy/2.yaml": "../../etc/passwd"}, (),
     "deploy", UnsafeContent, "deploy/1.yaml"),
    ("a chain through an absolute link", {}, {"deploy/1.yaml": "../mid/2.yaml", "mid/2.yaml": "/etc/passwd"}, (),
     "deploy", UnsafeContent, "deploy/1.yaml"),
    ("a loop of two links", {}, {"deploy/a.yaml": "b.yaml", "deploy/b.yaml": "a.yaml"}, (), "deploy",
     UnsafeContent, "deploy/a.yaml"),
    ("a link to itself", {}, {"deploy/a.yaml": "a.yaml"}, (), "deploy", UnsafeContent, "deploy/a.yaml"),
    ("a chain longer than the limit", {"deploy/end.yaml": b"E"},
     {**{f"deploy/{i}.yaml": f"{i + 1}.yaml" for i in range(MAX_SYMLINK_HOPS)},
      f"deploy/{MAX_SYMLINK_HOPS}.yaml": "end.yaml"}, (), "deploy", UnsafeContent, "deploy/0.yaml"),
    ("a dangling link", {}, {"deploy/a.yaml": "gone.yaml"}, (), "deploy", UnsafeContent, "deploy/a.yaml"),
    ("a link to a directory", {"base/a.yaml": b"A"}, {"deploy/base": "../base"}, (), "deploy",
     UnsafeContent, "deploy/base"),
    ("a link to the repository root", {}, {"deploy/all": ".."}, (), "deploy", UnsafeContent, "deploy/all"),
    ("a link through a file", {"deploy/a.yaml": b"A"}, {"deploy/b.yaml": "a.yaml/x.yaml"}, (), "deploy",
     UnsafeContent, "deploy/b.yaml"),
    ("a manifest link to a non-manifest file", {"deploy/key.pem": b"K"}, {"deploy/k.yaml": "key.pem"}, (),
     "deploy", UnsafeContent, "deploy/k.yaml"),
    ("a link into a submodule", {}, {"deploy/a.yaml": "../vendor/a.yaml"}, ("vendor",), "deploy",
     UnsafeContent, "deploy/a.yaml"),
    ("the synced path is a link", {"real/a.yaml": b"A"}, {"deploy": "real"}, (), "deploy", UnsafeContent, "deploy"),
    ("the synced path goes through a link", {"real/x/a.yaml": b"A"}, {"deploy": "real"}, (), "deploy/x",
     UnsafeContent, "deploy"),
    ("a submodule under the path", {"deploy/a.yaml": b"A"}, {}, ("deploy/vendor",), "deploy",
     UnsafeContent, "deploy/vendor"),
    ("the path is a submodule", {}, {}, ("deploy",), "deploy", UnsafeContent, "deploy"),
    ("a missing path", {"other/a.yaml": b"A"}, {}, (), "deploy", PathNotFound, "deploy"),
    ("the path is a file", {"deploy": b"A"}, {}, (), "deploy", PathNotFound, "deploy"),
    ("the path is under a file", {"deploy": b"A"}, {}, (), "deploy/x", PathNotFound, "deploy/x"),
])
def test_refused(case: str, files: Mapping[str, bytes | int], links: Mapping[str, str], submodules: tuple[str, ...],
                 path: str, error: type[Exception], bad_path: str) -> None:
    with pytest.raises(error) as info:
        Tree(files, links, submodules).result(path)
    assert type(info.value) is error, case
    assert getattr(info.value, "path") == bad_path, case
    message = str(info.value)
    assert message.startswith(f"{bad_path}: "), message
    # Only the path inside the repository: never the link's target.
    assert TARGETS_THAT_MUST_NOT_LEAK not in message and "../" not in message, message


def test_a_submodule_elsewhere_is_fine() -> None:
    assert Tree({"deploy/a.yaml": b"A"}, {}, ("vendor/lib",)).result("deploy") == {"deploy/a.yaml": b"A"}


@pytest.mark.parametrize("bad", ["../x.yaml", "a/../../x.yaml", "/etc/x.yaml", "a//b.yaml", "./a.yaml", "a/."])
def test_an_entry_path_git_could_not_have_written_is_refused(bad: str) -> None:
    entries = [TreeEntry(path=bad, mode="100644", type="blob", sha="b" * 40, size=1)]
    with pytest.raises(UnsafeContent) as info:
        select(entries, "", limits=Limits())
    assert info.value.path == bad


# -- the caps --

@pytest.mark.parametrize("case, files, links, path, limits, bad_path", [
    ("too many files under the path", {f"deploy/{i}.yaml": b"x" for i in range(4)}, {}, "deploy",
     Limits(max_files=3), "deploy"),
    ("links count as files", {f"deploy/{i}.yaml": b"x" for i in range(3)}, {"deploy/l.yaml": "0.yaml"}, "deploy",
     Limits(max_files=3), "deploy"),
    ("a file too big", {"deploy/a.yaml": 10, "deploy/big.yaml": 11}, {}, "deploy", Limits(max_file_bytes=10),
     "deploy/big.yaml"),
    ("too many bytes in all", {"deploy/a.yaml": 6, "deploy/b.yaml": 6}, {}, "deploy", Limits(max_total_bytes=11),
     "deploy"),
    ("a link under the path to a big file elsewhere", {"other/big.yaml": 11}, {"deploy/big.yaml": "../other/big.yaml"},
     "deploy", Limits(max_file_bytes=10), "deploy/big.yaml"),
    ("links push the total over", {"other/a.yaml": 6, "deploy/b.yaml": 6}, {"deploy/a.yaml": "../other/a.yaml"},
     "deploy", Limits(max_total_bytes=11), "deploy"),
    ("the root as the path", {f"{i}.yaml": b"x" for i in range(3)}, {}, "", Limits(max_files=2), ""),
])
def test_limits(case: str, files: Mapping[str, bytes | int], links: Mapping[str, str], path: str, limits: Limits,
                bad_path: str) -> None:
    with pytest.raises(LimitExceeded) as info:
        Tree(files, links).result(path, limits)
    assert info.value.path == bad_path, case
    assert str(info.value).startswith(f"{bad_path or '.'}: "), str(info.value)


def test_limits_only_apply_under_the_path() -> None:
    tree = Tree({"deploy/a.yaml": 10, "other/big.yaml": 11, "other/many/1.yaml": 1, "other/many/2.yaml": 1,
                 "deploy/big.bin": 1000})
    result = tree.result("deploy", Limits(max_file_bytes=10, max_files=2, max_total_bytes=12))
    # other/big.yaml is simply not offered; deploy/big.bin is not a manifest at all.
    assert sorted(result) == ["deploy/a.yaml", "other/many/1.yaml", "other/many/2.yaml"]


def test_resolve_needs_every_selected_blob() -> None:
    tree = Tree({"deploy/a.yaml": b"A"})
    with pytest.raises(ValueError):
        resolve(select(tree.entries, "deploy", limits=Limits()), {})


# -- Ref --

@pytest.mark.parametrize("ref, described", [
    (Ref(branch="main"), "branch main"), (Ref(branch="feature/x-1"), "branch feature/x-1"),
    (Ref(tag="v1.2.3"), "tag v1.2.3"), (Ref(commit="a" * 40), f"commit {'a' * 40}"),
])
def test_ref(ref: Ref, described: str) -> None:
    assert ref.describe() == described


@pytest.mark.parametrize("kwargs", [
    {}, {"branch": "main", "tag": "v1"}, {"branch": ""}, {"branch": "-upload-pack=x"}, {"branch": "a..b"},
    {"branch": "a b"}, {"branch": "a:b"}, {"tag": "x.lock"}, {"branch": "/main"}, {"branch": "a/.b"},
    {"commit": "abc123"}, {"commit": "A" * 40}, {"commit": "g" * 40},
])
def test_bad_refs(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        Ref(**kwargs)


# -- end to end: a real repository, a real fetch, a link to a file outside the repository --

async def test_a_link_to_a_canary_outside_the_repository_never_leaks(tmp_path: Path) -> None:
    canary = secrets.token_hex(16)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(f"canary: {canary}\n")
    repo = GitRepo.create(tmp_path)
    repo.write("deploy/app.yaml", "kind: ConfigMap\n")
    # Relative (repo/deploy -> ../../outside) and absolute forms of the same escape.
    repo.symlink("deploy/leak.yaml", "../../outside/secret.yaml")
    repo.symlink("deploy/leak-abs.yaml", str(outside / "secret.yaml"))
    sha = repo.commit()
    assert canary in (repo.root / "deploy" / "leak.yaml").read_text()  # the link works on disk

    ref = Ref(branch="main")
    mirrors = Mirrors(tmp_path / "mirrors")
    assert await mirrors.fetch(repo.url, ref) == sha
    entries = await mirrors.tree(repo.url, ref, sha)
    selection = select(entries, "deploy", limits=Limits())
    blobs = await mirrors.read_blobs(repo.url, ref, selection.shas)
    with pytest.raises(UnsafeContent) as info:
        resolve(selection, blobs)

    assert info.value.path in ("deploy/leak.yaml", "deploy/leak-abs.yaml")
    for text in (str(info.value), repr(info.value), info.value.reason):
        assert canary not in text and "outside" not in text
    for content in blobs.values():
        assert canary.encode() not in content
    # No object in the mirror holds the canary either: Git stored the link, not what it names.
    for mirror in (tmp_path / "mirrors").iterdir():
        objects = subprocess.run(["git", f"--git-dir={mirror}", "cat-file", "--batch-all-objects", "--batch"],
                                 capture_output=True, check=True, timeout=60).stdout
        assert b"leak.yaml" in objects and canary.encode() not in objects

    # The same repository synced from a path without the links is fine, and still leaks nothing.
    repo.remove("deploy/leak.yaml")
    repo.remove("deploy/leak-abs.yaml")
    sha = repo.commit()
    assert await mirrors.fetch(repo.url, ref) == sha
    selection = select(await mirrors.tree(repo.url, ref, sha), "deploy", limits=Limits())
    result = resolve(selection, await mirrors.read_blobs(repo.url, ref, selection.shas))
    assert result == {"deploy/app.yaml": b"kind: ConfigMap\n"}
