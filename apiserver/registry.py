"""The generic REST logic of every resource: what Kubernetes' generic registry store does.

Data flow of a write: body -> the kind's strategy (``apiserver/kinds``) decodes it (prune unknown
fields, type errors -> 400) -> metadata rules (uid, timestamps, generation, generateName,
immutable fields) -> ``strategy.defaults`` -> (a create: mutating admission, ``apiserver/admission``)
-> ``prepare_for_create``/``prepare_for_update`` -> ``validate_object`` (-> 422 with causes, nothing
written) -> (validating admission, LimitRange bounds and ResourceQuota charges, -> 403)
-> ``before_create``/``before_update``
allocations (``apiserver/allocators.py``: kept in etcd, released from the watch after the write) ->
storage create / compare-and-swap on the expected revision -> the new ``resourceVersion``.
Nothing here branches on a kind: every kind-specific rule is a strategy hook. Reads and watches come from the
per-resource ``WatchCache``. A GET, LIST or watch without a resourceVersion is a consistent read,
whichever API server took the write (KEP-2340, consistent reads from cache): one range request
asks etcd for its revision and the range's key count and newest mod_revision (``Storage.probe``),
the read waits until the cache holds that state (``WatchCache.caught_up``, usually at once; at
most ``consistent_read_wait_seconds``, then it reads etcd directly) and is served from the cache.
resourceVersion="0" reads the cache as it is, after this API server's own last write to that
resource (no etcd round trip); resourceVersion=N reads the cache once it has seen N.

Storage errors become API errors here (NotFound, AlreadyExists, Conflict, Gone), in one place.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import builtins
import copy
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import json

import orjson
import yaml

from machinery import errors
from machinery.errors import StatusCause
from machinery.selectors import SelectorError, parse_field_selector, parse_label_selector

from machinery import patch as patches

from .cache import Entry, ExpiredError, Transform, Watcher, WatchCache
from .decode import DecodeError, decode
from .kinds import type_facts, validate_object
from .admission import Admission
from .allocators import ServiceAllocations
from .kinds.base import CreateContext
from .fieldmanager import FieldManager, Writer
from .openapi import OpenAPI
from .probes import SharedProbe
from .resources import Resource, ResourceTable
from .storage import (
    KeyExistsError,
    KeyNotFoundError,
    RevisionConflictError,
    Storage,
    StorageUnavailableError,
    UnreadableValueError,
)

log = logging.getLogger(__name__)

_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName alphabet
_GUARANTEED_UPDATE_TRIES = 16
# The field manager of the apiserver's own writes (system namespaces, CRD status, ...).
SYSTEM_WRITER = Writer("kube-apiserver")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def now_rfc3339(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RegistrySettings:
    # --service-cluster-ip-range: the upper half of the kubelets' default pod network 172.28.0.0/16.
    service_cidr: str = "172.28.128.0/17"
    service_node_port_range: str = "30000-32767"
    read_wait_seconds: float = 5.0
    # How long a consistent read waits for the watch cache before it reads etcd directly.
    consistent_read_wait_seconds: float = 1.0
    # The DefaultTolerationSeconds admission plugin's --default-*-toleration-seconds.
    default_not_ready_toleration_seconds: int = 300
    default_unreachable_toleration_seconds: int = 300
    # Pod Security admission: the enforce level of namespaces without the label (--pod-security-default).
    pod_security_default: str = "baseline"
    # ServiceAccount admission mounts the API token volume (kube-api-access-*) only when the API
    # server signs ServiceAccount tokens that it verifies (--service-account-signing-key-file).
    service_account_token_volume: bool = False

# Generated models of the bodies subresources take (not kinds of their own).
_SUBRESOURCE_MODELS = {"Binding": "V1Binding", "Scale": "V1Scale"}


@dataclass
class WriteResult:
    obj: dict[str, Any]
    raw: bytes
    warnings: list[str] = field(default_factory=list)
    created: bool = False


@dataclass
class ListResult:
    items: list[Entry]
    resource_version: int
    continue_token: str = ""
    remaining: int | None = None


class Registry:
    def __init__(self, storage: Storage, resources: ResourceTable, *,
                 settings: RegistrySettings | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.storage = storage
        self.resources = resources
        # The OpenAPI documents double as the schemas strategic merge patch and server-side apply read.
        self.openapi = OpenAPI(resources.all, type_facts(resources.all))
        self.fields = FieldManager(self.openapi)
        self.settings = settings or RegistrySettings()
        self.allocations = ServiceAllocations(storage, cidr=self.settings.service_cidr,
                                              node_port_range=self.settings.service_node_port_range)
        self.clock = clock
        self.admission = Admission(self)  # LimitRanger, ResourceQuota (apiserver/admission)
        # Only readable kinds keep a cache: the create-only reviews (apiserver/reviews.py) store nothing.
        self.caches: dict[str, WatchCache] = {r.group_resource: WatchCache(storage, r.prefix) for r in resources.all
                                              if {"get", "list", "watch"} & set(r.verbs)}
        self._last_write: dict[str, int] = {}
        self._transform_keys: dict[str, str] = {}
        self._probes: dict[str, SharedProbe] = {}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        for c in self.caches.values():
            await c.start()
        await asyncio.gather(*(c.ready.wait() for c in self.caches.values()))

    async def stop(self) -> None:
        for c in self.caches.values():
            await c.stop()

    def cache(self, res: Resource) -> WatchCache:
        cache = self.caches.get(res.group_resource)
        if cache is None:  # a custom resource whose CRD went away after the request looked it up
            raise errors.NotFoundError(message="the server could not find the requested resource")
        return cache

    def _stored(self, group_resource: str) -> builtins.list[dict[str, Any]]:
        """Another resource's stored objects, for admission that reads other kinds; none when not served."""
        cache = self.caches.get(group_resource)
        return [e.obj for e in cache.objects.values()] if cache is not None else []

    # ------------------------------------------------------------------ resources that come and go
    async def install(self, strategies: builtins.list[Resource], *, read_transform: Transform | None = None,
                      transform_key: str = "") -> None:
        """Serve these (custom) resources; the versions of one resource share one cache, as in etcd.

        ``read_transform`` is applied to every stored object as it is read (a custom resource's
        storage-version defaults); a different ``transform_key`` than the cache was built with
        rebuilds the cache, so objects stored earlier are served with the new defaults.
        """
        for strategy in strategies:
            current = self.caches.get(strategy.group_resource)
            if current is not None and self._transform_keys.get(strategy.group_resource, "") != transform_key:
                await current.stop()  # its watchers end; clients relist (as after a watch cache restart)
                current = None
            if current is None:
                cache = WatchCache(self.storage, strategy.prefix, transform=read_transform)
                self.caches[strategy.group_resource] = cache
                self._transform_keys[strategy.group_resource] = transform_key
                await cache.start()
                await cache.ready.wait()
            self.resources.add(strategy)
        self.openapi.update(self.resources.all)

    async def uninstall(self, group: str, plural: str, *, keep_versions: builtins.list[str] | None = None) -> None:
        """Stop serving a resource's versions (all of them, or those not in ``keep_versions``)."""
        for strategy in self.resources.versions_of(group, plural):
            if keep_versions is None or strategy.version not in keep_versions:
                self.resources.remove(group, strategy.version, plural)
        cache = None
        if not self.resources.versions_of(group, plural):
            gr = f"{plural}.{group}" if group else plural
            cache = self.caches.pop(gr, None)
            self._transform_keys.pop(gr, None)
        self.openapi.update(self.resources.all)  # before the wait below, which may be cancelled
        if cache is not None:
            await cache.stop()

    async def _fresh_cache(self, res: Resource) -> WatchCache:
        cache = self.cache(res)
        if not await cache.wait_for(self._last_write.get(res.group_resource, 0),
                                    timeout=self.settings.read_wait_seconds):
            raise errors.ServiceUnavailableError(
                message=f"the watch cache for {res.group_resource} is not ready (is etcd reachable?)",
                retry_after_seconds=1)
        return cache

    async def _consistent(self, res: Resource, key: bytes, *, prefix: bool) -> WatchCache | None:
        """The resource's cache once it holds what etcd holds now under ``key`` (or at exactly
        ``key``); None when it did not catch up in time (then the caller reads etcd)."""
        cache = self.cache(res)
        try:
            if prefix:
                probe, covered, whole = await self.storage.probe(key, prefix=True), key, True
            else:  # a GET: those arriving together share one probe of the resource (apiserver/probes.py)
                shared = self._probes.get(res.group_resource)
                if shared is None or shared.prefix != cache.prefix:
                    shared = self._probes[res.group_resource] = SharedProbe(self.storage, cache.prefix)
                probe, covered, whole = await shared.probe(key)
        except StorageUnavailableError as e:
            raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        if await cache.wait_until(lambda: cache.caught_up(probe, covered, prefix=whole),
                                  timeout=self.settings.consistent_read_wait_seconds):
            return cache
        log.warning("the watch cache of %s is behind etcd revision %d; reading etcd", res.group_resource, probe.revision)
        return None

    async def _read_cache(self, res: Resource, resource_version: str, key: bytes, *, prefix: bool) -> WatchCache | None:
        """The cache a GET or LIST with this resourceVersion is served from; None: read etcd."""
        if resource_version == "0":
            return await self._fresh_cache(res)
        if resource_version:
            cache = self.cache(res)
            if cache.ready.is_set() and cache.revision >= _parse_rv(resource_version):
                return await self._fresh_cache(res)
        return await self._consistent(res, key, prefix=prefix)

    def _wrote(self, res: Resource, revision: int) -> None:
        if revision > self._last_write.get(res.group_resource, 0):
            self._last_write[res.group_resource] = revision

    # ------------------------------------------------------------------ errors
    def _not_found(self, res: Resource, name: str) -> errors.NotFoundError:
        return errors.NotFoundError(message=f'{res.group_resource} "{name}" not found',
                                    name=name, group=res.group, kind=res.plural)

    def _missing(self, cache: WatchCache, res: Resource, key: bytes, name: str) -> errors.ApiError:
        """NotFound, or a 500 naming the key when its stored value cannot be decrypted (as Kubernetes)."""
        why = cache.unreadable.get(key)
        return self._not_found(res, name) if why is None else _unreadable(key, why)

    def _conflict(self, res: Resource, name: str, detail: str = "") -> errors.ConflictError:
        detail = detail or "the object has been modified; please apply your changes to the latest version and try again"
        return errors.ConflictError(message=f'Operation cannot be fulfilled on {res.group_resource} "{name}": {detail}',
                                    name=name, group=res.group, kind=res.plural)

    # ------------------------------------------------------------------ reads
    async def get(self, res: Resource, namespace: str | None, name: str, *, resource_version: str = "") -> Entry:
        key = res.key(namespace, name)
        cache = await self._read_cache(res, resource_version, key, prefix=False)
        if cache is None:
            return await self._current(res, key, name, fresh=True)
        entry = cache.get(key)
        if entry is None:
            raise self._missing(cache, res, res.key(namespace, name), name)
        return entry

    def _matcher(self, res: Resource, namespace: str | None, label_selector: str,
                 field_selector: str) -> Callable[[dict[str, Any]], bool]:
        try:
            labels = parse_label_selector(label_selector or "")
            fields = parse_field_selector(field_selector or "")
        except SelectorError as e:
            raise errors.BadRequestError(message=str(e))
        unknown = fields.unknown_fields(res.all_selectable_fields)
        if unknown:
            raise errors.BadRequestError(message=f'field label not supported: {unknown[0]}')

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            if namespace and res.namespaced and meta.get("namespace") != namespace:
                return False
            if not labels.empty and not labels.matches(meta.get("labels") or {}):
                return False
            return fields.empty or fields.matches(res.field_values(obj))
        return matches

    async def list(self, res: Resource, namespace: str | None, *, label_selector: str = "",
                   field_selector: str = "", limit: int = 0, continue_token: str = "",
                   resource_version: str = "") -> ListResult:
        matches = self._matcher(res, namespace, label_selector, field_selector)
        prefix = res.namespace_prefix(namespace)
        # A continued list reads at its token's revision (below), never older than this server's writes.
        found = (await self._fresh_cache(res) if continue_token
                 else await self._read_cache(res, resource_version, prefix, prefix=True))
        cache = self.cache(res)
        start, token_rev = b"", 0
        if continue_token:
            try:
                tok = orjson.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start, token_rev = base64.b64decode(tok["start"]), int(tok["rv"])
            except Exception:  # noqa: BLE001 - any garbage token is the client's error
                raise errors.BadRequestError(message="invalid continue token")
            if token_rev < cache.floor:
                raise errors.GoneError(message="The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.")
        # Entries come sorted by key and a page starts after its token's key, found by bisection,
        # not by a walk up to it (a list of 30,000 in pages of 500 would walk it once per page).
        if found is not None:
            entries, rev = found.list(prefix, after=start)
        else:
            entries, rev = await self._list_storage(res, prefix)
            entries = entries[bisect.bisect_right(entries, start, key=lambda e: e.key):] if start else entries
        rev = token_rev or rev
        out: list[Entry] = []
        token, remaining = "", None
        for i in range(len(entries)):
            e = entries[i]
            if not matches(e.obj):
                continue
            if limit and len(out) >= limit:
                token = base64.urlsafe_b64encode(orjson.dumps(
                    {"rv": rev, "start": base64.b64encode(out[-1].key).decode()})).decode()
                # As Kubernetes: the count of what follows only when no selector narrows the list
                # (every entry under the prefix matches then); with one it is left unset.
                if not (label_selector.strip() or field_selector.strip()):
                    remaining = len(entries) - i
                break
            out.append(e)
        return ListResult(out, rev, token, remaining)

    async def _list_storage(self, res: Resource, prefix: bytes) -> tuple[builtins.list[Entry], int]:
        """A LIST read from etcd itself (the cache did not catch up in time)."""
        try:
            items, rev = await self.storage.list(prefix)
        except StorageUnavailableError as e:
            raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        cache = self.cache(res)
        # A value that cannot be read (no encryption key decrypts it) comes without one: skipped here.
        return [cache.decode(kv.key, kv.value, kv.mod_revision) for kv in items if kv.value], rev

    async def watch(self, res: Resource, namespace: str | None, *, label_selector: str = "",
                    field_selector: str = "", resource_version: str = "") -> Watcher:
        matches = self._matcher(res, namespace, label_selector, field_selector)
        # A watch needs no read-your-writes wait: it gets every event after its revision anyway.
        cache = self.cache(res)
        await cache.ready.wait()
        from_rev: int | None = None
        if resource_version == "":
            # From "now": now is at least every write acknowledged before this request, on any server.
            await self._consistent(res, res.namespace_prefix(namespace), prefix=True)
        elif resource_version != "0":
            from_rev = _parse_rv(resource_version)
            if from_rev > cache.revision:
                # Later revisions may all be other resources' writes: ask etcd instead of waiting.
                try:
                    await self._consistent(res, res.namespace_prefix(namespace), prefix=True)
                except errors.ServiceUnavailableError:
                    await cache.wait_for(from_rev, timeout=self.settings.read_wait_seconds)
        try:
            return cache.watch(from_revision=from_rev, matches=matches)
        except ExpiredError as e:
            raise errors.GoneError(message=f"too old resource version: {e.requested} ({e.oldest})")

    # ------------------------------------------------------------------ decoding
    def _decode(self, res: Resource, body: Any, *, kind: str | None = None, field_validation: str = "",
                patched: bool = False) -> tuple[dict[str, Any], builtins.list[str]]:
        """Decode a body (``patched``: the result of a patch) as Kubernetes' decoders do; unknown
        fields become warnings, or with ``fieldValidation=Strict`` the errors Kubernetes answers."""
        kind = kind or res.kind
        original = body
        if not isinstance(body, dict):
            raise errors.BadRequestError(message=f"the body of the request was in an unknown format: expected a JSON object for {kind}")
        api_version = res.api_version if kind == res.kind else body.get("apiVersion")
        if body.get("kind") not in (None, "", kind):
            raise errors.BadRequestError(message=f'the kind in the data ({body.get("kind")}) does not match the expected kind ({kind})')
        if res.kind == kind and body.get("apiVersion") not in (None, "", api_version):
            raise errors.BadRequestError(
                message=f'the API version in the data ({body.get("apiVersion")}) does not match the expected API version ({api_version})')
        try:
            if kind == res.kind:
                obj, unknown = res.decode(body)
            else:
                obj, unknown = decode(_SUBRESOURCE_MODELS.get(kind), body)
        except DecodeError as e:
            raise errors.BadRequestError(message=f'{kind} in version "{res.version}" cannot be handled as a {kind}: {e}')
        if res.kind == kind:
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        obj.setdefault("metadata", {})
        mode = (field_validation or "Warn").lower()
        if mode not in ("strict", "warn", "ignore"):
            raise errors.BadRequestError(message=f"fieldValidation must be one of Ignore, Warn, Strict, got {field_validation!r}")
        warnings: list[str] = []
        if unknown and mode == "strict":
            listed = "strict decoding error: " + ", ".join(f'unknown field "{u}"' for u in unknown)
            if patched:  # the patch handler's answer: 422 naming the patched object
                text = orjson.dumps(original).decode()
                raise errors.invalid("", "", [StatusCause("FieldValueInvalid",
                                                          f"Invalid value: {json.dumps(text)}: {listed}", "patch")])
            raise errors.BadRequestError(message=f'{kind} in version "{res.version}" cannot be handled as a {kind}: {listed}')
        if unknown and mode == "warn":
            warnings = [f'unknown field "{u}"' for u in unknown]
        return obj, warnings

    def _validate(self, res: Resource, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
        causes = validate_object(res, obj, old=old)
        if causes:
            name = (obj.get("metadata") or {}).get("name") or (obj.get("metadata") or {}).get("generateName") or ""
            raise errors.invalid(res.kind, name, causes, group=res.group)

    async def _check_namespace(self, res: Resource, namespace: str | None, *, creating: bool, name: str = "") -> None:
        if not res.namespaced:
            return
        ns_res = self.resources.lookup("", "v1", "namespaces")
        assert ns_res is not None
        cache = await self._fresh_cache(ns_res)
        # Not cached yet may still mean created a moment ago through another API server: ask etcd.
        ns = cache.get(ns_res.key(None, namespace or "")) or await self.get(ns_res, None, namespace or "")
        if creating and ns.obj["metadata"].get("deletionTimestamp"):
            raise errors.ForbiddenError(
                message=f'{res.group_resource} "{name}" is forbidden: unable to create new content in namespace '
                        f'{namespace} because it is being terminated',
                name=name, kind=res.plural, group=res.group,
                causes=[StatusCause("NamespaceTerminating",
                                    f"namespace {namespace} is being terminated", "metadata.namespace")])

    # ------------------------------------------------------------------ create
    async def create(self, res: Resource, namespace: str | None, body: Any, *, dry_run: bool = False,
                     field_validation: str = "", writer: Writer = SYSTEM_WRITER,
                     managed: bool = False) -> WriteResult:
        """Create; ``managed``: the body already carries the managedFields of a server-side apply."""
        obj, warnings = self._decode(res, body, field_validation=field_validation)
        meta = obj["metadata"]
        if res.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise errors.BadRequestError(message="the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        await self._check_namespace(res, meta.get("namespace"), creating=True, name=str(meta.get("name") or ""))
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + name_suffix()
        for f in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339(self.clock())
        meta["generation"] = 1
        ctx = CreateContext(now=self.clock(), settings=self.settings,
                            existing=lambda: [e.obj for e in self.cache(res).objects.values()],
                            allocations=self.allocations, dry_run=dry_run, stored=self._stored)
        res.defaults(obj)
        await self.admission.mutate(res, obj)
        res.prepare_for_create(obj, ctx)
        self._validate(res, obj)
        warnings += await self.admission.validate(res, obj, dry_run=dry_run)
        warnings += res.warnings(obj, None)
        await res.before_create(obj, ctx)
        if not managed:
            obj = self.fields.record_update(res, None, obj, writer=writer)
        meta = obj["metadata"]
        obj["apiVersion"] = res.storage_api_version
        if dry_run:
            return WriteResult(obj, orjson.dumps(obj), warnings, created=True)
        key = res.key(meta.get("namespace"), meta["name"])
        try:
            rev = await self.storage.create(key, orjson.dumps(obj))
        except KeyExistsError:
            raise errors.AlreadyExistsError(message=f'{res.group_resource} "{meta["name"]}" already exists',
                                            name=meta["name"], group=res.group, kind=res.plural)
        except StorageUnavailableError as e:
            raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        self._wrote(res, rev)
        meta["resourceVersion"] = str(rev)
        return WriteResult(obj, orjson.dumps(obj), warnings, created=True)

    # ------------------------------------------------------------------ update
    async def update(self, res: Resource, namespace: str | None, name: str, body: Any, *,
                     subresource: str | None = None, dry_run: bool = False,
                     field_validation: str = "", writer: Writer = SYSTEM_WRITER) -> WriteResult:
        obj, warnings = self._decode(res, body, field_validation=field_validation)
        meta = obj["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequestError(message=f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.BadRequestError(message="the namespace of the provided object does not match the namespace sent on the request")
        expected = meta.get("resourceVersion")
        if expected is not None and not str(expected).isdigit():
            raise errors.BadRequestError(message=f'invalid resourceVersion "{expected}"')

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            return obj

        result = await self._guaranteed_update(res, namespace, name, mutate, subresource=subresource,
                                               precondition=int(expected) if expected else None,
                                               dry_run=dry_run, writer=writer)
        result.warnings = warnings + result.warnings
        return result

    async def patch(self, res: Resource, namespace: str | None, name: str, body: bytes, *,
                    content_type: str, subresource: str | None = None, dry_run: bool = False,
                    field_validation: str = "", writer: Writer = SYSTEM_WRITER) -> WriteResult:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype == APPLY_PATCH:
            return await self.apply(res, namespace, name, body, subresource=subresource, dry_run=dry_run,
                                    field_validation=field_validation, writer=writer)
        if ctype == STRATEGIC_PATCH and not res.strategic_merge:
            # As Kubernetes answers for custom resources: they have no patch strategies to merge by.
            raise errors.UnsupportedMediaTypeError(
                message=f"the body of the request was in an unknown format - accepted media types include: "
                        f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}")
        if ctype not in (MERGE_PATCH, JSON_PATCH, STRATEGIC_PATCH):
            raise errors.UnsupportedMediaTypeError(
                message=f"the body of the request was in an unknown format - accepted media types include: "
                        f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_PATCH}")
        try:
            doc = orjson.loads(body) if body else None
        except orjson.JSONDecodeError as e:
            raise errors.BadRequestError(message=f"error decoding patch: {e}")
        if ctype == JSON_PATCH and not isinstance(doc, list):
            raise errors.BadRequestError(message="the JSON patch must be a list of operations")
        if ctype != JSON_PATCH and not isinstance(doc, dict):
            raise errors.BadRequestError(message="the patch must be a JSON object")
        warnings: builtins.list[str] = []
        precondition: int | None = None
        if isinstance(doc, dict):
            rv = (doc.get("metadata") or {}).get("resourceVersion") if isinstance(doc.get("metadata"), dict) else None
            if rv:
                if not str(rv).isdigit():
                    raise errors.BadRequestError(message=f'invalid resourceVersion "{rv}"')
                precondition = int(rv)

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            # With its resourceVersion (a JSON patch may test or replace it); stored at the storage
            # version, patched as the request's.
            base = copy.deepcopy(res.from_storage(current))
            try:
                if ctype == MERGE_PATCH:
                    patched = patches.apply_merge_patch(base, doc)
                elif ctype == JSON_PATCH:
                    patched = patches.apply_json_patch(base, doc)
                else:
                    assert isinstance(doc, dict)
                    patched = patches.apply_strategic_merge_patch(base, doc, schema=self.openapi.schema_for(res))
            except patches.PatchError as e:
                # Kubernetes answers 422 for a patch that does not apply to the object.
                raise errors.InvalidError(message=str(e), name=name, group=res.group, kind=res.plural)
            new, w = self._decode(res, patched, field_validation=field_validation, patched=True)
            warnings.extend(x for x in w if x not in warnings)
            if isinstance(doc, dict) and precondition is not None:
                new["metadata"]["resourceVersion"] = str(precondition)
            else:
                patched_rv = new["metadata"].pop("resourceVersion", None)
                if patched_rv is not None and str(patched_rv) != str(current["metadata"].get("resourceVersion")):
                    raise self._conflict(res, name)
            return new

        result = await self._guaranteed_update(res, namespace, name, mutate, subresource=subresource,
                                               precondition=precondition, dry_run=dry_run, writer=writer)
        result.warnings = warnings + result.warnings
        return result

    async def apply(self, res: Resource, namespace: str | None, name: str, body: bytes, *,
                    subresource: str | None = None, dry_run: bool = False, field_validation: str = "",
                    writer: Writer) -> WriteResult:
        """Server-side apply (``application/apply-patch+yaml``): merge ``writer``'s configuration,
        creating the object when it does not exist (see ``apiserver/fieldmanager.py``)."""
        try:
            config = yaml.load(body or b"", Loader=_YAML_LOADER)
        except yaml.YAMLError as e:
            raise errors.BadRequestError(message=f"error decoding YAML: {e}")
        if not isinstance(config, dict):
            raise errors.BadRequestError(message="the apply patch must be a YAML or JSON object")
        raw_meta = config.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        if meta.get("name") not in (None, "", name):
            raise errors.BadRequestError(message=f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
        if res.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise errors.BadRequestError(message="the namespace of the provided object does not match the namespace sent on the request")
        # Unknown fields are reported per fieldValidation and never reach the merge.
        _, warnings = self._decode(res, copy.deepcopy(config), field_validation=field_validation)
        config, _ = res.decode(copy.deepcopy(config))
        try:
            current = await self._current(res, res.key(namespace, name), name, fresh=False)
        except errors.NotFoundError:
            current = None
        if current is None:
            created_body = self.fields.apply(res, None, config, writer=writer, subresource=subresource)
            created_body.setdefault("metadata", {})["name"] = name
            try:
                result = await self.create(res, namespace, created_body, dry_run=dry_run, writer=writer, managed=True)
            except errors.AlreadyExistsError:
                pass  # lost a race with another create: apply to what is there now
            else:
                result.warnings = warnings + result.warnings
                return result

        def mutate(live: dict[str, Any]) -> dict[str, Any]:
            current = _strip_rv(res.from_storage(live))  # applied at the request's version
            merged = self.fields.apply(res, current, config, writer=writer, subresource=subresource)
            new, _ = self._decode(res, merged, field_validation="Ignore")
            new["metadata"].pop("resourceVersion", None)
            return new

        result = await self._guaranteed_update(res, namespace, name, mutate, subresource=subresource,
                                               precondition=None, dry_run=dry_run, writer=writer, managed=True)
        result.warnings = warnings + result.warnings
        return result

    async def _guaranteed_update(self, res: Resource, namespace: str | None, name: str,
                                 mutate: Callable[[dict[str, Any]], dict[str, Any]], *,
                                 subresource: str | None, precondition: int | None,
                                 dry_run: bool, writer: Writer = SYSTEM_WRITER,
                                 managed: bool = False) -> WriteResult:
        key = res.key(namespace, name)
        fresh = False  # the first try reads the cache; any doubt re-reads etcd (like Kubernetes' GuaranteedUpdate)
        for attempt in range(_GUARANTEED_UPDATE_TRIES):
            current = await self._current(res, key, name, fresh=fresh)
            if precondition is not None and precondition != current.revision:
                if not fresh:
                    fresh = True
                    continue
                raise self._conflict(res, name)
            try:
                new = mutate(orjson.loads(current.raw))  # a fresh copy: 10x cheaper than deepcopy
            except (errors.InvalidError, errors.ConflictError):
                if not fresh:  # maybe only against a stale cached version: try the current one
                    fresh = True
                    continue
                raise
            new, warnings = self._prepare_update(res, current.obj, new, subresource=subresource)
            warnings += await self.admission.validate_update(res, new, current.obj, subresource=subresource,
                                                             dry_run=dry_run)
            if subresource is None:
                await res.before_update(new, current.obj, CreateContext(
                    now=self.clock(), settings=self.settings, allocations=self.allocations, dry_run=dry_run,
                    existing=lambda: [e.obj for e in self.cache(res).objects.values()], stored=self._stored))
            if not managed:
                new = self.fields.record_update(res, current.obj, new, writer=writer, subresource=subresource)
            if self.fields.unchanged(new, current.obj):
                if not fresh:
                    # A no-op is only a success against the current version, not a cached one.
                    fresh = True
                    continue
                return WriteResult(current.obj, current.raw, warnings)
            if dry_run:
                # What would be stored, at the version it would replace (as Kubernetes answers).
                new["metadata"]["resourceVersion"] = str(current.revision)
                return WriteResult(new, orjson.dumps(new), warnings)
            try:
                if _should_delete_on_update(res, new):
                    _, rev = await self.storage.delete(key, expected_revision=current.revision)
                else:
                    rev = await self.storage.update(key, orjson.dumps(new), expected_revision=current.revision)
            except RevisionConflictError:
                if precondition is not None:
                    raise self._conflict(res, name)
                fresh = True
                await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
                continue
            except KeyNotFoundError:
                raise self._not_found(res, name)
            except StorageUnavailableError as e:
                raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
            self._wrote(res, rev)
            new["metadata"]["resourceVersion"] = str(rev)
            return WriteResult(new, orjson.dumps(new), warnings)
        raise self._conflict(res, name, "too many concurrent updates; please retry")

    async def _current(self, res: Resource, key: bytes, name: str, *, fresh: bool) -> Entry:
        """The object to update: from the cache, or from etcd after a lost race."""
        if not fresh:
            cache = await self._fresh_cache(res)
            entry = cache.get(key)
            if entry is None:  # perhaps created through another API server a moment ago: ask etcd
                return await self._current(res, key, name, fresh=True)
            return entry
        try:
            kv = await self.storage.get(key)
        except KeyNotFoundError:
            raise self._not_found(res, name)
        except UnreadableValueError as e:
            raise _unreadable(e.key, e.reason)
        except StorageUnavailableError as e:
            raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        return self.cache(res).decode(kv.key, kv.value, kv.mod_revision)

    def _prepare_update(self, res: Resource, old: dict[str, Any], new: dict[str, Any], *,
                        subresource: str | None) -> tuple[dict[str, Any], builtins.list[str]]:
        """The object to store (validated) and the write's ``Warning``s."""
        warnings: builtins.list[str] = []
        old_meta = old.get("metadata") or {}
        if subresource == "status":
            merged = orjson.loads(orjson.dumps(old))  # a fresh copy (JSON data): cheaper than deepcopy
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
        elif subresource in res.spec_subresources:  # one part of the spec (pods/ephemeralcontainers)
            new = res.prepare_for_subresource_update(subresource, new, old)
            res.defaults(new)
        elif subresource != "binding":  # a binding sets spec.nodeName and PodScheduled in one write
            res.prepare_for_update(new, old)
            res.defaults(new)
        meta = new.setdefault("metadata", {})
        for f in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        meta.pop("resourceVersion", None)
        meta.pop("selfLink", None)
        gen = int(old_meta.get("generation") or 1)
        if subresource in (None, "scale") and res.generation_changed(new, old):
            gen += 1
        meta["generation"] = gen
        if meta.get("deletionTimestamp") and "finalizers" in old_meta:
            # While deleting, finalizers may only be removed, never added.
            meta["finalizers"] = [f for f in (meta.get("finalizers") or []) if f in old_meta["finalizers"]]
            if not meta["finalizers"]:
                del meta["finalizers"]
        if subresource is None or subresource == "scale":
            self._validate(res, new, old)
            warnings = res.warnings(new, old)
        elif subresource == "status" or subresource in res.spec_subresources:
            causes = (res.validate_status_update(new, old) if subresource == "status"
                      else res.validate_subresource_update(subresource, new, old))
            if causes:
                raise errors.invalid(res.kind, str(meta.get("name") or ""), causes, group=res.group)
        new["apiVersion"] = res.storage_api_version
        return new, warnings

    # ------------------------------------------------------------------ subresources
    async def get_scale(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        return res.scale_of((await self.get(res, namespace, name)).obj)

    async def update_scale(self, res: Resource, namespace: str | None, name: str, body: Any, *,
                           dry_run: bool = False, patch_type: str | None = None,
                           writer: Writer = SYSTEM_WRITER) -> dict[str, Any]:
        """PUT or PATCH of ``/scale``: only spec.replicas of the parent changes."""
        if patch_type:
            current = res.scale_of((await self.get(res, namespace, name)).obj)
            try:
                doc = orjson.loads(body) if body else None
                if patch_type.startswith(JSON_PATCH):
                    scale = patches.apply_json_patch(current, doc)
                else:
                    scale = patches.apply_merge_patch(current, doc)
            except (orjson.JSONDecodeError, patches.PatchError) as e:
                raise errors.BadRequestError(message=f"the patch could not be applied: {e}")
        else:
            scale = body
        if not isinstance(scale, dict):
            raise errors.BadRequestError(message="expected a Scale object")
        try:
            scale, _ = decode(_SUBRESOURCE_MODELS["Scale"], scale)
        except DecodeError as e:
            raise errors.BadRequestError(message=f'Scale in version "v1" cannot be handled as a Scale: {e}')
        replicas = (scale.get("spec") or {}).get("replicas")
        if replicas is None or replicas < 0:
            raise errors.invalid("Scale", name, [StatusCause(
                "FieldValueInvalid", f"Invalid value: {replicas}: must be greater than or equal to 0", "spec.replicas")],
                group="autoscaling")
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        precondition = int(rv) if rv and str(rv).isdigit() and not patch_type else None

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            current = _strip_rv(current)
            res.set_replicas(current, replicas)
            return current

        result = await self._guaranteed_update(res, namespace, name, mutate, subresource="scale",
                                               precondition=precondition, dry_run=dry_run, writer=writer)
        return res.scale_of(result.obj)

    async def bind(self, res: Resource, namespace: str | None, name: str, body: Any, *,
                   writer: Writer = SYSTEM_WRITER) -> None:
        """POST pods/{name}/binding: set spec.nodeName once, as the scheduler does."""
        binding, _ = self._decode(res, body, kind="Binding")
        target = binding.get("target") or {}
        node = target.get("name")
        if not node:
            raise errors.invalid("Binding", name, [StatusCause("FieldValueRequired", "Required value", "target.name")])
        now = self.clock()
        bind = getattr(res, "bind", None)
        if bind is None:
            raise errors.MethodNotAllowedError(message=f"{res.plural} cannot be bound")

        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            result: dict[str, Any] = bind(_strip_rv(current), node=node, now=now)
            return result

        await self._guaranteed_update(res, namespace, name, mutate, subresource="binding",
                                      precondition=None, dry_run=False, writer=writer)

    # ------------------------------------------------------------------ delete
    async def delete(self, res: Resource, namespace: str | None, name: str, *,
                     options: dict[str, Any] | None = None, dry_run: bool = False) -> tuple[dict[str, Any], bool]:
        """Delete (or start deleting) one object; returns (object, gone-now)."""
        options = options or {}
        key = res.key(namespace, name)
        for attempt in range(_GUARANTEED_UPDATE_TRIES):
            current = await self._current(res, key, name, fresh=attempt > 0)
            obj = current.obj
            self.admission.validate_delete(res, obj)
            meta = obj.get("metadata") or {}
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != meta.get("uid"):
                raise self._conflict(res, name, f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta.get('uid')}")
            if pre.get("resourceVersion") and str(pre["resourceVersion"]) != meta.get("resourceVersion"):
                raise self._conflict(res, name, f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, ResourceVersion in object meta: {meta.get('resourceVersion')}")
            new = self._deletion_state(res, obj, options)
            try:
                if new is None:
                    if dry_run:
                        return obj, True
                    _, rev = await self.storage.delete(key, expected_revision=current.revision)
                    self._wrote(res, rev)
                    return obj, True
                if _same(new, obj):
                    return obj, False
                if dry_run:
                    return new, False
                new_meta = new["metadata"]
                new_meta.pop("resourceVersion", None)
                rev = await self.storage.update(key, orjson.dumps(new), expected_revision=current.revision)
                self._wrote(res, rev)
                new_meta["resourceVersion"] = str(rev)
                return new, False
            except RevisionConflictError:
                continue
            except KeyNotFoundError:
                raise self._not_found(res, name)
            except StorageUnavailableError as e:
                raise errors.ServiceUnavailableError(message=str(e), retry_after_seconds=1)
        raise self._conflict(res, name, "too many concurrent updates; please retry")

    def _deletion_state(self, res: Resource, obj: dict[str, Any], options: dict[str, Any]) -> dict[str, Any] | None:
        """The object marked for deletion, or None when it can be removed right away."""
        new = copy.deepcopy(obj)
        meta = new["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True and not policy:
            policy = "Orphan"
        if policy not in (None, "", "Background", "Foreground", "Orphan"):
            raise errors.BadRequestError(message=f'propagationPolicy must be one of Orphan, Background or Foreground, got "{policy}"')
        if not meta.get("deletionTimestamp") or finalizers:
            if policy == "Foreground" and "foregroundDeletion" not in finalizers:
                finalizers.append("foregroundDeletion")
            elif policy == "Orphan" and "orphan" not in finalizers:
                finalizers.append("orphan")
        if finalizers:
            meta["finalizers"] = finalizers
        now = self.clock()
        grace = res.grace_period_seconds(obj, options)
        if not finalizers and not res.deletion_blocked(obj) and grace == 0:
            return None
        if meta.get("deletionTimestamp"):
            # Already deleting: a shorter grace period may shorten the wait, nothing else changes.
            current_grace = int(meta.get("deletionGracePeriodSeconds") or 0)
            if grace < current_grace:
                meta["deletionGracePeriodSeconds"] = grace
                meta["deletionTimestamp"] = now_rfc3339(now + timedelta(seconds=grace))
            return new
        meta["deletionTimestamp"] = now_rfc3339(now + timedelta(seconds=grace))
        meta["deletionGracePeriodSeconds"] = grace
        res.mark_deleting(new)
        return new

    async def delete_collection(self, res: Resource, namespace: str | None, *, label_selector: str = "",
                                field_selector: str = "", options: dict[str, Any] | None = None,
                                dry_run: bool = False) -> builtins.list[dict[str, Any]]:
        listed = await self.list(res, namespace, label_selector=label_selector, field_selector=field_selector)
        out = []
        for e in listed.items:
            meta = e.obj["metadata"]
            try:
                obj, _ = await self.delete(res, meta.get("namespace"), meta["name"], options=options, dry_run=dry_run)
                out.append(obj)
            except errors.NotFoundError:
                pass
        return out


# ---------------------------------------------------------------------- pure helpers
def name_suffix() -> str:
    """Five random characters of Kubernetes' generateName alphabet (its SimpleNameGenerator)."""
    return "".join(random.choice(_NAME_CHARS) for _ in range(5))


def _parse_rv(resource_version: str) -> int:
    try:
        rv = int(resource_version)
    except ValueError:
        rv = -1
    if rv < 0:
        raise errors.BadRequestError(message=f'invalid resource version "{resource_version}"')
    return rv


def _unreadable(key: bytes, why: str) -> errors.InternalError:
    return errors.InternalError(message=f'Internal error occurred: unable to transform key "{key.decode(errors="replace")}": {why}')


def _strip_rv(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj.get("metadata", {}).pop("resourceVersion", None)
    return obj


def _same(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Equal but for resourceVersion: such a write is a no-op and keeps the old version."""
    a = dict(new, metadata={k: v for k, v in (new.get("metadata") or {}).items() if k != "resourceVersion"})
    b = dict(old, metadata={k: v for k, v in (old.get("metadata") or {}).items() if k != "resourceVersion"})
    return a == b


def _should_delete_on_update(res: Resource, new: dict[str, Any]) -> bool:
    """An update that removes the last finalizer of an object being deleted finishes the delete."""
    meta = new.get("metadata") or {}
    if not meta.get("deletionTimestamp") or meta.get("finalizers"):
        return False
    return res.finished_by_update(new)
