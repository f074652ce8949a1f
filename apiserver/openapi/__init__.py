"""The API server's OpenAPI documents, built from the served kinds' type facts, the way kubectl reads them.

Data flow: kind descriptors (``names.KindLike``: the kind strategies, CRD strategies included)
+ the facts table (``facts``: merge keys, list types, defaults per generated model field) ->
``components.ComponentBuilder`` (one schema per type, memoized) -> ``v3.OpenAPIv3`` (one
document per group-version, hashed for kubectl's cache) and ``v2.OpenAPIv2`` (one swagger 2.0
document, served as JSON or as gnostic protobuf by ``v2proto``). ``schema_for(kind)`` hands
the same schemas to strategic merge patch and server-side apply as a
``machinery.schemaview.Schema``.

Wiring (the app): build one ``OpenAPI(kinds, facts)`` at startup (``warm()`` it off the event
loop), call ``update(kinds)`` whenever the served set changes (CRDs created, changed, deleted;
it is cheap and drops only the documents that change), and serve

- ``GET /openapi/v3`` -> ``v3.index()``;
- ``GET /openapi/v3/{path}`` -> ``v3.document(path)`` (404 when None); when the request's
  ``hash`` differs from ``v3.etag(path)`` redirect (301) to ``v3.url(path)``; when it matches
  add ``Cache-Control: public, immutable``; ``ETag`` is the quoted hash;
- ``GET /openapi/v2`` -> ``v2.protobuf()`` with ``Content-Type: PROTOBUF_CONTENT_TYPE`` when
  ``wants_protobuf(Accept)``, else ``v2.json()``; ``ETag`` is ``v2.etag()``.
"""

from __future__ import annotations

from collections.abc import Iterable

from machinery.schemaview import Schema

from .components import ComponentBuilder, build_components, unknown_facts
from .facts import ATOMIC, MERGED_SET, NO_DEFAULT, RETAIN_KEYS, SET, Facts, FactsTable, keyed
from .names import KindLike, crd_schema_name, kind_schema_name, list_schema_name
from .v2 import PROTOBUF_CONTENT_TYPE, OpenAPIv2, encode_v2_protobuf, swagger_v2, wants_protobuf
from .v3 import OpenAPIv3, schema_for


class OpenAPI:
    """Both documents over one component builder; what the app holds."""

    def __init__(self, kinds: Iterable[KindLike], facts: FactsTable) -> None:
        kinds = list(kinds)
        self.builder = ComponentBuilder(facts)
        self.v3 = OpenAPIv3(kinds, facts, builder=self.builder)
        self.v2 = OpenAPIv2(kinds, facts, builder=self.builder)

    def update(self, kinds: Iterable[KindLike]) -> None:
        """The served kinds changed: drop the documents whose content changes."""
        kinds = list(kinds)
        self.v3.update(kinds)
        self.v2.update(kinds)

    def schema_for(self, kind: KindLike) -> Schema:
        return self.v3.schema_for(kind)

    def warm(self) -> None:
        """Build every document now (the first build imports the generated client: ~1 s); for a
        worker thread at startup, so that no request pays for it."""
        self.v3.index()
        self.v2.protobuf()
        self.v2.json()


__all__ = [
    "ATOMIC", "ComponentBuilder", "Facts", "FactsTable", "KindLike", "MERGED_SET", "NO_DEFAULT", "OpenAPI",
    "OpenAPIv2", "OpenAPIv3", "PROTOBUF_CONTENT_TYPE", "RETAIN_KEYS", "SET", "build_components",
    "crd_schema_name", "encode_v2_protobuf", "keyed", "kind_schema_name", "list_schema_name", "schema_for",
    "swagger_v2", "unknown_facts", "wants_protobuf",
]
