"""One GitSync's source: fetch its ref, read a revision safely, build its objects.

Data flow: the GitSync's spec (URL, ref, path, secretRef) -> credentials from its Secret (kept in
memory only, never logged) -> ``git.Mirrors.fetch`` (one shallow mirror per URL and ref) -> the
commit SHA -> ``Revision`` -> ``build``: the tree's listing -> ``source.select`` (caps, submodules,
which blobs to read) -> ``git.Mirrors.read_blobs`` -> ``source.resolve`` (symlinks inside the
repository only) -> ``build.build`` (plain folders or the kustomize subset) -> ``Built``.

Everything that can go wrong becomes a ``SourceError`` whose text is safe to show in the status:
``unsafe`` marks content that breaks the safety rules (``UnsafeContent``), which names only the
offending path inside the repository.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass, field
from typing import Any

from machinery import errors
from machinery.client import ApiClient

from .build import build
from .git import Credentials, GitError, Mirrors
from .source import Limits, PathNotFound, UnsafeContent, normalize_path, resolve, select
from .plan import Failure
from .spec import SOURCE_SECRET_KEYS, SyncSpec


class SourceError(Exception):
    def __init__(self, message: str, *, unsafe: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe


@dataclass(frozen=True)
class Revision:
    url: str
    ref_name: str
    sha: str

    @property
    def name(self) -> str:
        """Flux's form: ``main@sha1:<sha>`` (a pinned commit: ``sha1:<sha>``)."""
        return f"{self.ref_name}@sha1:{self.sha}" if self.ref_name else f"sha1:{self.sha}"


@dataclass
class Built:
    objects: list[tuple[dict[str, Any], str, int]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    # The path is not in the revision at all (Git keeps no empty folders: its files were all
    # deleted, or the path is mistyped): no objects, which prunes only when the spec allows it.
    missing_path: str | None = None


def _ref_name(spec: SyncSpec) -> str:
    return spec.ref.branch or spec.ref.tag or ""


class Source:
    def __init__(self, mirrors: Mirrors, *, limits: Limits | None = None) -> None:
        self.mirrors = mirrors
        self.limits = limits or Limits()

    async def secret_data(self, client: ApiClient, namespace: str, name: str) -> dict[str, bytes]:
        try:
            secret = await client.get(("v1", "secrets"), name, namespace=namespace)
        except errors.NotFoundError:
            raise SourceError(f'secret "{name}" not found in namespace "{namespace}"') from None
        out: dict[str, bytes] = {}
        for k, v in (secret.get("data") or {}).items():
            try:
                out[k] = base64.b64decode(str(v))
            except ValueError:
                raise SourceError(f'secret "{name}": key "{k}" is not base64') from None
        return out

    async def credentials(self, client: ApiClient, namespace: str, spec: SyncSpec) -> Credentials | None:
        if not spec.secret_name:
            return None
        data = await self.secret_data(client, namespace, spec.secret_name)
        if not any(k in data for k in SOURCE_SECRET_KEYS):
            raise SourceError(f'secret "{spec.secret_name}" has none of the keys {", ".join(SOURCE_SECRET_KEYS)}')
        if "identity" in data and "known_hosts" not in data:
            raise SourceError(f'secret "{spec.secret_name}": an SSH identity needs known_hosts too')

        def text(k: str) -> str | None:
            return data[k].decode(errors="replace") if k in data else None

        return Credentials(username=text("username"), password=text("password"), identity=data.get("identity"),
                           known_hosts=data.get("known_hosts"))

    async def fetch(self, client: ApiClient, namespace: str, spec: SyncSpec) -> Revision:
        credentials = await self.credentials(client, namespace, spec)
        try:
            sha = await self.mirrors.fetch(spec.url, spec.ref, credentials=credentials, timeout=spec.timeout)
        except GitError as e:
            raise SourceError(str(e)) from None
        return Revision(spec.url, _ref_name(spec), sha)

    async def revision(self, client: ApiClient, namespace: str, spec: SyncSpec, sha: str) -> Revision:
        """An older commit of the same source (the applied one, after a restart)."""
        credentials = await self.credentials(client, namespace, spec)
        try:
            await self.mirrors.fetch_commit(spec.url, spec.ref, sha, credentials=credentials, timeout=spec.timeout)
        except GitError as e:
            raise SourceError(str(e)) from None
        return Revision(spec.url, _ref_name(spec), sha)

    async def build(self, rev: Revision, spec: SyncSpec) -> Built:
        try:
            return await asyncio.wait_for(self._build(rev, spec), spec.timeout)
        except asyncio.TimeoutError:
            raise SourceError(f"reading and building revision {rev.name} took longer than {spec.timeout:g}s") from None

    async def _build(self, rev: Revision, spec: SyncSpec) -> Built:
        ref = spec.ref
        try:
            path = normalize_path(spec.path)
            entries = await self.mirrors.tree(rev.url, ref, rev.sha)
            selection = select(entries, path, limits=self.limits)
            blobs = await self.mirrors.read_blobs(rev.url, ref, selection.shas)
            files = resolve(selection, blobs)
        except UnsafeContent as e:
            raise SourceError(f"unsafe content: {e}", unsafe=True) from None
        except PathNotFound as e:
            return Built(missing_path=str(e))
        except GitError as e:
            raise SourceError(str(e)) from None
        # The build is pure CPU: off the event loop, so a big revision does not stall the watches.
        result = await asyncio.to_thread(build, files, path)
        out = Built()
        for item in result.items:
            out.objects.append((item.obj, item.file, item.document))
        for err in result.errors:
            out.failures.append(Failure(err.file, err.document, err.kind, err.name, err.message))
        return out
