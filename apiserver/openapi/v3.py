"""OpenAPI v3: one document per served group-version, an index with content hashes, and schemas by kind.

Data flow: the served kinds, grouped by group-version -> per group-version: the kinds' paths
(``paths.kind_paths``) and every component schema they reach (``components.closure`` over the
``ComponentBuilder``'s memo) -> one JSON document (keys sorted, so equal content is equal bytes)
-> its SHA-512 (upper-case hex, as Kubernetes computes it) is the ``hash`` of the index URL
``/openapi/v3/apis/apps/v1?hash=...``. kubectl caches documents by that URL, so the hash must
change whenever the document does, and only then.

Caching: documents are built on first request and kept per group-version; ``update(kinds)``
(after a CRD is created, changed or deleted) drops exactly the group-versions whose kinds changed
(by a signature of their descriptors, the CRD schema included). Component schemas of generated
models are built once per builder and shared by every document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from machinery.schemaview import Schema

from . import names
from .components import ComponentBuilder, closure, meta_roots, subresource_models, tag_meta_kinds, to_json
from .facts import FactsTable
from .names import KindLike
from .paths import PathItem, group_version_root, kind_paths

INFO = {"title": "Kubernetes", "version": "unversioned"}


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc, default=to_json, option=orjson.OPT_SORT_KEYS)


def etag_of(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest().upper()


def kind_signature(kind: KindLike) -> Any:
    return [kind.group, kind.version, kind.kind, kind.plural, kind.namespaced, list(kind.subresources),
            list(kind.verbs), kind.model, kind.strategic_merge, kind.crd_schema]


def kind_paths_and_roots(builder: ComponentBuilder, kind: KindLike) -> tuple[dict[str, PathItem], list[str]]:
    """The paths of one kind and the component names they name directly."""
    kind_name, list_name = builder.kind(kind)
    sub_names = subresource_models(builder, kind)
    return kind_paths(kind, kind_name=kind_name, list_name=list_name, subresource_names=sub_names), \
        [kind_name, list_name, *sub_names.values()]


def group_version_document(builder: ComponentBuilder, group: str, version: str,
                           kinds: Iterable[KindLike]) -> dict[str, Any]:
    """The v3 document of one group-version."""
    paths: dict[str, PathItem] = dict(group_version_root(group, version))
    roots: list[str] = []
    for kind in kinds:
        kind_paths_, kind_roots = kind_paths_and_roots(builder, kind)
        paths.update(kind_paths_)
        roots.extend(kind_roots)
    roots.extend(meta_roots(builder))
    components = {name: builder.schemas[name] for name in closure(builder.schemas, roots)}
    tag_meta_kinds(components, [(group, version)])
    return {"openapi": "3.0.0", "info": dict(INFO), "paths": paths, "components": {"schemas": components}}


class OpenAPIv3:
    """The ``/openapi/v3`` documents of a set of served kinds, built lazily and cached."""

    def __init__(self, kinds: Iterable[KindLike], facts: FactsTable, *,
                 builder: ComponentBuilder | None = None) -> None:
        self.builder = builder or ComponentBuilder(facts)
        self._kinds: dict[str, list[KindLike]] = {}
        self._gvs: dict[str, tuple[str, str]] = {}
        self._signatures: dict[str, bytes] = {}
        self._docs: dict[str, tuple[bytes, str]] = {}
        self.update(kinds)

    def update(self, kinds: Iterable[KindLike]) -> None:
        """Serve this set of kinds from now on; rebuilds only the group-versions that changed."""
        with self.builder.lock:
            self._update(list(kinds))

    def _update(self, kinds: list[KindLike]) -> None:
        grouped: dict[str, list[KindLike]] = {}
        gvs: dict[str, tuple[str, str]] = {}
        for kind in kinds:
            path = names.gv_path(kind.group, kind.version)
            grouped.setdefault(path, []).append(kind)
            gvs[path] = (kind.group, kind.version)
        signatures = {path: dumps([kind_signature(k) for k in ks]) for path, ks in grouped.items()}
        for path in list(self._docs):
            if signatures.get(path) != self._signatures.get(path):
                del self._docs[path]
        served = {(k.group, k.version, k.kind) for ks in grouped.values() for k in ks}
        for ks in self._kinds.values():
            for k in ks:
                if k.model is None and (k.group, k.version, k.kind) not in served:
                    self.builder.forget_crd(k.group, k.version, k.kind)
        self._kinds, self._gvs, self._signatures = grouped, gvs, signatures

    # ------------------------------------------------------------------ documents
    def paths(self) -> list[str]:
        """``["api/v1", "apis/apps/v1", ...]``."""
        return list(self._kinds)

    def _entry(self, path: str) -> tuple[bytes, str] | None:
        with self.builder.lock:
            return self._build(path.strip("/"))

    def _build(self, path: str) -> tuple[bytes, str] | None:
        cached = self._docs.get(path)
        if cached is not None:
            return cached
        kinds = self._kinds.get(path)
        if kinds is None:
            return None
        group, version = self._gvs[path]
        data = dumps(group_version_document(self.builder, group, version, kinds))
        self._docs[path] = (data, etag_of(data))
        return self._docs[path]

    def document(self, path: str) -> bytes | None:
        """The JSON document of ``api/v1`` / ``apis/apps/v1``; None when that is not served."""
        entry = self._entry(path)
        return entry[0] if entry else None

    def etag(self, path: str) -> str | None:
        """The document's hash: what the index URL carries and the ETag the route sends."""
        entry = self._entry(path)
        return entry[1] if entry else None

    def url(self, path: str) -> str | None:
        etag = self.etag(path)
        return None if etag is None else f"/openapi/v3/{path.strip('/')}?hash={etag}"

    def index(self) -> dict[str, Any]:
        """``GET /openapi/v3``: ``{"paths": {"apis/apps/v1": {"serverRelativeURL": ...}}}``."""
        with self.builder.lock:
            return {"paths": {path: {"serverRelativeURL": self.url(path)} for path in self._kinds}}

    # ------------------------------------------------------------------ schemas for the server
    def schema_for(self, kind: KindLike) -> Schema:
        """The kind's schema as a ``Schema`` (its references resolve through ``defs``), for
        strategic merge patch and server-side apply."""
        with self.builder.lock:
            name, _ = self.builder.kind(kind)
            return Schema(self.builder.schemas[name], self.builder.schemas)


def schema_for(kind: KindLike, facts: FactsTable, *, builder: ComponentBuilder | None = None) -> Schema:
    """``OpenAPIv3.schema_for`` without a document cache."""
    builder = builder or ComponentBuilder(facts)
    name, _ = builder.kind(kind)
    return Schema(builder.schemas[name], builder.schemas)
